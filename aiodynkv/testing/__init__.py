"""Test helpers for code that uses aiodynkv.

- `InMemoryKV`: `AsyncDynamoKV` whose requests a `MemoryTransport` answers in process
  with DynamoDB's semantics: a test runs the same store code as production, no server.
- `LocalDynamoDB`: a local DynamoDB-compatible server (moto, dynalite or DynamoDB Local);
  `ImageUnavailableError` when DynamoDB Local's image is neither present nor pullable.
- A pytest plugin (loaded automatically) with the fixtures ``aiodynkv_endpoint``,
  ``aiodynkv_kv`` and ``aiodynkv_memory``; see ``aiodynkv.testing._plugin``.
- `set_retry_waits`: turn the waits between retries off (and on again) in tests.
"""

from __future__ import annotations

from typing import Any

from aiodynkv._codec import decode_value, is_expired, now
from aiodynkv._config import KVConfig
from aiodynkv._errors import CorruptItemError, shown
from aiodynkv._protocol import Value
from aiodynkv._retry import set_retry_waits
from aiodynkv._store import AsyncDynamoKV
from aiodynkv._transport.memory import MemoryTransport
from aiodynkv.testing._local import (
    ImageUnavailableError,
    LocalDynamoDB,
    LocalServerError,
    docker_available,
    find_dynalite,
)

__all__ = [
    "ImageUnavailableError",
    "InMemoryKV",
    "LocalDynamoDB",
    "LocalServerError",
    "docker_available",
    "find_dynalite",
    "set_retry_waits",
]


class InMemoryKV(AsyncDynamoKV):
    """`AsyncDynamoKV` on a table in process memory: a `KVStore` for unit tests.

    Each store starts empty, on a `MemoryTransport` of its own (its namespace views
    share it). Like any store it must be opened (``async with InMemoryKV() as kv``)
    and used from the event loop that opened it.

    Args:
        config: A `KVConfig`; defaults to ``table="memory"``. The transport is always
            ``"memory"`` and the table is created on open.
        client: A `MemoryTransport` to share with other stores (a fresh one if None).
        **fields: `KVConfig` fields, on top of `config`.
    """

    __slots__ = ()

    def __init__(
        self,
        config: KVConfig | None = None,
        /,
        *,
        client: MemoryTransport | None = None,
        **fields: Any,
    ) -> None:
        config = self._merge(config, {"table": "memory"}, fields)
        config = config.replace(transport="memory", create_table=True)
        if client is not None and not isinstance(client, MemoryTransport):
            raise TypeError(
                f"InMemoryKV: client must be a MemoryTransport, not {type(client).__name__}"
            )
        super().__init__(config, client=client if client is not None else MemoryTransport())

    @property
    def transport(self) -> MemoryTransport:
        """The memory transport holding this store's table (shared by its views)."""
        transport: MemoryTransport = self._core.client
        return transport

    def __repr__(self) -> str:
        ns = f", namespace={shown(self._keys.namespace)}" if self._keys.namespace else ""
        count = len(self.transport.items(self.config.table))
        return (
            f"<InMemoryKV table={self.config.table!r}{ns} items={count} {self._core.state.value}>"
        )

    def dump(self) -> dict[str, Value]:
        """Every unexpired item of this namespace as {key: value}, for assertions in tests.

        Reads the table directly (also after `aclose`); values are shown as stored
        (an encrypted or offloaded value is not opened).

        Raises:
            CorruptItemError: An item of this namespace cannot be read.
        """
        config = self.config
        at = now()
        out: dict[str, Value] = {}
        for item in self.transport.items(config.table):
            stored = item.get(config.partition_key, {}).get("S")
            user = None if stored is None else self._keys.decode(stored)
            if user is None:
                continue
            try:
                if not is_expired(item, config, at):
                    out[user] = decode_value(item, config)
            except CorruptItemError as exc:
                raise self._corrupt("dump", user, exc.reason or "") from None
        return out
