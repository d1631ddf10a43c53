"""Batch mechanics: chunking, bounded concurrency, retries, and honest accounting.

A batch call splits its keys into chunks (100 for BatchGetItem, 25 for
BatchWriteItem) and drives each chunk until nothing is left unprocessed:

- what the server hands back as unprocessed, or refuses with throttling or a 5xx,
  is sent again with capped, jittered backoff until ``batch_deadline`` (a retried
  put or delete is idempotent, so sending again is safe);
- a chunk whose request timed out or lost its connection (after the transport's
  own retries) stops at once: the server is likely down, waiting helps nobody;
- any other error stops the whole batch from sending more chunks; chunks already
  in flight finish, so the caller learns what they did;
- when the store is closing past ``close_timeout`` (`Core.abort`), chunks stop and
  requests in flight are cancelled.

Every write entry ends in exactly one set: done (definitely applied), unprocessed
(definitely not applied), or in doubt (an attempt may have been applied: it timed
out, lost its connection or met a 5xx). `BatchIncompleteError` reports all three.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from aiodynkv import _requests as requests
from aiodynkv import _retry
from aiodynkv._errors import (
    KVError,
    ServerError,
    ThrottledError,
    TransientError,
    WriteInDoubtError,
)

if TYPE_CHECKING:
    from aiodynkv._codec import Item
    from aiodynkv._config import KVConfig
    from aiodynkv._core import Core
    from aiodynkv._telemetry import Operation

__all__ = [
    "MAX_GET_BATCH",
    "MAX_WRITE_BATCH",
    "Chunk",
    "Chunks",
    "Outcome",
    "chunked",
    "drive",
    "in_doubt",
    "in_flight",
    "read_items",
    "write_items",
]

_T = TypeVar("_T")
#: One chunk of a batch: the keys or write requests of one BatchGetItem / BatchWriteItem.
Chunk = list[Any]
Send = Callable[[Chunk], Awaitable[Chunk | None]]
MAX_GET_BATCH = 100  # keys per BatchGetItem
MAX_WRITE_BATCH = 25  # requests per BatchWriteItem


def chunked(items: Sequence[_T], size: int) -> Iterator[list[_T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class Chunks:
    """The chunks of a mapping's values in key order, each made when a worker takes it.

    A batch of writes holds only the chunks in flight as request entries: the entries
    of a lazy mapping (``set_many``'s) are made as their chunk is sent, which keeps the
    memory a large batch touches, and the garbage collector's work, small.
    """

    __slots__ = ("_entries", "_keys", "_make", "_size")

    def __init__(
        self,
        entries: Mapping[str, Any],
        size: int,
        make: Callable[[list[str]], Chunk] | None = None,
    ) -> None:
        self._entries = entries
        self._keys = list(entries)
        self._size = size
        self._make = make

    def __len__(self) -> int:
        return (len(self._keys) + self._size - 1) // self._size

    def __iter__(self) -> Iterator[Chunk]:
        """Each chunk's entries (made by `make` from the chunk's keys, if given)."""
        entries, keys, size, make = self._entries, self._keys, self._size, self._make
        for start in range(0, len(keys), size):
            if make is not None:
                yield make(keys[start : start + size])
            else:
                yield [entries[pk] for pk in keys[start : start + size]]


def in_flight(config: KVConfig, wanted: int) -> int:
    """Requests of one batch in flight at once: `wanted`, never more than the pool holds."""
    return max(1, min(wanted, config.max_pool_connections))


def in_doubt(error: BaseException) -> bool:
    """True if the request that failed with `error` may have been applied."""
    if isinstance(error, WriteInDoubtError):
        return True
    return bool(getattr(error.__cause__, "in_doubt", False))


@dataclass
class Outcome:
    """What a driven batch did not get done.

    Attributes:
        unprocessed: Entries definitely not applied (or not read).
        in_doubt: Write entries that may or may not have been applied.
        error: The last error seen (the cause to chain), if any.
        fatal: The non-transient error that stopped the batch, if any.
        expired: Entries were still being retried when the deadline came.
    """

    unprocessed: list[Any] = field(default_factory=list)
    in_doubt: list[Any] = field(default_factory=list)
    error: KVError | None = None
    fatal: KVError | None = None
    expired: bool = False

    @property
    def complete(self) -> bool:
        """True when every entry was done."""
        return not self.unprocessed and not self.in_doubt


class _Run:
    """Shared state of one `drive` call."""

    def __init__(self, deadline: float, abort: asyncio.Event | None, retry: bool) -> None:
        self.deadline = deadline
        self.abort = abort
        self.retry = retry
        self.outcome = Outcome()

    @property
    def stopped(self) -> bool:
        return self.outcome.fatal is not None or (self.abort is not None and self.abort.is_set())

    def leave(self, pending: Chunk, doubt: bool, error: KVError | None) -> None:
        (self.outcome.in_doubt if doubt else self.outcome.unprocessed).extend(pending)
        if error is not None:
            self.outcome.error = error


async def _drive_one(request: Chunk, send: Send, run: _Run) -> None:
    attempt = 0
    doubt = False
    sending = False
    error: KVError | None = None
    try:
        while True:
            if run.stopped:
                run.leave(request, doubt, error)
                return
            sending = True
            try:
                rest = await send(request)
            except TransientError as exc:
                sending = False
                error = exc
                doubt = doubt or in_doubt(exc)
                if not run.retry:
                    raise
                if not isinstance(exc, (ThrottledError, ServerError)):
                    # Timeouts and broken connections were already retried by the
                    # transport; waiting out the deadline would only delay the report.
                    run.leave(request, doubt, exc)
                    return
                rest = request
            except KVError as exc:
                sending = False
                if not run.retry:
                    raise
                # An entry in doubt is reported as such; the others go on.
                fatal = run.outcome.fatal if isinstance(exc, WriteInDoubtError) else exc
                run.outcome.fatal = fatal
                run.leave(request, doubt or in_doubt(exc), exc)
                return
            sending = False
            if not rest:
                return
            request = rest
            remaining = run.deadline - time.monotonic()
            if remaining <= 0:
                run.outcome.expired = True
                run.leave(request, doubt, error)
                return
            await _retry.sleep(min(_retry.backoff(attempt), remaining))
            attempt += 1
    except asyncio.CancelledError:
        if run.abort is None or not run.abort.is_set():
            raise
        # Cut off by aclose: a request in flight may have been applied.
        run.leave(request, doubt or sending, error)


async def _cut_off(run: _Run, workers: list[asyncio.Future[Any]], queue: Iterator[Chunk]) -> None:
    """Cancel the requests in flight (in doubt); every chunk not sent is unprocessed."""
    pending = [task for task in workers if not task.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    run.leave([entry for request in queue for entry in request], False, None)


async def drive(
    requests: Sequence[Chunk] | Chunks,
    send: Send,
    *,
    concurrency: int,
    deadline_seconds: float,
    abort: asyncio.Event | None = None,
    retry_errors: bool = True,
) -> Outcome:
    """Send every chunk, retrying what comes back unprocessed, at most `concurrency` at once.

    Args:
        requests: One request per chunk.
        send: Sends one request; returns the unprocessed remainder (falsy when done).
        concurrency: Chunks in flight at once.
        deadline_seconds: How long to keep retrying unprocessed remainders.
        abort: When set, stop: chunks not sent are unprocessed, requests in flight
            are cancelled and in doubt.
        retry_errors: Otherwise the first error of any chunk is raised as it is (for
            coalesced reads, which fail as fast as a single read would).

    Returns:
        What is left: unprocessed and in-doubt entries, and the errors seen.
    """
    run = _Run(time.monotonic() + deadline_seconds, abort, retry_errors)
    if len(requests) == 1 and abort is None:
        await _drive_one(next(iter(requests)), send, run)
        return run.outcome
    # A fixed set of workers takes the chunks in order from one iterator: at most
    # `concurrency` tasks whatever the batch's size, and waiting on them stays cheap.
    queue = iter(requests)

    async def worker() -> None:
        for request in queue:
            # Once stopped (an abort, a fatal error), each chunk left is recorded
            # as unprocessed without being sent.
            await _drive_one(request, send, run)

    workers: list[asyncio.Future[Any]] = []
    watcher = asyncio.ensure_future(abort.wait()) if abort is not None else None
    # Woken once: every worker is done, one failed, or the abort came.
    settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def settle(task: asyncio.Future[Any]) -> None:
        if settled.done():
            return
        failed = task.cancelled() or task.exception() is not None
        if task is watcher or failed or all(worker.done() for worker in workers):
            settled.set_result(None)

    try:
        if watcher is not None:
            watcher.add_done_callback(settle)
        # One worker per event-loop pass: the HTTP client writes a request's body on
        # the pass after it was built, so the server starts on the first chunk while
        # the next ones are built, rather than after all of them.
        for _ in range(min(concurrency, len(requests))):
            workers.append(asyncio.ensure_future(worker()))
            workers[-1].add_done_callback(settle)
            await asyncio.sleep(0)
            if run.stopped or any(task.done() for task in workers):
                break  # stopped, failed, or every chunk is taken
        if not workers:
            settled.set_result(None)  # nothing to send
        await settled
        for task in workers:
            error = task.exception() if task.done() else None
            if error is not None:
                raise error
        if watcher is not None and watcher.done():
            await _cut_off(run, workers, queue)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    finally:
        if watcher is not None:
            watcher.cancel()
    return run.outcome


# -- the batch requests of a store ------------------------------------------------


async def read_items(
    core: Core,
    op: Operation,
    stored: Sequence[str],
    *,
    fail_fast: bool = False,
    consistent: bool = False,
    projection: Sequence[str] = (),
    take: Callable[[list[Item]], object] | None = None,
) -> tuple[dict[str, Item], Outcome]:
    """BatchGetItem in chunks of 100, retrying unprocessed keys until ``batch_deadline``.

    `take`, if given, is handed the items of each reply as it comes (they are not kept).

    With `fail_fast` (coalesced `get` calls, the old items cleanup reads) the bound is
    a single call's (``max_attempts x read_timeout``) and a failed request is raised,
    not retried beyond the transport's own retries, so a coalesced get fails as fast
    as a GetItem would.

    Returns:
        The items found by stored key (expired ones included), and what was left:
        for reads every leftover is unprocessed (a read applies nothing).
    """
    config = core.config
    pk_name = config.partition_key
    found: dict[str, Item] = {}
    consistent = consistent or config.consistent_read
    # A transport that takes it is handed the keys' request as text rendered from them.
    text = not projection and getattr(core.transport, "accepts_text_requests", False)

    async def send(keys: Chunk) -> Chunk | None:
        request: Mapping[str, Any]
        if text:
            request = requests.BatchGetText(config, keys, consistent=consistent)
        else:
            request = requests.batch_get(config, keys, consistent=consistent, projection=projection)
        # `Core.send` hands the request to the transport as it is.
        response = await core.send(op, "BatchGetItem", request, None)
        items = response.get("Responses", {}).get(config.table, [])
        if take is not None:
            take(items)
        else:
            found.update((item[pk_name]["S"], item) for item in items)
        rest = response.get("UnprocessedKeys", {}).get(config.table)
        return [k[pk_name]["S"] for k in rest["Keys"]] if rest else None

    outcome = await drive(
        list(chunked(list(stored), MAX_GET_BATCH)),
        send,
        concurrency=in_flight(config, config.batch_concurrency),
        deadline_seconds=(
            config.max_attempts * config.read_timeout if fail_fast else config.batch_deadline
        ),
        abort=None if fail_fast else core.abort,
        retry_errors=not fail_fast,
    )
    outcome.unprocessed.extend(outcome.in_doubt)
    outcome.in_doubt.clear()
    return found, outcome


async def write_items(
    core: Core,
    op: Operation,
    entries: Mapping[str, dict[str, Any]],
    texts: Callable[[list[str]], Chunk] | None = None,
) -> Outcome:
    """BatchWriteItem in chunks of 25; the outcome's entries are the stored keys left.

    `entries` maps each stored key to its PutRequest or DeleteRequest; each entry is
    taken when its chunk is first sent (`Chunks`). `texts`, if given, makes the entries
    of a chunk's stored keys as (stored key, the entry's JSON text) instead
    (`aiodynkv._requests.PutTexts`), for a transport that takes text requests.
    """
    config = core.config
    pk_name, table = config.partition_key, config.table
    as_text = texts is not None and getattr(core.transport, "accepts_text_requests", False)

    async def send(chunk: Chunk) -> Chunk | None:
        request: Mapping[str, Any]
        rendered = type(chunk[0]) is tuple
        if rendered:
            request = requests.BatchWriteText(config, [text for _, text in chunk])
        else:
            request = requests.batch_write(config, chunk)
        response = await core.send(op, "BatchWriteItem", request, None)
        rest = response.get("UnprocessedItems", {}).get(table)
        if not rest:
            return None
        return _same_texts(chunk, rest, pk_name) if rendered else list(rest)

    outcome = await drive(
        Chunks(entries, MAX_WRITE_BATCH, texts if as_text else None),
        send,
        concurrency=in_flight(config, config.batch_concurrency),
        deadline_seconds=config.batch_deadline,
        abort=core.abort,
    )
    outcome.unprocessed[:] = [_entry_pk(e, pk_name) for e in outcome.unprocessed]
    outcome.in_doubt[:] = [_entry_pk(e, pk_name) for e in outcome.in_doubt]
    return outcome


def _same_texts(sent: Chunk, rest: list[dict[str, Any]], pk_name: str) -> Chunk:
    """The (stored key, text) entries of a chunk sent as text that came back unprocessed.

    The server hands back the items it was sent, as dicts: their texts, kept, are the
    same characters as the dicts' encoding. Should it hand back an item this chunk did
    not send, the dicts as they came are sent again instead.
    """
    texts = dict(sent)
    stored = [_entry_pk(entry, pk_name) for entry in rest]
    if all(pk in texts for pk in stored):
        return [(pk, texts[pk]) for pk in stored]
    return list(rest)


def _entry_pk(entry: dict[str, Any] | tuple[str, str], pk_name: str) -> str:
    if isinstance(entry, tuple):
        return entry[0]
    if "PutRequest" in entry:
        return str(entry["PutRequest"]["Item"][pk_name]["S"])
    return str(entry["DeleteRequest"]["Key"][pk_name]["S"])
