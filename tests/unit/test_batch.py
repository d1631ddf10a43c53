from __future__ import annotations

import asyncio

import pytest

from aiodynkv import KVConnectionError, KVError, KVTimeoutError, ServerError, ThrottledError
from aiodynkv._batch import Chunks, chunked, drive
from aiodynkv._retry import BACKOFF_CAP, backoff
from aiodynkv._transport import WireError


def test_chunked() -> None:
    assert list(chunked([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    assert list(chunked([], 25)) == []


class _Counted(dict[str, int]):
    """A mapping that records which entries were read."""

    def __init__(self, n: int) -> None:
        super().__init__((f"k{i}", i) for i in range(n))
        self.read: list[str] = []

    def __getitem__(self, key: str) -> int:
        self.read.append(key)
        return super().__getitem__(key)


async def test_chunks_of_a_mapping_are_made_only_as_workers_take_them() -> None:
    entries = _Counted(10)
    chunks = Chunks(entries, 3)
    assert len(chunks) == 4 and entries.read == []
    made_before_send: list[int] = []

    async def send(request: list[int]) -> None:
        assert request
        made_before_send.append(len(entries.read))
        await asyncio.sleep(0)

    outcome = await drive(chunks, send, concurrency=2, deadline_seconds=5)
    assert outcome.complete
    # Each entry read once, in order; the first send saw only the chunks in flight made.
    assert entries.read == [f"k{i}" for i in range(10)]
    assert made_before_send[0] <= 2 * 3
    assert [list(c) for c in Chunks({"a": 1}, 25)] == [[1]] and len(Chunks({}, 25)) == 0


def test_backoff_is_capped_full_jitter() -> None:
    for attempt in range(12):
        delay = backoff(attempt)
        assert 0.0 <= delay <= min(BACKOFF_CAP, 0.05 * 2**attempt)


async def test_unprocessed_remainders_are_retried_until_done() -> None:
    calls: list[list[int]] = []

    async def send(request: list[int]) -> list[int] | None:
        calls.append(request)
        return request[1:] or None  # one item processed per call

    outcome = await drive([[1, 2, 3], [4]], send, concurrency=2, deadline_seconds=5)
    assert outcome.complete and outcome.error is None
    assert sorted(map(tuple, calls)) == [(1, 2, 3), (2, 3), (3,), (4,)]


async def test_what_is_left_at_the_deadline_is_unprocessed_with_the_cause() -> None:
    async def send(request: list[int]) -> list[int] | None:
        raise ThrottledError(f"slow down ({len(request)} items)")

    outcome = await drive([[1], [2, 3]], send, concurrency=1, deadline_seconds=0.05)
    assert sorted(outcome.unprocessed) == [1, 2, 3] and outcome.in_doubt == []
    assert isinstance(outcome.error, ThrottledError)


def _applied_maybe(message: str) -> KVError:
    """A transient error whose request may have been applied (a read timeout)."""
    error = KVTimeoutError(message)
    error.__cause__ = WireError("read timeout", timeout=True, in_doubt=True)
    return error


async def test_a_chunk_whose_reply_was_lost_is_in_doubt_not_unprocessed() -> None:
    async def send(request: list[int]) -> list[int] | None:
        if request == [1, 2]:
            raise _applied_maybe("read timeout")
        return None

    outcome = await drive([[1, 2], [3]], send, concurrency=2, deadline_seconds=5)
    assert outcome.in_doubt == [1, 2] and outcome.unprocessed == []
    assert isinstance(outcome.error, KVTimeoutError)


async def test_a_retried_5xx_chunk_that_later_succeeds_is_done() -> None:
    attempts = 0

    async def send(_request: list[int]) -> list[int] | None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            error = ServerError("500")
            error.__cause__ = WireError("5xx", timeout=False, in_doubt=True)
            raise error
        return None

    outcome = await drive([[1]], send, concurrency=1, deadline_seconds=5)
    assert outcome.complete and attempts == 2


async def test_a_permanent_error_stops_new_chunks_but_reports_the_others() -> None:
    sent: list[list[int]] = []

    async def send(request: list[int]) -> list[int] | None:
        sent.append(request)
        if request == [1]:
            await asyncio.sleep(0.01)
            raise KVError("table gone")
        await asyncio.sleep(0.05)
        return None

    outcome = await drive([[1], [2], [3]], send, concurrency=2, deadline_seconds=5)
    assert isinstance(outcome.fatal, KVError)
    assert [1] in sent and [2] in sent and [3] not in sent  # [2] was in flight and finished
    assert sorted(outcome.unprocessed) == [1, 3] and outcome.in_doubt == []


async def test_abort_cuts_chunks_off_and_labels_them_honestly() -> None:
    abort = asyncio.Event()
    started = asyncio.Event()

    async def send(_request: list[int]) -> list[int] | None:
        started.set()
        await asyncio.sleep(10)
        return None

    task = asyncio.ensure_future(
        drive([[1], [2], [3]], send, concurrency=1, deadline_seconds=30, abort=abort)
    )
    await started.wait()
    abort.set()
    outcome = await asyncio.wait_for(task, 2)
    assert outcome.in_doubt == [1]  # in flight when cut off
    assert sorted(outcome.unprocessed) == [2, 3]  # never sent


async def test_a_broken_connection_gives_the_chunk_up_at_once() -> None:
    calls = 0

    async def send(request: list[int]) -> list[int] | None:
        nonlocal calls
        calls += 1
        error = KVConnectionError(f"refused ({len(request)} items)")
        error.__cause__ = WireError("refused", timeout=False, in_doubt=False)
        raise error

    outcome = await drive([[1, 2]], send, concurrency=1, deadline_seconds=30)
    assert outcome.unprocessed == [1, 2] and isinstance(outcome.error, KVConnectionError)
    assert calls == 1


async def test_without_retries_the_first_error_is_raised() -> None:
    async def send(_request: list[int]) -> list[int] | None:
        raise ThrottledError("busy")

    with pytest.raises(ThrottledError):
        await drive([[1]], send, concurrency=1, deadline_seconds=5, retry_errors=False)


async def test_many_chunks_run_in_order_never_more_than_the_concurrency_at_once() -> None:
    in_flight = peak = 0
    sent: list[int] = []

    async def send(request: list[int]) -> list[int] | None:
        nonlocal in_flight, peak
        sent.append(request[0])
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1
        return None

    tasks_before = len(asyncio.all_tasks())
    run = asyncio.ensure_future(
        drive([[i] for i in range(200)], send, concurrency=4, deadline_seconds=5)
    )
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) - tasks_before <= 1 + 4  # the drive and its workers
    outcome = await run
    assert outcome.complete and peak == 4 and sent == list(range(200))


async def test_abort_of_a_long_batch_leaves_every_chunk_in_exactly_one_set() -> None:
    abort = asyncio.Event()
    started: list[int] = []

    async def send(request: list[int]) -> list[int] | None:
        started.append(request[0])
        if len(started) == 9:  # chunks 6, 7 and 8 in flight
            abort.set()
        await asyncio.sleep(0.01 if request[0] < 6 else 30)
        return None

    outcome = await drive(
        [[i] for i in range(100)], send, concurrency=3, deadline_seconds=30, abort=abort
    )
    done = set(started) - set(outcome.in_doubt)
    assert started == list(range(9)) and sorted(outcome.in_doubt) == [6, 7, 8]
    assert set(outcome.unprocessed) == set(range(100)) - set(started)
    assert len(done) + len(outcome.in_doubt) + len(outcome.unprocessed) == 100


async def test_each_request_gets_a_loop_pass_before_the_next_chunk_is_built() -> None:
    # An HTTP client writes a request's body on the event-loop pass after the call that
    # built it (aiohttp's body writer is a task): the next chunk must not be built in
    # the same pass, or the server sees nothing until every chunk in flight is built.
    events: list[tuple[str, int]] = []
    replies: list[asyncio.Future[None]] = []
    loop = asyncio.get_running_loop()

    async def send(request: list[int]) -> None:
        events.append(("built", request[0]))
        loop.call_soon(events.append, ("written", request[0]))
        reply = loop.create_future()
        replies.append(reply)
        await reply

    driving = asyncio.ensure_future(
        drive(list(chunked(list(range(5)), 1)), send, concurrency=4, deadline_seconds=5)
    )
    for _ in range(20):  # passes enough for the four workers to start
        await asyncio.sleep(0)
    assert events == [
        ("built", 0),
        ("written", 0),
        ("built", 1),
        ("written", 1),
        ("built", 2),
        ("written", 2),
        ("built", 3),
        ("written", 3),
    ]
    for reply in replies[:4]:
        reply.set_result(None)
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(replies) == 5
    replies[4].set_result(None)
    assert (await driving).complete
    assert [n for what, n in events if what == "built"] == [0, 1, 2, 3, 4]
