"""Leases (distributed locks) with fencing tokens: ``async with kv.lock(name) as held``.

One lock item per name, in the reserved key space (`aiodynkv._keys`): the holder's
owner token, its lease in ms, a fencing counter, and the item's version, bumped by
every write: the record version number.

- **Acquire**: one conditional UpdateItem, taken when the lock is free, or (takeover)
  when its version is still the one this waiter has watched for a whole lease, on its
  own monotonic clock: a holder that renews changes the version, so no other
  machine's clock is needed. The same write bumps the fencing counter: the token.
- **Renewal** runs every ``renew_every`` (lease/3), one at a time. The holder believes
  only the last lease the server confirmed, counted from when that write was *sent*,
  so it never believes it holds longer than any waiter waits; a shorter lease counts
  from its sending, and a lease that has run out stays lost.
- **Losing it** (renewals failing for a whole lease, or another owner): `Lock.lost`
  turns True and leaving the block raises `LeaseLostError`; the body is not cancelled.
- **Release** is conditional on still owning it; the item stays, so the fencing
  counter keeps growing. A retried acquire that meets its own earlier write sees its
  owner token and wins with that write's token.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from aiodynkv import _requests as requests
from aiodynkv._codec import Item, new_token, new_version, version_of
from aiodynkv._errors import (
    ConditionFailedError,
    CorruptItemError,
    KVError,
    LeaseLostError,
    LockNotAcquiredError,
    StoreClosedError,
    WriteInDoubtError,
)
from aiodynkv._keys import LOCK, invalid_value, reserved_key
from aiodynkv._requests import LOCK_FENCE, LOCK_LEASE, LOCK_OWNER
from aiodynkv._retry import poll_delay

if TYPE_CHECKING:
    from aiodynkv._config import KVConfig
    from aiodynkv._store import AsyncDynamoKV as BaseStore

__all__ = ["Lock"]

_UNSET: Any = object()
_E = TypeVar("_E", bound=KVError)


MIN_LEASE = 0.1
MAX_LEASE = 24 * 3600.0


class Lock:
    """A lease on one name, renewed in the background while held; see ``kv.lock``.

    Use it as ``async with kv.lock("job") as held:`` or explicitly with `acquire`,
    `extend` and `release`. One `Lock` object holds at most one lease at a time; two
    objects (in one process or many) for the same name exclude each other.

    Args:
        store: The store (or namespace view) holding the lock item.
        name: The lock's name, a key of the store's namespace (its own key space:
            a lock never collides with a stored value of the same name).
        lease: Seconds the lease lasts without renewal (0.1 to 86,400). A holder that
            crashes frees the lock after about this long.
        wait: How long `acquire` tries: 0 is one try, None waits forever, a number is
            seconds. `acquire(wait=)` overrides it.
        renew_every: Seconds between renewals (default: lease / 3); less than `lease`.
        poll: The longest pause between two tries while waiting (default:
            min(1, lease / 4)); pauses grow from 20 ms with jitter up to it.

    Attributes:
        name: The lock's name.
        lease: The lease in seconds.

    Raises:
        InvalidKeyError: `name` is not a valid key.
        TypeError: A duration is not a number.
        KVValidationError: A duration is out of range.
    """

    __slots__ = (
        "_generation",
        "_lost",
        "_ops",
        "_owner",
        "_renew_every",
        "_renewer",
        "_renewing",
        "_store",
        "_token",
        "_valid_until",
        "lease",
        "name",
        "poll",
        "wait",
    )

    def __init__(
        self,
        store: BaseStore,
        name: str,
        *,
        lease: float = 10.0,
        wait: float | None = None,
        renew_every: float | None = None,
        poll: float | None = None,
    ) -> None:
        stored = reserved_key(store, LOCK, name, "lock")
        self.lease = seconds(lease, "lease", low=MIN_LEASE, low_open=False)
        self.wait = wait_of(wait)
        self._renew_every = optional_seconds(renew_every, "renew_every", high=self.lease)
        if self._renew_every is not None and self._renew_every >= self.lease:
            raise invalid_value("lock", "renew_every must be less than lease")
        self.poll = optional_seconds(poll, "poll") or min(1.0, self.lease / 4)
        self._store = store
        self._ops = DynamoOps(store, stored, name)
        self.name = name
        self._owner: str | None = None
        self._token: int | None = None
        self._lost = False
        self._valid_until = 0.0
        self._renewer: asyncio.Task[None] | None = None
        self._renewing = asyncio.Lock()  # one renewal in flight at a time
        self._generation = 0  # bumped to stop a renewal task, even one that missed its cancel

    def __repr__(self) -> str:
        state = "lost" if self.lost else "held" if self.held else "free"
        return f"<Lock lease={self.lease} token={self._token} {state}>"

    @property
    def token(self) -> int | None:
        """The fencing token of the last acquisition (None before the first).

        Strictly increasing across every acquisition of this name, by any process,
        takeovers included: pass it to whatever the lock protects, and have that
        refuse a token lower than one it has seen.
        """
        return self._token

    @property
    def renew_every(self) -> float:
        """Seconds between renewals."""
        return self._renew_every if self._renew_every is not None else self.lease / 3

    @property
    def held(self) -> bool:
        """True while this object holds the lease (acquired, not released, not lost)."""
        return self._owner is not None and not self.lost

    @property
    def lost(self) -> bool:
        """True once the held lease lapsed or was taken over (until the next acquire)."""
        if self._lost:
            return True
        return self._owner is not None and self._lapsed()

    def check(self) -> None:
        """Raise `LeaseLostError` if the lease lapsed or was taken over (call it between steps)."""
        if self.lost:
            raise self._lost_error("check")

    @property
    def _table(self) -> str:
        return self._store.config.table

    def _lost_error(self, operation: str) -> LeaseLostError:
        why = (
            f"the lease was lost (it lapsed or was taken over) in table {self._table!r}; work "
            f"done under it may have overlapped another holder's (token {self._token})"
        )
        return self._store._error(LeaseLostError, why, operation, self.name)

    def _plain_error(self, cls: type[_E], operation: str, why: str) -> _E:
        """An error whose message never shows the key (no request was sent, or none answered)."""
        return cls(f"{operation}: {why}", operation=operation, table=self._table, key=self.name)

    # -- acquire -------------------------------------------------------------------

    async def acquire(self, *, wait: float | None = _UNSET) -> int:
        """Take the lease, waiting as `wait` says; return the fencing token.

        Args:
            wait: Overrides the lock's `wait`: 0 is one try, None forever, else seconds.

        Returns:
            The fencing token (also `token`).

        Raises:
            LockNotAcquiredError: Not acquired within `wait`.
            KVError: Already held by this object, or a store failure.
        """
        limit = self.wait if wait is _UNSET else wait_of(wait)
        if self.held:
            raise self._plain_error(
                KVError, "lock", "this Lock already holds the lease; release it first"
            )
        owner = new_token() + new_token()
        lease_ms = math.ceil(self.lease * 1000.0)
        start = time.monotonic()
        deadline = None if limit is None else start + limit
        watched: tuple[int, float, float] | None = None  # version, first seen, its lease
        attempt = tries = 0
        while True:
            sent = time.monotonic()
            seen = watched[0] if watched is not None and sent >= watched[1] + watched[2] else None
            tries += 1
            try:
                found = await self._ops.acquire(owner, lease_ms, seen)
            except CorruptItemError as exc:
                raise self._store._corrupt("lock", self.name, exc.reason or str(exc)) from None
            if found.fence is not None:
                return self._won(owner, found.fence, sent, start, tries, takeover=seen is not None)
            now = time.monotonic()
            if not found.owned or found.version is None:
                watched, attempt = None, 0  # freed meanwhile: try again at once
            elif watched is None or watched[0] != found.version:
                # Counted from now, when the reply arrived: never before the holder wrote it.
                lease = found.lease if found.lease is not None else self.lease
                watched = (found.version, now, lease)
            if deadline is not None and now >= deadline:
                raise self._not_acquired(now - start, tries)
            pause = 0.0
            if watched is not None:
                pause = min(poll_delay(attempt, self.poll), max(0.0, watched[1] + watched[2] - now))
            if deadline is not None:
                pause = min(pause, deadline - now)
            attempt += 1
            await asyncio.sleep(pause)

    def _won(
        self, owner: str, fence: int, sent: float, start: float, tries: int, *, takeover: bool
    ) -> int:
        self._owner = owner
        self._token = fence
        self._lost = False
        self._valid_until = sent + self.lease
        self._start_renewer(owner)
        self._wait_event("acquired", round((time.monotonic() - start) * 1000.0, 3), tries)
        if takeover:
            self._ops.event("warning", "aiodynkv.lock_takeover", token=fence)
        return fence

    def _not_acquired(self, waited: float, tries: int) -> LockNotAcquiredError:
        waited_ms = round(waited * 1000.0, 3)
        self._wait_event("not_acquired", waited_ms, tries)
        why = f"not acquired within {waited:.3f} s ({tries} tries) in table {self._table!r}"
        return self._store._error(
            LockNotAcquiredError, f"{why}: another holder has it", "lock", self.name, waited=waited
        )

    def _wait_event(self, outcome: str, waited_ms: float, tries: int) -> None:
        self._ops.event(
            "debug", "aiodynkv.lock_wait", outcome=outcome, waited_ms=waited_ms, attempts=tries
        )

    async def extend(self, lease: float | None = None) -> None:
        """Renew the lease now, optionally with a new length (the background renewal follows).

        A shorter lease takes effect when the renewal is sent, even if it then fails:
        the server may have applied it.

        Raises:
            LeaseLostError: The lease was lost, or is not held by this object.
            WriteInDoubtError: The renewal may or may not have been applied.
            KVError: The renewal failed (the lease stays until it lapses).
        """
        new = optional_seconds(lease, "lease", low=MIN_LEASE, low_open=False)
        owner = self._owner
        if owner is None or self.lost:
            raise self._lost_error("extend")
        if new is not None and self._renew_every is not None and self._renew_every >= new:
            raise invalid_value("extend", "lease must be more than renew_every")
        async with self._renewing:  # after the renewal in flight, if any
            if self._owner != owner or self.lost:
                raise self._lost_error("extend")
            await self._stop_renewer()  # restarted below: the next renewal follows `lease`
            try:
                if new is not None:
                    self.lease = new
                renewed = await self._renew_once(owner)
            except asyncio.TimeoutError as exc:
                if isinstance(exc, KVError):  # KVTimeoutError is a TimeoutError too
                    raise
                if self.lost:
                    raise self._lost_error("extend") from None
                raise self._plain_error(
                    WriteInDoubtError,
                    "extend",
                    "the renewal did not answer in time: it may or may not have been "
                    "applied; the lease stays at least until it lapses",
                ) from None
            finally:
                if self._owner == owner and not self.lost:
                    self._start_renewer(owner)
        if not renewed:
            self._lose("taken over by another holder", 0)
        if self.lost:  # taken over, or confirmed only after the lease had run out
            raise self._lost_error("extend")

    # -- renewal: one at a time, believing only the lease the server confirmed ----

    def _lapsed(self) -> bool:
        """True (for good) once the confirmed lease has run out or was taken over."""
        if not self._lost and time.monotonic() >= self._valid_until:
            self._lost = True
        return self._lost

    async def _renew_once(self, owner: str) -> bool:
        """One renewal; True when renewed, False when another owner holds it.

        The caller holds `_renewing`: renewals never overlap, so the last one confirmed
        is the one the server holds.
        """
        sent = time.monotonic()
        lease = self.lease
        lease_ms = math.ceil(lease * 1000.0)
        # Sent, it may be applied whatever comes back: a shorter lease counts from now on.
        self._valid_until = min(self._valid_until, sent + lease)
        # One try lasts at most a third of a renewal period (and never past the lease):
        # the SDK's own retry backoff must not eat the time in which this loop could
        # send several fresh tries before the lease lapses.
        left = max(0.0, self._valid_until - sent)
        renewed = await asyncio.wait_for(
            self._ops.renew(owner, lease_ms), timeout=min(left, max(self.renew_every / 3, 0.05))
        )
        if renewed and not self._lapsed():
            self._valid_until = sent + lease
        return renewed

    async def _renew_loop(self, owner: str, generation: int) -> None:
        failures = 0
        while generation == self._generation:
            pause = self.renew_every
            if failures:
                pause = min(poll_delay(failures, self.poll), pause)
            await asyncio.sleep(min(pause, max(0.0, self._valid_until - time.monotonic())))
            if generation != self._generation:
                return
            if self._lapsed():
                self._lose("renewals failed for a whole lease", failures)
                return
            try:
                async with self._renewing:
                    if generation != self._generation:
                        return
                    renewed = await self._renew_once(owner)
            except StoreClosedError:
                self._lose("the store closed", failures)
                return
            except (KVError, asyncio.TimeoutError) as exc:  # throttled, 5xx, too slow...
                failures += 1  # try again while time is left
                if isinstance(exc, KVError):
                    error = type(exc).__name__
                    self._ops.event("debug", "aiodynkv.lock_renew_failed", error=error)
                continue
            if generation != self._generation:
                return
            if not renewed:
                self._lose("taken over by another holder", failures)
                return
            failures = 0

    def _lose(self, why: str, failures: int) -> None:
        self._lost = True
        self._ops.event(
            "warning", "aiodynkv.lock_lost", reason=why, token=self._token, failed_renewals=failures
        )

    def _start_renewer(self, owner: str) -> None:
        self._generation += 1
        self._renewer = asyncio.get_running_loop().create_task(
            self._renew_loop(owner, self._generation)
        )

    async def _stop_renewer(self) -> None:
        task, self._renewer = self._renewer, None
        self._generation += 1  # the loop ends at its next step even if a cancel is swallowed
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})

    # -- release ---------------------------------------------------------------------

    async def release(self) -> None:
        """Give the lease up (conditional on still owning it).

        Raises:
            LeaseLostError: The lease had been lost (lapsed or taken over).
            KVError: This object does not hold a lease, or the release request failed
                (then the lease lapses by itself after `lease` seconds).
        """
        owner = self._owner
        if owner is None:
            raise self._plain_error(KVError, "release", "this Lock does not hold the lease")
        was_lost = self.lost
        await self._stop_renewer()
        if was_lost:  # free it if nobody took it over (best effort), then say so
            with contextlib.suppress(KVError):
                await self._ops.release(owner)
            released = False
        else:
            released = await self._ops.release(owner)
        self._owner = None
        if not released:
            self._lost = True
            raise self._lost_error("release")

    async def __aenter__(self) -> Lock:
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._owner is None:  # released inside the block
            if self._lost:
                raise self._lost_error("lock")
            return
        try:
            await self.release()
        except LeaseLostError:
            raise
        except KVError as error:  # the lease lapses by itself; the work itself succeeded
            self._owner = None
            self._ops.event("warning", "aiodynkv.lock_release_failed", error=type(error).__name__)


# -- durations, the lock item and its requests --------------------------------------------


def seconds(
    value: object, name: str, *, low: float = 0.0, high: float = MAX_LEASE, low_open: bool = True
) -> float:
    """A duration argument, validated (TypeError for the type, KVValidationError for the value)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"lock: {name} must be seconds (int or float), not {type(value).__name__}")
    seconds = float(value)
    too_low = seconds <= low if low_open else seconds < low
    if not math.isfinite(seconds) or too_low or seconds > high:
        bound = f"> {low}" if low_open else f">= {low}"
        raise invalid_value("lock", f"{name} must be {bound} and <= {high} seconds (got {value!r})")
    return seconds


def optional_seconds(value: object, name: str, **bounds: Any) -> float | None:
    return None if value is None else seconds(value, name, **bounds)


def wait_of(wait: object) -> float | None:
    return optional_seconds(wait, "wait", high=math.inf, low_open=False)


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
    """The requests of one lock item, each a traced store operation."""

    def __init__(self, store: Any, stored: str, name: str) -> None:
        self.core = store._core
        self.stored = stored
        self.name = name

    def event(self, level: str, event: str, **fields: Any) -> None:
        tel = self.core.tel
        if tel.expose_keys:
            fields["lock"] = self.name
        fields["table"] = self.core.config.table
        (tel.warn if level == "warning" else tel.debug)(event, **fields)

    async def acquire(self, owner: str, lease_ms: int, seen: int | None) -> Seen:
        core, stored, name = self.core, self.stored, self.name
        request = requests.lock_acquire(
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
                found = seen_in(await core.old_item(op, exc, stored, name), owner, core.config)
                op.outcome = "acquired" if found.fence is not None else "condition_failed"
                return found
            op.outcome = "acquired"
            return seen_in(response.get("Attributes"), owner, core.config)

    async def renew(self, owner: str, lease_ms: int) -> bool:
        request = requests.lock_renew(
            self.core.config, self.stored, owner=owner, lease_ms=lease_ms, token=new_token(), base=0
        )
        return await self._owned_write("lock_renew", request, owner)

    async def release(self, owner: str) -> bool:
        request = requests.lock_release(
            self.core.config, self.stored, owner=owner, token=new_token(), base=0
        )
        return await self._owned_write("lock_release", request, owner)

    async def _owned_write(self, operation: str, request: dict[str, Any], owner: str) -> bool:
        """Send a write conditional on `owner`; False when another owner (or none) holds it."""
        core, name = self.core, self.name
        with core.operation(operation, "UpdateItem", name) as op:
            try:
                await core.send(op, "UpdateItem", request, name)
            except ConditionFailedError as exc:
                if getattr(exc.__cause__, "in_doubt", False) and operation == "lock_release":
                    # Our earlier attempt released it. (Had the lease been taken over before,
                    # the holder would have seen it lapse first: `release` checks that.)
                    return True
                old = await core.old_item(op, exc, self.stored, name)
                op.outcome = "condition_failed"
                return old is not None and old.get(LOCK_OWNER) == {"S": owner}
            return True
