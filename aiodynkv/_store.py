"""`AsyncDynamoKV`: the store's public operations, each validate → build → send → decode.

Validation lives in ``_args``/``_keys``/``_codec``, request building in
``_requests``, lifecycle and sending in ``_core``, batches in ``_batch``, read
coalescing in ``_coalesce``; a method strings them together. This module holds
the lifecycle and the reads; the writes are in ``_store_writes``, the batches in
``_store_batches``, the listing in ``_store_listing``, the helpers they share in
``_store_base`` (mixins of `AsyncDynamoKV`).

Exactly-once writes: every write carries a fresh token stored on the item, and
asks for the old item when its condition fails. When the transport retried a
request whose reply was lost and the retry meets the call's own earlier write,
the token says so, and the call reports what its write did (True, the counter's
value), without a second write and without an extra read where the server returns
the old item (DynamoDB, moto; dynalite does not, so one consistent read is made).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, TypeVar, overload

from aiodynkv import _requests as requests
from aiodynkv import _table
from aiodynkv._cache import read_through
from aiodynkv._codec import Item, expiry_seconds, now, remaining_seconds, version_of
from aiodynkv._config import KVConfig
from aiodynkv._core import Core, State
from aiodynkv._errors import CorruptItemError, InsecureEndpointWarning, shown
from aiodynkv._keys import KeyCodec
from aiodynkv._protocol import MISSING, Health, Value
from aiodynkv._store_batches import Batches
from aiodynkv._store_listing import Listing
from aiodynkv._store_writes import Writes

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from types_aiobotocore_dynamodb import DynamoDBClient
    from typing_extensions import Self

    from aiodynkv._telemetry import Operation

__all__ = ["AsyncDynamoKV"]

_T = TypeVar("_T")


class AsyncDynamoKV(Writes, Batches, Listing):
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
        ns = f", namespace={shown(self._keys.namespace)}" if self._keys.namespace else ""
        return (
            f"<AsyncDynamoKV table={self.config.table!r}{ns} "
            f"transport={self.config.transport} {self._core.state.value}>"
        )

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> Self:
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

    async def _get(self, key: str, consistent: bool = False) -> Value | None:
        core = self._core
        stored = self._encode(key, "get")
        with core.operation("get", "GetItem", key) as op:

            def again() -> Awaitable[Item | None]:
                return self._read_again(op, stored, key)

            async def fetch() -> tuple[Value | None, float | None]:
                if core.coalescer is not None and (core.config.consistent_read or not consistent):
                    item = self._live(op, await core.coalescer.get(stored, key, op), key)
                else:
                    item = await self._read(op, key, stored, consistent=consistent)
                if item is None:
                    return None, None
                item = await self._opened(item, stored, key, "get", again)
                if item is None:  # deleted while it was read
                    return None, None
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
            if item is not None:
                item = await self._opened(
                    item,
                    stored,
                    key,
                    "get_with_version",
                    lambda: self._read_again(op, stored, key),
                )
            if item is None:
                raise self._not_found(key, "get_with_version")
            value = self._value(item, key, "get_with_version")
            try:
                return value, version_of(item, self.config)
            except CorruptItemError as exc:
                raise self._corrupt("get_with_version", key, exc.reason or "") from None

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
        """Return the value at `key` and its remaining seconds (None without expiry).

        One GetItem, bypassing the near cache. A missing or expired key gives
        ``(default, None)``, or raises without a default.

        Args:
            key: The key.
            default: Returned in place of the value when the key is missing or expired.
            consistent: Read strongly consistent, whatever ``consistent_read`` says.

        Raises:
            KeyNotFoundError: The key is missing or expired and no default was given.
            CorruptItemError: The item cannot be read.
        """
        stored = self._encode(key, "get_with_ttl")
        with self._core.operation("get_with_ttl", "GetItem", key) as op:
            item = await self._read(op, key, stored, consistent=consistent)
            if item is not None:
                item = await self._opened(
                    item, stored, key, "get_with_ttl", lambda: self._read_again(op, stored, key)
                )
            if item is None:
                if default is MISSING:
                    raise self._not_found(key, "get_with_ttl")
                return default, None
            value = self._value(item, key, "get_with_ttl")
            return value, remaining_seconds(item, self.config, now())

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
