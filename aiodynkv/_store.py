"""`AsyncDynamoKV`: the store's public operations, each validate → build → send → decode.

Validation lives in ``_args``/``_keys``/``_codec``, request building in
``_requests``, lifecycle and sending in ``_core``, batches in ``_batch``, read
coalescing in ``_coalesce``; a method here strings them together.

Exactly-once writes: every write carries a fresh token stored on the item, and
asks for the old item when its condition fails. When the transport retried a
request whose reply was lost and the retry meets the call's own earlier write,
the token says so, and the call reports what its write did (True, the counter's
value), without a second write and without an extra read where the server returns
the old item (DynamoDB, moto; dynalite does not, so one consistent read is made).
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from aiodynkv import _requests as requests
from aiodynkv import _table
from aiodynkv._args import (
    check_conditions,
    check_delta,
    check_version,
    key_list,
    pair_of,
    ttl_seconds,
)
from aiodynkv._base import BaseStore, StoredItem
from aiodynkv._batch import Outcome, in_doubt, read_items, write_items
from aiodynkv._cache import fill_many, read_many_through, read_through, writing
from aiodynkv._codec import (
    TOKEN,
    Item,
    build_item,
    decode_many,
    decode_value,
    expiry_ms_of,
    expiry_seconds,
    is_expired,
    new_token,
    new_version,
    now,
    remaining_seconds,
    version_of,
)
from aiodynkv._config import KVConfig
from aiodynkv._core import Core, State
from aiodynkv._errors import (
    BatchIncompleteError,
    ConditionFailedError,
    CorruptItemError,
    InsecureEndpointWarning,
    KVError,
    KVValidationError,
)
from aiodynkv._keys import SEPARATOR, KeyCodec
from aiodynkv._pipeline import BatchWrites, read_old_items
from aiodynkv._protocol import TTL, Health, Value

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from aiodynkv._telemetry import Operation

__all__ = ["AsyncDynamoKV"]

_INCR_RESETS = 5


def _mine(item: Item | None, token: str) -> bool:
    """True if `item` was last written by the call holding `token`."""
    return item is not None and item.get(TOKEN) == {"S": token}


class AsyncDynamoKV(BaseStore):
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

    __slots__ = ()

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
        self._core = Core(config, client)
        self._keys = KeyCodec(config.namespace)
        self._view = False

    @classmethod
    def from_env(cls, *, client: Any | None = None, **overrides: Any) -> AsyncDynamoKV:
        """A store configured from ``AIODYNKV_*`` variables (see `KVConfig.from_env`)."""
        return cls(KVConfig.from_env(**overrides), client=client)

    @property
    def client(self) -> DynamoDBClient | Any:
        """The underlying aiobotocore client (None until opened)."""
        return self._core.client

    @property
    def is_open(self) -> bool:
        """True between a successful `open` and `aclose`."""
        return bool(self._core.state is State.OPEN)

    def __repr__(self) -> str:
        ns = f", namespace={self._keys.namespace!r}" if self._keys.namespace else ""
        return (
            f"<AsyncDynamoKV table={self.config.table!r}{ns} "
            f"transport={self.config.transport} {self._core.state.value}>"
        )

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> AsyncDynamoKV:
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

    async def ensure_table(self) -> None:
        """Create the table if missing (on-demand billing), wait for ACTIVE, enable TTL.

        Safe to call twice and from several processes at once.
        """
        core = self._core
        core.admit("ensure_table")
        try:
            await _table.ensure_table(core.raw_send, core.config, core.tel)
        finally:
            core.release()

    async def health(self) -> Health:
        """DescribeTable: UP when the table is ACTIVE. Never raises for server trouble."""
        core = self._core
        send = core.raw_send if core.state is State.OPEN else None
        return await _table.probe_health(send, core.config, core.tel)

    # -- reads -------------------------------------------------------------------

    def _encode(self, key: object, operation: str) -> str:
        return self._keys.encode(key, operation, self._core.config.table)

    def _live(self, op: Operation, item: Item | None, key: str) -> Item | None:
        """The item unless missing or expired; records the op's outcome."""
        try:
            expired = item is not None and is_expired(item, self.config, now())
        except CorruptItemError as exc:
            raise self._corrupt(op.name, key, exc.reason or str(exc)) from None
        op.outcome = "miss" if item is None or expired else "hit"
        return None if expired else item

    def _value(self, item: Item, key: str, operation: str) -> Value:
        try:
            return decode_value(item, self.config)
        except CorruptItemError as exc:
            raise self._corrupt(operation, key, exc.reason or str(exc)) from None

    async def _read(
        self,
        op: Operation,
        key: str,
        stored: str,
        projection: tuple[str, ...] = (),
        *,
        consistent: bool = False,
    ) -> Item | None:
        config = self._core.config
        request = requests.get(
            config,
            stored,
            consistent=consistent or config.consistent_read,
            projection=projection,
        )
        response = await self._core.send(op, "GetItem", request, key)
        return self._live(op, response.get("Item"), key)

    async def _opened(self, item: Item, stored: str, key: str, operation: str) -> Item:
        """The item with an encrypted or offloaded value made readable (`aiodynkv._pipeline`)."""
        pipeline = self._core.pipeline
        if not pipeline.needs_open(item):
            return item
        opened: Item = await pipeline.open(item, stored, key, operation)
        return opened

    async def _get(self, key: str, consistent: bool = False) -> Value | None:
        core = self._core
        stored = self._encode(key, "get")
        with core.operation("get", "GetItem", key) as op:

            async def fetch() -> tuple[Value | None, float | None]:
                if core.coalescer is not None and (core.config.consistent_read or not consistent):
                    item = self._live(op, await core.coalescer.get(stored, key, op), key)
                else:
                    item = await self._read(op, key, stored, consistent=consistent)
                if item is None:
                    return None, None
                item = await self._opened(item, stored, key, "get")
                return self._value(item, key, "get"), expiry_seconds(item, core.config)

            return await read_through(core.cache, op, stored, consistent, fetch)

    async def get_with_version(self, key: str) -> tuple[Value, int]:
        """Return the value at `key` and its version, for `set(..., if_version=)`.

        Raises:
            KeyNotFoundError: The key is missing or expired.
            CorruptItemError: The item cannot be read.
        """
        stored = self._encode(key, "get_with_version")
        with self._core.operation("get_with_version", "GetItem", key) as op:
            item = await self._read(op, key, stored)
            if item is None:
                raise self._not_found(key, "get_with_version")
            item = await self._opened(item, stored, key, "get_with_version")
            value = self._value(item, key, "get_with_version")
            try:
                return value, version_of(item, self.config)
            except CorruptItemError as exc:
                raise self._corrupt("get_with_version", key, exc.reason or "") from None

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

    # -- writes ------------------------------------------------------------------

    async def _old_item(
        self, op: Operation, exc: ConditionFailedError, stored: str, key: str
    ) -> Item | None:
        """The item a failed condition met: returned by the server, else read (consistent)."""
        item: Item | None = getattr(exc.__cause__, "item", None)
        if item is None:
            request = requests.get(self._core.config, stored, consistent=True)
            item = (await self._core.send(op, "GetItem", request, key)).get("Item")
        return item

    async def _conflict_from(
        self, op: Operation, exc: ConditionFailedError, stored: str, key: str, token: str
    ) -> ConditionFailedError | None:
        """None if the call's own earlier attempt applied; else the version conflict."""
        old = await self._old_item(op, exc, stored, key)
        if token and _mine(old, token):
            return None
        live = self._live(op, old, key)
        if live is None and in_doubt(exc) and op.name == "delete":
            return None  # our earlier attempt deleted it
        current = None if live is None else version_of(live, self.config)
        return self._conflict(key, op.name, current, exc.reason)

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
        check_conditions(if_absent, if_version, "set")
        seconds = ttl_seconds(ttl, "set")
        at, token, base = now(), new_token(), new_version()
        expires_ms = expiry_ms_of(seconds, at)
        sized = not pipeline.writes  # else the pipeline checks the size after sealing
        item = build_item(
            config, stored, value, expires_ms, base, token, "set", key, check_size=sized
        )
        with (
            core.operation("set", "UpdateItem", key) as op,
            writing(core.cache, stored) as cache,
        ):
            if pipeline.writes:
                item = await pipeline.seal(item, stored, key, "set")
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
            try:
                written, old = await self._send_put(
                    op, request, stored, key, token, if_absent, if_version
                )
            except ConditionFailedError:
                await pipeline.discard([pipeline.pointer_of(item)], "set")
                raise
            if not written:
                await pipeline.discard([pipeline.pointer_of(item)], "set")
                return False
            if pipeline.pointer_of(old) != pipeline.pointer_of(item):
                await pipeline.discard([pipeline.pointer_of(old)], "set")
            cache.done(stored, value, None if expires_ms is None else expires_ms / 1000.0)
            return True

    async def _send_put(
        self,
        op: Operation,
        request: dict[str, Any],
        stored: str,
        key: str,
        token: str,
        if_absent: bool,
        if_version: int | None,
    ) -> tuple[bool, Item | None]:
        """Send a `set`: whether it was written, and the old item when the server returned it."""
        try:
            response = await self._core.send(op, "UpdateItem", request, key)
        except ConditionFailedError as exc:
            if if_version is not None:
                conflict = await self._conflict_from(op, exc, stored, key, token)
                if conflict is not None:
                    raise conflict from exc.__cause__
            elif if_absent:
                if in_doubt(exc) and _mine(await self._old_item(op, exc, stored, key), token):
                    return True, None
                op.outcome = "condition_failed"
                return False, None
            # Unconditional: only our own earlier attempt can fail NOT_MINE.
            return True, None
        return True, response.get("Attributes")

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
        request = requests.delete(core.config, stored, now=now(), if_version=if_version)
        with (
            core.operation("delete", "DeleteItem", key) as op,
            writing(core.cache, stored) as cache,
        ):
            try:
                response = await core.send(op, "DeleteItem", request, key)
            except ConditionFailedError as exc:
                conflict = await self._conflict_from(op, exc, stored, key, "")
                if conflict is not None:
                    raise conflict from exc.__cause__
                cache.done(stored, None)
                return True
            cache.done(stored, None)
            old = response.get("Attributes")
            await core.pipeline.discard([core.pipeline.pointer_of(old)], "delete")
            return self._live(op, old, key) is not None

    async def _update_existing(self, key: str, operation: str, seconds: float | None) -> bool:
        """Give a present, unexpired key a new expiry (or none); False when absent."""
        config = self._core.config
        stored = self._encode(key, operation)
        at, token = now(), new_token()
        request = requests.update_existing(
            config, stored, expiry_ms_of(seconds, at), now=at, token=token, base=new_version()
        )
        with (
            self._core.operation(operation, "UpdateItem", key) as op,
            writing(self._core.cache, stored),
        ):
            try:
                await self._core.send(op, "UpdateItem", request, key)
            except ConditionFailedError as exc:
                if in_doubt(exc) and _mine(await self._old_item(op, exc, stored, key), token):
                    return True
                op.outcome = "miss"
                return False
            return True

    async def expire(self, key: str, ttl: TTL) -> bool:
        """Give an existing key a new expiry; False if it is missing or expired."""
        return await self._update_existing(key, "expire", ttl_seconds(ttl, "expire", required=True))

    async def persist(self, key: str) -> bool:
        """Remove the expiry of an existing key; False if it is missing or expired."""
        return await self._update_existing(key, "persist", None)

    def _counter(self, item: Item, key: str) -> int:
        value = self._value(item, key, "incr")
        if not isinstance(value, int):
            raise self._corrupt("incr", key, "the value is not a counter")
        return value

    async def incr(self, key: str, delta: int = 1, *, ttl: TTL | None = None) -> int:
        """Atomically add `delta` to the counter at `key` and return the new value.

        A missing or expired key starts from 0. Without `ttl` an existing expiry is
        kept. One UpdateItem (two when restarting an expired counter). A retried
        request never adds twice.

        Raises:
            WrongTypeError: The stored value is not a counter; nothing is changed.
            TypeError: `delta` is not an int.
        """
        config = self._core.config
        stored = self._encode(key, "incr")
        check_delta(delta, "incr")
        seconds = ttl_seconds(ttl, "incr")
        with (
            self._core.operation("incr", "UpdateItem", key) as op,
            writing(self._core.cache, stored),
        ):
            for _ in range(_INCR_RESETS):
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
                        old = await self._old_item(op, exc, stored, key)
                        if _mine(old, token):
                            return self._counter(old or {}, key)
                except KVValidationError as exc:
                    raise self._wrong_type(key, exc.reason) from exc.__cause__
                try:
                    request = requests.incr_restart(
                        config, stored, delta, expires_ms, now=at, token=token, base=base
                    )
                    await self._core.send(op, "UpdateItem", request, key)
                except ConditionFailedError as exc:  # restarted by another, or by us
                    old = await self._old_item(op, exc, stored, key) if in_doubt(exc) else None
                    if _mine(old, token):
                        return self._counter(old or {}, key)
                    continue
                return delta
            raise KVError(  # pragma: no cover - needs five lost races in a row
                "incr: the key kept expiring under contention",
                operation="incr",
                table=config.table,
                key=key,
            )

    async def set_counter(self, key: str, number: int, *, ttl: TTL | None = None) -> None:
        """Make `key` a counter holding `number`, in one atomic write (for imports, resets).

        Raises:
            TypeError: `number` is not an int.
        """
        config = self._core.config
        stored = self._encode(key, "set_counter")
        check_delta(number, "set_counter", "number")
        seconds = ttl_seconds(ttl, "set_counter")
        at, token = now(), new_token()
        request = requests.set_counter(
            config,
            stored,
            number,
            expiry_ms_of(seconds, at),
            now=at,
            token=token,
            base=new_version(),
        )
        # Only the call's own earlier attempt can fail NOT_MINE: that is success.
        with (
            self._core.operation("set_counter", "UpdateItem", key) as op,
            writing(self._core.cache, stored),
            contextlib.suppress(ConditionFailedError),
        ):
            await self._core.send(op, "UpdateItem", request, key)

    # -- batches -----------------------------------------------------------------

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
        wanted = {self._encode(key, "get_many"): key for key in key_list(keys, "get_many")}
        if not wanted:
            return {}
        with core.operation("get_many", "BatchGetItem", batch_size=len(wanted)) as op:
            held, ask, ticket = read_many_through(core.cache, op, wanted, consistent)
            items, outcome = (
                await read_items(core, op, ask, consistent=consistent) if ask else ({}, Outcome())
            )
            nothing = not (items or held) and len(outcome.unprocessed) == len(ask)
            if outcome.fatal is not None and nothing:
                raise outcome.fatal  # nothing read at all: the plain error says it all
            items, unreadable = await core.pipeline.open_many(items, wanted, "get_many")
            found, corrupt = decode_many(
                ((wanted[pk], i) for pk, i in items.items()), config, now()
            )
            corrupt.update(unreadable)
            fill_many(
                core.cache, ticket, ask, outcome.unprocessed, wanted, items, found, corrupt, config
            )
            found.update({wanted[pk]: value for pk, value in held.items() if value is not None})
            if not outcome.complete:
                missing = [wanted[pk] for pk in outcome.unprocessed]
                raise BatchIncompleteError(
                    f"get_many: {len(missing)} of {len(wanted)} keys still unprocessed after "
                    f"{config.batch_deadline} s (batch_deadline)",
                    unprocessed=missing,
                    done=found,
                    operation="get_many",
                    table=config.table,
                ) from outcome.error
            if corrupt:
                raise self._corrupt_many(found, corrupt, len(wanted))
            op.outcome = "hit" if found else "miss"
        return found

    async def _write_many(
        self,
        operation: str,
        entries: dict[str, dict[str, Any]],
        users: dict[str, Any],
        expires_at: float | None = None,
    ) -> None:
        """BatchWriteItem in chunks of 25; `users` maps stored keys to (user key, value)."""
        core = self._core
        config = core.config
        with (
            core.operation(operation, "BatchWriteItem", batch_size=len(entries)) as op,
            writing(core.cache, *entries) as cache,
        ):
            hooks = BatchWrites(
                core.pipeline,
                cache,
                operation,
                users,
                expires_at,
                functools.partial(read_old_items, core),
            )
            await hooks.before(op, entries)
            outcome = await write_items(core, op, list(entries.values()))
            await hooks.after(entries, outcome.unprocessed, outcome.in_doubt)
            if outcome.complete:
                return
            unprocessed = [users[pk][0] for pk in outcome.unprocessed]
            doubtful = [users[pk][0] for pk in outcome.in_doubt]
            left = set(outcome.unprocessed) | set(outcome.in_doubt)
            if outcome.fatal is not None and len(outcome.unprocessed) == len(entries):
                raise outcome.fatal  # nothing written: the plain error says it all
            done = {user: value for pk, (user, value) in users.items() if pk not in left}
            raise BatchIncompleteError(
                f"{operation}: of {len(entries)} items, {len(done)} done, {len(unprocessed)} "
                f"not written, {len(doubtful)} in doubt (see .done, .unprocessed, .in_doubt)",
                unprocessed=unprocessed,
                in_doubt=doubtful,
                done=done,
                operation=operation,
                table=config.table,
            ) from outcome.error

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
        pairs = items.items() if isinstance(items, Mapping) else items
        entries: dict[str, dict[str, Any]] = {}
        users: dict[str, Any] = {}
        for pair in pairs:
            key, value = pair_of(pair)
            stored = self._encode(key, "set_many")
            item = build_item(
                config,
                stored,
                value,
                expires_ms,
                new_version(),
                token,
                "set_many",
                key,
                check_size=not self._core.pipeline.writes,
            )
            entries[stored] = requests.put_request(item)
            users[stored] = (key, value)
        if entries:
            expires_at = None if expires_ms is None else expires_ms / 1000.0
            await self._write_many("set_many", entries, users, expires_at)

    async def delete_many(self, keys: Iterable[str]) -> None:
        """Delete many keys (BatchWriteItem, 25 per request); missing keys are fine.

        Raises:
            BatchIncompleteError: The batch did not finish (see `set_many`).
        """
        config = self._core.config
        entries: dict[str, dict[str, Any]] = {}
        users: dict[str, Any] = {}
        for key in key_list(keys, "delete_many"):
            stored = self._encode(key, "delete_many")
            entries[stored] = requests.delete_request(config, stored)
            users[stored] = (key, None)
        if entries:
            await self._write_many("delete_many", entries, users)

    # -- listing -----------------------------------------------------------------

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

    async def _scan(self, prefix: str, *, expired: bool) -> AsyncIterator[str]:
        at = now()
        async for user, item in self._pages("keys", prefix, with_values=False, expired=expired):
            if expired or not self._is_expired(item, user, at):
                yield user

    def _is_expired(self, item: Item, key: str, at: float) -> bool:
        try:
            return is_expired(item, self.config, at)
        except CorruptItemError as exc:
            raise self._corrupt("keys", key, exc.reason or "") from None

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
                item = await self._opened(raw, self._keys.prefix + user, user, "items")
                yield StoredItem(
                    user,
                    decode_value(item, config),
                    expiry_seconds(item, config),
                    version_of(item, config),
                )
            except CorruptItemError as exc:
                raise self._corrupt("items", user, exc.reason or "") from None
