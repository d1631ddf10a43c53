"""A fault-injecting HTTP proxy between a store and a real DynamoDB emulator (loopback only).

It forwards each HTTP/1.1 request to the upstream server on a fresh connection
(moto closes every connection anyway) and can, per request:

- answer with throttling (``ProvisionedThroughputExceededException``,
  ``ThrottlingException``) or an HTTP 500/503, at a given rate;
- hold the response for a while (slower than the client's ``read_timeout``);
- "apply, then lose the reply": forward the request, let the server apply it, then
  drop the connection instead of answering (`lose_replies`), as a timeout or a
  broken connection after the server's commit would;
- be "killed": every open connection is aborted and the port stops listening,
  then "restarted" on the same port.

It counts requests, injected faults and concurrent client connections, so tests
can check the store's connection pool bound.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_FAULTS = {
    "throttle": (400, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"),
    "throttling": (400, "com.amazonaws.dynamodb.v20120810#ThrottlingException"),
    "500": (500, "com.amazon.coral.service#InternalFailure"),
    "503": (503, "com.amazon.coral.service#ServiceUnavailableException"),
}


@dataclass
class Stats:
    requests: int = 0
    injected: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    connections: int = 0
    max_connections: int = 0


class FaultProxy:
    """Proxy on 127.0.0.1 in front of `upstream` (host, port)."""

    def __init__(self, upstream_port: int, *, seed: int = 7) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.fault_rate = 0.0
        self.fault_kinds: tuple[str, ...] = tuple(_FAULTS)
        self.delay = 0.0
        #: DynamoDB action (``"UpdateItem"``) -> how many of its next replies to lose
        #: after the server has applied the request.
        self.lose_replies: dict[str, int] = {}
        self.lost_replies = 0
        #: DynamoDB action -> the events of its next requests, in order: ``"lose"``
        #: (forward, let the server apply it, drop the reply), a fault kind (``"throttle"``,
        #: ``"500"``... answered without forwarding), or ``"pass"``. Played before
        #: `lose_replies` and `fault_rate`.
        self.script: dict[str, list[str]] = {}
        #: DynamoDB action -> requests seen.
        self.by_action: dict[str, int] = {}
        #: With `record`, every request's action and JSON body, in order.
        self.record = False
        self.bodies: list[tuple[str, bytes]] = []
        self.stats = Stats()
        #: Requests read and not yet answered (or given up on): 0 once every handler
        #: waits for its next request or has ended.
        self.busy = 0
        self._random = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def kill(self) -> None:
        """Stop listening and abort every open connection, as a crashed server would."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def restart(self) -> None:
        """Listen again on the same port."""
        await self.start()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        self.stats.connections += 1
        self.stats.max_connections = max(self.stats.max_connections, self.stats.connections)
        try:
            while True:
                request = await _read_message(reader)
                if request is None:
                    return
                self.stats.requests += 1
                self.busy += 1
                try:
                    if not await self._handle(request, writer):
                        return
                finally:
                    self.busy -= 1
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

    async def _handle(self, request: bytes, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is to end."""
        action = _target(request)
        self.by_action[action] = self.by_action.get(action, 0) + 1
        if self.record:
            self.bodies.append((action, request.split(b"\r\n\r\n", 1)[1]))
        event = self._scripted(action)
        if event in _FAULTS:
            self.stats.injected += 1
            self.stats.by_kind[event] = self.stats.by_kind.get(event, 0) + 1
            response = _fault_response(event)
        else:
            response = await self._answer(request, scripted=event is not None)
        if event == "lose" or (event is None and self._lose(request)):
            if event == "lose":
                self.lost_replies += 1
            writer.transport.abort()  # applied upstream; the client never hears
            return False
        if self.delay:
            await asyncio.sleep(self.delay)
        writer.write(response)
        await writer.drain()
        return True

    def _scripted(self, action: str) -> str | None:
        """The next scripted event of `action`, if any (consumed)."""
        events = self.script.get(action)
        if not events:
            return None
        return events.pop(0)

    def _lose(self, request: bytes) -> bool:
        """True if this request's reply is to be lost (and count it)."""
        if not self.lose_replies:
            return False
        action = _target(request)
        if self.lose_replies.get(action, 0) <= 0:
            return False
        self.lose_replies[action] -= 1
        self.lost_replies += 1
        return True

    async def _answer(self, request: bytes, *, scripted: bool = False) -> bytes:
        if not scripted and self.fault_rate and self._random.random() < self.fault_rate:
            kind = self._random.choice(self.fault_kinds)
            self.stats.injected += 1
            self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
            return _fault_response(kind)
        reader, writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            writer.write(request)
            await writer.drain()
            response = await _read_message(reader)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        if response is None:
            raise ConnectionResetError("upstream closed without answering")
        return response


def _target(request: bytes) -> str:
    """The DynamoDB action of a request (from its X-Amz-Target header)."""
    head = request.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-amz-target":
            return value.strip().decode().rpartition(".")[2]
    return ""


async def _read_message(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 message (request or response) with a Content-Length body."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head + body


def _fault_response(kind: str) -> bytes:
    status, error_type = _FAULTS[kind]
    body = json.dumps({"__type": error_type, "message": f"injected {kind}"}).encode()
    reason = {400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}[status]
    headers = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/x-amz-json-1.0",
        f"Content-Length: {len(body)}",
        f"x-amzn-RequestId: {uuid.uuid4()}",
        f"x-amz-crc32: {binascii.crc32(body)}",
        "Connection: keep-alive",
    ]
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


class Intercepted:
    """A store's transport whose every request goes through `hook` first.

    ``hook(action, request, send)`` answers in place of the transport, calling
    ``send(action, request)`` to pass a request on. Install it on one store with
    ``store._core.transport = Intercepted(store._core.transport, hook)``.
    """

    def __init__(self, transport: Any, hook: Any) -> None:
        self.transport = transport
        self.hook = hook

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)

    async def send(self, action: str, request: Mapping[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = await self.hook(action, request, self.transport.send)
        return reply
