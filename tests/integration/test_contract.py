"""The contract every backend keeps: InMemoryKV, moto, dynalite and DynamoDB Local.

Written once; ``tests/conftest.py`` runs it on each backend and declares what a
backend lacks.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import pytest

from aiodynkv import (
    ConditionFailedError,
    InvalidKeyError,
    KeyNotFoundError,
    KVError,
    KVStore,
    KVValidationError,
    StoreClosedError,
    ValueTooLargeError,
    WrongTypeError,
)
from aiodynkv._codec import MAX_ITEM_BYTES, item_size
from tests.conftest import Clock, StoreFactory, put_raw, raw_call, raw_item

# The contract holds on both transports: the botocore legs run here.
EVERY_TRANSPORT = True
pytestmark = pytest.mark.asyncio


# -- get / set / delete / exists ---------------------------------------------


async def test_set_then_get_returns_the_same_str(store: KVStore) -> None:
    await store.set("user:1", "alice")
    assert await store.get("user:1") == "alice"


async def test_bytes_stay_bytes_and_text_stays_text(store: KVStore) -> None:
    await store.set("blob", b"\x00\x01\xff")
    await store.set("text", "zoë ✓ \x00 nul")
    assert await store.get("blob") == b"\x00\x01\xff"
    assert await store.get("text") == "zoë ✓ \x00 nul"


async def test_empty_values_round_trip(store: KVStore) -> None:
    await store.set("s", "")
    await store.set("b", b"")
    assert await store.get("s") == ""
    assert await store.get("b") == b""


async def test_set_overwrites(store: KVStore) -> None:
    await store.set("k", "one")
    await store.set("k", b"two")
    assert await store.get("k") == b"two"


async def test_get_of_missing_key_raises_key_not_found_naming_the_key(store: KVStore) -> None:
    with pytest.raises(KeyNotFoundError) as info:
        await store.get("nobody")
    assert "nobody" not in str(info.value)  # keys stay out of messages unless expose_keys
    assert isinstance(info.value, KeyError)
    assert info.value.key == "nobody"
    assert info.value.operation == "get"


async def test_get_with_default_returns_it_for_missing_key(store: KVStore) -> None:
    assert await store.get("missing", None) is None
    assert await store.get("missing", "fallback") == "fallback"


async def test_set_of_other_types_raises_type_error_and_writes_nothing(store: KVStore) -> None:
    for bad in (1, 1.5, None, ["a"], {"a": 1}, True):
        with pytest.raises(TypeError, match=type(bad).__name__):
            await store.set("k", bad)  # type: ignore[arg-type]
    assert not await store.exists("k")


async def test_delete_reports_whether_the_key_existed(store: KVStore) -> None:
    await store.set("k", "v")
    assert await store.delete("k") is True
    assert await store.delete("k") is False
    assert await store.get("k", None) is None


async def test_exists(store: KVStore) -> None:
    assert await store.exists("k") is False
    await store.set("k", b"")
    assert await store.exists("k") is True


async def test_get_with_ttl_returns_the_value_and_its_remaining_seconds(store: KVStore) -> None:
    await store.set("session", "data", ttl=60)
    await store.set("forever", b"bytes")
    await store.incr("hits", 2)
    value, remaining = await store.get_with_ttl("session")
    assert value == "data"
    assert remaining is not None and 55 < remaining <= 60
    assert await store.get_with_ttl("forever") == (b"bytes", None)
    assert await store.get_with_ttl("hits") == (2, None)
    ns = store.namespace("svc")
    await ns.set("session", "other", ttl=timedelta(hours=1))
    value, remaining = await ns.get_with_ttl("session")
    assert value == "other" and remaining is not None and 3500 < remaining <= 3600


async def test_get_with_ttl_of_a_missing_key_raises_or_returns_the_default(
    store: KVStore,
) -> None:
    with pytest.raises(KeyNotFoundError) as info:
        await store.get_with_ttl("nobody")
    assert info.value.operation == "get_with_ttl"
    assert info.value.key == "nobody"
    assert "nobody" not in str(info.value)
    assert await store.get_with_ttl("nobody", None) == (None, None)
    assert await store.get_with_ttl("nobody", "fallback") == ("fallback", None)
    with pytest.raises(InvalidKeyError):
        await store.get_with_ttl("")


async def test_get_with_ttl_of_an_expired_key_is_missing(store: Any, clock: Clock) -> None:
    await store.set("session", "data", ttl=1)
    clock.advance(0.5)
    assert await store.get_with_ttl("session") == ("data", pytest.approx(0.5, abs=0.002))
    clock.advance(0.5)
    assert await store.get_with_ttl("session", None) == (None, None)
    with pytest.raises(KeyNotFoundError):
        await store.get_with_ttl("session")


async def test_json_helpers_round_trip(store: KVStore) -> None:
    doc = {"name": "zoë", "tags": ["a", "b"], "n": 3, "f": 1.5, "none": None}
    await store.set_json("doc", doc)
    assert await store.get_json("doc") == doc
    assert await store.get_json("absent", {"d": 1}) == {"d": 1}
    with pytest.raises(KeyNotFoundError):
        await store.get_json("absent")


async def test_set_json_refuses_nan_and_unserialisable(store: KVStore) -> None:
    with pytest.raises(ValueError, match="JSON"):
        await store.set_json("k", {"x": float("nan")})
    with pytest.raises(TypeError):
        await store.set_json("k", {"x": object()})
    assert not await store.exists("k")


async def test_health_is_up(store: KVStore) -> None:
    health = await store.health()
    assert health.status == "UP", health
    assert health.is_up
    assert health.details["table_status"] == "ACTIVE"
    assert health.details["latency_ms"] >= 0


# -- validation before any request ---------------------------------------------


@pytest.mark.parametrize(
    "bad", ["", 5, None, b"bytes", "lone \ud800 surrogate", "x" * 2049, "a\x1fb"]
)
async def test_invalid_keys_raise_invalid_key_error(store: KVStore, bad: Any) -> None:
    with pytest.raises(InvalidKeyError):
        await store.set(bad, "v")
    with pytest.raises(InvalidKeyError):
        await store.get(bad)
    with pytest.raises(InvalidKeyError):
        await store.delete(bad)


async def test_key_of_exactly_2048_bytes_round_trips(store: KVStore) -> None:
    key = "é" * 1023 + "xy"  # 2046 + 2 = 2048 UTF-8 bytes
    assert len(key.encode()) == 2048
    await store.set(key, "v")
    assert await store.get(key) == "v"
    with pytest.raises(InvalidKeyError, match="2049 bytes"):
        await store.set(key + "z", "v")


async def test_item_over_400_kb_raises_value_too_large_and_writes_nothing(
    make_store: StoreFactory,
) -> None:
    store = await make_store(compress_threshold=None)
    with pytest.raises(ValueTooLargeError, match="409,600") as info:
        await store.set("big", b"\x01" * MAX_ITEM_BYTES)
    assert info.value.size is not None and info.value.size > MAX_ITEM_BYTES
    assert not await store.exists("big")


@pytest.mark.backend_needs("exact_size_limit")
async def test_item_of_exactly_400_kb_is_accepted(make_store: StoreFactory) -> None:
    store = await make_store(compress_threshold=None)
    # What set() writes besides the value: the key, the attribute names, a version
    # (counted at its largest, 19 digits) and the write token.
    overhead = item_size(
        {"pk": {"S": "big"}, "value": {"B": b""}, "ver": {"N": "9" * 19}, "tk": {"S": "t" * 16}}
    )
    await store.set("big", b"\x01" * (MAX_ITEM_BYTES - overhead))
    assert len(await store.get("big")) == MAX_ITEM_BYTES - overhead
    with pytest.raises(ValueTooLargeError):
        await store.set("big", b"\x01" * (MAX_ITEM_BYTES - overhead + 1))


# -- TTL -----------------------------------------------------------------------


async def test_a_ttl_1_key_reads_as_missing_one_real_second_later(store: KVStore) -> None:
    await store.set("session", "data", ttl=1)
    assert await store.get("session") == "data"
    remaining = await store.ttl("session")
    assert remaining is not None and remaining <= 1.0  # never more than was set
    await asyncio.sleep(1.0)
    assert await store.get("session", None) is None


async def test_expired_key_reads_as_missing_while_still_in_the_table(
    store: Any, clock: Clock
) -> None:
    await store.set("session", "data", ttl=1)
    clock.advance(0.999)
    assert await store.get("session") == "data"
    clock.advance(0.001)  # exactly one second after the write: gone, to the millisecond
    assert await store.get("session", None) is None
    assert not await store.exists("session")
    with pytest.raises(KeyNotFoundError):
        await store.get("session")
    assert await store.get_many(["session"]) == {}
    assert [k async for k in store.keys()] == []
    assert await raw_item(store, "session") is not None  # DynamoDB deletes it days later
    assert await store.delete("session") is False
    assert await store.set("session", "new", if_absent=True) is True


async def test_ttl_reports_remaining_seconds(store: KVStore) -> None:
    await store.set("k", "v", ttl=timedelta(minutes=1))
    remaining = await store.ttl("k")
    assert remaining is not None and 58 <= remaining <= 61
    await store.set("k", "v")  # a plain set removes the expiry
    assert await store.ttl("k") is None
    with pytest.raises(KeyNotFoundError):
        await store.ttl("missing")


async def test_expire_and_persist_change_the_expiry(store: KVStore) -> None:
    await store.set("k", "v")
    assert await store.expire("k", 100) is True
    remaining = await store.ttl("k")
    assert remaining is not None and 98 <= remaining <= 101
    assert await store.persist("k") is True
    assert await store.ttl("k") is None
    assert await store.expire("missing", 10) is False
    assert await store.persist("missing") is False
    assert await store.get("k") == "v"


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), timedelta(0), 10**12])
async def test_bad_ttl_raises_validation_error_and_writes_nothing(store: KVStore, bad: Any) -> None:
    with pytest.raises(KVValidationError, match="ttl"):
        await store.set("k", "v", ttl=bad)
    assert not await store.exists("k")


@pytest.mark.parametrize("bad", ["10", True, [1]])
async def test_ttl_of_wrong_type_raises_type_error(store: KVStore, bad: Any) -> None:
    with pytest.raises(TypeError, match="ttl"):
        await store.set("k", "v", ttl=bad)


@pytest.mark.backend_needs("ttl_api")
async def test_ensure_table_enables_ttl_on_the_ttl_attribute(store: Any) -> None:
    await store.ensure_table()  # a second call is harmless
    described = await raw_call(store, "DescribeTimeToLive", {"TableName": store.config.table})
    spec = described["TimeToLiveDescription"]
    assert spec["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    assert spec["AttributeName"] == store.config.ttl_attribute


# -- conditional writes ---------------------------------------------------------


async def test_if_absent_writes_only_when_missing(store: KVStore) -> None:
    assert await store.set("k", "first", if_absent=True) is True
    assert await store.set("k", "second", if_absent=True) is False
    assert await store.get("k") == "first"


async def test_if_absent_lets_exactly_one_of_50_concurrent_writers_win(store: KVStore) -> None:
    results = await asyncio.gather(
        *(store.set("lock", f"writer-{i}", if_absent=True) for i in range(50))
    )
    assert results.count(True) == 1
    winner = results.index(True)
    assert await store.get("lock") == f"writer-{winner}"


async def test_compare_and_set_with_versions(store: KVStore) -> None:
    await store.set("k", "v1")
    value, version = await store.get_with_version("k")
    assert value == "v1"
    assert await store.set("k", "v2", if_version=version) is True
    _, newer = await store.get_with_version("k")
    assert newer > version
    with pytest.raises(ConditionFailedError) as info:
        await store.set("k", "v3", if_version=version)
    assert info.value.current_version == newer
    assert await store.get("k") == "v2"


async def test_every_write_bumps_the_version(store: KVStore) -> None:
    await store.set("k", "v")
    seen = [(await store.get_with_version("k"))[1]]
    await store.set("k", "v")
    seen.append((await store.get_with_version("k"))[1])
    await store.expire("k", 60)
    seen.append((await store.get_with_version("k"))[1])
    await store.persist("k")
    seen.append((await store.get_with_version("k"))[1])
    assert seen == sorted(set(seen)), seen


async def test_a_deleted_and_recreated_key_never_reuses_a_version(store: KVStore) -> None:
    await store.set("k", "v")
    _, old = await store.get_with_version("k")
    await store.delete("k")
    await store.set("k", "v")
    with pytest.raises(ConditionFailedError):
        await store.set("k", "stale", if_version=old)


async def test_delete_if_version(store: KVStore) -> None:
    await store.set("k", "v")
    _, version = await store.get_with_version("k")
    with pytest.raises(ConditionFailedError) as info:
        await store.delete("k", if_version=version + 1)
    assert info.value.current_version == version
    assert await store.delete("k", if_version=version) is True
    with pytest.raises(ConditionFailedError) as missing:
        await store.delete("k", if_version=version)
    assert missing.value.current_version is None


async def test_get_with_version_of_missing_key_raises(store: KVStore) -> None:
    with pytest.raises(KeyNotFoundError):
        await store.get_with_version("missing")


async def test_if_absent_and_if_version_together_are_refused(store: KVStore) -> None:
    with pytest.raises(KVValidationError, match="not both"):
        await store.set("k", "v", if_absent=True, if_version=1)
    with pytest.raises(TypeError, match="if_version"):
        await store.set("k", "v", if_version="1")  # type: ignore[arg-type]


# -- counters -------------------------------------------------------------------


async def test_incr_counts_from_zero_and_get_returns_an_int(store: KVStore) -> None:
    assert await store.incr("c") == 1
    assert await store.incr("c", 10) == 11
    assert await store.incr("c", -20) == -9
    assert await store.get("c") == -9
    assert await store.get_json("c") == -9


async def test_500_concurrent_incr_end_at_exactly_500(store: KVStore) -> None:
    await asyncio.gather(*(store.incr("hits") for _ in range(500)))
    assert await store.get("hits") == 500


async def test_incr_on_text_raises_wrong_type_and_changes_nothing(store: KVStore) -> None:
    await store.set("name", "alice")
    with pytest.raises(WrongTypeError, match="not a counter"):
        await store.incr("name")
    assert await store.get("name") == "alice"


async def test_incr_with_ttl_expires_and_restarts(store: KVStore, clock: Clock) -> None:
    assert await store.incr("window", ttl=1) == 1
    assert await store.incr("window") == 2  # keeps the expiry
    remaining = await store.ttl("window")
    assert remaining is not None and remaining <= 1
    clock.advance(1.0)
    assert await store.incr("window") == 1
    assert await store.ttl("window") is None


@pytest.mark.parametrize("bad", [1.5, "1", True, None])
async def test_incr_with_bad_delta_raises_type_error(store: KVStore, bad: Any) -> None:
    with pytest.raises(TypeError, match="delta"):
        await store.incr("c", bad)


# -- batches ----------------------------------------------------------------------


async def test_set_many_then_get_many_of_1000(store: KVStore) -> None:
    items = {f"item:{i}": f"value-{i}" for i in range(1000)}
    await store.set_many(items)
    got = await store.get_many([*items, "missing:1", "item:0", "item:0"])
    assert got == items


async def test_set_many_accepts_pairs_with_last_write_winning(store: KVStore) -> None:
    await store.set_many([("a", "1"), ("b", b"2"), ("a", "3")])
    assert await store.get_many(["a", "b"]) == {"a": "3", "b": b"2"}


async def test_set_many_key_given_twice_keeps_its_last_value_compressed_or_not(
    store: KVStore,
) -> None:
    big = "z" * 40_000  # compressed (over compress_threshold); the others are not
    pairs = [("a", big), ("b", "short"), ("a", "plain"), ("b", big), ("c", big)]
    await store.set_many(pairs + [(f"k{i}", big if i % 2 else "v") for i in range(60)])
    got = await store.get_many(["a", "b", "c", *(f"k{i}" for i in range(60))])
    assert got == {"a": "plain", "b": big, "c": big} | {
        f"k{i}": big if i % 2 else "v" for i in range(60)
    }


async def test_get_many_over_several_requests_reads_compressed_and_plain_values(
    store: KVStore,
) -> None:
    big = "z" * 40_000  # compressed; two of the three BatchGetItem requests meet one
    values = {f"k{i:03d}": big if i in (5, 150) else f"v{i}" for i in range(250)}
    await store.set_many(values)
    assert await store.get_many([*values, "missing"]) == values


async def test_set_many_with_ttl_expires_every_item(store: KVStore, clock: Clock) -> None:
    await store.set_many({"a": "1", "b": "2"}, ttl=1)
    assert len(await store.get_many(["a", "b"])) == 2
    clock.advance(1.0)
    assert await store.get_many(["a", "b"]) == {}


async def test_set_many_validates_everything_before_writing_anything(store: KVStore) -> None:
    with pytest.raises(TypeError):
        await store.set_many({"good": "v", "bad": 3})  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError):
        await store.set_many({"good": "v", "": "x"})
    assert not await store.exists("good")


async def test_delete_many(store: KVStore) -> None:
    await store.set_many({f"k{i}": "v" for i in range(60)})
    deleted = await store.delete_many([f"k{i}" for i in range(50)] + ["never-there", "k0"])
    assert deleted == 50  # the missing key and the duplicate count nothing
    assert sorted(await store.get_many([f"k{i}" for i in range(60)])) == [
        f"k{i}" for i in range(50, 60)
    ]
    assert await store.delete_many([f"k{i}" for i in range(50)]) == 0


async def test_delete_many_counts_only_unexpired_keys_and_removes_expired_ones(
    store: Any, clock: Clock
) -> None:
    await store.set("old", "v", ttl=1)
    await store.set_many({"a": "1", "b": "2"})
    clock.advance(1.0)
    assert await store.delete_many(["old", "a", "b", "none"]) == 2
    assert await raw_item(store, "old") is None  # the expired item is gone from the table


async def test_delete_many_counts_each_key_once_under_concurrent_deletes(store: KVStore) -> None:
    keys = [f"r{i}" for i in range(40)]
    await store.set_many(dict.fromkeys(keys, "v"))
    counts = await asyncio.gather(
        store.delete_many(keys), store.delete_many(keys[::-1]), store.delete_many(keys[10:30])
    )
    assert sum(counts) == 40  # each key was deleted by exactly one of the calls
    assert await store.get_many(keys) == {}


async def test_delete_many_in_a_namespace_counts_only_its_keys(store: KVStore) -> None:
    ns = store.namespace("svc")
    await store.set("k", "root")
    await ns.set_many({"k": "a", "j": "b"})
    assert await ns.delete_many(["k", "j", "x"]) == 2
    assert await store.get("k") == "root"


async def test_batch_calls_with_nothing_do_nothing(store: KVStore) -> None:
    assert await store.get_many([]) == {}
    await store.set_many({})
    assert await store.delete_many([]) == 0


async def test_batch_calls_refuse_a_single_string(store: KVStore) -> None:
    with pytest.raises(TypeError, match="iterable"):
        await store.get_many("abc")
    with pytest.raises(TypeError, match="pairs"):
        await store.set_many(["ab"])  # type: ignore[list-item]


# -- namespaces and listing ----------------------------------------------------------


async def test_namespaces_are_isolated(store: KVStore) -> None:
    a, b = store.namespace("svc-a"), store.namespace("svc-b")
    await a.set("k", "from a")
    await b.set("k", "from b")
    await store.set("k", "from root")
    assert await a.get("k") == "from a"
    assert await b.get("k") == "from b"
    assert await store.get("k") == "from root"
    assert [k async for k in a.keys()] == ["k"]
    assert sorted([k async for k in store.keys()]) == ["k"]
    assert await a.delete("k") is True
    assert await b.get("k") == "from b"


async def test_key_limit_counts_the_namespace(store: KVStore) -> None:
    ns = store.namespace("n" * 10)  # adds 11 bytes with the separator
    await ns.set("k" * 2037, "fits")
    with pytest.raises(InvalidKeyError, match="2049 bytes"):
        await ns.set("k" * 2038, "too long")


async def test_bad_namespace_names_are_refused(store: KVStore) -> None:
    for bad in ("", "a\x1fb", "x" * 2047):  # 2047 bytes + separator leave no room for a key
        with pytest.raises(KVValidationError, match="namespace") as info:
            store.namespace(bad)
        assert "x" * 65 not in str(info.value)  # a long name is cut, not echoed


async def test_a_1500_character_namespace_works_end_to_end(make_store: StoreFactory) -> None:
    name = "c" * 1500  # py-key-value's test_long_collection_name
    kv = await make_store()
    for ns in (kv.namespace(name), await make_store(namespace=name)):
        await ns.set("k", "v", ttl=60)
        assert await ns.get("k") == "v"
        assert await ns.exists("k")
        await ns.set_many({"a": "1", "b": "2"})
        assert await ns.get_many(["a", "b", "k"]) == {"a": "1", "b": "2", "k": "v"}
        assert sorted(await ns.keys()) == ["a", "b", "k"]
        assert await ns.incr("n") == 1
        assert await ns.delete("k") is True
        await ns.delete_many(["a", "b", "n"])
        assert await ns.keys() == []
    assert await kv.keys() == []  # nothing leaked to the root


async def test_namespace_plus_key_over_2048_bytes_fails_before_any_request(
    make_store: StoreFactory,
) -> None:
    name = "c" * 1500
    kv = await make_store()
    ns = kv.namespace(name)
    await ns.set("k" * 547, "fits")  # 1500 + 1 (separator) + 547 = 2048 bytes
    assert await ns.get("k" * 547) == "fits"
    await kv.aclose()  # a request now would raise StoreClosedError
    for call in (
        lambda key: ns.set(key, "v"),
        ns.get,
        ns.delete,
        lambda key: ns.get_many([key]),
        lambda key: ns.set_many({key: "v"}),
        lambda key: ns.delete_many([key]),
    ):
        with pytest.raises(InvalidKeyError, match="2049 bytes") as info:
            await call("k" * 548)
        assert len(str(info.value)) < 300  # the namespace is cut in the message


async def test_keys_lists_with_prefix(store: KVStore) -> None:
    await store.set_many({"user:1": "a", "user:2": "b", "order:1": "c"})
    assert sorted([k async for k in store.keys()]) == ["order:1", "user:1", "user:2"]
    assert sorted([k async for k in store.keys(prefix="user:")]) == ["user:1", "user:2"]
    with pytest.raises(TypeError, match="prefix"):
        [k async for k in store.keys(prefix=1)]  # type: ignore[arg-type]


async def test_clear_empties_only_its_namespace(store: KVStore) -> None:
    ns = store.namespace("tmp")
    await ns.set_many({f"k{i}": "v" for i in range(30)})
    await store.set("keep", "v")
    assert await ns.clear() == 30
    assert [k async for k in ns.keys()] == []
    assert await store.get("keep") == "v"


# -- compression -----------------------------------------------------------------------


async def test_a_1_mb_repetitive_string_round_trips_compressed(store: Any) -> None:
    text = "the same line again and again\n" * 35_000
    assert len(text.encode()) > 1_000_000
    await store.set("big", text)
    assert await store.get("big") == text
    item = await raw_item(store, "big")
    assert item is not None and "B" in item["value"] and item["z"] == {"S": "s"}
    await store.set("big", b"\x00" * 2_000_000)
    assert await store.get("big") == b"\x00" * 2_000_000


async def test_items_written_without_aiodynkv_metadata_still_read(store: Any) -> None:
    await put_raw(store, {"pk": {"S": "gofr"}, "value": {"S": "written by GoFr"}})
    assert await store.get("gofr") == "written by GoFr"
    assert await store.get_with_version("gofr") == ("written by GoFr", 0)
    assert await store.set("gofr", "mine", if_version=0) is True
    assert await store.incr("gofr-counter") == 1


async def test_incompressible_values_are_stored_as_they_are(store: Any) -> None:
    import os

    noise = os.urandom(100_000)
    await store.set("noise", noise)
    item = await raw_item(store, "noise")
    assert item is not None and "z" not in item
    assert await store.get("noise") == noise


# -- lifecycle ------------------------------------------------------------------------------


async def test_a_closed_store_raises_store_closed(make_store: StoreFactory) -> None:
    store = await make_store()
    await store.aclose()
    await store.aclose()  # idempotent
    with pytest.raises(StoreClosedError, match="closed"):
        await store.get("k")
    with pytest.raises(StoreClosedError):
        await store.open()
    assert (await store.health()).status == "DOWN"


async def test_errors_are_kv_errors_with_context(store: KVStore) -> None:
    with pytest.raises(KVError) as info:
        await store.get("absent")
    assert info.value.table == store.config.table  # type: ignore[attr-defined]


async def test_a_namespace_view_opens_and_closes_with_its_parent(store: KVStore) -> None:
    view = store.namespace("svc")
    assert view.current_namespace == "svc" and store.current_namespace is None
    async with view:  # entering a view checks the parent is open; leaving closes nothing
        await view.set("k", "v")
    await view.aclose()
    assert await view.get("k") == "v"
    await store.set("root", "still open")
    assert store.namespace("a").namespace("b").current_namespace == "b"


# -- one event loop per store, on every backend -------------------------------------------


def _elsewhere(call: Any) -> BaseException | None:
    """Run `call()` (a coroutine factory) on a new event loop in another thread."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(call())
        except BaseException as exc:  # noqa: BLE001 (returned to the test)
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    return failure[0] if failure else None


async def test_a_store_used_from_another_event_loop_fails_alike(store: KVStore) -> None:
    await store.set("k", "v")
    used = _elsewhere(lambda: store.get("k"))
    assert isinstance(used, KVError) and str(used).startswith(
        "get: the store was opened on another event loop; open one store per event loop"
    ), repr(used)
    closed = _elsewhere(store.aclose)
    assert isinstance(closed, KVError) and str(closed).startswith(
        "aclose: the store was opened on another event loop; close it from that loop"
    ), repr(closed)
    assert await store.get("k") == "v"  # still open, on its own loop
