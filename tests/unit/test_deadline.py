"""The whole-call deadline around one request (`aiodynkv._core._within`)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from aiodynkv._core import _within
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


async def test_a_request_past_its_deadline_raises_the_in_doubt_deadline_error() -> None:
    with pytest.raises(WireError, match=r"deadline passed \(call_timeout=7 s\)") as caught:
        await _within(_slow(10), 0.01, 7)
    assert caught.value.timeout and caught.value.in_doubt
    assert _cancelling() == 0  # the task can be cancelled later
    assert await _within(_slow(0), 1, 7) == "reply"


async def test_a_reply_within_the_deadline_leaves_no_timer_behind() -> None:
    loop = asyncio.get_running_loop()
    assert await _within(_slow(0), 5, 7) == "reply"
    assert all(handle.cancelled() for handle in loop._scheduled)  # type: ignore[attr-defined]


@pytest.mark.parametrize("also_expired", [False, True])
async def test_the_callers_own_cancellation_stays_a_cancellation(also_expired: bool) -> None:
    task = asyncio.create_task(_within(_slow(10), 0 if also_expired else 5, 7))
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

    assert await _within(stubborn(), 0.01, 7) == "late reply"
    assert _cancelling() == 0
