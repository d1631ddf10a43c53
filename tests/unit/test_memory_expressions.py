"""The memory transport's expressions: what they select and change, and how they are refused.

Each refusal is the ``ValidationException`` DynamoDB gives, with its message; the cases
a server answers differently (moto answers some syntax errors with a 500) are checked
here against DynamoDB's documented behaviour, without a server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiodynkv._transport import ServiceError
from aiodynkv._transport.memory import MemoryTransport

TABLE = "expressions"


def _transport() -> MemoryTransport:
    transport = MemoryTransport()
    asyncio.run(
        transport.send(
            "CreateTable",
            {
                "TableName": TABLE,
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            },
        )
    )
    item = {
        "pk": {"S": "a"},
        "n": {"N": "5"},
        "s": {"S": "hello"},
        "b": {"B": b"\x01\x02\x03"},
        "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1", "2"]},
        "bs": {"BS": [b"\x01"]},
        "l": {"L": [{"S": "x"}, {"N": "1"}]},
        "m": {"M": {"k": {"S": "v"}}},
        "t": {"BOOL": True},
        "z": {"NULL": True},
    }
    asyncio.run(transport.send("PutItem", {"TableName": TABLE, "Item": item}))
    return transport


def _send(transport: MemoryTransport, action: str, request: dict[str, Any]) -> dict[str, Any]:
    reply = asyncio.run(transport.send(action, {"TableName": TABLE, **request}))
    reply.pop("ResponseMetadata")
    return reply


def _refusal(transport: MemoryTransport, action: str, request: dict[str, Any]) -> str:
    with pytest.raises(ServiceError) as caught:
        _send(transport, action, request)
    assert caught.value.code == "ValidationException"
    assert caught.value.status == 400
    return caught.value.message


def _holds(
    transport: MemoryTransport,
    condition: str,
    values: dict[str, Any] | None = None,
    names: dict[str, str] | None = None,
) -> bool:
    """Whether `condition` holds on item "a", as a conditional no-op update answers."""
    request: dict[str, Any] = {
        "Key": {"pk": {"S": "a"}},
        "ConditionExpression": condition,
        "UpdateExpression": "SET touched = :touch",
        "ExpressionAttributeValues": {":touch": {"BOOL": True}, **(values or {})},
    }
    if names:
        request["ExpressionAttributeNames"] = names
    try:
        _send(transport, "UpdateItem", request)
    except ServiceError as exc:
        if exc.code != "ConditionalCheckFailedException":
            raise
        return False
    return True


def _updated(
    transport: MemoryTransport,
    update: str,
    values: dict[str, Any] | None = None,
    names: dict[str, str] | None = None,
    pk: str = "a",
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "Key": {"pk": {"S": pk}},
        "UpdateExpression": update,
        "ReturnValues": "ALL_NEW",
    }
    if values:
        request["ExpressionAttributeValues"] = values
    if names:
        request["ExpressionAttributeNames"] = names
    attributes: dict[str, Any] = _send(transport, "UpdateItem", request)["Attributes"]
    return attributes


@pytest.fixture
def memory() -> MemoryTransport:
    return _transport()


# -- conditions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "values", "expected"),
    [
        ("n = :v", {":v": {"N": "5.0"}}, True),
        ("n <> :v", {":v": {"N": "5"}}, False),
        ("n < :v", {":v": {"N": "6"}}, True),
        ("n <= :v", {":v": {"N": "5"}}, True),
        ("n > :v", {":v": {"N": "5"}}, False),
        ("n >= :v", {":v": {"N": "5"}}, True),
        ("s > :v", {":v": {"S": "hell"}}, True),
        ("b < :v", {":v": {"B": b"\x02"}}, True),
        ("n < :v", {":v": {"S": "9"}}, False),  # different types never compare
        ("missing < :v", {":v": {"N": "9"}}, False),
        ("n BETWEEN :lo AND :hi", {":lo": {"N": "1"}, ":hi": {"N": "5"}}, True),
        ("n between :lo and :hi", {":lo": {"N": "6"}, ":hi": {"N": "9"}}, False),
        ("s IN (:x, :y)", {":x": {"S": "no"}, ":y": {"S": "hello"}}, True),
        ("s IN (:x)", {":x": {"S": "no"}}, False),
        ("begins_with(s, :p)", {":p": {"S": "he"}}, True),
        ("begins_with(s, :p)", {":p": {"S": "lo"}}, False),
        ("begins_with(b, :p)", {":p": {"B": b"\x01\x02"}}, True),
        ("begins_with(missing, :p)", {":p": {"S": ""}}, False),
        ("begins_with(s, :p)", {":p": {"B": b"h"}}, False),
        ("contains(s, :p)", {":p": {"S": "ell"}}, True),
        ("contains(b, :p)", {":p": {"B": b"\x02\x03"}}, True),
        ("contains(ss, :p)", {":p": {"S": "y"}}, True),
        ("contains(ns, :p)", {":p": {"N": "2.00"}}, True),
        ("contains(ns, :p)", {":p": {"S": "2"}}, False),
        ("contains(bs, :p)", {":p": {"B": b"\x01"}}, True),
        ("contains(l, :p)", {":p": {"N": "1"}}, True),
        ("contains(l, :p)", {":p": {"S": "y"}}, False),
        ("contains(n, :p)", {":p": {"N": "5"}}, False),
        ("contains(missing, :p)", {":p": {"S": "x"}}, False),
        ("attribute_type(m, :t)", {":t": {"S": "M"}}, True),
        ("attribute_type(m, :t)", {":t": {"S": "L"}}, False),
        ("attribute_type(missing, :t)", {":t": {"S": "S"}}, False),
        ("size(s) = :v", {":v": {"N": "5"}}, True),
        ("size(b) = :v", {":v": {"N": "3"}}, True),
        ("size(ss) = :v", {":v": {"N": "2"}}, True),
        ("size(l) = :v", {":v": {"N": "2"}}, True),
        ("size(m) = :v", {":v": {"N": "1"}}, True),
        ("size(n) >= :v", {":v": {"N": "0"}}, False),  # a number has no size
        ("size(missing) >= :v", {":v": {"N": "0"}}, False),
        ("m = :v", {":v": {"M": {"k": {"S": "v"}}}}, True),
        ("m = :v", {":v": {"M": {"k": {"S": "w"}}}}, False),
        ("l = :v", {":v": {"L": [{"S": "x"}, {"N": "1.0"}]}}, True),
        ("l = :v", {":v": {"L": [{"S": "x"}]}}, False),
        ("ss = :v", {":v": {"SS": ["y", "x"]}}, True),
        ("ns = :v", {":v": {"NS": ["2", "1.0"]}}, True),
        ("n = :v", {":v": {"S": "5"}}, False),
        ("missing = :v", {":v": {"NULL": True}}, False),
        ("NOT (n = :v) OR s = :w", {":v": {"N": "5"}, ":w": {"S": "hello"}}, True),
        ("NOT n = :v AND s = :w", {":v": {"N": "5"}, ":w": {"S": "hello"}}, False),
        ("(n = :v OR n = :w) AND attribute_exists(s)", {":v": {"N": "1"}, ":w": {"N": "5"}}, True),
        ("attribute_not_exists(s) OR attribute_not_exists(n)", {}, False),
    ],
)
def test_a_condition_holds_as_dynamodb_evaluates_it(
    memory: MemoryTransport, condition: str, values: dict[str, Any], expected: bool
) -> None:
    assert _holds(memory, condition, values) is expected


def test_names_stand_for_attributes_and_an_attribute_may_be_named_like_a_function(
    memory: MemoryTransport,
) -> None:
    assert _holds(memory, "#n = :v", {":v": {"N": "5"}}, {"#n": "n"})
    _updated(memory, "SET #c = :v", {":v": {"S": "c"}}, {"#c": "contains"})
    assert _holds(memory, "#c = :v", {":v": {"S": "c"}}, {"#c": "contains"})


@pytest.mark.parametrize(
    ("condition", "token"),
    [
        ("n = ", "<EOF>"),
        ("n", "<EOF>"),
        ("n = :v )", ")"),
        ("(n = :v", "<EOF>"),
        ("n == :v", "="),
        ("n :v", ":v"),
        ("n BETWEEN :v OR :v", "OR"),
        ("n IN :v", ":v"),
        ("n IN (:v :v)", ":v"),
        ("AND = :v", "AND"),
        ("n = :v ;", ";"),
        ("NOT", "<EOF>"),
        ("n = 5", "5"),
        ("attribute_exists(:v)", ":v"),
        ("begins_with(s :v)", ":v"),
        ("size(:v) = :v", ":v"),
    ],
)
def test_a_syntax_error_names_the_token_and_the_expression(
    memory: MemoryTransport, condition: str, token: str
) -> None:
    message = _refusal(
        memory,
        "PutItem",
        {
            "Item": {"pk": {"S": "p"}},
            "ConditionExpression": condition,
            "ExpressionAttributeValues": {":v": {"N": "1"}},
        },
    )
    assert message == (
        f'Invalid ConditionExpression: Syntax error; token: "{token}", near: "{condition}"'
    )


def test_a_blank_expression_is_refused_as_empty(memory: MemoryTransport) -> None:
    message = _refusal(memory, "Scan", {"FilterExpression": "   "})
    assert message == "Invalid FilterExpression: The expression can not be empty;"


def test_an_undefined_name_is_refused(memory: MemoryTransport) -> None:
    message = _refusal(memory, "Scan", {"FilterExpression": "attribute_exists(#x)"})
    assert message == (
        "An expression attribute name used in the document path is not defined; attribute name: #x"
    )


def test_an_unused_name_is_refused_with_every_unused_key(memory: MemoryTransport) -> None:
    message = _refusal(
        memory,
        "Scan",
        {
            "FilterExpression": "attribute_exists(#a)",
            "ExpressionAttributeNames": {"#a": "a", "#c": "c", "#b": "b"},
        },
    )
    assert message == (
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b, #c}"
    )


def test_an_undefined_value_is_refused(memory: MemoryTransport) -> None:
    message = _refusal(
        memory,
        "Scan",
        {"FilterExpression": "n = :b OR n = :a", "ExpressionAttributeValues": {":b": {"N": "1"}}},
    )
    assert message == (
        "An expression attribute value used in expression is not defined; attribute value: :a"
    )


def test_an_unused_value_is_refused(memory: MemoryTransport) -> None:
    message = _refusal(
        memory,
        "Scan",
        {
            "FilterExpression": "n = :a",
            "ExpressionAttributeValues": {":a": {"N": "1"}, ":z": {"N": "2"}},
        },
    )
    assert (
        message == "Value provided in ExpressionAttributeValues unused in expressions: keys: {:z}"
    )


def test_names_or_values_without_any_expression_are_refused(memory: MemoryTransport) -> None:
    assert _refusal(memory, "Scan", {"ExpressionAttributeNames": {"#a": "a"}}) == (
        "ExpressionAttributeNames can only be specified when using expressions"
    )
    assert _refusal(memory, "Scan", {"ExpressionAttributeValues": {":a": {"N": "1"}}}) == (
        "ExpressionAttributeValues can only be specified when using expressions"
    )


def test_empty_names_or_values_maps_are_refused(memory: MemoryTransport) -> None:
    base = {"FilterExpression": "attribute_exists(n)"}
    assert _refusal(memory, "Scan", {**base, "ExpressionAttributeNames": {}}) == (
        "ExpressionAttributeNames must not be empty"
    )
    assert _refusal(memory, "Scan", {**base, "ExpressionAttributeValues": {}}) == (
        "ExpressionAttributeValues must not be empty"
    )


@pytest.mark.parametrize("path", ["m.k", "l[0]", "#m.k"])
def test_nested_document_paths_are_refused(memory: MemoryTransport, path: str) -> None:
    message = _refusal(
        memory,
        "Scan",
        {
            "FilterExpression": f"attribute_exists({path})",
            **({"ExpressionAttributeNames": {"#m": "m"}} if "#" in path else {}),
        },
    )
    assert message.startswith("Invalid FilterExpression: nested document paths")


def test_a_scan_filter_selects_items_and_the_projection_their_attributes(
    memory: MemoryTransport,
) -> None:
    _send(memory, "PutItem", {"Item": {"pk": {"S": "b"}, "n": {"N": "7"}}})
    reply = _send(
        memory,
        "Scan",
        {
            "FilterExpression": "n > :v",
            "ProjectionExpression": "pk, #n, missing",
            "ExpressionAttributeNames": {"#n": "n"},
            "ExpressionAttributeValues": {":v": {"N": "6"}},
        },
    )
    assert reply == {
        "Items": [{"pk": {"S": "b"}, "n": {"N": "7"}}],
        "Count": 1,
        "ScannedCount": 2,
    }


@pytest.mark.parametrize(
    ("projection", "token"), [("pk,", "<EOF>"), ("pk n", "n"), (":v", ":v"), ("pk, AND", "AND")]
)
def test_a_malformed_projection_is_refused(
    memory: MemoryTransport, projection: str, token: str
) -> None:
    message = _refusal(
        memory, "GetItem", {"Key": {"pk": {"S": "a"}}, "ProjectionExpression": projection}
    )
    assert message == (
        f'Invalid ProjectionExpression: Syntax error; token: "{token}", near: "{projection}"'
    )


# -- updates ------------------------------------------------------------------------------


def test_set_reads_every_operand_from_the_item_before_the_update(
    memory: MemoryTransport,
) -> None:
    new = _updated(
        memory,
        "SET n = n + :one, old_n = n, s = :s REMOVE z, t ADD c :one, ss :more DELETE ns :two",
        {
            ":one": {"N": "1"},
            ":s": {"S": "bye"},
            ":more": {"SS": ["y", "w"]},
            ":two": {"NS": ["2.0"]},
        },
    )
    assert new["n"] == {"N": "6"}
    assert new["old_n"] == {"N": "5"}
    assert new["s"] == {"S": "bye"}
    assert "z" not in new
    assert "t" not in new
    assert new["c"] == {"N": "1"}
    assert new["ss"] == {"SS": ["x", "y", "w"]}
    assert new["ns"] == {"NS": ["1"]}


def test_subtraction_and_if_not_exists_and_list_append(memory: MemoryTransport) -> None:
    new = _updated(
        memory,
        "SET n = n - :two, fresh = if_not_exists(fresh, :two), kept = if_not_exists(s, :two), "
        "l = list_append(l, :more), k = list_append(:more, if_not_exists(k, :empty))",
        {":two": {"N": "2"}, ":more": {"L": [{"BOOL": False}]}, ":empty": {"L": []}},
    )
    assert new["n"] == {"N": "3"}
    assert new["fresh"] == {"N": "2"}
    assert new["kept"] == {"S": "hello"}
    assert new["l"] == {"L": [{"S": "x"}, {"N": "1"}, {"BOOL": False}]}
    assert new["k"] == {"L": [{"BOOL": False}]}


def test_delete_of_every_member_removes_the_attribute(memory: MemoryTransport) -> None:
    new = _updated(memory, "DELETE ss :all, gone :all", {":all": {"SS": ["x", "y"]}})
    assert "ss" not in new
    assert "gone" not in new


def test_an_update_of_a_missing_item_starts_from_its_key(memory: MemoryTransport) -> None:
    new = _updated(
        memory, "ADD n :d, s :set", {":d": {"N": "-1.50"}, ":set": {"NS": ["3"]}}, pk="new"
    )
    assert new == {"pk": {"S": "new"}, "n": {"N": "-1.5"}, "s": {"NS": ["3"]}}


_WRONG_TYPE = "An operand in the update expression has an incorrect data type"


@pytest.mark.parametrize(
    ("update", "values"),
    [
        ("SET n = s + :one", {":one": {"N": "1"}}),
        ("SET n = n - :one", {":one": {"S": "1"}}),
        ("SET l = list_append(l, :x)", {":x": {"S": "x"}}),
        ("SET l = list_append(n, l)", None),
        ("ADD s :one", {":one": {"N": "1"}}),
        ("ADD ss :x", {":x": {"NS": ["1"]}}),
        ("ADD x :x", {":x": {"S": "x"}}),
        ("DELETE ss :x", {":x": {"S": "x"}}),
        ("DELETE ss :x", {":x": {"NS": ["1"]}}),
    ],
)
def test_an_operand_of_the_wrong_type_is_refused_and_nothing_changes(
    memory: MemoryTransport, update: str, values: dict[str, Any] | None
) -> None:
    before = memory.items(TABLE)
    request: dict[str, Any] = {"Key": {"pk": {"S": "a"}}, "UpdateExpression": update}
    if values:
        request["ExpressionAttributeValues"] = values
    assert _refusal(memory, "UpdateItem", request) == _WRONG_TYPE
    assert memory.items(TABLE) == before


@pytest.mark.parametrize(
    "update", ["SET x = missing", "SET x = missing + :one", "SET l = list_append(missing, l)"]
)
def test_an_operand_naming_a_missing_attribute_is_refused(
    memory: MemoryTransport, update: str
) -> None:
    request: dict[str, Any] = {"Key": {"pk": {"S": "a"}}, "UpdateExpression": update}
    if ":one" in update:
        request["ExpressionAttributeValues"] = {":one": {"N": "1"}}
    assert _refusal(memory, "UpdateItem", request) == (
        "The provided expression refers to an attribute that does not exist in the item"
    )


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (
            "SET a = :v SET b = :v",
            'The "SET" section can only be used once in an update expression;',
        ),
        (
            "SET a = :v, a = :v",
            "Two document paths overlap with each other; must remove or "
            "rewrite one of these paths; path one: [a], path two: [a]",
        ),
        (
            "SET a = :v REMOVE a",
            "Two document paths overlap with each other; must remove or "
            "rewrite one of these paths; path one: [a], path two: [a]",
        ),
        ("UPSERT a = :v", 'Syntax error; token: "UPSERT", near: "UPSERT a = :v"'),
        ("SET a :v", 'Syntax error; token: ":v", near: "SET a :v"'),
        ("ADD a b", 'Syntax error; token: "b", near: "ADD a b"'),
        ("DELETE a", 'Syntax error; token: "<EOF>", near: "DELETE a"'),
        (
            "SET a = if_not_exists(:v, :v)",
            'Syntax error; token: ":v", near: "SET a = if_not_exists(:v, :v)"',
        ),
        (
            "SET a = list_append(:v :v)",
            'Syntax error; token: ":v", near: "SET a = list_append(:v :v)"',
        ),
    ],
)
def test_a_malformed_update_is_refused(memory: MemoryTransport, update: str, message: str) -> None:
    got = _refusal(
        memory,
        "UpdateItem",
        {
            "Key": {"pk": {"S": "a"}},
            "UpdateExpression": update,
            "ExpressionAttributeValues": {":v": {"N": "1"}},
        },
    )
    assert got == f"Invalid UpdateExpression: {message}"


def test_an_update_of_a_key_attribute_is_refused(memory: MemoryTransport) -> None:
    message = _refusal(
        memory,
        "UpdateItem",
        {
            "Key": {"pk": {"S": "a"}},
            "UpdateExpression": "SET pk = :v",
            "ExpressionAttributeValues": {":v": {"S": "b"}},
        },
    )
    assert message == (
        "One or more parameter values were invalid: Cannot update attribute pk. "
        "This attribute is part of the key"
    )


# -- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "delta", "result"),
    [
        ("5", "1E+2", "105"),
        ("0.1", "0.2", "0.3"),
        ("-5", "5", "0"),
        ("9" * 38, "1", "1" + "0" * 38),  # one significant digit
        (
            "1E+125",
            "0",
            "100000000000000000000000000000000000000000000000000000000000000000"
            "000000000000000000000000000000000000000000000000000000000000",
        ),
    ],
)
def test_add_computes_exactly_and_returns_canonical_numbers(
    memory: MemoryTransport, start: str, delta: str, result: str
) -> None:
    _updated(memory, "SET x = :v", {":v": {"N": start}})
    assert _updated(memory, "ADD x :d", {":d": {"N": delta}})["x"] == {"N": result}


@pytest.mark.parametrize(
    ("start", "delta", "message"),
    [
        ("9" * 38, "0.5", "Attempting to store more than 38 significant digits in a Number"),
        ("1" + "0" * 37, "0.1", "Attempting to store more than 38 significant digits in a Number"),
        (
            "9E+125",
            "9E+125",
            "Number overflow. Attempting to store a number with magnitude "
            "larger than supported range",
        ),
        (
            "1E-130",
            "-9.9E-131",
            "Number underflow. Attempting to store a number with magnitude smaller than "
            "supported range",
        ),
    ],
)
def test_a_sum_dynamodb_cannot_store_is_refused(
    memory: MemoryTransport, start: str, delta: str, message: str
) -> None:
    _updated(memory, "SET x = :v", {":v": {"N": start}})
    request = {
        "Key": {"pk": {"S": "a"}},
        "UpdateExpression": "ADD x :d",
        "ExpressionAttributeValues": {":d": {"N": delta}},
    }
    assert _refusal(memory, "UpdateItem", request) == message


@pytest.mark.parametrize(
    ("number", "message"),
    [
        (
            "1E+126",
            "Number overflow. Attempting to store a number with magnitude larger than "
            "supported range",
        ),
        (
            "1E-131",
            "Number underflow. Attempting to store a number with magnitude smaller than "
            "supported range",
        ),
        ("1" * 39, "Attempting to store more than 38 significant digits in a Number"),
        ("abc", "A value provided cannot be converted into a number"),
        ("NaN", "A value provided cannot be converted into a number"),
        ("Infinity", "A value provided cannot be converted into a number"),
    ],
)
def test_a_number_dynamodb_cannot_store_is_refused(
    memory: MemoryTransport, number: str, message: str
) -> None:
    request = {"Item": {"pk": {"S": "p"}, "x": {"N": number}}}
    assert _refusal(memory, "PutItem", request) == message
    assert memory.items(TABLE)[1:] == []


def test_numbers_at_the_edges_of_the_range_are_stored(memory: MemoryTransport) -> None:
    new = _updated(
        memory, "SET lo = :lo, hi = :hi", {":lo": {"N": "1E-130"}, ":hi": {"N": "-9.9E+125"}}
    )
    assert new["lo"] == {"N": "0." + "0" * 129 + "1"}
    assert new["hi"] == {"N": "-99" + "0" * 124}


# -- requests the memory transport refuses --------------------------------------------------

_KEY = {"pk": {"S": "a"}}


@pytest.mark.parametrize(
    ("action", "request_", "message"),
    [
        ("GetItem", {"Key": "a"}, "The provided key element does not match the schema"),
        ("GetItem", {"Key": {"other": {"S": "a"}}}, "The provided key element does not match"),
        ("GetItem", {"Key": {"pk": {"N": "1"}}}, "The provided key element does not match"),
        ("PutItem", {"Item": {"x": {"S": "a"}}}, "Missing the key pk in the item"),
        ("PutItem", {"Item": {"pk": {"N": "1"}}}, "Type mismatch for key pk expected: S actual: N"),
        ("PutItem", {"Item": {"pk": "a"}}, "more than one datatypes set"),
        ("PutItem", {"Item": {"pk": {"S": ""}}}, "cannot contain an empty string value. Key: pk"),
        ("PutItem", {"Item": "a"}, "the item is not a map"),
        ("PutItem", {"Item": {**_KEY, "x": {"SS": ["a", 1]}}}, "has a member of the wrong type"),
        ("PutItem", {"Item": {**_KEY, "x": {"SS": []}}}, "An string set  may not be empty"),
        ("PutItem", {"Item": {**_KEY, "x": {"NS": []}}}, "An number set  may not be empty"),
        ("PutItem", {"Item": {**_KEY, "x": {"NS": ["1", "1.0"]}}}, "contains duplicates"),
        ("PutItem", {"Item": {**_KEY, "x": {"NULL": False}}}, "has a value of the wrong type"),
        ("PutItem", {"Item": {**_KEY, "x": {"M": {"y": {"N": 1}}}}}, "of the wrong type"),
        ("PutItem", {"Item": {**_KEY, "x": {"S": "a", "N": "1"}}}, "more than one datatypes"),
        ("PutItem", {"Item": _KEY, "ReturnValues": "ALL_NEW"}, "Return values set to invalid"),
        (
            "PutItem",
            {"Item": _KEY, "ReturnValuesOnConditionCheckFailure": "ALL_NEW"},
            "ReturnValuesOnConditionCheckFailure set to invalid value: ALL_NEW",
        ),
        ("Scan", {"Limit": 0}, "Member must have value greater than or equal to 1"),
        ("BatchGetItem", {"RequestItems": {}}, "Value null at 'requestItems' failed"),
        (
            "BatchGetItem",
            {"RequestItems": {TABLE: {"Keys": [_KEY] * 101}}},
            "Too many items requested for the BatchGetItem call",
        ),
        (
            "BatchGetItem",
            {"RequestItems": {TABLE: {"Keys": []}}},
            "Member must have length greater than or equal to 1",
        ),
        ("BatchWriteItem", {"RequestItems": None}, "Value null at 'requestItems' failed"),
        (
            "BatchWriteItem",
            {"RequestItems": {TABLE: [{"DeleteRequest": {"Key": _KEY}}] * 26}},
            "Member must have length less than or equal to 25",
        ),
        (
            "BatchWriteItem",
            {"RequestItems": {TABLE: [{"UpdateRequest": {"Key": _KEY}}]}},
            "A write request must be a PutRequest or a DeleteRequest",
        ),
        ("TransactGetItems", {"TransactItems": []}, "Member must have length less than"),
        (
            "TransactGetItems",
            {"TransactItems": [{"Put": {"TableName": TABLE, "Item": _KEY}}]},
            "TransactItems can only contain Get actions",
        ),
        (
            "TransactGetItems",
            {"TransactItems": [{"Get": {"TableName": TABLE, "Key": _KEY}}] * 2},
            "Transaction request cannot include multiple operations on one item",
        ),
        ("TransactWriteItems", {"TransactItems": [{}] * 101}, "Member must have length less"),
        (
            "TransactWriteItems",
            {
                "TransactItems": [{"Delete": {"TableName": TABLE, "Key": _KEY}}],
                "ClientRequestToken": "",
            },
            "ClientRequestToken must be 1 to 36 characters",
        ),
        ("TransactWriteItems", {"TransactItems": [{}]}, "Every TransactItem must hold exactly one"),
        (
            "TransactWriteItems",
            {"TransactItems": [{"Get": {"TableName": TABLE, "Key": _KEY}}]},
            "Unknown transaction action: Get",
        ),
        (
            "TransactWriteItems",
            {"TransactItems": [{"ConditionCheck": {"TableName": TABLE, "Key": _KEY}}]},
            "A ConditionCheck needs a ConditionExpression",
        ),
        ("CreateTable", {"TableName": "ab"}, "TableName must be at least 3 characters long"),
        (
            "CreateTable",
            {"TableName": "new", "KeySchema": [{"AttributeName": "r", "KeyType": "RANGE"}]},
            "Invalid KeySchema: the first key must be HASH",
        ),
        (
            "CreateTable",
            {"TableName": "new", "KeySchema": [{"AttributeName": "h", "KeyType": "HASH"}]},
            "Some index key attributes are not defined in AttributeDefinitions",
        ),
        (
            "CreateTable",
            {
                "TableName": "new",
                "KeySchema": [{"AttributeName": "h", "KeyType": "HASH"}],
                "AttributeDefinitions": [
                    {"AttributeName": "h", "AttributeType": "S"},
                    {"AttributeName": "x", "AttributeType": "S"},
                ],
            },
            "Number of attributes in KeySchema does not exactly match",
        ),
        ("UpdateTimeToLive", {"TimeToLiveSpecification": {"Enabled": True}}, "needs Enabled"),
        (
            "UpdateTimeToLive",
            {"TimeToLiveSpecification": {"Enabled": False, "AttributeName": "ttl"}},
            "TimeToLive is already disabled",
        ),
    ],
)
def test_a_malformed_request_is_refused_and_changes_nothing(
    memory: MemoryTransport, action: str, request_: dict[str, Any], message: str
) -> None:
    before = memory.items(TABLE)
    assert message in _refusal(memory, action, request_)
    assert memory.items(TABLE) == before
    assert _send(memory, "ListTables", {})["TableNames"] == [TABLE]


def test_an_unknown_operation_and_an_unknown_table_are_refused(memory: MemoryTransport) -> None:
    with pytest.raises(ServiceError) as caught:
        _send(memory, "Query", {})
    assert caught.value.code == "UnknownOperationException"
    with pytest.raises(ServiceError) as caught:
        asyncio.run(memory.send("GetItem", {"TableName": "nope", "Key": _KEY}))
    assert caught.value.code == "ResourceNotFoundException"
    assert memory.items("nope") == []


def test_put_returns_the_old_item_and_capacity_by_index(memory: MemoryTransport) -> None:
    reply = _send(
        memory,
        "PutItem",
        {
            "Item": {**_KEY, "x": {"S": "new"}},
            "ReturnValues": "ALL_OLD",
            "ReturnConsumedCapacity": "INDEXES",
        },
    )
    assert reply["Attributes"]["s"] == {"S": "hello"}
    assert reply["ConsumedCapacity"] == {
        "TableName": TABLE,
        "CapacityUnits": 1.0,
        "WriteCapacityUnits": 1.0,
        "Table": {"CapacityUnits": 1.0},
    }


def test_an_update_without_an_expression_creates_the_key_item(memory: MemoryTransport) -> None:
    reply = _send(memory, "UpdateItem", {"Key": {"pk": {"S": "k"}}, "ReturnValues": "ALL_NEW"})
    assert reply == {"Attributes": {"pk": {"S": "k"}}}
    reply = _send(memory, "UpdateItem", {"Key": _KEY, "ReturnValues": "UPDATED_NEW"})
    assert reply == {}


def test_time_to_live_is_described_after_each_change(memory: MemoryTransport) -> None:
    describe = _send(memory, "DescribeTimeToLive", {})
    assert describe == {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}
    spec = {"Enabled": True, "AttributeName": "exp"}
    _send(memory, "UpdateTimeToLive", {"TimeToLiveSpecification": spec})
    assert "already enabled" in _refusal(
        memory, "UpdateTimeToLive", {"TimeToLiveSpecification": spec}
    )
    assert _send(memory, "DescribeTimeToLive", {}) == {
        "TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": "exp"}
    }
