"""The helpers every part of `AsyncDynamoKV` uses: key encoding, expiry, decoding."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiodynkv import _requests as requests
from aiodynkv._base import BaseStore
from aiodynkv._codec import Item, decode_value, is_expired, now
from aiodynkv._errors import CorruptItemError
from aiodynkv._protocol import Value

if TYPE_CHECKING:
    from aiodynkv._telemetry import Operation

__all__ = ["StoreParts"]


class StoreParts(BaseStore):
    """The helpers `AsyncDynamoKV`'s reads, writes, batches and listing share."""

    __slots__ = ()

    def _encode(self, key: object, operation: str) -> str:
        return self._keys.encode(key, operation, self._core.config.table)

    def _live(self, op: Operation, item: Item | None, key: str) -> Item | None:
        """The item unless missing or expired; records the op's outcome."""
        try:
            expired = item is not None and is_expired(item, self.config, now())
        except CorruptItemError as exc:
            raise self._corrupt(op.name, key, exc.reason or str(exc)) from None
        op.outcome = "miss" if item is None or expired else "hit"
        return None if expired else item

    async def _read_again(self, op: Operation, stored: str, key: str) -> Item | None:
        """The item read again, strongly consistent (None when missing or expired now).

        For a read whose offloaded object went missing: a writer may have replaced or
        deleted the item meanwhile (`aiodynkv._pipeline.Pipeline.open`).
        """
        config = self._core.config
        request = requests.get(config, stored, consistent=True)
        item: Item | None = (await self._core.send(op, "GetItem", request, key)).get("Item")
        try:
            expired = item is not None and is_expired(item, config, now())
        except CorruptItemError as exc:
            raise self._corrupt(op.name, key, exc.reason or str(exc)) from None
        return None if expired else item

    def _value(self, item: Item, key: str, operation: str) -> Value:
        try:
            return decode_value(item, self.config)
        except CorruptItemError as exc:
            raise self._corrupt(operation, key, exc.reason or str(exc)) from None
