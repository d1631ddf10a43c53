"""BotocoreTransport: botocore's failures become `ServiceError` / `WireError`.

Two layers: a fake client whose methods raise what aiobotocore raises (the
conversion alone), and a real aiobotocore client against a scripted HTTP server on
127.0.0.1 (`ScriptedServer`) that drops, stalls or answers each request in turn,
so that the ``needs-retry`` hook sees real retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import platform
import socket
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import aiobotocore
import aiohttp
import botocore
import botocore.exceptions as bex
import botocore.retries.standard
import botocore.useragent
import pytest

import aiodynkv
from aiodynkv import AsyncDynamoKV, KVConfig, KVError
from aiodynkv._transport import ServiceError, WireError
from aiodynkv._transport.botocore import (
    _CURRENT,
    BotocoreTransport,
    _Attempts,
    _record_attempt,
    new_client,
)
from aiodynkv.testing import set_retry_waits

UPDATE = {"TableName": "kvt", "Key": {"pk": {"S": "k"}}, "UpdateExpression": "SET #v = :v"}
OLD_ITEM = {"pk": {"S": "k"}, "value": {"S": "old"}, "ver": {"N": "9"}}
ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"


# -- a fake client: the conversion alone ---------------------------------------------


class FakeClient:
    """Has an ``update_item`` that raises the given exception (or returns a response)."""

    def __init__(self, outcome: BaseException | dict[str, Any]) -> None:
        self.outcome = outcome
        self.calls: list[dict[str, Any]] = []

    async def update_item(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def client_error(
    code: str,
    message: str = "m",
    *,
    status: int = 400,
    retries: int | None = None,
    item: dict[str, Any] | None = None,
) -> bex.ClientError:
    meta: dict[str, Any] = {"HTTPStatusCode": status}
    if retries is not None:
        meta["RetryAttempts"] = retries
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": meta,
    }
    if item is not None:
        response["Item"] = item
    return bex.ClientError(response, "UpdateItem")


async def send_through_fake(outcome: BaseException | dict[str, Any]) -> dict[str, Any]:
    return await BotocoreTransport(FakeClient(outcome)).send("UpdateItem", UPDATE)


async def test_a_response_is_returned_as_is_and_the_action_picks_the_method() -> None:
    client = FakeClient({"Attributes": {}, "ResponseMetadata": {"RetryAttempts": 0}})
    transport = BotocoreTransport(client)
    assert await transport.send("UpdateItem", UPDATE) == client.outcome
    assert await transport.send("UpdateItem", UPDATE) == client.outcome
    assert client.calls == [UPDATE, UPDATE]
    await transport.aclose()


async def test_a_failed_condition_carries_the_old_item_and_the_attempts() -> None:
    exc = client_error(
        "ConditionalCheckFailedException",
        "The conditional request failed",
        retries=2,
        item=OLD_ITEM,
    )
    with pytest.raises(ServiceError) as info:
        await send_through_fake(exc)
    error = info.value
    assert error.code == "ConditionalCheckFailedException"
    assert error.message == "The conditional request failed"
    assert error.status == 400
    assert error.item == OLD_ITEM
    assert error.attempts == 3
    assert error.in_doubt is False
    assert error.body["Item"] == OLD_ITEM
    assert error.__cause__ is exc


async def test_a_client_error_without_item_or_retry_count() -> None:
    with pytest.raises(ServiceError) as info:
        await send_through_fake(client_error("ValidationException", "bad"))
    error = info.value
    assert (error.code, error.message, error.status) == ("ValidationException", "bad", 400)
    assert error.item is None
    assert error.attempts == 1
    assert error.in_doubt is False


async def test_a_client_error_without_metadata_has_status_zero() -> None:
    exc = bex.ClientError({"Error": {"Code": "Odd"}}, "UpdateItem")
    with pytest.raises(ServiceError) as info:
        await send_through_fake(exc)
    assert (info.value.code, info.value.message, info.value.status) == ("Odd", "", 0)
    assert info.value.attempts == 1


@pytest.mark.parametrize("status", [500, 503])
async def test_a_5xx_answer_may_have_been_applied(status: int) -> None:
    with pytest.raises(ServiceError) as info:
        await send_through_fake(client_error("InternalServerError", status=status, retries=2))
    assert info.value.status == status
    assert info.value.in_doubt is True


@pytest.mark.parametrize(
    ("exc", "timeout", "in_doubt"),
    [
        (bex.ReadTimeoutError(endpoint_url="http://x"), True, True),
        (bex.ConnectTimeoutError(endpoint_url="http://x"), True, False),
        (TimeoutError(), True, True),
        (bex.ConnectionClosedError(endpoint_url="http://x"), False, True),
        (aiohttp.ServerDisconnectedError(), False, True),
        (aiohttp.ClientPayloadError("cut"), False, True),
        (ConnectionResetError(), False, True),
        (bex.ProxyConnectionError(proxy_url="http://***:***@proxy", error="407"), False, False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
async def test_no_answer_becomes_a_wire_error(
    exc: BaseException, timeout: bool, in_doubt: bool
) -> None:
    with pytest.raises(WireError) as info:
        await send_through_fake(exc)
    assert info.value.timeout is timeout
    assert info.value.in_doubt is in_doubt
    assert info.value.__cause__ is exc


async def test_a_refused_connection_is_a_wire_error_never_applied() -> None:
    with pytest.raises(WireError) as info:
        await send_through_fake(bex.EndpointConnectionError(endpoint_url="http://x"))
    assert info.value.timeout is False
    assert info.value.in_doubt is False


@pytest.mark.parametrize(
    "exc",
    [
        bex.SSLError(endpoint_url="https://x", error="handshake"),
        bex.ProxyConnectionError(proxy_url="http://proxy", error="refused"),
        OSError("network unreachable"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_other_connection_failures_are_wire_errors(exc: BaseException) -> None:
    with pytest.raises(WireError) as info:
        await send_through_fake(exc)
    assert info.value.timeout is False


async def test_other_exceptions_pass_through_untouched() -> None:
    exc = bex.NoCredentialsError()
    with pytest.raises(bex.NoCredentialsError) as info:
        await send_through_fake(exc)
    assert info.value is exc


async def test_the_attempt_record_is_reset_after_each_call() -> None:
    assert _CURRENT.get() is None
    with pytest.raises(WireError):
        await send_through_fake(aiohttp.ServerDisconnectedError())
    assert _CURRENT.get() is None


# -- the needs-retry hook, called directly -------------------------------------------


@contextlib.contextmanager
def attempts_recorded() -> Iterator[_Attempts]:
    attempts = _Attempts()
    token = _CURRENT.set(attempts)
    try:
        yield attempts
    finally:
        _CURRENT.reset(token)


class _HTTPResponse:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


@pytest.mark.parametrize(
    ("kwargs", "in_doubt"),
    [
        ({"caught_exception": bex.ReadTimeoutError(endpoint_url="x")}, True),
        ({"caught_exception": bex.ConnectionClosedError(endpoint_url="x")}, True),
        ({"caught_exception": aiohttp.ServerDisconnectedError()}, True),
        ({"caught_exception": ConnectionResetError()}, True),
        ({"caught_exception": bex.HTTPClientError(error="x")}, True),
        ({"caught_exception": bex.ConnectTimeoutError(endpoint_url="x")}, False),
        ({"caught_exception": bex.EndpointConnectionError(endpoint_url="x")}, False),
        ({"response": (_HTTPResponse(500), {})}, True),
        ({"response": (_HTTPResponse(503), {})}, True),
        ({"response": (_HTTPResponse(400), {})}, False),
        ({"response": (_HTTPResponse(200), {})}, False),
        ({}, False),
    ],
)
def test_the_hook_marks_attempts_that_may_have_been_applied(
    kwargs: dict[str, Any], in_doubt: bool
) -> None:
    with attempts_recorded() as attempts:
        _record_attempt(attempts=1, request_dict={}, **kwargs)
    assert attempts.in_doubt is in_doubt


def test_the_hook_keeps_in_doubt_once_set_and_ignores_calls_outside_a_send() -> None:
    with attempts_recorded() as attempts:
        _record_attempt(caught_exception=bex.ReadTimeoutError(endpoint_url="x"))
        _record_attempt(response=(_HTTPResponse(400), {}))
    assert attempts.in_doubt is True
    _record_attempt(caught_exception=bex.ReadTimeoutError(endpoint_url="x"))  # no context: no-op


async def test_an_error_after_a_read_timeout_retry_is_in_doubt() -> None:
    """What the hook records during a call reaches the ServiceError (hook called by the fake)."""

    class RetryingClient:
        async def update_item(self, **_: Any) -> dict[str, Any]:
            _record_attempt(caught_exception=bex.ReadTimeoutError(endpoint_url="x"))
            raise client_error("ConditionalCheckFailedException", retries=1, item=OLD_ITEM)

    with pytest.raises(ServiceError) as info:
        await BotocoreTransport(RetryingClient()).send("UpdateItem", UPDATE)
    assert info.value.in_doubt is True
    assert info.value.attempts == 2


async def test_a_connect_timeout_after_a_dropped_attempt_is_in_doubt() -> None:
    class RetryingClient:
        async def update_item(self, **_: Any) -> dict[str, Any]:
            _record_attempt(caught_exception=bex.ConnectionClosedError(endpoint_url="x"))
            raise bex.ConnectTimeoutError(endpoint_url="x")

    with pytest.raises(WireError) as info:
        await BotocoreTransport(RetryingClient()).send("UpdateItem", UPDATE)
    assert info.value.timeout is True
    assert info.value.in_doubt is True


# -- a real aiobotocore client against a scripted server ------------------------------


class ScriptedServer:
    """An HTTP server on 127.0.0.1 playing one scripted action per request.

    Actions: ``"drop"`` (read the request, close the connection), ``"stall"`` (read
    it, answer nothing), or ``(status, body)`` (a DynamoDB JSON answer; raw bytes when
    `body` is bytes) with an optional third element of extra headers.
    """

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.targets: list[str] = []
        self.agents: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.targets.append(headers.get("x-amz-target", ""))
                self.agents.append(headers.get("user-agent", ""))
                action = self.script.pop(0) if self.script else (500, {})
                if action == "drop":
                    return
                if action == "stall":
                    await asyncio.sleep(30)
                    return
                status, body, *rest = action
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                extra = "".join(f"{name}: {value}\r\n" for name, value in (rest or [{}])[0].items())
                writer.write(
                    (
                        f"HTTP/1.1 {status} X\r\n"
                        "Content-Type: application/x-amz-json-1.0\r\n"
                        f"Content-Length: {len(payload)}\r\n"
                        f"{extra}"
                        f"x-amzn-RequestId: r{len(self.targets)}\r\n\r\n"
                    ).encode()
                    + payload
                )
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.close()


def dynamo_error(code: str, message: str = "m", status: int = 400, **extra: Any) -> Any:
    return (status, {"__type": ERROR_PREFIX + code, "message": message, **extra})


CONDITION_FAILED = dynamo_error(
    "ConditionalCheckFailedException", "The conditional request failed", Item=OLD_ITEM
)


@pytest.fixture(autouse=True)
def _fast_and_isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    # No backoff sleeps between retries (the jitter would make these tests slow).
    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda *_: 0.0
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@contextlib.asynccontextmanager
async def real_transport(endpoint: str, **fields: Any) -> AsyncIterator[BotocoreTransport]:
    # Timeouts no loaded loop runs out on the way to the in-process server; a "stall"
    # still times out (its server sleeps 30 s).
    settings: dict[str, Any] = {"max_attempts": 3, "read_timeout": 2.0, "connect_timeout": 5.0}
    settings.update(fields)
    config = KVConfig(table="kvt", endpoint=endpoint, **settings)
    async with new_client(config) as client:
        yield BotocoreTransport(client)


async def test_the_user_agent_is_made_once_not_rebuilt_for_each_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[object] = []

    def to_string(component: object) -> str:
        built.append(component)
        return "x/y"

    monkeypatch.setattr(botocore.useragent.UserAgentComponent, "to_string", to_string)
    async with (
        ScriptedServer([(200, {}), (200, {})]) as server,
        real_transport(server.endpoint) as transport,
    ):
        for _ in range(2):
            await transport.send("UpdateItem", UPDATE)
    assert built == []  # botocore's own agent: a dozen components cleaned per request
    versions = f"md/Botocore#{botocore.__version__} md/aiobotocore#{aiobotocore.__version__}"
    agent = f"aiodynkv/{aiodynkv.__version__} {versions} lang/python#{platform.python_version()}"
    assert len(server.agents) == 2
    assert all(sent.startswith(agent) for sent in server.agents)  # then the session's extra


async def test_real_client_error_after_a_dropped_connection_is_in_doubt() -> None:
    async with (
        ScriptedServer(["drop", CONDITION_FAILED]) as server,
        real_transport(server.endpoint) as transport,
    ):
        with pytest.raises(ServiceError) as info:
            await transport.send("UpdateItem", UPDATE)
    error = info.value
    assert server.targets == ["DynamoDB_20120810.UpdateItem"] * 2
    assert error.code == "ConditionalCheckFailedException"
    assert error.status == 400
    assert error.item == OLD_ITEM
    assert error.attempts == 2
    assert error.in_doubt is True


async def test_real_client_error_on_the_first_attempt_is_not_in_doubt() -> None:
    async with (
        ScriptedServer([CONDITION_FAILED]) as server,
        real_transport(server.endpoint) as transport,
    ):
        with pytest.raises(ServiceError) as info:
            await transport.send("UpdateItem", UPDATE)
    assert info.value.item == OLD_ITEM
    assert (info.value.attempts, info.value.in_doubt) == (1, False)


async def test_real_throttling_retries_are_not_in_doubt() -> None:
    throttled = dynamo_error("ProvisionedThroughputExceededException", "slow down")
    async with (
        ScriptedServer([throttled, CONDITION_FAILED]) as server,
        real_transport(server.endpoint) as transport,
    ):
        with pytest.raises(ServiceError) as info:
            await transport.send("UpdateItem", UPDATE)
    assert (info.value.attempts, info.value.in_doubt) == (2, False)


async def test_real_client_error_after_a_5xx_is_in_doubt() -> None:
    failed = dynamo_error("InternalServerError", "oops", status=500)
    async with (
        ScriptedServer([failed, CONDITION_FAILED]) as server,
        real_transport(server.endpoint) as transport,
    ):
        with pytest.raises(ServiceError) as info:
            await transport.send("UpdateItem", UPDATE)
    assert info.value.code == "ConditionalCheckFailedException"
    assert (info.value.attempts, info.value.in_doubt) == (2, True)


async def test_real_client_error_after_a_read_timeout_is_in_doubt() -> None:
    async with (
        ScriptedServer(["stall", CONDITION_FAILED]) as server,
        real_transport(server.endpoint) as transport,
    ):
        with pytest.raises(ServiceError) as info:
            await transport.send("UpdateItem", UPDATE)
    assert len(server.targets) == 2
    assert (info.value.attempts, info.value.in_doubt) == (2, True)


async def test_real_success_after_a_dropped_connection_reports_the_retry() -> None:
    async with (
        ScriptedServer(["drop", (200, {"Attributes": {}})]) as server,
        real_transport(server.endpoint) as transport,
    ):
        response = await transport.send("UpdateItem", UPDATE)
    assert response["Attributes"] == {}
    assert response["ResponseMetadata"]["RetryAttempts"] == 1


async def test_real_read_timeouts_to_the_end_are_an_in_doubt_timeout() -> None:
    async with (
        ScriptedServer(["stall"] * 5) as server,
        real_transport(server.endpoint, max_attempts=2, read_timeout=0.2) as transport,
    ):
        with pytest.raises(WireError) as info:
            await transport.send("UpdateItem", UPDATE)
    assert len(server.targets) >= 2
    assert (info.value.timeout, info.value.in_doubt) == (True, True)
    assert isinstance(info.value.__cause__, bex.ReadTimeoutError)


async def test_real_dropped_connections_to_the_end_are_an_in_doubt_connection_error() -> None:
    async with (
        ScriptedServer(["drop"] * 5) as server,
        real_transport(server.endpoint, max_attempts=2) as transport,
    ):
        with pytest.raises(WireError) as info:
            await transport.send("UpdateItem", UPDATE)
    # The request reached the server (how often depends on how aiohttp saw the drop:
    # botocore retries a closed connection, not every reset, on a loaded machine).
    assert 1 <= len(server.targets) <= 2
    assert (info.value.timeout, info.value.in_doubt) == (False, True)
    assert isinstance(info.value.__cause__, bex.ConnectionClosedError)


@pytest.mark.parametrize("max_attempts", [1, 3])
async def test_real_client_tries_max_attempts_times_in_all(max_attempts: int) -> None:
    async with (
        ScriptedServer(["drop"] * 10) as server,
        real_transport(server.endpoint, max_attempts=max_attempts) as transport,
    ):
        with pytest.raises(WireError):
            await transport.send("UpdateItem", UPDATE)
    assert len(server.targets) == max_attempts


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_real_refused_connection_is_a_wire_error_never_applied() -> None:
    async with real_transport(f"http://127.0.0.1:{_closed_port()}", max_attempts=1) as transport:
        with pytest.raises(WireError) as info:
            await transport.send("UpdateItem", UPDATE)
    assert (info.value.timeout, info.value.in_doubt) == (False, False)


async def test_the_hook_does_not_change_what_botocore_retries() -> None:
    async with (
        ScriptedServer([dynamo_error("ValidationException", "bad"), (200, {})]) as server,
        real_transport(server.endpoint) as transport,
    ):
        with pytest.raises(ServiceError) as info:
            await transport.send("UpdateItem", UPDATE)
    assert len(server.targets) == 1
    assert (info.value.code, info.value.attempts, info.value.in_doubt) == (
        "ValidationException",
        1,
        False,
    )


# -- replies that cannot be verified are never data -----------------------------------


def crc_reply(body: bytes, crc: str | None = None, status: int = 200) -> Any:
    """A reply whose x-amz-crc32 is `crc` (default: the body's own CRC32)."""
    header = str(zlib.crc32(body)) if crc is None else crc
    return (status, body, {"x-amz-crc32": header})


STORED = b'{"Item": {"pk": {"S": "k"}, "value": {"S": "balance=100"}}}'
CORRUPTED = b'{"Item": {"pk": {"S": "k"}, "value": {"S": "balance=900"}}}'


@pytest.mark.parametrize("mode", ["standard", "legacy"])
async def test_real_replies_that_never_pass_the_crc32_check_are_an_in_doubt_wire_error(
    mode: str,
) -> None:
    corrupted = crc_reply(CORRUPTED, crc=str(zlib.crc32(STORED)))
    async with (
        ScriptedServer([corrupted] * 3) as server,
        real_transport(server.endpoint, retry_mode=mode) as transport,
    ):
        with pytest.raises(WireError, match="CRC32") as info:
            await transport.send("UpdateItem", UPDATE)
    assert len(server.targets) == 3
    assert (info.value.timeout, info.value.in_doubt, info.value.attempts) == (False, True, 3)


async def test_real_a_crc32_mismatch_then_a_good_reply_returns_the_good_reply() -> None:
    corrupted = crc_reply(CORRUPTED, crc=str(zlib.crc32(STORED)))
    async with (
        ScriptedServer([corrupted, crc_reply(STORED)]) as server,
        real_transport(server.endpoint) as transport,
    ):
        response = await transport.send("GetItem", {"TableName": "kvt", "Key": {"pk": {"S": "k"}}})
    assert response["Item"]["value"] == {"S": "balance=100"}
    assert response["ResponseMetadata"]["RetryAttempts"] == 1


@pytest.mark.parametrize("mode", ["standard", "legacy"])
@pytest.mark.parametrize(
    "action",
    [
        (200, b"<html>captive portal</html>"),
        (200, b"[1, 2]"),
        crc_reply(b'{"Attributes": {}}', crc="not-a-number"),
        crc_reply(b'{"Attributes": {}}', crc="99999999999"),
    ],
    ids=["html", "json-list", "crc-not-a-number", "crc-too-large"],
)
async def test_real_a_success_status_that_cannot_be_verified_is_an_in_doubt_wire_error(
    mode: str, action: Any
) -> None:
    async with (
        ScriptedServer([action] * 3) as server,
        real_transport(server.endpoint, retry_mode=mode) as transport,
    ):
        with pytest.raises(WireError) as info:
            await transport.send("UpdateItem", UPDATE)
    assert 1 <= len(server.targets) <= 3
    assert (info.value.timeout, info.value.in_doubt) == (False, True)


@pytest.mark.parametrize("transport", ["botocore", "lean"])
async def test_a_store_never_takes_an_unverifiable_reply_as_data(
    transport: Literal["botocore", "lean"],
) -> None:
    corrupted = crc_reply(CORRUPTED, crc=str(zlib.crc32(STORED)))
    portal = (200, b"<html>captive portal</html>")
    async with ScriptedServer([corrupted] * 3 + [portal] * 6) as server:
        config = KVConfig(
            table="kvt", endpoint=server.endpoint, transport=transport, max_attempts=3
        )
        # What is retried and how the call ends do not depend on the waits between tries.
        async with AsyncDynamoKV(config) as kv:
            with set_retry_waits(False), pytest.raises(KVError) as read:
                await kv.get("k")
            with set_retry_waits(False), pytest.raises(KVError) as counted:
                await kv.incr("n", 5)
    assert "balance" not in str(read.value)
    assert isinstance(read.value.__cause__, WireError)
    assert isinstance(counted.value.__cause__, WireError)
    assert counted.value.__cause__.in_doubt


async def test_a_client_shared_by_two_transports_counts_each_attempt_once() -> None:
    portal = (200, b"<html>captive portal</html>")
    async with (
        ScriptedServer([portal] * 3) as server,
        real_transport(server.endpoint, max_attempts=1) as transport,
    ):
        BotocoreTransport(transport._client)  # a second store on the same client
        with pytest.raises(WireError) as info:
            await transport.send("UpdateItem", UPDATE)
    assert len(server.targets) == 1
    assert info.value.attempts == 1


async def test_real_an_unverifiable_reply_then_dropped_connections_is_a_connection_error() -> None:
    """The last attempts got no reply: the earlier reply's doubt is not what failed."""
    corrupted = crc_reply(CORRUPTED, crc=str(zlib.crc32(STORED)))
    async with (
        ScriptedServer([corrupted, "drop", "drop"]) as server,
        real_transport(server.endpoint) as transport,
    ):
        with pytest.raises(WireError) as info:
            await transport.send("UpdateItem", UPDATE)
    assert len(server.targets) == 3
    assert "CRC32" not in str(info.value)
    assert (info.value.timeout, info.value.in_doubt) == (False, True)


async def test_real_an_unverifiable_reply_then_an_error_reply_is_the_error() -> None:
    corrupted = crc_reply(CORRUPTED, crc=str(zlib.crc32(STORED)))
    async with (
        ScriptedServer([corrupted, CONDITION_FAILED]) as server,
        real_transport(server.endpoint) as transport,
    ):
        with pytest.raises(ServiceError) as info:
            await transport.send("UpdateItem", UPDATE)
    assert info.value.code == "ConditionalCheckFailedException"
    assert info.value.in_doubt is True


@pytest.mark.parametrize("transport", ["lean", "botocore"])
async def test_opening_stores_does_not_grow_the_shared_model_search_path(transport: str) -> None:
    """Every store's session shares one botocore loader; its search path stays as it was."""
    from aiodynkv._transport.botocore import shared_loader

    lengths = []
    for _ in range(3):
        async with AsyncDynamoKV(
            table="paths", endpoint="http://127.0.0.1:9", transport=transport, create_table=False
        ):
            lengths.append(len(shared_loader().search_paths))
    assert lengths[0] == lengths[-1]
    assert len(set(shared_loader().search_paths)) == len(shared_loader().search_paths)


def _endpoint_data_alive() -> bool:
    """Whether a parse of botocore's endpoints.json (every partition's services) is alive."""
    import gc

    gc.collect()
    return any(
        isinstance(o, dict)
        and isinstance(o.get("partitions"), list)
        and any(isinstance(p, dict) and "services" in p for p in o["partitions"])
        for o in gc.get_objects()
    )


async def _released(loader: Any, bound: float = 10.0) -> bool:
    """Wait (at most `bound` s) for the loader to let go of its endpoints parse."""
    loop = asyncio.get_running_loop()
    end = loop.time() + bound
    while loader.endpoints_parse is not None and loop.time() < end:  # noqa: ASYNC110 (a timer)
        await asyncio.sleep(0.02)
    return loader.endpoints_parse is None


@pytest.mark.parametrize("transport", ["lean", "botocore"])
async def test_endpoint_data_is_shared_while_stores_open_and_goes_once_none_is(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """endpoints.json (tens of thousands of objects for the GC) is parsed once per burst
    of stores opened, and released when no client has been made for ENDPOINTS_IDLE s."""
    from aiodynkv._transport import botocore as module

    monkeypatch.setattr(module, "ENDPOINTS_IDLE", 0.3)
    loader = module.shared_loader()
    loader.endpoints_parse = None

    def store() -> AsyncDynamoKV:
        endpoint = "http://127.0.0.1:9"
        return AsyncDynamoKV(
            table="endpoints", endpoint=endpoint, transport=transport, create_table=False
        )

    async with store():
        assert loader.endpoints_parse is not None
        first = id(loader.endpoints_parse)  # no reference of the test's own keeps it alive
        async with store() as kv:
            assert id(loader.endpoints_parse) == first  # not parsed again for the second store
            assert await _released(loader)
            assert not _endpoint_data_alive()  # nothing else kept it: the GC never walks it
            model = loader.load_service_model("dynamodb", "service-2")
            assert loader.load_service_model("dynamodb", "service-2") is model  # still cached
            assert kv.client.meta.region_name
    async with store():  # the next store parses it again
        assert loader.endpoints_parse is not None


@pytest.mark.parametrize("first_loop", ["closed", "open, not running"])
def test_a_release_armed_on_another_loop_is_armed_on_the_one_making_clients(
    first_loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiodynkv._transport import botocore as module

    monkeypatch.setattr(module, "ENDPOINTS_IDLE", 0.1)
    loader = module._SharedLoader()

    async def load() -> None:
        loader.load_data("endpoints")

    async def load_and_wait() -> bool:
        loader.load_data("endpoints")
        return await _released(loader, bound=2.0)

    first = asyncio.new_event_loop()
    try:
        first.run_until_complete(load())  # its release is armed there; then it stops running
        if first_loop == "closed":
            first.close()
        assert loader.endpoints_parse is not None
        loader.load_data("endpoints")  # no running loop: kept, nothing armed
        assert asyncio.run(load_and_wait())
    finally:
        first.close()
