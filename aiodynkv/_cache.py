"""The near cache: recent `get` answers kept in process memory for up to ``local_cache_ttl``.

An LRU bounded by entries (``local_cache_items``) and memory (``local_cache_bytes``,
by `sys.getsizeof`) of values and "missing" answers (``local_cache_miss_ttl``), keyed
by the stored key (namespace views share it); an entry never outlives the item's expiry.

Each write through the store bumps a sequence number when it begins and ends. A read
may fill the cache only if no write to its key began since it asked the server
(`NearCache.ticket`), so a slow read never puts back a value older than this store's
write. A write that ends with a known value (``set``, ``delete``) leaves it cached
unless another write to the key began meanwhile; any other write drops the entry.
Writes by other processes are not seen: the TTL bounds their staleness.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from aiodynkv import _codec

if TYPE_CHECKING:
    from aiodynkv._codec import Item
    from aiodynkv._config import KVConfig
    from aiodynkv._protocol import Value
    from aiodynkv._telemetry import Operation

__all__ = [
    "NearCache",
    "PendingWrites",
    "fill_many",
    "read_many_through",
    "read_through",
    "writing",
]

_ENTRY_OVERHEAD = 120  # bytes of bookkeeping per entry (the entry object and its slot)


class _Entry:
    __slots__ = ("deadline", "size", "value")

    def __init__(self, value: Value | None, deadline: float, size: int) -> None:
        self.value = value
        self.deadline = deadline
        self.size = size


def _size(stored: str, value: Value | None) -> int:
    return _ENTRY_OVERHEAD + sys.getsizeof(stored) + (0 if value is None else sys.getsizeof(value))


class NearCache:
    """An LRU of get answers (values and misses) with exact expiry and write sequencing."""

    __slots__ = (
        "_bytes",
        "_entries",
        "_floor",
        "_last",
        "_seq",
        "hits",
        "max_bytes",
        "max_items",
        "miss_ttl",
        "misses",
        "ttl",
    )

    def __init__(self, max_items: int, max_bytes: int, ttl: float, miss_ttl: float) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.miss_ttl = min(miss_ttl, ttl)
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._seq = 0
        # Sequence number of the last write that touched each recently written key; for
        # keys forgotten here, `_floor` (the largest forgotten one) stands in.
        self._last: OrderedDict[str, int] = OrderedDict()
        self._floor = 0

    @classmethod
    def from_config(cls, config: KVConfig) -> NearCache | None:
        """The cache a config asks for, or None when ``local_cache_items`` is 0."""
        if not config.local_cache_items:
            return None
        return cls(
            config.local_cache_items,
            config.local_cache_bytes,
            config.local_cache_ttl,
            config.local_cache_miss_ttl,
        )

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes accounted to the entries held."""
        return self._bytes

    # -- reads -------------------------------------------------------------------

    def lookup(self, stored: str) -> tuple[bool, Value | None]:
        """``(True, value)`` for a fresh entry (None: known missing), else ``(False, None)``."""
        entry = self._entries.get(stored)
        if entry is None:
            self.misses += 1
            return False, None
        if entry.deadline <= _codec.now():
            self._drop(stored)
            self.misses += 1
            return False, None
        self._entries.move_to_end(stored)
        self.hits += 1
        return True, entry.value

    def ticket(self) -> int:
        """Take before asking the server; `fill` needs it."""
        return self._seq

    def fill(self, stored: str, value: Value | None, expires_at: float | None, ticket: int) -> None:
        """Remember a server answer unless a write to the key began after `ticket`."""
        if ticket >= self._last.get(stored, self._floor):
            self._put(stored, value, expires_at)

    # -- writes ------------------------------------------------------------------

    def _bump(self, stored: str) -> int:
        self._seq += 1
        self._last[stored] = self._seq
        self._last.move_to_end(stored)
        while len(self._last) > max(1024, self.max_items):
            _, seq = self._last.popitem(last=False)
            self._floor = max(self._floor, seq)
        return self._seq

    def begin_write(self, stored: str) -> int:
        """A write to `stored` starts: drop the entry, refuse older reads' fills."""
        self._drop(stored)
        return self._bump(stored)

    def end_write(
        self, stored: str, ticket: int, value: Value | None, expires: float | None, *, known: bool
    ) -> None:
        """A write ended: keep its outcome (`known`) unless another write began meanwhile."""
        latest = self._last.get(stored) == ticket
        self._bump(stored)
        if known and latest:
            self._put(stored, value, expires)
        else:
            self._drop(stored)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()
        self._bytes = 0
        self._floor = self._seq = self._seq + 1

    # -- storage -----------------------------------------------------------------

    def _put(self, stored: str, value: Value | None, expires_at: float | None) -> None:
        at = _codec.now()
        deadline = at + (self.miss_ttl if value is None else self.ttl)
        if expires_at is not None:
            deadline = min(deadline, expires_at)
        size = _size(stored, value)
        self._drop(stored)
        if deadline <= at or size > self.max_bytes:
            return
        self._entries[stored] = _Entry(value, deadline, size)
        self._bytes += size
        while len(self._entries) > self.max_items or self._bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self._bytes -= old.size

    def _drop(self, stored: str) -> None:
        old = self._entries.pop(stored, None)
        if old is not None:
            self._bytes -= old.size


# -- how the stores use it ------------------------------------------------------------

Fetch = Callable[[], Awaitable[tuple["Value | None", "float | None"]]]


async def read_through(
    cache: NearCache | None, op: Operation, stored: str, consistent: bool, fetch: Fetch
) -> Value | None:
    """The value at `stored`: from the cache, else from `fetch` (value, exact expiry) and kept.

    `consistent` bypasses the cache and refreshes it; `op` gets the span attribute and counts.
    """
    if cache is None:
        return (await fetch())[0]
    if consistent:
        op.cache = "bypass"
    else:
        found, value = cache.lookup(stored)
        if found:
            op.cache, op.cache_hits = "hit", 1
            op.outcome = "miss" if value is None else "hit"
            return value
        op.cache, op.cache_misses = "miss", 1
    ticket = cache.ticket()
    value, expires_at = await fetch()
    cache.fill(stored, value, expires_at, ticket)
    return value


def read_many_through(
    cache: NearCache | None, op: Operation, stored: Iterable[str], consistent: bool
) -> tuple[dict[str, Value | None], list[str], int]:
    """Split a batch: answers the cache holds (value None: known missing), keys to read, ticket."""
    keys = list(stored)
    if cache is None:
        return {}, keys, 0
    if consistent:
        op.cache = "bypass"
        return {}, keys, cache.ticket()
    held: dict[str, Value | None] = {}
    wanted: list[str] = []
    for pk in keys:
        found, value = cache.lookup(pk)
        if found:
            held[pk] = value
        else:
            wanted.append(pk)
    op.cache_hits, op.cache_misses = len(held), len(wanted)
    op.cache = "hit" if not wanted else ("miss" if not held else "partial")
    return held, wanted, cache.ticket()


class PendingWrites:
    """Writes under way to some keys, as the near cache sees them; `done` records what they left."""

    __slots__ = ("_cache", "_outcome", "_tickets")

    def __init__(self, cache: NearCache | None, stored: Iterable[str]) -> None:
        self._cache = cache
        self._tickets = {} if cache is None else {pk: cache.begin_write(pk) for pk in stored}
        self._outcome: dict[str, tuple[Value | None, float | None]] = {}

    @property
    def kept(self) -> bool:
        """True when there is a near cache to record outcomes in (else `done` does nothing)."""
        return self._cache is not None

    def done(self, stored: str, value: object, expires_at: float | None = None) -> None:
        """The write to `stored` left `value` (None: missing), kept as `get` returns it."""
        if self._cache is None:
            return
        kept: Value | None
        if isinstance(value, (bytes, bytearray, memoryview)):
            kept = bytes(value)
        elif isinstance(value, str):
            kept = str(value)
        else:
            kept = value if isinstance(value, int) else None
        self._outcome[stored] = (kept, expires_at)

    def __enter__(self) -> PendingWrites:
        return self

    def __exit__(self, *_: object) -> None:
        self.finish()

    def finish(self) -> None:
        cache = self._cache
        if cache is None:
            return
        for pk, ticket in self._tickets.items():
            outcome = self._outcome.get(pk)
            value, expires_at = outcome or (None, None)
            cache.end_write(pk, ticket, value, expires_at, known=outcome is not None)


def writing(cache: NearCache | None, *stored: str) -> PendingWrites:
    """Bracket writes to `stored` keys (`PendingWrites.done` records each one's outcome).

    Keys without one (failed, in doubt, result unknown) are dropped from the cache at the end.
    """
    return PendingWrites(cache, stored)


def fill_many(
    cache: NearCache | None,
    ticket: int,
    asked: Iterable[str],
    unprocessed: Iterable[str],
    users: Mapping[str, str],
    items: Mapping[str, Item],
    found: Mapping[str, Value],
    corrupt: Mapping[str, str],
    config: KVConfig,
) -> None:
    """Remember a batch read's answers: values found, and keys found missing or expired."""
    if cache is None:
        return
    left = set(unprocessed)
    for pk in asked:
        user = users[pk]
        if pk in left or user in corrupt:
            continue
        if user in found:
            cache.fill(pk, found[user], _codec.expiry_seconds(items[pk], config), ticket)
        else:
            cache.fill(pk, None, None, ticket)
