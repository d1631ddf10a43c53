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
)
from tests.faults import FaultProxy

ROWS: list[dict[str, Any]] = []
TYPED = (KVConnectionError, KVTimeoutError, TransientError)


def record(
    scenario: str, injected: str, attempted: int, succeeded: int, failed: int, lost: int, test: str
) -> None:
    ROWS.append(
        {
            "scenario": scenario,
            "injected": injected,
            "attempted": attempted,
            "succeeded": succeeded,
            "failed": failed,
            "lost": lost,
            "test": test,
        }
    )


@pytest.fixture(scope="module", autouse=True)
def reliability_report() -> Iterator[None]:
    yield
    out = os.environ.get("AIODYNKV_RELIABILITY_OUT")
    if not out or not ROWS:
        return
    lines = [
        "# Reliability",
        "",
        "Every figure below comes from `tests/integration/test_reliability.py`, which puts a",
        "fault-injecting proxy (`tests/faults.py`) between the store and dynalite on 127.0.0.1.",
        "Regenerate with `python -m nox -s reliability`; CI runs the same tests on every change.",
        "",
        "*Succeeded*: calls that returned normally. *Failed (typed)*: calls that raised a",
        "documented aiodynkv error (`KVConnectionError`, `KVTimeoutError`, `ThrottledError`,",
        "`BatchIncompleteError`, ...) within the configured timeouts. *Lost*: writes reported",
        "as successful but missing or different when the table is read back directly, plus",
        "calls that hung or raised anything else. It must be 0.",
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


def through(proxy: FaultProxy, direct: AsyncDynamoKV, **fields: Any) -> AsyncDynamoKV:
    settings: dict[str, Any] = {
        "connect_timeout": 0.5,
        "read_timeout": 1.0,
        "max_attempts": 3,
        "create_table": False,
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
    store = through(proxy, table, max_attempts=10, retry_mode="legacy")
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
        assert all(isinstance(r, KVTimeoutError) for r in results), results
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
    assert all(isinstance(r, TransientError) for r in failed), {type(r) for r in failed}
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
