"""Fault *sequences* on writes: a reply lost, then the retries throttled or answered 5xx.

A write whose attempt may have been applied ends in its exact result (the write token
recognises its own earlier attempt) or in `WriteInDoubtError`, which is not a
`TransientError`; never in an error that invites a blind retry, never in a false
"did not exist". Both transports, moto and dynalite, through `tests.faults.FaultProxy`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from aiodynkv import (
    AsyncDynamoKV,
    BatchIncompleteError,
    ConditionFailedError,
    KVTimeoutError,
    ThrottledError,
    TransactionFailedError,
    TransientError,
    WriteInDoubtError,
)
from aiodynkv.testing import set_retry_waits
from tests.conftest import pooled_table
from tests.faults import FaultProxy, _read_message

Faulty = tuple[AsyncDynamoKV, FaultProxy, AsyncDynamoKV]


@pytest_asyncio.fixture(params=["moto-lean", "moto-botocore", "dynalite-lean", "dynalite-botocore"])
async def faulty(request: pytest.FixtureRequest) -> AsyncIterator[Faulty]:
    """A fresh table reached directly (the truth), a proxy, and a store through the proxy."""
    server, transport = request.param.split("-")
    endpoint = request.getfixturevalue(f"{server}_endpoint")
    async with pooled_table(endpoint) as direct:
        proxy = await FaultProxy(int(endpoint.rsplit(":", 1)[1])).start()
        try:
            async with AsyncDynamoKV(
                direct.config,
                endpoint=proxy.endpoint,
                connect_timeout=5.0,  # no connect fails here; a loaded loop is slow
                read_timeout=2.0,
                max_attempts=3,
                retry_mode="legacy",  # short, fixed backoff: the sequence, not the waiting
                create_table=False,
                coalesce_reads=False,
                transport=transport,
                batch_deadline=1.0,
            ) as kv:
                yield direct, proxy, kv
        finally:
            await proxy.kill()


@dataclass(frozen=True)
class Case:
    """One public write: how to prepare the key, call it, and what the table holds after."""

    action: str  # the DynamoDB action the write sends
    prepare: Callable[[AsyncDynamoKV], Awaitable[Any]]
    call: Callable[[AsyncDynamoKV, Any], Awaitable[Any]]
    applied: Callable[[AsyncDynamoKV], Awaitable[bool]]
    result: Any  # the exact result when the lost reply is recognised


async def _nothing(_: AsyncDynamoKV) -> None:
    return None


async def _old(direct: AsyncDynamoKV) -> int:
    await direct.set("k", "old")
    return (await direct.get_with_version("k"))[1]


async def _counter(direct: AsyncDynamoKV) -> None:
    await direct.incr("k", 5)


async def _expiring(direct: AsyncDynamoKV) -> None:
    await direct.set("k", "old", ttl=600)


async def _value_is(direct: AsyncDynamoKV, value: Any) -> bool:
    return bool(await direct.get("k", None) == value)


async def _gone(direct: AsyncDynamoKV) -> bool:
    return not await direct.exists("k")


async def _expiry_near(direct: AsyncDynamoKV) -> bool:
    left = await direct.ttl("k")
    return left is not None and left <= 60


async def _no_expiry(direct: AsyncDynamoKV) -> bool:
    return await direct.ttl("k") is None


async def _shards(direct: AsyncDynamoKV) -> bool:
    return await direct.counter("c", shards=1).value() == 2


async def _lease(direct: AsyncDynamoKV) -> bool:
    found = await direct.client.scan(TableName=direct.config.table, Select="COUNT")
    return bool(found["Count"] == 1)


CASES: dict[str, Case] = {
    "set": Case(
        "UpdateItem", _old, lambda kv, _: kv.set("k", "new"), lambda d: _value_is(d, "new"), True
    ),
    "set_if_absent": Case(
        "UpdateItem",
        _nothing,
        lambda kv, _: kv.set("k", "mine", if_absent=True),
        lambda d: _value_is(d, "mine"),
        True,
    ),
    "set_if_version": Case(
        "UpdateItem",
        _old,
        lambda kv, v: kv.set("k", "new", if_version=v),
        lambda d: _value_is(d, "new"),
        True,
    ),
    "delete_if_version": Case(
        "DeleteItem", _old, lambda kv, v: kv.delete("k", if_version=v), _gone, True
    ),
    "incr": Case(
        "UpdateItem", _counter, lambda kv, _: kv.incr("k", 3), lambda d: _value_is(d, 8), 8
    ),
    "expire": Case("UpdateItem", _old, lambda kv, _: kv.expire("k", 60), _expiry_near, True),
    "persist": Case("UpdateItem", _expiring, lambda kv, _: kv.persist("k"), _no_expiry, True),
    "set_counter": Case(
        "UpdateItem", _old, lambda kv, _: kv.set_counter("k", 7), lambda d: _value_is(d, 7), None
    ),
    "counter.incr": Case(
        "UpdateItem", _nothing, lambda kv, _: kv.counter("c", shards=1).incr(2), _shards, None
    ),
    "lock_acquire": Case(
        "UpdateItem", _nothing, lambda kv, _: kv.lock("job", wait=0).acquire(), _lease, int
    ),
}

SEQUENCES = {
    "lost-throttled": ["lose", "throttle", "throttle"],
    "lost-5xx": ["lose", "500", "503"],
    "lost-throttled-5xx": ["lose", "throttling", "500"],
}


@pytest.mark.parametrize("sequence", list(SEQUENCES))
@pytest.mark.parametrize("name", list(CASES))
async def test_a_write_lost_then_refused_is_in_doubt_never_transient(
    faulty: Faulty, name: str, sequence: str
) -> None:
    direct, proxy, kv = faulty
    case = CASES[name]
    prepared = await case.prepare(direct)
    proxy.script[case.action] = list(SEQUENCES[sequence])
    # Three attempts, each scripted: the waits between them change nothing judged here.
    with set_retry_waits(False), pytest.raises(WriteInDoubtError) as info:
        await case.call(kv, prepared)
    error = info.value
    assert not isinstance(error, TransientError)
    assert error.table == direct.config.table
    assert error.key in ("k", "c", "job")
    assert error.keys == (error.key,)
    assert "may or may not have been applied" in str(error)
    assert "do not retry it blindly" in str(error)
    assert proxy.lost_replies == 1
    assert await case.applied(direct), "the first attempt was applied, exactly once"


@pytest.mark.parametrize("name", list(CASES))
async def test_a_write_whose_reply_is_lost_returns_its_exact_result(
    faulty: Faulty, name: str
) -> None:
    direct, proxy, kv = faulty
    case = CASES[name]
    prepared = await case.prepare(direct)
    proxy.script[case.action] = ["lose"]
    result = await case.call(kv, prepared)
    if case.result is int:
        assert isinstance(result, int)
    else:
        assert result == case.result
    assert await case.applied(direct)


async def test_delete_after_a_lost_reply_never_says_the_key_did_not_exist(
    faulty: Faulty,
) -> None:
    direct, proxy, kv = faulty
    await direct.set("k", "old")
    proxy.script["DeleteItem"] = ["lose"]
    with pytest.raises(WriteInDoubtError) as info:
        await kv.delete("k")  # the retry finds nothing: deleted by us, or never there?
    assert info.value.key == "k"
    assert not await direct.exists("k")
    proxy.script["DeleteItem"] = ["lose", "throttle", "500"]
    await direct.set("k", "again")
    with pytest.raises(WriteInDoubtError):
        await kv.delete("k")
    assert not await direct.exists("k")
    # Without a fault the answers stay exact.
    assert await kv.delete("k") is False
    await direct.set("k", "v")
    assert await kv.delete("k") is True


async def test_delete_if_version_after_a_lost_reply_sends_no_read(faulty: Faulty) -> None:
    direct, proxy, kv = faulty
    version = await _old(direct)
    proxy.script["DeleteItem"] = ["lose"]
    assert await kv.delete("k", if_version=version) is True
    assert proxy.by_action.get("GetItem", 0) == 0
    assert proxy.by_action["DeleteItem"] == 2
    # A missing key is still a failed condition, and a wrong version still a conflict.
    with pytest.raises(ConditionFailedError) as info:
        await kv.delete("k", if_version=version)
    assert info.value.current_version is None
    version = await _old(direct)
    with pytest.raises(ConditionFailedError) as info:
        await kv.delete("k", if_version=version + 1)
    assert info.value.current_version == version
    assert await direct.exists("k")


async def test_reads_stay_transient_under_the_same_sequence(faulty: Faulty) -> None:
    direct, proxy, kv = faulty
    await direct.set("k", "v")
    proxy.script["GetItem"] = ["throttle", "throttle", "throttle"]
    with pytest.raises(ThrottledError):
        await kv.get("k")
    assert await kv.get("k") == "v"


async def test_a_batch_lost_then_refused_reports_its_keys_in_doubt(faulty: Faulty) -> None:
    direct, proxy, kv = faulty
    data = {f"b{i}": "v" for i in range(10)}
    proxy.script["BatchWriteItem"] = ["lose"] + ["500"] * 200
    with pytest.raises(BatchIncompleteError) as info:
        await kv.set_many(data)
    assert info.value.in_doubt == frozenset(data)
    assert info.value.unprocessed == frozenset()
    assert set(await direct.get_many(list(data))) == set(data)


# -- the whole-call deadline ---------------------------------------------------------------


class Trickle:
    """A server on 127.0.0.1 that answers 200 with headers, then one byte every 0.8 s."""

    def __init__(self) -> None:
        self.port = 0
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> Trickle:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if await _read_message(reader) is None:
                return
            self.requests += 1
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
                b"Content-Length: 100000\r\n\r\n"
            )
            while True:
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.8)
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._tasks.discard(task)
            writer.transport.abort()


async def _ended(call: Awaitable[Any]) -> tuple[Exception | None, float]:
    """What the call raised (None if nothing), and the seconds it took."""
    start = time.monotonic()
    try:
        await call
    except Exception as exc:  # noqa: BLE001 (the caller checks the class)
        return exc, time.monotonic() - start
    return None, time.monotonic() - start


@pytest.mark.parametrize("transport", ["lean", "botocore"])
async def test_a_trickling_reply_cannot_hold_a_call_past_its_deadline(transport: str) -> None:
    async with (
        Trickle() as stub,
        AsyncDynamoKV(
            table="trickle",
            endpoint=f"http://127.0.0.1:{stub.port}",
            connect_timeout=0.5,
            read_timeout=1.0,
            max_attempts=2,
            transport=transport,
            coalesce_reads=False,
        ) as kv,
    ):
        limit = kv.config.effective_call_timeout
        assert limit == 2 * (0.5 + 1.0) + 1.0  # two attempts and the longest backoff
        # A read and a write at once: each runs into its own bound (the stub trickles
        # forever), and the test waits for one bound, not two.
        (read, read_took), (write, write_took) = await asyncio.gather(
            _ended(kv.get("k")), _ended(kv.incr("k"))
        )
        assert isinstance(read, KVTimeoutError), read
        assert read_took < limit + 3.0
        assert "call_timeout" in str(read)
        assert isinstance(write, WriteInDoubtError), write
        assert write_took < limit + 3.0
        assert write.key == "k"
        assert stub.requests >= 2


@pytest.mark.parametrize("transport", ["lean", "botocore"])
async def test_call_timeout_set_explicitly_bounds_the_call(transport: str) -> None:
    async with (
        Trickle() as stub,
        AsyncDynamoKV(
            table="trickle",
            endpoint=f"http://127.0.0.1:{stub.port}",
            read_timeout=1.0,
            call_timeout=1.5,
            transport=transport,
        ) as kv,
    ):
        # A read and a write at once, each into its own bound (the stub trickles forever).
        (read, read_took), (write, _) = await asyncio.gather(
            _ended(kv.get("k")), _ended(kv.set("k", "v"))
        )
        assert isinstance(read, KVTimeoutError), read
        assert 1.4 < read_took < 1.5 + 3.0
        assert isinstance(write, WriteInDoubtError), write


# -- transactions (moto: dynalite has none) ------------------------------------------------


@pytest_asyncio.fixture(params=["lean", "botocore"])
async def tx_faulty(request: pytest.FixtureRequest, moto_endpoint: str) -> AsyncIterator[Faulty]:
    async with pooled_table(moto_endpoint) as direct:
        proxy = await FaultProxy(int(moto_endpoint.rsplit(":", 1)[1])).start()
        try:
            async with AsyncDynamoKV(
                direct.config,
                endpoint=proxy.endpoint,
                connect_timeout=5.0,  # no connect fails here; a loaded loop is slow
                read_timeout=2.0,
                max_attempts=3,
                retry_mode="legacy",
                create_table=False,
                coalesce_reads=False,
                transport=request.param,
            ) as kv:
                yield direct, proxy, kv
        finally:
            await proxy.kill()


@pytest.mark.parametrize("sequence", list(SEQUENCES))
async def test_a_commit_in_doubt_is_resent_identical_and_applied_once(
    tx_faulty: Faulty, sequence: str
) -> None:
    direct, proxy, kv = tx_faulty
    await direct.incr("n", 10)
    tx = kv.transaction()
    tx.incr("n", 1)
    tx.set("order", "paid")
    proxy.record = True
    proxy.script["TransactWriteItems"] = list(SEQUENCES[sequence])
    with pytest.raises(WriteInDoubtError) as info:
        await tx.commit()
    assert not isinstance(info.value, TransientError)
    assert info.value.keys == ("n", "order")
    assert await direct.get("n") == 11
    assert tx.state == "open"
    await tx.commit()  # the very same request: recognised as applied, not applied again
    assert tx.state == "committed"
    assert await direct.get("n") == 11
    assert await direct.get("order") == "paid"
    sent = [json.loads(body) for action, body in proxy.bodies if action == "TransactWriteItems"]
    assert len(sent) == 4
    assert all(body == sent[0] for body in sent)


async def test_a_lost_commit_of_deletes_and_checks_is_never_reported_cancelled(
    tx_faulty: Faulty,
) -> None:
    direct, proxy, kv = tx_faulty
    versions = {}
    for key in ("a", "b", "c"):
        await direct.set(key, "v")
        versions[key] = (await direct.get_with_version(key))[1]
    tx = kv.transaction()
    tx.delete("a", if_version=versions["a"])
    tx.delete("b", if_version=versions["b"])
    tx.check("c", version=versions["c"])
    proxy.script["TransactWriteItems"] = ["lose"]
    with pytest.raises(WriteInDoubtError) as info:
        await tx.commit()
    assert info.value.keys == ("a", "b", "c")
    assert not await direct.exists("a")
    assert not await direct.exists("b")
    # A commit that was not applied is still reported cancelled.
    tx = kv.transaction()
    tx.delete("c", if_version=versions["c"] + 1)
    with pytest.raises(TransactionFailedError):
        await tx.commit()


@pytest.mark.parametrize("sequence", ["lost-throttled", "lost-5xx"])
async def test_lease_extend_and_release_lost_then_refused_are_in_doubt(
    faulty: Faulty, sequence: str
) -> None:
    _, proxy, kv = faulty
    lock = kv.lock("job", lease=30.0, wait=0)
    await lock.acquire()
    proxy.script["UpdateItem"] = list(SEQUENCES[sequence])
    with pytest.raises(WriteInDoubtError) as info:
        await lock.extend()
    assert info.value.key == "job"
    proxy.script["UpdateItem"] = list(SEQUENCES[sequence])
    with pytest.raises(WriteInDoubtError):
        await lock.release()
    assert proxy.lost_replies == 2


async def test_delete_many_lost_then_refused_reports_its_keys_in_doubt(faulty: Faulty) -> None:
    direct, proxy, kv = faulty
    data = {f"b{i}": "v" for i in range(10)}
    await direct.set_many(data)
    # delete_many sends one DeleteItem per key: the first is applied and its reply lost,
    # every later request (a retry, or another key's) is answered 503, never forwarded.
    proxy.script["DeleteItem"] = ["lose"] + ["503"] * 200
    with pytest.raises(BatchIncompleteError) as info:
        await kv.delete_many(list(data))
    assert info.value.in_doubt == frozenset(data)  # a 503 may have been applied too
    assert len(await direct.get_many(list(data))) == 9  # exactly one was deleted
