"""`InMemoryKV`'s single-key writes, with `AsyncDynamoKV`'s conditions and versions."""

from __future__ import annotations

import asyncio

from aiodynkv._args import check_conditions, check_delta, check_version, ttl_seconds
from aiodynkv._cache import writing
from aiodynkv._codec import MAX_COUNTER, Item, build_item, expiry_ms_of, new_token, now
from aiodynkv._errors import KVError, KVValidationError
from aiodynkv._protocol import TTL
from aiodynkv.testing._memory_base import MemoryParts

__all__ = ["MemoryWrites"]


class MemoryWrites(MemoryParts):
    """set, delete, expire, persist, incr, set_counter on the dict."""

    __slots__ = ()

    async def set(
        self,
        key: str,
        value: str | bytes,
        *,
        ttl: TTL | None = None,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> bool:
        """See `AsyncDynamoKV.set`."""
        stored = self._keys.encode(key, "set", self.config.table)
        check_conditions(if_absent, if_version, "set")
        seconds = ttl_seconds(ttl, "set")
        at = now()
        expires_ms = expiry_ms_of(seconds, at)
        pipeline = self._core.pipeline
        item = build_item(
            self.config,
            stored,
            value,
            expires_ms,
            0,
            new_token(),
            "set",
            key,
            check_size=not pipeline.writes,
        )
        self._check("set")
        with writing(self._core.cache, stored) as cache:
            if pipeline.writes:
                item = await pipeline.seal(item, stored, key, "set")
            await asyncio.sleep(0)
            try:
                live = self._live(stored, key, "set")
                current = self._version(live, key, "set")
                bumped = self._next_version(stored, key, "set")
            except KVError:  # nothing written (a damaged item is there): its new object goes
                await pipeline.discard([pipeline.pointer_of(item)], "set")
                raise
            mismatch = if_version is not None and current != if_version
            if (if_absent and live is not None) or mismatch:
                await pipeline.discard([pipeline.pointer_of(item)], "set")
                if not mismatch:
                    return False
                raise self._conflict(key, "set", current, None)
            item[self.config.version_attribute] = {"N": str(bumped)}
            old = self._core.items.get(stored)
            self._core.items[stored] = item
            await pipeline.discard([pipeline.pointer_of(old)], "set")
            cache.done(stored, value, None if expires_ms is None else expires_ms / 1000.0)
            return True

    async def delete(self, key: str, *, if_version: int | None = None) -> bool:
        """See `AsyncDynamoKV.delete`."""
        stored = self._stored(key, "delete")
        if if_version is not None:
            check_version(if_version, "delete")
        with writing(self._core.cache, stored) as cache:
            await asyncio.sleep(0)
            live = self._live(stored, key, "delete")
            if if_version is not None:
                current = self._version(live, key, "delete")
                if current != if_version:
                    raise self._conflict(key, "delete", current, None)
            old = self._core.items.pop(stored, None)
            cache.done(stored, None)
            await self._core.pipeline.discard([self._core.pipeline.pointer_of(old)], "delete")
            return live is not None

    async def _update_existing(self, key: str, operation: str, seconds: float | None) -> bool:
        stored = self._stored(key, operation)
        await asyncio.sleep(0)
        self._invalidate(stored)
        live = self._live(stored, key, operation)
        if live is None:
            return False
        self._expire_parts(live, expiry_ms_of(seconds, now()))
        live[self.config.version_attribute] = {"N": str(self._next_version(stored, key, operation))}
        return True

    async def expire(self, key: str, ttl: TTL) -> bool:
        """See `AsyncDynamoKV.expire`."""
        return await self._update_existing(key, "expire", ttl_seconds(ttl, "expire", required=True))

    async def persist(self, key: str) -> bool:
        """See `AsyncDynamoKV.persist`."""
        return await self._update_existing(key, "persist", None)

    async def incr(self, key: str, delta: int = 1, *, ttl: TTL | None = None) -> int:
        """See `AsyncDynamoKV.incr`."""
        stored = self._stored(key, "incr")
        check_delta(delta, "incr")
        seconds = ttl_seconds(ttl, "incr")
        await asyncio.sleep(0)
        self._invalidate(stored)
        config = self.config
        live = self._live(stored, key, "incr")
        if live is None:
            total = delta
            item: Item = {config.partition_key: {"S": stored}}
        else:
            current = live.get(config.value_attribute)
            if not isinstance(current, dict) or "N" not in current:
                raise self._wrong_type(
                    key,
                    "ValidationException: An operand in the update expression has an "
                    "incorrect data type",
                )
            number = self._value(live, key, "incr")
            if not isinstance(number, int):  # pragma: no cover - decode_value gives int for N
                raise self._corrupt("incr", key, "the value is not a counter")
            total = number + delta
            item = dict(live)
        if abs(total) > MAX_COUNTER:
            raise KVValidationError(
                "incr: the counter would exceed DynamoDB's 38 digits",
                operation="incr",
                table=config.table,
                key=key,
            )
        version = self._next_version(stored, key, "incr")
        if live is None:
            self._expire_parts(item, None)  # an expired counter restarts without expiry
        if seconds is not None:
            self._expire_parts(item, expiry_ms_of(seconds, now()))
        item[config.value_attribute] = {"N": str(total)}
        item[config.version_attribute] = {"N": str(version)}
        self._core.items[stored] = item
        return total

    async def set_counter(self, key: str, number: int, *, ttl: TTL | None = None) -> None:
        """See `AsyncDynamoKV.set_counter`."""
        stored = self._stored(key, "set_counter")
        check_delta(number, "set_counter", "number")
        seconds = ttl_seconds(ttl, "set_counter")
        await asyncio.sleep(0)
        self._invalidate(stored)
        config = self.config
        item: Item = {
            config.partition_key: {"S": stored},
            config.value_attribute: {"N": str(number)},
            config.version_attribute: {"N": str(self._next_version(stored, key, "set_counter"))},
        }
        self._expire_parts(item, expiry_ms_of(seconds, now()))
        self._core.items[stored] = item
