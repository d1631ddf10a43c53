"""The `KVStore` protocol shared by `AsyncDynamoKV` and `InMemoryKV`, and `Health`."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload, runtime_checkable

if TYPE_CHECKING:
    from aiodynkv._counter import ShardedCounter
    from aiodynkv._lock import Lock
    from aiodynkv._transaction import Transaction

__all__ = ["MISSING", "TTL", "Health", "KVStore", "StoredItem", "Value"]

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


@runtime_checkable
class KVStore(Protocol):
    """What every aiodynkv store offers; code against this to swap in `InMemoryKV`."""

    @property
    def current_namespace(self) -> str | None:
        """The namespace this store or view reads and writes (None at the root)."""
        ...

    async def open(self) -> KVStore:
        """Open the store (a namespace view: check its parent is open)."""
        ...

    async def aclose(self) -> None:
        """Close the store (a namespace view: nothing). Idempotent."""
        ...

    async def __aenter__(self) -> KVStore: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def ensure_table(self) -> None:
        """Create the table if needed and enable TTL (nothing in memory)."""
        ...

    @overload
    async def get(self, key: str, *, consistent: bool = False) -> Value: ...
    @overload
    async def get(self, key: str, default: _T, *, consistent: bool = False) -> Value | _T: ...
    async def get(self, key: str, default: Any = MISSING, *, consistent: bool = False) -> Any:
        """Return the value of `key`, or `default`; raise `KeyNotFoundError` without one.

        ``consistent=True`` bypasses the near cache and reads strongly consistent.
        """
        ...

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
        """Return ``(value, remaining seconds or None)`` in one read.

        A missing or expired key gives ``(default, None)``; without a default it
        raises `KeyNotFoundError`.
        """
        ...

    async def get_json(self, key: str, default: Any = MISSING) -> Any:
        """Return the JSON value of `key` decoded, or `default`."""
        ...

    async def get_with_version(self, key: str) -> tuple[Value, int]:
        """Return the value of `key` and its version for compare-and-set."""
        ...

    async def set(
        self,
        key: str,
        value: str | bytes,
        *,
        ttl: TTL | None = None,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> bool:
        """Store `value`; False only when `if_absent` found the key present."""
        ...

    async def set_json(
        self,
        key: str,
        obj: Any,
        *,
        ttl: TTL | None = None,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> bool:
        """Store `obj` as JSON text."""
        ...

    async def delete(self, key: str, *, if_version: int | None = None) -> bool:
        """Delete `key`; True if it existed."""
        ...

    async def exists(self, key: str) -> bool:
        """True if `key` exists and has not expired."""
        ...

    async def incr(self, key: str, delta: int = 1, *, ttl: TTL | None = None) -> int:
        """Add `delta` to the counter at `key` (created at 0) and return the new value."""
        ...

    async def ttl(self, key: str) -> float | None:
        """Seconds until `key` expires, or None when it has no expiry."""
        ...

    async def expire(self, key: str, ttl: TTL) -> bool:
        """Set the expiry of an existing key; False if it does not exist."""
        ...

    async def persist(self, key: str) -> bool:
        """Remove the expiry of an existing key; False if it does not exist."""
        ...

    async def set_counter(self, key: str, number: int, *, ttl: TTL | None = None) -> None:
        """Make `key` a counter holding `number`, in one atomic write."""
        ...

    def items(self, prefix: str | None = None) -> AsyncIterator[StoredItem]:
        """Iterate the unexpired items with values, expiry and version (a full table scan)."""
        ...

    async def get_many(
        self, keys: Iterable[str], *, snapshot: bool = False, consistent: bool = False
    ) -> dict[str, Value]:
        """Return the values of the keys that exist.

        ``snapshot``: one consistent read; ``consistent``: bypass the near cache.
        """
        ...

    async def set_many(
        self,
        items: Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]],
        *,
        ttl: TTL | None = None,
    ) -> None:
        """Store many values at once."""
        ...

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete many keys at once; return how many existed (unexpired) before the call."""
        ...

    def keys(self, prefix: str | None = None) -> AsyncIterator[str]:
        """Iterate the keys of this namespace (a full table scan)."""
        ...

    async def clear(self) -> int:
        """Delete every key of this namespace (a full table scan); return how many."""
        ...

    def namespace(self, name: str) -> KVStore:
        """A view of the same store whose keys live in namespace `name`."""
        ...

    async def health(self) -> Health:
        """Check the table; never raises for an unreachable or misconfigured server."""
        ...

    def lock(
        self,
        name: str,
        *,
        lease: float = 10.0,
        wait: float | None = None,
        renew_every: float | None = None,
        poll: float | None = None,
    ) -> Lock:
        """A lease on `name` with a fencing token, renewed while held."""
        ...

    def transaction(self) -> Transaction:
        """Writes and checks committed all together or not at all."""
        ...

    def counter(self, name: str, *, shards: int = 32) -> ShardedCounter:
        """A counter spread over `shards` items, for keys too hot for one partition."""
        ...
