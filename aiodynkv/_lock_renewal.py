"""The background renewal of a held lease, mixed into `aiodynkv._lock.Lock`.

Renewal runs in a task every ``renew_every`` (lease/3), one renewal at a time (an
explicit `extend` waits for the one in flight and then restarts the task, so the next
renewal follows the new period). The holder believes exactly the last lease the server
confirmed, counted on the monotonic clock from when that write was *sent*, so it always
believes it holds the lease for less time than any waiter waits:

- a renewal that asks for a shorter lease caps the validity when it is sent (the
  server may apply it even if no reply comes back);
- a confirmed renewal sets the validity to its own send time plus its lease (shorter
  or longer than before);
- once the validity has passed without a confirmed renewal, the lease is lost for
  good: a renewal confirmed later does not bring it back.

When renewals keep failing until the lease has run out, or the item shows another
owner, the lease is lost.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING

from aiodynkv._errors import KVError, StoreClosedError
from aiodynkv._retry import poll_delay

if TYPE_CHECKING:
    from aiodynkv._lock_record import DynamoOps

__all__ = ["LeaseRenewal"]


class LeaseRenewal:
    """The renewal task's steps; `Lock` holds the state they read and write."""

    __slots__ = ("_generation", "_lost", "_renewer", "_renewing", "_valid_until")

    name: str
    lease: float
    poll: float
    _ops: DynamoOps
    _stored: str
    _token: int | None
    _lost: bool
    _valid_until: float
    _renew_every: float | None
    _renewer: asyncio.Task[None] | None
    _renewing: asyncio.Lock
    _generation: int

    def _every(self) -> float:
        return self._renew_every if self._renew_every is not None else self.lease / 3

    def _pause(self, attempt: int) -> float:
        return poll_delay(attempt, self.poll)

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
            self._ops.renew(self._stored, self.name, owner, lease_ms),
            timeout=min(left, max(self._every() / 3, 0.05)),
        )
        if renewed and not self._lapsed():
            self._valid_until = sent + lease
        return renewed

    async def _renew_loop(self, owner: str, generation: int) -> None:
        failures = 0
        while generation == self._generation:
            pause = self._every()
            if failures:
                pause = min(self._pause(failures), pause)
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
            except KVError as exc:  # throttled, timed out, 5xx...: try again while time is left
                failures += 1
                self._ops.event(
                    "debug", "aiodynkv.lock_renew_failed", self.name, error=type(exc).__name__
                )
                continue
            except asyncio.TimeoutError:  # this try took too long: try again while time is left
                failures += 1
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
            "warning",
            "aiodynkv.lock_lost",
            self.name,
            reason=why,
            token=self._token,
            failed_renewals=failures,
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
