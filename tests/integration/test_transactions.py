"""Transactions and snapshot reads, on every backend that has them (contract-style), and
all-or-nothing under injected faults (fault proxy in front of moto)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from aiodynkv import (
    AsyncDynamoKV,
    CorruptItemError,
    InvalidKeyError,
    KVError,
    KVStore,
    KVValidationError,
    StoreClosedError,
    TransactionFailedError,
    TransactionReason,
    TransientError,
    ValueTooLargeError,
    WriteInDoubtError,
)
from aiodynkv._transaction import code_of, snake
from aiodynkv._transport import ServiceError
from aiodynkv.testing import InMemoryKV, set_retry_waits
from tests.conftest import Clock, StoreFactory, put_raw, raw_item
from tests.faults import FaultProxy, Intercepted

pytestmark = [pytest.mark.asyncio, pytest.mark.backend_needs("transactions")]


async def test_commit_applies_every_action(store: KVStore) -> None:
    await store.set("order:1", "new")
    _, version = await store.get_with_version("order:1")
    await store.set("cart:1", "items")
    await store.incr("stats:paid", 10)
    async with store.transaction() as tx:
        tx.set("order:1", "paid", if_version=version)
        tx.set("invoice:1", "inv", if_absent=True)
        tx.delete("cart:1")
        tx.incr("stats:paid", 1)
        tx.incr("stats:new", 3)
        tx.check("order:2", exists=False)
        assert len(tx) == 6
    assert tx.state == "committed"
    assert await store.get_with_version("order:1") == ("paid", version + 1)
    assert await store.get("invoice:1") == "inv"
    assert not await store.exists("cart:1")
    assert await store.get("stats:paid") == 11
    assert await store.get("stats:new") == 3


async def test_an_exception_in_the_block_sends_nothing(store: KVStore) -> None:
    tx = store.transaction()

    async def body() -> None:
        async with tx:
            tx.set("a", "1")
            tx.incr("n", 1)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await body()
    assert tx.state == "discarded"
    assert await store.get_many(["a", "n"]) == {}
    with pytest.raises(KVError, match="discarded"):
        await tx.commit()
    with pytest.raises(KVError, match="discarded"):
        tx.set("b", "2")


async def test_a_failed_condition_applies_nothing_and_says_why_per_action(store: KVStore) -> None:
    await store.set("order:1", "new")
    _, version = await store.get_with_version("order:1")
    await store.set("taken", "x")
    await store.incr("count", 5)
    tx = store.transaction()
    tx.incr("count", 1)
    tx.set("order:1", "paid", if_version=version + 1)
    tx.set("taken", "y", if_absent=True)
    tx.delete("gone")
    tx.check("missing", exists=True)
    with pytest.raises(TransactionFailedError) as info:
        await tx.commit()
    assert tx.state == "open"  # not committed: it may be changed and sent again
    error = info.value
    assert isinstance(error, KVError)
    assert [r.key for r in error.reasons] == ["count", "order:1", "taken", "gone", "missing"]
    codes = [r.code for r in error.reasons]
    assert codes == ["none", "condition_failed", "condition_failed", "none", "condition_failed"]
    assert [r.key for r in error.failed] == ["order:1", "taken", "missing"]
    assert error.reasons[1] == TransactionReason(
        1, "set", "order:1", "condition_failed", error.reasons[1].message, version
    )
    assert error.reasons[4].current_version is None
    assert error.key == "order:1"
    assert "order:1" not in str(error)  # keys stay out of messages
    assert not error.retryable
    assert await store.get("count") == 5
    assert await store.get_with_version("order:1") == ("new", version)
    assert await store.get("taken") == "x"


async def test_checks_on_version_and_presence(store: KVStore) -> None:
    await store.set("user:1", "alice")
    _, version = await store.get_with_version("user:1")
    async with store.transaction() as tx:
        tx.check("user:1", version=version)
        tx.set("audit:1", "ok")
    assert await store.get("audit:1") == "ok"
    for check in ({"version": version + 1}, {"exists": False}):
        tx = store.transaction()
        tx.check("user:1", **check)
        tx.set("audit:2", "no")
        with pytest.raises(TransactionFailedError) as info:
            await tx.commit()
        assert [r.code for r in info.value.reasons] == ["condition_failed", "none"]
        assert info.value.reasons[0].current_version == version
    assert not await store.exists("audit:2")
    assert await store.get_with_version("user:1") == ("alice", version)  # checks write nothing


async def test_incr_on_a_value_that_is_not_a_counter_cancels_everything(store: KVStore) -> None:
    await store.set("name", "alice")
    tx = store.transaction()
    tx.set("other", "x")
    tx.incr("name", 1)
    with pytest.raises(TransactionFailedError) as info:
        await tx.commit()
    assert [(r.key, r.code) for r in info.value.failed] == [("name", "validation")]
    assert await store.get("name") == "alice"
    assert not await store.exists("other")


async def test_ttl_versions_and_expired_counters_as_in_single_key_writes(
    store: KVStore, clock: Clock
) -> None:
    await store.set("old", "v")
    _, before = await store.get_with_version("old")
    async with store.transaction() as tx:
        tx.set("old", "w", ttl=1)
        tx.incr("window", 2, ttl=1)
        tx.set("fresh", "new")
    assert await store.get_with_version("old") == ("w", before + 1)
    remaining = await store.ttl("window")
    assert remaining is not None and 0 < remaining <= 1
    assert await store.ttl("fresh") is None
    clock.advance(1.0)
    assert not await store.exists("old")
    async with store.transaction() as tx:  # the expired counter restarts, as incr does
        tx.incr("window", 5)
        tx.set_json("doc", {"a": 1})
    assert await store.get("window") == 5
    assert await store.ttl("window") is None
    assert await store.get_json("doc") == {"a": 1}
    async with store.transaction() as tx:  # an expired key counts as absent
        tx.set("old", "again", if_absent=True)
    assert await store.get("old") == "again"


async def test_one_action_per_key_and_validation_before_anything_is_sent(store: KVStore) -> None:
    tx = store.transaction()
    tx.set("k", "v")
    with pytest.raises(KVValidationError, match="one action per key"):
        tx.incr("k", 1)
    with pytest.raises(InvalidKeyError):
        tx.set("", "v")
    with pytest.raises(TypeError, match="str or bytes"):
        tx.set("k2", 5)  # type: ignore[arg-type]
    with pytest.raises(ValueTooLargeError):
        tx.set("k3", os.urandom(500_000))
    with pytest.raises(KVValidationError, match="ttl"):
        tx.set("k4", "v", ttl=-1)
    with pytest.raises(KVValidationError, match="not both"):
        tx.set("k5", "v", if_absent=True, if_version=3)
    with pytest.raises(TypeError, match="delta"):
        tx.incr("k6", 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="if_version"):
        tx.delete("k7", if_version="3")  # type: ignore[arg-type]
    with pytest.raises(KVValidationError, match="needs version= or exists="):
        tx.check("k8")
    with pytest.raises(KVValidationError, match="missing key"):
        tx.check("k8", version=3, exists=False)
    with pytest.raises(TypeError, match="exists"):
        tx.check("k8", exists="yes")  # type: ignore[arg-type]
    assert len(tx) == 1  # only the valid action was kept
    for index in range(99):
        tx.set(f"key:{index}", "v")
    with pytest.raises(KVValidationError, match="at most 100"):
        tx.set("key:100", "v")
    tx.discard()
    assert [k async for k in store.keys()] == []


async def test_the_4_mb_limit_is_checked_as_actions_are_added(make_store: StoreFactory) -> None:
    store = await make_store(compress_threshold=None, max_value_bytes=400_000)
    tx = store.transaction()
    for index in range(10):
        tx.set(f"big:{index}", b"x" * 399_000)
    with pytest.raises(KVValidationError, match="4 MB"):
        tx.set("big:10", b"x" * 399_000)
    assert len(tx) == 10


async def test_empty_commit_sends_nothing_and_a_second_commit_is_refused(store: KVStore) -> None:
    tx = store.transaction()
    await tx.commit()
    assert tx.state == "committed"
    with pytest.raises(KVError, match="already committed"):
        await tx.commit()
    with pytest.raises(KVError, match="already committed"):
        tx.set("k", "v")
    assert "committed" in repr(tx)


async def test_transactions_in_a_namespace_stay_in_it(store: KVStore) -> None:
    view = store.namespace("tenant")
    await store.set("k", "root")
    async with view.transaction() as tx:
        tx.set("k", "tenant")
        tx.incr("n", 2)
    assert await store.get("k") == "root"
    assert await view.get_many(["k", "n"], snapshot=True) == {"k": "tenant", "n": 2}
    assert sorted([k async for k in view.keys()]) == ["k", "n"]
    assert [k async for k in store.keys()] == ["k"]


async def test_compressed_values_round_trip(make_store: StoreFactory) -> None:
    store = await make_store(compress_threshold=100)
    text = "compress me " * 1000
    async with store.transaction() as tx:
        tx.set("doc", text)
    assert await store.get("doc") == text
    item = await raw_item(store, "doc")
    assert item is not None and item["z"] == {"S": "s"}
    assert len(item["value"]["B"]) < len(text)


async def test_snapshot_reads(store: KVStore, clock: Clock) -> None:
    values: dict[str, str | bytes] = {"a": "1", "b": b"2"}
    await store.set_many(values)
    await store.incr("n", 7)
    await store.set("brief", "x", ttl=1)
    got = await store.get_many(["a", "b", "n", "brief", "missing", "a"], snapshot=True)
    assert got == {"a": "1", "b": b"2", "n": 7, "brief": "x"}
    clock.advance(1.0)
    assert await store.get_many(["brief", "a"], snapshot=True) == {"a": "1"}
    assert await store.get_many([], snapshot=True) == {}
    with pytest.raises(KVValidationError, match="at most 100"):
        await store.get_many([f"k{i}" for i in range(101)], snapshot=True)
    with pytest.raises(TypeError):
        await store.get_many("ab", snapshot=True)
    with pytest.raises(InvalidKeyError):
        await store.get_many([""], snapshot=True)


async def test_a_closed_store_refuses_to_commit(make_store: StoreFactory) -> None:
    store = await make_store()
    tx = store.transaction()
    tx.set("k", "v")
    await store.aclose()
    with pytest.raises(StoreClosedError):
        await tx.commit()
    with pytest.raises(StoreClosedError):
        await store.get_many(["k"], snapshot=True)


async def test_reason_codes() -> None:
    assert code_of("ConditionalCheckFailed") == "condition_failed"
    assert code_of("TransactionConflict") == "conflict"
    assert code_of("ThrottlingError") == "throttled"
    assert code_of(None) == "none"
    assert code_of("ItemCollectionSizeLimitExceeded") == "item_collection_size_limit_exceeded"
    assert snake("MockValidationException") == "mock_validation"
    error = TransactionFailedError(
        "x",
        reasons=[
            TransactionReason(0, "set", "k", "conflict"),
            TransactionReason(1, "check", "j", "none"),
        ],
    )
    assert error.retryable
    assert [r.key for r in error.failed] == ["k"]
    assert not TransactionFailedError("x").retryable


# -- dynalite: no transaction API -----------------------------------------------------


async def test_dynalite_declares_it_has_no_transactions(dynalite_endpoint: str) -> None:
    from tests.conftest import CAPABILITIES

    assert "transactions" in CAPABILITIES["dynalite"]
    name = f"tx-{uuid.uuid4().hex[:10]}"
    async with AsyncDynamoKV(table=name, endpoint=dynalite_endpoint, create_table=True) as kv:
        tx = kv.transaction()
        tx.set("k", "v")
        with pytest.raises(KVError):
            await tx.commit()
        assert not await kv.exists("k")
        await kv.client.delete_table(TableName=name)


# -- under injected faults (moto behind the fault proxy) ---------------------------------


@pytest_asyncio.fixture
async def faulty(moto_endpoint: str) -> AsyncIterator[tuple[AsyncDynamoKV, FaultProxy]]:
    name = f"tx-{uuid.uuid4().hex[:10]}"
    async with AsyncDynamoKV(table=name, endpoint=moto_endpoint, create_table=True) as direct:
        proxy = await FaultProxy(int(moto_endpoint.rsplit(":", 1)[1])).start()
        try:
            yield direct, proxy
        finally:
            await proxy.kill()
            await direct.client.delete_table(TableName=name)


def _through(direct: AsyncDynamoKV, proxy: FaultProxy, **fields: Any) -> AsyncDynamoKV:
    settings: dict[str, Any] = {
        "connect_timeout": 5.0,  # no connect fails here; a loaded loop is slow
        "read_timeout": 2.0,
        "max_attempts": 3,
        "create_table": False,
        "coalesce_reads": False,
    }
    settings.update(fields)
    return AsyncDynamoKV(direct.config, endpoint=proxy.endpoint, **settings)


@pytest.mark.parametrize("transport", ["lean", "botocore"])
async def test_a_lost_reply_commits_once(
    faulty: tuple[AsyncDynamoKV, FaultProxy], transport: str
) -> None:
    direct, proxy = faulty
    await direct.set("order", "new")
    _, version = await direct.get_with_version("order")
    async with _through(direct, proxy, transport=transport) as kv:
        proxy.lose_replies["TransactWriteItems"] = 1
        async with kv.transaction() as tx:
            tx.set("order", "paid", if_version=version)
            tx.incr("paid", 1)
            tx.set("invoice", "i", if_absent=True)
        assert proxy.lost_replies == 1
    assert await direct.get_with_version("order") == ("paid", version + 1)
    assert await direct.get("paid") == 1  # applied once, not twice
    assert await direct.get("invoice") == "i"


@pytest.mark.parametrize("transport", ["lean", "botocore"])
async def test_all_or_nothing_under_throttling_and_5xx(
    faulty: tuple[AsyncDynamoKV, FaultProxy], transport: str
) -> None:
    direct, proxy = faulty
    proxy.fault_rate = 0.4
    succeeded = failed = in_doubt = 0
    # The waits between retries change neither what is retried nor the outcome judged
    # here (the retry tests time them); botocore keeps its own waits.
    async with _through(direct, proxy, transport=transport, max_attempts=2) as kv:
        with set_retry_waits(False):
            for index in range(30):
                try:
                    async with kv.transaction() as tx:
                        tx.incr("a", 1)
                        tx.incr("b", 1)
                        tx.set(f"order:{index}", "paid")
                except WriteInDoubtError:  # noqa: PERF203
                    failed += 1
                    in_doubt += 1
                except TransientError:  # nothing was applied
                    failed += 1
                else:
                    succeeded += 1
    proxy.fault_rate = 0.0
    assert proxy.stats.injected > 0 and succeeded > 0 and failed > 0
    counts = await direct.get_many(["a", "b"])
    a, b = counts.get("a", 0), counts.get("b", 0)
    orders = len(await direct.keys("order:"))
    assert a == b == orders  # every commit applied whole or not at all
    assert succeeded <= a <= succeeded + in_doubt


async def test_memory_transactions_are_atomic_against_concurrent_writers() -> None:
    async with InMemoryKV() as kv:

        async def move() -> None:
            async with kv.transaction() as tx:
                tx.incr("from", -1)
                tx.incr("to", 1)

        await asyncio.gather(*(move() for _ in range(50)))
        assert await kv.get_many(["from", "to"], snapshot=True) == {"from": -50, "to": 50}


# -- what DynamoDB answers and the emulators do not: scripted replies --------------------


def _cancelled(reasons: list[dict[str, Any]], *, in_doubt: bool = False) -> ServiceError:
    return ServiceError(
        "TransactionCanceledException",
        "Transaction cancelled",
        status=400,
        body={"CancellationReasons": reasons},
        in_doubt=in_doubt,
    )


async def test_cancellations_dynamodb_reports(moto_endpoint: str) -> None:
    name = f"tx-{uuid.uuid4().hex[:10]}"
    async with AsyncDynamoKV(table=name, endpoint=moto_endpoint, create_table=True) as kv:
        await kv.set("a", "1")
        replies: list[BaseException] = []

        async def scripted(action: str, request: dict[str, Any], send: Any) -> dict[str, Any]:
            if action in ("TransactWriteItems", "TransactGetItems") and replies:
                raise replies.pop(0)
            response: dict[str, Any] = await send(action, request)
            return response

        kv._core.transport = Intercepted(kv._core.transport, scripted)

        def tx() -> Any:
            t = kv.transaction()
            t.set("a", "2")
            t.check("b", exists=False)
            return t

        # A conflict is an error worth retrying, raised from inside the operation.
        replies.append(_cancelled([{"Code": "TransactionConflict"}, {"Code": "None"}]))
        with pytest.raises(TransactionFailedError) as info:
            await tx().commit()
        assert info.value.retryable and info.value.failed[0].code == "conflict"
        # An earlier attempt may have committed and no old item came back: read to tell.
        # "a" does not carry this commit's token: never applied, or applied and
        # overwritten since; nothing tells which, so the commit is in doubt.
        replies.append(_cancelled([{"Code": "ConditionalCheckFailed"}], in_doubt=True))
        with pytest.raises(WriteInDoubtError) as doubt:
            await tx().commit()
        assert doubt.value.keys == ("a", "b")
        # Another in-progress attempt with the same token: sent again.
        replies.append(ServiceError("TransactionInProgressException", "busy", status=400))
        await tx().commit()
        assert await kv.get("a") == "2"
        # Unreadable old items in the reasons are reported, not raised.
        bad = {"pk": {"S": "a"}, "xm": {"N": "soon"}}
        replies.append(
            _cancelled([{"Code": "ConditionalCheckFailed", "Item": bad}, {"Code": "None"}])
        )
        with pytest.raises(TransactionFailedError) as info:
            await tx().commit()
        assert info.value.reasons[0].current_version is None
        # A snapshot read cancelled by a conflicting transaction.
        replies.append(_cancelled([{"Code": "None"}, {"Code": "TransactionConflict"}]))
        with pytest.raises(TransactionFailedError) as snap:
            await kv.get_many(["a", "b"], snapshot=True)
        assert [r.code for r in snap.value.reasons] == ["none", "conflict"]
        assert snap.value.reasons[1].action == "get" and snap.value.retryable
        replies.append(ServiceError("AccessDeniedException", "no", status=400))
        with pytest.raises(KVError):
            await kv.get_many(["a"], snapshot=True)
        await kv.client.delete_table(TableName=name)


async def test_a_transaction_in_progress_is_sent_again_after_a_retry_wait() -> None:
    async with InMemoryKV() as kv:
        busy = [ServiceError("TransactionInProgressException", "busy", status=400)] * 2
        sent = 0

        async def scripted(action: str, request: dict[str, Any], send: Any) -> dict[str, Any]:
            nonlocal sent
            if action == "TransactWriteItems":
                sent += 1
                if busy:
                    raise busy.pop()
            response: dict[str, Any] = await send(action, request)
            return response

        kv._core.transport = Intercepted(kv._core.transport, scripted)
        tx = kv.transaction()
        tx.set("a", "1")
        with set_retry_waits(False) as skipped:
            await tx.commit()
        assert sent == 3 and await kv.get("a") == "1"
        assert len(skipped) == 2
        assert 0.0 <= skipped[0] <= 0.1 and 0.0 <= skipped[1] <= 0.2


async def test_memory_refuses_a_counter_beyond_38_digits() -> None:
    # DynamoDB keeps 38 significant digits: 10**38 (one digit) fits, 10**38 + 1 does not,
    # and a sum that would need more is refused, never rounded.
    async with InMemoryKV() as kv:
        await kv.set_counter("big", 10**38 - 1)
        tx = kv.transaction()
        tx.incr("big", 2)
        with pytest.raises(TransactionFailedError) as info:
            await tx.commit()
        assert info.value.failed[0].code == "validation"
        assert await kv.get("big") == 10**38 - 1
        with pytest.raises(KVError) as single:
            await kv.incr("big", 2)
        assert "38 significant digits" in (single.value.reason or "")
        assert await kv.get("big") == 10**38 - 1
        assert await kv.incr("big", 1) == 10**38


async def test_a_corrupt_item_in_a_snapshot(store: KVStore) -> None:
    await store.set("good", "v")
    await put_raw(store, {"pk": {"S": "bad"}, "value": {"L": []}})
    with pytest.raises(CorruptItemError) as info:
        await store.get_many(["good", "bad"], snapshot=True)
    assert info.value.done == {"good": "v"} and set(info.value.corrupt) == {"bad"}


# -- with the near cache, compression, encryption and offload --------------------------


async def test_a_commit_drops_its_keys_from_the_near_cache(make_store: StoreFactory) -> None:
    store = await make_store(local_cache_items=100)
    await store.set("k", "old")
    await store.incr("n", 1)
    assert await store.get("k") == "old"  # now cached
    assert await store.get("n") == 1
    async with store.transaction() as tx:
        tx.set("k", "new")
        tx.incr("n", 1)
    assert await store.get("k") == "new"
    assert await store.get("n") == 2


async def test_encrypted_values_read_in_snapshots_and_are_refused_in_transactions(
    make_store: StoreFactory,
) -> None:
    pytest.importorskip("cryptography")
    store = await make_store(encryption_keys={"k1": b"\x01" * 32}, encryption_key_id="k1")
    await store.set("secret", "plain text")
    assert await store.get_many(["secret"], snapshot=True) == {"secret": "plain text"}
    tx = store.transaction()
    with pytest.raises(KVValidationError, match="encrypted"):
        tx.set("secret", "other")
    tx.incr("n", 1)  # counters are not encrypted: fine
    await tx.commit()
    assert await store.get("n") == 1
