"""The `KVStore` protocol and what a store hands back: `Health`, `StoredItem`, `KeyListing`."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload, runtime_checkable

if TYPE_CHECKING:
    from aiodynkv._counter import ShardedCounter
    from aiodynkv._lock import Lock
    from aiodynkv._transaction import Transaction

__all__ = ["MISSING", "TTL", "Health", "KVStore", "KeyListing", "StoredItem", "Value"]

Value = str | bytes | int
TTL = float | timedelta
_T = TypeVar("_T")


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "<MISSING>"


#: Sentinel default: ``get`` raises `KeyNotFoundError` instead of returning a default.
MISSING = _Missing.MISSING


@dataclass(frozen=True, slots=True)
class Health:
    """Result of `KVStore.health`.

    Attributes:
        status: ``"UP"`` when the table answered and is ACTIVE, else ``"DOWN"``.
        details: table, region, endpoint, table_status, latency_ms, and on DOWN
            ``error`` (the error class) and ``message``.
    """

    status: Literal["UP", "DOWN"]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def is_up(self) -> bool:
        """True when `status` is ``"UP"``."""
        return self.status == "UP"


@dataclass(frozen=True, slots=True)
class StoredItem:
    """One item as `items()` lists it.

    Attributes:
        key: The user's key (without the namespace).
        value: The value: str, bytes, or int for a counter.
        expires_at: When it expires, in epoch seconds (exact), or None.
        version: Its version, for `set(..., if_version=)`.
    """

    key: str
    value: Value
    expires_at: float | None
    version: int


class KeyListing(AsyncIterator[str]):
    """The keys of a namespace: ``async for key in kv.keys()`` or ``await kv.keys()`` (a list)."""

    __slots__ = ("_source",)

    def __init__(self, source: AsyncIterator[str]) -> None:
        self._source = source

    def __aiter__(self) -> KeyListing:
        return self

    async def __anext__(self) -> str:
        return await self._source.__anext__()

    def __await__(self) -> Generator[Any, None, list[str]]:
        return self._collect().__await__()

    async def _collect(self) -> list[str]:
        return [key async for key in self._source]


@runtime_checkable
class KVStore(Protocol):
    """What every aiodynkv store offers; code against this to swap in `InMemoryKV`.

    `AsyncDynamoKV` (and so `InMemoryKV`) implements it; each method does what the
    method of the same name on `AsyncDynamoKV` documents.
    """

    @property
    def current_namespace(self) -> str | None: ...
    async def open(self) -> KVStore: ...
    async def aclose(self) -> None: ...
    async def __aenter__(self) -> KVStore: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def ensure_table(self) -> None: ...
    @overload
    async def get(self, key: str, *, consistent: bool = False) -> Value: ...
    @overload
    async def get(self, key: str, default: _T, *, consistent: bool = False) -> Value | _T: ...
    async def get(self, key: str, default: Any = MISSING, *, consistent: bool = False) -> Any: ...
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
    ) -> tuple[Any, float | None]: ...
    async def get_json(self, key: str, default: Any = MISSING) -> Any: ...
    async def get_with_version(self, key: str) -> tuple[Value, int]: ...
    async def set(
        self,
        key: str,
        value: str | bytes,
        *,
        ttl: TTL | None = None,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> bool: ...
    async def set_json(
        self,
        key: str,
        obj: Any,
        *,
        ttl: TTL | None = None,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> bool: ...
    async def delete(self, key: str, *, if_version: int | None = None) -> bool: ...
    async def exists(self, key: str) -> bool: ...
    async def incr(self, key: str, delta: int = 1, *, ttl: TTL | None = None) -> int: ...
    async def ttl(self, key: str) -> float | None: ...
    async def expire(self, key: str, ttl: TTL) -> bool: ...
    async def persist(self, key: str) -> bool: ...
    async def set_counter(self, key: str, number: int, *, ttl: TTL | None = None) -> None: ...
    def items(self, prefix: str | None = None) -> AsyncIterator[StoredItem]: ...
    async def get_many(
        self, keys: Iterable[str], *, snapshot: bool = False, consistent: bool = False
    ) -> dict[str, Value]: ...
    async def set_many(
        self,
        items: Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]],
        *,
        ttl: TTL | None = None,
    ) -> None: ...
    async def delete_many(self, keys: Iterable[str]) -> int: ...
    def keys(self, prefix: str | None = None) -> AsyncIterator[str]: ...
    async def clear(self) -> int: ...
    def namespace(self, name: str) -> KVStore: ...
    async def health(self) -> Health: ...
    def lock(
        self,
        name: str,
        *,
        lease: float = 10.0,
        wait: float | None = None,
        renew_every: float | None = None,
        poll: float | None = None,
    ) -> Lock: ...
    def transaction(self) -> Transaction: ...
    def counter(self, name: str, *, shards: int = 32) -> ShardedCounter: ...
