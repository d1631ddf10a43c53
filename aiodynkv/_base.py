"""The store's operations built on its primitives (the base of `AsyncDynamoKV`).

The store implements a few primitives (`open`, `aclose`, `get`, `set`,
`delete_many`, `_delete_batch`, `_scan`); this base gives the rest: construction from a
config, namespace views, `async with`, JSON helpers, `keys()` (iterable and
awaitable), `clear()`, coordination and typed views, and the construction of its errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from aiodynkv._codec import Item, from_json, to_json
from aiodynkv._config import KVConfig
from aiodynkv._errors import (
    ConditionFailedError,
    CorruptItemError,
    KeyNotFoundError,
    KVError,
    KVValidationError,
    WrongTypeError,
)
from aiodynkv._keys import KeyCodec
from aiodynkv._protocol import MISSING, TTL, StoredItem, Value

if TYPE_CHECKING:
    from typing_extensions import Self

    from aiodynkv._core import Core
    from aiodynkv._counter import ShardedCounter
    from aiodynkv._lock import Lock
    from aiodynkv._transaction import Transaction
    from aiodynkv._typed import TypedView

__all__ = ["BaseStore", "KeyListing", "StoredItem"]

_T = TypeVar("_T")
_M = TypeVar("_M")
_E = TypeVar("_E", bound=KVError)
_CLEAR_BATCH = 1000  # keys per _delete_batch in clear(): 40 BatchWriteItem requests
_NO_VALUE = object()


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


class BaseStore:
    """The plumbing over the store's primitives."""

    __slots__ = ("_core", "_keys", "_view")
    _core: Core
    _keys: KeyCodec
    _view: bool

    if TYPE_CHECKING:

        async def open(self) -> Self: ...
        async def aclose(self) -> None: ...
        async def set(
            self,
            key: str,
            value: str | bytes,
            *,
            ttl: TTL | None = None,
            if_absent: bool = False,
            if_version: int | None = None,
        ) -> bool: ...
        async def delete_many(self, keys: Iterable[str]) -> int: ...
        async def _delete_batch(self, keys: Iterable[str]) -> None: ...
        def _scan(self, prefix: str, *, expired: bool) -> AsyncIterator[str]: ...
        async def _get(self, key: str, consistent: bool = False) -> Value | None: ...
        async def _stored_many(self, keys: Iterable[str]) -> dict[str, StoredItem]: ...

    @staticmethod
    def _merge(
        config: KVConfig | None, defaults: dict[str, Any], fields: dict[str, Any]
    ) -> KVConfig:
        """The config from a `KVConfig` and/or keyword fields (keywords win)."""
        if config is None:
            return KVConfig(**{**defaults, **fields})
        return config.replace(**fields) if fields else config

    @property
    def config(self) -> KVConfig:
        """The store's configuration."""
        config: KVConfig = self._core.config
        return config

    @property
    def current_namespace(self) -> str | None:
        """The namespace this store or view reads and writes (None at the root)."""
        return self._keys.namespace

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

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- reads built on get ------------------------------------------------------

    async def _opened(
        self,
        item: Item,
        stored: str,
        key: str,
        operation: str,
        reread: Callable[[], Awaitable[Item | None]] | None = None,
    ) -> Item | None:
        """The item with an encrypted or offloaded value made readable (`aiodynkv._pipeline`).

        `reread` reads the item again (strongly consistent) when its S3 object is
        missing; None means the item is gone now.
        """
        pipeline = self._core.pipeline
        if not pipeline.needs_open(item):
            return item
        opened: Item | None = await pipeline.open(item, stored, key, operation, reread)
        return opened

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

    # -- listing ---------------------------------------------------------------

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

    # -- coordination (aiodynkv._lock, _transaction, _counter) --------------------

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

    # -- typed values (aiodynkv._typed) -------------------------------------------

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

    # -- the store's errors -------------------------------------------

    def _shown(self, error: _E) -> _E:
        error.show_key = self.config.expose_keys
        return error

    def _not_found(self, key: str, operation: str) -> KeyNotFoundError:
        return self._shown(
            KeyNotFoundError(
                f"{operation}: key not found in table {self.config.table!r}",
                operation=operation,
                table=self.config.table,
                key=key,
            )
        )

    def _conflict(
        self, key: str, operation: str, current: int | None, reason: str | None
    ) -> ConditionFailedError:
        return self._shown(
            ConditionFailedError(
                f"{operation}: version condition failed in table {self.config.table!r} "
                f"(current version: {current})",
                current_version=current,
                operation=operation,
                table=self.config.table,
                key=key,
                reason=reason or "ConditionalCheckFailedException: The conditional request failed",
            )
        )

    def _wrong_type(self, key: str, reason: str | None) -> WrongTypeError:
        return self._shown(
            WrongTypeError(
                "incr: the value is not a counter",
                operation="incr",
                table=self.config.table,
                key=key,
                reason=reason,
            )
        )

    def _corrupt_many(
        self, found: dict[str, Value], corrupt: dict[str, str], total: int
    ) -> CorruptItemError:
        """`get_many`'s error when some items cannot be read: the good values stay in ``done``."""
        return self._shown(
            CorruptItemError(
                f"get_many: {len(corrupt)} of {total} items in table {self.config.table!r} "
                "cannot be read (see .corrupt; .done holds the values read fine)",
                done=found,
                corrupt=corrupt,
                operation="get_many",
                table=self.config.table,
                key=next(iter(corrupt)),
                reason="corrupt items",
            )
        )

    def _corrupt(self, operation: str, key: str, what: str) -> CorruptItemError:
        return self._shown(
            CorruptItemError(
                f"{operation}: the item in table {self.config.table!r} cannot be read: {what}",
                operation=operation,
                table=self.config.table,
                key=key,
                reason=what,
            )
        )
