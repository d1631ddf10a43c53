"""The background renewal of a held lease, mixed into `aiodynkv._lock.Lock`.

Renewal runs in a task every ``renew_every`` (lease/3). The holder counts its lease
from when it *sent* its last successful write, so it always believes it holds the
lease for less time than any waiter waits. When renewals keep failing until the
lease has run out, or the item shows another owner, the lease is lost.
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

    __slots__ = ("_generation", "_lost", "_renewer", "_valid_until")

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
    _generation: int

    def _every(self) -> float:
        return self._renew_every if self._renew_every is not None else self.lease / 3

    def _pause(self, attempt: int) -> float:
        return poll_delay(attempt, self.poll)

    async def _renew_once(self, owner: str) -> bool:
        """One renewal; True when renewed, False when another owner holds it."""
        sent = time.monotonic()
        lease_ms = math.ceil(self.lease * 1000.0)
        # One try lasts at most a third of a renewal period (and never past the lease):
        # the SDK's own retry backoff must not eat the time in which this loop could
        # send several fresh tries before the lease lapses.
        left = max(0.0, self._valid_until - sent)
        renewed = await asyncio.wait_for(
            self._ops.renew(self._stored, self.name, owner, lease_ms),
            timeout=min(left, max(self._every() / 3, 0.05)),
        )
        if renewed:
            self._valid_until = max(self._valid_until, sent + self.lease)
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
            if time.monotonic() >= self._valid_until:
                self._lose("renewals failed for a whole lease", failures)
                return
            try:
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

    async def _stop_renewer(self) -> None:
        task, self._renewer = self._renewer, None
        self._generation += 1  # the loop ends at its next step even if a cancel is swallowed
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
