"""Read coalescing: concurrent `get` calls of one store share BatchGetItem requests.

Reads registered in the same event-loop turn (or within ``coalesce_window``) are
sent together, and at once when ``coalesce_max_keys`` distinct keys wait: a lone key
as GetItem, several as BatchGetItem, with duplicates fetched once. Each caller gets its
own result or its own exception; a cancelled caller leaves the others untouched. The
shared request has its own span, linked to every caller's span. If the credentials may
not call BatchGetItem, the coalescer falls back to GetItem for good.

Nothing is shared between stores, loops or threads: each store has its own
coalescer, and each flush runs in a fresh, empty `contextvars.Context` (so the
shared span is not parented by whichever caller came first). Whatever happens
to a flush, no caller waits longer than its own call's budget
(``max_attempts x (connect_timeout + read_timeout)``).

Without a window, the first read of a turn leads: it lets the rest of the turn run
(one event-loop pass), and if it is still alone it sends its own GetItem from its own
task, as an uncoalesced `get` does (no flush, no extra task, bounded by its own call's
deadline); otherwise it flushes the turn's reads like the window's timer does. Once a
lead found itself alone, the next turn's first read sends its GetItem at once, without
the pass (a sequential caller pays nothing for coalescing); the reads that follow it in
that turn are flushed together when the turn ends, and leading with a pass resumes.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterable
from typing import TYPE_CHECKING

from opentelemetry.trace import Link

from aiodynkv import _requests as requests
from aiodynkv._batch import MAX_GET_BATCH, read_items
from aiodynkv._errors import (
    AccessDeniedError,
    KVError,
    KVTimeoutError,
    ThrottledError,
    map_error,
    rekey,
)

if TYPE_CHECKING:
    from aiodynkv._codec import Item
    from aiodynkv._core import Core
    from aiodynkv._telemetry import Operation

__all__ = ["ReadCoalescer"]

# Slack on top of a call's own budget before a waiting get gives up on its flush.
_BUDGET_SLACK = 1.0


class _Waiter:
    """One coalesced `get` waiting for its item."""

    __slots__ = ("future", "key", "op")

    def __init__(self, future: asyncio.Future[Item | None], key: str, op: Operation) -> None:
        self.future = future
        self.key = key
        self.op = op


class ReadCoalescer:
    """Merges one store's concurrent `get` calls into BatchGetItem requests of up to 100 keys."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self._pending: dict[str, list[_Waiter]] = {}
        self._handle: asyncio.Handle | asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: A read is leading this turn (`_lead`): the turn's reads wait for it to flush.
        self._leading = False
        #: The last lead was alone: the next turn's first read goes out at once (`_solo_turn`).
        self._solo = False
        self.enabled = True
        config = core.config
        self._max_keys = min(config.coalesce_max_keys, MAX_GET_BATCH)
        self.budget = config.max_attempts * (config.connect_timeout + config.read_timeout)

    async def get(self, stored: str, key: str, op: Operation) -> Item | None:
        """The raw item at `stored` (expired ones included), or None when missing.

        Raises:
            KVTimeoutError: The shared request did not answer within this call's budget.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Item | None] = loop.create_future()
        waiter = _Waiter(future, key, op)
        waiters = self._pending.get(stored)
        if waiters is None:
            self._pending[stored] = [waiter]
        else:
            waiters.append(waiter)
        if len(self._pending) >= self._max_keys:
            if self._handle is not None:
                self._handle.cancel()
            contextvars.Context().run(self._flush)
        elif self._handle is None and not self._leading:
            window = self._core.config.coalesce_window
            if not window:
                if self._solo and len(self._pending) == 1:
                    return await self._solo_turn(stored, waiter, loop)
                return await self._lead(stored, waiter)
            self._handle = loop.call_later(window, self._flush, context=contextvars.Context())
        return await future  # resolved by the flush, or failed by its deadline (_give_up)

    async def _lead(self, stored: str, waiter: _Waiter) -> Item | None:
        """The first read of a turn: alone after the turn, its own GetItem; else a flush."""
        self._leading = True
        try:
            await asyncio.sleep(0)  # the rest of this loop turn registers its reads
        except BaseException:
            self._leading = False
            waiter.future.cancel()  # skipped by the flush
            self._flush_pending()  # the turn's other reads still go out
            raise
        self._leading = False
        pending = self._pending
        if len(pending) == 1 and pending.get(stored) == [waiter]:
            self._solo = True
            return await self._get_alone(stored, waiter)
        self._flush_pending()
        return await waiter.future

    async def _solo_turn(
        self, stored: str, waiter: _Waiter, loop: asyncio.AbstractEventLoop
    ) -> Item | None:
        """The first read of a turn after a lone lead: its GetItem at once, no pass first."""
        self._leading = True  # the turn's later reads wait for `_end_solo_turn`
        loop.call_soon(self._end_solo_turn)
        return await self._get_alone(stored, waiter)

    def _end_solo_turn(self) -> None:
        self._leading = False
        if self._pending:  # company came: lead with a pass again
            self._solo = False
            self._flush_pending()

    async def _get_alone(self, stored: str, waiter: _Waiter) -> Item | None:
        """`waiter`'s own GetItem from its own task, as an uncoalesced `get` sends it."""
        del self._pending[stored]
        core = self._core
        request = requests.get(core.config, stored, consistent=core.config.consistent_read)
        response = await core.send(waiter.op, "GetItem", request, waiter.key)
        item: Item | None = response.get("Item")
        return item

    def _flush_pending(self) -> None:
        """Flush the reads registered so far, unless a flush is already due."""
        if self._pending and self._handle is None:
            contextvars.Context().run(self._flush)

    def _flush(self) -> None:
        self._handle = None
        pending, self._pending = self._pending, {}
        try:
            task = asyncio.ensure_future(self._fetch(pending))
        except BaseException as exc:  # every caller gets the failure, none waits forever
            _fail(pending.values(), exc)
            raise
        # One deadline per flush, not a timer per caller: whatever happens to the
        # shared request, no caller waits longer than a single call's budget.
        deadline = task.get_loop().call_later(
            self.budget + _BUDGET_SLACK, self._give_up, task, pending
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: deadline.cancel())

    def _give_up(self, task: asyncio.Task[None], pending: dict[str, list[_Waiter]]) -> None:
        """The shared read did not answer within the budget: fail its callers, stop it."""
        config = self._core.config
        for waiters in pending.values():
            for waiter in waiters:
                if not waiter.future.done():
                    waiter.future.set_exception(
                        KVTimeoutError(
                            f"get on table {config.table!r} failed: the shared read did not "
                            f"answer within {self.budget} s "
                            "(max_attempts x (connect_timeout + read_timeout))",
                            operation="get",
                            table=config.table,
                            key=waiter.key,
                            reason="coalesced read timed out",
                        )
                    )
        task.cancel()

    async def _fetch(self, pending: dict[str, list[_Waiter]]) -> None:
        live = {
            stored: alive
            for stored, waiters in pending.items()
            if (alive := [w for w in waiters if not w.future.done()])
        }
        try:
            if len(live) == 1:
                [(stored, waiters)] = live.items()
                await self._fetch_one(stored, waiters)
            elif not self.enabled:
                await asyncio.gather(*(self._fetch_one(s, w) for s, w in live.items()))
            elif live:
                await self._fetch_many(live)
        except BaseException as exc:
            _fail(live.values(), exc)
            if not isinstance(exc, Exception):
                raise

    async def _fetch_many(self, live: dict[str, list[_Waiter]]) -> None:
        core = self._core
        links = None
        if core.tel.tracing():  # else no span is started: no Link per caller to allocate
            links = [Link(w.op.span.get_span_context()) for ws in live.values() for w in ws]
        try:
            with core.tel.operation("get", "BatchGetItem", batch_size=len(live), links=links) as op:
                found, outcome = await read_items(core, op, list(live), fail_fast=True)
        except AccessDeniedError as exc:
            if "BatchGetItem" not in str(exc.reason):
                raise
            self.enabled = False
            core.tel.warn(
                "aiodynkv.coalescing_disabled", table=core.config.table, reason=exc.reason
            )
            await asyncio.gather(*(self._fetch_one(s, w) for s, w in live.items()))
            return
        unprocessed = set(outcome.unprocessed)
        for stored, waiters in live.items():
            if stored in unprocessed:
                deadline = core.config.max_attempts * core.config.read_timeout
                _fail(
                    [waiters],
                    outcome.error
                    or ThrottledError(
                        f"BatchGetItem left the key unprocessed for {deadline} s "
                        "(max_attempts x read_timeout)",
                        operation="get",
                        table=core.config.table,
                        reason="UnprocessedKeys at the coalesced read's deadline",
                    ),
                )
            else:
                _resolve(waiters, found.get(stored))

    async def _fetch_one(self, stored: str, waiters: list[_Waiter]) -> None:
        core = self._core
        first = waiters[0]
        request = requests.get(core.config, stored, consistent=core.config.consistent_read)
        try:
            with core.tel.activate(first.op):
                response = await core.send(first.op, "GetItem", request, first.key)
        except Exception as exc:  # noqa: BLE001 (handed to each caller)
            _fail([waiters], exc)
            return
        _resolve(waiters, response.get("Item"))


def _resolve(waiters: list[_Waiter], item: Item | None) -> None:
    for waiter in waiters:
        if not waiter.future.done():
            waiter.future.set_result(item)


def _fail(groups: Iterable[list[_Waiter]], exc: BaseException) -> None:
    """Give each caller its own exception, naming its own key."""
    for waiters in groups:
        for waiter in waiters:
            if waiter.future.done():
                continue
            table = waiter.op.tel.config.table
            if isinstance(exc, Exception):
                error = map_error(exc, operation="get", table=table, key=waiter.key)
            else:
                error = KVError(
                    f"get on table {table!r} failed: the shared read was cancelled",
                    operation="get",
                    table=table,
                    reason="the shared read was cancelled",
                )
            waiter.future.set_exception(rekey(error, "get", waiter.key))
