"""The memory transport request by request, against moto and dynalite through the lean transport.

Each case sends the same raw DynamoDB requests to the memory transport and to a server
and compares what came back: the reply (without metadata and capacity), or the error's
code, old item and cancellation reasons. What a server does not serve, or does
differently from DynamoDB, is declared in ``tests/conftest.py`` (``CAPABILITIES``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from aiodynkv import AsyncDynamoKV, ValueTooLargeError
from aiodynkv._errors import map_error
from aiodynkv._transport import ServiceError
from aiodynkv._transport.memory import MemoryTransport
from tests.conftest import CAPABILITIES, Backend

pytestmark = pytest.mark.asyncio

Send = Callable[[str, dict[str, Any]], Awaitable[Any]]


def _outcome(reply: Any) -> Any:
    if isinstance(reply, ServiceError):
        reasons = reply.body.get("CancellationReasons")
        return ("error", reply.code, reply.item, reasons)
    dropped = ("ResponseMetadata", "ConsumedCapacity", "ItemCollectionMetrics")
    return {k: v for k, v in reply.items() if k not in dropped}


async def _sender(kv: AsyncDynamoKV) -> Send:
    transport = kv._core.transport
    assert transport is not None

    async def send(action: str, request: dict[str, Any]) -> Any:
        try:
            return _outcome(await transport.send(action, request))
        except ServiceError as exc:
            return _outcome(exc)

    return send


@pytest_asyncio.fixture(params=["moto", "dynalite"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Send, Send, str]]:
    """(server name, send to memory, send to the server, table) on fresh tables of one name."""
    server: str = request.param
    endpoint = request.getfixturevalue(f"{server}_endpoint")
    marker = request.node.get_closest_marker("backend_needs")
    Backend(server, endpoint, CAPABILITIES[server]).check(tuple(marker.args) if marker else ())
    table = f"mt-{uuid.uuid4().hex[:12]}"
    memory = AsyncDynamoKV(
        table=table, create_table=True, transport="memory", client=MemoryTransport()
    )
    real = AsyncDynamoKV(table=table, create_table=True, endpoint=endpoint)
    async with memory, real:
        real_send = await _sender(real)
        yield server, await _sender(memory), real_send, table
        await real_send("DeleteTable", {"TableName": table})


async def _both(pair: tuple[str, Send, Send, str], action: str, request: dict[str, Any]) -> Any:
    server, memory, real, _ = pair
    ours, theirs = await memory(action, request), await real(action, request)
    assert ours == theirs, f"{action} {request}: memory {ours!r}, {server} {theirs!r}"
    return ours


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


async def test_return_values_of_update_item(pair: tuple[str, Send, Send, str]) -> None:
    table = pair[3]
    for returns in ("NONE", "ALL_OLD", "ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"):
        item = {**_key(returns), "x": {"N": "1"}, "y": {"S": "old"}, "keep": {"B": b"k"}}
        await _both(pair, "PutItem", {"TableName": table, "Item": item})
        reply = await _both(
            pair,
            "UpdateItem",
            {
                "TableName": table,
                "Key": _key(returns),
                "UpdateExpression": "SET #x = #x + :one, z = if_not_exists(z, :one) REMOVE y",
                "ExpressionAttributeNames": {"#x": "x"},
                "ExpressionAttributeValues": {":one": {"N": "1"}},
                "ReturnValues": returns,
            },
        )
        assert ("Attributes" in reply) is (returns != "NONE")
    await _both(
        pair, "GetItem", {"TableName": table, "Key": _key("ALL_NEW"), "ConsistentRead": True}
    )


@pytest.mark.backend_needs("updated_values")
async def test_updated_values_are_exactly_the_attributes_the_update_names(
    pair: tuple[str, Send, Send, str],
) -> None:
    table = pair[3]
    await _both(pair, "PutItem", {"TableName": table, "Item": {**_key("a"), "v": {"N": "5"}}})
    reply = await _both(
        pair,
        "UpdateItem",
        {
            "TableName": table,
            "Key": _key("a"),
            "UpdateExpression": "ADD v :zero",
            "ExpressionAttributeValues": {":zero": {"N": "0"}},
            "ReturnValues": "UPDATED_NEW",
        },
    )
    assert reply == {"Attributes": {"v": {"N": "5"}}}
    # An upsert: UPDATED_OLD has nothing, UPDATED_NEW the new attributes (not the key).
    for returns, pk in (("UPDATED_OLD", "new1"), ("UPDATED_NEW", "new2"), ("ALL_OLD", "new3")):
        await _both(
            pair,
            "UpdateItem",
            {
                "TableName": table,
                "Key": _key(pk),
                "UpdateExpression": "ADD n :d SET s = :s",
                "ExpressionAttributeValues": {":d": {"N": "-2"}, ":s": {"S": "v"}},
                "ReturnValues": returns,
            },
        )


@pytest.mark.backend_needs("old_item_on_failure")
async def test_a_failed_condition_returns_the_old_item_only_when_asked(
    pair: tuple[str, Send, Send, str],
) -> None:
    table = pair[3]
    item = {**_key("a"), "v": {"B": b"\x00\xff"}, "n": {"N": "3"}}
    await _both(pair, "PutItem", {"TableName": table, "Item": item})
    for on_failure in ("ALL_OLD", "NONE"):
        for action, extra in (
            ("UpdateItem", {"UpdateExpression": "SET n = :one"}),
            ("DeleteItem", {}),
            ("PutItem", {"Item": item}),
        ):
            request = {
                "TableName": table,
                "ConditionExpression": "attribute_not_exists(pk) OR (n < :one AND NOT n = :one)",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
                "ReturnValuesOnConditionCheckFailure": on_failure,
                **({"Key": _key("a")} if action != "PutItem" else {}),
                **extra,
            }
            reply = await _both(pair, action, request)
            assert reply[:2] == ("error", "ConditionalCheckFailedException")
            assert reply[2] == (item if on_failure == "ALL_OLD" else None)
    # Missing item: the condition on it fails without an item to return.
    reply = await _both(
        pair,
        "DeleteItem",
        {
            "TableName": table,
            "Key": _key("missing"),
            "ConditionExpression": "attribute_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
    )
    assert reply == ("error", "ConditionalCheckFailedException", None, None)


async def test_requests_the_server_refuses(pair: tuple[str, Send, Send, str]) -> None:
    table = pair[3]
    await _both(pair, "PutItem", {"TableName": table, "Item": {**_key("s"), "v": {"S": "text"}}})
    refused: list[tuple[str, dict[str, Any]]] = [
        ("GetItem", {"TableName": "no-such-table", "Key": _key("a")}),
        ("GetItem", {"TableName": table, "Key": {**_key("a"), "other": {"S": "x"}}}),
        ("PutItem", {"TableName": table, "Item": {"pk": {"S": ""}}}),
        ("PutItem", {"TableName": table, "Item": {"pk": {"S": "k" * 2049}}}),
        ("PutItem", {"TableName": table, "Item": {**_key("big"), "v": {"B": b"x" * 420_000}}}),
        (
            "UpdateItem",
            {
                "TableName": table,
                "Key": _key("s"),
                "UpdateExpression": "ADD v :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            },
        ),
        (
            "UpdateItem",
            {
                "TableName": table,
                "Key": _key("s"),
                "UpdateExpression": "SET pk = :v",
                "ExpressionAttributeValues": {":v": {"S": "other"}},
            },
        ),
        (
            "UpdateItem",
            {
                "TableName": table,
                "Key": _key("s"),
                "UpdateExpression": "SET v = :v",
                "ExpressionAttributeValues": {":v": {"S": "x"}, ":unused": {"S": "y"}},
            },
        ),
        (
            "UpdateItem",
            {
                "TableName": table,
                "Key": _key("s"),
                "UpdateExpression": "SET v = :v, v = :v",
                "ExpressionAttributeValues": {":v": {"S": "x"}},
            },
        ),
        ("BatchGetItem", {"RequestItems": {table: {"Keys": [_key("d"), _key("d")]}}}),
        (
            "GetItem",
            {
                "TableName": table,
                "Key": _key("s"),
                "ProjectionExpression": "v",
                "ExpressionAttributeNames": {"#unused": "v"},
            },
        ),
    ]
    for action, request in refused:
        reply = await _both(pair, action, request)
        assert reply[0] == "error", (action, request)
    too_big = await pair[1](*refused[5])
    error = ServiceError(too_big[1], "Item size has exceeded the maximum allowed size", status=400)
    assert isinstance(map_error(error, operation="set", table=table, key=None), ValueTooLargeError)
    await _both(pair, "GetItem", {"TableName": table, "Key": _key("s"), "ConsistentRead": True})


async def test_batches_and_scan_pages(pair: tuple[str, Send, Send, str]) -> None:
    table = pair[3]
    for start in range(0, 30, 10):
        writes = [
            {"PutRequest": {"Item": {**_key(f"k{i:02}"), "n": {"N": str(i)}}}}
            for i in range(start, start + 10)
        ]
        assert await _both(pair, "BatchWriteItem", {"RequestItems": {table: writes}}) == {
            "UnprocessedItems": {}
        }
    keys = [_key(f"k{i:02}") for i in range(0, 40, 3)]
    _, memory, real, _ = pair
    request = {"RequestItems": {table: {"Keys": keys, "ConsistentRead": True}}}
    ours, theirs = await memory("BatchGetItem", request), await real("BatchGetItem", request)

    def found(reply: Any) -> list[Any]:
        return sorted(reply["Responses"][table], key=lambda item: item["pk"]["S"])

    assert found(ours) == found(theirs)
    assert ours["UnprocessedKeys"] == theirs["UnprocessedKeys"] == {}

    async def pages(send: Send) -> list[list[str]]:
        seen: list[list[str]] = []
        scan: dict[str, Any] = {
            "TableName": table,
            "Limit": 7,
            "FilterExpression": "n >= :low AND begins_with(pk, :p)",
            "ProjectionExpression": "pk",
            "ExpressionAttributeValues": {":low": {"N": "4"}, ":p": {"S": "k"}},
        }
        while True:
            page = await send("Scan", scan)
            assert page["ScannedCount"] <= 7
            seen.append([item["pk"]["S"] for item in page["Items"]])
            if "LastEvaluatedKey" not in page:
                return seen
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    ours_pages, theirs_pages = await pages(memory), await pages(real)
    expected = [f"k{i:02}" for i in range(4, 30)]
    assert sorted(k for page in ours_pages for k in page) == expected
    assert sorted(k for page in theirs_pages for k in page) == expected
    assert len(ours_pages) >= 5


@pytest.mark.backend_needs("transactions")
async def test_transactions_cancel_whole_and_keep_their_token(
    pair: tuple[str, Send, Send, str],
) -> None:
    table = pair[3]
    await _both(pair, "PutItem", {"TableName": table, "Item": {**_key("a"), "n": {"N": "1"}}})
    add = {
        "Update": {
            "TableName": table,
            "Key": _key("a"),
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }
    failing = {
        "ConditionCheck": {
            "TableName": table,
            "Key": _key("a"),
            "ConditionExpression": "n > :big",
            "ExpressionAttributeValues": {":big": {"N": "100"}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }
    put_b = {"Put": {"TableName": table, "Item": {**_key("b"), "s": {"S": "x"}}}}
    reply = await _both(pair, "TransactWriteItems", {"TransactItems": [put_b, failing]})
    assert reply[:2] == ("error", "TransactionCanceledException")
    assert [reason["Code"] for reason in reply[3]] == ["None", "ConditionalCheckFailed"]
    assert reply[3][1]["Item"] == {**_key("a"), "n": {"N": "1"}}
    same_item = {"TransactItems": [add, {"Delete": {"TableName": table, "Key": _key("a")}}]}
    assert (await _both(pair, "TransactWriteItems", same_item))[:2] == (
        "error",
        "ValidationException",
    )
    await _both(pair, "TransactWriteItems", {"TransactItems": [add, put_b]})
    gets = {"TransactItems": [{"Get": {"TableName": table, "Key": _key(k)}} for k in "abc"]}
    assert await _both(pair, "TransactGetItems", gets) == {
        "Responses": [
            {"Item": {**_key("a"), "n": {"N": "2"}}},
            {"Item": {**_key("b"), "s": {"S": "x"}}},
            {},
        ]
    }


@pytest.mark.backend_needs("ttl_api")
async def test_table_and_ttl_management(pair: tuple[str, Send, Send, str]) -> None:
    table = pair[3]
    reply = await _both(pair, "DescribeTimeToLive", {"TableName": table})
    assert reply["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"  # ensure_table did
    create = {
        "TableName": table,
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    assert (await _both(pair, "CreateTable", create))[:2] == ("error", "ResourceInUseException")
    missing = await _both(pair, "DescribeTable", {"TableName": "no-such-table"})
    assert missing[:2] == ("error", "ResourceNotFoundException")


async def test_items_are_copied_in_and_out() -> None:
    transport = MemoryTransport()
    async with AsyncDynamoKV(
        table="copies", create_table=True, transport="memory", client=transport
    ):
        item = {**_key("a"), "l": {"L": [{"S": "x"}]}}
        await transport.send("PutItem", {"TableName": "copies", "Item": item})
        item["l"]["L"].append({"S": "changed by the caller"})
        got = await transport.send("GetItem", {"TableName": "copies", "Key": _key("a")})
        got["Item"]["l"]["L"].clear()
        again = await transport.send("GetItem", {"TableName": "copies", "Key": _key("a")})
        assert again["Item"]["l"] == {"L": [{"S": "x"}]}


async def test_concurrent_conditional_writes_each_see_the_other() -> None:
    """Each request is atomic and yields to the loop once: exactly one creator wins."""
    transport = MemoryTransport()
    async with AsyncDynamoKV(table="race", create_table=True, transport="memory", client=transport):
        request = {
            "TableName": "race",
            "Item": _key("only"),
            "ConditionExpression": "attribute_not_exists(pk)",
        }

        async def create() -> str:
            try:
                await transport.send("PutItem", request)
            except ServiceError as exc:
                return exc.code
            return "created"

        codes = sorted(await asyncio.gather(*(create() for _ in range(20))))
        assert codes == ["ConditionalCheckFailedException"] * 19 + ["created"]


async def test_what_dynamodb_refuses_and_servers_let_through() -> None:
    """DynamoDB's checks that moto or dynalite skip, on the memory transport alone."""
    transport = MemoryTransport()
    async with AsyncDynamoKV(
        table="strict", create_table=True, transport="memory", client=transport
    ):
        bad_key = {"TableName": "strict", "Key": {"pk": {"N": "1"}}}  # the key is a string
        syntax = {
            "TableName": "strict",
            "Key": _key("a"),
            "ConditionExpression": "attribute_exists(pk",
        }
        undefined = {**syntax, "ConditionExpression": "v = :undefined"}
        unnamed = {
            **syntax,
            "ConditionExpression": "#missing = :v",
            "ExpressionAttributeValues": {":v": {"S": "x"}},
        }
        ttl = {
            "TableName": "strict",
            "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "expires_at"},
        }
        add = {
            "Update": {
                "TableName": "strict",
                "Key": _key("a"),
                "UpdateExpression": "ADD n :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        }
        # The same token and payload within 10 minutes: applied once, answered again
        # (moto applies it again; dynalite has no transactions).
        once = {"TransactItems": [add], "ClientRequestToken": "t1"}
        for _ in range(3):
            await transport.send("TransactWriteItems", once)
        got = await transport.send("GetItem", {"TableName": "strict", "Key": _key("a")})
        assert got["Item"]["n"] == {"N": "1"}
        other = {"TransactItems": [add, {**add, "Update": {**add["Update"], "Key": _key("b")}}]}
        # dynalite refuses duplicates too; moto accepts them
        duplicates = {
            "RequestItems": {
                "strict": [
                    {"PutRequest": {"Item": _key("d")}},
                    {"DeleteRequest": {"Key": _key("d")}},
                ]
            }
        }
        for action, request, message in (
            ("GetItem", bad_key, "does not match the schema"),
            ("DeleteItem", syntax, "Syntax error"),  # moto answers 500
            ("DeleteItem", undefined, "not defined"),  # moto answers 500
            ("DeleteItem", unnamed, "not defined"),  # moto answers 500
            ("BatchWriteItem", duplicates, "duplicates"),
            ("UpdateTimeToLive", ttl, "already enabled"),  # ensure_table enabled it
        ):
            with pytest.raises(ServiceError, match=message) as caught:
                await transport.send(action, request)
            assert caught.value.code == "ValidationException"
            assert caught.value.status == 400
        mismatch = {**other, "ClientRequestToken": "t1"}  # same token, other payload
        with pytest.raises(ServiceError) as caught:
            await transport.send("TransactWriteItems", mismatch)
        assert caught.value.code == "IdempotentParameterMismatchException"


async def test_stores_share_the_process_wide_transport_unless_given_their_own() -> None:
    shared = await AsyncDynamoKV(table="shared-t", create_table=True, transport="memory").open()
    other = await AsyncDynamoKV(table="shared-t", transport="memory").open()
    own = MemoryTransport()
    alone = await AsyncDynamoKV(
        table="shared-t", create_table=True, transport="memory", client=own
    ).open()
    try:
        await shared.set("k", "v")
        assert await other.get("k") == "v"  # two stores, one "server"
        assert await alone.get("k", None) is None
        assert alone.client is own
    finally:
        for kv in (shared, other, alone):
            await kv.aclose()
        await MemoryTransport.shared().send("DeleteTable", {"TableName": "shared-t"})


async def test_item_sizes_agree_with_the_store_s_own_count() -> None:
    """Two independent counts of DynamoDB's item size (the store's check, the transport's)."""
    import random

    from aiodynkv._codec import item_size
    from aiodynkv._transport.memory import _item_size

    rng = random.Random(7)
    for _ in range(500):
        item: dict[str, Any] = {}
        for position in range(rng.randint(1, 5)):
            name = rng.choice(("pk", "value", "é", "ver", "x" * 30)) + str(position)
            kind = rng.choice("SBN")
            if kind == "S":
                item[name] = {"S": "".join(rng.choice("aé✓𝄞") for _ in range(rng.randint(0, 40)))}
            elif kind == "B":
                item[name] = {"B": rng.randbytes(rng.randint(0, 40))}
            else:
                digits = str(rng.randint(0, 10 ** rng.randint(1, 38)))
                point = rng.randint(0, len(digits))
                number = f"{rng.choice(('', '-'))}{digits[:point] or '0'}.{digits[point:] or '0'}"
                item[name] = {"N": number}
        assert _item_size(item) == item_size(item), item


@pytest.mark.parametrize(
    "value",
    [{"N": "abc"}, {"N": 5}, {"S": 5}, {"B": "text"}, {"SS": []}, {"NS": ["1", "1.0"]}, {}],
)
async def test_malformed_attribute_values_are_validation_errors(value: dict[str, Any]) -> None:
    transport = MemoryTransport()
    async with AsyncDynamoKV(
        table="shapes", create_table=True, transport="memory", client=transport
    ):
        for action, request in (
            ("PutItem", {"TableName": "shapes", "Item": {**_key("a"), "v": value}}),
            ("GetItem", {"TableName": "shapes", "Key": {"pk": value}}),
        ):
            with pytest.raises(ServiceError) as caught:
                await transport.send(action, request)
            assert caught.value.code == "ValidationException"
