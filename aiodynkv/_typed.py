"""Typed views: ``kv.typed(User)`` stores `User` values as JSON and validates them on read.

The first step of the value pipeline (`aiodynkv._values`): a model is dumped to
JSON text by pydantic's ``TypeAdapter`` and stored as a str, so it is compressed,
encrypted and offloaded like any other value, and `get_json` still reads it. A
stored value that does not validate raises `CorruptItemError`, with pydantic's
``ValidationError`` as its ``__cause__``. pydantic is imported on first use (the
``typed`` extra).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from aiodynkv._codec import to_json
from aiodynkv._errors import CorruptItemError, KVValidationError
from aiodynkv._protocol import MISSING, TTL

if TYPE_CHECKING:
    from aiodynkv._store import AsyncDynamoKV

__all__ = ["TypedView"]

_M = TypeVar("_M")
_T = TypeVar("_T")
_EXTRA = "pip install -e '.[typed]' in a clone of aiodynkv (pydantic)"


def _adapter(type_: Any) -> Any:
    try:
        from pydantic import TypeAdapter
    except ImportError:
        raise ImportError(f"kv.typed() needs the typed extra: {_EXTRA}") from None
    return TypeAdapter(type_)


class TypedView(Generic[_M]):
    """Values of one type on a store or namespace view (see `AsyncDynamoKV.typed`).

    Every method mirrors the store's own: `get` returns a `_M`, `set` takes one.
    """

    __slots__ = ("_adapter", "_store", "_type")

    def __init__(self, store: AsyncDynamoKV, type_: Any) -> None:
        self._store = store
        self._type = type_
        self._adapter = _adapter(type_)

    def __repr__(self) -> str:
        name = getattr(self._type, "__name__", repr(self._type))
        return f"<TypedView {name} of {self._store!r}>"

    @property
    def store(self) -> AsyncDynamoKV:
        """The store (or namespace view) underneath."""
        return self._store

    def namespace(self, name: str) -> TypedView[_M]:
        """The same typed view on namespace `name`."""
        view: TypedView[_M] = TypedView.__new__(TypedView)
        view._store = self._store.namespace(name)
        view._type, view._adapter = self._type, self._adapter
        return view

    # -- conversion --------------------------------------------------------------

    def _dump(self, obj: _M, operation: str) -> str:
        from pydantic import ValidationError
        from pydantic_core import PydanticSerializationError

        try:
            data = self._adapter.dump_python(obj, mode="json")
        except (PydanticSerializationError, ValidationError, TypeError, ValueError) as exc:
            raise self._unserialisable(operation, type(exc).__name__) from exc
        try:
            # pydantic's own JSON writes NaN and infinities as null (a float field could
            # never be read back): its JSON-ready data goes through `to_json`, which
            # refuses them as `set_json` does.
            text = to_json(data)
        except ValueError as exc:
            raise self._unserialisable(operation, "NaN or an infinity is not JSON") from exc
        except TypeError as exc:
            raise self._unserialisable(operation, type(exc).__name__) from exc
        return text

    def _unserialisable(self, operation: str, why: str) -> KVValidationError:
        return KVValidationError(
            f"{operation}: the value cannot be serialised as {self._name} ({why})",
            operation=operation,
            table=self._store.config.table,
            reason="value does not serialise",
        )

    @property
    def _name(self) -> str:
        return str(getattr(self._type, "__name__", self._type))

    def _load(self, value: object, key: str, operation: str) -> _M:
        from pydantic import ValidationError

        try:
            if isinstance(value, int):  # a counter
                obj: _M = self._adapter.validate_python(value)
            else:
                obj = self._adapter.validate_json(value)
        except ValidationError as exc:
            table = self._store.config.table
            error = CorruptItemError(
                f"{operation}: the value in table {table!r} is not a valid {self._name} "
                f"({exc.error_count()} validation errors)",
                operation=operation,
                table=table,
                key=key,
                reason=f"not a valid {self._name}",
            )
            error.show_key = self._store.config.expose_keys
            raise error from exc
        return obj

    # -- reads -------------------------------------------------------------------

    @overload
    async def get(self, key: str, *, consistent: bool = False) -> _M: ...
    @overload
    async def get(self, key: str, default: _T, *, consistent: bool = False) -> _M | _T: ...
    async def get(self, key: str, default: Any = MISSING, *, consistent: bool = False) -> Any:
        """The value at `key`, validated as the view's type.

        Raises:
            KeyNotFoundError: Missing or expired and no default was given.
            CorruptItemError: The stored value does not validate (``__cause__`` says why).
        """
        marker = object()
        value = await self._store.get(key, marker, consistent=consistent)
        if value is marker:
            if default is MISSING:
                raise self._store._not_found(key, "get")
            return default
        return self._load(value, key, "get")

    async def get_many(self, keys: Iterable[str], *, consistent: bool = False) -> dict[str, _M]:
        """The values of the keys that exist, validated.

        Raises:
            CorruptItemError: A value does not validate (the first failure is the cause).
        """
        found = await self._store.get_many(keys, consistent=consistent)
        return {key: self._load(value, key, "get_many") for key, value in found.items()}

    async def get_with_version(self, key: str) -> tuple[_M, int]:
        """The value and its version, for ``set(..., if_version=)``."""
        value, version = await self._store.get_with_version(key)
        return self._load(value, key, "get_with_version"), version

    async def exists(self, key: str) -> bool:
        """True if `key` exists and has not expired."""
        return await self._store.exists(key)

    async def ttl(self, key: str) -> float | None:
        """Seconds until `key` expires, or None without expiry."""
        return await self._store.ttl(key)

    # -- writes ------------------------------------------------------------------

    async def set(
        self,
        key: str,
        obj: _M,
        *,
        ttl: TTL | None = None,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> bool:
        """Store `obj` (as JSON text); see the store's `set`.

        Raises:
            KVValidationError: `obj` cannot be serialised as the view's type, or holds
                NaN or an infinity (anywhere, nested too), as `set_json` refuses them.
        """
        text = self._dump(obj, "set")
        return await self._store.set(key, text, ttl=ttl, if_absent=if_absent, if_version=if_version)

    async def set_many(
        self, items: Mapping[str, _M] | Iterable[tuple[str, _M]], *, ttl: TTL | None = None
    ) -> None:
        """Store many values; every one is serialised before anything is sent."""
        pairs = items.items() if isinstance(items, Mapping) else items
        texts = [(key, self._dump(obj, "set_many")) for key, obj in pairs]
        await self._store.set_many(texts, ttl=ttl)

    async def delete(self, key: str, *, if_version: int | None = None) -> bool:
        """Delete `key`; True if it existed."""
        return await self._store.delete(key, if_version=if_version)

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete many keys; return how many existed."""
        return await self._store.delete_many(keys)
