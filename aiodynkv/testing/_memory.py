"""`InMemoryKV`: the `KVStore` protocol in a dict, with the same semantics as `AsyncDynamoKV`.

Items are kept in DynamoDB's attribute form and go through the same codec,
key rules, size checks, version rules and errors as the real store, so a unit
test that passes here behaves the same against DynamoDB. The contract suite in
``tests/integration/test_contract.py`` runs on both to prove it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiodynkv._codec import (
    MAX_COUNTER,
    Item,
    build_item,
    check_conditions,
    check_delta,
    decode_value,
    expiry_of,
    is_expired,
    key_list,
    new_version,
    pair_of,
)
from aiodynkv._config import KVConfig
from aiodynkv._derived import DerivedOps
from aiodynkv._errors import (
    ConditionFailedError,
    KeyNotFoundError,
    KVValidationError,
    StoreClosedError,
    WrongTypeError,
)
from aiodynkv._keys import KeyCodec
from aiodynkv._protocol import MISSING, TTL, Health, Value

__all__ = ["InMemoryKV"]


class _Shared:
    def __init__(self, config: KVConfig) -> None:
        self.config = config
        self.items: dict[str, Item] = {}
        self.state = "unopened"


class InMemoryKV(DerivedOps):
    """An in-memory `KVStore` for unit tests, with `AsyncDynamoKV`'s exact semantics.

    Like the real store it must be opened (``async with InMemoryKV() as kv``) and
    raises `StoreClosedError` otherwise.

    Args:
        config: A `KVConfig`; defaults to ``table="memory"``.
        **fields: `KVConfig` fields, on top of `config`.
    """

    __slots__ = ("_keys", "_shared", "_view")

    def __init__(self, config: KVConfig | None = None, /, **fields: Any) -> None:
        if config is None:
            config = KVConfig(**{"table": "memory", **fields})
        elif fields:
            config = config.replace(**fields)
        self._shared = _Shared(config)
        self._keys = KeyCodec(config.namespace)
        self._view = False

    @property
    def config(self) -> KVConfig:
        """The store's configuration."""
        return self._shared.config

    @property
    def is_open(self) -> bool:
        """True between `open` and `aclose`."""
        return self._shared.state == "open"

    def __repr__(self) -> str:
        return f"<InMemoryKV table={self.config.table!r} items={len(self._shared.items)}>"

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
        if self._shared.state != "unopened":
            raise StoreClosedError(
                f"store for table {self.config.table!r} was already "
                f"{'opened' if self._shared.state == 'open' else 'closed'}; create a new one",
                table=self.config.table,
            )
        self._shared.state = "open"
        return self

    async def aclose(self) -> None:
        """Close the store (a view: nothing). Idempotent; `dump` still reads the data."""
        if not self._view:
            self._shared.state = "closed"

    def namespace(self, name: str) -> InMemoryKV:
        """A view whose keys live in namespace `name`, sharing this store's data."""
        view = object.__new__(InMemoryKV)
        view._shared = self._shared
        view._view = True
        try:
            view._keys = KeyCodec(name)
        except ValueError as exc:
            raise KVValidationError(f"namespace: {exc}") from None
        return view

    async def ensure_table(self) -> None:
        """Nothing to create in memory."""
        self._check("ensure_table")

    async def health(self) -> Health:
        """UP while open, DOWN otherwise."""
        up = self.is_open
        details: dict[str, Any] = {
            "table": self.config.table,
            "region": "memory",
            "endpoint": None,
            "table_status": "ACTIVE" if up else None,
            "latency_ms": 0.0,
        }
        if up:
            details["item_count"] = len(self._shared.items)
        else:
            details["error"] = "StoreClosedError"
            details["message"] = "health: the store is not open"
        return Health("UP" if up else "DOWN", details)

    def dump(self) -> dict[str, Value]:
        """Every unexpired item of this namespace, for assertions in tests."""
        now = time.time()
        out: dict[str, Value] = {}
        for stored, item in self._shared.items.items():
            user = self._keys.decode(stored)
            if user is not None and not is_expired(item, self.config.ttl_attribute, now):
                out[user] = decode_value(item, self.config.value_attribute)
        return out

    # -- helpers -------------------------------------------------------------

    def _check(self, operation: str) -> None:
        if self._shared.state != "open":
            raise StoreClosedError(
                f"{operation}: the store is {self._shared.state}; "
                "use `async with InMemoryKV()` or `await kv.open()`",
                operation=operation,
                table=self.config.table,
            )

    def _stored(self, key: object, operation: str) -> str:
        stored = self._keys.encode(key, operation, self.config.table)
        self._check(operation)
        return stored

    def _live(self, stored: str) -> Item | None:
        item = self._shared.items.get(stored)
        if item is None or is_expired(item, self.config.ttl_attribute, time.time()):
            return None
        return item

    def _version(self, item: Item | None) -> int | None:
        if item is None:
            return None
        version = item.get(self.config.version_attribute)
        return int(version["N"]) if version else 0

    def _next_version(self, stored: str) -> int:
        current = self._version(self._shared.items.get(stored))
        return new_version() if current is None else current + 1

    def _not_found(self, key: str, operation: str) -> KeyNotFoundError:
        return KeyNotFoundError(
            f"{operation}: key {key!r} not found in table {self.config.table!r}",
            operation=operation,
            table=self.config.table,
            key=key,
        )

    def _conflict(self, key: str, stored: str, operation: str) -> ConditionFailedError:
        current = self._version(self._live(stored))
        return ConditionFailedError(
            f"{operation}: version condition failed for key {key!r} in table "
            f"{self.config.table!r} (current version: {current})",
            current_version=current,
            operation=operation,
            table=self.config.table,
            key=key,
            reason="ConditionalCheckFailedException: The conditional request failed",
        )

    # -- reads ---------------------------------------------------------------

    async def get(self, key: str, default: Any = MISSING) -> Any:
        """See `AsyncDynamoKV.get`."""
        item = self._live(self._stored(key, "get"))
        await asyncio.sleep(0)
        if item is None:
            if default is MISSING:
                raise self._not_found(key, "get")
            return default
        return decode_value(item, self.config.value_attribute)

    async def get_with_version(self, key: str) -> tuple[Value, int]:
        """See `AsyncDynamoKV.get_with_version`."""
        item = self._live(self._stored(key, "get_with_version"))
        await asyncio.sleep(0)
        if item is None:
            raise self._not_found(key, "get_with_version")
        return decode_value(item, self.config.value_attribute), self._version(item) or 0

    async def exists(self, key: str) -> bool:
        """See `AsyncDynamoKV.exists`."""
        item = self._live(self._stored(key, "exists"))
        await asyncio.sleep(0)
        return item is not None

    async def ttl(self, key: str) -> float | None:
        """See `AsyncDynamoKV.ttl`."""
        item = self._live(self._stored(key, "ttl"))
        await asyncio.sleep(0)
        if item is None:
            raise self._not_found(key, "ttl")
        expires = item.get(self.config.ttl_attribute)
        return None if expires is None else max(0.0, float(expires["N"]) - time.time())

    # -- writes --------------------------------------------------------------

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
        expires = expiry_of(ttl, "set")
        item = build_item(self.config, stored, value, expires, new_version(), "set", key)
        self._check("set")
        await asyncio.sleep(0)
        live = self._live(stored)
        if if_absent and live is not None:
            return False
        if if_version is not None and (live is None or self._version(live) != if_version):
            raise self._conflict(key, stored, "set")
        item[self.config.version_attribute] = {"N": str(self._next_version(stored))}
        self._shared.items[stored] = item
        return True

    async def delete(self, key: str, *, if_version: int | None = None) -> bool:
        """See `AsyncDynamoKV.delete`."""
        stored = self._stored(key, "delete")
        check_conditions(False, if_version, "delete")
        await asyncio.sleep(0)
        live = self._live(stored)
        if if_version is not None and (live is None or self._version(live) != if_version):
            raise self._conflict(key, stored, "delete")
        self._shared.items.pop(stored, None)
        return live is not None

    async def _update_existing(self, key: str, operation: str, expires: int | None) -> bool:
        stored = self._stored(key, operation)
        await asyncio.sleep(0)
        live = self._live(stored)
        if live is None:
            return False
        ttl_attribute = self.config.ttl_attribute
        if expires is None:
            live.pop(ttl_attribute, None)
        else:
            live[ttl_attribute] = {"N": str(expires)}
        live[self.config.version_attribute] = {"N": str(self._next_version(stored))}
        return True

    async def expire(self, key: str, ttl: TTL) -> bool:
        """See `AsyncDynamoKV.expire`."""
        expires = expiry_of(ttl, "expire")
        if expires is None:
            raise KVValidationError(
                "expire: ttl must not be None (use persist)", operation="expire"
            )
        return await self._update_existing(key, "expire", expires)

    async def persist(self, key: str) -> bool:
        """See `AsyncDynamoKV.persist`."""
        return await self._update_existing(key, "persist", None)

    async def incr(self, key: str, delta: int = 1, *, ttl: TTL | None = None) -> int:
        """See `AsyncDynamoKV.incr`."""
        stored = self._stored(key, "incr")
        check_delta(delta, "incr")
        expires = expiry_of(ttl, "incr")
        await asyncio.sleep(0)
        config = self.config
        live = self._live(stored)
        old = self._shared.items.get(stored)
        if live is None:
            total = delta
            item: Item = {config.partition_key: {"S": stored}}
        else:
            current = live[config.value_attribute]
            if "N" not in current:
                raise WrongTypeError(
                    f"incr: the value at key {key!r} is not a counter",
                    operation="incr",
                    table=config.table,
                    key=key,
                    reason="ValidationException: An operand in the update expression has an "
                    "incorrect data type",
                )
            total = int(current["N"]) + delta
            item = dict(live)
        if abs(total) > MAX_COUNTER:
            raise KVValidationError(
                f"incr: counter at key {key!r} would exceed DynamoDB's 38 digits",
                operation="incr",
                table=config.table,
                key=key,
            )
        item[config.value_attribute] = {"N": str(total)}
        item[config.version_attribute] = {"N": str(self._next_version(stored))}
        if expires is not None:
            item[config.ttl_attribute] = {"N": str(expires)}
        elif live is None and old is not None:
            item.pop(config.ttl_attribute, None)  # an expired counter restarts without expiry
        self._shared.items[stored] = item
        return total

    # -- batches -------------------------------------------------------------

    async def get_many(self, keys: Iterable[str]) -> dict[str, Value]:
        """See `AsyncDynamoKV.get_many`."""
        wanted = {
            self._keys.encode(k, "get_many", self.config.table): k
            for k in key_list(keys, "get_many")
        }
        self._check("get_many")
        await asyncio.sleep(0)
        out: dict[str, Value] = {}
        for stored, key in wanted.items():
            item = self._live(stored)
            if item is not None:
                out[key] = decode_value(item, self.config.value_attribute)
        return out

    async def set_many(
        self,
        items: Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]],
        *,
        ttl: TTL | None = None,
    ) -> None:
        """See `AsyncDynamoKV.set_many`."""
        expires = expiry_of(ttl, "set_many")
        version = new_version()
        staged: dict[str, Item] = {}
        for pair in items.items() if isinstance(items, Mapping) else items:
            key, value = pair_of(pair)
            stored = self._keys.encode(key, "set_many", self.config.table)
            staged[stored] = build_item(
                self.config, stored, value, expires, version, "set_many", key
            )
        self._check("set_many")
        await asyncio.sleep(0)
        self._shared.items.update(staged)

    async def delete_many(self, keys: Iterable[str]) -> None:
        """See `AsyncDynamoKV.delete_many`."""
        stored = [
            self._keys.encode(k, "delete_many", self.config.table)
            for k in key_list(keys, "delete_many")
        ]
        self._check("delete_many")
        await asyncio.sleep(0)
        for pk in stored:
            self._shared.items.pop(pk, None)

    # -- listing -------------------------------------------------------------

    async def keys(self, prefix: str | None = None) -> AsyncIterator[str]:
        """See `AsyncDynamoKV.keys`."""
        if prefix is not None and not isinstance(prefix, str):
            raise TypeError(f"keys: prefix must be a str, not {type(prefix).__name__}")
        self._check("keys")
        now = time.time()
        for stored, item in list(self._shared.items.items()):
            user = self._keys.decode(stored)
            if (
                user is not None
                and user.startswith(prefix or "")
                and not is_expired(item, self.config.ttl_attribute, now)
            ):
                yield user
        await asyncio.sleep(0)
