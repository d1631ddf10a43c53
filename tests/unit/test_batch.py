from __future__ import annotations

import asyncio

import pytest

from aiodynkv import KVError, ThrottledError
from aiodynkv._batch import BACKOFF_CAP, backoff, chunked, drive


def test_chunked() -> None:
    assert list(chunked([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    assert list(chunked([], 25)) == []


def test_backoff_is_capped_full_jitter() -> None:
    for attempt in range(12):
        delay = backoff(attempt)
        assert 0.0 <= delay <= min(BACKOFF_CAP, 0.05 * 2**attempt)


async def test_unprocessed_remainders_are_retried_until_done() -> None:
    calls: list[list[int]] = []

    async def send(request: list[int]) -> list[int] | None:
        calls.append(request)
        return request[1:] or None  # one item processed per call

    leftovers, cause = await drive([[1, 2, 3], [4]], send, concurrency=2, deadline_seconds=5)
    assert leftovers == [] and cause is None
    assert sorted(map(tuple, calls)) == [(1, 2, 3), (2, 3), (3,), (4,)]


async def test_what_is_left_at_the_deadline_is_returned_with_the_cause() -> None:
    async def send(request: list[int]) -> list[int] | None:
        raise ThrottledError(f"slow down ({len(request)} items)")

    leftovers, cause = await drive([[1], [2, 3]], send, concurrency=1, deadline_seconds=0.05)
    assert sorted(leftovers) == [[1], [2, 3]]
    assert isinstance(cause, ThrottledError)


async def test_a_permanent_error_cancels_the_other_chunks() -> None:
    cancelled = asyncio.Event()

    async def send(request: list[int]) -> list[int] | None:
        if request == [1]:
            await asyncio.sleep(0.01)
            raise KVError("table gone")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return None

    with pytest.raises(KVError, match="table gone"):
        await drive([[1], [2]], send, concurrency=2, deadline_seconds=5)
    assert cancelled.is_set()


async def test_a_broken_connection_gives_the_chunk_up_at_once() -> None:
    from aiodynkv import KVConnectionError

    calls = 0

    async def send(request: list[int]) -> list[int] | None:
        nonlocal calls
        calls += 1
        raise KVConnectionError(f"refused ({len(request)} items)")

    leftovers, cause = await drive([[1, 2]], send, concurrency=1, deadline_seconds=30)
    assert leftovers == [[1, 2]] and isinstance(cause, KVConnectionError)
    assert calls == 1
