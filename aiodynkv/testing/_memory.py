"""`InMemoryKV`: the `KVStore` protocol in a dict, with the same semantics as `AsyncDynamoKV`.

Items are kept in DynamoDB's attribute form and go through the same codec,
key rules, argument checks, size checks, expiry and version rules and errors as
the real store (most of it inherited from the same base), so a unit test that
passes here behaves the same against DynamoDB. The contract suite in
``tests/integration/test_contract.py`` runs on both to prove it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiodynkv._args import (
    check_conditions,
    check_delta,
    check_version,
    key_list,
    pair_of,
    ttl_seconds,
)
from aiodynkv._base import BaseStore, StoredItem
from aiodynkv._cache import NearCache, fill_many, read_many_through, read_through, writing
from aiodynkv._codec import (
    EXPIRY_MS,
    MAX_COUNTER,
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
from aiodynkv._core import State
from aiodynkv._crypto import MemoryKms
from aiodynkv._errors import CorruptItemError, KVValidationError, StoreClosedError
from aiodynkv._keys import KeyCodec
from aiodynkv._offload import MemoryBlobs
from aiodynkv._pipeline import BatchWrites, Pipeline
from aiodynkv._protocol import TTL, Health, Value

__all__ = ["InMemoryKV"]


class _MemoryCore:
    """What an in-memory store and its views share: config, state, the items."""

    __slots__ = ("blobs", "cache", "config", "items", "pipeline", "state")

    def __init__(self, config: KVConfig) -> None:
        self.config = config
        self.items: dict[str, Item] = {}
        self.state = State.UNOPENED
        # Near cache, S3 double (objects in a dict) and the value pipeline (issue 15).
        self.cache = NearCache.from_config(config)
        self.blobs = MemoryBlobs()
        self.pipeline = Pipeline(config, self.blobs, MemoryKms())


class InMemoryKV(BaseStore):
    """An in-memory `KVStore` for unit tests, with `AsyncDynamoKV`'s exact semantics.

    Like the real store it must be opened (``async with InMemoryKV() as kv``) and
    raises `StoreClosedError` otherwise.

    Args:
        config: A `KVConfig`; defaults to ``table="memory"``.
        **fields: `KVConfig` fields, on top of `config`.
    """

    __slots__ = ()

    def __init__(self, config: KVConfig | None = None, /, **fields: Any) -> None:
        config = self._merge(config, {"table": "memory"}, fields)
        self._core = _MemoryCore(config)
        self._keys = KeyCodec(config.namespace)
        self._view = False

    @property
    def is_open(self) -> bool:
        """True between `open` and `aclose`."""
        return bool(self._core.state is State.OPEN)

    def __repr__(self) -> str:
        return f"<InMemoryKV table={self.config.table!r} items={len(self._core.items)}>"

    async def open(self) -> InMemoryKV:
        """Open the store (once).

        A namespace view does not open anything: it checks its parent is open.

        Raises:
            StoreClosedError: It was opened or closed before (for a view: its
                parent is not open).
        """
        if self._view:
            self._check("open")
            return self
        if self._core.state is not State.UNOPENED:
            raise StoreClosedError(
                f"open: the store for table {self.config.table!r} was already "
                f"{'opened' if self._core.state is State.OPEN else 'closed'}; create a new one",
                operation="open",
                table=self.config.table,
            )
        self._core.state = State.OPEN
        return self

    async def aclose(self) -> None:
        """Close the store (a view: nothing). Idempotent; `dump` still reads the data."""
        if not self._view:
            self._core.state = State.CLOSED

    async def ensure_table(self) -> None:
        """Nothing to create in memory."""
        self._check("ensure_table")

    async def health(self) -> Health:
        """UP while open, DOWN otherwise."""
        up = self.is_open
        details: dict[str, Any] = {
            "table": self.config.table,
            "region": "memory",
            "table_status": "ACTIVE" if up else None,
            "latency_ms": 0.0,
        }
        if up:
            details["item_count"] = len(self._core.items)
        else:
            details["error"] = "StoreClosedError"
            details["message"] = "health: the store is not open"
        return Health("UP" if up else "DOWN", details)

    def dump(self) -> dict[str, Value]:
        """Every unexpired item of this namespace, for assertions in tests."""
        at = now()
        out: dict[str, Value] = {}
        for stored, item in self._core.items.items():
            user = self._keys.decode(stored)
            if user is not None and not is_expired(item, self.config, at):
                out[user] = decode_value(item, self.config)
        return out

    # -- helpers -----------------------------------------------------------------

    def _check(self, operation: str) -> None:
        state = self._core.state
        if state is not State.OPEN:
            hint = (
                "use `async with InMemoryKV()` or `await kv.open()`"
                if state is State.UNOPENED
                else "create a new store"
            )
            raise StoreClosedError(
                f"{operation}: the store is {state.value}; {hint}",
                operation=operation,
                table=self.config.table,
            )

    def _stored(self, key: object, operation: str) -> str:
        stored = self._keys.encode(key, operation, self.config.table)
        self._check(operation)
        return stored

    def _live(self, stored: str, key: str, operation: str) -> Item | None:
        item = self._core.items.get(stored)
        try:
            if item is None or is_expired(item, self.config, now()):
                return None
        except CorruptItemError as exc:
            raise self._corrupt(operation, key, exc.reason or "") from None
        live: Item = item
        return live

    def _version(self, item: Item | None, key: str, operation: str) -> int | None:
        if item is None:
            return None
        try:
            return version_of(item, self.config)
        except CorruptItemError as exc:
            raise self._corrupt(operation, key, exc.reason or "") from None

    def _next_version(self, stored: str, key: str, operation: str) -> int:
        current = self._version(self._core.items.get(stored), key, operation)
        return new_version() if current is None else current + 1

    def _value(self, item: Item, key: str, operation: str) -> Value:
        try:
            return decode_value(item, self.config)
        except CorruptItemError as exc:
            raise self._corrupt(operation, key, exc.reason or "") from None

    def _invalidate(self, stored: str) -> None:
        """Drop `stored` from the near cache (called where nothing awaits until the write)."""
        if self._core.cache is not None:
            self._core.cache.invalidate(stored)

    def _expire_parts(self, item: Item, expires_ms: int | None) -> None:
        ttl_attribute = self.config.ttl_attribute
        if expires_ms is None:
            item.pop(ttl_attribute, None)
            item.pop(EXPIRY_MS, None)
        else:
            item[ttl_attribute] = {"N": str(-(-expires_ms // 1000))}
            item[EXPIRY_MS] = {"N": str(expires_ms)}

    # -- reads -------------------------------------------------------------------

    async def _opened(self, item: Item, stored: str, key: str, operation: str) -> Item:
        """The item with an encrypted or offloaded value made readable (`aiodynkv._pipeline`)."""
        pipeline = self._core.pipeline
        if not pipeline.needs_open(item):
            return item
        opened: Item = await pipeline.open(item, stored, key, operation)
        return opened

    async def _get(self, key: str, consistent: bool = False) -> Value | None:
        stored = self._stored(key, "get")

        async def fetch() -> tuple[Value | None, float | None]:
            item = self._live(stored, key, "get")
            await asyncio.sleep(0)
            if item is None:
                return None, None
            item = await self._opened(item, stored, key, "get")
            return self._value(item, key, "get"), expiry_seconds(item, self.config)

        return await read_through(self._core.cache, None, stored, consistent, fetch)

    async def get_with_version(self, key: str) -> tuple[Value, int]:
        """See `AsyncDynamoKV.get_with_version`."""
        stored = self._stored(key, "get_with_version")
        item = self._live(stored, key, "get_with_version")
        await asyncio.sleep(0)
        if item is None:
            raise self._not_found(key, "get_with_version")
        opened = await self._opened(item, stored, key, "get_with_version")
        value = self._value(opened, key, "get_with_version")
        return value, self._version(item, key, "get_with_version") or 0

    async def exists(self, key: str) -> bool:
        """See `AsyncDynamoKV.exists`."""
        item = self._live(self._stored(key, "exists"), key, "exists")
        await asyncio.sleep(0)
        return item is not None

    async def ttl(self, key: str) -> float | None:
        """See `AsyncDynamoKV.ttl`."""
        item = self._live(self._stored(key, "ttl"), key, "ttl")
        await asyncio.sleep(0)
        if item is None:
            raise self._not_found(key, "ttl")
        return remaining_seconds(item, self.config, now())

    # -- writes ------------------------------------------------------------------

    async def set(
        self,
        key: str,
        value: str | bytes,
        *,
        ttl: TTL | None = None,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> bool:
        """See `AsyncDynamoKV.set`."""
        stored = self._keys.encode(key, "set", self.config.table)
        check_conditions(if_absent, if_version, "set")
        seconds = ttl_seconds(ttl, "set")
        at = now()
        expires_ms = expiry_ms_of(seconds, at)
        pipeline = self._core.pipeline
        item = build_item(
            self.config,
            stored,
            value,
            expires_ms,
            0,
            new_token(),
            "set",
            key,
            check_size=not pipeline.writes,
        )
        self._check("set")
        with writing(self._core.cache, stored) as cache:
            if pipeline.writes:
                item = await pipeline.seal(item, stored, key, "set")
            await asyncio.sleep(0)
            live = self._live(stored, key, "set")
            mismatch = if_version is not None and self._version(live, key, "set") != if_version
            if (if_absent and live is not None) or mismatch:
                await pipeline.discard([pipeline.pointer_of(item)], "set")
                if not mismatch:
                    return False
                raise self._conflict(key, "set", self._version(live, key, "set"), None)
            item[self.config.version_attribute] = {"N": str(self._next_version(stored, key, "set"))}
            old = self._core.items.get(stored)
            self._core.items[stored] = item
            await pipeline.discard([pipeline.pointer_of(old)], "set")
            cache.done(stored, value, None if expires_ms is None else expires_ms / 1000.0)
            return True

    async def delete(self, key: str, *, if_version: int | None = None) -> bool:
        """See `AsyncDynamoKV.delete`."""
        stored = self._stored(key, "delete")
        if if_version is not None:
            check_version(if_version, "delete")
        with writing(self._core.cache, stored) as cache:
            await asyncio.sleep(0)
            live = self._live(stored, key, "delete")
            if if_version is not None:
                current = self._version(live, key, "delete")
                if current != if_version:
                    raise self._conflict(key, "delete", current, None)
            old = self._core.items.pop(stored, None)
            cache.done(stored, None)
            await self._core.pipeline.discard([self._core.pipeline.pointer_of(old)], "delete")
            return live is not None

    async def _update_existing(self, key: str, operation: str, seconds: float | None) -> bool:
        stored = self._stored(key, operation)
        await asyncio.sleep(0)
        self._invalidate(stored)
        live = self._live(stored, key, operation)
        if live is None:
            return False
        self._expire_parts(live, expiry_ms_of(seconds, now()))
        live[self.config.version_attribute] = {"N": str(self._next_version(stored, key, operation))}
        return True

    async def expire(self, key: str, ttl: TTL) -> bool:
        """See `AsyncDynamoKV.expire`."""
        return await self._update_existing(key, "expire", ttl_seconds(ttl, "expire", required=True))

    async def persist(self, key: str) -> bool:
        """See `AsyncDynamoKV.persist`."""
        return await self._update_existing(key, "persist", None)

    async def incr(self, key: str, delta: int = 1, *, ttl: TTL | None = None) -> int:
        """See `AsyncDynamoKV.incr`."""
        stored = self._stored(key, "incr")
        check_delta(delta, "incr")
        seconds = ttl_seconds(ttl, "incr")
        await asyncio.sleep(0)
        self._invalidate(stored)
        config = self.config
        live = self._live(stored, key, "incr")
        if live is None:
            total = delta
            item: Item = {config.partition_key: {"S": stored}}
        else:
            current = live.get(config.value_attribute)
            if not isinstance(current, dict) or "N" not in current:
                raise self._wrong_type(
                    key,
                    "ValidationException: An operand in the update expression has an "
                    "incorrect data type",
                )
            number = self._value(live, key, "incr")
            if not isinstance(number, int):  # pragma: no cover - decode_value gives int for N
                raise self._corrupt("incr", key, "the value is not a counter")
            total = number + delta
            item = dict(live)
        if abs(total) > MAX_COUNTER:
            raise KVValidationError(
                "incr: the counter would exceed DynamoDB's 38 digits",
                operation="incr",
                table=config.table,
                key=key,
            )
        version = self._next_version(stored, key, "incr")
        if live is None:
            self._expire_parts(item, None)  # an expired counter restarts without expiry
        if seconds is not None:
            self._expire_parts(item, expiry_ms_of(seconds, now()))
        item[config.value_attribute] = {"N": str(total)}
        item[config.version_attribute] = {"N": str(version)}
        self._core.items[stored] = item
        return total

    async def set_counter(self, key: str, number: int, *, ttl: TTL | None = None) -> None:
        """See `AsyncDynamoKV.set_counter`."""
        stored = self._stored(key, "set_counter")
        check_delta(number, "set_counter", "number")
        seconds = ttl_seconds(ttl, "set_counter")
        await asyncio.sleep(0)
        self._invalidate(stored)
        config = self.config
        item: Item = {
            config.partition_key: {"S": stored},
            config.value_attribute: {"N": str(number)},
            config.version_attribute: {"N": str(self._next_version(stored, key, "set_counter"))},
        }
        self._expire_parts(item, expiry_ms_of(seconds, now()))
        self._core.items[stored] = item

    # -- batches -----------------------------------------------------------------

    async def get_many(
        self, keys: Iterable[str], *, snapshot: bool = False, consistent: bool = False
    ) -> dict[str, Value]:
        """See `AsyncDynamoKV.get_many`."""
        if snapshot:
            from aiodynkv._transaction import snapshot_get

            return await snapshot_get(self, keys)
        wanted = {
            self._keys.encode(k, "get_many", self.config.table): k
            for k in key_list(keys, "get_many")
        }
        self._check("get_many")
        await asyncio.sleep(0)
        cache = self._core.cache
        held, ask, ticket = read_many_through(cache, None, wanted, consistent)
        items = self._core.items
        raw = {pk: items[pk] for pk in ask if pk in items}
        opened, unreadable = await self._core.pipeline.open_many(raw, wanted, "get_many")
        pairs = ((wanted[pk], item) for pk, item in opened.items())
        out, corrupt = decode_many(pairs, self.config, now())
        corrupt.update(unreadable)
        fill_many(cache, ticket, ask, (), wanted, opened, out, corrupt, self.config)
        out.update({wanted[pk]: value for pk, value in held.items() if value is not None})
        if corrupt:
            raise self._corrupt_many(out, corrupt, len(wanted))
        return out

    async def set_many(
        self,
        items: Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]],
        *,
        ttl: TTL | None = None,
    ) -> None:
        """See `AsyncDynamoKV.set_many`."""
        seconds = ttl_seconds(ttl, "set_many")
        expires_ms = expiry_ms_of(seconds, now())
        token = new_token()
        staged: dict[str, Item] = {}
        users: dict[str, tuple[str, Any]] = {}
        sized = not self._core.pipeline.writes  # else the pipeline checks after sealing
        for pair in items.items() if isinstance(items, Mapping) else items:
            key, value = pair_of(pair)
            stored = self._keys.encode(key, "set_many", self.config.table)
            staged[stored] = build_item(
                self.config,
                stored,
                value,
                expires_ms,
                new_version(),
                token,
                "set_many",
                key,
                check_size=sized,
            )
            users[stored] = (key, value)
        self._check("set_many")
        expires_at = None if expires_ms is None else expires_ms / 1000.0
        entries = {pk: {"PutRequest": {"Item": item}} for pk, item in staged.items()}
        await self._write_many("set_many", entries, users, expires_at)

    async def _old_items(self, _op: object, stored: list[str]) -> dict[str, Item]:
        await asyncio.sleep(0)
        return {pk: self._core.items[pk] for pk in stored if pk in self._core.items}

    async def _write_many(
        self,
        operation: str,
        entries: dict[str, dict[str, Any]],
        users: dict[str, tuple[str, Any]],
        expires_at: float | None = None,
    ) -> None:
        """Apply a batch with `AsyncDynamoKV`'s steps around it (`BatchWrites`)."""
        with writing(self._core.cache, *entries) as cache:
            hooks = BatchWrites(
                self._core.pipeline, cache, operation, users, expires_at, self._old_items
            )
            await hooks.before(None, entries)
            await asyncio.sleep(0)
            for pk, entry in entries.items():
                if "PutRequest" in entry:
                    self._core.items[pk] = entry["PutRequest"]["Item"]
                else:
                    self._core.items.pop(pk, None)
            await hooks.after(entries, (), ())

    async def delete_many(self, keys: Iterable[str]) -> None:
        """See `AsyncDynamoKV.delete_many`."""
        stored = [
            self._keys.encode(k, "delete_many", self.config.table)
            for k in key_list(keys, "delete_many")
        ]
        self._check("delete_many")
        entries: dict[str, dict[str, Any]] = {pk: {"DeleteRequest": {}} for pk in stored}
        await self._write_many("delete_many", entries, {pk: (pk, None) for pk in stored})

    # -- listing -----------------------------------------------------------------

    async def _scan(self, prefix: str, *, expired: bool) -> AsyncIterator[str]:
        self._check("keys")
        for stored in list(self._core.items):
            user = self._keys.decode(stored)
            if user is None or not user.startswith(prefix):
                continue
            if expired or self._live(stored, user, "keys") is not None:
                yield user
        await asyncio.sleep(0)

    async def items(self, prefix: str | None = None) -> AsyncIterator[StoredItem]:
        """See `AsyncDynamoKV.items`."""
        if prefix is not None and not isinstance(prefix, str):
            raise TypeError(f"items: prefix must be a str, not {type(prefix).__name__}")
        async for user in self._scan(prefix or "", expired=False):
            item = self._core.items.get(self._keys.prefix + user)
            if item is None:  # pragma: no cover - deleted while iterating
                continue
            item = await self._opened(item, self._keys.prefix + user, user, "items")
            try:
                yield StoredItem(
                    user,
                    decode_value(item, self.config),
                    expiry_seconds(item, self.config),
                    version_of(item, self.config),
                )
            except CorruptItemError as exc:
                raise self._corrupt("items", user, exc.reason or "") from None
