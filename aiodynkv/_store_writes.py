"""`AsyncDynamoKV`'s single-key writes: set, delete, expire, persist, incr, set_counter.

Every write carries a fresh token and asks for the old item when its condition
fails, so a retried request that meets its own earlier write reports success
(`_old_item`, `_conflict_from`, `_mine`; the module docstring of
``aiodynkv._store`` tells the whole story).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from aiodynkv import _requests as requests
from aiodynkv._args import check_conditions, check_delta, check_version, ttl_seconds
from aiodynkv._batch import in_doubt
from aiodynkv._cache import writing
from aiodynkv._codec import (
    TOKEN,
    Item,
    build_item,
    expiry_ms_of,
    new_token,
    new_version,
    now,
    version_of,
)
from aiodynkv._errors import ConditionFailedError, KVError, KVValidationError
from aiodynkv._protocol import TTL
from aiodynkv._store_base import StoreParts
from aiodynkv._transport.base import ServiceError, WireError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aiodynkv._telemetry import Operation

__all__ = ["Writes"]

_INCR_RESETS = 5
_NOT_MINE = "the retry met an item this call did not write"


def _not_applied(error: KVError) -> bool:
    """True if the request that failed with `error` was definitely not applied.

    Only the transport knows: its error says whether any attempt may have reached
    the server and been applied. Anything else (no transport error) is not known.
    """
    cause = error.__cause__
    return isinstance(cause, (ServiceError, WireError)) and not cause.in_doubt


def _mine(item: Item | None, token: str) -> bool:
    """True if `item` was last written by the call holding `token`."""
    return item is not None and item.get(TOKEN) == {"S": token}


class Writes(StoreParts):
    """`AsyncDynamoKV`'s single-key writes, each exactly-once (see `aiodynkv._store`)."""

    __slots__ = ()

    async def _old_item(
        self, op: Operation, exc: ConditionFailedError, stored: str, key: str
    ) -> Item | None:
        """The item a failed condition met: returned by the server, else read (consistent)."""
        item: Item | None = getattr(exc.__cause__, "item", None)
        if item is None:
            request = requests.get(self._core.config, stored, consistent=True)
            item = (await self._core.send(op, "GetItem", request, key)).get("Item")
        return item

    async def _conflict_from(
        self, op: Operation, exc: ConditionFailedError, stored: str, key: str, token: str
    ) -> KVError | None:
        """None if the call's own earlier attempt applied; else the version conflict.

        After an attempt that may have been applied, an item that is not the call's own
        cannot tell whether that attempt was applied (and overwritten since) or not:
        that is a `WriteInDoubtError`, not a conflict.
        """
        old = await self._old_item(op, exc, stored, key)
        if token and _mine(old, token):
            return None
        if in_doubt(exc):
            doubt: KVError = self._core.in_doubt(op, exc, key, why=_NOT_MINE)
            return doubt
        live = self._live(op, old, key)
        current = None if live is None else version_of(live, self.config)
        return self._conflict(key, op.name, current, exc.reason)

    async def set(
        self,
        key: str,
        value: str | bytes,
        *,
        ttl: TTL | None = None,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> bool:
        """Store `value` at `key` (one UpdateItem, one write unit per KB).

        Args:
            key: The key.
            value: str or bytes; other types raise TypeError (use `set_json`).
            ttl: Seconds or a timedelta after which the key reads as missing; None
                stores it without expiry (removing an earlier one).
            if_absent: Write only if the key is missing or expired.
            if_version: Write only if the key's current version is this one.

        Returns:
            True if written; False only when `if_absent` found the key present.

        Raises:
            ConditionFailedError: `if_version` did not match (carries ``current_version``).
            ValueTooLargeError: The value exceeds ``max_value_bytes`` or the item 400 KB.
            TypeError: The value is not str or bytes.
        """
        core = self._core
        config, pipeline = core.config, core.pipeline
        stored = self._encode(key, "set")
        check_conditions(if_absent, if_version, "set")
        seconds = ttl_seconds(ttl, "set")
        at, token, base = now(), new_token(), new_version()
        expires_ms = expiry_ms_of(seconds, at)
        sized = not pipeline.writes  # else the pipeline checks the size after sealing
        item = build_item(
            config, stored, value, expires_ms, base, token, "set", key, check_size=sized
        )
        with (
            core.operation("set", "UpdateItem", key) as op,
            writing(core.cache, stored) as cache,
        ):
            if pipeline.writes:
                item = await pipeline.seal(item, stored, key, "set")
            request = requests.put(
                config,
                item,
                now=at,
                token=token,
                base=base,
                if_absent=if_absent,
                if_version=if_version,
                old=pipeline.bucket is not None,  # to delete the S3 object it pointed at
            )
            new = pipeline.pointer_of(item)

            async def drop_new() -> None:  # definitely not written: nothing points at it
                await pipeline.discard([new], "set")

            try:
                written, old = await self._send_put(
                    op, request, stored, key, token, if_absent, if_version, drop_new
                )
            except ConditionFailedError:
                await drop_new()
                raise
            if not written:
                await drop_new()
                return False
            if pipeline.pointer_of(old) != new:
                await pipeline.discard([pipeline.pointer_of(old)], "set")
            cache.done(stored, value, None if expires_ms is None else expires_ms / 1000.0)
            return True

    async def _send_put(
        self,
        op: Operation,
        request: dict[str, Any],
        stored: str,
        key: str,
        token: str,
        if_absent: bool,
        if_version: int | None,
        refused: Callable[[], Awaitable[None]],
    ) -> tuple[bool, Item | None]:
        """Send a `set`: whether it was written, and the old item when the server returned it.

        `refused` runs when the request failed and was definitely not applied.
        """
        try:
            response = await self._core.send(op, "UpdateItem", request, key)
        except ConditionFailedError as exc:
            if if_version is not None:
                conflict = await self._conflict_from(op, exc, stored, key, token)
                if conflict is not None:
                    raise conflict from exc.__cause__
            elif if_absent:
                if in_doubt(exc):
                    if _mine(await self._old_item(op, exc, stored, key), token):
                        return True, None
                    raise self._core.in_doubt(op, exc, key, why=_NOT_MINE) from exc.__cause__
                op.outcome = "condition_failed"
                return False, None
            # Unconditional: only our own earlier attempt can fail NOT_MINE.
            return True, None
        except KVError as exc:
            if _not_applied(exc):
                await refused()
            raise
        return True, response.get("Attributes")

    async def delete(self, key: str, *, if_version: int | None = None) -> bool:
        """Delete `key`; True if it existed (and had not expired). Never raises for a missing key.

        Args:
            key: The key.
            if_version: Delete only if the key's current version is this one.

        Raises:
            ConditionFailedError: `if_version` did not match (carries ``current_version``).
        """
        stored = self._encode(key, "delete")
        if if_version is not None:
            check_version(if_version, "delete")
        core = self._core
        # With `if_version`, a missing key passes the condition and comes back without an
        # old item: a retry after a lost reply then knows, without a read, that the key
        # is gone (the caller's version says it existed), and a first attempt that finds
        # it missing reports the conflict itself.
        request = requests.delete(
            core.config, stored, now=now(), if_version=if_version, absent_ok=True
        )
        with (
            core.operation("delete", "DeleteItem", key) as op,
            writing(core.cache, stored) as cache,
        ):
            try:
                response = await core.send(op, "DeleteItem", request, key)
            except ConditionFailedError as exc:
                conflict = await self._conflict_from(op, exc, stored, key, "")
                raise (conflict or exc) from exc.__cause__
            cache.done(stored, None)
            old = response.get("Attributes")
            await core.pipeline.discard([core.pipeline.pointer_of(old)], "delete")
            if self._live(op, old, key) is not None:
                return True
            if if_version is not None:
                if op.in_doubt:
                    return True  # our earlier attempt deleted the version the caller named
                raise self._conflict(key, "delete", None, None)
            if op.in_doubt:
                # Missing now: deleted by our earlier attempt, or missing all along.
                raise core.in_doubt(op, None, key, why="the retry found the key missing")
            return False

    async def _update_existing(self, key: str, operation: str, seconds: float | None) -> bool:
        """Give a present, unexpired key a new expiry (or none); False when absent."""
        config = self._core.config
        stored = self._encode(key, operation)
        at, token = now(), new_token()
        request = requests.update_existing(
            config, stored, expiry_ms_of(seconds, at), now=at, token=token, base=new_version()
        )
        with (
            self._core.operation(operation, "UpdateItem", key) as op,
            writing(self._core.cache, stored),
        ):
            try:
                await self._core.send(op, "UpdateItem", request, key)
            except ConditionFailedError as exc:
                if in_doubt(exc):
                    if _mine(await self._old_item(op, exc, stored, key), token):
                        return True
                    raise self._core.in_doubt(op, exc, key, why=_NOT_MINE) from exc.__cause__
                op.outcome = "miss"
                return False
            return True

    async def expire(self, key: str, ttl: TTL) -> bool:
        """Give an existing key a new expiry; False if it is missing or expired."""
        return await self._update_existing(key, "expire", ttl_seconds(ttl, "expire", required=True))

    async def persist(self, key: str) -> bool:
        """Remove the expiry of an existing key; False if it is missing or expired."""
        return await self._update_existing(key, "persist", None)

    def _counter(self, item: Item, key: str) -> int:
        value = self._value(item, key, "incr")
        if not isinstance(value, int):
            raise self._corrupt("incr", key, "the value is not a counter")
        return value

    async def incr(self, key: str, delta: int = 1, *, ttl: TTL | None = None) -> int:
        """Atomically add `delta` to the counter at `key` and return the new value.

        A missing or expired key starts from 0. Without `ttl` an existing expiry is
        kept. One UpdateItem (two when restarting an expired counter). A retried
        request never adds twice.

        Raises:
            WrongTypeError: The stored value is not a counter; nothing is changed.
            TypeError: `delta` is not an int.
        """
        config = self._core.config
        stored = self._encode(key, "incr")
        check_delta(delta, "incr")
        seconds = ttl_seconds(ttl, "incr")
        with (
            self._core.operation("incr", "UpdateItem", key) as op,
            writing(self._core.cache, stored),
        ):
            for _ in range(_INCR_RESETS):
                at, token, base = now(), new_token(), new_version()
                expires_ms = expiry_ms_of(seconds, at)
                try:
                    request = requests.incr(
                        config, stored, delta, expires_ms, now=at, token=token, base=base
                    )
                    response = await self._core.send(op, "UpdateItem", request, key)
                    return self._counter(response["Attributes"], key)
                except ConditionFailedError as exc:  # expired, or our own earlier attempt
                    if in_doubt(exc):
                        old = await self._old_item(op, exc, stored, key)
                        if _mine(old, token):
                            return self._counter(old or {}, key)
                except KVValidationError as exc:
                    raise self._wrong_type(key, exc.reason) from exc.__cause__
                try:
                    request = requests.incr_restart(
                        config, stored, delta, expires_ms, now=at, token=token, base=base
                    )
                    await self._core.send(op, "UpdateItem", request, key)
                except ConditionFailedError as exc:  # restarted by another, or by us
                    old = await self._old_item(op, exc, stored, key) if in_doubt(exc) else None
                    if _mine(old, token):
                        return self._counter(old or {}, key)
                    continue
                return delta
            raise KVError(  # pragma: no cover - needs five lost races in a row
                "incr: the key kept expiring under contention",
                operation="incr",
                table=config.table,
                key=key,
            )

    async def set_counter(self, key: str, number: int, *, ttl: TTL | None = None) -> None:
        """Make `key` a counter holding `number`, in one atomic write (for imports, resets).

        Raises:
            TypeError: `number` is not an int.
        """
        config = self._core.config
        stored = self._encode(key, "set_counter")
        check_delta(number, "set_counter", "number")
        seconds = ttl_seconds(ttl, "set_counter")
        at, token = now(), new_token()
        request = requests.set_counter(
            config,
            stored,
            number,
            expiry_ms_of(seconds, at),
            now=at,
            token=token,
            base=new_version(),
        )
        # Only the call's own earlier attempt can fail NOT_MINE: that is success.
        with (
            self._core.operation("set_counter", "UpdateItem", key) as op,
            writing(self._core.cache, stored),
            contextlib.suppress(ConditionFailedError),
        ):
            await self._core.send(op, "UpdateItem", request, key)
