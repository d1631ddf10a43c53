"""The core's connection slots: bounded, first come first served, nothing lost on cancel."""

from __future__ import annotations

import asyncio

from aiodynkv._core import Slots


async def _take(slots: Slots) -> None:
    if slots.free and not slots.queued:
        slots.free -= 1
    else:
        await slots.wait()


async def test_at_most_size_holders_and_waiters_served_in_order() -> None:
    slots = Slots(2)
    order: list[int] = []
    holding = 0
    most = 0

    async def user(n: int) -> None:
        nonlocal holding, most
        await _take(slots)
        holding += 1
        most = max(most, holding)
        order.append(n)
        await asyncio.sleep(0.001)
        holding -= 1
        slots.release()

    await asyncio.gather(*(user(n) for n in range(8)))
    assert most == 2
    assert order == list(range(8))
    assert (slots.free, len(slots.queued)) == (2, 0)


async def test_a_waiter_cancelled_in_line_leaves_it_and_takes_nothing() -> None:
    slots = Slots(1)
    await _take(slots)
    waiter = asyncio.ensure_future(slots.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert not slots.queued
    slots.release()
    assert slots.free == 1


async def test_a_waiter_cancelled_after_it_was_handed_a_slot_passes_it_on() -> None:
    slots = Slots(1)
    await _take(slots)
    first = asyncio.ensure_future(slots.wait())
    second = asyncio.ensure_future(slots.wait())
    await asyncio.sleep(0)
    slots.release()  # handed to `first`, which has not run yet
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.wait_for(second, 1)  # `first` passed its slot on
    assert first.cancelled()
    slots.release()
    assert (slots.free, len(slots.queued)) == (1, 0)
