"""Large values in S3: moto's real S3 (the embedded emulator's endpoint) and InMemoryKV's double."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aiodynkv import (
    ConditionFailedError,
    CorruptItemError,
    KeyNotFoundError,
    KVError,
    TableNotFoundError,
    ValueTooLargeError,
)
from aiodynkv._codec import MAX_ITEM_BYTES, item_size
from aiodynkv._values import Pointer, parse_record
from tests.conftest import Backend, StoreFactory, put_raw, raw_item
from tests.integration.data_helpers import make_bucket, objects, put_object

pytestmark = [pytest.mark.asyncio, pytest.mark.backend_needs("s3_kms")]

BIG = 600_000  # larger than an item may be


async def _store(backend: Backend, make_store: StoreFactory, **fields: Any) -> Any:
    bucket = await make_bucket(backend)
    return await make_store(large_value_bucket=bucket, large_value_threshold=1_000, **fields)


def _pointer(item: Any) -> Pointer:
    record = item["z"]["S"]
    _, steps, pointer = parse_record(record)
    assert "o" in steps
    assert pointer is not None
    return pointer


async def test_large_values_round_trip_through_s3_on_both_transports(
    backend: Backend, make_store: StoreFactory
) -> None:
    text = "zoë ✓ " + os.urandom(BIG).hex()  # incompressible: stays larger than an item
    blob = os.urandom(BIG)
    for transport in ("lean", "botocore"):
        store = await _store(backend, make_store, transport=transport)
        await store.set("text", text)
        await store.set("blob", blob)
        assert await store.get("text") == text
        assert await store.get("blob") == blob
        assert await store.get_many(["text", "blob", "none"]) == {"text": text, "blob": blob}
        item = await raw_item(store, "blob")
        assert item is not None
        assert item["value"] == {"B": b""}
        assert item_size(item) < 1_000  # the item holds the pointer only
        pointer = _pointer(item)
        stored = await objects(store, pointer.bucket)
        assert stored[pointer.name] == blob  # no compression or encryption configured
        assert pointer.sha256 == hashlib.sha256(blob).hexdigest()
        assert pointer.size == len(blob)
        assert pointer.name.startswith(f"aiodynkv/{store.config.table}/")


async def test_small_values_stay_in_the_item(backend: Backend, make_store: StoreFactory) -> None:
    store = await _store(backend, make_store)
    await store.set("k", "x" * 999)
    item = await raw_item(store, "k")
    assert item is not None
    assert "z" not in item
    assert await objects(store, store.config.large_value_bucket) == {}


async def test_threshold_applies_after_compression(
    backend: Backend, make_store: StoreFactory
) -> None:
    store = await _store(backend, make_store, compress_threshold=100)
    await store.set("k", "a" * 50_000)  # compresses far below the 1,000-byte threshold
    item = await raw_item(store, "k")
    assert item is not None
    assert item["z"] == {"S": "s"}
    assert await store.get("k") == "a" * 50_000


async def test_overwrite_and_delete_remove_the_old_object(
    backend: Backend, make_store: StoreFactory
) -> None:
    store = await _store(backend, make_store)
    bucket = store.config.large_value_bucket
    await store.set("k", os.urandom(5_000))
    first = set(await objects(store, bucket))
    await store.set("k", os.urandom(5_000))
    second = set(await objects(store, bucket))
    assert len(first) == len(second) == 1
    assert first != second
    await store.set("k", "small now")
    assert await objects(store, bucket) == {}
    await store.set("k", os.urandom(5_000))
    assert await store.delete("k") is True
    assert await objects(store, bucket) == {}


async def test_batches_offload_and_clean_up(backend: Backend, make_store: StoreFactory) -> None:
    store = await _store(backend, make_store)
    bucket = store.config.large_value_bucket
    values = {f"k{i}": os.urandom(2_000 + i) for i in range(30)}
    await store.set_many(values)
    assert len(await objects(store, bucket)) == 30
    assert await store.get_many(values) == values
    await store.set_many({f"k{i}": "small" for i in range(10)})
    assert len(await objects(store, bucket)) == 20
    await store.delete_many([f"k{i}" for i in range(10, 30)])
    assert await objects(store, bucket) == {}


async def test_failed_conditions_leave_no_object(
    backend: Backend, make_store: StoreFactory
) -> None:
    store = await _store(backend, make_store)
    bucket = store.config.large_value_bucket
    await store.set("k", "present")
    assert await store.set("k", os.urandom(5_000), if_absent=True) is False
    with pytest.raises(ConditionFailedError):
        await store.set("k", os.urandom(5_000), if_version=12345)
    assert await objects(store, bucket) == {}
    assert await store.get("k") == "present"


async def test_missing_object_is_corrupt_not_missing(
    backend: Backend, make_store: StoreFactory
) -> None:
    store = await _store(backend, make_store)
    await store.set("k", os.urandom(5_000))
    pointer = _pointer(await raw_item(store, "k"))
    await put_object(store, pointer.bucket, pointer.name, None)
    with pytest.raises(CorruptItemError, match="missing") as info:
        await store.get("k")
    assert not isinstance(info.value, KeyNotFoundError)
    with pytest.raises(CorruptItemError) as many:
        await store.get_many(["k"])
    assert "missing" in many.value.corrupt["k"]


async def test_altered_object_fails_its_hash(backend: Backend, make_store: StoreFactory) -> None:
    store = await _store(backend, make_store)
    data = os.urandom(5_000)
    await store.set("k", data)
    pointer = _pointer(await raw_item(store, "k"))
    await put_object(store, pointer.bucket, pointer.name, bytes([data[0] ^ 1]) + data[1:])
    with pytest.raises(CorruptItemError, match="SHA-256"):
        await store.get("k")
    await put_object(store, pointer.bucket, pointer.name, data + b"x")
    with pytest.raises(CorruptItemError, match="wrong size"):
        await store.get("k")


async def test_swapped_pointer_and_bad_records_are_corrupt(
    backend: Backend, make_store: StoreFactory
) -> None:
    store = await _store(backend, make_store)
    await store.set("k", os.urandom(5_000))
    item = await raw_item(store, "k")
    assert item is not None
    for record in ("b:o:not-a-pointer", "q:o", "b:x", "b:o:s3:UPPER:1:" + "0" * 64 + ":n"):
        await put_raw(store, {**item, "z": {"S": record}})
        with pytest.raises(CorruptItemError):
            await store.get("k")
    await put_raw(store, {**item, "value": {"S": "text"}})
    with pytest.raises(CorruptItemError, match="binary"):
        await store.get("k")


async def test_max_value_bytes_bounds_offloaded_values(
    backend: Backend, make_store: StoreFactory
) -> None:
    store = await _store(backend, make_store, max_value_bytes=10_000)
    with pytest.raises(ValueTooLargeError):
        await store.set("k", os.urandom(10_001))
    with pytest.raises(ValueTooLargeError):
        await store.set_many({"a": b"x", "k": os.urandom(10_001)})
    assert await objects(store, store.config.large_value_bucket) == {}
    assert await store.get_many(["a", "k"]) == {}
    # A pointer claiming more than the bound is refused before fetching anything.
    await store.set("k", os.urandom(5_000))
    item = await raw_item(store, "k")
    pointer = _pointer(item)
    huge = Pointer(pointer.bucket, pointer.name, 10**9, pointer.sha256)
    await put_raw(store, {**item, "z": {"S": f"b:o:{huge}"}})  # type: ignore[dict-item]
    with pytest.raises(CorruptItemError, match="max_value_bytes"):
        await store.get("k")


async def test_without_a_bucket_the_item_limit_still_holds(make_store: StoreFactory) -> None:
    store = await make_store(compress_threshold=None)
    with pytest.raises(ValueTooLargeError) as info:
        await store.set("k", os.urandom(MAX_ITEM_BYTES))
    assert info.value.limit == MAX_ITEM_BYTES
    assert not await store.exists("k")


async def test_namespaces_offload_too(backend: Backend, make_store: StoreFactory) -> None:
    store = await _store(backend, make_store)
    view = store.namespace("tenant")
    data = os.urandom(3_000)
    await view.set("k", data)
    assert await view.get("k") == data
    assert await store.get("k", None) is None
    assert [i.value async for i in view.items()] == [data]
    await view.clear()
    assert await objects(store, store.config.large_value_bucket) == {}


@pytest.mark.backend_needs("server", "s3_kms", "endpoint")
async def test_s3_failures_are_typed_and_write_nothing(make_store: StoreFactory) -> None:
    from aiodynkv import BucketNotFoundError

    store = await make_store(large_value_bucket="no-such-bucket-here", large_value_threshold=10)
    with pytest.raises(BucketNotFoundError, match="S3 NoSuchBucket") as info:
        await store.set("k", "x" * 100)
    assert "large_value_bucket" in str(info.value)  # says which setting to fix
    assert info.value.key == "k"
    assert "x" * 100 not in str(info.value)
    assert not await store.exists("k")


# -- reads racing a writer: the object went away between the two reads of one get --------


class RacingBlobs:
    """A store's blob store, with `hook` run (once) just before the next object read."""

    def __init__(self, blobs: Any) -> None:
        self.blobs = blobs
        self.hook: Callable[[], Awaitable[Any]] | None = None
        self.reads = 0

    async def put(self, bucket: str, name: str, data: bytes) -> None:
        await self.blobs.put(bucket, name, data)

    async def delete(self, bucket: str, names: list[str]) -> None:
        await self.blobs.delete(bucket, names)

    async def get(self, bucket: str, name: str, limit: int) -> bytes | None:
        self.reads += 1
        hook, self.hook = self.hook, None
        if hook is not None:
            await hook()
        found: bytes | None = await self.blobs.get(bucket, name, limit)
        return found


def racing(store: Any) -> RacingBlobs:
    pipeline = store._core.pipeline
    blobs = RacingBlobs(pipeline._blobs)
    pipeline._blobs = blobs
    return blobs


async def test_a_get_racing_an_overwrite_returns_the_new_value(
    backend: Backend, make_store: StoreFactory
) -> None:
    store = await _store(backend, make_store)
    bucket = store.config.large_value_bucket
    old, new, newer = os.urandom(5_000), os.urandom(6_000), os.urandom(7_000)
    await store.set("k", old)
    blobs = racing(store)
    blobs.hook = lambda: store.set("k", new)  # removes the object the reader is about to read
    assert await store.get("k") == new
    assert blobs.reads == 2  # the old pointer's object, then the new one's
    blobs.hook = lambda: store.set("k", newer)
    value, version = await store.get_with_version("k")
    assert value == newer
    assert (await store.get_with_version("k"))[1] == version  # the version of what it returned
    blobs.hook = lambda: store.set("k", new)
    assert [item.value async for item in store.items()] == [new]
    blobs.hook = lambda: store.set("k", newer)
    assert (await store.get_with_ttl("k"))[0] == newer
    blobs.hook = lambda: store.set("k", "small now")
    assert await store.get_many(["k"]) == {"k": "small now"}
    assert await objects(store, bucket) == {}


async def test_a_get_racing_a_delete_finds_the_key_missing(
    backend: Backend, make_store: StoreFactory
) -> None:
    store = await _store(backend, make_store)
    await store.set("k", os.urandom(5_000))
    blobs = racing(store)
    blobs.hook = lambda: store.delete("k")
    with pytest.raises(KeyNotFoundError):
        await store.get("k")
    reads: list[Callable[[], Awaitable[Any]]] = [
        lambda: store.get("k", None),
        lambda: store.get_many(["k", "other"]),
    ]
    for read in reads:
        await store.set("k", os.urandom(5_000))
        blobs.hook = lambda: store.delete("k")
        assert not await read()
    await store.set("k", os.urandom(5_000))
    blobs.hook = lambda: store.delete("k")
    with pytest.raises(KeyNotFoundError):
        await store.get_with_version("k")
    await store.set("k", os.urandom(5_000))
    blobs.hook = lambda: store.delete("k")
    assert [item async for item in store.items()] == []


async def test_an_object_missing_twice_is_still_corrupt(
    backend: Backend, make_store: StoreFactory
) -> None:
    store = await _store(backend, make_store)
    await store.set("k", os.urandom(5_000))
    pointer = _pointer(await raw_item(store, "k"))
    blobs = racing(store)
    blobs.hook = lambda: put_object(store, pointer.bucket, pointer.name, None)
    with pytest.raises(CorruptItemError, match="missing"):
        await store.get("k")
    assert blobs.reads == 2  # read again once, through the same pointer


async def test_readers_never_see_a_concurrent_overwrite_as_corrupt(
    backend: Backend, make_store: StoreFactory
) -> None:
    store = await _store(backend, make_store)
    reader = await _store(backend, make_store)
    values = [os.urandom(3_000 + i) for i in range(50)]
    await store.set("k", values[0])
    corrupt: list[str] = []
    seen: set[bytes] = set()
    done = asyncio.Event()

    async def write() -> None:
        for value in values[1:]:
            await store.set("k", value)
        await store.delete("k")
        done.set()

    async def read_once(many: bool) -> None:
        try:
            value = (await reader.get_many(["k"])).get("k") if many else await reader.get("k", None)
        except CorruptItemError as exc:
            corrupt.append(exc.reason or str(exc))
            return
        if value is not None:
            seen.add(value)

    async def read() -> None:
        reads = 0
        while not done.is_set():
            reads += 1
            await read_once(many=reads % 2 == 0)

    await asyncio.gather(write(), read(), read())
    assert corrupt == []
    assert seen <= set(values) and len(seen) > 1
    assert await objects(store, store.config.large_value_bucket) == {}


# -- no orphans: a write that definitely failed removes the object it uploaded -----------


@pytest.mark.backend_needs("server", "s3_kms")
async def test_a_write_that_definitely_failed_removes_its_new_object(
    backend: Backend, make_store: StoreFactory
) -> None:
    bucket = await make_bucket(backend)
    store = await make_store(
        table=f"missing-{uuid.uuid4().hex[:10]}",
        create_table=False,
        large_value_bucket=bucket,
        large_value_threshold=1_000,
    )
    with pytest.raises(TableNotFoundError):
        await store.set("k", os.urandom(5_000))
    assert await objects(store, bucket) == {}
    with pytest.raises(KVError):
        await store.set_many({"a": os.urandom(5_000), "b": os.urandom(6_000)})
    assert await objects(store, bucket) == {}


class LostReplies:
    """A store's transport whose UpdateItem is applied and then its reply lost."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)

    async def send(self, action: str, request: dict[str, Any]) -> dict[str, Any]:
        from aiodynkv._transport import WireError

        reply: dict[str, Any] = await self.transport.send(action, request)
        if action != "UpdateItem":
            return reply
        self.lost += 1
        raise WireError(
            "read timeout (injected, after the server applied it)", timeout=True, in_doubt=True
        )


@pytest.mark.backend_needs("server", "s3_kms")
async def test_a_write_in_doubt_keeps_its_object(
    backend: Backend, make_store: StoreFactory
) -> None:
    store = await _store(backend, make_store)
    wire = LostReplies(store._core.transport)
    store._core.transport = wire
    data = os.urandom(5_000)
    with pytest.raises(KVError):
        await store.set("k", data)
    assert wire.lost == 1
    store._core.transport = wire.transport
    assert await store.get("k") == data  # applied: its object must still be there
    assert len(await objects(store, store.config.large_value_bucket)) == 1


@pytest.mark.backend_needs("transactions", "s3_kms")
async def test_a_transactional_delete_removes_its_object_once_committed(
    backend: Backend, make_store: StoreFactory
) -> None:
    from aiodynkv import TransactionFailedError

    store = await _store(backend, make_store)
    bucket = store.config.large_value_bucket
    kept = os.urandom(6_000)
    await store.set("a", os.urandom(5_000))
    await store.set("b", kept)
    await store.set("c", "small")
    assert len(await objects(store, bucket)) == 2
    async with store.transaction() as tx:
        tx.delete("a")
        tx.delete("c")
        tx.delete("never-there")
        tx.incr("n")
    assert await store.get_many(["a", "c", "n"]) == {"n": 1}
    assert len(await objects(store, bucket)) == 1  # only b's
    cancelled = store.transaction()
    cancelled.delete("b")
    cancelled.check("nobody", exists=True)
    with pytest.raises(TransactionFailedError):  # nothing deleted, nothing removed
        await cancelled.commit()
    assert await store.get("b") == kept
    assert len(await objects(store, bucket)) == 1
    async with store.transaction() as tx:
        tx.delete("b")
    assert await objects(store, bucket) == {}
