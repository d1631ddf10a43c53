"""What both stores build on their primitives, written once: JSON, `clear`, `async with`."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiodynkv._codec import from_json, to_json
from aiodynkv._protocol import MISSING, TTL

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from typing_extensions import Self

    from aiodynkv._keys import KeyCodec

__all__ = ["DerivedOps"]

_CLEAR_BATCH = 1000  # keys per delete_many in clear(): 40 BatchWriteItem requests
_NO_VALUE = object()


class DerivedOps:
    """Operations defined in terms of the primitives every store implements."""

    __slots__ = ()
    _keys: KeyCodec

    if TYPE_CHECKING:

        async def open(self) -> Self: ...
        async def aclose(self) -> None: ...
        async def get(self, key: str, default: Any = MISSING) -> Any: ...
        async def set(
            self,
            key: str,
            value: str | bytes,
            *,
            ttl: TTL | None = None,
            if_absent: bool = False,
            if_version: int | None = None,
        ) -> bool: ...
        def keys(self, prefix: str | None = None) -> AsyncIterator[str]: ...
        async def delete_many(self, keys: Iterable[str]) -> None: ...

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def current_namespace(self) -> str | None:
        """The namespace this store or view reads and writes (None at the root)."""
        return self._keys.namespace

    async def get_json(self, key: str, default: Any = MISSING) -> Any:
        """Return the value at `key` parsed as JSON, or `default` when missing.

        A counter comes back as its int.

        Raises:
            KeyNotFoundError: Missing or expired and no default was given.
            ValueError: The stored value is not JSON.
        """
        value = await self.get(key, MISSING if default is MISSING else _NO_VALUE)
        if value is _NO_VALUE:
            return default
        return value if isinstance(value, int) else from_json(value)

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

    async def clear(self) -> int:
        """Delete every key of this namespace: a full Scan plus batched deletes.

        Returns:
            How many keys were deleted.
        """
        batch: list[str] = []
        count = 0
        async for key in self.keys():
            batch.append(key)
            if len(batch) >= _CLEAR_BATCH:
                await self.delete_many(batch)
                count += len(batch)
                batch = []
        if batch:
            await self.delete_many(batch)
            count += len(batch)
        return count
