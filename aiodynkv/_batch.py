"""Batch mechanics: chunking, bounded concurrency, unprocessed-item retry with backoff.

A batch call splits its keys into chunks (100 for BatchGetItem, 25 for
BatchWriteItem) and drives each chunk until nothing is left unprocessed or the
deadline passes. A chunk that fails with a `TransientError` (throttled after the
SDK's own retries, a timeout) is retried whole; any other error ends the batch.
What is still unprocessed at the deadline is handed back to the caller, which
raises `BatchIncompleteError` naming exactly those keys.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

from aiodynkv._errors import TransientError

__all__ = ["BACKOFF_BASE", "BACKOFF_CAP", "Chunk", "backoff", "chunked", "drive"]

_T = TypeVar("_T")
#: One chunk of a batch: the keys or write requests of one BatchGetItem / BatchWriteItem.
Chunk = list[Any]
Send = Callable[[Chunk], Awaitable[Chunk | None]]
BACKOFF_BASE = 0.05
BACKOFF_CAP = 2.0


def chunked(items: Sequence[_T], size: int) -> Iterator[list[_T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def backoff(attempt: int) -> float:
    """Capped exponential backoff with full jitter, in seconds."""
    return random.uniform(0.0, min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt)))  # noqa: S311


async def _drive_one(
    request: Chunk, send: Send, deadline: float
) -> tuple[Chunk | None, TransientError | None]:
    attempt = 0
    last_error: TransientError | None = None
    while True:
        try:
            rest = await send(request)
        except TransientError as exc:
            rest, last_error = request, exc
        if not rest:
            return None, None
        request = rest
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return request, last_error
        await asyncio.sleep(min(backoff(attempt), remaining))
        attempt += 1


async def drive(
    requests: Sequence[Chunk],
    send: Send,
    *,
    concurrency: int,
    deadline_seconds: float,
) -> tuple[list[Chunk], TransientError | None]:
    """Send every request, retrying what comes back unprocessed, at most `concurrency` at once.

    Args:
        requests: One request per chunk.
        send: Sends one request; returns the unprocessed remainder (falsy when done).
        concurrency: Chunks in flight at once.
        deadline_seconds: How long to keep retrying unprocessed remainders.

    Returns:
        The remainders still unprocessed at the deadline, and the last transient
        error seen for them (the cause to chain), if any.
    """
    deadline = time.monotonic() + deadline_seconds
    if len(requests) == 1:
        rest, error = await _drive_one(requests[0], send, deadline)
        return ([rest] if rest else []), error
    gate = asyncio.Semaphore(concurrency)

    async def gated(request: Chunk) -> tuple[Chunk | None, TransientError | None]:
        async with gate:
            return await _drive_one(request, send, deadline)

    tasks = [asyncio.ensure_future(gated(r)) for r in requests]
    try:
        results = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    leftovers = [rest for rest, _ in results if rest]
    errors = [error for _, error in results if error is not None]
    return leftovers, (errors[-1] if errors else None)
