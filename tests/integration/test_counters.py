"""Sharded counters: the contract on every backend, and how increments spread."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest

from aiodynkv import (
    AsyncDynamoKV,
    BatchIncompleteError,
    CorruptItemError,
    InvalidKeyError,
    KVStore,
    KVValidationError,
    ShardedCounter,
    WrongTypeError,
)
from aiodynkv._keys import COUNTER, reserved_key
from tests.conftest import Clock, StoreFactory, put_raw, raw_item

pytestmark = pytest.mark.asyncio


def shard_key(store: Any, name: str, index: int) -> str:
    return f"{reserved_key(store, COUNTER, name, 'counter')}\x1f{index}"


async def test_increments_add_up_across_shards(store: KVStore) -> None:
    views = store.counter("page:home", shards=8)
    assert isinstance(views, ShardedCounter)
    assert await views.value() == 0
    await asyncio.gather(*(views.incr() for _ in range(40)))
    await views.incr(10)
    await views.incr(-5)
    assert await views.value() == 45
    used = 0
    for index in range(8):
        if await raw_item(store, shard_key(store, "page:home", index)) is not None:
            used += 1
    assert used > 1  # spread over several partition keys


async def test_shards_are_hidden_from_keys_and_clear(store: KVStore) -> None:
    await store.set("page:home", "a value of the same name")
    views = store.counter("page:home", shards=4)
    await views.incr(3)
    assert [k async for k in store.keys()] == ["page:home"]
    assert await store.clear() == 1
    assert await views.value() == 3  # clear() leaves counters alone
    assert [item async for item in store.items()] == []


async def test_reset_and_delete_act_on_every_shard(store: KVStore) -> None:
    views = store.counter("c", shards=4)
    for _ in range(20):
        await views.incr()
    await views.reset()
    assert await views.value() == 0
    assert await raw_item(store, shard_key(store, "c", 3)) is not None  # zeros, not gone
    await views.incr(2)
    await views.delete()
    assert await views.value() == 0
    for index in range(4):
        assert await raw_item(store, shard_key(store, "c", index)) is None


async def test_ttl_on_increments_and_resets(store: KVStore, clock: Clock) -> None:
    views = store.counter("window", shards=2)
    for _ in range(6):
        await views.incr(ttl=1)
    assert await views.value() == 6
    clock.advance(1.0)
    assert await views.value() == 0  # every shard expired
    await views.incr(ttl=1)
    assert await views.value() == 1  # an expired shard restarts
    await views.reset(ttl=1)
    clock.advance(1.0)
    assert await views.value() == 0


async def test_namespaces_have_their_own_counters(store: KVStore) -> None:
    one, two = store.namespace("one"), store.namespace("two")
    await one.counter("hits", shards=3).incr(5)
    await two.counter("hits", shards=3).incr(7)
    assert await one.counter("hits", shards=3).value() == 5
    assert await two.counter("hits", shards=3).value() == 7
    assert await store.counter("hits", shards=3).value() == 0
    assert [k async for k in one.keys()] == []


async def test_one_shard_is_a_plain_counter_in_the_reserved_space(store: KVStore) -> None:
    views = store.counter("solo", shards=1)
    await views.incr(4)
    item = await raw_item(store, shard_key(store, "solo", 0))
    assert item is not None and item["value"] == {"N": "4"}


@pytest.mark.parametrize(
    ("shards", "error"),
    [(0, KVValidationError), (1001, KVValidationError), (2.0, TypeError), (True, TypeError)],
)
async def test_bad_shard_counts(store: KVStore, shards: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        store.counter("c", shards=shards)


async def test_bad_names_deltas_and_ttls_raise_before_any_request(store: KVStore) -> None:
    with pytest.raises(InvalidKeyError):
        store.counter("")
    with pytest.raises(InvalidKeyError):
        store.counter("x" * 2046)
    views = store.counter("c", shards=2)
    with pytest.raises(TypeError, match="delta"):
        await views.incr(1.5)  # type: ignore[arg-type]
    with pytest.raises(KVValidationError, match="ttl"):
        await views.incr(ttl=0)
    with pytest.raises(KVValidationError, match="ttl"):
        await views.reset(ttl=-1)
    assert await views.value() == 0


async def test_a_shard_that_is_not_a_counter_is_reported_under_the_counter_name(
    store: KVStore,
) -> None:
    config = store.config  # type: ignore[attr-defined]
    item = {config.partition_key: {"S": shard_key(store, "c", 0)}, "value": {"S": "text"}}
    await put_raw(store, item)
    views = store.counter("c", shards=1)
    with pytest.raises(CorruptItemError) as info:
        await views.value()
    assert info.value.key == "c"
    with pytest.raises(WrongTypeError) as wrong:
        await views.incr()
    assert wrong.value.key == "c" and wrong.value.operation == "counter.incr"
    assert "c" in repr(views) or "shards=1" in repr(views)


async def test_value_of_many_shards_reads_in_batches(make_store: StoreFactory) -> None:
    store = await make_store()
    views = store.counter("wide", shards=250)
    await asyncio.gather(*(views.incr() for _ in range(300)))
    assert await views.value() == 300


async def test_a_dead_server_is_reported_under_the_counter_name() -> None:
    async with AsyncDynamoKV(
        table="nowhere",
        endpoint="http://127.0.0.1:9",
        connect_timeout=0.2,
        max_attempts=1,
        batch_deadline=0.5,
    ) as kv:
        views = kv.counter("c", shards=2)
        with pytest.raises(Exception) as info:  # noqa: PT011 (the class is checked below)
            await views.value()
        assert info.value.key == "c"  # type: ignore[attr-defined]
        assert isinstance(info.value, (BatchIncompleteError, ConnectionError))
        with pytest.raises(ConnectionError) as incr:
            await views.incr()
        assert incr.value.key == "c"  # type: ignore[attr-defined]
        with pytest.raises(ConnectionError):
            await views.reset()
        with pytest.raises(BatchIncompleteError) as deleted:
            await views.delete()
        assert deleted.value.key == "c" and deleted.value.unprocessed == {"0", "1"}


async def test_increments_pick_shards_uniformly(store: KVStore, monkeypatch: Any) -> None:
    picked: Counter[int] = Counter()
    real = random.randrange

    def spy(n: int) -> int:
        choice: int = real(n)
        picked[choice] += 1
        return choice

    monkeypatch.setattr(random, "randrange", spy)
    views = store.counter("u", shards=4)
    for _ in range(200):
        await views.incr()
    assert set(picked) == {0, 1, 2, 3}
    assert await views.value() == 200
