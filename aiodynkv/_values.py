"""The value pipeline: the order of value transformations, written once for every transport.

Write: typed model → JSON (`aiodynkv._typed`) → str/bytes → compress (`aiodynkv._codec`)
→ encrypt (`Encryptor`) → offload to S3 when still larger than
``large_value_threshold`` (`Pointer`, `S3Blobs`) → the item, built and size-checked
once from the final bytes (`aiodynkv._codec.build_item`). Read is the exact reverse,
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

The module in sections: the record and `Pipeline` (with `BatchWrites` and the
old-item reads of batches and transactions); encryption (`Encryptor`, the KMS and
in-memory key services); offload (`Pointer`, the S3 and in-memory object stores);
the S3 and KMS clients beside the store's DynamoDB client (`Clients`) and their
failures as `KVError`s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import os
import re
import struct
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aiodynkv import _requests as requests
from aiodynkv._batch import read_items
from aiodynkv._codec import COMPRESSION_FLAG, decode_bytes, decode_value
from aiodynkv._errors import (
    AccessDeniedError,
    BucketNotFoundError,
    CorruptItemError,
    DecryptionError,
    EncryptionKeyError,
    KVConfigError,
    KVConnectionError,
    KVError,
    KVTimeoutError,
    ServerError,
    ThrottledError,
    botocore_exceptions,
    shown,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from aiodynkv._cache import PendingWrites
    from aiodynkv._codec import AttributeValue, Item
    from aiodynkv._config import KVConfig
    from aiodynkv._core import Core
    from aiodynkv._protocol import Value
    from aiodynkv._telemetry import Operation

    #: Reads an item again, strongly consistent: None when it is missing (or expired) now.
    Reread = Callable[[], Awaitable[Item | None]]

__all__ = [
    "AwsKms",
    "BatchWrites",
    "BlobStore",
    "Clients",
    "DATA_KEY_MAX_AGE",
    "DATA_KEY_MAX_USES",
    "ENVELOPE_SLACK",
    "Encryptor",
    "KMS",
    "KeyService",
    "LOCAL",
    "MISSING",
    "MemoryBlobs",
    "MemoryKms",
    "Pipeline",
    "Pointer",
    "S3Blobs",
    "aesgcm",
    "associated_data",
    "error_code",
    "for_core",
    "map_aws_error",
    "new_sibling_client",
    "object_name",
    "parse_envelope",
    "parse_record",
    "pointer_in",
    "read_old_items",
]

#: Bytes an envelope adds at most (header with a KMS blob, nonce, tag): the bound on
#: an offloaded object is ``max_value_bytes`` plus this.
ENVELOPE_SLACK = 4096
_STEPS = frozenset({"e", "ze", "o", "zo", "eo", "zeo"})
_KINDS = frozenset({"s", "b"})
_FETCHES = 16  # S3 reads in flight per get_many
_REREADS = 3  # an item re-read while each read finds a new pointer whose object is gone


def parse_record(flag: str) -> tuple[str, str, Pointer | None]:
    """Kind, steps and pointer of a pipeline record (``"b:zeo:s3:..."``).

    Raises:
        CorruptItemError: The record is not one aiodynkv writes.
    """
    parts = flag.split(":", 2)
    kind, steps = parts[0], parts[1] if len(parts) > 1 else ""
    if kind not in _KINDS or steps not in _STEPS or (("o" in steps) != (len(parts) == 3)):
        reason = "bad value record"
        raise CorruptItemError(reason, reason=reason)
    return kind, steps, Pointer.parse(parts[2]) if len(parts) == 3 else None


def pointer_in(record: str | None) -> Pointer | None:
    """The S3 pointer in a value record, if any (None when there is none or it is bad)."""
    if record is None or len(record) < 2:
        return None
    try:
        return parse_record(record)[2]
    except CorruptItemError:
        return None


def _record_of(item: Item) -> str | None:
    """The item's pipeline record, or None (no record, or the flag of compression alone)."""
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
        error = map_aws_error(
            exc, service=service, operation=operation, table=self.config.table, key=key
        )
        error.show_key = self.config.expose_keys
        return error

    # -- write -------------------------------------------------------------------

    async def seal(
        self, attr: AttributeValue, record: str | None, stored: str, key: str, operation: str
    ) -> tuple[AttributeValue, str | None]:
        """Encrypt and, when still too large, offload a value the codec encoded (compressed).

        Returns the final value attribute and its record, from which the item is
        built (and size-checked). The object of an offloaded value is uploaded here:
        its item, holding only the pointer, always fits, and so does a value kept in
        the item beside a bucket (``large_value_threshold`` is at most 400,000 bytes).

        Raises:
            KVError: S3 or KMS failed (mapped like DynamoDB's failures).
        """
        config = self.config
        kind = record or ("s" if "S" in attr else "b")
        steps = "z" if record else ""
        data: bytes = attr["B"] if "B" in attr else attr["S"].encode()
        encryptor = self._encryptor
        if encryptor is not None and encryptor.writes:
            try:
                data = await encryptor.encrypt(data, stored, f"{kind}:{steps}")
            except KVError:
                raise
            except Exception as exc:
                raise self._aws(exc, "KMS", operation, key) from exc
            steps += "e"
        if self.bucket is not None and len(data) > config.large_value_threshold:
            pointer = Pointer.of(
                self.bucket, object_name(config.large_value_prefix, config.table), data
            )
            assert self._blobs is not None  # noqa: S101 (a bucket comes with a blob store)
            try:
                await self._blobs.put(pointer.bucket, pointer.name, data)
            except Exception as exc:
                raise self._aws(exc, "S3", operation, key) from exc
            return {"B": b""}, f"{kind}:{steps}o:{pointer}"
        if "e" in steps:
            return {"B": data}, f"{kind}:{steps}"
        return attr, record

    async def seal_many(
        self,
        values: dict[str, AttributeValue],
        records: dict[str, str],
        users: Mapping[str, tuple[str, Any]],
        operation: str,
    ) -> None:
        """`seal` for a batch, in place: `values` and `records` by stored key.

        On any failure the objects already uploaded are deleted.
        """

        async def one(pk: str) -> None:
            attr, record = await self.seal(values[pk], records.get(pk), pk, users[pk][0], operation)
            values[pk] = attr
            if record is not None:
                records[pk] = record

        try:
            await asyncio.gather(*(one(pk) for pk in values))
        except BaseException:
            await self.discard([pointer_in(r) for r in records.values()], operation)
            raise

    # -- read --------------------------------------------------------------------

    @staticmethod
    def needs_open(item: Item) -> bool:
        """True if the item's value is encrypted or offloaded (`open` must read it)."""
        return _record_of(item) is not None

    async def open(
        self,
        item: Item,
        stored: str,
        key: str,
        operation: str,
        reread: Reread | None = None,
    ) -> tuple[Value, Item] | None:
        """The item's value, fetched, decrypted and inflated, and the item it was read from.

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
            try:
                record = _record_of(current)
                if record is None:
                    return decode_value(current, self.config), current
                return await self._open(current, record, stored, key, operation), current
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

    async def _open(self, item: Item, record: str, stored: str, key: str, operation: str) -> Value:
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
        return decode_bytes(kind, data, "z" in steps, config.max_value_bytes)

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
        items: dict[str, Item],
        users: Mapping[str, str],
        operation: str,
        reread: Callable[[str], Awaitable[Item | None]] | None = None,
    ) -> tuple[dict[str, Value], dict[str, str]]:
        """`open` for a batch: values by user key, and why each unreadable item failed.

        `items` (by stored key) is updated in place: an item read again replaces its
        old one; an unreadable one, or one whose object went missing and that is gone
        when read again (`reread`: stored key -> the item read again), is removed.

        Raises:
            KVError: S3 or KMS failed for some item (not a damaged item: those are reported).
        """
        values: dict[str, Value] = {}
        corrupt: dict[str, str] = {}
        todo = [pk for pk, item in items.items() if _record_of(item) is not None]

        async def one(pk: str) -> None:
            again = None if reread is None else functools.partial(reread, pk)
            try:
                found = await self.open(items[pk], pk, users[pk], operation, again)
            except CorruptItemError as exc:
                corrupt[users[pk]] = exc.reason or str(exc)
                found = None
            if found is None:
                del items[pk]
            else:
                values[users[pk]], items[pk] = found

        if todo:
            await asyncio.gather(*(one(pk) for pk in todo))
        return values, corrupt

    # -- cleanup -----------------------------------------------------------------

    @staticmethod
    def pointer_of(item: Item | None) -> Pointer | None:
        """The S3 pointer of an item, if its value is offloaded (None when unreadable)."""
        return None if item is None else pointer_in(_record_of(item))

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
                self.cleanup_failed(operation, exc, objects=len(names))

    def cleanup_failed(self, operation: str, exc: BaseException, **fields: Any) -> None:
        """Log a failed cleanup step (reading old pointers, deleting objects); never raise."""
        if self.warn is not None:
            fields.update(table=self.config.table, operation=operation, error=type(exc).__name__)
            self.warn("aiodynkv.offload_cleanup_failed", **fields)


def for_core(core: Core) -> Pipeline:
    """The pipeline of an `AsyncDynamoKV`: S3 and KMS through the store's credentials."""
    clients = Clients(core)
    return Pipeline(
        core.config,
        S3Blobs(clients),
        AwsKms(clients, core.config.table),
        lambda event, **fields: core.tel.warn(event, **fields),  # noqa: PLW0108 (tel is replaced on open)
    )


class BatchWrites:
    """What `set_many` / `delete_many` do around their BatchWriteItem requests.

    Before: when offloading is on, read the old items' pointers (BatchWriteItem
    returns no old items). After: record each written key in the near cache, delete
    the S3 objects that written keys no longer point at, and the new objects of keys
    definitely not written (`records`: the new values' records by stored key).
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

    async def before(self, op: Operation | None, stored: Iterable[str]) -> None:
        """Read the old pointers (inside the admitted operation)."""
        pipeline = self._pipeline
        if pipeline.bucket is not None:
            try:
                self._old = await self._read_old(op, list(stored))
            except KVError as exc:  # cleanup is best effort: the write goes ahead
                pipeline.cleanup_failed(self._operation, exc)

    async def after(
        self,
        stored: Iterable[str],
        records: Mapping[str, str],
        unprocessed: Iterable[str],
        doubtful: Iterable[str],
    ) -> None:
        """Cache what was written; delete objects nothing points at any more."""
        pipeline = self._pipeline
        if pipeline.bucket is None and not self._cache.kept:
            return  # no objects to delete, no cache to fill
        not_written = set(unprocessed)
        left = not_written | set(doubtful)
        if pipeline.bucket is None:  # no objects: nothing read before, nothing to delete
            for pk in stored:
                if pk not in left:
                    self._cache.done(pk, self._users[pk][1], self._expires)
            return
        stale: list[Pointer | None] = []
        for pk in stored:
            new = pointer_in(records.get(pk))
            if pk in not_written:
                stale.append(new)
            elif pk not in left:
                self._cache.done(pk, self._users[pk][1], self._expires)
                old = pipeline.pointer_of(self._old.get(pk))
                if old != new:
                    stale.append(old)
        if any(stale):
            await pipeline.discard(stale, self._operation)


async def read_old_items(core: Core, op: Operation, stored: list[str]) -> dict[str, Item]:
    """Key and record of existing items (BatchGetItem, strongly consistent), best effort.

    Bounded like a single call; keys still unprocessed then are left out.
    """
    found, _ = await read_items(
        core, op, stored, fail_fast=True, consistent=True, projection=requests.RECORD
    )
    return found


# -- encryption ----------------------------------------------------------------------------
#
# Client-side encryption: AES-256-GCM with local keys, or with KMS envelope data keys.
#
# A sealed value (the *envelope*) is, byte by byte::
#
#     version      1 byte    1: local key, 2: KMS data key
#     key id       1 byte length + UTF-8 (``encryption_keys`` id, or the KMS key id)
#     wrapped key  2 byte length + KMS CiphertextBlob          (version 2 only)
#     nonce        12 random bytes
#     ciphertext   the value, then the 16-byte GCM tag
#
# The associated data binds the ciphertext to the table, the stored key (namespace
# included), the value's record (its type and whether it was compressed) and the
# whole header above (so the key id too). A value copied to another key or table,
# a flipped bit anywhere, an edited key id or an unknown one: all fail to decrypt,
# as `DecryptionError`. Nothing here ever puts a value in a message.
#
# KMS: one data key (``GenerateDataKey``, AES_256, encryption context
# ``{"aiodynkv:table": <table>}``) serves writes for up to `DATA_KEY_MAX_AGE` seconds
# or `DATA_KEY_MAX_USES` values; unwrapped data keys are cached for reads as long.
# `cryptography` is imported on first use (the ``encryption`` extra).

LOCAL = 1
KMS = 2
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
DATA_KEY_MAX_AGE = 300.0
DATA_KEY_MAX_USES = 2**20  # far below the 2**32 random-nonce bound of one GCM key
_UNWRAPPED_CACHE = 1024
_EXTRA = "pip install -e '.[encryption]' in a clone of aiodynkv (the cryptography package)"


def aesgcm(key: bytes) -> Any:
    """An ``AESGCM`` cipher for `key`; a clear `KVConfigError` without `cryptography`."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # pragma: no cover - checked with the config first
        raise KVConfigError(
            "encryption_keys", f"client-side encryption needs the encryption extra: {_EXTRA}"
        ) from None
    return AESGCM(key)


def check_available(field: str) -> None:
    """Raise `KVConfigError` naming `field` when `cryptography` is not installed."""
    try:
        import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401
    except ImportError:
        raise KVConfigError(
            field, f"client-side encryption needs the encryption extra: {_EXTRA}"
        ) from None


def _framed(*parts: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(part)) + part for part in parts)


def associated_data(table: str, stored: str, record: str, header: bytes) -> bytes:
    """What a ciphertext is bound to: table, stored key, value record and envelope header."""
    return _framed(b"aiodynkv/1", table.encode(), stored.encode(), record.encode(), header)


def _header(version: int, key_id: str, wrapped: bytes = b"") -> bytes:
    kid = key_id.encode()
    head = bytes((version, len(kid))) + kid
    if version == KMS:
        head += struct.pack(">H", len(wrapped)) + wrapped
    return head


def parse_envelope(blob: bytes) -> tuple[int, str, bytes, bytes, bytes, bytes]:
    """Split an envelope: version, key id, wrapped key, header, nonce, ciphertext.

    Raises:
        DecryptionError: The envelope is malformed.
    """
    try:
        version, size = blob[0], blob[1]
        at = 2 + size
        key_id = blob[2:at].decode()
        wrapped = b""
        if version == KMS:
            (length,) = struct.unpack_from(">H", blob, at)
            wrapped = blob[at + 2 : at + 2 + length]
            at += 2 + length
            if len(wrapped) != length:
                raise ValueError("short wrapped key")
        elif version != LOCAL:
            raise ValueError(f"unknown envelope version {version}")
        header, nonce, sealed = blob[:at], blob[at : at + NONCE_BYTES], blob[at + NONCE_BYTES :]
        if not key_id or len(nonce) != NONCE_BYTES or len(sealed) < TAG_BYTES:
            raise ValueError("short envelope")
    except (IndexError, ValueError, struct.error, UnicodeDecodeError) as exc:
        reason = f"malformed encrypted value ({exc})"
        raise DecryptionError(reason, reason=reason) from None
    return version, key_id, wrapped, header, nonce, sealed


class KeyService(Protocol):
    """Where KMS data keys come from: AWS KMS, or `MemoryKms` on the memory transport."""

    async def generate(self, key_id: str, context: dict[str, str]) -> tuple[bytes, bytes]:
        """A new data key: (plaintext, wrapped)."""
        ...

    async def unwrap(self, key_id: str, wrapped: bytes, context: dict[str, str]) -> bytes:
        """The plaintext of a wrapped data key (`DecryptionError` when it does not unwrap)."""
        ...


class AwsKms:
    """KMS through the store's own credentials (`Clients`)."""

    __slots__ = ("_clients", "_table")

    def __init__(self, clients: Clients, table: str) -> None:
        self._clients = clients
        self._table = table

    async def generate(self, key_id: str, context: dict[str, str]) -> tuple[bytes, bytes]:
        """GenerateDataKey (AES_256) under `key_id`."""
        kms = await self._clients.get("kms")
        reply = await kms.generate_data_key(
            KeyId=key_id, KeySpec="AES_256", EncryptionContext=context
        )
        return bytes(reply["Plaintext"]), bytes(reply["CiphertextBlob"])

    async def unwrap(self, key_id: str, wrapped: bytes, context: dict[str, str]) -> bytes:
        """Decrypt a data key; a blob KMS refuses as ciphertext is a `DecryptionError`."""
        kms = await self._clients.get("kms")
        try:
            reply = await kms.decrypt(
                CiphertextBlob=wrapped, KeyId=key_id, EncryptionContext=context
            )
        except Exception as exc:
            if error_code(exc) in ("InvalidCiphertextException", "IncorrectKeyException"):
                reason = "KMS refused the wrapped data key"
                raise DecryptionError(reason, reason=reason) from None
            raise
        return bytes(reply["Plaintext"])


class MemoryKms:
    """A KMS stand-in for the memory transport: data keys wrapped under a key from the id."""

    __slots__ = ()

    @staticmethod
    def _master(key_id: str) -> bytes:
        return hashlib.sha256(b"aiodynkv-memory-kms\x00" + key_id.encode()).digest()

    async def generate(self, key_id: str, context: dict[str, str]) -> tuple[bytes, bytes]:
        """A random data key, wrapped with AES-GCM under the id's master key."""
        plain = os.urandom(KEY_BYTES)
        nonce = os.urandom(NONCE_BYTES)
        aad = repr(sorted(context.items())).encode()
        return plain, nonce + aesgcm(self._master(key_id)).encrypt(nonce, plain, aad)

    async def unwrap(self, key_id: str, wrapped: bytes, context: dict[str, str]) -> bytes:
        """Unwrap what `generate` wrapped (same id and context), else `DecryptionError`."""
        from cryptography.exceptions import InvalidTag

        aad = repr(sorted(context.items())).encode()
        try:
            plain: bytes = aesgcm(self._master(key_id)).decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad
            )
        except (InvalidTag, ValueError):
            reason = "KMS refused the wrapped data key"
            raise DecryptionError(reason, reason=reason) from None
        return plain


class _DataKey:
    __slots__ = ("born", "cipher", "header", "uses")

    def __init__(self, cipher: Any, header: bytes) -> None:
        self.cipher = cipher
        self.header = header
        self.born = time.monotonic()
        self.uses = 0


class Encryptor:
    """Seals and opens values for one store (its keys, its table)."""

    __slots__ = (
        "_context",
        "_current",
        "_kms",
        "_kms_key_id",
        "_local",
        "_lock",
        "_opened",
        "_table",
        "_write_key",
    )

    def __init__(self, config: KVConfig, kms: KeyService | None) -> None:
        keys: Mapping[str, bytes] = config.encryption_keys or {}
        self._local = {kid: aesgcm(bytes(key)) for kid, key in keys.items()}
        self._current = config.encryption_key_id
        self._kms = kms
        self._kms_key_id = config.encryption_kms_key_id
        self._table = config.table
        self._context = {"aiodynkv:table": config.table}
        self._write_key: _DataKey | None = None
        self._opened: OrderedDict[bytes, tuple[Any, float]] = OrderedDict()
        self._lock = asyncio.Lock()

    @property
    def writes(self) -> bool:
        """True when new values are encrypted (a current key id or a KMS key is set)."""
        return self._kms_key_id is not None or self._current is not None

    async def _key_for_write(self) -> _DataKey:
        if self._kms_key_id is None:
            assert self._current is not None  # noqa: S101 (checked by `writes`)
            return _DataKey(self._local[self._current], _header(LOCAL, self._current))
        key = self._write_key
        if key is None or not self._fresh(key):
            async with self._lock:
                key = self._write_key
                if key is None or not self._fresh(key):
                    assert self._kms is not None  # noqa: S101 (set with the KMS key id)
                    plain, wrapped = await self._kms.generate(self._kms_key_id, self._context)
                    key = _DataKey(aesgcm(plain), _header(KMS, self._kms_key_id, wrapped))
                    self._write_key = key
        key.uses += 1
        return key

    @staticmethod
    def _fresh(key: _DataKey) -> bool:
        return key.uses < DATA_KEY_MAX_USES and time.monotonic() - key.born < DATA_KEY_MAX_AGE

    async def encrypt(self, plaintext: bytes, stored: str, record: str) -> bytes:
        """The envelope of `plaintext`, bound to this table, `stored` and `record`."""
        key = await self._key_for_write()
        nonce = os.urandom(NONCE_BYTES)
        aad = associated_data(self._table, stored, record, key.header)
        sealed: bytes = key.cipher.encrypt(nonce, plaintext, aad)
        return key.header + nonce + sealed

    async def _key_for_read(self, version: int, key_id: str, wrapped: bytes) -> Any:
        if version == LOCAL:
            cipher = self._local.get(key_id)
            if cipher is None:
                reason = f"encryption key id {shown(key_id)} is not in encryption_keys"
                raise DecryptionError(reason, reason=reason)
            return cipher
        cached = self._opened.get(wrapped)
        if cached is not None and time.monotonic() - cached[1] < DATA_KEY_MAX_AGE:
            self._opened.move_to_end(wrapped)
            return cached[0]
        if self._kms is None:
            reason = "the value is KMS-encrypted and no KMS client is available"
            raise DecryptionError(reason, reason=reason)
        cipher = aesgcm(await self._kms.unwrap(key_id, wrapped, self._context))
        self._opened[wrapped] = (cipher, time.monotonic())
        while len(self._opened) > _UNWRAPPED_CACHE:
            self._opened.popitem(last=False)
        return cipher

    async def decrypt(self, blob: bytes, stored: str, record: str) -> bytes:
        """The plaintext sealed in `blob`.

        Raises:
            DecryptionError: Malformed, tampered, bound elsewhere, or under an unknown key.
        """
        from cryptography.exceptions import InvalidTag

        version, key_id, wrapped, header, nonce, sealed = parse_envelope(blob)
        cipher = await self._key_for_read(version, key_id, wrapped)
        try:
            plain: bytes = cipher.decrypt(
                nonce, sealed, associated_data(self._table, stored, record, header)
            )
        except InvalidTag:
            reason = (
                "the value does not decrypt: tampered, written under another key or table, "
                "or with another key of the same id"
            )
            raise DecryptionError(reason, reason=reason) from None
        return plain


# -- offload: large values in S3 -----------------------------------------------------------
#
# Large values in S3: object storage behind a pointer kept in the item.
#
# A value that is still larger than ``large_value_threshold`` after compression and
# encryption is written as one S3 object, ``<large_value_prefix><table>/<random hex>``
# in ``large_value_bucket``, and the item keeps a pointer (`Pointer`) in its value
# record::
#
#     s3:<bucket>:<size in bytes>:<sha256 of the object, hex>:<object key>
#
# Reads fetch the object, refuse one longer than the pointer says (or than
# ``max_value_bytes`` allows), and check its SHA-256: a different object is a
# `CorruptItemError`, never "not found". A missing object is usually a race, not
# damage: a writer replaced or deleted the item, then removed its object, between
# the reader's read of the item and of the object. So the reader reads the item again
# (strongly consistent) and returns what is there now; only a pointer whose object is
# missing on both reads is corrupt. Each write makes a new object (a random
# name), so an object is never changed once an item points at it; the store deletes
# the old object after an overwrite or delete, and the new one when its item write
# definitely failed. Crashes in between and items removed by DynamoDB's TTL sweeper
# leave orphans: docs/large-values.md shows the bucket lifecycle rule that collects
# them.

#: The reason of the `CorruptItemError` for a pointer whose object does not exist.
MISSING = "the large value's S3 object is missing"

_SCHEME = "s3"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_DELETE_BATCH = 1000  # keys per DeleteObjects


@dataclass(frozen=True, slots=True)
class Pointer:
    """Where an offloaded value lives and what it must hash to."""

    bucket: str
    name: str
    size: int
    sha256: str

    def __str__(self) -> str:
        return f"{_SCHEME}:{self.bucket}:{self.size}:{self.sha256}:{self.name}"

    @classmethod
    def of(cls, bucket: str, name: str, data: bytes) -> Pointer:
        """The pointer to `data` stored as `bucket`/`name`."""
        return cls(bucket, name, len(data), hashlib.sha256(data).hexdigest())

    @classmethod
    def parse(cls, text: str) -> Pointer:
        """Read a pointer back.

        Raises:
            CorruptItemError: The text is not a pointer aiodynkv writes.
        """
        parts = text.split(":", 4)
        if (
            len(parts) != 5
            or parts[0] != _SCHEME
            or not _BUCKET.fullmatch(parts[1])
            or not parts[2].isdigit()
            or not _DIGEST.fullmatch(parts[3])
            or not parts[4]
        ):
            reason = "malformed large-value pointer"
            raise CorruptItemError(reason, reason=reason)
        return cls(parts[1], parts[4], int(parts[2]), parts[3])

    def check(self, data: bytes | None) -> bytes:
        """`data` if it is the object this pointer names, else `CorruptItemError`."""
        if data is None:
            reason = MISSING
        elif len(data) != self.size:
            reason = "the large value's S3 object has the wrong size"
        elif hashlib.sha256(data).hexdigest() != self.sha256:
            reason = "the large value's S3 object does not match its SHA-256"
        else:
            return data
        raise CorruptItemError(reason, reason=reason)


def object_name(prefix: str, table: str) -> str:
    """A fresh object key for a value of `table` (never reused)."""
    return f"{prefix}{table}/{uuid.uuid4().hex}"


class BlobStore(Protocol):
    """Object storage for large values: S3, or `MemoryBlobs` on the memory transport."""

    async def put(self, bucket: str, name: str, data: bytes) -> None:
        """Store `data` as `bucket`/`name`."""
        ...

    async def get(self, bucket: str, name: str, limit: int) -> bytes | None:
        """The object (at most `limit` + 1 bytes are read), or None when it does not exist."""
        ...

    async def delete(self, bucket: str, names: list[str]) -> None:
        """Delete objects; missing ones are fine."""
        ...


class MemoryBlobs:
    """Objects in a dict: the memory transport's S3 stand-in (shared by its stores)."""

    __slots__ = ("objects",)

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    async def put(self, bucket: str, name: str, data: bytes) -> None:
        """See `BlobStore.put`."""
        await asyncio.sleep(0)
        self.objects[bucket, name] = bytes(data)

    async def get(self, bucket: str, name: str, limit: int) -> bytes | None:
        """See `BlobStore.get`."""
        await asyncio.sleep(0)
        data = self.objects.get((bucket, name))
        return None if data is None else data[: limit + 1]

    async def delete(self, bucket: str, names: list[str]) -> None:
        """See `BlobStore.delete`."""
        await asyncio.sleep(0)
        for name in names:
            self.objects.pop((bucket, name), None)


class S3Blobs:
    """S3 through the store's own credentials (`Clients`)."""

    __slots__ = ("_clients",)

    def __init__(self, clients: Clients) -> None:
        self._clients = clients

    async def put(self, bucket: str, name: str, data: bytes) -> None:
        """PutObject."""
        s3 = await self._clients.get("s3")
        await s3.put_object(
            Bucket=bucket, Key=name, Body=data, ContentType="application/octet-stream"
        )

    async def get(self, bucket: str, name: str, limit: int) -> bytes | None:
        """GetObject, reading at most `limit` + 1 bytes; None for NoSuchKey."""
        s3 = await self._clients.get("s3")
        try:
            reply = await s3.get_object(Bucket=bucket, Key=name)
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        body = reply["Body"]
        parts: list[bytes] = []
        size = 0
        async with body:
            while size <= limit:  # read() may return less than asked: loop to the end
                part: bytes = await body.read(limit + 1 - size)
                if not part:
                    break
                parts.append(part)
                size += len(part)
        return b"".join(parts)

    async def delete(self, bucket: str, names: list[str]) -> None:
        """DeleteObject, or DeleteObjects in batches of 1000."""
        s3 = await self._clients.get("s3")
        if len(names) == 1:
            await s3.delete_object(Bucket=bucket, Key=names[0])
            return
        for start in range(0, len(names), _DELETE_BATCH):
            chunk = names[start : start + _DELETE_BATCH]
            await s3.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": name} for name in chunk], "Quiet": True},
            )


# -- the S3 and KMS clients and their failures ---------------------------------------------
#
# S3 and KMS clients beside a store's DynamoDB client, and their failures as `KVError`s.
#
# A store that offloads large values or uses KMS envelope encryption needs an S3 or
# KMS client. It is built once per store, on first use, with the DynamoDB client's
# credentials (so refreshing credentials refresh for all three), region,
# endpoint (moto serves S3 and KMS on the same port as DynamoDB), timeouts and
# retries, and it closes with the store.

_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "IncorrectKeyException",
    }
)
_THROTTLED = frozenset(
    {"SlowDown", "ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequests"}
)
# KMS refusing the key itself (not the caller's permission, not the ciphertext).
_KEY_REFUSED = frozenset(
    {
        "NotFoundException",
        "DisabledException",
        "KMSInvalidStateException",
        "KeyUnavailableException",
        "InvalidKeyUsageException",
    }
)
_SERVER = frozenset(
    {"InternalError", "InternalFailure", "ServiceUnavailable", "KMSInternalException"}
)


def error_code(exc: BaseException) -> str:
    """The service's error code of a botocore ``ClientError`` ("" for anything else)."""
    bex = botocore_exceptions()
    if bex is not None and isinstance(exc, bex.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _transport_error_class(exc: BaseException) -> type[KVError]:
    """The class of a failure that carries no service error code.

    botocore and aiohttp are looked up among the loaded modules rather than imported:
    an exception can only be one of their classes once they have been loaded.
    """
    bex = botocore_exceptions()
    aiohttp = sys.modules.get("aiohttp")
    if bex is not None and isinstance(exc, (bex.NoCredentialsError, bex.PartialCredentialsError)):
        return AccessDeniedError
    timeouts: tuple[type[BaseException], ...] = (asyncio.TimeoutError,)
    connection: tuple[type[BaseException], ...] = (OSError,)
    if bex is not None:
        timeouts += (bex.ReadTimeoutError, bex.ConnectTimeoutError)
        connection += (bex.ConnectionError, bex.HTTPClientError)
    if aiohttp is not None:
        connection += (aiohttp.ClientError,)
    if isinstance(exc, timeouts):
        return KVTimeoutError
    if isinstance(exc, connection):
        return KVConnectionError
    return KVError


def map_aws_error(
    exc: BaseException, *, service: str, operation: str, table: str, key: str | None
) -> KVError:
    """The `KVError` for a failed S3 or KMS call (the message holds no key and no value)."""
    if isinstance(exc, KVError):
        return exc
    code = error_code(exc)
    cls: type[KVError] = KVError
    if code:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)  # type: ignore[attr-defined]
        message = str(exc.response.get("Error", {}).get("Message", ""))  # type: ignore[attr-defined]
        reason = f"{service} {code}: {message}".rstrip(": ")
        if code in _DENIED or status == 403:  # a 403 is a refusal, whatever its body says
            cls = AccessDeniedError
        elif code == "NoSuchBucket":
            cls = BucketNotFoundError
            reason += " (create the bucket, or fix large_value_bucket)"
        elif code in _KEY_REFUSED:
            cls = EncryptionKeyError
            reason += " (KMS refused encryption_kms_key_id: check the key exists and is enabled)"
        elif code in _THROTTLED:
            cls = ThrottledError
        elif code == "RequestTimeout":
            cls = KVTimeoutError
        elif code in _SERVER or (isinstance(status, int) and status >= 500):
            cls = ServerError
    else:
        cls, reason = _transport_error_class(exc), f"{service}: {type(exc).__name__}"
        if cls is AccessDeniedError:
            reason = f"{service}: no credentials"
    return cls(
        f"{operation} on table {table!r} failed: {reason}",
        operation=operation,
        table=table,
        key=key,
        reason=reason,
    )


def new_sibling_client(core: Core, service: str) -> Any:
    """An aiobotocore client for `service` sharing the DynamoDB client's credentials.

    Its session's only credential provider lends the DynamoDB client's current
    credentials (`_Lent`), so refreshing credentials refresh for all clients.
    Returns the client as an async context manager (not entered).
    """
    from aiobotocore.credentials import AioCredentialResolver
    from aiobotocore.session import AioSession

    from aiodynkv._transport.botocore import client_config, shared_loader
    from aiodynkv._transport.lean import ClientCredentials

    config, client = core.config, core.client
    session = AioSession()
    session.register_component("data_loader", shared_loader())
    lent = _Lent(ClientCredentials(client))
    session.register_component("credential_provider", AioCredentialResolver([lent]))
    region = getattr(getattr(client, "meta", None), "region_name", None)
    extra: dict[str, Any] = {}
    if service == "s3" and config.endpoint is not None:
        extra["s3"] = {"addressing_style": "path"}  # a local endpoint has no bucket subdomains
    return session.create_client(
        service,
        region_name=region or config.effective_region,
        endpoint_url=config.endpoint,
        config=client_config(config, **extra),
    )


class _Lent:
    """A botocore credential provider lending the credentials of another client.

    The lent copy is taken again a minute after each loan (at the latest two
    minutes after): botocore refreshes the source at least ten minutes before it
    expires, so the copy is always valid.
    """

    METHOD = "aiodynkv-dynamodb-client"
    CANONICAL_NAME = None

    def __init__(self, source: Any) -> None:
        self._source = source

    async def load(self) -> Any:
        """The lent credentials; None when the source has none (signing then refuses)."""
        import botocore.exceptions as bex
        from aiobotocore.credentials import AioRefreshableCredentials

        try:
            metadata = await self._fetch()
        except bex.NoCredentialsError:
            return None
        return AioRefreshableCredentials.create_from_metadata(
            metadata,
            refresh_using=self._fetch,
            method=self.METHOD,
            advisory_timeout=_LENT_SECONDS - _RELEND_SECONDS,
            mandatory_timeout=_LENT_SECONDS - 2 * _RELEND_SECONDS,
        )

    async def _fetch(self) -> dict[str, Any]:
        frozen = await self._source.get_frozen_credentials()
        expiry = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=_LENT_SECONDS)
        return {
            "access_key": frozen.access_key,
            "secret_key": frozen.secret_key,
            "token": frozen.token,
            "expiry_time": expiry.isoformat(),
            "account_id": getattr(frozen, "account_id", None),
        }


_LENT_SECONDS = 300  # the expiry each loan is given
_RELEND_SECONDS = 60  # a loan is renewed this long after it was made


class Clients:
    """The S3 and KMS clients of one store, each created on first use and closed with it."""

    __slots__ = ("_clients", "_core", "_lock")

    def __init__(self, core: Core) -> None:
        self._core = core
        self._clients: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def get(self, service: str) -> Any:
        """The open client for `service` (``"s3"`` or ``"kms"``)."""
        client = self._clients.get(service)
        if client is None:
            async with self._lock:
                client = self._clients.get(service)
                if client is None:
                    client = await self._core.enter(new_sibling_client(self._core, service))
                    self._clients[service] = client
        return client
