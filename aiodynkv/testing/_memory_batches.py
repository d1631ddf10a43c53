"""`InMemoryKV`'s batches and listing, with `AsyncDynamoKV`'s steps around them."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiodynkv._args import key_list, pair_of, ttl_seconds
from aiodynkv._base import StoredItem
from aiodynkv._cache import fill_many, read_many_through, writing
from aiodynkv._codec import (
    Item,
    build_item,
    decode_many,
    decode_value,
    expiry_ms_of,
    expiry_seconds,
    is_expired,
    new_token,
    new_version,
    now,
    stored_many,
    version_of,
)
from aiodynkv._errors import CorruptItemError
from aiodynkv._pipeline import BatchWrites
from aiodynkv._protocol import TTL, Value
from aiodynkv.testing._memory_base import MemoryParts

__all__ = ["MemoryBatches"]


class MemoryBatches(MemoryParts):
    """get_many, set_many, delete_many, and the scans behind `keys` and `items`."""

    __slots__ = ()

    async def get_many(
        self, keys: Iterable[str], *, snapshot: bool = False, consistent: bool = False
    ) -> dict[str, Value]:
        """See `AsyncDynamoKV.get_many`."""
        if snapshot:
            from aiodynkv._transaction import snapshot_get

            return await snapshot_get(self, keys)
        wanted = {
            self._keys.encode(k, "get_many", self.config.table): k
            for k in key_list(keys, "get_many")
        }
        self._check("get_many")
        await asyncio.sleep(0)
        cache = self._core.cache
        held, ask, ticket = read_many_through(cache, None, wanted, consistent)
        items = self._core.items
        raw = {pk: items[pk] for pk in ask if pk in items}
        opened, unreadable = await self._core.pipeline.open_many(
            raw, wanted, "get_many", lambda pk: self._read_again(pk, wanted[pk], "get_many")
        )
        pairs = ((wanted[pk], item) for pk, item in opened.items())
        out, corrupt = decode_many(pairs, self.config, now())
        corrupt.update(unreadable)
        fill_many(cache, ticket, ask, (), wanted, opened, out, corrupt, self.config)
        out.update({wanted[pk]: value for pk, value in held.items() if value is not None})
        if corrupt:
            raise self._corrupt_many(out, corrupt, len(wanted))
        return out

    async def _stored_many(self, keys: Iterable[str]) -> dict[str, StoredItem]:
        """See `AsyncDynamoKV._stored_many`."""
        wanted = {
            self._keys.encode(k, "get_many", self.config.table): k
            for k in key_list(keys, "get_many")
        }
        self._check("get_many")
        await asyncio.sleep(0)
        items = self._core.items
        raw = {pk: items[pk] for pk in wanted if pk in items}
        opened, unreadable = await self._core.pipeline.open_many(raw, wanted, "get_many")
        pairs = ((wanted[pk], item) for pk, item in opened.items())
        found, corrupt = stored_many(pairs, self.config, now())
        corrupt.update(unreadable)
        if corrupt:
            values = {key: stored.value for key, stored in found.items()}
            raise self._corrupt_many(values, corrupt, len(wanted))
        return found

    async def set_many(
        self,
        items: Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]],
        *,
        ttl: TTL | None = None,
    ) -> None:
        """See `AsyncDynamoKV.set_many`."""
        seconds = ttl_seconds(ttl, "set_many")
        expires_ms = expiry_ms_of(seconds, now())
        token = new_token()
        staged: dict[str, Item] = {}
        users: dict[str, tuple[str, Any]] = {}
        sized = not self._core.pipeline.writes  # else the pipeline checks after sealing
        for pair in items.items() if isinstance(items, Mapping) else items:
            key, value = pair_of(pair)
            stored = self._keys.encode(key, "set_many", self.config.table)
            staged[stored] = build_item(
                self.config,
                stored,
                value,
                expires_ms,
                new_version(),
                token,
                "set_many",
                key,
                check_size=sized,
            )
            users[stored] = (key, value)
        self._check("set_many")
        expires_at = None if expires_ms is None else expires_ms / 1000.0
        entries = {pk: {"PutRequest": {"Item": item}} for pk, item in staged.items()}
        await self._write_many("set_many", entries, users, expires_at)

    async def _old_items(self, _op: object, stored: list[str]) -> dict[str, Item]:
        await asyncio.sleep(0)
        return {pk: self._core.items[pk] for pk in stored if pk in self._core.items}

    async def _write_many(
        self,
        operation: str,
        entries: dict[str, dict[str, Any]],
        users: dict[str, tuple[str, Any]],
        expires_at: float | None = None,
    ) -> None:
        """Apply a batch with `AsyncDynamoKV`'s steps around it (`BatchWrites`)."""
        with writing(self._core.cache, *entries) as cache:
            hooks = BatchWrites(
                self._core.pipeline, cache, operation, users, expires_at, self._old_items
            )
            await hooks.before(None, entries)
            await asyncio.sleep(0)
            for pk, entry in entries.items():
                if "PutRequest" in entry:
                    self._core.items[pk] = entry["PutRequest"]["Item"]
                else:
                    self._core.items.pop(pk, None)
            await hooks.after(entries, (), ())

    async def delete_many(self, keys: Iterable[str]) -> int:
        """See `AsyncDynamoKV.delete_many`."""
        stored = {
            self._keys.encode(k, "delete_many", self.config.table): None
            for k in key_list(keys, "delete_many")
        }
        self._check("delete_many")
        if not stored:
            return 0
        await asyncio.sleep(0)
        pipeline = self._core.pipeline
        count = 0
        old: list[Item] = []
        with writing(self._core.cache, *stored) as cache:
            for pk in stored:
                item = self._core.items.pop(pk, None)
                cache.done(pk, None)
                if item is None:
                    continue
                old.append(item)
                try:
                    count += not is_expired(item, self.config, now())
                except CorruptItemError:
                    count += 1  # an unreadable expiry: it was there
            pointers = [pipeline.pointer_of(item) for item in old]
            if any(pointers):
                await pipeline.discard(pointers, "delete_many")
        return count

    async def _delete_batch(self, keys: Iterable[str]) -> None:
        """Delete keys as one batch, counting nothing (for `clear`)."""
        stored = [
            self._keys.encode(k, "delete_many", self.config.table)
            for k in key_list(keys, "delete_many")
        ]
        self._check("delete_many")
        entries: dict[str, dict[str, Any]] = {pk: {"DeleteRequest": {}} for pk in stored}
        await self._write_many("delete_many", entries, {pk: (pk, None) for pk in stored})

    # -- listing -----------------------------------------------------------------

    async def _scan(self, prefix: str, *, expired: bool) -> AsyncIterator[str]:
        self._check("keys")
        for stored in list(self._core.items):
            user = self._keys.decode(stored)
            if user is None or not user.startswith(prefix):
                continue
            if expired or self._live(stored, user, "keys") is not None:
                yield user
        await asyncio.sleep(0)

    async def items(self, prefix: str | None = None) -> AsyncIterator[StoredItem]:
        """See `AsyncDynamoKV.items`."""
        if prefix is not None and not isinstance(prefix, str):
            raise TypeError(f"items: prefix must be a str, not {type(prefix).__name__}")
        async for user in self._scan(prefix or "", expired=False):
            item = self._core.items.get(self._keys.prefix + user)
            if item is None:  # pragma: no cover - deleted while iterating
                continue
            stored = self._keys.prefix + user
            item = await self._opened(
                item,
                stored,
                user,
                "items",
                functools.partial(self._read_again, stored, user, "items"),
            )
            if item is None:  # deleted while it was listed
                continue
            try:
                yield StoredItem(
                    user,
                    decode_value(item, self.config),
                    expiry_seconds(item, self.config),
                    version_of(item, self.config),
                )
            except CorruptItemError as exc:
                raise self._corrupt("items", user, exc.reason or "") from None
