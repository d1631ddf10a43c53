"""Fault sequences at the transport seam: a scripted proxy, a model of every write, a runner.

`ScriptedFaultProxy` (a `tests.faults.FaultProxy`) plays a script of per-attempt events:
the n-th HTTP request it receives after `ScriptedFaultProxy.play` meets the n-th event,
every request after the script meets ``pass``. What each event does, and whether the
server saw (applied) the request:

==========================  ===========  =============================================
event                       forwarded    what the client gets
==========================  ===========  =============================================
``pass``                    yes          the server's reply
``applied_lost``            yes          the connection dropped, no reply
``reset``                   no           the connection dropped, no reply
``timeout_before_send``     no           nothing past its read timeout, then a drop
``500`` / ``503``           no           InternalFailure / ServiceUnavailable
``throttle``                no           ProvisionedThroughputExceededException, then
                                         ThrottlingException, in turn
``trickle``                 yes          the reply one byte every ``trickle_interval`` s
                                         (less than the read timeout: no read ever
                                         times out; only a whole-call deadline ends it)
``truncated_200``           yes          the head (full Content-Length), half the body,
                                         then a drop
``non_json_200``            no           an HTML 200 (a captive portal, a misrouted
                                         gateway: the request never reached DynamoDB)
``bad_crc``                 yes          the server's reply, ``x-amz-crc32`` off by one
``bad_crc_header``          yes          the server's reply, ``x-amz-crc32: not-a-number``
==========================  ===========  =============================================

`OPERATIONS` models every public write (and the two reads) on a fresh key: how to set
it up through a clean store, how to run it through the faulty one, what it must
return, and how to read the final state back (``applied`` once, ``not_applied``,
``doubled``, or something else). `run_case` runs one (operation, transport, sequence)
and `classify` judges it:

- ``exact``: the expected result, and the state it implies;
- ``in_doubt``: ``aiodynkv.WriteInDoubtError`` (when the package has it) or, for a
  batch, a `BatchIncompleteError` whose sets are true, with the state applied once or
  not at all;
- ``failed``: an error, nothing forwarded and nothing applied (a definite failure);
- a violation: ``doubled`` (applied twice), ``lost`` (success reported, nothing
  stored), ``false_outcome`` (a wrong result, or a "condition failed / nothing applied
  / lease lost" error for a write that was applied), ``corrupt_data`` (success built
  on a reply that failed or lacked verification, or a read returning other data),
  ``wrong_error`` (any other error class after a forwarded attempt; for reads, an
  error that is not a `TransientError`), ``unbounded`` (the call outlived
  `call_bound`), ``inconsistent`` (a state the model cannot name, like half a
  transaction);
- ``disturbed``: the case never ran as scripted, not even alone (`LATE`): a failure of
  the run, not of the store, and never a pass.

`run_cases` runs many cases at once in one event loop (their proxies in a process of
their own), each with its own proxy, store and keys, and runs a disturbed case again.
"""

from __future__ import annotations

import asyncio
import binascii
import collections
import contextlib
import copy
import itertools
import json
import os
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import aiodynkv
from aiodynkv import (
    AsyncDynamoKV,
    BatchIncompleteError,
    ConditionFailedError,
    KeyNotFoundError,
    KVError,
    LeaseLostError,
    LockNotAcquiredError,
    TransactionFailedError,
    TransientError,
)
from aiodynkv.testing import set_retry_waits
from tests.faults import FaultProxy, _fault_response, _read_message, _target

__all__ = [
    "EVENTS",
    "FORWARDED",
    "OPERATIONS",
    "TRANSPORTS",
    "UNVERIFIABLE",
    "VIOLATIONS",
    "Case",
    "Result",
    "ScriptedFaultProxy",
    "Ctx",
    "LoopLag",
    "ProxyProcess",
    "RemoteProxy",
    "Run",
    "all_cases",
    "by_pair",
    "call_bound",
    "classify",
    "cheap_clients",
    "faulty_store",
    "matrix_setup",
    "matrix_table",
    "no_retry_waits",
    "run_case",
    "run_cases",
    "sampled_cases",
    "sequences",
    "violation_groups",
]

EVENTS = (
    "applied_lost",
    "reset",
    "timeout_before_send",
    "500",
    "503",
    "throttle",
    "trickle",
    "truncated_200",
    "non_json_200",
    "bad_crc",
    "bad_crc_header",
)
#: Events whose request reached the server (and was applied there, if it could be).
FORWARDED = frozenset(
    {"pass", "applied_lost", "trickle", "truncated_200", "bad_crc", "bad_crc_header"}
)
#: Replies a client cannot verify: a success built on one of them is corrupt data.
UNVERIFIABLE = frozenset({"truncated_200", "non_json_200", "bad_crc", "bad_crc_header"})
TRANSPORTS = ("lean", "botocore")
VIOLATIONS = (
    "doubled",
    "lost",
    "false_outcome",
    "corrupt_data",
    "wrong_error",
    "unbounded",
    "inconsistent",
    "disturbed",
)
_WRITE_ACTIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
_HTML = b"<html><head><title>Welcome</title></head><body>Sign in to continue</body></html>"

# The faulty store's timeouts. A connect never fails in the matrix (loopback, no connect
# fault), so only the read timeout sets how long a held request or a trickle gap lasts.
CONNECT_TIMEOUT = 0.5
READ_TIMEOUT = 2.0
MAX_ATTEMPTS = 3
# The faulty store's whole-call deadline: every attempt timing out, and some slack (the
# retry waits are patched to zero, which the derived default cannot know).
CALL_TIMEOUT = MAX_ATTEMPTS * (CONNECT_TIMEOUT + READ_TIMEOUT) + 0.5
# A case runs as scripted only when the client saw each event as the script says: the
# proxy answers (or drops) each request within `LATE` s of reading it, a trickle's bytes
# come less than `LATE` s apart, a held request is given up by the client (it closes the
# connection) before the proxy's hold ends, and the proxy's event loop never lags more
# than `LAG` s while the call runs. LATE + 2 * LAG stays under the read timeout: under
# load, a reply cannot turn into a timeout unseen (the client's own loop lagging cannot
# do it: it reads what has arrived before it runs its timers). A case that misses one of
# these is disturbed: its result is not counted, and it runs again (`RERUN_WIDTHS`).
LATE = 0.5 * READ_TIMEOUT
LAG = 0.25 * READ_TIMEOUT
#: Cases run at once in one event loop by `run_cases` (each with its own proxy, store
#: and keys; most of a case is waiting on the proxy, moto or a timeout).
CONCURRENCY = 96


def call_bound(requests: int = 2) -> float:
    """The longest a call may take: `requests` requests, each ended by `CALL_TIMEOUT`."""
    return requests * CALL_TIMEOUT + 1.0


#: The most a call's bound stretches for the time its event loop was behind (`LoopLag`),
#: as a share of the bound. It stays under what a call ignoring its deadline takes in a
#: trickle (`ScriptedFaultProxy.trickle_for`), so such a call is unbounded on any machine.
STRETCH = 0.5


async def ended_within(
    call: asyncio.Future[Any], start: float, bound: float, lag: LoopLag | None
) -> bool:
    """Wait for `call`: True when it ended within `bound` s of `start`, stretched by the
    time the event loop running it was behind meanwhile.

    A deadline is a timer of that loop, and so is every step from the deadline to the
    call's end: a loop behind by one second in all (other cases, a loaded machine) ends a
    call one second late. `lag` (when given) watches the loop and says by how much, added
    up (`LoopLag.total_since`); the stretch is at most `STRETCH` x `bound`, so a call that
    never ends fails after 1.5 x `bound` at most, and at `bound` on an idle machine.
    """
    while not call.done():
        stretch = 0.0 if lag is None else min(lag.total_since(start), STRETCH * bound)
        left = start + bound + stretch - time.monotonic()
        if left <= 0:
            return False
        await asyncio.wait({call}, timeout=left)
    return True


# -- the scripted proxy ---------------------------------------------------------------


class ScriptedFaultProxy(FaultProxy):
    """A `FaultProxy` that plays a script of events, one per HTTP request (see module doc).

    Args:
        upstream_port: The DynamoDB emulator's port on 127.0.0.1.
        hold: Seconds ``timeout_before_send`` holds a request at most: it drops the
            connection when the client gives up on it (as its read timeout makes it),
            or after `hold` (and notes the case disturbed: the client did not time out).
        trickle_interval: Seconds between two bytes of a trickled reply.
        trickle_for: Seconds a trickle lasts at most; then the rest is sent at once.
    """

    def __init__(
        self,
        upstream_port: int,
        *,
        hold: float = READ_TIMEOUT + 1.5,
        trickle_interval: float = READ_TIMEOUT * 0.3,
        trickle_for: float = 30.0,
    ) -> None:
        super().__init__(upstream_port)
        self.hold = hold
        self.trickle_interval = trickle_interval
        self.trickle_for = trickle_for
        #: A reply later than this (s) is noted late (`LATE`).
        self.late_after = LATE
        self.queue: list[str] = []
        #: (action, event) of every request since `play`.
        self.log: list[tuple[str, str]] = []
        #: Why the requests since `play` did not go as scripted (see `LATE`), if they did not.
        self.late: list[str] = []
        self._recording = False
        self._throttled = 0
        self._generation = 0  # a new one per case (`begin`): older connections play nothing

    def begin(self) -> None:
        """A new case: every request passes, unlogged, and the connections opened before
        now (by an earlier case's store) never play its events."""
        self.stop()
        self._generation += 1

    def play(self, events: Iterable[str]) -> None:
        """Play `events` on the next requests (then ``pass``), logging each request."""
        unknown = [e for e in events if e not in EVENTS and e != "pass"]
        if unknown:
            raise ValueError(f"unknown events: {unknown}")
        self.queue = list(events)
        self.log = []
        self.late = []
        self._throttled = 0
        self._recording = True

    def stop(self) -> None:
        """Every request passes again, unlogged."""
        self.queue = []
        self._recording = False

    def _next(self, action: str, generation: int) -> tuple[str, bool]:
        """The event for the next request, and whether it is logged (played)."""
        if generation != self._generation:
            return "pass", False
        event = self.queue.pop(0) if self.queue else "pass"
        if self._recording:
            self.log.append((action, event))
        return event, self._recording

    def _note_late(self, played: bool, what: str) -> None:
        if played and self._recording:
            self.late.append(what)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        self.stats.connections += 1
        generation = self._generation
        try:
            while True:
                request = await _read_message(reader)
                if request is None:
                    return
                self.stats.requests += 1
                event, played = self._next(_target(request), generation)
                kept = await self._play_one(event, request, reader, writer, played)
                if not kept:
                    writer.transport.abort()
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            if task is not None:
                self._handlers.discard(task)
            self.stats.connections -= 1
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _play_one(  # noqa: PLR0911, PLR0912 - one branch per event
        self,
        event: str,
        request: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        played: bool,
    ) -> bool:
        """Answer `request` as `event` says; False when the connection is to be dropped."""
        if event == "reset":
            return False
        if event == "timeout_before_send":
            try:  # the client gives up on the request (its read timeout) and closes
                ended = await asyncio.wait_for(reader.read(1), self.hold) == b""
            except ConnectionError:
                ended = True
            except TimeoutError:
                ended = False
            if not ended:
                self._note_late(played, f"timeout_before_send: no timeout within {self.hold} s")
            return False
        if event == "throttle":  # the two throttling codes, in turn
            self._throttled += 1
            await _send(writer, _fault_response(("throttling", "throttle")[self._throttled % 2]))
            return True
        if event in {"500", "503"}:
            await _send(writer, _fault_response(event))
            return True
        if event == "non_json_200":
            await _send(writer, _response(200, "OK", "text/html; charset=utf-8", _HTML))
            return True
        start = time.monotonic()
        reply = await self._answer(request)  # forwarded: the server applies it
        took = time.monotonic() - start
        if took > self.late_after:  # noted before the client can see anything of it
            self._note_late(played, f"{event}: the server answered after {took:.2f} s")
        head, _, body = reply.partition(b"\r\n\r\n")
        if event == "applied_lost":
            return False
        if event == "truncated_200":
            await _send(writer, head + b"\r\n\r\n" + body[: len(body) // 2])
            return False
        if event == "bad_crc":
            crc = (binascii.crc32(body) + 1) % 2**32
            await _send(writer, _with_header(head, "x-amz-crc32", str(crc)) + b"\r\n\r\n" + body)
            return True
        if event == "bad_crc_header":
            head = _with_header(head, "x-amz-crc32", "not-a-number")
            await _send(writer, head + b"\r\n\r\n" + body)
            return True
        if event == "trickle":
            return await self._trickle(writer, reply, played)
        await _send(writer, reply)  # pass
        return True

    async def _trickle(self, writer: asyncio.StreamWriter, reply: bytes, played: bool) -> bool:
        """The whole reply (head included) one byte at a time, for `trickle_for` s at most."""
        until = time.monotonic() + self.trickle_for
        last = time.monotonic()
        for index in range(len(reply)):
            if writer.transport.is_closing():
                return False
            now = time.monotonic()
            if now - last > self.late_after:
                self._note_late(played, f"trickle: {now - last:.2f} s between two bytes")
            last = now
            if now >= until:
                await _send(writer, reply[index:])
                return True
            await _send(writer, reply[index : index + 1])
            await asyncio.sleep(self.trickle_interval)
        return True


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


def _with_header(head: bytes, name: str, value: str) -> bytes:
    lines = [
        line
        for line in head.split(b"\r\n")
        if line.partition(b":")[0].strip().lower() != name.encode()
    ]
    lines.append(f"{name}: {value}".encode())
    return b"\r\n".join(lines)


def _response(status: int, reason: str, content_type: str, body: bytes) -> bytes:
    head = [
        f"HTTP/1.1 {status} {reason}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


# -- no waiting between retries -------------------------------------------------------


@contextlib.contextmanager
def no_retry_waits() -> Iterator[None]:
    """Remove the retry backoff of both transports and of batches (the logic stays)."""
    import botocore.retries.standard

    # botocore's own backoff (transport="botocore") has no public switch: its config
    # sets the mode and the attempts, never the delay.
    with (
        set_retry_waits(False),
        mock.patch.object(
            botocore.retries.standard.ExponentialBackoff, "delay_amount", return_value=0.0
        ),
    ):
        yield


# -- the model ------------------------------------------------------------------------

APPLIED, NOT_APPLIED, DOUBLED = "applied", "not_applied", "doubled"


@dataclass
class Ctx:
    """One case: its stores and keys, and what its setup left (versions, locks...)."""

    direct: AsyncDynamoKV  # no faults: the ground truth
    kv: AsyncDynamoKV  # through the scripted proxy
    key: str
    expected: Any = None  # the expected result, when setup computes it
    keys: list[str] = field(default_factory=list)
    version: int = 0
    fence: int = 0
    lock: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class Op:
    """One public operation: setup, run, expected result, final state."""

    name = ""
    read = False
    #: Errors that say "not applied" (a false outcome when the write was applied).
    denials: tuple[type[BaseException], ...] = (ConditionFailedError,)
    requests = 2  # requests a call may send (for `call_bound`)
    result: Any = True  # the expected result (unless setup puts one in ``ctx.expected``)

    async def setup(self, ctx: Ctx) -> None:
        """Prepare the key(s) through the clean store (nothing by default)."""

    async def run(self, ctx: Ctx) -> Any:
        raise NotImplementedError

    def expected(self, ctx: Ctx) -> Any:
        return self.result if ctx.expected is None else ctx.expected

    async def state(self, ctx: Ctx) -> str:
        raise NotImplementedError

    async def cleanup(self, ctx: Ctx) -> None:
        if ctx.lock is not None:
            await ctx.lock._stop_renewer()


async def _value_version(direct: AsyncDynamoKV, key: str) -> tuple[Any, int | None]:
    try:
        return await direct.get_with_version(key)
    except aiodynkv.KeyNotFoundError:
        return None, None


def _versioned(value: Any, version: int | None, old: Any, new: Any, base: int) -> str:
    """applied/not_applied/doubled for a write of `new` over `old` at version `base`."""
    if value == new and version == base + 1:
        return APPLIED
    if value == new and version is not None and version >= base + 2:
        return DOUBLED
    if value == old and version == base:
        return NOT_APPLIED
    return f"value {value!r} at version {version} (base {base})"


class SetPlain(Op):
    name = "set"

    async def setup(self, ctx: Ctx) -> None:
        await ctx.direct.set(ctx.key, "old")
        ctx.version = (await ctx.direct.get_with_version(ctx.key))[1]

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.kv.set(ctx.key, "new")

    async def state(self, ctx: Ctx) -> str:
        value, version = await _value_version(ctx.direct, ctx.key)
        return _versioned(value, version, "old", "new", ctx.version)


class SetIfAbsent(Op):
    name = "set(if_absent)"

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.kv.set(ctx.key, "new", if_absent=True)

    async def state(self, ctx: Ctx) -> str:
        value, _ = await _value_version(ctx.direct, ctx.key)
        return {None: NOT_APPLIED, "new": APPLIED}.get(value, f"value {value!r}")


class SetIfVersion(SetPlain):
    name = "set(if_version)"

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.kv.set(ctx.key, "new", if_version=ctx.version)


class DeletePlain(SetPlain):
    name = "delete"

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.kv.delete(ctx.key)

    async def state(self, ctx: Ctx) -> str:
        value, version = await _value_version(ctx.direct, ctx.key)
        if value is None:
            return APPLIED
        return NOT_APPLIED if version == ctx.version else f"value {value!r} at {version}"


class DeleteIfVersion(DeletePlain):
    name = "delete(if_version)"

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.kv.delete(ctx.key, if_version=ctx.version)


def _counter_state(value: Any, start: int, delta: int) -> str:
    if value == start + delta:
        return APPLIED
    if value == start:
        return NOT_APPLIED
    if isinstance(value, int) and (value - start) % delta == 0 and value > start + delta:
        return DOUBLED
    return f"counter {value!r} (from {start}, +{delta})"


class Incr(Op):
    name = "incr"
    denials = ()

    async def setup(self, ctx: Ctx) -> None:
        await ctx.direct.set_counter(ctx.key, 10)

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.kv.incr(ctx.key, 5)

    result: Any = 15

    async def state(self, ctx: Ctx) -> str:
        return _counter_state(await ctx.direct.get(ctx.key, None), 10, 5)


class Expire(SetPlain):
    name = "expire"
    denials = ()

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.kv.expire(ctx.key, 3600)

    async def state(self, ctx: Ctx) -> str:
        value, version = await _value_version(ctx.direct, ctx.key)
        ttl = await ctx.direct.ttl(ctx.key) if value is not None else None
        if value != "old":
            return f"value {value!r}"
        if ttl is None:
            return NOT_APPLIED if version == ctx.version else f"no expiry at version {version}"
        return APPLIED if version == ctx.version + 1 else DOUBLED


class Persist(Expire):
    name = "persist"

    async def setup(self, ctx: Ctx) -> None:
        await ctx.direct.set(ctx.key, "old", ttl=3600)
        ctx.version = (await ctx.direct.get_with_version(ctx.key))[1]

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.kv.persist(ctx.key)

    async def state(self, ctx: Ctx) -> str:
        value, version = await _value_version(ctx.direct, ctx.key)
        ttl = await ctx.direct.ttl(ctx.key) if value is not None else None
        if value != "old":
            return f"value {value!r}"
        if ttl is not None:
            return NOT_APPLIED if version == ctx.version else f"expiry kept at version {version}"
        return APPLIED if version == ctx.version + 1 else DOUBLED


class SetCounter(Op):
    name = "set_counter"
    denials = ()

    async def setup(self, ctx: Ctx) -> None:
        await ctx.direct.set_counter(ctx.key, 3)
        ctx.version = (await ctx.direct.get_with_version(ctx.key))[1]

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.kv.set_counter(ctx.key, 7)

    result: Any = None

    async def state(self, ctx: Ctx) -> str:
        value, version = await _value_version(ctx.direct, ctx.key)
        return _versioned(value, version, 3, 7, ctx.version)


def _key_state(value: object, *, new: object, old: object) -> bool | None:
    """True when one key of a batch holds what the batch writes, False when untouched."""
    return True if value == new else False if value == old else None


class SetMany(Op):
    name = "set_many"
    denials = ()

    async def setup(self, ctx: Ctx) -> None:
        ctx.keys = [f"{ctx.key}-{i}" for i in range(3)]

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.kv.set_many(dict.fromkeys(ctx.keys, "new"))

    result: Any = None

    async def applied_keys(self, ctx: Ctx) -> dict[str, bool | None]:
        """Per key: True applied, False not applied, None neither."""
        found = await ctx.direct.get_many(ctx.keys)
        return {k: _key_state(found.get(k), new="new", old=None) for k in ctx.keys}

    async def state(self, ctx: Ctx) -> str:
        states = set((await self.applied_keys(ctx)).values())
        if states == {True}:
            return APPLIED
        if states == {False}:
            return NOT_APPLIED
        return f"per key {sorted(map(str, states))}"


class DeleteMany(SetMany):
    name = "delete_many"

    async def setup(self, ctx: Ctx) -> None:
        ctx.keys = [f"{ctx.key}-{i}" for i in range(3)]
        await ctx.direct.set_many(dict.fromkeys(ctx.keys, "old"))

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.kv.delete_many(ctx.keys)

    result: Any = 3  # every key existed

    async def applied_keys(self, ctx: Ctx) -> dict[str, bool | None]:
        found = await ctx.direct.get_many(ctx.keys)
        return {k: _key_state(found.get(k), new=None, old="old") for k in ctx.keys}


class TxCommit(Op):
    """A transaction adding 5 to a counter and setting a fresh key."""

    name = "tx.commit"
    denials = (TransactionFailedError, ConditionFailedError)

    async def setup(self, ctx: Ctx) -> None:
        ctx.keys = [f"{ctx.key}-n", f"{ctx.key}-s"]
        await ctx.direct.set_counter(ctx.keys[0], 10)

    async def run(self, ctx: Ctx) -> Any:
        tx = ctx.kv.transaction()
        tx.incr(ctx.keys[0], 5)
        tx.set(ctx.keys[1], "new")
        return await tx.commit()

    result: Any = None

    async def state(self, ctx: Ctx) -> str:
        counter = _counter_state(await ctx.direct.get(ctx.keys[0], None), 10, 5)
        value = await ctx.direct.get(ctx.keys[1], None)
        if counter == APPLIED and value == "new":
            return APPLIED
        if counter == NOT_APPLIED and value is None:
            return NOT_APPLIED
        if counter == DOUBLED and value == "new":
            return DOUBLED
        return f"counter {counter}, value {value!r}"


class TxDeletes(Op):
    """A transaction of deletes only (nothing of its own to recognise on a retry)."""

    name = "tx.commit(deletes)"
    denials = (TransactionFailedError, ConditionFailedError)

    async def setup(self, ctx: Ctx) -> None:
        ctx.keys = [f"{ctx.key}-a", f"{ctx.key}-b"]
        await ctx.direct.set_many(dict.fromkeys(ctx.keys, "old"))

    async def run(self, ctx: Ctx) -> Any:
        tx = ctx.kv.transaction()
        for key in ctx.keys:
            tx.delete(key)
        return await tx.commit()

    result: Any = None

    async def state(self, ctx: Ctx) -> str:
        found = await ctx.direct.get_many(ctx.keys)
        if not found:
            return APPLIED
        if len(found) == len(ctx.keys):
            return NOT_APPLIED
        return f"{len(found)} of {len(ctx.keys)} left"


async def _lock_item(direct: AsyncDynamoKV, name: str) -> dict[str, Any]:
    from aiodynkv._keys import LOCK, reserved_key

    stored = reserved_key(direct, LOCK, name, "lock")
    response = await direct.client.get_item(
        TableName=direct.config.table,
        Key={direct.config.partition_key: {"S": stored}},
        ConsistentRead=True,
    )
    item: dict[str, Any] = response.get("Item") or {}
    return item


def _lock_fields(item: dict[str, Any]) -> tuple[str | None, int, int]:
    from aiodynkv._requests import LOCK_FENCE, LOCK_LEASE, LOCK_OWNER

    owner = item.get(LOCK_OWNER, {}).get("S")
    fence = int(item.get(LOCK_FENCE, {}).get("N", 0))
    lease = int(item.get(LOCK_LEASE, {}).get("N", 0))
    return owner, fence, lease


class LockAcquire(Op):
    name = "lock.acquire"
    denials = (LockNotAcquiredError, LeaseLostError)

    async def setup(self, ctx: Ctx) -> None:
        held = ctx.direct.lock(ctx.key, lease=30, wait=0)
        ctx.fence = await held.acquire()
        await held.release()
        ctx.expected = ctx.fence + 1

    async def run(self, ctx: Ctx) -> Any:
        ctx.lock = ctx.kv.lock(ctx.key, lease=30, wait=0)
        return await ctx.lock.acquire()

    async def state(self, ctx: Ctx) -> str:
        owner, fence, _ = _lock_fields(await _lock_item(ctx.direct, ctx.key))
        if owner is None and fence == ctx.fence:
            return NOT_APPLIED
        if owner is not None and fence == ctx.fence + 1:
            mine = ctx.lock is not None and ctx.lock._owner in {None, owner}
            return APPLIED if mine else f"held by another owner, fence {fence}"
        if owner is not None and fence > ctx.fence + 1:
            return DOUBLED
        return f"owner {'set' if owner else 'none'}, fence {fence} (was {ctx.fence})"


class LockExtend(Op):
    name = "lock.extend"
    denials = (LeaseLostError, LockNotAcquiredError)

    async def setup(self, ctx: Ctx) -> None:
        ctx.lock = ctx.kv.lock(ctx.key, lease=30, wait=0)
        await ctx.lock.acquire()
        ctx.extra["owner"] = ctx.lock._owner

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.lock.extend(lease=20)

    result: Any = None

    async def state(self, ctx: Ctx) -> str:
        # Renewing twice is harmless (the same lease, a newer version): applied either way.
        owner, _, lease = _lock_fields(await _lock_item(ctx.direct, ctx.key))
        if owner != ctx.extra["owner"]:
            return f"owner {'changed' if owner else 'gone'}"
        return {20000: APPLIED, 30000: NOT_APPLIED}.get(lease, f"lease {lease} ms")


class LockRelease(LockExtend):
    name = "lock.release"

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.lock.release()

    async def state(self, ctx: Ctx) -> str:
        owner, _, _ = _lock_fields(await _lock_item(ctx.direct, ctx.key))
        if owner is None:
            return APPLIED
        return NOT_APPLIED if owner == ctx.extra["owner"] else "another owner"


class CounterIncr(Op):
    name = "counter.incr"
    denials = ()

    async def setup(self, ctx: Ctx) -> None:
        await ctx.direct.counter(ctx.key, shards=1).incr(10)

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.kv.counter(ctx.key, shards=1).incr(5)

    result: Any = None

    async def state(self, ctx: Ctx) -> str:
        return _counter_state(await ctx.direct.counter(ctx.key, shards=1).value(), 10, 5)


class Get(Op):
    name = "get"
    read = True
    requests = 1

    async def setup(self, ctx: Ctx) -> None:
        await ctx.direct.set(ctx.key, "balance=100")

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.kv.get(ctx.key)

    result: Any = "balance=100"


class GetMany(Get):
    name = "get_many"

    async def setup(self, ctx: Ctx) -> None:
        ctx.keys = [f"{ctx.key}-{i}" for i in range(3)]
        ctx.expected = {k: f"balance={i}00" for i, k in enumerate(ctx.keys)}
        await ctx.direct.set_many(ctx.expected)

    async def run(self, ctx: Ctx) -> Any:
        return await ctx.kv.get_many(ctx.keys)


OPERATIONS: dict[str, Op] = {
    op.name: op
    for op in (
        SetPlain(),
        SetIfAbsent(),
        SetIfVersion(),
        DeletePlain(),
        DeleteIfVersion(),
        Incr(),
        Expire(),
        Persist(),
        SetCounter(),
        SetMany(),
        DeleteMany(),
        TxCommit(),
        TxDeletes(),
        LockAcquire(),
        LockExtend(),
        LockRelease(),
        CounterIncr(),
        Get(),
        GetMany(),
    )
}


# -- cases ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    op: str
    transport: str
    sequence: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.op}|{self.transport}|{'+'.join(self.sequence)}"


def sequences(depth: int = 3) -> list[tuple[str, ...]]:
    """Every sequence of 1 to `depth` events (``pass`` pads the rest)."""
    found: list[tuple[str, ...]] = []
    for length in range(1, depth + 1):
        found.extend(itertools.product(EVENTS, repeat=length))
    return found


def all_cases(depth: int = 3, *, alone: frozenset[str] = frozenset()) -> list[Case]:
    """The whole matrix: every sequence x every operation x both transports.

    An event in `alone` (a trickle lasts a whole call deadline) is played only on its
    own, not within longer sequences, to bound the run's time.
    """
    return [
        Case(op, transport, seq)
        for op in OPERATIONS
        for transport in TRANSPORTS
        for seq in sequences(depth)
        if len(seq) == 1 or not alone & set(seq)
    ]


def sampled_cases(per_pair: int = 4, seed: int = 19) -> list[Case]:
    """A fixed sample: `per_pair` sequences per (operation, transport), every event per op.

    For each operation the events are shuffled and cut into sequences of two or three
    (so every event meets every operation, on one transport or the other); random
    sequences fill each (operation, transport) up to `per_pair`.
    """
    rng = random.Random(seed)
    # A trickle lasts until the call's bound: the filler leaves it out to keep the sample
    # fast (the covering sequences give every operation one).
    pool = [seq for seq in sequences(3) if "trickle" not in seq]
    cases: list[Case] = []
    for op in OPERATIONS:
        events = list(EVENTS)
        rng.shuffle(events)
        covering: list[tuple[str, ...]] = []
        while events:
            size = min(len(events), rng.choice((2, 3)))
            covering.append(tuple(events[:size]))
            events = events[size:]
        for index, transport in enumerate(TRANSPORTS):
            chosen = covering[index :: len(TRANSPORTS)]
            while len(chosen) < per_pair:
                chosen.append(rng.choice(pool))
            cases.extend(Case(op, transport, seq) for seq in chosen)
    return cases


# -- running and judging --------------------------------------------------------------


@dataclass
class Result:
    op: str
    transport: str
    sequence: tuple[str, ...]
    outcome: str  # exact, in_doubt, failed, or one of VIOLATIONS
    detail: str
    returned: str
    state: str
    elapsed: float
    log: list[tuple[str, str]]
    #: Why the case did not run as scripted ("" when it did; see `LATE`).
    late: str = ""
    #: How many times the case ran again after a disturbed run.
    reruns: int = 0
    #: Why its first run was disturbed, when it ran again.
    first_late: str = ""

    @property
    def violation(self) -> bool:
        return self.outcome in VIOLATIONS

    def as_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass
class Run:
    """What one call did, before judging."""

    value: Any = None
    error: BaseException | None = None
    timed_out: bool = False
    elapsed: float = 0.0
    #: Seconds the event loop running the call was behind meanwhile (`LoopLag.total_since`).
    behind: float = 0.0
    log: list[tuple[str, str]] = field(default_factory=list)


def _in_doubt_class() -> tuple[type[BaseException], ...]:
    found = getattr(aiodynkv, "WriteInDoubtError", None)
    return (found,) if isinstance(found, type) else ()


def _describe(error: BaseException | None, value: Any) -> str:
    if error is None:
        return f"returned {value!r}"
    return f"{type(error).__name__}: {str(error)[:160]}"


def _batch_truthful(error: BatchIncompleteError, per_key: dict[str, bool | None]) -> str:
    """'' when the error's sets are true of `per_key`, else what is not."""
    wrong: list[str] = []
    for key, applied in per_key.items():
        if key in error.done and applied is not True:
            wrong.append(f"{key[-2:]} in done but not applied")
        elif key in error.unprocessed and applied is not False:
            wrong.append(f"{key[-2:]} unprocessed but applied")
        elif key not in error.done and key not in error.unprocessed and key not in error.in_doubt:
            wrong.append(f"{key[-2:]} in no set")
    return "; ".join(wrong)


async def classify(op: Op, run: Run, ctx: Ctx) -> tuple[str, str, str]:
    """(outcome, detail, state) of one finished call."""
    last = run.log[-1][1] if run.log else "pass"
    if run.timed_out:
        state = "read" if op.read else await op.state(ctx)
        detail = f"still running after {run.elapsed:.1f} s ({run.behind:.1f} s of loop lag)"
        return "unbounded", detail, state
    if op.read:
        return _classify_read(op, run, ctx, last), _describe(run.error, run.value), "read"
    state = await op.state(ctx)
    if run.error is None:
        outcome, detail = _judge_success(op, run, ctx, state, last)
    else:
        outcome, detail = await _judge_error(op, run, ctx, state)
    return outcome, detail, state


def _judge_success(op: Op, run: Run, ctx: Ctx, state: str, last: str) -> tuple[str, str]:
    if state == DOUBLED:
        return "doubled", f"returned {run.value!r}, applied twice"
    if run.value != op.expected(ctx):
        return "false_outcome", f"returned {run.value!r}, expected {op.expected(ctx)!r}"
    if state == NOT_APPLIED:
        return "lost", "success reported, nothing applied"
    if state != APPLIED:
        return "inconsistent", f"success reported, state: {state}"
    if last in UNVERIFIABLE:
        return "corrupt_data", f"success built on a {last} reply"
    return "exact", ""


async def _judge_error(  # noqa: PLR0911 - one return per outcome
    op: Op, run: Run, ctx: Ctx, state: str
) -> tuple[str, str]:
    error = run.error
    assert error is not None
    described = _describe(error, None)
    forwarded = any(a in _WRITE_ACTIONS and e in FORWARDED for a, e in run.log)
    if state == DOUBLED:
        return "doubled", described
    if not isinstance(error, KVError):
        return "wrong_error", f"{described} (not a KVError)"
    if isinstance(error, _in_doubt_class()):
        return ("in_doubt" if state in (APPLIED, NOT_APPLIED) else "inconsistent"), described
    if isinstance(op, SetMany) and isinstance(error, BatchIncompleteError):
        wrong = _batch_truthful(error, await op.applied_keys(ctx))
        return ("false_outcome", wrong) if wrong else ("in_doubt", described)
    if state == APPLIED:
        kind = "false_outcome" if isinstance(error, op.denials) else "wrong_error"
        return kind, f"{described} (the write was applied)"
    if state == NOT_APPLIED:
        if forwarded:
            return "wrong_error", f"{described} (an attempt reached the server)"
        return "failed", described
    return "inconsistent", described


def _classify_read(op: Op, run: Run, ctx: Ctx, last: str) -> str:  # noqa: PLR0911
    error = run.error
    if error is None:
        if run.value != op.expected(ctx) or last in UNVERIFIABLE:
            return "corrupt_data"
        return "exact"
    if not isinstance(error, KVError):
        return "wrong_error"
    if isinstance(error, KeyNotFoundError):
        return "corrupt_data"  # the key is there: "missing" is false data
    if isinstance(error, TransientError):
        return "failed"
    if isinstance(error, BatchIncompleteError):
        done = dict(getattr(error, "done", {}) or {})
        expected = op.expected(ctx)
        return "failed" if all(expected.get(k) == v for k, v in done.items()) else "corrupt_data"
    return "wrong_error"


def faulty_store(
    direct: AsyncDynamoKV, proxy: FaultProxy | RemoteProxy, transport: str, **overrides: Any
) -> AsyncDynamoKV:
    """A store through `proxy` with the matrix's small timeouts."""
    fields: dict[str, Any] = {
        "endpoint": proxy.endpoint,
        "transport": transport,
        "create_table": False,
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        "max_attempts": MAX_ATTEMPTS,
        "call_timeout": CALL_TIMEOUT,
        "batch_deadline": 2.0,
    }
    fields.update(overrides)
    return AsyncDynamoKV(direct.config, **fields)


async def run_case(
    case: Case,
    direct: AsyncDynamoKV,
    proxy: RemoteProxy,
    heavy: asyncio.Semaphore | None = None,
    lag: LoopLag | None = None,
) -> Result:
    """Run `case` on a fresh key through `proxy`; judge it against the clean store `direct`.

    The result's ``late`` says why the case did not run as scripted (see `LATE`), empty
    when it did. `heavy` (when given) bounds how many cases at once open a store, set
    up, and read back and judge: the calls under test run outside it. `lag` (when given)
    watches the caller's event loop: a call that outlived its bound while that loop
    lagged a second or more is disturbed too (the loop, not the store, was late).
    """
    op = OPERATIONS[case.op]
    run = Run()
    late: list[str] = []
    gate = heavy if heavy is not None else contextlib.nullcontext()
    async with gate:
        kv = await faulty_store(direct, proxy, case.transport).open()
        ctx = Ctx(direct=direct, kv=kv, key=f"m-{uuid.uuid4().hex[:12]}")
        await proxy.begin()
        try:
            await op.setup(ctx)
        except KVError as exc:  # through the clean store (for a lease, the proxy passing)
            await op.cleanup(ctx)
            await kv.aclose()
            return _result(case, "disturbed", "", run, "", [f"setup: {_describe(exc, None)}"])
    try:
        await proxy.play(case.sequence)
        start = time.monotonic()
        call = asyncio.ensure_future(op.run(ctx))
        done = await ended_within(call, start, call_bound(op.requests), lag)
        run.elapsed = time.monotonic() - start
        run.behind = 0.0 if lag is None else lag.total_since(start)
        if not done:
            run.timed_out = True
            call.cancel()
            with contextlib.suppress(BaseException):
                await call
        elif call.exception() is not None:
            run.error = call.exception()
        else:
            run.value = call.result()
        run.log, seen, worst = await proxy.finish()
        late.extend(seen)
        if worst > LAG:
            late.append(f"the proxy's event loop lagged {worst:.2f} s")
        if run.timed_out and lag is not None and (mine := lag.worst_since(start)) >= 1.0:
            late.append(f"the stores' event loop lagged {mine:.2f} s")
        async with gate:
            outcome, detail, state = await classify(op, run, ctx)
    finally:
        await proxy.finish()
        async with gate:
            await op.cleanup(ctx)
            await kv.aclose()
    return _result(case, outcome, detail, run, state, late)


def _result(case: Case, outcome: str, detail: str, run: Run, state: str, late: list[str]) -> Result:
    return Result(
        case.op,
        case.transport,
        case.sequence,
        outcome,
        detail,
        _describe(run.error, run.value)[:200],
        state,
        round(run.elapsed, 3),
        run.log,
        late="; ".join(late)[:300],
    )


class LoopLag:
    """How late an event loop serves its timers (an async context manager run in it)."""

    def __init__(self, tick: float = 0.005, keep: float = 300.0) -> None:
        self.tick = tick
        self.keep = keep
        self._samples: collections.deque[tuple[float, float]] = collections.deque()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            late = now - before - self.tick
            if late > 0.005:
                self._samples.append((now, late))
            while self._samples and self._samples[0][0] < now - self.keep:
                self._samples.popleft()

    def worst_since(self, since: float) -> float:
        """The longest lag seen from `since` (`time.monotonic`) until now (from any thread)."""
        samples = tuple(self._samples)  # one step under the GIL: safe from another thread
        return max((late for at, late in samples if at >= since), default=0.0)

    def total_since(self, since: float) -> float:
        """The lags seen from `since` until now, added up: how long the loop was behind."""
        samples = tuple(self._samples)
        return sum(late for at, late in samples if at >= since)


class RemoteProxy:
    """A `ScriptedFaultProxy` in a `ProxyProcess`, driven over its control connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _call(self, **message: Any) -> dict[str, Any]:
        self._writer.write(json.dumps(message).encode() + b"\n")
        await self._writer.drain()
        line = await self._reader.readline()
        if not line:
            raise ConnectionError("the proxy process closed its control connection")
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def start(self, upstream_port: int) -> RemoteProxy:
        reply = await self._call(cmd="start", upstream=upstream_port, late=LATE)
        self.port = reply["port"]
        return self

    async def begin(self) -> None:
        """See `ScriptedFaultProxy.begin`."""
        await self._call(cmd="begin")

    async def play(self, events: Sequence[str]) -> None:
        """See `ScriptedFaultProxy.play` (in effect when this returns)."""
        await self._call(cmd="play", events=list(events))

    async def finish(self) -> tuple[list[tuple[str, str]], list[str], float]:
        """Stop playing; the requests logged since `play`, why they were late, and the
        longest lag of the proxy process's event loop since `play`."""
        reply = await self._call(cmd="finish")
        log = [(str(action), str(event)) for action, event in reply["log"]]
        return log, reply["late"], reply["lag"]

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


async def _control(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lag: LoopLag
) -> None:
    """One control connection of a `ProxyProcess`: one proxy, killed when it closes."""
    proxy: ScriptedFaultProxy | None = None
    since = time.monotonic()
    try:
        while line := await reader.readline():
            message = json.loads(line)
            reply: dict[str, Any] = {}
            if message["cmd"] == "start":
                proxy = ScriptedFaultProxy(message["upstream"])
                proxy.late_after = message["late"]
                await proxy.start()
                reply["port"] = proxy.port
            elif proxy is None:
                raise ValueError(f"no proxy started: {message!r}")
            elif message["cmd"] == "begin":
                proxy.begin()
            elif message["cmd"] == "play":
                proxy.play(message["events"])
                since = time.monotonic()
            elif message["cmd"] == "finish":
                reply = {"log": proxy.log, "late": proxy.late, "lag": lag.worst_since(since)}
                proxy.stop()
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        if proxy is not None:
            await proxy.kill()
        writer.close()


def serve_proxies() -> None:
    """The `ProxyProcess` entry point: print the control port, serve until stdin ends."""

    async def main() -> None:
        async with LoopLag() as lag:
            server = await asyncio.start_server(lambda r, w: _control(r, w, lag), "127.0.0.1", 0)
            sys.stdout.write(f"{server.sockets[0].getsockname()[1]}\n")
            sys.stdout.flush()
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            server.close()

    asyncio.run(main())


_ROOT = str(Path(__file__).resolve().parents[1])


class ProxyProcess:
    """The scripted proxies of `run_cases`, in a process of their own.

    The stores under test keep the caller's process busy (many cases at once); in a
    process of its own (no shared event loop, no shared GIL) a proxy answers on time
    all the same, so a client's read timeout or deadline can only fire early if the
    proxy or moto was late, which the proxy notes (`LATE`) and its loop's lag tells.
    """

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self.port = 0

    async def __aenter__(self) -> ProxyProcess:
        root = _ROOT
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.faultseq",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=root,
            env=env,
        )
        assert self._process.stdout is not None
        self.port = int(await asyncio.wait_for(self._process.stdout.readline(), 60))
        return self

    async def proxy(self, upstream_port: int) -> RemoteProxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        return await RemoteProxy(reader, writer).start(upstream_port)

    async def __aexit__(self, *_: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


@contextlib.contextmanager
def cheap_clients() -> Iterator[None]:
    """Open stores without the setup cost they share, each its own client all the same.

    Every store opens its own aiobotocore client, which costs about 50 ms of CPU, most
    of it the same every time: a botocore session registering its 6,000 built-in event
    handlers (here: a copy of them, as botocore itself copies them for each client) and
    an SSL context loading the CA bundle, for an ``http://`` endpoint too (here: one
    context, loaded once, shared). The store, its client, its retry quota and its
    connections stay its own.
    """
    import aiobotocore.httpsession
    import botocore.session

    register = botocore.session.Session._register_builtin_handlers
    templates: dict[type, Any] = {}

    def copied(self: Any, events: Any) -> None:
        emitter = getattr(self, "_original_handler", None)
        template = templates.get(type(emitter))
        if emitter is None or not _empty(emitter):
            register(self, events)
        elif template is None:
            register(self, events)
            templates[type(emitter)] = copy.copy(emitter)
        else:
            fresh = copy.copy(template)
            emitter._handlers = fresh._handlers
            emitter._unique_id_handlers = fresh._unique_id_handlers
            emitter._lookup_cache = {}

    with contextlib.ExitStack() as stack:
        stack.enter_context(
            mock.patch.object(botocore.session.Session, "_register_builtin_handlers", copied)
        )
        http = aiobotocore.httpsession
        if hasattr(http, "get_cert_path") and hasattr(http.AIOHTTPSession, "_get_ssl_context"):
            shared = http.AIOHTTPSession._get_ssl_context(None)
            loaded: set[Any] = set()
            real_cert_path = http.get_cert_path

            def cert_path(verify: Any) -> Any:
                path = real_cert_path(verify)
                if path in loaded:
                    return None  # the shared context has it already
                loaded.add(path)
                return path

            stack.enter_context(
                mock.patch.object(http.AIOHTTPSession, "_get_ssl_context", return_value=shared)
            )
            stack.enter_context(mock.patch.object(http, "get_cert_path", cert_path))
        yield


def _empty(emitter: Any) -> bool:
    try:
        root = emitter._handlers._root
        return not emitter._unique_id_handlers and not root["children"] and not root["values"]
    except (AttributeError, KeyError, TypeError):
        return False


class _Table:
    def __init__(self, direct: AsyncDynamoKV, left: int) -> None:
        self.direct = direct
        self.left = left  # cases it may still take
        self.users = 0


class _Tables:
    """Fresh tables for the cases, each taking `per_table` of them: moto copies a whole
    table for every transaction, which grows slow past the read timeout on a table of
    thousands of items."""

    def __init__(self, endpoint: str, per_table: int) -> None:
        self.endpoint = endpoint
        self.per_table = per_table
        self._current: _Table | None = None
        self._lock = asyncio.Lock()
        self._open: set[_Table] = set()

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[AsyncDynamoKV]:
        async with self._lock:
            if self._current is None or self._current.left <= 0:
                self._current = await self._create()
            table = self._current
            table.left -= 1
            table.users += 1
        try:
            yield table.direct
        finally:
            table.users -= 1
            if table.left <= 0 and table.users == 0 and table in self._open:
                await self._drop(table)

    async def _create(self) -> _Table:
        direct = AsyncDynamoKV(
            table=f"fm-{uuid.uuid4().hex[:12]}",
            endpoint=self.endpoint,
            create_table=True,
            read_timeout=30,
            call_timeout=120,
            max_pool_connections=4 * CONCURRENCY,
        )
        table = _Table(await direct.open(), self.per_table)
        self._open.add(table)
        return table

    async def _drop(self, table: _Table) -> None:
        self._open.discard(table)
        try:
            await table.direct.client.delete_table(TableName=table.direct.config.table)
        finally:
            await table.direct.aclose()

    async def close(self) -> None:
        for table in list(self._open):
            await self._drop(table)


#: How many cases at once `run_cases` runs the disturbed cases again with, round after
#: round (0: as many as the first round): fewer in the later rounds, the last alone.
RERUN_WIDTHS = (0, 0, 16, 4, 1, 1)
#: Cases that open a store, set up, or read back and judge at once in `run_cases`: the
#: rest wait for their turn or for the call under test.
HEAVY = 3


async def run_cases(
    cases: Sequence[Case],
    endpoint: str,
    *,
    concurrency: int = CONCURRENCY,
    per_table: int = 100,
) -> list[Result]:
    """Run `cases` against the DynamoDB emulator at `endpoint`, `concurrency` at a time.

    Each case has its own scripted proxy (one per slot, taking a case at a time; the
    proxies run in a `ProxyProcess`), its own store and its own keys. A disturbed case (see
    `LATE`) is not counted: it runs again, in rounds of fewer cases at once and at last
    alone (`RERUN_WIDTHS`); one still disturbed then ends ``disturbed`` (a failure). A
    violation other than ``unbounded`` counts even from a disturbed run: lateness
    excuses a late call, never a doubled write or a false outcome. Results come in case
    order, each with its re-runs.
    """
    port = int(endpoint.rsplit(":", 1)[1])
    results: list[Result | None] = [None] * len(cases)
    tables = _Tables(endpoint, per_table)
    heavy = asyncio.Semaphore(HEAVY)

    async def slot(queue: collections.deque[int], proxies: ProxyProcess, lag: LoopLag) -> None:
        proxy = await proxies.proxy(port)
        try:
            while queue:
                index = queue.popleft()
                async with tables.lease() as direct:
                    result = await run_case(cases[index], direct, proxy, heavy, lag)
                before = results[index]
                if before is not None:
                    result.reruns = before.reruns + 1
                    result.first_late = before.first_late or before.late
                results[index] = result
        finally:
            await proxy.close()

    async def drain(indices: list[int], width: int, proxies: ProxyProcess) -> None:
        queue = collections.deque(indices)
        async with LoopLag(tick=0.05) as lag:
            await asyncio.gather(
                *(slot(queue, proxies, lag) for _ in range(min(width, len(indices))))
            )

    def disturbed() -> list[int]:
        return [
            index
            for index, result in enumerate(results)
            if result is not None and result.late and not _counts_under_load(result)
        ]

    with cheap_clients():
        try:
            async with ProxyProcess() as proxies:
                await drain(list(range(len(cases))), concurrency, proxies)
                for width in RERUN_WIDTHS:
                    again = disturbed()
                    if not again:
                        break
                    await drain(again, min(width or concurrency, concurrency), proxies)
        finally:
            await tables.close()
    for index in disturbed():
        result = results[index]
        assert result is not None
        result.outcome, result.detail = "disturbed", f"{result.outcome}, {result.detail}"
    return [result for result in results if result is not None]


def _counts_under_load(result: Result) -> bool:
    return result.outcome in VIOLATIONS and result.outcome not in {"unbounded", "disturbed"}


@contextlib.asynccontextmanager
async def matrix_setup(endpoint: str) -> AsyncIterator[tuple[AsyncDynamoKV, ScriptedFaultProxy]]:
    """A fresh table on `endpoint` (a clean store to it) and a scripted proxy in front."""
    name = f"fm-{uuid.uuid4().hex[:12]}"
    async with AsyncDynamoKV(table=name, endpoint=endpoint, create_table=True) as direct:
        proxy = ScriptedFaultProxy(int(endpoint.rsplit(":", 1)[1]))
        await proxy.start()
        try:
            yield direct, proxy
        finally:
            await proxy.kill()
            await direct.client.delete_table(TableName=name)


def by_pair(cases: Iterable[Case]) -> dict[tuple[str, str], list[Case]]:
    """Cases grouped by (operation, transport), in order."""
    groups: dict[tuple[str, str], list[Case]] = {}
    for case in cases:
        groups.setdefault((case.op, case.transport), []).append(case)
    return groups


# -- the summary ----------------------------------------------------------------------


def matrix_table(results: Sequence[Result]) -> str:
    """Markdown: per operation x transport, sequences run, exact, in doubt, each violation."""
    columns = ("run", "exact", "in_doubt", "failed", *VIOLATIONS)
    rows: dict[tuple[str, str], dict[str, int]] = {}
    for result in results:
        row = rows.setdefault((result.op, result.transport), dict.fromkeys(columns, 0))
        row["run"] += 1
        row[result.outcome] += 1
    order = {name: index for index, name in enumerate(OPERATIONS)}
    header = ["operation", "transport", *(c.replace("_", " ") for c in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    totals = dict.fromkeys(columns, 0)
    for (op, transport), row in sorted(
        rows.items(), key=lambda r: (order.get(r[0][0], 99), r[0][1])
    ):
        lines.append(f"| `{op}` | {transport} | " + " | ".join(str(row[c]) for c in columns) + " |")
        for column in columns:
            totals[column] += row[column]
    lines.append("| **all** | | " + " | ".join(f"**{totals[c]}**" for c in columns) + " |")
    return "\n".join(lines) + "\n"


def violation_groups(results: Sequence[Result]) -> dict[tuple[str, str, str], list[Result]]:
    """Violations grouped by (operation, transport, outcome)."""
    groups: dict[tuple[str, str, str], list[Result]] = {}
    for result in results:
        if result.violation:
            groups.setdefault((result.op, result.transport, result.outcome), []).append(result)
    return groups


Judge = Callable[[Result], bool]


if __name__ == "__main__":  # the proxy process of `run_cases`
    serve_proxies()
