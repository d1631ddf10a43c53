"""`InMemoryKV`: the `KVStore` protocol in a dict, with the same semantics as `AsyncDynamoKV`.

Items are kept in DynamoDB's attribute form and go through the same codec,
key rules, argument checks, size checks, expiry and version rules and errors as
the real store (most of it inherited from the same base), so a unit test that
passes here behaves the same against DynamoDB. The contract suite in
``tests/integration/test_contract.py`` runs on both to prove it. Lifecycle and
reads are here; writes in ``_memory_writes``, batches and listing in
``_memory_batches``, shared helpers in ``_memory_base``.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, TypeVar, overload

from aiodynkv._cache import read_through
from aiodynkv._codec import decode_value, expiry_seconds, is_expired, now, remaining_seconds
from aiodynkv._config import KVConfig
from aiodynkv._core import State, check_loop
from aiodynkv._errors import StoreClosedError
from aiodynkv._keys import KeyCodec
from aiodynkv._protocol import MISSING, Health, Value
from aiodynkv.testing._memory_base import MemoryCore
from aiodynkv.testing._memory_batches import MemoryBatches
from aiodynkv.testing._memory_writes import MemoryWrites

__all__ = ["InMemoryKV"]

_T = TypeVar("_T")


class InMemoryKV(MemoryWrites, MemoryBatches):
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
        self._core = MemoryCore(config)
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
        self._core.loop = asyncio.get_running_loop()
        return self

    async def aclose(self) -> None:
        """Close the store (a view: nothing). Idempotent; `dump` still reads the data.

        Raises:
            KVError: Called from another event loop than the one that opened it.
        """
        if self._view or self._core.state is State.CLOSED:
            return
        if self._core.state is State.OPEN:
            check_loop(self._core.loop, "aclose", self.config.table, "close it from that loop")
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

    # -- reads -------------------------------------------------------------------

    async def _get(self, key: str, consistent: bool = False) -> Value | None:
        stored = self._stored(key, "get")

        async def fetch() -> tuple[Value | None, float | None]:
            item = self._live(stored, key, "get")
            await asyncio.sleep(0)
            if item is None:
                return None, None
            item = await self._opened(
                item, stored, key, "get", functools.partial(self._read_again, stored, key, "get")
            )
            if item is None:  # deleted while it was read
                return None, None
            return self._value(item, key, "get"), expiry_seconds(item, self.config)

        return await read_through(self._core.cache, None, stored, consistent, fetch)

    async def get_with_version(self, key: str) -> tuple[Value, int]:
        """See `AsyncDynamoKV.get_with_version`."""
        stored = self._stored(key, "get_with_version")
        item = self._live(stored, key, "get_with_version")
        await asyncio.sleep(0)
        if item is None:
            raise self._not_found(key, "get_with_version")
        opened = await self._opened(
            item,
            stored,
            key,
            "get_with_version",
            functools.partial(self._read_again, stored, key, "get_with_version"),
        )
        if opened is None:  # deleted while it was read
            raise self._not_found(key, "get_with_version")
        value = self._value(opened, key, "get_with_version")
        return value, self._version(opened, key, "get_with_version") or 0

    @overload
    async def get_with_ttl(
        self, key: str, *, consistent: bool = False
    ) -> tuple[Value, float | None]: ...
    @overload
    async def get_with_ttl(
        self, key: str, default: _T, *, consistent: bool = False
    ) -> tuple[Value | _T, float | None]: ...
    async def get_with_ttl(
        self,
        key: str,
        default: Any = MISSING,
        *,
        consistent: bool = False,  # noqa: ARG002 (memory reads are always consistent)
    ) -> tuple[Any, float | None]:
        """See `AsyncDynamoKV.get_with_ttl`."""
        stored = self._stored(key, "get_with_ttl")
        item = self._live(stored, key, "get_with_ttl")
        await asyncio.sleep(0)
        if item is not None:
            item = await self._opened(
                item,
                stored,
                key,
                "get_with_ttl",
                functools.partial(self._read_again, stored, key, "get_with_ttl"),
            )
        if item is None:
            if default is MISSING:
                raise self._not_found(key, "get_with_ttl")
            return default, None
        value = self._value(item, key, "get_with_ttl")
        return value, remaining_seconds(item, self.config, now())

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
