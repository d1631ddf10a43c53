"""`AsyncDynamoKV`: the store's public operations, each validate → build → send → decode.

Validation lives in ``_keys`` and ``_codec``, request building in
``_requests``, lifecycle and sending in ``_core``, batches in ``_batch``, read
coalescing in ``_coalesce``, the near cache in ``_cache``, the value pipeline in
``_values``; a method strings them together.

Exactly-once writes: every write carries a fresh token stored on the item, and
asks for the old item when its condition fails. When the transport retried a
request whose reply was lost and the retry meets the call's own earlier write,
the token says so (`written_by`), and the call reports what its write did (True,
the counter's value), without a second write and without an extra read where the
server returns the old item (DynamoDB, moto; dynalite does not, so one consistent
read is made: `Core.old_item`).
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from operator import itemgetter
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from aiodynkv import _requests as requests
from aiodynkv._batch import (
    MAX_WRITE_BATCH,
    Chunk,
    Outcome,
    chunked,
    drive,
    in_doubt,
    in_flight,
    read_items,
    write_items,
)
from aiodynkv._cache import fill_many, read_many_through, read_through, writing
from aiodynkv._codec import (
    COMPRESSION_FLAG,
    AttributeValue,
    Item,
    assemble_item,
    build_item,
    check_fits,
    decode_many,
    decode_value,
    encoded_value,
    expiry_ms_of,
    expiry_seconds,
    from_json,
    is_expired,
    item_room,
    new_token,
    new_version,
    new_versions,
    now,
    plain_values,
    remaining_seconds,
    stored_many,
    to_json,
    version_of,
    was_live,
    written_by,
)
from aiodynkv._config import KVConfig
from aiodynkv._core import Core, State, ensure_table, probe_health
from aiodynkv._errors import (
    BatchIncompleteError,
    ConditionFailedError,
    CorruptItemError,
    InsecureEndpointWarning,
    KeyNotFoundError,
    KVError,
    KVValidationError,
    WrongTypeError,
    shown,
)
from aiodynkv._keys import (
    SEPARATOR,
    KeyCodec,
    check_conditions,
    check_delta,
    check_version,
    pair_of,
    ttl_seconds,
)
from aiodynkv._protocol import MISSING, TTL, Health, KeyListing, StoredItem, Value
from aiodynkv._transport import ServiceError, WireError
from aiodynkv._values import BatchWrites, read_old_items

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from typing_extensions import Self

    from aiodynkv._counter import ShardedCounter
    from aiodynkv._lock import Lock
    from aiodynkv._telemetry import Operation
    from aiodynkv._transaction import Transaction
    from aiodynkv._typed import TypedView

__all__ = ["AsyncDynamoKV"]

_T = TypeVar("_T")
_M = TypeVar("_M")
_E = TypeVar("_E", bound=KVError)
_NO_VALUE = object()
_CLEAR_BATCH = 1000  # keys per _delete_batch in clear(): 40 BatchWriteItem requests
_DELETE_WINDOW = 1000  # keys of one delete_many driven at once (bounds the tasks created)
_INCR_RESETS = 5
_NOT_MINE = "the retry met an item this call did not write"


def _not_applied(error: KVError) -> bool:
    """True if the request that failed with `error` was definitely not applied.

    Only the transport knows: its error says whether any attempt may have reached
    the server and been applied. Anything else (no transport error) is not known.
    """
    cause = error.__cause__
    return isinstance(cause, (ServiceError, WireError)) and not cause.in_doubt


class AsyncDynamoKV:
    """An asyncio key-value store on one DynamoDB table.

    Open it once for the life of the service and share it::

        async with AsyncDynamoKV(table="kv", endpoint="http://127.0.0.1:8000",
                                 create_table=True) as kv:
            await kv.set("user:1", "alice", ttl=3600)
            name = await kv.get("user:1")

    Args:
        config: A `KVConfig`; keyword fields may be given instead, or on top of it.
        client: An open aiobotocore DynamoDB client to use as-is (never closed by us).
        **fields: `KVConfig` fields (``table=``, ``endpoint=``, ``create_table=``...).

    Raises:
        KVConfigError: A field is invalid; the message names it.
    """

    __slots__ = ("_core", "_keys", "_view")

    def __init__(
        self,
        config: KVConfig | None = None,
        /,
        *,
        client: DynamoDBClient | Any | None = None,
        **fields: Any,
    ) -> None:
        config = self._merge(config, {}, fields)
        if config.is_insecure:
            warnings.warn(
                "the endpoint is plain http on a host that is not loopback: requests and "
                "their (signed) credentials travel unencrypted; use https",
                InsecureEndpointWarning,
                stacklevel=2,
            )
        #: Config, lifecycle and sending, shared with the namespace views.
        self._core: Core = Core(config, client)
        self._keys = KeyCodec(config.namespace)
        self._view = False

    @staticmethod
    def _merge(
        config: KVConfig | None, defaults: dict[str, Any], fields: dict[str, Any]
    ) -> KVConfig:
        """The config from a `KVConfig` and/or keyword fields (keywords win)."""
        if config is None:
            return KVConfig(**{**defaults, **fields})
        return config.replace(**fields) if fields else config

    @classmethod
    def from_env(cls, *, client: Any | None = None, **overrides: Any) -> AsyncDynamoKV:
        """A store configured from ``AIODYNKV_*`` variables (see `KVConfig.from_env`)."""
        return cls(KVConfig.from_env(**overrides), client=client)

    @property
    def config(self) -> KVConfig:
        """The store's configuration."""
        return self._core.config

    @property
    def client(self) -> DynamoDBClient | Any:
        """The underlying aiobotocore client (None until opened)."""
        return self._core.client

    @property
    def is_open(self) -> bool:
        """True between a successful `open` and `aclose`."""
        return self._core.state is State.OPEN

    @property
    def current_namespace(self) -> str | None:
        """The namespace this store or view reads and writes (None at the root)."""
        return self._keys.namespace

    def __repr__(self) -> str:
        ns = f", namespace={shown(self._keys.namespace)}" if self._keys.namespace else ""
        return (
            f"<AsyncDynamoKV table={self.config.table!r}{ns} "
            f"transport={self.config.transport} {self._core.state.value}>"
        )

    def namespace(self, name: str) -> Self:
        """A view whose keys live in namespace `name`, sharing this store's connection.

        Namespaces do not nest: ``kv.namespace("a").namespace("b")`` is namespace
        ``"b"``. The view opens and closes with its parent; its own `aclose` does nothing.
        A name is any non-empty text without U+001F. Its only limit is DynamoDB's on the
        key: namespace, separator and key together at most 2,048 UTF-8 bytes.

        Raises:
            KVValidationError: The name is empty, holds U+001F, is not UTF-8 text, or is
                over 2,046 bytes (no room left for a key).
        """
        view = object.__new__(type(self))
        view._core = self._core
        view._view = True
        try:
            view._keys = KeyCodec(name)
        except (TypeError, ValueError) as exc:
            raise KVValidationError(f"namespace: {exc}", operation="namespace") from None
        return view

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> Self:
        """Create the client (and the table with ``create_table=True``).

        A namespace view does not open anything: it checks its parent is open.

        Raises:
            StoreClosedError: The store was opened or closed before (for a view:
                its parent is not open).
            KVConfigError: No region could be found.
        """
        if self._view:
            self._core.admit("open")
            self._core.release()
        else:
            await self._core.open()
        return self

    async def aclose(self) -> None:
        """Refuse new calls, let those in flight finish whole, then close. Idempotent.

        Waits up to ``close_timeout`` for operations in flight, every request of a
        batch included; past it, batches stop and raise `BatchIncompleteError`.
        Closing a namespace view does nothing: the view closes with its parent.

        Raises:
            KVError: Called from another event loop than the one that opened the
                store (which stays open, to be closed from its own loop).
        """
        if not self._view:
            await self._core.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def ensure_table(self) -> None:
        """Create the table if missing (on-demand billing), wait for ACTIVE, enable TTL.

        Safe to call twice and from several processes at once.
        """
        core = self._core
        core.admit("ensure_table")
        try:
            await ensure_table(core.raw_send, core.config, core.tel)
        finally:
            core.release()

    async def health(self) -> Health:
        """DescribeTable: UP when the table is ACTIVE. Never raises for server trouble."""
        core = self._core
        send = core.raw_send if core.state is State.OPEN else None
        return await probe_health(send, core.config, core.tel)

    # -- reads -------------------------------------------------------------------

    @overload
    async def get(self, key: str, *, consistent: bool = False) -> Value: ...
    @overload
    async def get(self, key: str, default: _T, *, consistent: bool = False) -> Value | _T: ...
    async def get(self, key: str, default: Any = MISSING, *, consistent: bool = False) -> Any:
        """Return the value stored at `key`: str, bytes, or int for a counter.

        Args:
            key: The key.
            default: Returned when the key is missing or expired.
            consistent: Bypass the near cache and read strongly consistent, whatever
                ``consistent_read`` says.

        Raises:
            KeyNotFoundError: The key is missing or expired and no default was given.
            InvalidKeyError: The key is invalid.
            CorruptItemError: The item cannot be read (foreign or damaged data).
            DecryptionError: The value is encrypted and does not decrypt here.
        """
        value = await self._get(key, consistent)
        if value is None:
            if default is MISSING:
                raise self._not_found(key, "get")
            return default
        return value

    async def _get(self, key: str, consistent: bool = False) -> Value | None:
        core = self._core
        stored = self._encode(key, "get")
        with core.operation("get", "GetItem", key) as op:
            if core.cache is None:
                return (await self._fetch(op, key, stored, consistent))[0]
            fetch = functools.partial(self._fetch, op, key, stored, consistent)
            return await read_through(core.cache, op, stored, consistent, fetch)

    async def _fetch(
        self, op: Operation, key: str, stored: str, consistent: bool
    ) -> tuple[Value | None, float | None]:
        """`get`'s read: the value (None: missing or expired), and its expiry for the cache."""
        core = self._core
        if core.coalescer is not None and (core.config.consistent_read or not consistent):
            item = self._live(op, await core.coalescer.get(stored, key, op), key)
        else:
            item = await self._read(op, key, stored, consistent=consistent)
        if item is None:
            return None, None
        again = functools.partial(self._read_again, op, stored, key)
        found = await self._decoded("get", item, key, stored, again)
        if found is None:
            return None, None
        value, item = found
        return value, None if core.cache is None else expiry_seconds(item, core.config)

    async def get_with_version(self, key: str) -> tuple[Value, int]:
        """Return the value at `key` and its version, for `set(..., if_version=)`.

        Raises:
            KeyNotFoundError: The key is missing or expired.
            CorruptItemError: The item cannot be read.
        """
        stored = self._encode(key, "get_with_version")
        with self._core.operation("get_with_version", "GetItem", key) as op:
            found = await self._read_value(op, key, stored)
            if found is None:
                raise self._not_found(key, "get_with_version")
            value, item = found
            try:
                return value, version_of(item, self.config)
            except CorruptItemError as exc:
                raise self._corrupt("get_with_version", key, exc.reason or "") from None

    @overload
    async def get_with_ttl(
        self, key: str, *, consistent: bool = False
    ) -> tuple[Value, float | None]: ...
    @overload
    async def get_with_ttl(
        self, key: str, default: _T, *, consistent: bool = False
    ) -> tuple[Value | _T, float | None]: ...
    async def get_with_ttl(
        self, key: str, default: Any = MISSING, *, consistent: bool = False
    ) -> tuple[Any, float | None]:
        """Return the value at `key` and its remaining seconds (None without expiry).

        One GetItem, bypassing the near cache. A missing or expired key gives
        ``(default, None)``, or raises without a default.

        Args:
            key: The key.
            default: Returned in place of the value when the key is missing or expired.
            consistent: Read strongly consistent, whatever ``consistent_read`` says.

        Raises:
            KeyNotFoundError: The key is missing or expired and no default was given.
            CorruptItemError: The item cannot be read.
        """
        stored = self._encode(key, "get_with_ttl")
        with self._core.operation("get_with_ttl", "GetItem", key) as op:
            found = await self._read_value(op, key, stored, consistent=consistent)
            if found is None:
                if default is MISSING:
                    raise self._not_found(key, "get_with_ttl")
                return default, None
            value, item = found
            return value, remaining_seconds(item, self.config, now())

    async def exists(self, key: str) -> bool:
        """True if `key` exists and has not expired (reads only the key and its expiry)."""
        stored = self._encode(key, "exists")
        with self._core.operation("exists", "GetItem", key) as op:
            return await self._read(op, key, stored, ("#k", "#t", "#m")) is not None

    async def ttl(self, key: str) -> float | None:
        """Seconds until `key` expires (never more than was set), or None without expiry.

        Raises:
            KeyNotFoundError: The key is missing or expired.
        """
        stored = self._encode(key, "ttl")
        with self._core.operation("ttl", "GetItem", key) as op:
            item = await self._read(op, key, stored, ("#k", "#t", "#m"))
            if item is None:
                raise self._not_found(key, "ttl")
            return remaining_seconds(item, self.config, now())

    async def get_json(self, key: str, default: Any = MISSING) -> Any:
        """Return the value at `key` parsed as JSON, or `default` when missing.

        A counter comes back as its int.

        Raises:
            KeyNotFoundError: Missing or expired and no default was given.
            CorruptItemError: The stored value is not JSON.
        """
        value = await self.get(key, MISSING if default is MISSING else _NO_VALUE)
        if value is _NO_VALUE:
            return default
        if isinstance(value, int):
            return value
        try:
            return from_json(value)  # type: ignore[arg-type]  # str or bytes: what get returns
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._corrupt("get_json", key, f"the value is not JSON ({exc})") from None

    # -- single-key writes (exactly once, see the module docstring) ------------------

    async def set(
        self,
        key: str,
        value: str | bytes,
        *,
        ttl: TTL | None = None,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> bool:
        """Store `value` at `key` (one UpdateItem, one write unit per KB).

        Args:
            key: The key.
            value: str or bytes; other types raise TypeError (use `set_json`).
            ttl: Seconds or a timedelta after which the key reads as missing; None
                stores it without expiry (removing an earlier one).
            if_absent: Write only if the key is missing or expired.
            if_version: Write only if the key's current version is this one.

        Returns:
            True if written; False only when `if_absent` found the key present.

        Raises:
            ConditionFailedError: `if_version` did not match (carries ``current_version``).
            ValueTooLargeError: The value exceeds ``max_value_bytes`` or the item 400 KB.
            TypeError: The value is not str or bytes.
        """
        core = self._core
        config, pipeline = core.config, core.pipeline
        stored = self._encode(key, "set")
        if if_absent is not False or if_version is not None:
            check_conditions(if_absent, if_version, "set")
        at, token, base = now(), new_token(), new_version()
        expires_ms = None if ttl is None else expiry_ms_of(ttl_seconds(ttl, "set"), at)
        attr, record = encoded_value(config, value, "set", key)
        item = None  # a value to encrypt or offload: its item is built once that is done
        if not pipeline.writes:
            item = build_item(config, stored, attr, record, expires_ms, base, token, "set", key)
        with (
            core.operation("set", "UpdateItem", key) as op,
            writing(core.cache, stored) as cache,
        ):
            if item is None:
                attr, record = await pipeline.seal(attr, record, stored, key, "set")
                item = build_item(config, stored, attr, record, expires_ms, base, token, "set", key)
            request = requests.put(
                config,
                item,
                now=at,
                token=token,
                base=base,
                if_absent=if_absent,
                if_version=if_version,
                old=pipeline.bucket is not None,  # to delete the S3 object it pointed at
            )
            # Only a store with a bucket offloads, and only it asks for the old item.
            offloads = pipeline.bucket is not None
            new = pipeline.pointer_of(item) if offloads else None
            try:
                response = await core.send(op, "UpdateItem", request, key)
            except ConditionFailedError as exc:
                try:
                    written = await self._put_refused(
                        op, exc, stored, key, token, if_absent, if_version
                    )
                except ConditionFailedError:
                    await pipeline.discard([new], "set")
                    raise
                if not written:  # definitely not written: nothing points at it
                    await pipeline.discard([new], "set")
                    return False
                old = None
            except KVError as exc:
                if _not_applied(exc):
                    await pipeline.discard([new], "set")
                raise
            else:
                old = response.get("Attributes")
            if offloads and pipeline.pointer_of(old) != new:
                await pipeline.discard([pipeline.pointer_of(old)], "set")
            cache.done(stored, value, None if expires_ms is None else expires_ms / 1000.0)
            return True

    async def _put_refused(
        self,
        op: Operation,
        exc: ConditionFailedError,
        stored: str,
        key: str,
        token: str,
        if_absent: bool,
        if_version: int | None,
    ) -> bool:
        """A `set` whose condition failed: was it written (False: `if_absent` found the key)?

        Raises the conflict when `if_version` did not match.
        """
        if if_version is not None:
            conflict = await self._conflict_from(op, exc, stored, key, token)
            if conflict is not None:
                raise conflict from exc.__cause__
        elif if_absent:
            if in_doubt(exc):
                await self._own_retry(op, exc, stored, key, token)
                return True
            op.outcome = "condition_failed"
            return False
        # Unconditional: only our own earlier attempt can fail NOT_MINE.
        return True

    async def set_json(
        self,
        key: str,
        obj: Any,
        *,
        ttl: TTL | None = None,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> bool:
        """Store `obj` as compact JSON text; see `set`.

        Raises:
            TypeError: `obj` is not JSON serialisable.
            ValueError: `obj` holds NaN or an infinity.
        """
        return await self.set(
            key, to_json(obj), ttl=ttl, if_absent=if_absent, if_version=if_version
        )

    async def delete(self, key: str, *, if_version: int | None = None) -> bool:
        """Delete `key`; True if it existed (and had not expired). Never raises for a missing key.

        Args:
            key: The key.
            if_version: Delete only if the key's current version is this one.

        Raises:
            ConditionFailedError: `if_version` did not match (carries ``current_version``).
        """
        stored = self._encode(key, "delete")
        if if_version is not None:
            check_version(if_version, "delete")
        core = self._core
        # With `if_version`, a missing key passes the condition and comes back without an
        # old item: a retry after a lost reply then knows, without a read, that the key
        # is gone (the caller's version says it existed), and a first attempt that finds
        # it missing reports the conflict itself.
        request = requests.delete(
            core.config, stored, now=now(), if_version=if_version, absent_ok=True
        )
        with (
            core.operation("delete", "DeleteItem", key) as op,
            writing(core.cache, stored) as cache,
        ):
            try:
                response = await core.send(op, "DeleteItem", request, key)
            except ConditionFailedError as exc:
                conflict = await self._conflict_from(op, exc, stored, key, "")
                raise (conflict or exc) from exc.__cause__
            cache.done(stored, None)
            old = response.get("Attributes")
            await core.pipeline.discard([core.pipeline.pointer_of(old)], "delete")
            if self._live(op, old, key) is not None:
                return True
            if if_version is not None:
                if op.in_doubt:
                    return True  # our earlier attempt deleted the version the caller named
                raise self._conflict(key, "delete", None, None)
            if op.in_doubt:
                # Missing now: deleted by our earlier attempt, or missing all along.
                raise core.in_doubt(op, None, key, why="the retry found the key missing")
            return False

    async def expire(self, key: str, ttl: TTL) -> bool:
        """Give an existing key a new expiry; False if it is missing or expired."""
        return await self._update_existing(key, "expire", ttl_seconds(ttl, "expire", required=True))

    async def persist(self, key: str) -> bool:
        """Remove the expiry of an existing key; False if it is missing or expired."""
        return await self._update_existing(key, "persist", None)

    async def _update_existing(self, key: str, operation: str, seconds: float | None) -> bool:
        """Give a present, unexpired key a new expiry (or none); False when absent."""
        core = self._core
        stored = self._encode(key, operation)
        at, token = now(), new_token()
        request = requests.update_existing(
            core.config, stored, expiry_ms_of(seconds, at), now=at, token=token, base=new_version()
        )
        with core.operation(operation, "UpdateItem", key) as op, writing(core.cache, stored):
            try:
                await core.send(op, "UpdateItem", request, key)
            except ConditionFailedError as exc:
                if in_doubt(exc):
                    await self._own_retry(op, exc, stored, key, token)
                    return True
                op.outcome = "miss"
                return False
            return True

    async def incr(self, key: str, delta: int = 1, *, ttl: TTL | None = None) -> int:
        """Atomically add `delta` to the counter at `key` and return the new value.

        A missing or expired key starts from 0. Without `ttl` an existing expiry is
        kept. One UpdateItem (two when restarting an expired counter). A retried
        request never adds twice.

        Raises:
            WrongTypeError: The stored value is not a counter; nothing is changed.
            TypeError: `delta` is not an int.
        """
        stored = self._encode(key, "incr")
        check_delta(delta, "incr")
        seconds = ttl_seconds(ttl, "incr")
        core = self._core
        with core.operation("incr", "UpdateItem", key) as op, writing(core.cache, stored):
            for _ in range(_INCR_RESETS):
                counted = await self._incr_once(op, key, stored, delta, seconds)
                if counted is not None:
                    return counted
            raise KVError(  # pragma: no cover - needs five lost races in a row
                "incr: the key kept expiring under contention",
                operation="incr",
                table=core.config.table,
                key=key,
            )

    async def _incr_once(
        self, op: Operation, key: str, stored: str, delta: int, seconds: float | None
    ) -> int | None:
        """One round of `incr`: add, else restart an expired counter; None if another won."""
        config = self._core.config
        at, token, base = now(), new_token(), new_version()
        expires_ms = expiry_ms_of(seconds, at)
        try:
            request = requests.incr(
                config, stored, delta, expires_ms, now=at, token=token, base=base
            )
            response = await self._core.send(op, "UpdateItem", request, key)
            return self._counter(response["Attributes"], key)
        except ConditionFailedError as exc:  # expired, or our own earlier attempt
            if in_doubt(exc):
                old = await self._core.old_item(op, exc, stored, key)
                if written_by(old, token):
                    return self._counter(old or {}, key)
        except KVValidationError as exc:
            raise self._wrong_type(key, exc.reason) from exc.__cause__
        try:
            request = requests.incr_restart(
                config, stored, delta, expires_ms, now=at, token=token, base=base
            )
            await self._core.send(op, "UpdateItem", request, key)
        except ConditionFailedError as exc:  # restarted by another, or by us
            old = await self._core.old_item(op, exc, stored, key) if in_doubt(exc) else None
            return self._counter(old or {}, key) if written_by(old, token) else None
        return delta

    async def set_counter(self, key: str, number: int, *, ttl: TTL | None = None) -> None:
        """Make `key` a counter holding `number`, in one atomic write (for imports, resets).

        Raises:
            TypeError: `number` is not an int.
        """
        core = self._core
        stored = self._encode(key, "set_counter")
        check_delta(number, "set_counter", "number")
        seconds = ttl_seconds(ttl, "set_counter")
        at, token = now(), new_token()
        expires_ms = expiry_ms_of(seconds, at)
        request = requests.set_counter(
            core.config, stored, number, expires_ms, now=at, token=token, base=new_version()
        )
        # Only the call's own earlier attempt can fail NOT_MINE: that is success.
        with (
            core.operation("set_counter", "UpdateItem", key) as op,
            writing(core.cache, stored),
            contextlib.suppress(ConditionFailedError),
        ):
            await core.send(op, "UpdateItem", request, key)

    # -- batches (chunked, concurrent: aiodynkv._batch) ---------------------------

    async def get_many(
        self, keys: Iterable[str], *, snapshot: bool = False, consistent: bool = False
    ) -> dict[str, Value]:
        """Read many keys (BatchGetItem, 100 keys per request, chunks concurrently).

        Missing and expired keys are absent from the result; duplicates are read once.
        With ``snapshot=True``, up to 100 keys are read as one consistent snapshot
        (TransactGetItems; see `aiodynkv._transaction.snapshot_get`).
        With ``consistent=True`` the near cache is bypassed and the read is strongly
        consistent whatever ``consistent_read`` says.

        Raises:
            BatchIncompleteError: Keys still unprocessed at ``batch_deadline``; its
                ``unprocessed`` names exactly them and ``done`` holds what was read.
            CorruptItemError: Some items cannot be read; its ``corrupt`` says why per
                key, and ``done`` holds every value that was read fine.
        """
        if snapshot:
            from aiodynkv._transaction import snapshot_get

            return await snapshot_get(self, keys)
        core = self._core
        config = core.config
        wanted = self._encoded(keys, "get_many")
        if not wanted:
            return {}
        with core.operation("get_many", "BatchGetItem", batch_size=len(wanted)) as op:
            held, ask, ticket = read_many_through(core.cache, op, wanted, consistent)
            found: dict[str, Value] = {}
            corrupt: dict[str, str] = {}
            items: dict[str, Item] = {}  # kept for the value pipeline and the near cache
            later: list[str] = []  # compressed and pipeline items, opened once all are in
            pk_of, text_of = itemgetter(config.partition_key), itemgetter("S")

            def take(reply: list[Item]) -> None:
                # Each reply is decoded (and its items freed) as it comes, while the
                # server serves the others.
                users = map(wanted.__getitem__, map(text_of, map(pk_of, reply)))
                rest = plain_values(zip(users, reply, strict=True), config, found)
                if core.cache is not None:
                    items.update(zip(map(text_of, map(pk_of, reply)), reply, strict=True))
                if not rest:
                    return
                others = []
                for user, item in rest:
                    if COMPRESSION_FLAG in item:
                        pk = text_of(pk_of(item))
                        items[pk] = item
                        later.append(pk)
                    else:
                        others.append((user, item))
                values, bad = decode_many(others, config, now())
                found.update(values)
                corrupt.update(bad)

            _, outcome = (
                await read_items(core, op, ask, consistent=consistent, take=take)
                if ask
                else ({}, Outcome())
            )
            if outcome.fatal and not held and len(outcome.unprocessed) == len(ask):
                raise outcome.fatal  # nothing read at all: the plain error says it all
            if later:
                opened, unreadable = await core.pipeline.open_many(
                    items, wanted, "get_many", lambda pk: self._read_again(op, pk, wanted[pk])
                )
                pairs = [(wanted[pk], items[pk]) for pk in later if pk in items]
                values, bad = decode_many(pairs, config, now(), opened)
                found.update(values)
                corrupt.update(unreadable)
                corrupt.update(bad)
            fill_many(
                core.cache, ticket, ask, outcome.unprocessed, wanted, items, found, corrupt, config
            )
            found.update({wanted[pk]: value for pk, value in held.items() if value is not None})
            self._check_read(op, wanted, outcome, found, corrupt)
        return found

    async def _stored_many(self, keys: Iterable[str]) -> dict[str, StoredItem]:
        """Items with value, expiry and version: BatchGetItem, strongly consistent, no cache.

        What an import compares a file against. Missing and expired keys are absent.

        Raises:
            BatchIncompleteError: As `get_many`.
            CorruptItemError: As `get_many`.
        """
        core = self._core
        wanted = self._encoded(keys, "get_many")
        if not wanted:
            return {}
        with core.operation("get_many", "BatchGetItem", batch_size=len(wanted)) as op:
            items, outcome = await read_items(core, op, list(wanted), consistent=True)
            if outcome.fatal is not None and not items and len(outcome.unprocessed) == len(wanted):
                raise outcome.fatal  # nothing read at all: the plain error says it all
            opened, corrupt = await core.pipeline.open_many(
                items, wanted, "get_many", lambda pk: self._read_again(op, pk, wanted[pk])
            )
            pairs = ((wanted[pk], i) for pk, i in items.items())
            found, bad = stored_many(pairs, core.config, now(), opened)
            corrupt.update(bad)
            values = {key: stored.value for key, stored in found.items()}
            self._check_read(op, wanted, outcome, values, corrupt)
        return found

    def _check_read(
        self,
        op: Operation,
        wanted: dict[str, str],
        outcome: Outcome,
        found: dict[str, Value],
        corrupt: dict[str, str],
    ) -> None:
        """Raise for keys left unprocessed or unreadable; else record a hit or a miss."""
        config = self._core.config
        if not outcome.complete:
            missing = [wanted[pk] for pk in outcome.unprocessed]
            if outcome.expired:
                why = f"still unprocessed after {config.batch_deadline} s (batch_deadline)"
            elif outcome.error is not None:
                why = f"not read: {type(outcome.error).__name__} (the cause)"
            else:
                why = "not read: the store was closed"
            raise BatchIncompleteError(
                f"get_many: {len(missing)} of {len(wanted)} keys {why}",
                unprocessed=missing,
                done=found,
                operation="get_many",
                table=config.table,
            ) from outcome.error
        if corrupt:
            raise self._corrupt_many(found, corrupt, len(wanted))
        op.outcome = "hit" if found else "miss"

    async def set_many(
        self,
        items: Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]],
        *,
        ttl: TTL | None = None,
    ) -> None:
        """Write many values (BatchWriteItem, 25 per request, chunks concurrently).

        Every key and value is validated before anything is sent; for a key given
        twice the last value wins. Each item gets a fresh version. A retried chunk
        is idempotent (the same items are put again).

        Raises:
            BatchIncompleteError: The batch did not finish; ``done``, ``unprocessed``
                and ``in_doubt`` say what happened to each key.
        """
        config = self._core.config
        seconds = ttl_seconds(ttl, "set_many")
        at, token = now(), new_token()
        expires_ms = expiry_ms_of(seconds, at)
        pipeline = self._core.pipeline
        # The attribute values apart from their (rare) records: a dict of str or bytes
        # is not tracked by the garbage collector, a tuple holding one is.
        values: dict[str, AttributeValue] = {}
        records: dict[str, str] = {}
        users: dict[str, Any] = {}
        encode, table = self._keys.encode, config.table
        room = item_room(config, token)
        # Every key and value is checked here, before anything is sent (a value to
        # encrypt or offload once that is done); the items themselves are made chunk
        # by chunk as the chunks are sent (`_Puts`).
        plain = _plain_puts(self._keys, items, config, room) if isinstance(items, dict) else None
        if plain is not None:
            values, users = plain
        else:
            pairs = items.items() if isinstance(items, Mapping) else map(pair_of, items)
            for key, value in pairs:
                stored = encode(key, "set_many", table)
                attr, record = encoded_value(config, value, "set_many", key)
                if not pipeline.writes:
                    check_fits(
                        config, stored, attr, record, expires_ms, token, "set_many", key, room
                    )
                values[stored] = attr
                if record is not None:
                    records[stored] = record
                elif records:
                    records.pop(stored, None)  # a key given again: its last value wins
                users[stored] = (key, value)
        if not values:
            return

        async def seal() -> None:
            await pipeline.seal_many(values, records, users, "set_many")
            for pk, attr in values.items():
                user = users[pk][0]
                check_fits(
                    config, pk, attr, records.get(pk), expires_ms, token, "set_many", user, room
                )

        puts = _Puts(config, values, records, expires_ms, token)
        expires_at = None if expires_ms is None else expires_ms / 1000.0
        await self._write_many(
            "set_many",
            puts,
            users,
            expires_at,
            records,
            seal if pipeline.writes else None,
            texts=puts.texts(),
        )

    async def _write_many(
        self,
        operation: str,
        entries: Mapping[str, dict[str, Any]],
        users: dict[str, Any],
        expires_at: float | None = None,
        records: Mapping[str, str] | None = None,
        seal: Callable[[], Awaitable[None]] | None = None,
        *,
        texts: Callable[[list[str]], list[tuple[str, str]]] | None = None,
    ) -> None:
        """BatchWriteItem in chunks of 25; `users` maps stored keys to (user key, value).

        `seal` encrypts and offloads the values first (`records` are then theirs).
        `texts` makes a chunk's entries as JSON texts, for a transport that takes them.
        """
        core = self._core
        with (
            core.operation(operation, "BatchWriteItem", batch_size=len(entries)) as op,
            writing(core.cache, *entries) as cache,
        ):
            if seal is not None:
                await seal()
            old_items = functools.partial(read_old_items, core)
            hooks = BatchWrites(core.pipeline, cache, operation, users, expires_at, old_items)
            await hooks.before(op, entries)
            outcome = await write_items(core, op, entries, texts)
            await hooks.after(entries, records or {}, outcome.unprocessed, outcome.in_doubt)
            if not outcome.complete:
                done = {pk: value for pk, (_, value) in users.items()}
                user_of = {pk: user for pk, (user, _) in users.items()}
                raise self._incomplete_write(operation, "items", "written", outcome, user_of, done)

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete many keys; return how many existed (and had not expired) before the call.

        Each key is one DeleteItem returning the item it removed (``ReturnValues=ALL_OLD``),
        up to ``batch_concurrency`` x 25 in flight, since BatchWriteItem returns no old
        items. Reading first and then deleting in batches would miscount under races (a
        key written or deleted by another caller between the read and the delete); a
        DeleteItem removes and returns its item atomically, so concurrent callers count
        every key exactly once between them. Expired items not yet swept are deleted
        too, and not counted. Missing keys and duplicates count nothing. A key whose
        request was sent again after a lost reply, and whose retry found nothing, may
        have been deleted by the lost attempt: it is reported in doubt, never uncounted.

        Returns:
            How many of the keys existed unexpired and were deleted by this call.

        Raises:
            BatchIncompleteError: The batch did not finish; ``done`` (None per key),
                ``unprocessed`` and ``in_doubt`` say what happened to each key.
        """
        core = self._core
        users = self._encoded(keys, "delete_many")
        if not users:
            return 0
        old: dict[str, Item | None] = {}
        existed: set[str] = set()

        async def send(chunk: Chunk) -> None:
            pk = chunk[0]
            request = requests.delete(core.config, pk, now=now())
            response = await core.send(op, "DeleteItem", request, users[pk])
            item = old[pk] = response.get("Attributes")
            if item is None and response.get("ResponseMetadata", {}).get("InDoubt"):
                # An earlier attempt may have deleted it: the retry cannot say.
                raise core.in_doubt(op, None, users[pk], why="the retry found the key missing")
            if item is not None and was_live(item, core.config, now()):
                existed.add(pk)

        with (
            core.operation("delete_many", "DeleteItem", batch_size=len(users)) as op,
            writing(core.cache, *users) as cache,
        ):
            outcome = await self._drive_deletes(list(users), send)
            for pk in old:
                cache.done(pk, None)
            pointers = [core.pipeline.pointer_of(item) for item in old.values()]
            if any(pointers):
                await core.pipeline.discard(pointers, "delete_many")
            op.outcome = "hit" if existed else "miss"
            if not outcome.complete:
                done = dict.fromkeys(users)
                raise self._incomplete_write("delete_many", "keys", "deleted", outcome, users, done)
            return len(existed)

    async def _drive_deletes(self, stored: list[str], send: Any) -> Outcome:
        """Send one DeleteItem per key, a window of keys at a time, under the batch bounds."""
        config = self._core.config
        outcome = Outcome()
        for window in chunked(stored, _DELETE_WINDOW):
            if outcome.fatal is not None:
                outcome.unprocessed.extend(window)
                continue
            part = await drive(
                [[pk] for pk in window],
                send,
                concurrency=in_flight(config, config.batch_concurrency * MAX_WRITE_BATCH),
                deadline_seconds=config.batch_deadline,
                abort=self._core.abort,
            )
            outcome.unprocessed += part.unprocessed
            outcome.in_doubt += part.in_doubt
            outcome.error = part.error or outcome.error
            outcome.expired = outcome.expired or part.expired
            outcome.fatal = part.fatal or outcome.fatal
        return outcome

    async def _delete_batch(self, keys: Iterable[str]) -> None:
        """Delete keys with BatchWriteItem (25 per request), counting nothing (for `clear`)."""
        config = self._core.config
        users = self._encoded(keys, "delete_many")
        entries = {stored: requests.delete_request(config, stored) for stored in users}
        if entries:
            pairs = {stored: (key, None) for stored, key in users.items()}
            await self._write_many("delete_many", entries, pairs)

    def _incomplete_write(
        self,
        operation: str,
        what: str,
        verb: str,
        outcome: Outcome,
        user_of: dict[str, str],
        done: dict[str, Any],
    ) -> KVError:
        """A batch write's error: the plain one when nothing was applied, else who got what."""
        if outcome.fatal is not None and len(outcome.unprocessed) == len(user_of):
            return outcome.fatal  # nothing written: the plain error says it all
        left = set(outcome.unprocessed) | set(outcome.in_doubt)
        done = {user_of[pk]: value for pk, value in done.items() if pk not in left}
        error = BatchIncompleteError(
            f"{operation}: of {len(user_of)} {what}, {len(done)} done, "
            f"{len(outcome.unprocessed)} not {verb}, {len(outcome.in_doubt)} in doubt "
            "(see .done, .unprocessed, .in_doubt)",
            unprocessed=[user_of[pk] for pk in outcome.unprocessed],
            in_doubt=[user_of[pk] for pk in outcome.in_doubt],
            done=done,
            operation=operation,
            table=self._core.config.table,
        )
        error.__cause__ = outcome.error
        return error

    # -- listing (paginated Scans of this namespace) ------------------------------

    def keys(self, prefix: str | None = None) -> KeyListing:
        """The unexpired keys of this namespace, optionally starting with `prefix`.

        Use ``async for key in kv.keys()`` to stream them, or ``await kv.keys()`` for a
        list. On DynamoDB this is a paginated Scan of the whole table (every namespace),
        billed for all of it: for admin tools and tests, not request paths.

        Raises:
            TypeError: `prefix` is not a str.
        """
        if prefix is not None and not isinstance(prefix, str):
            raise TypeError(f"keys: prefix must be a str, not {type(prefix).__name__}")
        return KeyListing(self._scan(prefix or "", expired=False))

    async def items(self, prefix: str | None = None) -> AsyncIterator[StoredItem]:
        """Iterate the unexpired items of this namespace with values, expiry and version.

        A paginated Scan like `keys`, for exports and admin tools.

        Raises:
            CorruptItemError: An item cannot be read (the iteration stops there).
        """
        if prefix is not None and not isinstance(prefix, str):
            raise TypeError(f"items: prefix must be a str, not {type(prefix).__name__}")
        config, at = self.config, now()
        async for user, raw in self._pages("items", prefix or "", with_values=True, expired=False):
            try:
                if is_expired(raw, config, at):
                    continue
                stored = self._keys.prefix + user
                found = await self._decoded("items", raw, user, stored, self._again(stored, user))
                if found is None:  # deleted while it was listed
                    continue
                value, item = found
                yield StoredItem(
                    user, value, expiry_seconds(item, config), version_of(item, config)
                )
            except CorruptItemError as exc:
                raise self._corrupt("items", user, exc.reason or "") from None

    async def clear(self) -> int:
        """Delete every key of this namespace, expired ones not yet swept included.

        A full Scan plus batched deletes, so the table holds nothing of this namespace
        afterwards (DynamoDB's TTL sweeper may take days to remove expired items).

        Returns:
            How many items were deleted (expired ones included).
        """
        batch: list[str] = []
        count = 0
        async for key in self._scan("", expired=True):
            batch.append(key)
            if len(batch) >= _CLEAR_BATCH:
                await self._delete_batch(batch)
                count += len(batch)
                batch = []
        if batch:
            await self._delete_batch(batch)
            count += len(batch)
        return count

    async def _pages(
        self, operation: str, prefix: str, *, with_values: bool, expired: bool
    ) -> AsyncIterator[tuple[str, Item]]:
        """Scan pages of this namespace's (user key, item) pairs under `prefix`."""
        config = self._core.config
        start: dict[str, Any] | None = None
        while True:
            request = requests.scan_page(
                config,
                now=now(),
                prefix=self._keys.prefix + prefix,
                root=not self._keys.prefix,
                separator=SEPARATOR,
                with_values=with_values,
                expired=expired,
                start=start,
            )
            with self._core.operation(operation, "Scan") as op:
                response = await self._core.send(op, "Scan", request, None)
            for item in response.get("Items", ()):
                user = self._keys.decode(item[config.partition_key]["S"])
                if user is not None:
                    yield user, item
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    def _again(self, stored: str, user: str) -> Callable[[], Awaitable[Item | None]]:
        """Reads `user`'s item again (its own traced GetItem), for `_decoded` in `items`."""

        async def again() -> Item | None:
            with self._core.operation("items", "GetItem", user) as op:
                return await self._read_again(op, stored, user)

        return again

    async def _scan(self, prefix: str, *, expired: bool) -> AsyncIterator[str]:
        at = now()
        async for user, item in self._pages("keys", prefix, with_values=False, expired=expired):
            try:
                if expired or not is_expired(item, self.config, at):
                    yield user
            except CorruptItemError as exc:
                raise self._corrupt("keys", user, exc.reason or "") from None

    # -- coordination (aiodynkv._lock, _transaction, _counter) and typed views -----

    def lock(
        self,
        name: str,
        *,
        lease: float = 10.0,
        wait: float | None = None,
        renew_every: float | None = None,
        poll: float | None = None,
    ) -> Lock:
        """A lease on `name` with a fencing token: ``async with kv.lock("job") as held:``.

        See `Lock` for the arguments; nothing is sent until it is acquired.
        """
        from aiodynkv._lock import Lock

        return Lock(self, name, lease=lease, wait=wait, renew_every=renew_every, poll=poll)

    def transaction(self) -> Transaction:
        """All-or-nothing writes and checks: ``async with kv.transaction() as tx:``."""
        from aiodynkv._transaction import Transaction

        return Transaction(self)

    def counter(self, name: str, *, shards: int = 32) -> ShardedCounter:
        """A counter spread over `shards` items, for keys too hot for one partition."""
        from aiodynkv._counter import ShardedCounter

        return ShardedCounter(self, name, shards=shards)

    @overload
    def typed(self, type_: type[_M]) -> TypedView[_M]: ...
    @overload
    def typed(self, type_: Any) -> TypedView[Any]: ...
    def typed(self, type_: Any) -> TypedView[Any]:
        """A view storing values of `type_` as JSON, validated on read (the ``typed`` extra).

        `type_` is a pydantic model, a dataclass, or anything pydantic's ``TypeAdapter``
        accepts: ``users = kv.typed(User); await users.set("u1", User(name="ada"))``.
        """
        from aiodynkv._typed import TypedView

        return TypedView(self, type_)

    # -- steps the operations share -----------------------------------------------

    def _encode(self, key: object, operation: str) -> str:
        return self._keys.encode(key, operation, self._core.config.table)

    def _encoded(self, keys: Iterable[str], operation: str) -> dict[str, str]:
        """Stored key → user key, in order, duplicates once (validated before any request)."""
        return self._keys.encode_many(keys, operation, self._core.config.table)

    async def _read(
        self,
        op: Operation,
        key: str,
        stored: str,
        projection: tuple[str, ...] = (),
        *,
        consistent: bool = False,
    ) -> Item | None:
        """GetItem of one key: the item unless missing or expired."""
        config = self._core.config
        request = requests.get(
            config,
            stored,
            consistent=consistent or config.consistent_read,
            projection=projection,
        )
        response = await self._core.send(op, "GetItem", request, key)
        return self._live(op, response.get("Item"), key)

    def _live(self, op: Operation, item: Item | None, key: str) -> Item | None:
        """The item unless missing or expired; records the op's outcome."""
        try:
            expired = item is not None and is_expired(item, self.config, now())
        except CorruptItemError as exc:
            raise self._corrupt(op.name, key, exc.reason or str(exc)) from None
        op.outcome = "miss" if item is None or expired else "hit"
        return None if expired else item

    async def _read_value(
        self, op: Operation, key: str, stored: str, *, consistent: bool = False
    ) -> tuple[Value, Item] | None:
        """GetItem of one key: its value and the readable item; None if missing or expired."""
        item = await self._read(op, key, stored, consistent=consistent)
        if item is None:
            return None
        return await self._decoded(
            op.name, item, key, stored, lambda: self._read_again(op, stored, key)
        )

    async def _decoded(
        self,
        operation: str,
        item: Item,
        key: str,
        stored: str,
        reread: Callable[[], Awaitable[Item | None]],
    ) -> tuple[Value, Item] | None:
        """The item's value and the item it was read from; None if it is gone now.

        An encrypted or offloaded value is read by the pipeline, which calls `reread`
        when its S3 object is missing (`aiodynkv._values.Pipeline.open`).
        """
        pipeline = self._core.pipeline
        if not pipeline.needs_open(item):
            return self._value(item, key, operation), item
        return await pipeline.open(item, stored, key, operation, reread)

    async def _read_again(self, op: Operation, stored: str, key: str) -> Item | None:
        """The item read again, strongly consistent (None when missing or expired now).

        For a read whose offloaded object went missing: a writer may have replaced or
        deleted the item meanwhile (`aiodynkv._values.Pipeline.open`).
        """
        request = requests.get(self._core.config, stored, consistent=True)
        item: Item | None = (await self._core.send(op, "GetItem", request, key)).get("Item")
        try:
            expired = item is not None and is_expired(item, self.config, now())
        except CorruptItemError as exc:
            raise self._corrupt(op.name, key, exc.reason or str(exc)) from None
        return None if expired else item

    def _value(self, item: Item, key: str, operation: str) -> Value:
        try:
            return decode_value(item, self.config)
        except CorruptItemError as exc:
            raise self._corrupt(operation, key, exc.reason or str(exc)) from None

    def _counter(self, item: Item, key: str) -> int:
        value = self._value(item, key, "incr")
        if not isinstance(value, int):
            raise self._corrupt("incr", key, "the value is not a counter")
        return value

    async def _own_retry(
        self, op: Operation, exc: ConditionFailedError, stored: str, key: str, token: str
    ) -> None:
        """Return if the failed condition met the call's own earlier write; else in doubt."""
        if not written_by(await self._core.old_item(op, exc, stored, key), token):
            raise self._core.in_doubt(op, exc, key, why=_NOT_MINE) from exc.__cause__

    async def _conflict_from(
        self, op: Operation, exc: ConditionFailedError, stored: str, key: str, token: str
    ) -> KVError | None:
        """None if the call's own earlier attempt applied; else the version conflict.

        After an attempt that may have been applied, an item that is not the call's own
        cannot tell whether that attempt was applied (and overwritten since) or not:
        that is a `WriteInDoubtError`, not a conflict.
        """
        old = await self._core.old_item(op, exc, stored, key)
        if token and written_by(old, token):
            return None
        if in_doubt(exc):
            return self._core.in_doubt(op, exc, key, why=_NOT_MINE)
        live = self._live(op, old, key)
        current = None if live is None else version_of(live, self.config)
        return self._conflict(key, op.name, current, exc.reason)

    # -- the store's errors ---------------------------------------------------------

    def _error(
        self, cls: type[_E], message: str, operation: str, key: str | None, **fields: Any
    ) -> _E:
        """An error of this store's table; its message names the table, never the key."""
        error = cls(
            f"{operation}: {message}",
            operation=operation,
            table=self.config.table,
            key=key,
            **fields,
        )
        return self._shown(error)

    def _shown(self, error: _E) -> _E:
        """`error`, its key shown in ``str(error)`` only with ``expose_keys``."""
        error.show_key = self.config.expose_keys
        return error

    def _not_found(self, key: str, operation: str) -> KeyNotFoundError:
        table = self.config.table
        return self._error(KeyNotFoundError, f"key not found in table {table!r}", operation, key)

    def _conflict(
        self, key: str, operation: str, current: int | None, reason: str | None
    ) -> ConditionFailedError:
        return self._error(
            ConditionFailedError,
            f"version condition failed in table {self.config.table!r} (current version: {current})",
            operation,
            key,
            current_version=current,
            reason=reason or "ConditionalCheckFailedException: The conditional request failed",
        )

    def _wrong_type(self, key: str, reason: str | None) -> WrongTypeError:
        return self._error(WrongTypeError, "the value is not a counter", "incr", key, reason=reason)

    def _corrupt_many(
        self, found: dict[str, Value], corrupt: dict[str, str], total: int
    ) -> CorruptItemError:
        """`get_many`'s error when some items cannot be read: the good values stay in ``done``."""
        return self._error(
            CorruptItemError,
            f"{len(corrupt)} of {total} items in table {self.config.table!r} "
            "cannot be read (see .corrupt; .done holds the values read fine)",
            "get_many",
            next(iter(corrupt)),
            done=found,
            corrupt=corrupt,
            reason="corrupt items",
        )

    def _corrupt(self, operation: str, key: str, what: str) -> CorruptItemError:
        return self._error(
            CorruptItemError,
            f"the item in table {self.config.table!r} cannot be read: {what}",
            operation,
            key,
            reason=what,
        )


def _plain_puts(
    keys: KeyCodec, items: dict[Any, Any], config: KVConfig, room: int
) -> tuple[dict[str, AttributeValue], dict[str, Any]] | None:
    """`set_many`'s values and (user key, value) pairs by stored key, for a common batch.

    The common batch: valid ASCII str keys (`KeyCodec.plain_many`) and ASCII str values
    that need no compression and surely fit in an item (the largest value with the
    longest key, as `check_fits` counts them), all checked with a few passes in C.
    Any other batch gives None: it is checked pair by pair, with the errors that
    `encode`, `encoded_value` and `check_fits` raise for the first bad pair.
    """
    texts = list(items.values())
    if set(map(type, texts)) != {str}:
        return None
    stored = keys.plain_many(list(items))
    if stored is None:
        return None
    threshold, largest = config.compress_threshold, config.max_value_bytes
    bound = largest if threshold is None or threshold > largest else threshold
    longest = max(map(len, texts))
    if longest > bound or 4 * max(map(len, stored)) + longest > room:
        return None
    if not "".join(texts).isascii():
        return None
    return {pk: {"S": text} for pk, text in zip(stored, texts, strict=True)}, dict(
        zip(stored, items.items(), strict=True)
    )


class _Puts(Mapping[str, dict[str, Any]]):
    """The PutRequests of `set_many`: each item made, with a fresh version, when read.

    The values were encoded and checked (`check_fits`) before; `aiodynkv._batch.write_items`
    reads each entry once, as its chunk is first sent, so only the chunks in flight
    are held as items. `texts` gives the same entries as JSON texts instead.
    """

    __slots__ = ("_config", "_expires_ms", "_records", "_token", "_values", "_versions")

    def __init__(
        self,
        config: KVConfig,
        values: dict[str, AttributeValue],
        records: dict[str, str],
        expires_ms: int | None,
        token: str,
    ) -> None:
        self._config = config
        self._values = values
        self._records = records
        self._expires_ms = expires_ms
        self._token = token
        self._versions = new_versions()

    def __getitem__(self, stored: str) -> dict[str, Any]:
        record = self._records.get(stored) if self._records else None
        item = assemble_item(
            self._config,
            stored,
            self._values[stored],
            record,
            self._expires_ms,
            next(self._versions),
            self._token,
        )
        return {"PutRequest": {"Item": item}}

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def texts(self) -> Callable[[list[str]], list[tuple[str, str]]]:
        """Makes the same PutRequests of a chunk's stored keys as (stored key, JSON text)."""
        render = requests.PutTexts(self._config, self._token, self._expires_ms).render_many
        values, records, versions = self._values, self._records, self._versions

        def chunk(stored: list[str]) -> list[tuple[str, str]]:
            return list(zip(stored, render(stored, values, records, versions), strict=True))

        return chunk
