"""The order of value transformations, written once for every transport.

Write: typed model → JSON (`aiodynkv._typed`) → str/bytes → compress (`aiodynkv._codec`)
→ encrypt (`aiodynkv._crypto`) → offload to S3 when still larger than
``large_value_threshold`` (`aiodynkv._offload`) → item. Read is the exact reverse,
and every step that can meet foreign or damaged data raises `CorruptItemError`
(`DecryptionError` for decryption), never a bare Python exception.

What was done to a value is recorded in the item's ``z`` attribute (the *record*):

- absent: the value attribute holds the value as is (S for str, B for bytes);
- ``"s"`` / ``"b"``: zlib-compressed text / bytes (compression alone, as the codec writes it);
- ``"<kind>:<steps>[:<pointer>]"``: `kind` is ``s`` or ``b`` (what the caller stored),
  `steps` the transformations in write order, ``z`` compressed, ``e`` encrypted,
  ``o`` offloaded, and for ``o`` the S3 pointer (the value attribute is then empty).

A store without the right keys, or that does not know a step, refuses such a record
as damaged instead of returning ciphertext or a pointer as the value.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

from aiodynkv import _retry
from aiodynkv._codec import COMPRESSION_FLAG, check_item_size
from aiodynkv._errors import CorruptItemError, DecryptionError, KVError
from aiodynkv._offload import MISSING, Pointer, object_name

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping

    from aiodynkv._cache import PendingWrites
    from aiodynkv._codec import Item
    from aiodynkv._config import KVConfig
    from aiodynkv._core import Core
    from aiodynkv._crypto import KeyService
    from aiodynkv._offload import BlobStore
    from aiodynkv._telemetry import Operation

    #: Reads an item again, strongly consistent: None when it is missing (or expired) now.
    Reread = Callable[[], Awaitable[Item | None]]

__all__ = [
    "ENVELOPE_SLACK",
    "BatchWrites",
    "Pipeline",
    "for_core",
    "parse_record",
    "read_old_items",
]

#: Bytes an envelope adds at most (header with a KMS blob, nonce, tag): the bound on
#: an offloaded object is ``max_value_bytes`` plus this.
ENVELOPE_SLACK = 4096
_STEPS = frozenset({"e", "ze", "o", "zo", "eo", "zeo"})
_KINDS = frozenset({"s", "b"})
_LARGEST_VERSION = {"N": "9" * 19}
_FETCHES = 16  # S3 reads in flight per get_many
_REREADS = 3  # an item re-read while each read finds a new pointer whose object is gone
_READ_ROUNDS = 5  # BatchGetItem rounds for the old items; what is left is not read


def parse_record(flag: str) -> tuple[str, str, Pointer | None]:
    """Kind, steps and pointer of a new-style record (``"b:zeo:s3:..."``).

    Raises:
        CorruptItemError: The record is not one aiodynkv writes.
    """
    parts = flag.split(":", 2)
    kind, steps = parts[0], parts[1] if len(parts) > 1 else ""
    if kind not in _KINDS or steps not in _STEPS or (("o" in steps) != (len(parts) == 3)):
        reason = "bad value record"
        raise CorruptItemError(reason, reason=reason)
    return kind, steps, Pointer.parse(parts[2]) if len(parts) == 3 else None


def _record_of(item: Item) -> str | None:
    """The item's new-style record, or None (no record, or the legacy compression flag)."""
    flag = item.get(COMPRESSION_FLAG)
    text = flag.get("S") if isinstance(flag, dict) else None
    return text if isinstance(text, str) and len(text) > 1 else None


class Pipeline:
    """Encryption and offloading of one store's values (compression stays in the codec)."""

    __slots__ = ("_blobs", "_encryptor", "_fetches", "bucket", "config", "warn", "writes")

    def __init__(
        self,
        config: KVConfig,
        blobs: BlobStore | None,
        kms: KeyService | None,
        warn: Callable[..., Any] | None = None,
    ) -> None:
        self.config = config
        self._blobs = blobs
        self.warn = warn
        self._encryptor = None
        if config.encryption_keys or config.encryption_kms_key_id:
            from aiodynkv._crypto import Encryptor

            self._encryptor = Encryptor(config, kms)
        self.bucket = config.large_value_bucket
        #: True when writes go through `seal` (encryption or offloading is configured).
        self.writes = self.bucket is not None or (
            self._encryptor is not None and self._encryptor.writes
        )
        self._fetches: asyncio.Semaphore | None = None

    # -- errors ------------------------------------------------------------------

    def _error(self, exc: CorruptItemError, operation: str, key: str) -> CorruptItemError:
        table = self.config.table
        reason = exc.reason or str(exc)
        error = type(exc)(
            f"{operation}: the item in table {table!r} cannot be read: {reason}",
            operation=operation,
            table=table,
            key=key,
            reason=reason,
        )
        error.show_key = self.config.expose_keys
        return error

    def _aws(self, exc: Exception, service: str, operation: str, key: str) -> KVError:
        from aiodynkv._aws import map_aws_error

        error = map_aws_error(
            exc, service=service, operation=operation, table=self.config.table, key=key
        )
        error.show_key = self.config.expose_keys
        return error

    # -- write -------------------------------------------------------------------

    async def seal(self, item: Item, stored: str, key: str, operation: str) -> Item:
        """Encrypt and, when still too large, offload the value of a built item (in place).

        The item comes from `build_item(..., check_size=False)`; its size is checked
        here, before anything is sent, so a value too large for an item without a
        bucket raises `ValueTooLargeError`.

        Raises:
            ValueTooLargeError: No bucket, and the item exceeds 400 KB.
            KVError: S3 or KMS failed (mapped like DynamoDB's failures).
        """
        config = self.config
        attr = item[config.value_attribute]
        flag = item.get(COMPRESSION_FLAG)
        kind = flag["S"] if flag is not None else ("s" if "S" in attr else "b")
        steps = "z" if flag is not None else ""
        data: bytes = attr["S"].encode() if "S" in attr else bytes(attr["B"])
        encryptor = self._encryptor
        if encryptor is not None and encryptor.writes:
            try:
                data = await encryptor.encrypt(data, stored, f"{kind}:{steps}")
            except KVError:
                raise
            except Exception as exc:
                raise self._aws(exc, "KMS", operation, key) from exc
            steps += "e"
        pointer = None
        if self.bucket is not None and len(data) > config.large_value_threshold:
            pointer = Pointer.of(
                self.bucket, object_name(config.large_value_prefix, config.table), data
            )
            steps += "o"
            item[config.value_attribute] = {"B": b""}
            item[COMPRESSION_FLAG] = {"S": f"{kind}:{steps}:{pointer}"}
        elif "e" in steps:
            item[config.value_attribute] = {"B": data}
            item[COMPRESSION_FLAG] = {"S": f"{kind}:{steps}"}
        check_item_size(
            {**item, config.version_attribute: _LARGEST_VERSION}, operation, config.table, key
        )
        if pointer is not None:
            assert self._blobs is not None  # noqa: S101 (a bucket comes with a blob store)
            try:
                await self._blobs.put(pointer.bucket, pointer.name, data)
            except Exception as exc:
                raise self._aws(exc, "S3", operation, key) from exc
        return item

    # -- read --------------------------------------------------------------------

    @staticmethod
    def needs_open(item: Item) -> bool:
        """True if the item's value is encrypted or offloaded (`open` must run first)."""
        return _record_of(item) is not None

    async def open(
        self,
        item: Item,
        stored: str,
        key: str,
        operation: str,
        reread: Reread | None = None,
    ) -> Item | None:
        """The item with its value fetched and decrypted, as the codec reads it.

        When the S3 object of the item's pointer is missing and `reread` is given, the
        item is read again (a writer may have replaced or deleted it and removed its
        object in between): the value there now is returned, or None when the item is
        gone now. Only a pointer whose object is missing twice is corrupt.

        Raises:
            CorruptItemError: Bad record, missing or altered S3 object, bounds exceeded.
            DecryptionError: The value does not decrypt (or no key for it).
            KVError: S3 or KMS failed (mapped like DynamoDB's failures).
        """
        missing: set[Pointer] = set()
        current: Item | None = item
        while current is not None:
            record = _record_of(current)
            if record is None:
                return current
            try:
                return await self._open(current, record, stored, key, operation)
            except CorruptItemError as exc:
                pointer = self.pointer_of(current)
                if (
                    exc.reason != MISSING
                    or reread is None
                    or pointer is None
                    or pointer in missing
                    or len(missing) > _REREADS
                ):
                    raise self._error(exc, operation, key) from None
                missing.add(pointer)
            current = await reread()
        return None

    async def _open(self, item: Item, record: str, stored: str, key: str, operation: str) -> Item:
        config = self.config
        kind, steps, pointer = parse_record(record)
        attr = item.get(config.value_attribute)
        raw = attr.get("B") if isinstance(attr, dict) else None
        if not isinstance(raw, (bytes, bytearray)):
            reason = "a transformed value must be binary"
            raise CorruptItemError(reason, reason=reason)
        data = bytes(raw)
        if pointer is not None:
            data = await self._fetch(pointer, key, operation)
        if "e" in steps:
            if self._encryptor is None:
                reason = "the value is encrypted and no encryption keys are configured"
                raise DecryptionError(reason, reason=reason)
            try:
                before = steps.partition("e")[0]  # what was done before encryption
                data = await self._encryptor.decrypt(data, stored, f"{kind}:{before}")
            except KVError:
                raise
            except Exception as exc:
                raise self._aws(exc, "KMS", operation, key) from exc
        opened = dict(item)
        if "z" in steps:
            opened[config.value_attribute] = {"B": data}
            opened[COMPRESSION_FLAG] = {"S": kind}
            return opened
        del opened[COMPRESSION_FLAG]
        if len(data) > config.max_value_bytes:
            reason = f"the value exceeds max_value_bytes ({config.max_value_bytes:,})"
            raise CorruptItemError(reason, reason=reason)
        if kind == "b":
            opened[config.value_attribute] = {"B": data}
            return opened
        try:
            opened[config.value_attribute] = {"S": data.decode()}
        except UnicodeDecodeError:
            reason = "a text value is not UTF-8"
            raise CorruptItemError(reason, reason=reason) from None
        return opened

    async def _fetch(self, pointer: Pointer, key: str, operation: str) -> bytes:
        limit = self.config.max_value_bytes + ENVELOPE_SLACK
        if pointer.size > limit:
            reason = f"the large value exceeds max_value_bytes ({self.config.max_value_bytes:,})"
            raise CorruptItemError(reason, reason=reason)
        if self._blobs is None:  # pragma: no cover - every store has a blob store
            reason = "the value is in S3 and this store has no S3 client"
            raise CorruptItemError(reason, reason=reason)
        if self._fetches is None:
            self._fetches = asyncio.Semaphore(_FETCHES)
        async with self._fetches:
            try:
                data = await self._blobs.get(pointer.bucket, pointer.name, pointer.size)
            except Exception as exc:
                raise self._aws(exc, "S3", operation, key) from exc
        return pointer.check(data)

    async def open_many(
        self,
        items: Mapping[str, Item],
        users: Mapping[str, str],
        operation: str,
        reread: Callable[[str], Awaitable[Item | None]] | None = None,
    ) -> tuple[dict[str, Item], dict[str, str]]:
        """`open` for a batch: items by stored key, and why each unreadable one failed.

        With `reread` (stored key -> the item read again), an item whose object went
        missing and that is gone when read again is left out, as a missing key.

        Raises:
            KVError: S3 or KMS failed for some item (not a damaged item: those are reported).
        """
        opened = dict(items)
        corrupt: dict[str, str] = {}
        todo = [pk for pk, item in items.items() if _record_of(item) is not None]

        async def one(pk: str) -> None:
            again = None if reread is None else functools.partial(reread, pk)
            try:
                found = await self.open(items[pk], pk, users[pk], operation, again)
            except CorruptItemError as exc:
                corrupt[users[pk]] = exc.reason or str(exc)
                del opened[pk]
                return
            if found is None:
                del opened[pk]
            else:
                opened[pk] = found

        if todo:
            await asyncio.gather(*(one(pk) for pk in todo))
        return opened, corrupt

    # -- cleanup -----------------------------------------------------------------

    @staticmethod
    def pointer_of(item: Item | None) -> Pointer | None:
        """The S3 pointer of an item, if its value is offloaded (None when unreadable)."""
        record = None if item is None else _record_of(item)
        if record is None:
            return None
        try:
            return parse_record(record)[2]
        except CorruptItemError:
            return None

    async def discard(self, pointers: list[Pointer | None], operation: str) -> None:
        """Delete objects no item points at any more; failures are logged, never raised.

        The write that orphaned them has succeeded; a failed delete leaves an orphan
        for the bucket's lifecycle rule (docs/large-values.md).
        """
        if self._blobs is None:  # pragma: no cover - every store has a blob store
            return
        by_bucket: dict[str, list[str]] = {}
        for pointer in pointers:
            if pointer is not None:
                by_bucket.setdefault(pointer.bucket, []).append(pointer.name)
        for bucket, names in by_bucket.items():
            try:
                await self._blobs.delete(bucket, names)
            except Exception as exc:  # noqa: BLE001, PERF203 (cleanup must not fail a done write)
                if self.warn is not None:
                    self.warn(
                        "aiodynkv.offload_cleanup_failed",
                        table=self.config.table,
                        operation=operation,
                        objects=len(names),
                        error=type(exc).__name__,
                    )


def for_core(core: Core) -> Pipeline:
    """The pipeline of an `AsyncDynamoKV`: S3 and KMS through the store's credentials."""
    from aiodynkv._aws import Clients
    from aiodynkv._crypto import AwsKms
    from aiodynkv._offload import S3Blobs

    clients = Clients(core)
    return Pipeline(
        core.config,
        S3Blobs(clients),
        AwsKms(clients, core.config.table),
        lambda event, **fields: core.tel.warn(event, **fields),  # noqa: PLW0108 (tel is replaced on open)
    )


class BatchWrites:
    """What `set_many` / `delete_many` do around their BatchWriteItem requests.

    Before: seal each new value (encrypt, offload), and when offloading is on, read
    the old items' pointers (BatchWriteItem returns no old items). After: record
    each written key in the near cache, delete the S3 objects that written keys no
    longer point at, and the new objects of keys definitely not written.
    """

    __slots__ = ("_cache", "_expires", "_old", "_operation", "_pipeline", "_read_old", "_users")

    def __init__(
        self,
        pipeline: Pipeline,
        cache: PendingWrites,
        operation: str,
        users: Mapping[str, tuple[str, Any]],
        expires_at: float | None,
        read_old: Callable[[Any, list[str]], Awaitable[Mapping[str, Item]]],
    ) -> None:
        self._pipeline = pipeline
        self._cache = cache
        self._operation = operation
        self._users = users
        self._expires = expires_at
        self._read_old = read_old
        self._old: Mapping[str, Item] = {}

    async def before(self, op: Operation | None, entries: Mapping[str, dict[str, Any]]) -> None:
        """Seal the new values; read the old pointers (inside the admitted operation)."""
        pipeline = self._pipeline
        if pipeline.writes and self._operation == "set_many":
            sealed: list[Item] = []

            async def seal(pk: str) -> None:
                item = entries[pk]["PutRequest"]["Item"]
                await pipeline.seal(item, pk, self._users[pk][0], self._operation)
                sealed.append(item)

            try:
                await asyncio.gather(*(seal(pk) for pk in entries))
            except BaseException:
                await pipeline.discard([pipeline.pointer_of(i) for i in sealed], self._operation)
                raise
        if pipeline.bucket is not None:
            try:
                self._old = await self._read_old(op, list(entries))
            except KVError as exc:  # cleanup is best effort: the write goes ahead
                if pipeline.warn is not None:
                    pipeline.warn(
                        "aiodynkv.offload_cleanup_failed",
                        table=pipeline.config.table,
                        operation=self._operation,
                        error=type(exc).__name__,
                    )

    async def after(
        self,
        entries: Mapping[str, dict[str, Any]],
        unprocessed: Iterable[str],
        doubtful: Iterable[str],
    ) -> None:
        """Cache what was written; delete objects nothing points at any more."""
        pipeline = self._pipeline
        not_written = set(unprocessed)
        left = not_written | set(doubtful)
        stale: list[Pointer | None] = []
        for pk, entry in entries.items():
            new = entry.get("PutRequest", {}).get("Item")
            if pk in not_written:
                stale.append(pipeline.pointer_of(new))
            elif pk not in left:
                self._cache.done(pk, self._users[pk][1], self._expires)
                old = pipeline.pointer_of(self._old.get(pk))
                if old != pipeline.pointer_of(new):
                    stale.append(old)
        if any(stale):
            await pipeline.discard(stale, self._operation)


async def read_old_items(core: Core, op: Operation, stored: list[str]) -> dict[str, Item]:
    """Key and record of existing items (BatchGetItem, strongly consistent), best effort."""
    config = core.config
    found: dict[str, Item] = {}
    for start in range(0, len(stored), 100):
        keys: list[dict[str, Any]] = [
            {config.partition_key: {"S": pk}} for pk in stored[start : start + 100]
        ]
        for attempt in range(_READ_ROUNDS):
            request = {
                "RequestItems": {
                    config.table: {
                        "Keys": keys,
                        "ConsistentRead": True,
                        "ProjectionExpression": "#k, #z",
                        "ExpressionAttributeNames": {
                            "#k": config.partition_key,
                            "#z": COMPRESSION_FLAG,
                        },
                    }
                },
                "ReturnConsumedCapacity": "TOTAL",
            }
            reply = await core.send(op, "BatchGetItem", request, None)
            for item in reply.get("Responses", {}).get(config.table, ()):
                found[item[config.partition_key]["S"]] = item
            rest = reply.get("UnprocessedKeys", {}).get(config.table)
            if not rest:
                break
            keys = rest["Keys"]
            if attempt + 1 < _READ_ROUNDS:
                await _retry.sleep(_retry.backoff(attempt))
    return found
