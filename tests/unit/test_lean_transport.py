"""LeanTransport against a scripted HTTP server on 127.0.0.1: replies, errors, retries, pool.

The server (`FakeDynamo`) reads each request and plays the next scripted action: a JSON
reply, an error, a slow reply, a reset or a closed connection. It checks every request's
signature with botocore's own signer and counts connections.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import socket
import struct
import traceback
import types
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock
from urllib.parse import quote

import aioboto3
import aiohttp
import botocore.session
import pytest
from aiobotocore.credentials import AioCredentials
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials
from botocore.parsers import create_parser

from aiodynkv import KVConfig, _retry
from aiodynkv._requests import BatchGetText, batch_get
from aiodynkv._transport import ServiceError, WireError, _wire, lean
from aiodynkv._transport.lean import Credentials, LeanTransport
from aiodynkv.testing import set_retry_waits

REGION = "eu-west-3"
KEYS = Credentials("AKIDTEST", "secret-test", "token-test")
ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
GET = {"TableName": "t", "Key": {"pk": {"S": "k"}}}


@dataclass
class Received:
    """One request as the server read it."""

    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    path: str = "/"

    @property
    def target(self) -> str:
        return self.headers["x-amz-target"]

    def json(self) -> Any:
        return json.loads(self.body)


Action = Callable[["FakeDynamo", asyncio.StreamWriter], Awaitable[bool]]


def reply(
    body: Any = None,
    *,
    status: int = 200,
    raw: bytes | None = None,
    crc: str = "good",
    delay: float = 0.0,
) -> Action:
    """A reply; `crc` is "good", "bad", "none" (no x-amz-crc32 header) or the header's text."""
    payload = raw if raw is not None else json.dumps({} if body is None else body).encode()

    async def act(server: FakeDynamo, writer: asyncio.StreamWriter) -> bool:
        if delay:
            await server.pause(delay)
        server.replies += 1
        lines = [
            f"HTTP/1.1 {status} X",
            "Content-Type: application/x-amz-json-1.0",
            f"Content-Length: {len(payload)}",
            f"x-amzn-RequestId: request-{server.replies}",
        ]
        if crc in {"good", "bad"}:
            value = zlib.crc32(payload) + (1 if crc == "bad" else 0)
            lines.append(f"x-amz-crc32: {value & 0xFFFFFFFF}")
        elif crc != "none":
            lines.append(f"x-amz-crc32: {crc}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        await writer.drain()
        return True

    return act


def error(code: str, message: str = "", *, status: int = 400, **extra: Any) -> Action:
    return reply({"__type": ERROR_PREFIX + code, "message": message, **extra}, status=status)


def throttled() -> Action:
    return error("ProvisionedThroughputExceededException", "slow down")


def hang(seconds: float = 5.0) -> Action:
    async def act(server: FakeDynamo, _writer: asyncio.StreamWriter) -> bool:
        await server.pause(seconds)
        return False

    return act


def reset() -> Action:
    """Read the request, then abort the connection with a TCP RST."""

    async def act(_server: FakeDynamo, writer: asyncio.StreamWriter) -> bool:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return False

    return act


def close() -> Action:
    """Read the request, then close the connection without a word."""

    async def act(_server: FakeDynamo, _writer: asyncio.StreamWriter) -> bool:
        return False

    return act


@dataclass
class FakeDynamo:
    """A scripted DynamoDB endpoint: `script` is played in order, then `default` forever."""

    script: list[Action] = field(default_factory=list)
    default: Action = field(default_factory=lambda: reply({"Item": {"pk": {"S": "k"}}}))
    secrets: dict[str, str] = field(default_factory=lambda: {KEYS.access_key: KEYS.secret_key})
    region: str = REGION
    received: list[Received] = field(default_factory=list)
    replies: int = 0
    connections: int = 0
    open_now: int = 0
    max_open: int = 0
    url: str = ""

    def __post_init__(self) -> None:
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._stopping.set()
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _check_signature(self, headers: dict[str, str], body: bytes, path: str = "/") -> bool:
        request = AWSRequest(
            method="POST",
            url=f"http://{headers['host']}{path}",
            data=body,
            headers={
                "Content-Type": headers["content-type"],
                "X-Amz-Target": headers["x-amz-target"],
            },
        )
        access_key = headers["authorization"].split("Credential=")[1].split("/")[0]
        frozen = ReadOnlyCredentials(
            access_key, self.secrets.get(access_key, "?"), headers.get("x-amz-security-token")
        )
        when = dt.datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            SigV4Auth(frozen, "dynamodb", self.region).add_auth(request)
        return bool(request.headers["Authorization"] == headers["authorization"])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                headers = {}
                request_line, *lines = head.decode().split("\r\n")
                path = request_line.split(" ")[1]
                for line in lines:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                signature_ok = self._check_signature(headers, body, path)
                self.received.append(Received(headers, body, signature_ok, path))
                action = self.script.pop(0) if self.script else self.default
                if not await action(self, writer):
                    return
        finally:
            self.open_now -= 1
            self._writers.discard(writer)
            writer.close()
            self._tasks.discard(task)


class StaticCredentials:
    """The credentials interface the transport needs, counting its calls."""

    def __init__(self, keys: Credentials = KEYS) -> None:
        self.keys = keys
        self.calls = 0

    async def get_frozen_credentials(self) -> Credentials:
        self.calls += 1
        return self.keys


@pytest.fixture
async def server() -> AsyncIterator[FakeDynamo]:
    fake = FakeDynamo()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(autouse=True)
def delays() -> Iterator[list[float]]:
    """The backoff delays asked for; nobody actually waits."""
    with set_retry_waits(False) as skipped:
        yield skipped


TransportFactory = Callable[..., LeanTransport]


@pytest.fixture
async def make(server: FakeDynamo) -> AsyncIterator[TransportFactory]:
    made: list[LeanTransport] = []

    def factory(**overrides: Any) -> LeanTransport:
        options: dict[str, Any] = {
            "endpoint_url": server.url,
            "region": REGION,
            "credentials": StaticCredentials(),
            "connect_timeout": 5.0,  # a loaded loop is slow; no test here times a connect out
            "read_timeout": 2.0,
            "max_attempts": 3,
            "retry_mode": "standard",
            "max_pool_connections": 10,
            "user_agent": "aiodynkv-test/1",
        } | overrides
        transport = LeanTransport(**options)
        made.append(transport)
        return transport

    yield factory
    for transport in made:
        await transport.aclose()


# -- success ------------------------------------------------------------------------------


async def test_get_item_posts_signed_dynamodb_json_and_returns_the_reply(
    server: FakeDynamo, make: TransportFactory
) -> None:
    reply_body = {"Item": {"pk": {"S": "k"}, "n": {"N": "1.50"}}}
    server.default = reply(reply_body)
    response = await make().send("GetItem", GET)
    assert response == reply_body | {
        "ResponseMetadata": {"HTTPStatusCode": 200, "RetryAttempts": 0, "RequestId": "request-1"}
    }
    (request,) = server.received
    assert request.signature_ok
    assert request.target == "DynamoDB_20120810.GetItem"
    assert request.headers["content-type"] == "application/x-amz-json-1.0"
    assert request.headers["user-agent"] == "aiodynkv-test/1"
    assert request.headers["x-amz-security-token"] == KEYS.token
    assert request.json() == GET


async def test_binary_values_go_out_as_base64_and_come_back_as_bytes(
    server: FakeDynamo, make: TransportFactory
) -> None:
    server.default = reply(
        {
            "Item": {
                "b": {"B": "AP8="},
                "bs": {"BS": ["YQ==", "Yg=="]},
                "m": {"M": {"inner": {"B": "AQ=="}, "s": {"S": "AQ=="}}},
                "l": {"L": [{"B": "Ag=="}, {"N": "2"}]},
            }
        }
    )
    request = {
        "TableName": "t",
        "Item": {"b": {"B": b"\x00\xff"}, "bs": {"BS": [b"a", b"b"]}, "s": {"S": "text"}},
    }
    response = await make().send("PutItem", request)
    assert server.received[0].json()["Item"] == {
        "b": {"B": "AP8="},
        "bs": {"BS": ["YQ==", "Yg=="]},
        "s": {"S": "text"},
    }
    assert response["Item"] == {
        "b": {"B": b"\x00\xff"},
        "bs": {"BS": [b"a", b"b"]},
        "m": {"M": {"inner": {"B": b"\x01"}, "s": {"S": "AQ=="}}},
        "l": {"L": [{"B": b"\x02"}, {"N": "2"}]},
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


BIN = {"pk": {"S": "k"}, "b": {"B": _b64(b"\x00bin")}, "m": {"M": {"x": {"BS": [_b64(b"y")]}}}}
KEY = {"pk": {"B": _b64(b"\x01key")}}
REPLIES: dict[str, dict[str, Any]] = {
    "GetItem": {"Item": BIN},
    "PutItem": {"Attributes": BIN, "ItemCollectionMetrics": {"ItemCollectionKey": KEY}},
    "Query": {"Items": [BIN, BIN], "Count": 2, "LastEvaluatedKey": KEY},
    "BatchGetItem": {
        "Responses": {"t": [BIN]},
        "UnprocessedKeys": {"t": {"Keys": [KEY], "ConsistentRead": True}},
    },
    "BatchWriteItem": {
        "UnprocessedItems": {"t": [{"PutRequest": {"Item": BIN}}, {"DeleteRequest": {"Key": KEY}}]},
        "ItemCollectionMetrics": {"t": [{"ItemCollectionKey": KEY, "SizeEstimateRangeGB": [0, 1]}]},
    },
    "TransactGetItems": {"Responses": [{"Item": BIN}, {}]},
    "ExecuteStatement": {"Items": [BIN], "LastEvaluatedKey": KEY},
    "BatchExecuteStatement": {
        "Responses": [
            {"TableName": "t", "Item": BIN},
            {"Error": {"Code": "ConditionalCheckFailed", "Message": "no", "Item": BIN}},
        ]
    },
}


def contains(value: Any, wanted: bytes) -> bool:
    if isinstance(value, dict):
        return any(contains(v, wanted) for v in value.values())
    if isinstance(value, list):
        return any(contains(v, wanted) for v in value)
    return bool(value == wanted)


def botocore_parse(action: str, raw: bytes, status: int = 200) -> dict[str, Any]:
    """What botocore's own parser makes of a DynamoDB reply (modeled error fields included)."""
    model = botocore.session.get_session().get_service_model("dynamodb")
    parser = create_parser("json")
    response = {"body": raw, "headers": {}, "status_code": status}
    parsed: dict[str, Any] = parser.parse(response, model.operation_model(action).output_shape)
    if status >= 300:
        shape = model.shape_for_error_code(parsed["Error"]["Code"])
        parsed.update(parser.parse(response, shape))
    parsed.pop("ResponseMetadata", None)
    return parsed


@pytest.mark.parametrize("action", sorted(REPLIES))
async def test_replies_decode_like_botocore_parses_them(
    server: FakeDynamo, make: TransportFactory, action: str
) -> None:
    raw = json.dumps(REPLIES[action]).encode()
    server.default = reply(raw=raw)
    response = await make().send(action, {"TableName": "t"})
    response.pop("ResponseMetadata")
    assert response == botocore_parse(action, raw)
    assert contains(response, b"\x00bin")  # something was decoded at all


async def test_error_items_decode_like_botocore_parses_them(
    server: FakeDynamo, make: TransportFactory
) -> None:
    bodies: dict[str, dict[str, Any]] = {
        "ConditionalCheckFailedException": {"message": "failed", "Item": BIN},
        "TransactionCanceledException": {
            "message": "canceled",
            "CancellationReasons": [
                {"Code": "None"},
                {"Code": "ConditionalCheckFailed", "Message": "x", "Item": BIN},
            ],
        },
    }
    for code, body in bodies.items():
        raw = json.dumps({"__type": ERROR_PREFIX + code} | body).encode()
        server.default = reply(raw=raw, status=400)
        with pytest.raises(ServiceError) as caught:
            await make().send("TransactWriteItems", {})
        expected = botocore_parse("TransactWriteItems", raw, status=400)
        assert caught.value.code == expected["Error"]["Code"] == code
        assert caught.value.message == expected["Error"]["Message"]
        for name in ("Item", "CancellationReasons"):
            assert caught.value.body.get(name) == expected.get(name)
        assert caught.value.item == expected.get("Item")


async def test_connection_is_kept_alive_between_requests(
    server: FakeDynamo, make: TransportFactory
) -> None:
    transport = make()
    for _ in range(5):
        await transport.send("GetItem", GET)
    assert server.connections == 1


# -- service errors ---------------------------------------------------------------------


async def test_conditional_check_failure_carries_the_old_item_and_is_not_retried(
    server: FakeDynamo, make: TransportFactory
) -> None:
    old = {"pk": {"S": "k"}, "ver": {"N": "3"}, "b": {"B": "AQ=="}}
    server.default = error(
        "ConditionalCheckFailedException", "The conditional request failed", Item=old
    )
    with pytest.raises(ServiceError) as caught:
        await make().send("UpdateItem", {"TableName": "t"})
    failure = caught.value
    assert failure.code == "ConditionalCheckFailedException"
    assert failure.message == "The conditional request failed"
    assert failure.status == 400
    assert failure.item == {"pk": {"S": "k"}, "ver": {"N": "3"}, "b": {"B": b"\x01"}}
    assert failure.attempts == 1
    assert not failure.in_doubt
    assert len(server.received) == 1


async def test_validation_error_is_not_retried(server: FakeDynamo, make: TransportFactory) -> None:
    server.default = reply(
        {"__type": ERROR_PREFIX + "ValidationException", "Message": "bad key"}, status=400
    )
    with pytest.raises(ServiceError) as caught:
        await make().send("GetItem", GET)
    assert (caught.value.code, caught.value.message, caught.value.item) == (
        "ValidationException",
        "bad key",
        None,
    )
    assert caught.value.body["Message"] == "bad key"
    assert len(server.received) == 1


async def test_throttling_is_retried_and_counted_in_retry_attempts(
    server: FakeDynamo, make: TransportFactory, delays: list[float]
) -> None:
    server.script = [throttled(), error("ThrottlingException")]
    transport = make()
    response = await transport.send("GetItem", GET)
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(server.received) == 3
    assert all(r.signature_ok for r in server.received)
    assert len(delays) == 2
    assert transport.quota_available == 500 - 5 - 5 + 5  # the last retry's cost comes back


async def test_throttling_until_max_attempts_raises_a_definite_failure(
    server: FakeDynamo, make: TransportFactory
) -> None:
    server.default = throttled()
    with pytest.raises(ServiceError) as caught:
        await make(max_attempts=4).send("PutItem", {})
    assert caught.value.code == "ProvisionedThroughputExceededException"
    assert caught.value.attempts == 4
    assert not caught.value.in_doubt
    assert len(server.received) == 4


async def test_internal_server_error_is_retried_and_in_doubt(
    server: FakeDynamo, make: TransportFactory
) -> None:
    server.default = error("InternalServerError", "Internal server error", status=500)
    with pytest.raises(ServiceError) as caught:
        await make().send("PutItem", {})
    assert caught.value.code == "InternalServerError"
    assert caught.value.status == 500
    assert caught.value.attempts == 3
    assert caught.value.in_doubt


async def test_an_earlier_lost_reply_makes_a_later_definite_error_in_doubt(
    server: FakeDynamo, make: TransportFactory
) -> None:
    server.script = [throttled(), reset()]
    server.default = error("ConditionalCheckFailedException", "failed")
    with pytest.raises(ServiceError) as caught:
        await make().send("PutItem", {})
    assert caught.value.code == "ConditionalCheckFailedException"
    assert caught.value.attempts == 3
    assert caught.value.in_doubt


async def test_html_gateway_error_gets_the_status_as_its_code(
    server: FakeDynamo, make: TransportFactory
) -> None:
    server.default = reply(raw=b"<html><body>Bad Gateway</body></html>", status=502)
    with pytest.raises(ServiceError) as caught:
        await make(max_attempts=2).send("GetItem", GET)
    assert (caught.value.code, caught.value.message, caught.value.status) == (
        "502",
        "Bad Gateway",
        502,
    )
    assert caught.value.attempts == 2


@pytest.mark.parametrize(
    ("code", "status", "standard", "legacy"),
    [
        ("ProvisionedThroughputExceededException", 400, True, True),
        ("ThrottlingException", 400, True, True),
        ("RequestLimitExceeded", 400, True, False),
        ("LimitExceededException", 400, True, False),
        ("TransactionInProgressException", 400, True, True),
        ("ReplicatedWriteConflictException", 409, True, True),
        ("RequestTimeout", 400, True, False),
        ("Anything", 429, False, True),
        ("ServiceUnavailable", 503, True, True),
        ("Anything", 509, False, True),
        ("ResourceNotFoundException", 400, False, False),
        ("TransactionCanceledException", 400, False, False),
    ],
)
async def test_which_errors_each_retry_mode_retries(
    server: FakeDynamo,
    make: TransportFactory,
    code: str,
    status: int,
    standard: bool,
    legacy: bool,
) -> None:
    for mode, retried in (("standard", standard), ("legacy", legacy)):
        server.received.clear()
        server.default = error(code, status=status)
        with pytest.raises(ServiceError):
            await make(retry_mode=mode, max_attempts=2).send("GetItem", GET)
        assert len(server.received) == (2 if retried else 1), mode


# -- backoff and quota ------------------------------------------------------------------


async def test_standard_backoff_is_full_jitter_exponential_capped_at_20s(
    server: FakeDynamo,
    make: TransportFactory,
    delays: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_retry, "random", types.SimpleNamespace(random=lambda: 1.0))
    server.default = throttled()
    with pytest.raises(ServiceError):
        await make(max_attempts=8).send("GetItem", GET)
    assert delays == [1, 2, 4, 8, 16, 20, 20]
    delays.clear()
    monkeypatch.setattr(_retry, "random", types.SimpleNamespace(random=lambda: 0.25))
    with pytest.raises(ServiceError):
        await make(max_attempts=3).send("GetItem", GET)
    assert delays == [0.25, 0.5]


async def test_legacy_mode_backs_off_like_botocore_for_dynamodb_and_has_no_quota(
    server: FakeDynamo, make: TransportFactory, delays: list[float]
) -> None:
    server.script = [
        reply(raw=b"", status=429),
        throttled(),
        error("InternalServerError", status=500),
    ]
    transport = make(retry_mode="legacy", max_attempts=10)
    response = await transport.send("GetItem", GET)
    assert response["ResponseMetadata"]["RetryAttempts"] == 3
    assert delays == [0.05, 0.1, 0.2]
    assert transport.quota_available == 500


async def test_adaptive_mode_retries_like_standard(
    server: FakeDynamo, make: TransportFactory
) -> None:
    server.script = [throttled()]
    transport = make(retry_mode="adaptive")
    assert (await transport.send("GetItem", GET))["ResponseMetadata"]["RetryAttempts"] == 1
    assert transport.quota_available == 500


async def test_an_empty_retry_quota_stops_retries_until_successes_refill_it(
    server: FakeDynamo, make: TransportFactory
) -> None:
    server.default = error("InternalServerError", status=500)
    transport = make(max_attempts=3)
    for _ in range(50):  # 2 retries x 5 tokens each: 500 tokens
        with pytest.raises(ServiceError) as caught:
            await transport.send("PutItem", {})
        assert caught.value.attempts == 3
    assert transport.quota_available == 0
    with pytest.raises(ServiceError) as caught:
        await transport.send("PutItem", {})
    assert caught.value.attempts == 1  # no tokens left: no retry
    server.default = reply({})
    for _ in range(5):
        await transport.send("GetItem", GET)
    assert transport.quota_available == 5  # one token per success without retries
    server.default = error("InternalServerError", status=500)
    with pytest.raises(ServiceError) as caught:
        await transport.send("PutItem", {})
    assert caught.value.attempts == 2


# -- no answer ----------------------------------------------------------------------------


async def test_read_timeout_is_retried_in_doubt_and_costs_ten_tokens(
    server: FakeDynamo, make: TransportFactory
) -> None:
    server.default = hang()
    transport = make(read_timeout=0.2, max_attempts=2)
    with pytest.raises(WireError) as caught:
        await transport.send("PutItem", {})
    assert caught.value.timeout
    assert caught.value.in_doubt
    assert caught.value.attempts == 2
    assert len(server.received) == 2
    assert transport.quota_available == 490


async def test_slow_reply_within_the_read_timeout_succeeds(
    server: FakeDynamo, make: TransportFactory
) -> None:
    server.default = reply({"Item": {}}, delay=0.2)
    response = await make(read_timeout=5.0).send("GetItem", GET)
    assert response["ResponseMetadata"]["RetryAttempts"] == 0


@pytest.mark.parametrize("lose", [reset, close], ids=["reset", "closed"])
async def test_connection_lost_after_the_request_was_read_is_in_doubt(
    server: FakeDynamo, make: TransportFactory, lose: Callable[[], Action]
) -> None:
    server.default = lose()
    with pytest.raises(WireError) as caught:
        await make().send("PutItem", {})
    assert caught.value.in_doubt
    assert not caught.value.timeout
    assert caught.value.attempts == 3
    assert len(server.received) == 3
    assert isinstance(caught.value.__cause__, aiohttp.ClientError)


async def test_lost_reply_then_success_returns_the_reply(
    server: FakeDynamo, make: TransportFactory
) -> None:
    server.script = [reset()]
    response = await make().send("PutItem", {})
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert server.connections == 2


async def test_refused_connection_is_definitely_not_applied(
    make: TransportFactory,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = make(endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(WireError) as caught:
        await transport.send("PutItem", {})
    assert not caught.value.in_doubt
    assert not caught.value.timeout
    assert caught.value.attempts == 3
    assert transport.quota_available == 490


def test_connect_timeout_is_not_in_doubt_and_read_timeout_is() -> None:
    connect = _wire.classify(aiohttp.ConnectionTimeoutError("Connection timeout to host"))
    assert (connect.timeout, connect.sent) == (True, False)
    read = _wire.classify(aiohttp.SocketTimeoutError("Timeout on reading data from socket"))
    assert (read.timeout, read.sent) == (True, True)
    refused = _wire.classify(
        aiohttp.ClientConnectorError(mock.Mock(), ConnectionRefusedError(111, "refused"))
    )
    assert (refused.timeout, refused.sent) == (False, False)
    broken = _wire.classify(aiohttp.ServerDisconnectedError())
    assert (broken.timeout, broken.sent) == (False, True)


async def test_reply_with_a_wrong_crc32_is_retried(
    server: FakeDynamo, make: TransportFactory
) -> None:
    server.script = [reply({"Item": {}}, crc="bad")]
    server.default = reply({"Item": {"pk": {"S": "k"}}}, crc="none")
    response = await make().send("GetItem", GET)
    assert response["Item"] == {"pk": {"S": "k"}}
    assert response["ResponseMetadata"]["RetryAttempts"] == 1


async def test_replies_that_never_pass_the_crc32_check_are_a_wire_error_in_doubt(
    server: FakeDynamo, make: TransportFactory
) -> None:
    server.default = reply({"Item": {}}, crc="bad")
    with pytest.raises(WireError, match="CRC32") as caught:
        await make().send("GetItem", GET)
    assert caught.value.in_doubt
    assert caught.value.attempts == 3


@pytest.mark.parametrize(
    "raw",
    [
        b'{"Item":{"pk":{"S":"k\xc3\xa9"}}}',
        b' {"Item": {"pk": {"S": "k"}}}\r\n',
        b'\xef\xbb\xbf{"Item":{}}',
        '{"Item":{}}'.encode("utf-16"),
    ],
)
def test_a_reply_is_read_as_json_loads_reads_it(raw: bytes) -> None:
    assert _wire.success_body(raw) == json.loads(raw)


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")], ids=["compact", "spaced"])
def test_binary_values_are_found_in_compact_and_spaced_replies(
    separators: tuple[str, str],
) -> None:
    item = {"b": {"B": "AP8="}, "m": {"M": {"B": {"BS": ["YQ=="]}, "s": {"S": "AQ=="}}}}
    raw = json.dumps({"Item": item}, separators=separators).encode()  # moto's are spaced
    assert _wire.success_body(raw)["Item"] == {
        "b": {"B": b"\x00\xff"},
        "m": {"M": {"B": {"BS": [b"a"]}, "s": {"S": "AQ=="}}},
    }


def test_text_beginning_with_b_does_not_send_a_reply_through_the_binary_walk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A write token, a value or a name that begins with "B" is not a binary value: the
    # whole reply must not be walked for one (a batch of 100 items: microseconds per key).
    walked: list[object] = []
    monkeypatch.setattr(_wire, "_decode", walked.append)
    items = [
        {"pk": {"S": "Bob"}, "value": {"S": 'B":"x'}, "tk": {"S": "BgQ-token"}, "B": {"N": "1"}}
    ]
    raw = json.dumps({"Responses": {"Bench": items}}).encode()
    assert _wire.success_body(raw)["Responses"]["Bench"] == items
    assert walked == []


@pytest.mark.parametrize("raw", [b'{"Item":{}} {}', b'{"Item":', b"\xff{}", b"[1]", b"  "])
def test_a_reply_that_is_not_one_json_object_is_an_attempt_error(raw: bytes) -> None:
    with pytest.raises(_wire.AttemptError, match=r"not (a )?JSON"):
        _wire.success_body(raw)


def test_a_request_goes_out_as_compact_json_with_bytes_in_base64() -> None:
    request = {"Key": {"pk": {"S": "k\u00e9\n"}}, "Item": {"v": {"B": b"\x00\xff"}}, "On": True}
    wanted = {"Key": {"pk": {"S": "k\u00e9\n"}}, "Item": {"v": {"B": "AP8="}}, "On": True}
    assert _wire.dumps(request) == json.dumps(wanted, separators=(",", ":"))
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        _wire.dumps({"x": {1}})


async def test_a_batch_get_that_renders_its_text_is_posted_as_the_dict_would_be(
    server: FakeDynamo, make: TransportFactory
) -> None:
    config = KVConfig(table="kvt")
    keys = ["a", 'q"\\\x00', "caf\u00e9"]
    server.default = reply({"Responses": {"kvt": []}})
    assert LeanTransport.accepts_text_requests
    await make().send("BatchGetItem", BatchGetText(config, keys, consistent=True))
    (request,) = server.received
    assert request.signature_ok
    assert request.body == _wire.dumps(batch_get(config, keys, consistent=True)).encode()


async def test_a_success_status_without_json_is_retried(
    server: FakeDynamo, make: TransportFactory
) -> None:
    server.script = [reply(raw=b"not json")]
    response = await make().send("GetItem", GET)
    assert response["ResponseMetadata"]["RetryAttempts"] == 1


@pytest.mark.parametrize(
    ("raw", "crc"),
    [
        (b"<html>portal</html>", "good"),
        (b"[1, 2]", "good"),
        (b'"text"', "none"),
        (b'{"Attributes": {}}', "not-a-number"),
        (b'{"Attributes": {}}', "-5"),
    ],
    ids=["html", "json-list", "json-string", "crc-not-a-number", "crc-negative"],
)
async def test_a_success_status_that_cannot_be_verified_is_never_data(
    server: FakeDynamo, make: TransportFactory, raw: bytes, crc: str
) -> None:
    server.default = reply(raw=raw, crc=crc)
    with pytest.raises(WireError) as caught:
        await make().send("UpdateItem", GET)
    assert caught.value.in_doubt  # the 2xx may mean the write was applied
    assert caught.value.attempts == 3
    assert len(server.received) == 3  # retried like a corrupted reply


# -- pool, credentials, lifecycle ---------------------------------------------------------


async def test_pool_never_opens_more_than_max_pool_connections(
    server: FakeDynamo, make: TransportFactory
) -> None:
    server.default = reply({}, delay=0.05)
    transport = make(max_pool_connections=3)
    await asyncio.gather(*(transport.send("GetItem", GET) for _ in range(20)))
    assert server.max_open <= 3
    assert server.connections == 3  # and kept alive: 20 requests on 3 connections
    assert len(server.received) == 20


async def test_credentials_are_asked_for_every_attempt(
    server: FakeDynamo, make: TransportFactory
) -> None:
    class Rotating:
        """Like refreshable credentials: each call may hand out new keys."""

        def __init__(self) -> None:
            self.calls = 0

        async def get_frozen_credentials(self) -> Credentials:
            self.calls += 1
            return Credentials(f"AKID{self.calls}", f"secret{self.calls}", None)

    server.secrets = {f"AKID{n}": f"secret{n}" for n in range(1, 4)}
    server.script = [throttled(), throttled()]
    credentials = Rotating()
    await make(credentials=credentials).send("GetItem", GET)
    assert credentials.calls == 3
    assert [r.signature_ok for r in server.received] == [True, True, True]
    assert "x-amz-security-token" not in server.received[0].headers


async def test_aiobotocore_credentials_objects_work(
    server: FakeDynamo, make: TransportFactory
) -> None:
    credentials = AioCredentials(KEYS.access_key, KEYS.secret_key, KEYS.token)
    await make(credentials=credentials).send("GetItem", GET)
    assert server.received[0].signature_ok


async def test_from_client_uses_the_clients_endpoint_region_and_credentials(
    server: FakeDynamo,
) -> None:
    session = aioboto3.Session(
        aws_access_key_id=KEYS.access_key,
        aws_secret_access_key=KEYS.secret_key,
        aws_session_token=KEYS.token,
        region_name=REGION,
    )
    async with session.client("dynamodb", endpoint_url=server.url) as client:
        transport = LeanTransport.from_client(
            client,
            connect_timeout=5,
            read_timeout=5,
            max_attempts=2,
            retry_mode="standard",
            max_pool_connections=4,
            user_agent="ua",
        )
        try:
            await transport.send("GetItem", GET)
        finally:
            await transport.aclose()
    assert (transport.endpoint_url, transport.region) == (server.url, REGION)
    assert server.received[0].signature_ok
    assert server.received[0].headers["x-amz-security-token"] == KEYS.token


@pytest.mark.parametrize(
    ("config", "endpoint"),
    [
        (Config(), "https://dynamodb.us-west-2.amazonaws.com"),
        (Config(use_fips_endpoint=True), "https://dynamodb-fips.us-west-2.amazonaws.com"),
        (Config(use_dualstack_endpoint=True), "https://dynamodb.us-west-2.api.aws"),
    ],
    ids=["regional", "fips", "dualstack"],
)
async def test_from_client_takes_botocores_resolved_endpoint(config: Config, endpoint: str) -> None:
    session = aioboto3.Session(
        aws_access_key_id="a", aws_secret_access_key="b", region_name="us-west-2"
    )
    async with session.client("dynamodb", config=config) as client:
        transport = LeanTransport.from_client(
            client,
            connect_timeout=5,
            read_timeout=5,
            max_attempts=3,
            retry_mode="legacy",
            max_pool_connections=4,
            user_agent="ua",
        )
    assert transport.endpoint_url == endpoint
    assert transport.region == "us-west-2"
    await transport.aclose()


async def test_aclose_is_idempotent_and_later_sends_fail(make: TransportFactory) -> None:
    transport = make()
    await transport.send("GetItem", GET)
    await transport.aclose()
    await transport.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await transport.send("GetItem", GET)
    unused = make()
    await unused.aclose()


def test_constructing_outside_an_event_loop_opens_nothing() -> None:
    transport = LeanTransport(
        endpoint_url="http://127.0.0.1:1",
        region="r",
        credentials=StaticCredentials(),
        connect_timeout=1,
        read_timeout=1,
        max_attempts=1,
        retry_mode="standard",
        max_pool_connections=1,
        user_agent="ua",
    )
    assert transport.quota_available == 500


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"endpoint_url": "ftp://h"}, "http"),
        ({"endpoint_url": "http://h/?x=1"}, "query"),
        ({"credentials": None}, "credentials"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"retry_mode": "fast"}, "retry_mode"),
        ({"max_pool_connections": 0}, "max_pool_connections"),
        ({"read_timeout": 0}, "positive"),
    ],
)
def test_bad_arguments_are_rejected(override: dict[str, Any], message: str) -> None:
    options: dict[str, Any] = {
        "endpoint_url": "http://127.0.0.1:1",
        "region": "r",
        "credentials": StaticCredentials(),
        "connect_timeout": 1,
        "read_timeout": 1,
        "max_attempts": 1,
        "retry_mode": "standard",
        "max_pool_connections": 1,
        "user_agent": "ua",
    } | override
    with pytest.raises(ValueError, match=message):
        LeanTransport(**options)


# -- proxy credentials --------------------------------------------------------------------


def everything_said(exc: BaseException) -> str:
    """str, repr and traceback of `exc` and of every exception chained to it."""
    seen: list[BaseException] = []
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        stack += [current.__cause__, current.__context__]
        stack += [a for a in current.args if isinstance(a, BaseException)]
    texts = [f"{e!s} {e!r} {''.join(traceback.format_exception(e))}" for e in seen]
    return "\n".join(texts)


PROXY_USER, PROXY_PASSWORD = "proxy-user", "hunter2@secret"
PROXY_SECRETS = (
    PROXY_PASSWORD,
    quote(PROXY_PASSWORD, safe=""),
    base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode(),
)


async def _refusing_proxy() -> asyncio.Server:
    """A proxy that answers every request (CONNECT included) with 407."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


@pytest.mark.parametrize("proxy_kind", ["refuses-auth", "not-listening"])
async def test_proxy_credentials_never_appear_in_a_wire_error(
    make: TransportFactory, proxy_kind: str
) -> None:
    proxy = await _refusing_proxy()
    port = proxy.sockets[0].getsockname()[1]
    if proxy_kind == "not-listening":
        proxy.close()
        await proxy.wait_closed()
    secret_url = f"http://{PROXY_USER}:{quote(PROXY_PASSWORD, safe='')}@127.0.0.1:{port}"
    transport = make(
        endpoint_url="https://dynamodb.eu-west-3.amazonaws.com", proxy=secret_url, max_attempts=2
    )
    try:
        with pytest.raises(WireError) as caught:
            await transport.send("GetItem", GET)
    finally:
        proxy.close()
        await proxy.wait_closed()
    said = everything_said(caught.value)
    assert f"127.0.0.1:{port}" in said  # the error still names the proxy
    for secret in (*PROXY_SECRETS, PROXY_USER):
        assert secret not in said
    assert not caught.value.in_doubt  # nothing got past the proxy


async def test_proxy_credentials_from_the_environment_are_sent_and_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            seen.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()

    proxy = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    password = quote(PROXY_PASSWORD, safe="")
    monkeypatch.setenv("HTTPS_PROXY", f"http://{PROXY_USER}:{password}@127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = aioboto3.Session(
        aws_access_key_id="a", aws_secret_access_key="b", region_name="us-west-2"
    )
    try:
        async with session.client("dynamodb") as client:
            transport = LeanTransport.from_client(
                client,
                connect_timeout=5,
                read_timeout=5,
                max_attempts=1,
                retry_mode="standard",
                max_pool_connections=4,
                user_agent="ua",
            )
            try:
                with pytest.raises(WireError) as caught:
                    await transport.send("GetItem", GET)
            finally:
                await transport.aclose()
    finally:
        proxy.close()
        await proxy.wait_closed()
    # the credentials reach the proxy, and nowhere else
    assert f"Proxy-Authorization: Basic {PROXY_SECRETS[2]}".encode() in seen[0]
    said = everything_said(caught.value)
    for secret in PROXY_SECRETS:
        assert secret not in said


async def test_a_forwarding_proxy_gets_the_credentials_with_each_request(
    server: FakeDynamo, make: TransportFactory
) -> None:
    forwarded: list[bytes] = []

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            head = await reader.readuntil(b"\r\n\r\n")
            forwarded.append(head)
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            payload = json.dumps({"Item": {"pk": {"S": "k"}}}).encode()
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload
            )
            await writer.drain()
            assert body == _wire.dumps(GET).encode()
        writer.close()

    proxy = await asyncio.start_server(forward, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    password = quote(PROXY_PASSWORD, safe="")
    try:
        transport = make(proxy=f"http://{PROXY_USER}:{password}@127.0.0.1:{port}")
        response = await transport.send("GetItem", GET)
    finally:
        proxy.close()
        await proxy.wait_closed()
    assert response["Item"] == {"pk": {"S": "k"}}
    assert f"POST {server.url}/ HTTP/1.1".encode() in forwarded[0]
    assert f"Proxy-Authorization: Basic {PROXY_SECRETS[2]}".encode() in forwarded[0]


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("/team%20a/", "/team%20a/"),
        ("/a%2Fb/%7Euser/x", "/a%2Fb/~user/x"),  # ~ needs no escape (RFC 3986)
        ("/team a/", "/team%20a/"),
        ("", "/"),
    ],
)
async def test_an_escaped_endpoint_path_is_sent_once_escaped_and_signed_over_it(
    server: FakeDynamo, make: TransportFactory, path: str, sent: str
) -> None:
    await make(endpoint_url=server.url + path).send("GetItem", GET)
    (request,) = server.received
    assert request.path == sent
    assert request.signature_ok  # botocore's signer over the path on the wire


# -- account-ID endpoints: the host each transport connects to, through a recording proxy --


class RecordingProxy:
    """An HTTP proxy on 127.0.0.1 that notes each CONNECT's host and refuses it (407)."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.url = ""

    async def __aenter__(self) -> RecordingProxy:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                head = await reader.readuntil(b"\r\n\r\n")
                self.hosts.append(head.split(b" ")[1].decode())
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n")
                writer.write(b"Content-Length: 0\r\n\r\n")
                await writer.drain()
            writer.close()

        self._server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *_: object) -> None:
        self._server.close()
        await self._server.wait_closed()


ACCOUNT = "111122223333"


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> pytest.MonkeyPatch:
    """Credentials from the environment only; no AWS config files, no account id yet."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "NO_PROXY", "no_proxy", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_ACCOUNT_ID", raising=False)
    monkeypatch.delenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEYS.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS.secret_key)
    return monkeypatch


async def _hosts_each_transport_connects_to(
    config: Config, proxy: RecordingProxy
) -> tuple[list[str], list[str]]:
    from aiodynkv._transport.botocore import BotocoreTransport

    session = aioboto3.Session(region_name="us-west-2")
    config = config.merge(Config(retries={"total_max_attempts": 1}))
    async with session.client("dynamodb", config=config) as client:
        ours = LeanTransport.from_client(
            client,
            connect_timeout=5,
            read_timeout=5,
            max_attempts=1,
            retry_mode="standard",
            max_pool_connections=2,
            user_agent="ua",
        )
        try:
            with pytest.raises(WireError):
                await ours.send("GetItem", GET)
        finally:
            await ours.aclose()
        lean_hosts, proxy.hosts = proxy.hosts, []
        with pytest.raises(WireError):
            await BotocoreTransport(client).send("GetItem", GET)
    return lean_hosts, proxy.hosts


@pytest.mark.parametrize(
    ("account", "mode", "config", "host"),
    [
        (ACCOUNT, None, Config(), f"{ACCOUNT}.ddb.us-west-2.amazonaws.com:443"),
        (ACCOUNT, "preferred", Config(), f"{ACCOUNT}.ddb.us-west-2.amazonaws.com:443"),
        (ACCOUNT, "required", Config(), f"{ACCOUNT}.ddb.us-west-2.amazonaws.com:443"),
        (ACCOUNT, "disabled", Config(), "dynamodb.us-west-2.amazonaws.com:443"),
        (
            ACCOUNT,
            None,
            Config(account_id_endpoint_mode="disabled"),
            "dynamodb.us-west-2.amazonaws.com:443",
        ),
        (None, None, Config(), "dynamodb.us-west-2.amazonaws.com:443"),
        (
            ACCOUNT,
            None,
            Config(use_fips_endpoint=True),
            "dynamodb-fips.us-west-2.amazonaws.com:443",
        ),
    ],
    ids=[
        "default",
        "preferred",
        "required",
        "disabled",
        "disabled-in-config",
        "no-account",
        "fips",
    ],
)
async def test_account_id_endpoints_are_resolved_as_botocore_resolves_them(
    aws_environment: pytest.MonkeyPatch,
    account: str | None,
    mode: str | None,
    config: Config,
    host: str,
) -> None:
    if account is not None:
        aws_environment.setenv("AWS_ACCOUNT_ID", account)
    if mode is not None:
        aws_environment.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", mode)
    async with RecordingProxy() as proxy:
        aws_environment.setenv("HTTPS_PROXY", proxy.url)
        lean_hosts, botocore_hosts = await _hosts_each_transport_connects_to(config, proxy)
    assert lean_hosts == [host]
    assert botocore_hosts[:1] == [host]  # botocore retries a refused tunnel


@pytest.mark.parametrize(
    ("account", "config"),
    [
        (None, Config(account_id_endpoint_mode="required")),
        (ACCOUNT, Config(account_id_endpoint_mode="required", use_fips_endpoint=True)),
    ],
    ids=["required-without-account", "required-with-fips"],
)
async def test_a_required_account_endpoint_that_cannot_be_had_is_a_config_error_before_sending(
    aws_environment: pytest.MonkeyPatch, account: str | None, config: Config
) -> None:
    from aiodynkv import KVConfigError
    from aiodynkv._transport.botocore import BotocoreTransport

    if account is not None:
        aws_environment.setenv("AWS_ACCOUNT_ID", account)
    async with RecordingProxy() as proxy:
        aws_environment.setenv("HTTPS_PROXY", proxy.url)
        session = aioboto3.Session(region_name="us-west-2")
        async with session.client("dynamodb", config=config) as client:
            transport = LeanTransport.from_client(
                client,
                connect_timeout=5,
                read_timeout=5,
                max_attempts=1,
                retry_mode="standard",
                max_pool_connections=2,
                user_agent="ua",
            )
            try:
                with pytest.raises(KVConfigError, match="AccountIdEndpointMode") as caught:
                    await transport.send("GetItem", GET)
            finally:
                await transport.aclose()
            with pytest.raises(KVConfigError, match="AccountIdEndpointMode") as through_botocore:
                await BotocoreTransport(client).send("GetItem", GET)
    assert proxy.hosts == []  # nothing was sent
    assert "AWS_ACCOUNT_ID_ENDPOINT_MODE" in str(caught.value)
    assert str(through_botocore.value) == str(caught.value)


# -- a user's client= configuration ---------------------------------------------------------


@pytest.fixture
def fast_botocore_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.retries.standard
    import botocore.retryhandler

    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda *_: 0.0
    )
    monkeypatch.setattr(botocore.retryhandler, "delay_exponential", lambda **_: 0.0)


@pytest.mark.usefixtures("fast_botocore_retries")
@pytest.mark.parametrize(
    ("retries", "attempts"),
    [
        ({"total_max_attempts": 2, "mode": "standard"}, 2),
        ({"max_attempts": 4, "mode": "standard"}, 5),  # botocore's max_attempts: retries
        ({"mode": "standard"}, 3),
        ({"total_max_attempts": 3, "mode": "legacy"}, 3),
        ({"mode": "legacy"}, 10),  # DynamoDB's own legacy default
        ({"total_max_attempts": 1, "mode": "adaptive"}, 1),
    ],
    ids=["total-2", "retries-4", "standard-default", "legacy-3", "legacy-default", "adaptive-1"],
)
async def test_a_users_client_retries_are_the_lean_transports_as_they_are_botocores(
    server: FakeDynamo, retries: dict[str, Any], attempts: int
) -> None:
    from aiodynkv import AsyncDynamoKV, KVConfig, ServerError

    server.default = error("InternalServerError", "down", status=500)
    session = aioboto3.Session(
        aws_access_key_id=KEYS.access_key,
        aws_secret_access_key=KEYS.secret_key,
        aws_session_token=KEYS.token,
        region_name=REGION,
    )
    config = Config(retries=retries)
    counts = {}
    async with session.client("dynamodb", endpoint_url=server.url, config=config) as client:
        for transport in ("lean", "botocore"):
            server.received.clear()
            kv_config = KVConfig(table="ttt", endpoint=server.url, transport=transport)
            async with AsyncDynamoKV(kv_config, client=client) as kv:
                with pytest.raises(ServerError):
                    await kv.get("k")
            counts[transport] = len(server.received)
    assert counts == {"lean": attempts, "botocore": attempts}


async def test_a_users_client_timeouts_are_the_lean_transports(server: FakeDynamo) -> None:
    from aiodynkv import AsyncDynamoKV, KVConfig, KVTimeoutError

    server.default = hang(5.0)
    session = aioboto3.Session(
        aws_access_key_id=KEYS.access_key, aws_secret_access_key=KEYS.secret_key, region_name=REGION
    )
    config = Config(read_timeout=0.3, connect_timeout=5.0, retries={"total_max_attempts": 1})
    async with session.client("dynamodb", endpoint_url=server.url, config=config) as client:
        kv_config = KVConfig(table="ttt", endpoint=server.url, read_timeout=30.0)
        async with AsyncDynamoKV(kv_config, client=client) as kv:
            started = asyncio.get_running_loop().time()
            with pytest.raises(KVTimeoutError):
                await kv.get("k")
            elapsed = asyncio.get_running_loop().time() - started
    assert elapsed < 10.0  # the client's 0.3 s (and a loaded machine's slack), not 30 s
    assert len(server.received) == 1


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (Config(tcp_keepalive=True), "tcp_keepalive"),
        (Config(client_cert="/nonexistent/cert.pem"), "client_cert"),
        (Config(proxies_config={"proxy_ca_bundle": "/nonexistent/ca.pem"}), "proxies_config"),
        (Config(signature_version="UNSIGNED"), "signature_version"),
    ],
    ids=["tcp-keepalive", "client-cert", "proxies-config", "unsigned"],
)
async def test_client_settings_the_lean_transport_cannot_honour_are_refused_on_open(
    server: FakeDynamo, config: Config, named: str
) -> None:
    from aiodynkv import AsyncDynamoKV, KVConfig, KVConfigError

    session = aioboto3.Session(
        aws_access_key_id=KEYS.access_key, aws_secret_access_key=KEYS.secret_key, region_name=REGION
    )
    async with session.client("dynamodb", endpoint_url=server.url, config=config) as client:
        store = AsyncDynamoKV(KVConfig(table="ttt", endpoint=server.url), client=client)
        with pytest.raises(KVConfigError, match=named) as caught:
            await store.open()
        assert "transport='botocore'" in str(caught.value)
        async with AsyncDynamoKV(
            KVConfig(table="ttt", endpoint=server.url, transport="botocore"), client=client
        ):
            pass  # the botocore transport honours them
    assert server.received == []


def test_a_proxy_token_given_as_the_user_name_is_masked_too() -> None:
    proxy, headers, secrets = _wire.split_proxy("http://tok%2Fen-123@127.0.0.1:3128")
    assert proxy == "http://127.0.0.1:3128"
    assert headers == {"Proxy-Authorization": f"Basic {base64.b64encode(b'tok/en-123:').decode()}"}
    masked = _wire.mask("proxy http://tok%2Fen-123@h and tok/en-123", secrets)
    assert masked == "proxy http://***@h and ***"


# -- what a client lends the lean transport and the S3/KMS clients (public interfaces) ------


def _rotating_session() -> tuple[Any, list[str]]:
    """An aiobotocore session whose refreshable credentials rotate at every use."""
    from aiobotocore.credentials import AioCredentialResolver, AioRefreshableCredentials
    from aiobotocore.session import AioSession

    issued: list[str] = []

    async def fetch() -> dict[str, Any]:
        issued.append(f"AKID{len(issued) + 1}")
        expiry = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)  # always due
        return {
            "access_key": issued[-1],
            "secret_key": f"secret{len(issued)}",
            "token": None,
            "expiry_time": expiry.isoformat(),
        }

    class Rotating:
        METHOD = "test-rotating"
        CANONICAL_NAME = None

        async def load(self) -> Any:
            return AioRefreshableCredentials.create_from_metadata(
                await fetch(), refresh_using=fetch, method=self.METHOD
            )

    session = AioSession()
    session.register_component("credential_provider", AioCredentialResolver([Rotating()]))
    return session, issued


async def test_a_clients_refreshing_credentials_keep_refreshing_on_the_lean_transport(
    server: FakeDynamo,
) -> None:
    server.secrets = {f"AKID{n}": f"secret{n}" for n in range(1, 20)}
    session, issued = _rotating_session()
    async with session.create_client(
        "dynamodb", region_name=REGION, endpoint_url=server.url
    ) as client:
        transport = LeanTransport.from_client(
            client,
            connect_timeout=5,
            read_timeout=5,
            max_attempts=1,
            retry_mode="standard",
            max_pool_connections=2,
            user_agent="ua",
        )
        try:
            for _ in range(3):
                await transport.send("GetItem", GET)
        finally:
            await transport.aclose()
    used = [
        r.headers["authorization"].split("Credential=")[1].split("/")[0] for r in server.received
    ]
    assert all(r.signature_ok for r in server.received)
    assert len(set(used)) == 3  # each request signed with the keys of that moment
    assert set(used) <= set(issued)


async def test_the_endpoint_probe_leaves_other_calls_on_a_shared_client_alone(
    server: FakeDynamo,
) -> None:
    session = aioboto3.Session(
        aws_access_key_id=KEYS.access_key,
        aws_secret_access_key=KEYS.secret_key,
        aws_session_token=KEYS.token,
        region_name=REGION,
    )
    async with session.client("dynamodb", endpoint_url=server.url) as client:
        transport = LeanTransport.from_client(
            client,
            connect_timeout=5,
            read_timeout=5,
            max_attempts=1,
            retry_mode="standard",
            max_pool_connections=2,
            user_agent="ua",
        )
        try:
            ours, theirs = await asyncio.gather(
                transport.send("GetItem", GET), client.get_item(**GET)
            )
            after = await client.get_item(**GET)
        finally:
            await transport.aclose()
    assert ours["Item"] == theirs["Item"] == after["Item"] == {"pk": {"S": "k"}}
    assert len(server.received) == 3  # the probe itself sent nothing
    assert not any(b"aiodynkv-endpoint" in r.body for r in server.received)


async def test_a_client_without_credentials_is_refused_before_sending(
    server: FakeDynamo,
) -> None:
    import botocore.exceptions as bex
    from aiobotocore.credentials import AioCredentialResolver
    from aiobotocore.session import AioSession

    session = AioSession()
    session.register_component("credential_provider", AioCredentialResolver([]))
    async with session.create_client(
        "dynamodb", region_name=REGION, endpoint_url=server.url
    ) as client:
        transport = LeanTransport.from_client(
            client,
            connect_timeout=5,
            read_timeout=5,
            max_attempts=1,
            retry_mode="standard",
            max_pool_connections=2,
            user_agent="ua",
        )
        try:
            with pytest.raises(bex.NoCredentialsError):
                await transport.send("GetItem", GET)
        finally:
            await transport.aclose()
    assert server.received == []


async def test_s3_and_kms_clients_sign_with_the_dynamodb_clients_current_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiodynkv import KVConfig, _values

    class StopError(Exception):
        """Raised instead of sending."""

    monkeypatch.setattr(_values, "_RELEND_SECONDS", 0)  # renew the loan at every use
    session, issued = _rotating_session()
    signed_with: list[str] = []

    def stop(request: Any, **_: Any) -> None:
        signed_with.append(request.headers["Authorization"].decode().split("Credential=")[1][:5])
        raise StopError

    async with session.create_client("dynamodb", region_name=REGION) as dynamodb:
        core = types.SimpleNamespace(config=KVConfig(table="ttt", region=REGION), client=dynamodb)
        async with _values.new_sibling_client(core, "s3") as s3:  # type: ignore[arg-type]
            s3.meta.events.register("before-send.s3.*", stop)
            for _ in range(2):
                with pytest.raises(StopError):
                    await s3.head_bucket(Bucket="b")
    assert len(signed_with) == 2
    assert signed_with[0] != signed_with[1]  # the second loan is newer keys of the source
    assert set(signed_with) <= set(issued)


async def test_the_endpoint_probe_makes_no_botocore_span(server: FakeDynamo) -> None:
    from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    instrumentor = AiobotocoreInstrumentor()  # type: ignore[no-untyped-call]
    instrumentor.instrument(tracer_provider=provider)
    session = aioboto3.Session(
        aws_access_key_id=KEYS.access_key,
        aws_secret_access_key=KEYS.secret_key,
        aws_session_token=KEYS.token,
        region_name=REGION,
    )
    try:
        async with session.client("dynamodb", endpoint_url=server.url) as client:
            transport = LeanTransport.from_client(
                client,
                connect_timeout=5,
                read_timeout=5,
                max_attempts=1,
                retry_mode="standard",
                max_pool_connections=2,
                user_agent="ua",
            )
            try:
                await transport.send("GetItem", GET)
            finally:
                await transport.aclose()
            assert spans.get_finished_spans() == ()
            await client.get_item(**GET)  # the instrumentation is on: this one is seen
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    assert [s.name for s in spans.get_finished_spans()] == ["DynamoDB.GetItem"]


async def test_the_ca_bundle_is_the_one_botocore_takes_without_verify(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))
    session = aioboto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name=REGION)
    async with session.client("dynamodb") as client:
        transport = LeanTransport.from_client(
            client,
            connect_timeout=5,
            read_timeout=5,
            max_attempts=1,
            retry_mode="standard",
            max_pool_connections=2,
            user_agent="ua",
        )
        botocores = client._endpoint.http_session._verify  # the test may look inside
    await transport.aclose()
    assert transport._verify == botocores == str(bundle)
    monkeypatch.delenv("AWS_CA_BUNDLE")
    assert lean.ca_bundle() is True
    assert lean.ca_bundle("no-such-profile") is True
