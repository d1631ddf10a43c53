"""Truth under faults: threads and loops, whole-operation close, foreign data, versions.

Each test pins down what a call reports when threads, loops, a close, foreign data or
a version check get in its way, and runs on every backend that can run it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from aiodynkv import (
    AsyncDynamoKV,
    BatchIncompleteError,
    ConditionFailedError,
    CorruptItemError,
    KVError,
    StoreClosedError,
)
from tests.conftest import put_raw
from tests.faults import FaultProxy
from tests.integration.test_reliability import record

# Foreign and damaged data are refused on both transports: the botocore legs run here.
EVERY_TRANSPORT = True

# -- no shared state between stores, loops or threads ------------------------------------


def test_threads_with_their_own_loops_and_stores_never_hang(moto_endpoint: str) -> None:
    table = f"th-{uuid.uuid4().hex[:10]}"
    errors: list[BaseException] = []
    done: list[int] = []

    async def setup() -> None:
        async with AsyncDynamoKV(table=table, endpoint=moto_endpoint, create_table=True) as kv:
            await kv.set_many({f"k{i}": str(i) for i in range(50)})

    asyncio.run(setup())

    def worker() -> None:
        async def run() -> None:
            async with AsyncDynamoKV(table=table, endpoint=moto_endpoint, read_timeout=5.0) as kv:
                for _ in range(10):
                    values = await asyncio.wait_for(
                        asyncio.gather(*(kv.get(f"k{i}") for i in range(50))), timeout=30
                    )
                    assert values == [str(i) for i in range(50)]
            done.append(1)

        try:
            asyncio.run(run())
        except BaseException as exc:  # noqa: BLE001 (reported by the test thread)
            errors.append(exc)

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    try:
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        sys.setswitchinterval(previous)
    hung = sum(t.is_alive() for t in threads)
    record(
        "4 threads, own loop and store each, 2,000 coalesced gets, switch interval 1 µs",
        "thread switches as often as possible",
        2000,
        len(done) * 500,
        len(errors) * 500,
        hung * 500,
        "test_threads_with_their_own_loops_and_stores_never_hang",
    )
    assert not hung, "a coalesced get hung"
    assert errors == []
    assert len(done) == 4


# -- aclose waits for whole operations ---------------------------------------------------


@pytest_asyncio.fixture
async def direct(dynalite_endpoint: str) -> AsyncIterator[AsyncDynamoKV]:
    name = f"cl-{uuid.uuid4().hex[:10]}"
    async with AsyncDynamoKV(table=name, endpoint=dynalite_endpoint, create_table=True) as kv:
        yield kv
        await kv.client.delete_table(TableName=name)


async def test_aclose_lets_a_3000_item_set_many_finish_whole(direct: AsyncDynamoKV) -> None:
    data = {f"c{i:04d}": "v" for i in range(3000)}
    kv = await AsyncDynamoKV(direct.config).open()
    writing = asyncio.ensure_future(kv.set_many(data))
    await asyncio.sleep(0.2)
    await kv.aclose()
    await writing  # no StoreClosedError, no BatchIncompleteError
    stored = len(await direct.get_many(list(data)))
    record(
        "aclose() 0.2 s into a set_many of 3,000",
        "close while a batch is in flight",
        3000,
        stored,
        0,
        3000 - stored,
        "test_aclose_lets_a_3000_item_set_many_finish_whole",
    )
    assert stored == 3000
    with pytest.raises(StoreClosedError):
        await kv.get("c0000")


async def test_aclose_past_close_timeout_ends_batches_with_an_honest_report(
    direct: AsyncDynamoKV, dynalite_endpoint: str
) -> None:
    proxy = await FaultProxy(int(dynalite_endpoint.rsplit(":", 1)[1])).start()
    proxy.delay = 0.3
    data = {f"s{i:04d}": "v" for i in range(1000)}
    try:
        kv = await AsyncDynamoKV(
            direct.config, endpoint=proxy.endpoint, close_timeout=0.5, read_timeout=5.0
        ).open()
        writing = asyncio.ensure_future(kv.set_many(data))
        await asyncio.sleep(0.4)
        started = time.monotonic()
        await kv.aclose()
        assert time.monotonic() - started < 5.0
        with pytest.raises(BatchIncompleteError) as info:
            await writing
    finally:
        await proxy.kill()
    error = info.value
    assert set(error.done) | error.unprocessed | error.in_doubt == set(data)
    assert not (set(error.done) & (error.unprocessed | error.in_doubt))
    assert error.unprocessed and error.done
    stored = await direct.get_many(list(data))
    mislabelled = len(set(error.done) - set(stored)) + len(error.unprocessed & set(stored))
    record(
        "aclose() past close_timeout (0.5 s) during a slow set_many of 1,000",
        "0.3 s per reply",
        1000,
        len(error.done),
        len(error.unprocessed) + len(error.in_doubt),
        mislabelled,
        "test_aclose_past_close_timeout_ends_batches_with_an_honest_report",
    )
    assert set(error.done) <= set(stored)  # done means written
    assert not (error.unprocessed & set(stored))  # unprocessed means not written


async def test_aclose_from_another_loop_is_refused_and_the_store_stays_closable(
    direct: AsyncDynamoKV,
) -> None:
    kv = await AsyncDynamoKV(direct.config).open()
    failure: list[BaseException] = []

    def elsewhere() -> None:
        try:
            asyncio.run(kv.aclose())
        except BaseException as exc:  # noqa: BLE001 (checked below)
            failure.append(exc)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join(10)
    assert len(failure) == 1 and isinstance(failure[0], KVError)
    assert kv.is_open
    assert await kv.exists("nothing") is False
    await kv.aclose()
    assert not kv.is_open


# -- foreign and damaged items, on every backend ----------------------------------------

FOREIGN: dict[str, dict[str, Any]] = {
    "no-value": {},
    "bool": {"value": {"BOOL": True}},
    "null": {"value": {"NULL": True}},
    "map": {"value": {"M": {"a": {"S": "b"}}}},
    "list": {"value": {"L": [{"S": "b"}]}},
    "string-set": {"value": {"SS": ["a", "b"]}},
    "version": {"value": {"S": "x"}, "ver": {"S": "seven"}},
    "expiry": {"value": {"S": "x"}, "expires_at": {"S": "tomorrow"}},
    "not-zlib": {"value": {"B": b"plain bytes"}, "z": {"S": "b"}},
    "bomb": {"value": {"B": zlib.compress(b"\0" * (8 * 1024 * 1024), 9)}, "z": {"S": "b"}},
}


async def test_foreign_items_raise_corrupt_item_error_on_every_read_path(
    store: Any, backend: Any
) -> None:
    for name, attrs in FOREIGN.items():
        await put_raw(store, {"pk": {"S": f"bad-{name}"}, **attrs})
    await store.set("good", "fine")
    reads = ("get", "get_with_version", "get_json")
    for name in FOREIGN:
        key = f"bad-{name}"
        for read in reads:
            if name == "version" and read != "get_with_version":
                continue
            with pytest.raises(CorruptItemError) as info:
                await getattr(store, read)(key)
            assert not isinstance(info.value, KeyError)
            assert info.value.key == key and key not in str(info.value)
    with pytest.raises(CorruptItemError) as many:
        await store.get_many(["good", *(f"bad-{n}" for n in FOREIGN)])
    assert many.value.done == {"good": "fine", "bad-version": "x"}  # good results stay reachable
    assert set(many.value.corrupt) == {f"bad-{n}" for n in FOREIGN if n != "version"}
    record(
        f"foreign and damaged items, every read path ({backend.kind})",
        f"{len(FOREIGN)} kinds incl. an 8 MiB zlib bomb",
        len(FOREIGN),
        0,
        len(FOREIGN),
        0,
        "test_foreign_items_raise_corrupt_item_error_on_every_read_path",
        transport="",
    )


async def test_a_planted_bomb_is_refused_at_max_value_bytes(store: Any) -> None:
    await put_raw(store, {"pk": {"S": "bomb"}, **FOREIGN["bomb"]})
    with pytest.raises(CorruptItemError, match="max_value_bytes"):
        await store.get("bomb")  # 8 MiB would inflate; the default bound is 4 MiB


# -- versions never come back ------------------------------------------------------------


async def test_recreated_key_never_reuses_a_version_with_a_frozen_clock(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = time.time()
    monkeypatch.setattr(time, "time", lambda: frozen)
    monkeypatch.setattr(time, "time_ns", lambda: int(frozen * 1e9))
    stale = 0
    for trial in range(20):
        key = f"aba-{trial}"
        await store.set(key, "first")
        _, old = await store.get_with_version(key)
        await store.delete(key)
        await store.set(key, "second")
        try:
            await store.set(key, "stale write", if_version=old)
            stale += 1
        except ConditionFailedError:
            pass
    assert stale == 0
