"""The whole-call deadlines of requests in flight (`aiodynkv._core._Deadlines`)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from aiodynkv._core import _Deadlines
from aiodynkv._transport import WireError

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.cancelling: 3.11+")


def _cancelling() -> int:
    """Cancellations of the current task still pending (the deadline's must be taken back)."""
    task = asyncio.current_task()
    assert task is not None
    if sys.version_info >= (3, 11):
        return task.cancelling()
    return 0  # pragma: no cover - the tests are skipped


async def _slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "reply"


def _deadlines() -> _Deadlines:
    return _Deadlines(asyncio.get_running_loop(), 7)


async def test_a_request_past_its_deadline_raises_the_in_doubt_deadline_error() -> None:
    deadlines = _deadlines()
    with pytest.raises(WireError, match=r"deadline passed \(call_timeout=7 s\)") as caught:
        await deadlines.within(_slow(10), 0.01)
    assert caught.value.timeout and caught.value.in_doubt
    assert _cancelling() == 0  # the task can be cancelled later
    assert await deadlines.within(_slow(0), 1) == "reply"


async def test_each_request_meets_its_own_deadline_on_the_one_timer() -> None:
    deadlines, loop = _deadlines(), asyncio.get_running_loop()
    started = loop.time()
    late = asyncio.create_task(deadlines.within(_slow(0.3), 5))
    await asyncio.sleep(0)  # armed for 5 s; the sooner deadlines below set it again
    soon = asyncio.create_task(deadlines.within(_slow(10), 0.1))
    sooner = asyncio.create_task(deadlines.within(_slow(10), 0.02))
    for task in (sooner, soon):  # the timer fires for one, then is set for the next
        with pytest.raises(WireError, match="deadline passed"):
            await task
    assert loop.time() - started < 0.3
    assert await late == "reply"
    started = loop.time()
    with pytest.raises(WireError, match="deadline passed"):
        await deadlines.within(_slow(10), 0.05)  # the timer is still set for 5 s
    assert loop.time() - started < 1


@pytest.mark.parametrize("also_expired", [False, True])
async def test_the_callers_own_cancellation_stays_a_cancellation(also_expired: bool) -> None:
    task = asyncio.create_task(_deadlines().within(_slow(10), 0 if also_expired else 5))
    await asyncio.sleep(0)  # the task is waiting; a deadline of 0 fires next turn
    await asyncio.sleep(0)  # this turn runs before the deadline's timer
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_request_that_ends_as_its_deadline_fires_keeps_its_reply() -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "late reply"  # the transport got its reply as the timer fired
        return "reply"  # pragma: no cover

    assert await _deadlines().within(stubborn(), 0.01) == "late reply"
    assert _cancelling() == 0
