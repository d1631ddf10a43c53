"""Faults injected between the store and dynalite: nothing hangs, nothing is lost, errors are typed.

Each scenario adds a row to RELIABILITY.md: ``python -m nox -s reliability``
runs this module with ``AIODYNKV_RELIABILITY_OUT=RELIABILITY.md``.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from aiodynkv import (
    AsyncDynamoKV,
    BatchIncompleteError,
    KeyNotFoundError,
    KVConnectionError,
    KVTimeoutError,
    TransientError,
    WriteInDoubtError,
)
from tests.faults import FaultProxy

ROWS: list[dict[str, Any]] = []
TYPED = (KVConnectionError, KVTimeoutError, TransientError, WriteInDoubtError)


def record(
    scenario: str,
    injected: str,
    attempted: int,
    succeeded: int,
    failed: int,
    lost: int,
    test: str,
    *,
    transport: str | None = None,
) -> None:
    """One row of RELIABILITY.md; the transport in use is named unless `transport` is ""."""
    name = TRANSPORT["name"] if transport is None else transport
    ROWS.append(
        {
            "scenario": f"{scenario} [{name}]" if name else scenario,
            "injected": injected,
            "attempted": attempted,
            "succeeded": succeeded,
            "failed": failed,
            "lost": lost,
            "test": test,
        }
    )


# Minutes of injected faults: `nox -s full` and `nox -s reliability` run them.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session", autouse=True)
def reliability_report() -> Iterator[None]:
    """Writes the rows at the end of the session (test_truth.py adds its own)."""
    yield
    out = os.environ.get("AIODYNKV_RELIABILITY_OUT")
    if not out or not ROWS:
        return
    lines = [
        "# Reliability",
        "",
        "Every figure below comes from `tests/integration/test_reliability.py`, which puts a",
        "fault-injecting proxy (`tests/faults.py`) between the store and dynalite or moto on",
        "127.0.0.1, and from `tests/integration/test_truth.py` (threads and loops, closing,",
        "foreign data). Each proxy scenario runs on both transports, `[lean]` (the default)",
        "and `[botocore]`. Regenerate with `python -m nox -s reliability`; CI runs the same",
        "tests on every change.",
        "",
        "*Succeeded*: calls that returned normally. *Failed (typed)*: calls that raised a",
        "documented aiodynkv error (`KVConnectionError`, `KVTimeoutError`, `ThrottledError`,",
        "`BatchIncompleteError`, ...) within the configured timeouts. *Lost*: writes reported",
        "as successful but missing or different when the table is read back directly, plus",
        "calls that hung or raised anything else. It must be 0.",
        "",
        "A write whose outcome cannot be known (its reply lost, then its retries refused, or",
        "another writer changing the key in between) raises `WriteInDoubtError` and counts",
        "as failed (typed): it is never reported done or undone when it may be either.",
        "",
        "| scenario | injected | attempted | succeeded | failed (typed) | lost | test |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r['scenario']} | {r['injected']} | {r['attempted']} | {r['succeeded']} | "
        f"{r['failed']} | {r['lost']} | `{r['test']}` |"
        for r in ROWS
    ]
    Path(out).write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest_asyncio.fixture
async def table(dynalite_endpoint: str) -> AsyncIterator[AsyncDynamoKV]:
    """A fresh table, reached directly (no proxy): the ground truth for read-backs."""
    name = f"r-{uuid.uuid4().hex[:12]}"
    async with AsyncDynamoKV(table=name, endpoint=dynalite_endpoint, create_table=True) as direct:
        yield direct
        await direct.client.delete_table(TableName=name)


@pytest_asyncio.fixture
async def proxy(dynalite_endpoint: str) -> AsyncIterator[FaultProxy]:
    upstream = int(dynalite_endpoint.rsplit(":", 1)[1])
    found = await FaultProxy(upstream).start()
    yield found
    await found.kill()


TRANSPORT = {"name": "lean"}


@pytest.fixture(params=["lean", "botocore"], autouse=True)
def transport(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every scenario runs on both transports (the store under test, not the ground truth)."""
    TRANSPORT["name"] = request.param
    yield request.param
    TRANSPORT["name"] = "lean"


def through(proxy: FaultProxy, direct: AsyncDynamoKV, **fields: Any) -> AsyncDynamoKV:
    settings: dict[str, Any] = {
        # No connect fails in these tests. On a loaded CI machine (the other xdist worker
        # running the fault matrix) 9 of 100 concurrent DeleteItems timed out connecting
        # at 0.5 s three times: honestly reported unprocessed, but not the fault under test.
        "connect_timeout": 5.0,
        "read_timeout": 1.0,
        "max_attempts": 3,
        "create_table": False,
        "transport": TRANSPORT["name"],
    }
    settings.update(fields)
    return AsyncDynamoKV(direct.config, endpoint=proxy.endpoint, **settings)


def bound(store: AsyncDynamoKV) -> float:
    """The longest a call may take: every attempt timing out, plus backoff and slack."""
    config = store.config
    return config.max_attempts * (config.connect_timeout + config.read_timeout) + 5.0


async def settle(calls: list[Any], limit: float) -> tuple[list[Any], float]:
    start = time.monotonic()
    results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=limit)
    return list(results), time.monotonic() - start


async def lost_writes(direct: AsyncDynamoKV, acknowledged: dict[str, str]) -> int:
    stored = await direct.get_many(acknowledged)
    return sum(1 for k, v in acknowledged.items() if stored.get(k) != v)


async def test_server_down_when_the_store_opens(proxy: FaultProxy, table: AsyncDynamoKV) -> None:
    await proxy.kill()
    store = through(proxy, table)
    async with store:  # opening makes no request
        results, elapsed = await settle([store.get(f"k{i}", None) for i in range(20)], bound(store))
        assert all(isinstance(r, KVConnectionError) for r in results), results
        assert elapsed < bound(store)
        with pytest.raises(KVConnectionError):
            await through(proxy, table, create_table=True).open()
        await proxy.restart()
        await store.set("back", "up")  # the same open store recovers
        assert await store.get("back") == "up"
    record(
        "server down when the store opens",
        "port closed",
        20,
        0,
        20,
        0,
        "test_server_down_when_the_store_opens",
    )


async def test_server_killed_mid_run_then_restarted(
    proxy: FaultProxy, table: AsyncDynamoKV
) -> None:
    store = through(proxy, table)
    async with store:
        writes = {f"k{i}": f"v{i}" for i in range(300)}

        async def write(key: str, value: str) -> str:
            await store.set(key, value)
            return key

        calls = [write(k, v) for k, v in writes.items()]

        async def killer() -> None:
            while proxy.stats.requests < 100:  # noqa: ASYNC110 (polling the proxy's counter)
                await asyncio.sleep(0.005)
            await proxy.kill()

        results, _ = await settle([*calls, killer()], bound(store) * 2)
        results = results[:-1]
        acknowledged = {k: writes[k] for k in results if isinstance(k, str)}
        failed = [r for r in results if isinstance(r, BaseException)]
        assert all(isinstance(r, TYPED) for r in failed), {type(r) for r in failed}
        assert failed, "the kill came too late to hit any call"
        await proxy.restart()
        assert await store.set("after", "restart") is True  # recovers without reopening
        lost = await lost_writes(table, acknowledged)
    assert lost == 0
    record(
        "server killed mid-run, then restarted",
        "all connections aborted, port closed",
        len(writes),
        len(acknowledged),
        len(failed),
        lost,
        "test_server_killed_mid_run_then_restarted",
    )


async def test_single_calls_succeed_through_30_percent_faults(
    proxy: FaultProxy, table: AsyncDynamoKV
) -> None:
    proxy.fault_rate = 0.3
    # botocore's "standard" mode stops retrying once its retry quota is spent (a circuit
    # breaker, tested below); "legacy" mode retries every call up to max_attempts.
    # A read timeout here would be a lost reply on a key 100 callers write at once: the
    # write token cannot tell a retry from another writer's write (RELIABILITY.md,
    # "what it does not cover"), so give a loaded 2-core machine room to answer.
    store = through(proxy, table, max_attempts=10, retry_mode="legacy", read_timeout=10.0)
    async with store:
        writes = {f"k{i}": f"v{i}" for i in range(300)}
        results, _ = await settle([store.set(k, v) for k, v in writes.items()], 120)
        reads, _ = await settle([store.get(k) for k in writes], 120)
        counters, _ = await settle([store.incr("hits") for _ in range(100)], 120)
    assert results == [True] * 300
    assert reads == list(writes.values())
    assert sorted(counters) == list(range(1, 101))  # each increment applied exactly once
    assert proxy.stats.injected > 100
    lost = await lost_writes(table, writes)
    assert lost == 0 and await table.get("hits") == 100
    record(
        "30 % throttling / 500 / 503, single calls",
        f"{proxy.stats.injected} faults in {proxy.stats.requests} requests",
        700,
        700,
        0,
        lost,
        "test_single_calls_succeed_through_30_percent_faults",
    )


async def test_batches_of_5000_through_30_percent_faults(
    proxy: FaultProxy, table: AsyncDynamoKV
) -> None:
    proxy.fault_rate = 0.3
    store = through(proxy, table, max_attempts=2, batch_deadline=20)
    items = {f"item:{i}": f"value-{i}" for i in range(5000)}
    async with store:
        try:
            await asyncio.wait_for(store.set_many(items), timeout=60)
            unwritten: frozenset[str] = frozenset()
        except BatchIncompleteError as exc:
            unwritten = exc.unprocessed
        try:
            got = await asyncio.wait_for(store.get_many(items), timeout=60)
            unread: frozenset[str] = frozenset()
        except BatchIncompleteError as exc:
            got, unread = exc.done, exc.unprocessed
    truth = await table.get_many(items)
    written = {k: v for k, v in items.items() if k not in unwritten}
    lost = sum(1 for k, v in written.items() if truth.get(k) != v)
    lost += sum(1 for k in unwritten if k in truth)  # reported unwritten yet present: not exact
    lost += sum(1 for k, v in got.items() if truth.get(k) != v)
    lost += len(set(items) - set(got) - set(unread) - (set(items) - set(truth)))
    assert lost == 0
    assert proxy.stats.injected > 0
    record(
        "30 % faults, set_many + get_many of 5,000",
        f"{proxy.stats.injected} faults in {proxy.stats.requests} requests",
        10_000,
        10_000 - len(unwritten) - len(unread),
        len(unwritten) + len(unread),
        lost,
        "test_batches_of_5000_through_30_percent_faults",
    )


async def test_responses_slower_than_read_timeout(proxy: FaultProxy, table: AsyncDynamoKV) -> None:
    await table.set("k", "v")
    store = through(proxy, table, read_timeout=0.3, max_attempts=2)
    async with store:
        proxy.delay = 1.0
        results, elapsed = await settle(
            [store.get("k"), store.set("k2", "v"), store.delete("k3")], 10
        )
        # The writes were sent (and applied) before their replies were held: in doubt.
        assert isinstance(results[0], KVTimeoutError), results
        assert all(isinstance(r, WriteInDoubtError) for r in results[1:]), results
        assert elapsed < bound(store)
        proxy.delay = 0.0
        assert await store.get("k") == "v"
        with pytest.raises(KeyNotFoundError):
            await store.get("absent")
    record(
        "responses slower than read_timeout",
        "1 s delay, read_timeout 0.3 s",
        3,
        0,
        3,
        0,
        "test_responses_slower_than_read_timeout",
    )


async def test_the_pool_never_exceeds_max_pool_connections(
    proxy: FaultProxy, table: AsyncDynamoKV
) -> None:
    store = through(proxy, table, max_pool_connections=8, coalesce_reads=False)
    async with store:
        writes = {f"k{i}": f"v{i}" for i in range(2000)}
        results, _ = await settle([store.set(k, v) for k, v in writes.items()], 120)
    assert results == [True] * 2000
    assert 1 <= proxy.stats.max_connections <= 8
    lost = await lost_writes(table, writes)
    assert lost == 0
    record(
        "2,000 concurrent writes, pool of 8",
        "none (connection count watched)",
        2000,
        2000,
        0,
        lost,
        "test_the_pool_never_exceeds_max_pool_connections",
    )


async def test_standard_retry_mode_gives_up_with_typed_errors_under_sustained_faults(
    proxy: FaultProxy, table: AsyncDynamoKV
) -> None:
    proxy.fault_rate = 0.3
    store = through(proxy, table, max_attempts=3)  # retry_mode="standard", the default
    writes = {f"k{i}": f"v{i}" for i in range(500)}
    async with store:
        results, _ = await settle([store.set(k, v) for k, v in writes.items()], 120)
    acknowledged = {k: writes[k] for k, r in zip(writes, results, strict=True) if r is True}
    failed = [r for r in results if r is not True]
    # A write whose earlier attempt met a 5xx may have been applied: in doubt, not transient.
    assert all(isinstance(r, (TransientError, WriteInDoubtError)) for r in failed), {
        type(r) for r in failed
    }
    lost = await lost_writes(table, acknowledged)
    assert lost == 0
    record(
        "30 % faults, standard retry mode (3 attempts, retry quota)",
        f"{proxy.stats.injected} faults in {proxy.stats.requests} requests",
        len(writes),
        len(acknowledged),
        len(failed),
        lost,
        "test_standard_retry_mode_gives_up_with_typed_errors_under_sustained_faults",
    )


# -- applied, reply lost: exactly-once writes ------------------------------------------


@pytest_asyncio.fixture(params=["moto", "dynalite"])
async def lossy(request: pytest.FixtureRequest) -> AsyncIterator[tuple[AsyncDynamoKV, FaultProxy]]:
    """A fresh table on moto (returns the old item) or dynalite (does not), and a proxy."""
    endpoint = request.getfixturevalue(f"{request.param}_endpoint")
    name = f"x-{uuid.uuid4().hex[:12]}"
    async with AsyncDynamoKV(table=name, endpoint=endpoint, create_table=True) as direct:
        found = await FaultProxy(int(endpoint.rsplit(":", 1)[1])).start()
        try:
            yield direct, found
        finally:
            await found.kill()
            await direct.client.delete_table(TableName=name)


def lossy_store(
    direct: AsyncDynamoKV, proxy: FaultProxy, read_timeout: float = 2.0
) -> AsyncDynamoKV:
    return through(proxy, direct, read_timeout=read_timeout, coalesce_reads=False)


async def burst_read_timeout(direct: AsyncDynamoKV, proxy: FaultProxy, keys: list[str]) -> float:
    """A read timeout that this server's own replies, under this machine's load, stay under.

    It times a `delete_many` of `keys` (absent: nothing changes) through `proxy`: as many
    requests at once as the scenario sends, so the time includes moto's or dynalite's
    queue of them. No reply of the burst took longer than the whole call, and the timeout
    is five times that, never under 2 s: only a lost reply, never a slow one, ends an
    attempt of the scenario without its answer.
    """
    async with through(proxy, direct, read_timeout=60.0, coalesce_reads=False) as probe:
        start = time.monotonic()
        assert await probe.delete_many(keys) == 0
        took = time.monotonic() - start
    return max(2.0, 5 * took)


async def test_applied_reply_lost_on_every_single_key_write_path(
    lossy: tuple[AsyncDynamoKV, FaultProxy], request: pytest.FixtureRequest
) -> None:
    direct, proxy = lossy
    server = request.node.callspec.params["lossy"]
    async with lossy_store(direct, proxy) as kv:
        results: dict[str, bool] = {}

        async def lose_once(action: str) -> None:
            proxy.lose_replies[action] = 1

        await kv.incr("counter", 5)
        await lose_once("UpdateItem")
        results["incr adds once"] = await kv.incr("counter", 3) == 8
        results["incr final state"] = await direct.get("counter") == 8

        await lose_once("UpdateItem")
        results["set(if_absent) is True"] = await kv.set("fresh", "mine", if_absent=True) is True
        results["set(if_absent) stored"] = await direct.get("fresh") == "mine"

        _, version = await direct.get_with_version("fresh")
        await lose_once("UpdateItem")
        results["set(if_version) succeeds"] = await kv.set("fresh", "v2", if_version=version)
        value, after = await direct.get_with_version("fresh")
        results["set(if_version) applied once"] = (value, after) == ("v2", version + 1)

        await lose_once("UpdateItem")
        results["plain set"] = await kv.set("fresh", "v3") is True
        value, last = await direct.get_with_version("fresh")
        results["plain set applied once"] = (value, last) == ("v3", after + 1)

        await lose_once("UpdateItem")
        results["expire"] = await kv.expire("fresh", 60) is True
        await lose_once("UpdateItem")
        results["persist"] = await kv.persist("fresh") is True
        _, persisted = await direct.get_with_version("fresh")

        await lose_once("DeleteItem")
        results["delete(if_version) succeeds"] = await kv.delete("fresh", if_version=persisted)
        results["delete(if_version) deleted"] = not await direct.exists("fresh")
    assert proxy.lost_replies == 7
    failed = [name for name, ok in results.items() if not ok]
    record(
        f"applied, reply lost: single-key writes ({server})",
        "7 replies dropped after the server applied the write",
        len(results),
        len(results) - len(failed),
        0,
        len(failed),
        "test_applied_reply_lost_on_every_single_key_write_path",
    )
    assert failed == []


async def test_applied_reply_lost_on_batches_leaves_exact_state(
    lossy: tuple[AsyncDynamoKV, FaultProxy], request: pytest.FixtureRequest
) -> None:
    direct, proxy = lossy
    server = request.node.callspec.params["lossy"]
    data = {f"b{i:03d}": f"v{i}" for i in range(200)}
    # Each key its own DeleteItem, 100 at once: a reply slower than the read timeout
    # would put its key in doubt too, which is not the fault under test.
    timeout = await burst_read_timeout(direct, proxy, [f"absent-{k}" for k in list(data)[:100]])
    async with lossy_store(direct, proxy, timeout) as kv:
        proxy.lose_replies["BatchWriteItem"] = 3
        await kv.set_many(data)
        stored = await direct.get_many(list(data))
        proxy.lose_replies["DeleteItem"] = 3  # delete_many: one DeleteItem per key
        with pytest.raises(BatchIncompleteError) as info:
            await kv.delete_many(list(data)[:100])
        left = await direct.get_many(list(data))
    # A resent DeleteItem whose first reply was lost finds nothing: those keys are in
    # doubt (never counted as "did not exist"); every other key is done.
    error = info.value
    deleted = list(data)[:100]
    # Every key is reported exactly once, and a key reported unprocessed was not deleted.
    assert sorted([*error.done, *error.unprocessed, *error.in_doubt]) == deleted
    assert not [k for k in error.unprocessed if k not in left]
    assert proxy.lost_replies == 6
    assert len(error.in_doubt) == 3 and not error.unprocessed, (
        f"read timeout {timeout:.1f} s: {error.__cause__!r}"
    )
    assert len(info.value.done) == 97
    wrong = sum(1 for k, v in data.items() if stored.get(k) != v)
    wrong += sum(1 for k in list(data)[:100] if k in left)
    wrong += sum(1 for k in list(data)[100:] if left.get(k) != data[k])
    record(
        f"applied, reply lost: set_many + delete_many of 200 ({server})",
        "3 batch and 3 delete replies dropped after the server applied them",
        2,
        2,
        0,
        wrong,
        "test_applied_reply_lost_on_batches_leaves_exact_state",
    )
    assert wrong == 0


async def test_delete_many_whose_replies_never_come_reports_keys_in_doubt(
    lossy: tuple[AsyncDynamoKV, FaultProxy],
) -> None:
    direct, proxy = lossy
    await direct.set_many({f"x{i:02d}": "v" for i in range(10)})
    lost = [f"x{i:02d}" for i in range(4)]
    async with through(proxy, direct, read_timeout=1.0, max_attempts=2) as kv:
        assert await kv.delete_many([f"x{i:02d}" for i in range(4, 10)]) == 6
        proxy.lose_replies["DeleteItem"] = 1000
        with pytest.raises(BatchIncompleteError) as info:
            await kv.delete_many([*lost, "never-there"])
    error = info.value
    assert error.unprocessed == frozenset()  # every request was sent
    assert error.in_doubt == frozenset([*lost, "never-there"])
    assert error.done == {}
    assert await direct.get_many(lost) == {}  # in doubt: here the server did apply them


async def test_a_batch_whose_replies_never_come_reports_keys_in_doubt(
    lossy: tuple[AsyncDynamoKV, FaultProxy], request: pytest.FixtureRequest
) -> None:
    direct, proxy = lossy
    server = request.node.callspec.params["lossy"]
    data = {f"d{i:03d}": "v" for i in range(60)}
    async with through(proxy, direct, read_timeout=1.0, max_attempts=2) as kv:
        proxy.lose_replies["BatchWriteItem"] = 1000
        with pytest.raises(BatchIncompleteError) as info:
            await kv.set_many(data)
    error = info.value
    assert error.unprocessed == frozenset()  # none is known not to be written
    assert error.in_doubt == frozenset(data)  # every chunk was sent, no reply came
    stored = await direct.get_many(list(data))
    # In doubt means "may have been applied": here the server did apply them.
    mislabelled = sum(1 for k in data if k not in stored) + len(error.done)
    record(
        f"every batch reply lost ({server})",
        "all BatchWriteItem replies dropped",
        len(data),
        0,
        len(data),
        mislabelled,
        "test_a_batch_whose_replies_never_come_reports_keys_in_doubt",
    )
    assert mislabelled == 0
