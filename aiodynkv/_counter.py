"""Sharded counters for hot keys (DynamoDB serves ~1,000 writes/s per partition).

Each shard is a plain counter in the reserved key space (`aiodynkv._keys`), hidden from
every namespace's ``keys()``, ``items()`` and ``clear()``; a counter read or deleted
with fewer shards than it was written with misses the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aiodynkv._errors import KVError, rekey
from aiodynkv._keys import COUNTER, check_delta, hidden_view, invalid_value, ttl_seconds

if TYPE_CHECKING:
    from aiodynkv._protocol import TTL
    from aiodynkv._store import AsyncDynamoKV

__all__ = ["MAX_SHARDS", "ShardedCounter"]

MAX_SHARDS = 1000


class ShardedCounter:
    """A counter spread over `shards` items; see ``kv.counter``.

    Args:
        store: The store (or namespace view).
        name: The counter's name, a key of the store's namespace (its own key space:
            it never collides with a stored value of the same name).
        shards: How many items to spread increments over (1 to 1,000).

    Attributes:
        name: The counter's name.
        shards: The number of shards.

    Raises:
        InvalidKeyError: `name` is not a valid key.
        TypeError: `shards` is not an int.
        KVValidationError: `shards` is out of range.
    """

    __slots__ = ("_keys", "_view", "name", "shards")

    def __init__(self, store: AsyncDynamoKV, name: str, *, shards: int = 32) -> None:
        if isinstance(shards, bool) or not isinstance(shards, int):
            raise TypeError(f"counter: shards must be an int, not {type(shards).__name__}")
        if not 1 <= shards <= MAX_SHARDS:
            raise invalid_value("counter", f"shards must be 1 to {MAX_SHARDS} (got {shards})")
        self._view: Any = hidden_view(store, COUNTER, name, "counter")
        self.name = name
        self.shards = shards
        self._keys = [str(index) for index in range(shards)]

    def __repr__(self) -> str:
        return f"<ShardedCounter shards={self.shards}>"

    @contextlib.contextmanager
    def _about(self, operation: str) -> Iterator[None]:
        """A shard operation's error becomes the counter's (its name, not the shard's)."""
        try:
            yield
        except KVError as exc:
            raise rekey(exc, operation, self.name) from exc

    async def incr(self, delta: int = 1, *, ttl: TTL | None = None) -> None:
        """Add `delta` to a shard chosen at random (one UpdateItem, never applied twice).

        Args:
            delta: The increment (negative to decrement).
            ttl: Give that shard this expiry (as ``kv.incr``); an expired shard counts 0.
                Pass the same TTL on every increment to let the whole counter expire.

        Raises:
            TypeError: `delta` is not an int.
            WrongTypeError: The shard holds something that is not a counter.
        """
        check_delta(delta, "counter.incr")
        ttl_seconds(ttl, "counter.incr")
        shard = self._keys[random.randrange(self.shards)]  # noqa: S311 (spread, not secrets)
        with self._about("counter.incr"):
            await self._view.incr(shard, delta, ttl=ttl)

    async def value(self) -> int:
        """The sum of every shard (one BatchGetItem per 100 shards; missing ones count 0).

        The shards are read together but not as a snapshot: increments landing during
        the read may or may not be counted.

        Raises:
            BatchIncompleteError: Some shards could not be read in time.
            CorruptItemError: A shard holds something that is not a counter.
        """
        with self._about("counter.value"):
            values = await self._view.get_many(self._keys)
        total = 0
        for shard, number in values.items():
            if not isinstance(number, int):
                raise self._view._corrupt(
                    "counter.value", self.name, f"shard {shard} is not a counter"
                )
            total += number
        return total

    async def reset(self, *, ttl: TTL | None = None) -> None:
        """Set every shard to 0, concurrently (each shard atomically, not all at one instant).

        Raises:
            KVError: A shard could not be written (the others were).
        """
        ttl_seconds(ttl, "counter.reset")
        results = await asyncio.gather(
            *(self._view.set_counter(shard, 0, ttl=ttl) for shard in self._keys),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                with self._about("counter.reset"):
                    raise result

    async def delete(self) -> None:
        """Delete every shard (BatchWriteItem, 25 per request); the value reads 0 after.

        Raises:
            BatchIncompleteError: Some shards were not deleted (see its sets).
        """
        with self._about("counter.delete"):
            await self._view.delete_many(self._keys)
