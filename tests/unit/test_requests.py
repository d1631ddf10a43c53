"""The request builders, without a server: whole-dict snapshots and expression hygiene.

DynamoDB refuses a request whose ``ExpressionAttributeNames`` or
``ExpressionAttributeValues`` holds an entry no expression uses, or whose
expressions use one that is not defined; `assert_expressions_consistent` checks
both on every builder's output.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from aiodynkv import KVConfig
from aiodynkv import _requests as requests
from aiodynkv._codec import Item
from aiodynkv._keys import SEPARATOR

CONFIG = KVConfig(table="kvt")
NOW = 1000.5
TOKEN = "TOK"
BASE = 7

_EXPRESSIONS = (
    "UpdateExpression",
    "ConditionExpression",
    "ProjectionExpression",
    "FilterExpression",
    "KeyConditionExpression",
)
_NAME = re.compile(r"#[A-Za-z0-9_]+")
_VALUE = re.compile(r":[A-Za-z0-9_]+")

UNEXPIRED = "(attribute_not_exists(#t) OR #m > :nowms OR (attribute_not_exists(#m) AND #t > :now))"
NOT_MINE = "(attribute_not_exists(#tk) OR #tk <> :tok)"
BUMP = "#r = if_not_exists(#r, :base) + :one"
ALL_NAMES = {
    "#k": "pk",
    "#m": "xm",
    "#r": "ver",
    "#t": "expires_at",
    "#tk": "tk",
    "#v": "value",
    "#z": "z",
}
CLOCK = {":now": {"N": "1000.5"}, ":nowms": {"N": "1000500"}}
WRITE_VALUES = {":base": {"N": "7"}, ":one": {"N": "1"}, ":tok": {"S": "TOK"}}


def assert_expressions_consistent(request: dict[str, Any]) -> None:
    """Every defined ``#name``/``:value`` is used by an expression, and every used one defined."""
    text = " ".join(request[part] for part in _EXPRESSIONS if part in request)
    used_names = set(_NAME.findall(text))
    used_values = set(_VALUE.findall(text))
    names = request.get("ExpressionAttributeNames")
    values = request.get("ExpressionAttributeValues")
    # An empty map is refused too: the key must be left out instead.
    assert names is None or names, "empty ExpressionAttributeNames"
    assert values is None or values, "empty ExpressionAttributeValues"
    assert set(names or {}) == used_names, (set(names or {}), used_names)
    assert set(values or {}) == used_values, (set(values or {}), used_values)


def plain_item(**extra: dict[str, Any]) -> Item:
    item: Item = {
        "pk": {"S": "k"},
        "value": {"S": "v"},
        "ver": {"N": "7"},
        "tk": {"S": "TOK"},
    }
    item.update(extra)
    return item


EXPIRY = {"expires_at": {"N": "1011"}, "xm": {"N": "1010500"}}


# -- the checker itself -----------------------------------------------------------


def test_checker_catches_unused_and_undefined_names_and_values() -> None:
    good = {"ConditionExpression": "#a = :b", "ExpressionAttributeNames": {"#a": "a"}}
    with pytest.raises(AssertionError):
        assert_expressions_consistent(good)  # :b undefined
    good["ExpressionAttributeValues"] = {":b": {"S": "x"}}
    assert_expressions_consistent(good)
    with pytest.raises(AssertionError):
        assert_expressions_consistent({**good, "ExpressionAttributeNames": {"#a": "a", "#c": "c"}})
    with pytest.raises(AssertionError):
        assert_expressions_consistent({"TableName": "kvt", "ExpressionAttributeValues": {}})
    # A longer token is not a use of its prefix.
    with pytest.raises(AssertionError):
        assert_expressions_consistent(
            {
                "ConditionExpression": "#tk = :tok",
                "ExpressionAttributeNames": {"#t": "t", "#tk": "tk"},
                "ExpressionAttributeValues": {":tok": {"S": "x"}},
            }
        )


# -- put --------------------------------------------------------------------------


def test_put_plain_removes_expiry_and_flag_and_guards_against_its_own_retry() -> None:
    request = requests.put(CONFIG, plain_item(), now=NOW, token=TOKEN, base=BASE)
    assert request == {
        "TableName": "kvt",
        "Key": {"pk": {"S": "k"}},
        "UpdateExpression": f"SET #v = :v, {BUMP}, #tk = :tok REMOVE #t, #m, #z",
        "ConditionExpression": NOT_MINE,
        "ExpressionAttributeNames": {
            "#v": "value",
            "#r": "ver",
            "#tk": "tk",
            "#t": "expires_at",
            "#m": "xm",
            "#z": "z",
        },
        "ExpressionAttributeValues": {":v": {"S": "v"}, **WRITE_VALUES},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_put_with_expiry_and_compression_sets_both_expiry_attributes_and_the_flag() -> None:
    item = plain_item(**EXPIRY, z={"S": "s"})
    item["value"] = {"B": b"packed"}
    request = requests.put(CONFIG, item, now=NOW, token=TOKEN, base=BASE)
    assert request == {
        "TableName": "kvt",
        "Key": {"pk": {"S": "k"}},
        "UpdateExpression": f"SET #v = :v, {BUMP}, #tk = :tok, #t = :t, #m = :m, #z = :z",
        "ConditionExpression": NOT_MINE,
        "ExpressionAttributeNames": {
            "#v": "value",
            "#r": "ver",
            "#tk": "tk",
            "#t": "expires_at",
            "#m": "xm",
            "#z": "z",
        },
        "ExpressionAttributeValues": {
            ":v": {"B": b"packed"},
            ":t": {"N": "1011"},
            ":m": {"N": "1010500"},
            ":z": {"S": "s"},
            **WRITE_VALUES,
        },
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_put_with_expiry_only_removes_the_flag() -> None:
    request = requests.put(CONFIG, plain_item(**EXPIRY), now=NOW, token=TOKEN, base=BASE)
    assert request["UpdateExpression"] == (
        f"SET #v = :v, {BUMP}, #tk = :tok, #t = :t, #m = :m REMOVE #z"
    )
    assert request["ExpressionAttributeValues"] == {
        ":v": {"S": "v"},
        ":t": {"N": "1011"},
        ":m": {"N": "1010500"},
        **WRITE_VALUES,
    }


def test_put_if_absent_accepts_a_missing_or_expired_key() -> None:
    request = requests.put(CONFIG, plain_item(), now=NOW, token=TOKEN, base=BASE, if_absent=True)
    assert request == {
        "TableName": "kvt",
        "Key": {"pk": {"S": "k"}},
        "UpdateExpression": f"SET #v = :v, {BUMP}, #tk = :tok REMOVE #t, #m, #z",
        "ConditionExpression": f"(attribute_not_exists(#k) OR NOT {UNEXPIRED})",
        "ExpressionAttributeNames": ALL_NAMES,
        "ExpressionAttributeValues": {":v": {"S": "v"}, **CLOCK, **WRITE_VALUES},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_put_if_version_zero_also_matches_an_unversioned_item() -> None:
    request = requests.put(CONFIG, plain_item(), now=NOW, token=TOKEN, base=BASE, if_version=0)
    assert request == {
        "TableName": "kvt",
        "Key": {"pk": {"S": "k"}},
        "UpdateExpression": f"SET #v = :v, {BUMP}, #tk = :tok REMOVE #t, #m, #z",
        "ConditionExpression": (
            f"attribute_exists(#k) AND (#r = :expected OR attribute_not_exists(#r)) AND {UNEXPIRED}"
        ),
        "ExpressionAttributeNames": ALL_NAMES,
        "ExpressionAttributeValues": {
            ":v": {"S": "v"},
            ":expected": {"N": "0"},
            **CLOCK,
            **WRITE_VALUES,
        },
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_put_if_version_five_matches_exactly_that_version_of_a_live_item() -> None:
    item = plain_item(**EXPIRY, z={"S": "b"})
    request = requests.put(CONFIG, item, now=NOW, token=TOKEN, base=BASE, if_version=5)
    assert request == {
        "TableName": "kvt",
        "Key": {"pk": {"S": "k"}},
        "UpdateExpression": f"SET #v = :v, {BUMP}, #tk = :tok, #t = :t, #m = :m, #z = :z",
        "ConditionExpression": f"attribute_exists(#k) AND #r = :expected AND {UNEXPIRED}",
        "ExpressionAttributeNames": ALL_NAMES,
        "ExpressionAttributeValues": {
            ":v": {"S": "v"},
            ":t": {"N": "1011"},
            ":m": {"N": "1010500"},
            ":z": {"S": "b"},
            ":expected": {"N": "5"},
            **CLOCK,
            **WRITE_VALUES,
        },
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ReturnConsumedCapacity": "TOTAL",
    }


# -- delete -----------------------------------------------------------------------


def test_delete_without_version_is_unconditional_and_returns_the_old_item() -> None:
    assert requests.delete(CONFIG, "k", now=NOW) == {
        "TableName": "kvt",
        "Key": {"pk": {"S": "k"}},
        "ReturnValues": "ALL_OLD",
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_delete_if_version_checks_the_version_of_a_live_item() -> None:
    assert requests.delete(CONFIG, "k", now=NOW, if_version=5) == {
        "TableName": "kvt",
        "Key": {"pk": {"S": "k"}},
        "ReturnValues": "ALL_OLD",
        "ReturnConsumedCapacity": "TOTAL",
        "ConditionExpression": f"attribute_exists(#k) AND #r = :expected AND {UNEXPIRED}",
        "ExpressionAttributeNames": {"#k": "pk", "#r": "ver", "#t": "expires_at", "#m": "xm"},
        "ExpressionAttributeValues": {":expected": {"N": "5"}, **CLOCK},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


# -- counters ---------------------------------------------------------------------


def test_incr_adds_to_a_live_or_missing_counter_and_keeps_its_expiry() -> None:
    request = requests.incr(CONFIG, "k", 2, None, now=NOW, token=TOKEN, base=BASE)
    assert request == {
        "TableName": "kvt",
        "Key": {"pk": {"S": "k"}},
        "UpdateExpression": f"ADD #v :d SET {BUMP}, #tk = :tok",
        "ConditionExpression": f"{UNEXPIRED} AND {NOT_MINE}",
        "ExpressionAttributeNames": {
            "#v": "value",
            "#r": "ver",
            "#tk": "tk",
            "#t": "expires_at",
            "#m": "xm",
        },
        "ExpressionAttributeValues": {":d": {"N": "2"}, **CLOCK, **WRITE_VALUES},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ReturnConsumedCapacity": "TOTAL",
        "ReturnValues": "UPDATED_NEW",
    }


def test_incr_with_ttl_sets_both_expiry_attributes() -> None:
    request = requests.incr(CONFIG, "k", -3, 1_010_500, now=NOW, token=TOKEN, base=BASE)
    assert request["UpdateExpression"] == f"ADD #v :d SET {BUMP}, #tk = :tok, #t = :t, #m = :m"
    assert request["ExpressionAttributeValues"] == {
        ":d": {"N": "-3"},
        ":t": {"N": "1011"},  # whole seconds rounded up, for the sweeper
        ":m": {"N": "1010500"},
        **CLOCK,
        **WRITE_VALUES,
    }


def test_incr_restart_rewrites_an_expired_counter_only() -> None:
    request = requests.incr_restart(CONFIG, "k", 2, 1_010_500, now=NOW, token=TOKEN, base=BASE)
    assert request == {
        "TableName": "kvt",
        "Key": {"pk": {"S": "k"}},
        "UpdateExpression": f"SET #v = :d, {BUMP}, #tk = :tok, #t = :t, #m = :m REMOVE #z",
        "ConditionExpression": f"attribute_exists(#k) AND NOT {UNEXPIRED} AND {NOT_MINE}",
        "ExpressionAttributeNames": ALL_NAMES,
        "ExpressionAttributeValues": {
            ":d": {"N": "2"},
            ":t": {"N": "1011"},
            ":m": {"N": "1010500"},
            **CLOCK,
            **WRITE_VALUES,
        },
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_incr_restart_without_ttl_drops_the_old_expiry() -> None:
    request = requests.incr_restart(CONFIG, "k", 1, None, now=NOW, token=TOKEN, base=BASE)
    assert request["UpdateExpression"] == f"SET #v = :d, {BUMP}, #tk = :tok REMOVE #t, #m, #z"


def test_set_counter_overwrites_anything_but_its_own_earlier_attempt() -> None:
    request = requests.set_counter(CONFIG, "k", 10**20, None, now=NOW, token=TOKEN, base=BASE)
    assert request == {
        "TableName": "kvt",
        "Key": {"pk": {"S": "k"}},
        "UpdateExpression": f"SET #v = :d, {BUMP}, #tk = :tok REMOVE #t, #m, #z",
        "ConditionExpression": NOT_MINE,
        "ExpressionAttributeNames": {
            "#v": "value",
            "#r": "ver",
            "#tk": "tk",
            "#t": "expires_at",
            "#m": "xm",
            "#z": "z",
        },
        "ExpressionAttributeValues": {":d": {"N": str(10**20)}, **WRITE_VALUES},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_set_counter_with_ttl() -> None:
    request = requests.set_counter(CONFIG, "k", 4, 1_010_001, now=NOW, token=TOKEN, base=BASE)
    assert request["UpdateExpression"] == (
        f"SET #v = :d, {BUMP}, #tk = :tok, #t = :t, #m = :m REMOVE #z"
    )
    assert request["ExpressionAttributeValues"][":t"] == {"N": "1011"}
    assert request["ExpressionAttributeValues"][":m"] == {"N": "1010001"}


# -- expire / persist -------------------------------------------------------------


def test_update_existing_expire_sets_a_new_expiry_on_a_live_key() -> None:
    request = requests.update_existing(CONFIG, "k", 1_010_500, now=NOW, token=TOKEN, base=BASE)
    assert request == {
        "TableName": "kvt",
        "Key": {"pk": {"S": "k"}},
        "UpdateExpression": f"SET {BUMP}, #tk = :tok, #t = :t, #m = :m",
        "ConditionExpression": f"attribute_exists(#k) AND {UNEXPIRED} AND {NOT_MINE}",
        "ExpressionAttributeNames": {
            "#k": "pk",
            "#r": "ver",
            "#tk": "tk",
            "#t": "expires_at",
            "#m": "xm",
        },
        "ExpressionAttributeValues": {
            ":t": {"N": "1011"},
            ":m": {"N": "1010500"},
            **CLOCK,
            **WRITE_VALUES,
        },
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_update_existing_persist_removes_the_expiry() -> None:
    request = requests.update_existing(CONFIG, "k", None, now=NOW, token=TOKEN, base=BASE)
    assert request == {
        "TableName": "kvt",
        "Key": {"pk": {"S": "k"}},
        "UpdateExpression": f"SET {BUMP}, #tk = :tok REMOVE #t, #m",
        "ConditionExpression": f"attribute_exists(#k) AND {UNEXPIRED} AND {NOT_MINE}",
        "ExpressionAttributeNames": {
            "#k": "pk",
            "#r": "ver",
            "#tk": "tk",
            "#t": "expires_at",
            "#m": "xm",
        },
        "ExpressionAttributeValues": {**CLOCK, **WRITE_VALUES},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ReturnConsumedCapacity": "TOTAL",
    }


# -- reads ------------------------------------------------------------------------


def test_get_whole_item() -> None:
    assert requests.get(CONFIG, "k", consistent=False) == {
        "TableName": "kvt",
        "Key": {"pk": {"S": "k"}},
        "ConsistentRead": False,
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_get_with_projection_names_only_the_projected_attributes() -> None:
    request = requests.get(CONFIG, "k", consistent=True, projection=("#t", "#m", "#tk"))
    assert request == {
        "TableName": "kvt",
        "Key": {"pk": {"S": "k"}},
        "ConsistentRead": True,
        "ReturnConsumedCapacity": "TOTAL",
        "ProjectionExpression": "#t, #m, #tk",
        "ExpressionAttributeNames": {"#t": "expires_at", "#m": "xm", "#tk": "tk"},
    }


def test_batch_get() -> None:
    assert requests.batch_get(CONFIG, ["a", "b"], consistent=True) == {
        "RequestItems": {
            "kvt": {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}], "ConsistentRead": True}
        },
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_batch_write_of_puts_and_deletes() -> None:
    item = plain_item()
    chunk = [requests.put_request(item), requests.delete_request(CONFIG, "gone")]
    assert requests.batch_write(CONFIG, chunk) == {
        "RequestItems": {
            "kvt": [
                {"PutRequest": {"Item": item}},
                {"DeleteRequest": {"Key": {"pk": {"S": "gone"}}}},
            ]
        },
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_scan_page_of_root_keys_leaves_out_namespaced_and_expired_ones() -> None:
    request = requests.scan_page(
        CONFIG, now=NOW, prefix="", root=True, separator=SEPARATOR, with_values=False
    )
    assert request == {
        "TableName": "kvt",
        "ExpressionAttributeNames": {"#k": "pk", "#t": "expires_at", "#m": "xm"},
        "ExpressionAttributeValues": {**CLOCK, ":sep": {"S": SEPARATOR}},
        "ConsistentRead": True,
        "ReturnConsumedCapacity": "TOTAL",
        "FilterExpression": f"{UNEXPIRED} AND NOT contains(#k, :sep)",
        "ProjectionExpression": "#k, #t, #m",
    }


def test_scan_page_of_a_namespace_with_values_and_a_start_key() -> None:
    start = {"pk": {"S": "svc\x1fa"}}
    request = requests.scan_page(
        CONFIG.replace(consistent_read=False),
        now=NOW,
        prefix="svc\x1f",
        root=False,
        separator=SEPARATOR,
        with_values=True,
        start=start,
    )
    assert request == {
        "TableName": "kvt",
        "ExpressionAttributeNames": {"#k": "pk", "#t": "expires_at", "#m": "xm"},
        "ExpressionAttributeValues": {**CLOCK, ":p": {"S": "svc\x1f"}},
        "ConsistentRead": False,
        "ReturnConsumedCapacity": "TOTAL",
        "FilterExpression": f"{UNEXPIRED} AND begins_with(#k, :p)",
        "ExclusiveStartKey": start,
    }


def test_scan_page_expired_true_keeps_expired_items() -> None:
    namespaced = requests.scan_page(
        CONFIG,
        now=NOW,
        prefix="svc\x1f",
        root=False,
        separator=SEPARATOR,
        with_values=False,
        expired=True,
    )
    assert namespaced == {
        "TableName": "kvt",
        "ExpressionAttributeNames": {"#k": "pk", "#t": "expires_at", "#m": "xm"},
        "ExpressionAttributeValues": {":p": {"S": "svc\x1f"}},
        "ConsistentRead": True,
        "ReturnConsumedCapacity": "TOTAL",
        "FilterExpression": "begins_with(#k, :p)",
        "ProjectionExpression": "#k, #t, #m",
    }
    everything = requests.scan_page(
        CONFIG, now=NOW, prefix="", root=False, separator=SEPARATOR, with_values=True, expired=True
    )
    # Nothing to filter or project: no expression maps at all (empty ones are refused).
    assert everything == {
        "TableName": "kvt",
        "ConsistentRead": True,
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_builders_use_the_configured_attribute_names() -> None:
    config = KVConfig(
        table="kvt",
        partition_key="id",
        value_attribute="val",
        ttl_attribute="ttl",
        version_attribute="rev",
    )
    item: Item = {"id": {"S": "k"}, "val": {"S": "v"}, "rev": {"N": "7"}, "tk": {"S": "TOK"}}
    request = requests.put(config, item, now=NOW, token=TOKEN, base=BASE, if_version=1)
    assert request["Key"] == {"id": {"S": "k"}}
    assert request["ExpressionAttributeValues"][":v"] == {"S": "v"}
    assert request["ExpressionAttributeNames"] == {
        "#k": "id",
        "#v": "val",
        "#t": "ttl",
        "#m": "xm",
        "#r": "rev",
        "#z": "z",
        "#tk": "tk",
    }


def test_now_is_rendered_exactly_and_in_whole_milliseconds() -> None:
    request = requests.incr(CONFIG, "k", 1, None, now=1700000000.1239, token=TOKEN, base=BASE)
    values = request["ExpressionAttributeValues"]
    assert values[":now"] == {"N": "1700000000.1239"}
    assert values[":nowms"] == {"N": "1700000000123"}


# -- every builder, every variant: the expression maps are exact -------------------


def _every_request() -> list[tuple[str, dict[str, Any]]]:
    parts: dict[str, Any] = {"now": NOW, "token": TOKEN, "base": BASE}
    out: list[tuple[str, dict[str, Any]]] = []
    items = {
        "plain": plain_item(),
        "expiry": plain_item(**EXPIRY),
        "flag": plain_item(z={"S": "s"}),
        "expiry+flag": plain_item(**EXPIRY, z={"S": "b"}),
    }
    for label, item in items.items():
        out.append((f"put {label}", requests.put(CONFIG, item, **parts)))
        out.append((f"put {label} if_absent", requests.put(CONFIG, item, **parts, if_absent=True)))
        out.extend(
            (f"put {label} if_version={v}", requests.put(CONFIG, item, **parts, if_version=v))
            for v in (0, 5)
        )
    out.append(("delete", requests.delete(CONFIG, "k", now=NOW)))
    out.extend(
        (f"delete v{v}", requests.delete(CONFIG, "k", now=NOW, if_version=v)) for v in (0, 5)
    )
    for expires in (None, 1_010_500):
        out.append((f"incr {expires}", requests.incr(CONFIG, "k", 1, expires, **parts)))
        out.append((f"restart {expires}", requests.incr_restart(CONFIG, "k", 1, expires, **parts)))
        out.append(
            (f"set_counter {expires}", requests.set_counter(CONFIG, "k", 1, expires, **parts))
        )
        out.append((f"update {expires}", requests.update_existing(CONFIG, "k", expires, **parts)))
    out.append(("get", requests.get(CONFIG, "k", consistent=True)))
    out.append(("get projection", requests.get(CONFIG, "k", consistent=True, projection=["#tk"])))
    out.append(("batch_get", requests.batch_get(CONFIG, ["a"], consistent=True)))
    chunk = [requests.put_request(plain_item()), requests.delete_request(CONFIG, "b")]
    out.append(("batch_write", requests.batch_write(CONFIG, chunk)))
    for prefix in ("", "svc\x1f"):
        for root in (False, True):
            for with_values in (False, True):
                for expired in (False, True):
                    label = f"scan {prefix!r} root={root} values={with_values} expired={expired}"
                    request = requests.scan_page(
                        CONFIG,
                        now=NOW,
                        prefix=prefix,
                        root=root,
                        separator=SEPARATOR,
                        with_values=with_values,
                        expired=expired,
                    )
                    out.append((label, request))
    return out


_CASES = _every_request()


@pytest.mark.parametrize("request_", [r for _, r in _CASES], ids=[label for label, _ in _CASES])
def test_every_builder_defines_exactly_the_names_and_values_it_uses(
    request_: dict[str, Any],
) -> None:
    assert_expressions_consistent(request_)
    assert request_["ReturnConsumedCapacity"] == "TOTAL"


def test_unused_placeholders_are_dropped_even_when_a_used_one_starts_with_their_name() -> None:
    request: dict[str, Any] = {
        "UpdateExpression": "SET #tk = :tok, #v = :v2",
        "ConditionExpression": "attribute_not_exists(#tk)",
        "ExpressionAttributeNames": {"#t": "t", "#tk": "tk", "#v": "v"},
        "ExpressionAttributeValues": {
            ":t": {"N": "1"},
            ":tok": {"S": "x"},
            ":v": {"S": "a"},
            ":v2": {"S": "b"},
        },
    }
    for _ in range(2):  # the second time from what the first found
        built = requests._used(
            {
                **request,
                "ExpressionAttributeNames": dict(request["ExpressionAttributeNames"]),
                "ExpressionAttributeValues": dict(request["ExpressionAttributeValues"]),
            }
        )
        assert set(built["ExpressionAttributeNames"]) == {"#tk", "#v"}
        assert set(built["ExpressionAttributeValues"]) == {":tok", ":v2"}
    bare = requests._used(
        {
            "UpdateExpression": "REMOVE #z",
            "ExpressionAttributeNames": {"#z": "z"},
            "ExpressionAttributeValues": {":z": {"S": "x"}},
        }
    )
    assert (
        bare["ExpressionAttributeNames"] == {"#z": "z"} and "ExpressionAttributeValues" not in bare
    )
