"""Batch mechanics: chunking, bounded concurrency, unprocessed-item retry, read coalescing.

A batch call splits its keys into chunks (100 for BatchGetItem, 25 for
BatchWriteItem) and drives each chunk until nothing is left unprocessed or the
deadline passes. A chunk that fails with throttling or a 5xx (after the SDK's own retries) is
retried whole; a chunk that times out or loses its connection is reported as
unprocessed at once; any other error ends the batch.
What is still unprocessed at the deadline is handed back to the caller, which
raises `BatchIncompleteError` naming exactly those keys.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry.trace import Link

from aiodynkv._errors import (
    AccessDeniedError,
    ServerError,
    ThrottledError,
    TransientError,
    map_error,
    rekey,
)

if TYPE_CHECKING:
    from aiodynkv._telemetry import Operation

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "MAX_GET_BATCH",
    "MAX_WRITE_BATCH",
    "Chunk",
    "ReadCoalescer",
    "backoff",
    "chunked",
    "drive",
]

_T = TypeVar("_T")
#: One chunk of a batch: the keys or write requests of one BatchGetItem / BatchWriteItem.
Chunk = list[Any]
Send = Callable[[Chunk], Awaitable[Chunk | None]]
MAX_GET_BATCH = 100  # keys per BatchGetItem
MAX_WRITE_BATCH = 25  # requests per BatchWriteItem
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
    request: Chunk, send: Send, deadline: float, retry_errors: bool
) -> tuple[Chunk | None, TransientError | None]:
    attempt = 0
    last_error: TransientError | None = None
    while True:
        try:
            rest = await send(request)
        except TransientError as exc:
            if not retry_errors:
                raise
            if not isinstance(exc, (ThrottledError, ServerError)):
                # Timeouts and broken connections were already retried by the SDK;
                # waiting out the deadline would only delay the report.
                return request, exc
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
    retry_errors: bool = True,
) -> tuple[list[Chunk], TransientError | None]:
    """Send every request, retrying what comes back unprocessed, at most `concurrency` at once.

    Args:
        requests: One request per chunk.
        send: Sends one request; returns the unprocessed remainder (falsy when done).
        concurrency: Chunks in flight at once.
        deadline_seconds: How long to keep retrying unprocessed remainders.
        retry_errors: Also retry a chunk whose request failed with a `TransientError`
            (after the SDK's own retries); otherwise that error is raised.

    Returns:
        The remainders still unprocessed at the deadline, and the last transient
        error seen for them (the cause to chain), if any.
    """
    deadline = time.monotonic() + deadline_seconds
    if len(requests) == 1:
        rest, error = await _drive_one(requests[0], send, deadline, retry_errors)
        return ([rest] if rest else []), error
    gate = asyncio.Semaphore(concurrency)

    async def gated(request: Chunk) -> tuple[Chunk | None, TransientError | None]:
        async with gate:
            return await _drive_one(request, send, deadline, retry_errors)

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


class _Waiter:
    """One coalesced `get` waiting for its item."""

    __slots__ = ("future", "key", "op")

    def __init__(self, future: asyncio.Future[Any], key: str, op: Operation) -> None:
        self.future = future
        self.key = key
        self.op = op


class ReadCoalescer:
    """Merges concurrent `get` calls into BatchGetItem requests of up to 100 keys.

    Reads registered in the same event-loop turn (or within ``coalesce_window``)
    are sent together: a lone key as GetItem, several as BatchGetItem, with
    duplicates fetched once. Each caller gets its own result or its own
    exception; a cancelled caller leaves the others untouched. The shared
    request has its own span, linked to every caller's span. If the credentials
    may not call BatchGetItem, the coalescer falls back to GetItem for good.
    """

    def __init__(self, core: Any) -> None:
        self._core = core
        self._pending: dict[str, list[_Waiter]] = {}
        self._handle: asyncio.Handle | asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.enabled = True

    def get(self, stored: str, key: str, op: Operation) -> asyncio.Future[Any]:
        """Register a read of `stored`; the future resolves to its raw item or None."""
        self._core.check(op.name)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._core.begin()
        future.add_done_callback(self._core.end)
        waiters = self._pending.get(stored)
        if waiters is None:
            self._pending[stored] = [_Waiter(future, key, op)]
        else:
            waiters.append(_Waiter(future, key, op))
        if len(self._pending) >= MAX_GET_BATCH:
            if self._handle is not None:
                self._handle.cancel()
            _DETACHED.run(self._flush)
        elif self._handle is None:
            window = self._core.config.coalesce_window
            if window:
                self._handle = loop.call_later(window, self._flush, context=_DETACHED)
            else:
                self._handle = loop.call_soon(self._flush, context=_DETACHED)
        return future

    def _flush(self) -> None:
        self._handle = None
        pending, self._pending = self._pending, {}
        task = asyncio.ensure_future(self._fetch(pending))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch(self, pending: dict[str, list[_Waiter]]) -> None:
        live = {
            stored: alive
            for stored, waiters in pending.items()
            if (alive := [w for w in waiters if not w.future.done()])
        }
        if not live:
            return
        if len(live) == 1 or not self.enabled:
            await asyncio.gather(*(self._fetch_one(s, w) for s, w in live.items()))
            return
        core = self._core
        links = [Link(w.op.span.get_span_context()) for ws in live.values() for w in ws]
        found: dict[str, Any] = {}
        leftovers: list[str] = []
        cause: BaseException | None = None
        try:
            with core.tel.operation("get", "BatchGetItem", batch_size=len(live), links=links) as op:
                found, leftovers, cause = await core.batch_get(op, list(live), coalesced=True)
        except AccessDeniedError as exc:
            if "BatchGetItem" not in str(exc.reason):
                _fail(live.values(), exc)
                return
            self.enabled = False
            core.tel.warn(
                "aiodynkv.coalescing_disabled", table=core.config.table, reason=exc.reason
            )
            await asyncio.gather(*(self._fetch_one(s, w) for s, w in live.items()))
            return
        except Exception as exc:  # noqa: BLE001 (handed to each caller)
            _fail(live.values(), exc)
            return
        unprocessed = set(leftovers)
        for stored, waiters in live.items():
            if stored in unprocessed:
                _fail(
                    [waiters],
                    cause
                    or ThrottledError(
                        f"BatchGetItem left the key unprocessed for {core.config.batch_deadline} s",
                        operation="get",
                        table=core.config.table,
                        reason="UnprocessedKeys at the batch deadline",
                    ),
                )
            else:
                _resolve(waiters, found.get(stored))

    async def _fetch_one(self, stored: str, waiters: list[_Waiter]) -> None:
        core = self._core
        config = core.config
        first = waiters[0]
        try:
            with core.tel.activate(first.op):
                response = await core.send(
                    first.op,
                    "get_item",
                    {
                        "TableName": config.table,
                        "Key": {config.partition_key: {"S": stored}},
                        "ConsistentRead": config.consistent_read,
                        "ReturnConsumedCapacity": "TOTAL",
                    },
                    first.key,
                    internal=True,
                )
        except Exception as exc:  # noqa: BLE001 (handed to each caller)
            _fail([waiters], exc)
            return
        _resolve(waiters, response.get("Item"))


# Flushes run outside any caller's context, so the shared request's span is not
# parented by whichever caller happened to come first.
_DETACHED = contextvars.Context()


def _resolve(waiters: list[_Waiter], item: Any) -> None:
    for waiter in waiters:
        if not waiter.future.done():
            waiter.future.set_result(item)


def _fail(groups: Iterable[list[_Waiter]], exc: BaseException) -> None:
    """Give each caller its own exception, naming its own key."""
    for waiters in groups:
        for waiter in waiters:
            if waiter.future.done():
                continue
            error = map_error(
                exc, operation="get", table=waiter.op.tel.config.table, key=waiter.key
            )
            if error is exc:
                error = rekey(error, "get", waiter.key)
            waiter.future.set_exception(error)
