"""What an in-memory store and its views share: the items, and the helpers its parts use."""

from __future__ import annotations

import asyncio

from aiodynkv._base import BaseStore
from aiodynkv._cache import NearCache
from aiodynkv._codec import EXPIRY_MS, Item, decode_value, is_expired, new_version, now, version_of
from aiodynkv._config import KVConfig
from aiodynkv._core import State, check_loop
from aiodynkv._crypto import MemoryKms
from aiodynkv._errors import CorruptItemError, StoreClosedError
from aiodynkv._offload import MemoryBlobs
from aiodynkv._pipeline import Pipeline
from aiodynkv._protocol import Value

__all__ = ["MemoryCore", "MemoryParts"]


class MemoryCore:
    """What an in-memory store and its views share: config, state, the items."""

    __slots__ = ("blobs", "cache", "config", "items", "loop", "pipeline", "state")

    def __init__(self, config: KVConfig) -> None:
        self.config = config
        self.items: dict[str, Item] = {}
        self.state = State.UNOPENED
        self.loop: asyncio.AbstractEventLoop | None = None  # the one that opened it
        # Near cache, S3 double (objects in a dict) and the value pipeline (issue 15).
        self.cache = NearCache.from_config(config)
        self.blobs = MemoryBlobs()
        self.pipeline = Pipeline(config, self.blobs, MemoryKms())


class MemoryParts(BaseStore):
    """The helpers `InMemoryKV`'s reads, writes, batches and listing share."""

    __slots__ = ()

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
        # The same rule as AsyncDynamoKV's, so a test on memory fails as on a server.
        check_loop(self._core.loop, operation, self.config.table)

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

    async def _read_again(self, stored: str, key: str, operation: str) -> Item | None:
        """The live item read again (its offloaded object went missing meanwhile)."""
        await asyncio.sleep(0)
        return self._live(stored, key, operation)

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
