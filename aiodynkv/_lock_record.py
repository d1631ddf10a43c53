"""The lock item and the requests on it (see `aiodynkv._lock`).

A lock item lives in the reserved key space (see `aiodynkv._reserved`) and holds
the holder's owner token, its lease in ms, a fencing counter, and the item's
version, the record version number waiters watch. `DynamoOps` gives `Lock` its
three writes (acquire, renew, release).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiodynkv import _requests as requests
from aiodynkv._codec import Item, new_token, new_version, version_of
from aiodynkv._errors import ConditionFailedError, KVValidationError
from aiodynkv._requests_lock import (
    LOCK_FENCE,
    LOCK_LEASE,
    LOCK_OWNER,
    lock_acquire,
    lock_release,
    lock_renew,
)

if TYPE_CHECKING:
    from aiodynkv._base import BaseStore
    from aiodynkv._config import KVConfig

__all__ = [
    "MAX_LEASE",
    "MIN_LEASE",
    "DynamoOps",
    "Seen",
    "ops_for",
    "seconds",
    "seen_in",
    "wait_of",
]

MIN_LEASE = 0.1
MAX_LEASE = 24 * 3600.0


def seconds(value: object, name: str, *, low: float, high: float, low_open: bool) -> float:
    """A duration argument, validated (TypeError for the type, KVValidationError for the value)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"lock: {name} must be seconds (int or float), not {type(value).__name__}")
    seconds = float(value)
    too_low = seconds <= low if low_open else seconds < low
    if not math.isfinite(seconds) or too_low or seconds > high:
        bound = f"> {low}" if low_open else f">= {low}"
        raise KVValidationError(
            f"lock: {name} must be {bound} and <= {high} seconds (got {value!r})",
            operation="lock",
        )
    return seconds


def wait_of(wait: object) -> float | None:
    return None if wait is None else seconds(wait, "wait", low=0.0, high=math.inf, low_open=False)


@dataclass(frozen=True)
class Seen:
    """What one acquire attempt found: the token if it won, else the holder's state."""

    fence: int | None = None
    version: int | None = None
    lease: float | None = None
    owned: bool = False


def seen_in(item: Item | None, owner: str, config: KVConfig) -> Seen:
    if not item:
        return Seen()
    holder = item.get(LOCK_OWNER)
    if holder == {"S": owner}:
        return Seen(fence=int(item[LOCK_FENCE]["N"]))
    lease = item.get(LOCK_LEASE)
    return Seen(
        version=version_of(item, config),
        lease=float(lease["N"]) / 1000.0 if lease else None,
        owned=holder is not None,
    )


class DynamoOps:
    """The lock requests on DynamoDB, each a traced store operation."""

    def __init__(self, store: Any) -> None:
        self.core = store._core

    def event(self, level: str, event: str, name: str, **fields: Any) -> None:
        tel = self.core.tel
        if tel.expose_keys:
            fields["lock"] = name
        fields["table"] = self.core.config.table
        if level == "warning":
            tel.warn(event, **fields)
        else:
            tel.debug(event, **fields)

    async def _old(self, op: Any, exc: ConditionFailedError, stored: str, name: str) -> Item | None:
        item: Item | None = getattr(exc.__cause__, "item", None)
        if item is None:  # dynalite does not return the old item: read it (consistent)
            request = requests.get(self.core.config, stored, consistent=True)
            item = (await self.core.send(op, "GetItem", request, name)).get("Item")
        return item

    async def acquire(
        self, stored: str, name: str, owner: str, lease_ms: int, seen: int | None
    ) -> Seen:
        core = self.core
        request = lock_acquire(
            core.config,
            stored,
            owner=owner,
            lease_ms=lease_ms,
            seen=seen,
            token=new_token(),
            base=new_version(),
        )
        with core.operation("lock_acquire", "UpdateItem", name) as op:
            try:
                response = await core.send(op, "UpdateItem", request, name)
            except ConditionFailedError as exc:
                found = seen_in(await self._old(op, exc, stored, name), owner, core.config)
                op.outcome = "acquired" if found.fence is not None else "condition_failed"
                return found
            op.outcome = "acquired"
            return seen_in(response.get("Attributes"), owner, core.config)

    async def renew(self, stored: str, name: str, owner: str, lease_ms: int) -> bool:
        core = self.core
        request = lock_renew(
            core.config, stored, owner=owner, lease_ms=lease_ms, token=new_token(), base=0
        )
        return await self._owned_write("lock_renew", request, stored, name, owner)

    async def release(self, stored: str, name: str, owner: str) -> bool:
        core = self.core
        request = lock_release(core.config, stored, owner=owner, token=new_token(), base=0)
        return await self._owned_write("lock_release", request, stored, name, owner)

    async def _owned_write(
        self, operation: str, request: dict[str, Any], stored: str, name: str, owner: str
    ) -> bool:
        """Send a write conditional on `owner`; False when another owner (or none) holds it."""
        core = self.core
        with core.operation(operation, "UpdateItem", name) as op:
            try:
                await core.send(op, "UpdateItem", request, name)
            except ConditionFailedError as exc:
                if getattr(exc.__cause__, "in_doubt", False) and operation == "lock_release":
                    # Our earlier attempt released it. (Had the lease been taken over before,
                    # the holder would have seen it lapse first: `release` checks that.)
                    return True
                old = await self._old(op, exc, stored, name)
                op.outcome = "condition_failed"
                return old is not None and old.get(LOCK_OWNER) == {"S": owner}
            return True


def ops_for(store: BaseStore) -> DynamoOps:
    return DynamoOps(store)
