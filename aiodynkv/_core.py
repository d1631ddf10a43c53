"""A store's lifecycle: open and close, whole-operation accounting, loop checks, `send`.

`Core` is what a store and its namespace views share. Every public operation is
admitted as a whole (`Core.operation`): it is refused unless the store is open
and used from the event loop that opened it, and `aclose` waits for admitted
operations to finish, every request of a multi-request one included, up to
``close_timeout``. Past that bound, batches are told to stop (`Core.abort`) and end
with `BatchIncompleteError` naming what was done, unprocessed and in doubt.

The table a store opens on is managed here too: `ensure_table` creates it, waits
until it is ACTIVE and enables TTL; `probe_health` is the health check.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import math
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiodynkv import _requests as requests
from aiodynkv._cache import NearCache
from aiodynkv._errors import (
    ConditionFailedError,
    KVConfigError,
    KVError,
    KVTimeoutError,
    StoreClosedError,
    in_doubt_error,
    map_error,
)
from aiodynkv._protocol import Health
from aiodynkv._telemetry import Operation, Telemetry
from aiodynkv._transport import ServiceError, Transport, WireError
from aiodynkv._values import Pipeline, for_core

if TYPE_CHECKING:
    from aiodynkv._coalesce import ReadCoalescer
    from aiodynkv._codec import Item
    from aiodynkv._config import KVConfig
    from aiodynkv._transport.memory import MemoryTransport

__all__ = ["Core", "State", "describe_table", "ensure_table", "probe_health"]

# How long, past close_timeout, aclose lets stopped operations report before closing.
_ABORT_GRACE = 2.0
# Single requests that write: after an attempt that may have been applied, any failure
# but the outcomes their callers resolve with the write token is a `WriteInDoubtError`.
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"})
# Requests of a batch: `call_timeout` bounds each one (`batch_deadline` bounds the batch).
_BATCHES = frozenset({"BatchGetItem", "BatchWriteItem"})
# Failures the callers of a write resolve themselves (token, old item, reasons).
_RESOLVED = frozenset(
    {
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
        "TransactionInProgressException",
    }
)


class Slots:
    """The pool's connection slots: a first-come, first-served semaphore.

    A free slot is taken without a coroutine (``if slots.free and not slots.queued:
    slots.free -= 1`` else ``await slots.wait()``); `release` hands a slot straight to
    the oldest waiter. A waiter cancelled after it was handed one passes it on.
    """

    __slots__ = ("free", "queued")

    def __init__(self, size: int) -> None:
        self.free = size
        self.queued: collections.deque[asyncio.Future[None]] = collections.deque()

    async def wait(self) -> None:
        """Take a slot, waiting in line for one (use the fast path above first)."""
        if self.free and not self.queued:
            self.free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queued.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot, then cancelled: the next waiter gets it
            else:
                self.queued.remove(waiter)
            raise

    def release(self) -> None:
        """Give a slot back: to the oldest live waiter, else to the free count."""
        queued = self.queued
        while queued:
            waiter = queued.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


class State(enum.Enum):
    """Where a store is in its life."""

    UNOPENED = "unopened"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Core:
    """Config, telemetry, client, transport and lifecycle of one store and its views."""

    def __init__(self, config: KVConfig, client: Any) -> None:
        self.config = config
        self.tel = Telemetry(config)
        #: Seconds a whole call may take (`KVConfig.effective_call_timeout`).
        self.call_timeout = config.effective_call_timeout
        self.state = State.UNOPENED
        self.client: Any = client
        self.owns_client = client is None
        self.transport: Transport | None = None
        self.coalescer: ReadCoalescer | None = None
        #: Near cache and value pipeline: shared by the namespace views.
        self.cache = NearCache.from_config(config)
        self.pipeline = self._memory_pipeline() if config.transport == "memory" else for_core(self)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.inflight = 0
        self._stack = contextlib.AsyncExitStack()
        self._idle: asyncio.Event | None = None
        self._closed: asyncio.Event | None = None
        #: Set when aclose's bound has passed: batches stop and report.
        self.abort: asyncio.Event | None = None
        # Requests wait here for a pooled connection, not inside aiohttp's pool, where
        # the wait would count against connect_timeout and fail calls under load.
        self._slots: Slots | None = None
        self._deadlines: _Deadlines | None = None

    # -- lifecycle -------------------------------------------------------------

    def _refuse(self, operation: str) -> StoreClosedError:
        state = self.state
        if state is State.UNOPENED:
            hint = "use `async with AsyncDynamoKV(...)` or `await kv.open()`"
        else:
            hint = "create a new store"
        return StoreClosedError(
            f"{operation}: the store is {state.value}; {hint}",
            operation=operation,
            table=self.config.table,
        )

    async def open(self) -> None:
        """Create the client and transport (and the table with ``create_table``)."""
        if self.state is not State.UNOPENED:
            raise StoreClosedError(
                f"open: the store for table {self.config.table!r} was already "
                f"{'opened' if self.state is State.OPEN else 'closed'}; create a new one",
                operation="open",
                table=self.config.table,
            )
        self.loop = asyncio.get_running_loop()
        self._idle, self._closed, self.abort = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._idle.set()
        self._slots = Slots(self.config.max_pool_connections)
        self._deadlines = _Deadlines(self.loop, self.call_timeout)
        try:
            if self.config.transport == "memory":
                self.transport = self._memory_transport()
            else:
                if self.client is None:
                    self.client = await self._enter_client()
                self._adopt_region()
                self.transport = await self._new_transport()
            if self.config.coalesce_reads:
                from aiodynkv._coalesce import ReadCoalescer

                self.coalescer = ReadCoalescer(self)
            self.state = State.OPEN
            if self.config.create_table:
                await ensure_table(self.raw_send, self.config, self.tel)
        except BaseException:
            await self.close()
            raise

    async def _enter_client(self) -> Any:
        import botocore.exceptions as bex

        from aiodynkv._transport.botocore import new_client

        try:
            return await self._stack.enter_async_context(new_client(self.config))
        except bex.NoRegionError:
            raise KVConfigError(
                "region",
                "no region configured: pass region=, set AIODYNKV_REGION, AWS_REGION or "
                "AWS_DEFAULT_REGION, or set `region` for the profile in ~/.aws/config; "
                "for a local server set AIODYNKV_ENDPOINT (`aiodynkv local` starts one)",
            ) from None
        except bex.ProfileNotFound as exc:
            raise KVConfigError(
                "profile",
                f"{exc} (from profile= or AWS_PROFILE): name a profile of ~/.aws/config "
                "or ~/.aws/credentials, or unset it",
            ) from None
        except bex.ConfigParseError as exc:
            raise KVConfigError("profile", f"cannot read the AWS config file: {exc}") from None

    def _memory_transport(self) -> MemoryTransport:
        """The transport given as ``client=``, else the process-wide memory transport."""
        from aiodynkv._transport.memory import MemoryTransport

        if isinstance(self.client, MemoryTransport):
            return self.client
        return MemoryTransport.shared()

    def _memory_pipeline(self) -> Pipeline:
        """The value pipeline over the memory transport's object store and a KMS stand-in."""
        from aiodynkv._values import MemoryKms

        return Pipeline(
            self.config,
            self._memory_transport().blobs,
            MemoryKms(),
            lambda event, **fields: self.tel.warn(event, **fields),  # noqa: PLW0108 (tel is replaced on open)
        )

    async def _new_transport(self) -> Transport:
        config = self.config
        if config.transport == "botocore":
            from aiodynkv._transport.botocore import BotocoreTransport

            return BotocoreTransport(self.client)
        from aiodynkv import __version__
        from aiodynkv._transport.lean import LeanTransport, client_settings

        settings: dict[str, Any] = {
            "connect_timeout": config.connect_timeout,
            "read_timeout": config.read_timeout,
            "max_attempts": config.max_attempts,
            "retry_mode": config.retry_mode,
        }
        if not self.owns_client:  # the user's client: its Config decides, as it does on botocore
            settings.update(client_settings(self.client))
        transport = LeanTransport.from_client(
            self.client,
            max_pool_connections=config.max_pool_connections,
            user_agent=f"aiodynkv/{__version__}",
            profile=config.profile,
            **settings,
        )
        transport.spans = self.tel.http_spans()  # botocore's instrumentation cannot see it
        self._stack.push_async_callback(transport.aclose)
        return transport

    def _adopt_region(self) -> None:
        """Take the region the SDK resolved (from ~/.aws/config, say) into the config."""
        region = getattr(getattr(self.client, "meta", None), "region_name", None)
        if isinstance(region, str) and region and region != self.config.region:
            self.config = self.config.replace(region=region)
            self.tel = Telemetry(self.config)

    async def close(self) -> None:
        """Refuse new calls, wait for admitted ones (up to ``close_timeout``), close."""
        if self.state is State.CLOSED:
            return
        if self.loop is not None:
            check_loop(self.loop, "aclose", self.config.table, "close it from that loop")
        if self.state is State.CLOSING:
            assert self._closed is not None  # noqa: S101 (set by open)
            await self._closed.wait()
            return
        if self.state is State.OPEN:
            self.state = State.CLOSING
            await self._drain()
        self.state = State.CLOSED
        if self._deadlines is not None:
            self._deadlines.arm(math.inf)  # the timer goes, and the store with it
        try:
            await self._stack.aclose()
        finally:
            if self.owns_client:
                self.client = None
            if self._closed is not None:
                self._closed.set()

    async def _drain(self) -> None:
        assert self._idle is not None  # noqa: S101 (set by open)
        assert self.abort is not None  # noqa: S101 (set by open)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=self.config.close_timeout)
            return
        self.abort.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=_ABORT_GRACE)

    async def enter(self, manager: Any) -> Any:
        """Enter an async context manager that closes with the store (its S3 or KMS client)."""
        return await self._stack.enter_async_context(manager)

    def check_loop(self, operation: str) -> None:
        """Raise unless called from the event loop that opened the store."""
        check_loop(self.loop, operation, self.config.table)

    def admit(self, operation: str) -> None:
        """Count a whole operation in flight, if the store is open (`aclose` waits for it)."""
        if self.state is not State.OPEN:
            raise self._refuse(operation)
        if asyncio.get_running_loop() is not self.loop:
            self.check_loop(operation)  # raises
        self.inflight += 1
        if self.inflight == 1:
            assert self._idle is not None  # noqa: S101 (set by open)
            self._idle.clear()

    def release(self, *_: object) -> None:
        """An admitted operation has ended."""
        self.inflight -= 1
        if not self.inflight and self._idle is not None:
            self._idle.set()

    def operation(
        self,
        name: str,
        dynamo_op: str,
        key: str | None = None,
        *,
        batch_size: int | None = None,
    ) -> Operation:
        """``with core.operation(...) as op:`` admits, traces, times and logs one operation."""
        return Operation(self.tel, name, dynamo_op, key, batch_size, None, self)

    # -- requests --------------------------------------------------------------

    async def raw_send(self, action: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Send through the transport; failures stay transport errors (for `ensure_table`)."""
        transport, slots = self._sender(action)
        if slots.free and not slots.queued:
            slots.free -= 1
        else:
            await slots.wait()
        try:
            return await transport.send(action, request)
        finally:
            slots.release()

    def _sender(self, action: str) -> tuple[Transport, Slots]:
        """The transport and the pool's slots, or the error of a closed store."""
        transport = self.transport
        if self.state is State.CLOSED or transport is None:
            raise self._refuse(action)
        assert self._slots is not None  # noqa: S101 (set by open)
        return transport, self._slots

    async def send(
        self, op: Operation, action: str, request: Mapping[str, Any], key: str | None
    ) -> dict[str, Any]:
        """Send one request of an admitted operation within the call's deadline.

        The deadline (`Operation.deadline`) starts when the call's first request gets a
        pooled connection: waiting for one is bounded by the deadlines of the calls
        holding them. Failures become `KVError`s; the mapped error keeps the transport's
        error as its cause, so callers can read the old item of a failed condition from
        ``error.__cause__.item``.
        """
        try:
            transport, slots = self._sender(action)
            deadlines = self._deadlines
            assert deadlines is not None  # noqa: S101 (set by open)
            if slots.free and not slots.queued:  # a free slot, taken without a coroutine
                slots.free -= 1
            else:
                await slots.wait()
            try:
                start = time.monotonic()
                if op.deadline is None:
                    op.deadline = start + self.call_timeout
                limit = self.call_timeout if action in _BATCHES else op.deadline - start
                if limit <= 0:
                    raise _deadline_error(self.call_timeout, handed=False)
                response: dict[str, Any]
                if sys.version_info >= (3, 11):  # `deadlines.within`, inline
                    task, cancelling = deadlines.enter(limit)
                    try:
                        response = await transport.send(action, request)
                    except BaseException as exc:
                        if deadlines.fired(task, cancelling, exc):
                            raise _deadline_error(self.call_timeout, handed=True) from None
                        raise
                    deadlines.done(task)
                else:  # pragma: no cover - Python 3.10
                    response = await deadlines.within(transport.send(action, request), limit)
            finally:
                slots.release()
        except KVError:
            raise
        except Exception as exc:
            raise self._failed(op, action, exc, key) from exc
        if action in _WRITES and response.get("ResponseMetadata", {}).get("InDoubt"):
            op.in_doubt = True
        op.observe(response)
        return response

    def _failed(self, op: Operation, action: str, exc: Exception, key: str | None) -> KVError:
        """The `KVError` that `send` raises for the transport's `exc`."""
        body = getattr(exc, "body", None)
        if body:
            op.observe(body)
        error = map_error(exc, operation=op.name, table=self.config.table, key=key)
        if action in _WRITES and getattr(exc, "in_doubt", False):
            op.in_doubt = True
            if getattr(exc, "code", "") not in _RESOLVED:
                return self.in_doubt(op, error, key)
        elif op.in_doubt and not isinstance(error, ConditionFailedError):
            # A later request of a write whose earlier request may have been applied.
            return self.in_doubt(op, error, key)
        return error

    async def old_item(
        self, op: Operation, exc: ConditionFailedError, stored: str, key: str | None
    ) -> Item | None:
        """The item a failed condition met: returned by the server, else read (consistent).

        Every write asks for the old item with ``ReturnValuesOnConditionCheckFailure``;
        a server that does not return it (dynalite) costs one strongly consistent read.
        """
        item: Item | None = getattr(exc.__cause__, "item", None)
        if item is None:
            request = requests.get(self.config, stored, consistent=True)
            item = (await self.send(op, "GetItem", request, key)).get("Item")
        return item

    def in_doubt(
        self,
        op: Operation,
        error: KVError | None,
        key: str | None,
        *,
        keys: tuple[str, ...] = (),
        why: str | None = None,
    ) -> KVError:
        """The `WriteInDoubtError` of operation `op` (its cause: `error`'s cause)."""
        found = in_doubt_error(
            error, operation=op.name, table=self.config.table, key=key, keys=keys, why=why
        )
        found.show_key = self.config.expose_keys
        return found


def _cancelled(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError)


def _deadline_error(seconds: float, *, handed: bool) -> Exception:
    return WireError(
        f"the call's deadline passed (call_timeout={seconds:g} s) before a reply arrived",
        timeout=True,
        in_doubt=handed,
    )


class _Deadlines:
    """The whole-call deadlines of a store's requests in flight, on one timer.

    A deadline cancels its request's task, as `asyncio.timeout` does (a cancellation of
    the task's own, by its caller, is never taken for the deadline, nor the other way),
    but one timer set for the soonest serves them all: no timer per request joins the
    event loop's heap, where a later call's shorter timers would sift past it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, call_timeout: float) -> None:
        self._loop = loop
        self._call_timeout = call_timeout
        self._due: dict[asyncio.Task[Any], float] = {}  # loop time; one request per task
        self._fired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf

    if sys.version_info >= (3, 11):
        # A request within its deadline, on Python 3.11+ (`Core._send` inlines the await):
        # ``task, cancelling = enter(limit)``, await the request, then ``done(task)``, or on
        # any exception ``fired(task, cancelling, exc)``: True when the error is the deadline's.

        def enter(self, limit: float) -> tuple[asyncio.Task[Any], int]:
            """The current task's request starts: cancelled after `limit` seconds."""
            task = asyncio.current_task()
            assert task is not None  # noqa: S101 (called from a task)
            when = self._loop.time() + limit
            if when < self._at:
                self.arm(when)
            self._due[task] = when
            return task, task.cancelling()

        def done(self, task: asyncio.Task[Any]) -> None:
            """`task`'s request ended with a reply."""
            if self._ended(task):  # it fired as the request ended anyway
                task.uncancel()

        def fired(self, task: asyncio.Task[Any], cancelling: int, exc: BaseException) -> bool:
            """`task`'s request raised `exc`: True when that is the deadline's cancellation.

            A deadline that fired takes its cancellation back; the error is the deadline's
            unless the task's caller cancelled it too.
            """
            return self._ended(task) and task.uncancel() <= cancelling and _cancelled(exc)

        async def within(self, awaitable: Awaitable[Any], limit: float) -> Any:
            """Await `awaitable`, cancelled after `limit` seconds (then the deadline's error).

            `Core._send` does the same inline (one coroutine less per request).
            """
            task, cancelling = self.enter(limit)
            try:
                result = await awaitable
            except BaseException as exc:
                if self.fired(task, cancelling, exc):
                    raise _deadline_error(self._call_timeout, handed=True) from None
                raise
            self.done(task)
            return result

    else:  # pragma: no cover - Python 3.10: no Task.uncancel

        async def within(self, awaitable: Awaitable[Any], limit: float) -> Any:
            """Await `awaitable`, cancelled after `limit` seconds (then the deadline's error)."""
            try:
                return await asyncio.wait_for(awaitable, limit)
            except asyncio.TimeoutError:
                raise _deadline_error(self._call_timeout, handed=True) from None

    def _ended(self, task: asyncio.Task[Any]) -> bool:
        """Forget the request of `task`; True if its deadline fired."""
        del self._due[task]
        if task not in self._fired:
            return False
        self._fired.discard(task)
        return True

    def arm(self, when: float) -> None:
        """Set the timer for `when` (loop time; infinity: none)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._at = None, when
        if when < math.inf:
            self._timer = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        now, soonest = self._loop.time(), math.inf
        for task, when in self._due.items():
            if when > now:
                soonest = min(soonest, when)
            elif task not in self._fired:
                self._fired.add(task)
                task.cancel()
        self._timer = None
        self.arm(soonest)


def check_loop(
    loop: asyncio.AbstractEventLoop | None,
    operation: str,
    table: str,
    hint: str = "open one store per event loop",
) -> None:
    """Raise unless called from `loop`, the event loop that opened a store (every store)."""
    if asyncio.get_running_loop() is not loop:
        raise KVError(
            f"{operation}: the store was opened on another event loop; {hint}",
            operation=operation,
            table=table,
        )


# -- the table: `ensure_table` (create, wait for ACTIVE, enable TTL) and the health probe --

#: A transport's `send`: DynamoDB action and request in, response out.
Send = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
_POLL_SECONDS = 0.2
# What a server answers when it lacks the TTL API (dynalite).
_NO_TTL_API = frozenset({"UnknownOperationException"})


def _code(exc: BaseException) -> str:
    return exc.code if isinstance(exc, ServiceError) else ""


#: Turns a failure a table call expects into the outcome it records (None: raise it).
Excuse = Callable[[BaseException], str | None]


async def _manage(
    send: Send,
    config: KVConfig,
    tel: Telemetry,
    operation: str,
    action: str,
    body: dict[str, Any],
    excuse: Excuse,
) -> Any:
    """One traced table call: the response, None for a failure `excuse` names, else raises."""
    with tel.operation(operation, action) as op:
        try:
            response = await send(action, body)
        except Exception as exc:
            outcome = excuse(exc)
            if outcome is None:
                raise map_error(exc, operation=operation, table=config.table, key=None) from exc
            op.outcome = outcome
            return None
        op.observe(response)
        return response


async def describe_table(
    send: Send, config: KVConfig, tel: Telemetry, operation: str, *, missing_ok: bool = False
) -> Any:
    """DescribeTable, traced; raises the mapped `KVError`.

    With `missing_ok`, a missing table is an outcome (None), not an error.
    """

    def missing(exc: BaseException) -> str | None:
        return "miss" if missing_ok and _code(exc) == "ResourceNotFoundException" else None

    body = {"TableName": config.table}
    response = await _manage(send, config, tel, operation, "DescribeTable", body, missing)
    return None if response is None else response["Table"]


async def ensure_table(send: Send, config: KVConfig, tel: Telemetry) -> None:
    """Create the table if it is missing, wait until ACTIVE, and enable TTL.

    Safe to call twice and from several processes at once: a concurrent
    creation is waited for, not reported.

    Raises:
        KVConfigError: The table exists with a different partition key.
        KVTimeoutError: The table did not become ACTIVE within ``table_wait_timeout``.
        KVError: Any other failure, mapped.
    """
    table = await describe_table(send, config, tel, "ensure_table", missing_ok=True)
    if table is None:
        table = await _create(send, config, tel)
    _check_schema(table, config)
    if table.get("TableStatus") != "ACTIVE":
        await _wait_active(send, config, tel)
    await _enable_ttl(send, config, tel)


async def _create(send: Send, config: KVConfig, tel: Telemetry) -> Any:
    body = {
        "TableName": config.table,
        "AttributeDefinitions": [{"AttributeName": config.partition_key, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": config.partition_key, "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }

    def created_elsewhere(exc: BaseException) -> str | None:
        return "exists" if _code(exc) == "ResourceInUseException" else None

    response = await _manage(
        send, config, tel, "ensure_table", "CreateTable", body, created_elsewhere
    )
    if response is None:  # another process created it first
        return await describe_table(send, config, tel, "ensure_table")
    return response["TableDescription"]


def _check_schema(table: Any, config: KVConfig) -> None:
    hash_keys = [k["AttributeName"] for k in table.get("KeySchema", []) if k["KeyType"] == "HASH"]
    ranges = [k["AttributeName"] for k in table.get("KeySchema", []) if k["KeyType"] == "RANGE"]
    if hash_keys and (hash_keys != [config.partition_key] or ranges):
        raise KVConfigError(
            "partition_key",
            f"table {config.table!r} is keyed on {hash_keys + ranges}, "
            f"expected the single string key {config.partition_key!r}",
        )


async def _wait_active(send: Send, config: KVConfig, tel: Telemetry) -> None:
    deadline = time.monotonic() + config.table_wait_timeout
    while True:
        table = await describe_table(send, config, tel, "ensure_table")
        if table.get("TableStatus") == "ACTIVE":
            return
        if time.monotonic() >= deadline:
            raise KVTimeoutError(
                f"ensure_table: table {config.table!r} is {table.get('TableStatus')} after "
                f"{config.table_wait_timeout} s (table_wait_timeout)",
                operation="ensure_table",
                table=config.table,
            )
        await asyncio.sleep(_POLL_SECONDS)


async def _enable_ttl(send: Send, config: KVConfig, tel: Telemetry) -> None:
    def excuse(exc: BaseException) -> str | None:
        code, message = _code(exc), str(exc).lower()
        if code == "ValidationException" and "already enabled" in message:
            return "exists"
        if code in _NO_TTL_API or (code == "ValidationException" and "not support" in message):
            # Expired items are still hidden by every read; only server-side deletion is lost.
            tel.debug("aiodynkv.ttl_unsupported", table=config.table, error_code=code)
            return "unsupported"
        return None

    spec = {"Enabled": True, "AttributeName": config.ttl_attribute}
    body = {"TableName": config.table, "TimeToLiveSpecification": spec}
    await _manage(send, config, tel, "ensure_table", "UpdateTimeToLive", body, excuse)


async def probe_health(send: Send | None, config: KVConfig, tel: Telemetry) -> Health:
    """DescribeTable within ``connect_timeout + read_timeout``; UP only when ACTIVE.

    Never raises: any failure is a DOWN report naming the error. The details name
    the table, region, status, latency and item count, never the endpoint or
    credentials. ``item_count`` is DynamoDB's figure, refreshed about every six hours.
    """
    details: dict[str, Any] = {
        "table": config.table,
        "region": config.effective_region,
        "table_status": None,
    }
    start = time.perf_counter()
    try:
        if send is None:
            raise KVError("health: the store is not open", operation="health", table=config.table)
        table = await asyncio.wait_for(
            describe_table(send, config, tel, "health"),
            timeout=config.connect_timeout + config.read_timeout,
        )
    except Exception as exc:  # noqa: BLE001 (health reports every failure instead of raising)
        error = map_error(exc, operation="health", table=config.table, key=None)
        details["latency_ms"] = round((time.perf_counter() - start) * 1000.0, 3)
        details["error"] = type(error).__name__
        details["message"] = error.message
        return Health("DOWN", details)
    details["latency_ms"] = round((time.perf_counter() - start) * 1000.0, 3)
    details["table_status"] = table.get("TableStatus")
    details["item_count"] = table.get("ItemCount")
    return Health("UP" if details["table_status"] == "ACTIVE" else "DOWN", details)
