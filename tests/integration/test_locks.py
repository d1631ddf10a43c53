"""Leases with fencing tokens: the contract on every backend, processes, crashes and faults."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio

from aiodynkv import (
    AsyncDynamoKV,
    CorruptItemError,
    InvalidKeyError,
    KVConnectionError,
    KVError,
    KVStore,
    KVValidationError,
    LeaseLostError,
    Lock,
    LockNotAcquiredError,
)
from aiodynkv._keys import LOCK, reserved_key
from aiodynkv._lock import DynamoOps, seen_in
from aiodynkv.testing import InMemoryKV, set_retry_waits
from tests.conftest import StoreFactory, put_raw, raw_item
from tests.faults import FaultProxy

pytestmark = pytest.mark.asyncio
ROOT = Path(__file__).resolve().parents[2]


def crash(lock: Lock) -> None:
    """Stop renewing, as a holder that crashed or froze would."""
    assert lock._renewer is not None
    lock._renewer.cancel()


# -- the contract, on every backend ------------------------------------------------------


async def test_one_holder_at_a_time_and_tokens_grow(store: KVStore) -> None:
    first = store.lock("job", lease=5, wait=0)
    token = await first.acquire()
    assert first.held and not first.lost and first.token == token
    other = store.lock("job", lease=5, wait=0)
    with pytest.raises(LockNotAcquiredError) as info:
        await other.acquire()
    assert info.value.key == "job" and info.value.operation == "lock"
    assert "job" not in str(info.value)
    assert other.token is None and not other.held
    await first.release()
    assert "free" in repr(first)
    assert await other.acquire() == token + 1
    await other.release()
    async with store.lock("job", wait=0) as held:
        assert held.token == token + 2


async def test_a_waiter_gets_the_lock_when_it_is_released(store: KVStore) -> None:
    holder = store.lock("job", lease=5, wait=0)
    await holder.acquire()

    async def release_soon() -> None:
        await asyncio.sleep(0.3)
        await holder.release()

    started = time.monotonic()
    task = asyncio.create_task(release_soon())
    async with store.lock("job", lease=5, wait=10, poll=0.05) as held:
        assert held.token == (holder.token or 0) + 1
        assert 0.25 <= time.monotonic() - started < 5.0  # soon after, not at the wait's end
    await task


async def test_wait_runs_out_with_lock_not_acquired(store: KVStore) -> None:
    async with store.lock("job", lease=5, wait=0):
        started = time.monotonic()
        with pytest.raises(LockNotAcquiredError) as info:
            await store.lock("job", poll=0.05).acquire(wait=0.4)
        elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 3.0  # a last poll may be slow on a loaded machine
    assert 0.4 <= info.value.waited < 3.0


async def test_renewal_keeps_the_lease_past_its_length(store: KVStore) -> None:
    # Renewal tries get a third of the period each: 1/6 s, which a slow server on a loaded
    # machine still answers within.
    async with store.lock("job", lease=1.5, wait=0) as held:
        assert held.renew_every == pytest.approx(0.5)
        # A waiter watching for more than two leases never sees the version stand still.
        with pytest.raises(LockNotAcquiredError):
            await store.lock("job", lease=1.5, poll=0.05).acquire(wait=3.5)
        assert held.held and not held.lost
        held.check()


async def test_a_crashed_holder_is_taken_over_after_its_lease(store: KVStore) -> None:
    holder = store.lock("job", lease=0.8, wait=0)
    old = await holder.acquire()
    crash(holder)
    started = time.monotonic()
    async with store.lock("job", lease=5, wait=10, poll=0.1) as taker:
        waited = time.monotonic() - started
        assert taker.token is not None and taker.token > old
    assert 0.8 <= waited < 5.0  # soon after the lease, not at the wait's end
    assert holder.lost and not holder.held
    with pytest.raises(LeaseLostError):
        holder.check()
    with pytest.raises(LeaseLostError) as info:
        await holder.release()
    assert info.value.key == "job"


async def test_leaving_the_block_after_a_takeover_raises_lease_lost(store: KVStore) -> None:
    lock = store.lock("job", lease=0.5, wait=0)

    async def body() -> None:
        async with lock:
            crash(lock)
            async with store.lock("job", lease=5, wait=3, poll=0.05):
                pass

    with pytest.raises(LeaseLostError):
        await body()
    assert lock.lost
    with pytest.raises(LeaseLostError):
        await lock.extend()


async def test_lost_even_if_nobody_took_over_once_the_lease_ran_out(store: KVStore) -> None:
    lock = store.lock("job", lease=0.3, wait=0)

    async def body() -> None:
        async with lock:
            crash(lock)
            await asyncio.sleep(0.4)
            assert lock.lost

    with pytest.raises(LeaseLostError):
        await body()
    async with store.lock("job", wait=0) as again:  # released anyway on the way out
        assert again.token == (lock.token or 0) + 1


async def test_explicit_extend_and_release(store: KVStore) -> None:
    lock = store.lock("job", lease=1.0, wait=0)  # a slow acquire does not lose it
    with pytest.raises(KVError, match="does not hold"):
        await lock.release()
    with pytest.raises(LeaseLostError):
        await lock.extend()
    await lock.acquire()
    with pytest.raises(KVError, match="already holds"):
        await lock.acquire()
    await lock.extend(lease=3.0)
    assert lock.lease == 3.0
    crash(lock)
    await asyncio.sleep(1.2)  # past the old lease, within the new one
    assert lock.held
    with pytest.raises(LockNotAcquiredError):
        await store.lock("job", poll=0.05).acquire(wait=0.8)
    await lock.release()
    with pytest.raises(KVError, match="does not hold"):
        await lock.release()
    assert "free" in repr(lock)


async def test_release_inside_the_block_is_fine(store: KVStore) -> None:
    async with store.lock("job", wait=0) as held:
        await held.release()
        async with store.lock("job", wait=0) as other:
            assert other.token == (held.token or 0) + 1


async def test_locks_live_in_their_own_key_space(store: KVStore) -> None:
    await store.set("job", "a value")
    view = store.namespace("tenant")
    async with store.lock("job", wait=0) as root, view.lock("job", wait=0) as scoped:
        assert root.token == scoped.token == 1  # separate names, separate counters
        assert await store.get("job") == "a value"
        assert [k async for k in store.keys()] == ["job"]
        assert [k async for k in view.keys()] == []
        assert await view.clear() == 0
        assert await store.clear() == 1
    async with store.lock("job", wait=0) as again:
        assert again.token == 2  # clear() never resets fencing tokens
    item = await raw_item(store, reserved_key(store, LOCK, "job", "lock"))  # type: ignore[arg-type]
    assert item is not None and item["lock_fence"] == {"N": "2"}
    assert "lock_owner" not in item  # released


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"lease": 0}, KVValidationError),
        ({"lease": -1}, KVValidationError),
        ({"lease": float("inf")}, KVValidationError),
        ({"lease": "10"}, TypeError),
        ({"lease": True}, TypeError),
        ({"wait": -1}, KVValidationError),
        ({"wait": "5"}, TypeError),
        ({"renew_every": 10}, KVValidationError),
        ({"renew_every": 0}, KVValidationError),
        ({"poll": 0}, KVValidationError),
    ],
)
async def test_bad_arguments_raise_before_any_request(
    store: KVStore, fields: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        store.lock("job", **fields)
    assert [k async for k in store.keys()] == []


@pytest.mark.parametrize("name", ["", "a\x1fb", 5, "x" * 2046])
async def test_bad_names_raise_invalid_key(store: KVStore, name: Any) -> None:
    with pytest.raises(InvalidKeyError):
        store.lock(name)


async def test_acquire_wait_is_validated(store: KVStore) -> None:
    with pytest.raises(KVValidationError):
        await store.lock("job").acquire(wait=-0.5)


# -- processes -------------------------------------------------------------------------


def worker(*args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(  # noqa: S603 (our own worker module)
        [sys.executable, "-m", "tests.integration.lock_worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest_asyncio.fixture
async def dynalite_table(dynalite_endpoint: str) -> AsyncIterator[AsyncDynamoKV]:
    name = f"lk-{uuid.uuid4().hex[:10]}"
    async with AsyncDynamoKV(table=name, endpoint=dynalite_endpoint, create_table=True) as kv:
        yield kv
        await kv.client.delete_table(TableName=name)


@pytest.mark.slow
async def test_eight_processes_count_exactly_under_the_lease(
    dynalite_table: AsyncDynamoKV, dynalite_endpoint: str
) -> None:
    table = dynalite_table.config.table
    started = time.monotonic()
    procs = [worker("count", dynalite_endpoint, table, "25") for _ in range(8)]
    outputs = await asyncio.gather(*(asyncio.to_thread(p.communicate, timeout=90) for p in procs))
    assert [p.returncode for p in procs] == [0] * 8
    rows = [json.loads(line) for out, _ in outputs for line in out.splitlines()]
    assert len(rows) == 200
    assert await dynalite_table.get("count") == "200"  # read-sleep-write, never lost
    # Each critical section read what the previous holder wrote: token n read n - 1.
    assert sorted(row["token"] for row in rows) == list(range(1, 201))
    assert all(row["read"] == row["token"] - 1 for row in rows)
    assert time.monotonic() - started < 60


@pytest.fixture
def held_by_a_process(dynalite_table: AsyncDynamoKV, dynalite_endpoint: str) -> Iterator[Any]:
    # Renewal tries of a third of a second each: long enough for a loaded machine.
    proc = worker("hold", dynalite_endpoint, dynalite_table.config.table, "3")
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.mark.slow
async def test_a_killed_holder_is_taken_over_after_its_lease_with_a_higher_token(
    dynalite_table: AsyncDynamoKV, held_by_a_process: Any
) -> None:
    line = await asyncio.to_thread(held_by_a_process.stdout.readline)
    old = json.loads(line)["token"]
    with pytest.raises(LockNotAcquiredError):  # alive and renewing
        await dynalite_table.lock("job", poll=0.1).acquire(wait=4.0)
    held_by_a_process.send_signal(signal.SIGKILL)
    await asyncio.to_thread(held_by_a_process.wait, 10)
    started = time.monotonic()
    async with dynalite_table.lock("job", lease=5, wait=15, poll=0.1) as held:
        waited = time.monotonic() - started
        assert held.token is not None and held.token > old
    assert 3.0 <= waited < 10.0  # after the lease, and well before the wait's end


# -- faults between the holder and the server -----------------------------------------


class Events:
    """A logger that keeps (level, event, fields)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    def debug(self, event: str, **fields: Any) -> None:
        self.seen.append(("debug", event, fields))

    def info(self, event: str, **fields: Any) -> None:
        self.seen.append(("info", event, fields))

    def warning(self, event: str, **fields: Any) -> None:
        self.seen.append(("warning", event, fields))

    def named(self, event: str) -> list[dict[str, Any]]:
        return [fields for _, name, fields in self.seen if name == event]


@pytest_asyncio.fixture
async def proxy(dynalite_endpoint: str) -> AsyncIterator[FaultProxy]:
    found = await FaultProxy(int(dynalite_endpoint.rsplit(":", 1)[1])).start()
    yield found
    await found.kill()


def through(direct: AsyncDynamoKV, proxy: FaultProxy, **fields: Any) -> AsyncDynamoKV:
    settings: dict[str, Any] = {
        "connect_timeout": 5.0,  # no connect fails here; a loaded loop is slow
        "read_timeout": 0.5,
        "max_attempts": 2,
        "create_table": False,
        "coalesce_reads": False,
    }
    return AsyncDynamoKV(direct.config, endpoint=proxy.endpoint, **{**settings, **fields})


@pytest.mark.parametrize("transport", ["lean", "botocore"])
async def test_leases_renew_through_throttling_and_5xx(
    dynalite_table: AsyncDynamoKV, proxy: FaultProxy, transport: str
) -> None:
    events = Events()
    async with through(dynalite_table, proxy, transport=transport, logger=events) as kv:
        # Renewal tries of a third of a second each: long enough for a loaded machine.
        async with kv.lock("job", lease=3.0, wait=10, poll=0.05) as held:
            proxy.fault_rate = 0.3
            with pytest.raises(LockNotAcquiredError):  # a waiter sees it renewed throughout
                await dynalite_table.lock("job", poll=0.1).acquire(wait=5.0)
            assert held.held and not held.lost
        proxy.fault_rate = 0.0
    assert proxy.stats.injected > 0
    assert events.named("aiodynkv.lock_renew")  # every renewal is a traced operation
    assert events.named("aiodynkv.lock_wait")[0]["outcome"] == "acquired"
    assert not events.named("aiodynkv.lock_lost")


async def test_a_holder_cut_off_from_the_server_learns_it_lost_the_lease(
    dynalite_table: AsyncDynamoKV, proxy: FaultProxy
) -> None:
    events = Events()
    async with through(dynalite_table, proxy, logger=events) as kv:
        lock = kv.lock("job", lease=1.0, wait=0)

        async def body() -> None:
            async with lock as held:
                await proxy.kill()  # the server is gone for the holder, not for others
                async with dynalite_table.lock("job", lease=5, wait=5, poll=0.05) as taker:
                    assert taker.token is not None and taker.token > (held.token or 0)
                assert held.lost

        with pytest.raises(LeaseLostError):
            await body()
    lost = events.named("aiodynkv.lock_lost")
    assert len(lost) == 1 and lost[0]["reason"] == "renewals failed for a whole lease"


async def test_an_acquire_whose_reply_was_lost_still_holds_the_lock(
    dynalite_table: AsyncDynamoKV, proxy: FaultProxy
) -> None:
    async with through(dynalite_table, proxy, read_timeout=2.0, max_attempts=3) as kv:
        proxy.lose_replies["UpdateItem"] = 1
        lock = kv.lock("job", lease=5, wait=0)
        token = await lock.acquire()
        assert proxy.lost_replies == 1
        assert token == 1
        with pytest.raises(LockNotAcquiredError):
            await dynalite_table.lock("job").acquire(wait=0)
        proxy.lose_replies["UpdateItem"] = 1  # the release's reply is lost too
        await lock.release()
    async with dynalite_table.lock("job", wait=0) as held:
        assert held.token == 2


async def test_lock_spans_name_the_operations(moto_endpoint: str) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    name = f"lk-{uuid.uuid4().hex[:10]}"
    async with AsyncDynamoKV(
        table=name, endpoint=moto_endpoint, create_table=True, tracer_provider=provider
    ) as kv:
        # A lease long enough that a slow server cannot make it lapse; held until the
        # first renewal's span has ended.
        async with kv.lock("job", lease=3.0, wait=0):
            for _ in range(200):
                if any(
                    (s.attributes or {}).get("aiodynkv.operation") == "lock_renew"
                    for s in exporter.get_finished_spans()
                ):
                    break
                await asyncio.sleep(0.05)
        await kv.client.delete_table(TableName=name)
    operations = [
        span.attributes.get("aiodynkv.operation")
        for span in exporter.get_finished_spans()
        if span.attributes
    ]
    assert {"lock_acquire", "lock_renew", "lock_release"} <= set(operations)
    acquire = next(
        s
        for s in exporter.get_finished_spans()
        if s.attributes and s.attributes.get("aiodynkv.operation") == "lock_acquire"
    )
    assert acquire.name == f"UpdateItem {name}"
    assert acquire.attributes is not None and acquire.attributes["aiodynkv.outcome"] == "acquired"


async def test_polling_a_held_lock_keeps_its_pace_with_retry_waits_off() -> None:
    # A wait for another holder is not a retry: switching retry waits off must not
    # turn it into a busy loop.
    async with InMemoryKV() as kv, kv.lock("job", lease=5, wait=0):
        started = time.monotonic()
        with set_retry_waits(False) as skipped, pytest.raises(LockNotAcquiredError) as info:
            await kv.lock("job", poll=0.05).acquire(wait=0.3)
        assert time.monotonic() - started >= 0.3
        assert skipped == []
        assert "tries" in str(info.value) and info.value.waited >= 0.3
        tries = int(str(info.value).split("(")[1].split()[0])
        assert tries < 20  # polls of 0.01 s growing to 0.05 s, not thousands of tries


async def test_memory_store_has_the_same_rules() -> None:
    async with InMemoryKV() as kv:
        lock = kv.lock("job", lease=0.3, wait=0)
        await lock.acquire()
        crash(lock)
        async with kv.lock("job", wait=2, poll=0.05) as taker:
            assert taker.token == 2
        with pytest.raises(LeaseLostError):
            await lock.release()


async def test_seen_reads_what_an_attempt_found(make_store: StoreFactory) -> None:
    store = await make_store()
    config = store.config
    assert seen_in(None, "me", config).fence is None
    found = seen_in(
        {"pk": {"S": "x"}, "ver": {"N": "7"}, "lock_owner": {"S": "other"}}, "me", config
    )
    assert (found.version, found.lease, found.owned) == (7, None, True)
    if isinstance(store, AsyncDynamoKV):
        assert isinstance(Lock(store, "job")._ops, DynamoOps)


# -- more edges: takeover seen by renewal, corrupt items, closing, failed releases -------


async def _steal(store: Any, name: str) -> None:
    """Make another owner the holder of `name`'s lock item, as a takeover would."""
    stored = reserved_key(store, LOCK, name, "lock")
    item = await raw_item(store, stored)
    assert item is not None
    item["lock_owner"] = {"S": "someone-else"}
    item["ver"] = {"N": str(int(item["ver"]["N"]) + 1)}
    await put_raw(store, item)


async def test_a_renewal_that_finds_another_owner_loses_at_once(store: KVStore) -> None:
    lock = store.lock("job", lease=3.0, wait=0)  # renewed every second
    started = time.monotonic()

    async def body() -> None:
        async with lock:
            await _steal(store, "job")
            # Lost by a renewal, well within the lease: it cannot have lapsed yet.
            while not lock.lost and time.monotonic() < started + 2.9:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            assert lock.lost
            with pytest.raises(LeaseLostError):
                await lock.extend()

    with pytest.raises(LeaseLostError):
        await body()


async def test_extend_finds_another_owner(store: KVStore) -> None:
    lock = store.lock("job", lease=5, wait=0)
    await lock.acquire()
    await _steal(store, "job")
    with pytest.raises(LeaseLostError):
        await lock.extend()
    assert lock.lost
    with pytest.raises(LeaseLostError):
        await lock.release()


async def test_extend_validates_the_new_lease(store: KVStore) -> None:
    lock = store.lock("job", lease=5, wait=0, renew_every=2)
    await lock.acquire()
    with pytest.raises(KVValidationError, match="renew_every"):
        await lock.extend(lease=1.5)
    with pytest.raises(TypeError):
        await lock.extend(lease="3")  # type: ignore[arg-type]
    await lock.release()


async def test_a_released_lease_that_was_lost_raises_again_on_exit(store: KVStore) -> None:
    lock = store.lock("job", lease=5, wait=0)

    async def body() -> None:
        async with lock:
            await _steal(store, "job")
            with pytest.raises(LeaseLostError):
                await lock.release()

    with pytest.raises(LeaseLostError):
        await body()


async def test_a_corrupt_lock_item_is_a_corrupt_item_error(store: KVStore) -> None:
    stored = reserved_key(store, LOCK, "job", "lock")  # type: ignore[arg-type]
    item = {"pk": {"S": stored}, "ver": {"N": "1.5"}, "lock_owner": {"S": "x"}}
    await put_raw(store, item)
    with pytest.raises(CorruptItemError) as info:
        await store.lock("job", wait=0).acquire()
    assert info.value.key == "job"


async def test_closing_the_store_loses_the_lease(make_store: StoreFactory) -> None:
    store = await make_store()
    lock = store.lock("job", lease=0.9, wait=0)
    await lock.acquire()
    await store.aclose()
    await asyncio.sleep(0.5)
    assert lock.lost
    with pytest.raises(LeaseLostError):
        await lock.release()


async def test_a_failed_release_on_exit_is_logged_not_raised(
    dynalite_table: AsyncDynamoKV, proxy: FaultProxy
) -> None:
    events = Events()
    async with through(dynalite_table, proxy, logger=events, expose_keys=True) as kv:
        async with kv.lock("job", lease=3.0, wait=0) as held:
            await proxy.kill()  # the release cannot reach the server
        assert not held.held
    assert [f["error"] for f in events.named("aiodynkv.lock_release_failed")] == [
        "KVConnectionError"
    ]
    assert events.named("aiodynkv.lock_wait")[0]["lock"] == "job"  # expose_keys
    with pytest.raises(LockNotAcquiredError):  # it lapses by itself, after its lease
        await dynalite_table.lock("job").acquire(wait=0)


# -- the holder believes only the lease the server confirmed --------------------------


class Outage:
    """A lock's requests with every renewal failing (after being applied, when `applied`)."""

    def __init__(self, ops: Any, *, applied: bool = False) -> None:
        self.ops = ops
        self.applied = applied
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ops, name)

    async def renew(self, *args: Any) -> bool:
        if self.applied:  # the server applied it; its reply never came back
            await self.ops.renew(*args)
        self.failed += 1
        raise KVConnectionError("connection reset (injected)", operation="lock_renew")


def state(lock: Lock) -> tuple[bool, bool]:
    """(held, lost), read now."""
    return lock.held, lock.lost


def cut_off(lock: Lock, *, applied: bool = False) -> Outage:
    outage = Outage(lock._ops, applied=applied)
    lock._ops = cast(Any, outage)
    return outage


# The lease is kept on the holder's own clock: one server suffices for this claim. Its
# server-side steps (acquire, extend, renew, takeover after a lapse) run on every backend in
# test_explicit_extend_and_release, test_renewal_keeps_the_lease_past_its_length and
# test_a_crashed_holder_is_taken_over_after_its_lease.
CLIENT_CLOCK = pytest.mark.backends("dynalite")


@CLIENT_CLOCK
async def test_a_shortened_lease_is_believed_at_once_and_a_stall_past_it_loses_it(
    store: KVStore,
) -> None:
    # renew_every near the new lease gives each renewal try a bound (a third of it) that a
    # slow server on a loaded machine still answers within.
    lock = store.lock("job", lease=5, wait=0, renew_every=1.4)
    await lock.acquire()
    await lock.extend(lease=1.5)  # counted from before it was sent: a slow reply eats it
    assert lock.lease == 1.5
    assert state(lock) == (True, False)
    time.sleep(1.7)  # noqa: ASYNC251 (the event loop stalls past the new lease: nothing runs)
    assert state(lock) == (False, True)
    with pytest.raises(LeaseLostError):
        lock.check()  # the fencing check fails
    assert "lost" in repr(lock)
    async with store.lock("job", lease=5, wait=5, poll=0.05) as taker:
        assert taker.token is not None and taker.token > (lock.token or 0)
        assert taker.held and not lock.held  # never two holders
    with pytest.raises(LeaseLostError):
        await lock.release()


@CLIENT_CLOCK
async def test_a_shortening_whose_reply_was_lost_takes_effect_all_the_same(
    store: KVStore,
) -> None:
    # The try's bound (a third of renew_every) must outlast the applied renewal on a
    # loaded machine, or the call ends in doubt before the reply is lost.
    lock = store.lock("job", lease=5, wait=0, renew_every=1.9)
    await lock.acquire()
    outage = cut_off(lock, applied=True)  # the server stores the short lease; no reply
    with pytest.raises(KVConnectionError):
        await lock.extend(lease=2.0)
    assert outage.failed == 1
    time.sleep(2.2)  # noqa: ASYNC251 (a stall past the lease the server may now hold)
    assert lock.lost and not lock.held
    with pytest.raises(LeaseLostError):
        lock.check()
    async with store.lock("job", lease=5, wait=3, poll=0.05) as taker:  # it did lapse
        assert taker.token is not None and taker.token > (lock.token or 0)
        assert not lock.held


@CLIENT_CLOCK
async def test_when_renewals_fail_the_lease_is_lost_when_the_confirmed_one_ends(
    store: KVStore,
) -> None:
    lock = store.lock("job", lease=5, wait=0, renew_every=0.9)  # each try bounded at 0.3 s
    await lock.acquire()
    before = time.monotonic()
    await lock.extend(lease=1.5)  # the last lease the server confirms
    after = time.monotonic()
    outage = cut_off(lock)
    # `lost` is read off the clock: every reading made wholly before the confirmed lease
    # ended says held, every one begun after it says lost (however late a loaded loop
    # lets this loop run).
    readings: list[tuple[float, bool, float]] = []
    while time.monotonic() < before + 5:
        start = time.monotonic()
        lost = lock.lost
        readings.append((start, lost, time.monotonic()))
        if lost:
            break
        await asyncio.sleep(0.01)
    assert readings[-1][1], "the lease was never lost"
    assert outage.failed >= 1  # renewals were tried, and failed
    assert all(not lost for _, lost, end in readings if end < before + 1.5)
    assert all(lost for start, lost, _ in readings if start > after + 1.5)
    assert not lock.held
    with pytest.raises(LeaseLostError):
        lock.check()
    await asyncio.sleep(0.1)
    assert lock.lost  # and it stays lost


@CLIENT_CLOCK
async def test_after_shortening_renewals_follow_the_new_lease(store: KVStore) -> None:
    lock = store.lock("job", lease=6, wait=0)
    await lock.acquire()
    # The old period (6 / 3 s) would let it lapse; the new one gives each renewal try a
    # sixth of a second, which a slow server on a loaded machine still answers within.
    await lock.extend(lease=1.5)
    assert lock.renew_every == pytest.approx(0.5)
    with pytest.raises(LockNotAcquiredError):  # a waiter sees it renewed throughout
        await store.lock("job", poll=0.05).acquire(wait=3.0)
    assert lock.held and not lock.lost
    await lock.extend(lease=2.0)  # and lengthening it works as before
    assert lock.held
    await lock.release()
