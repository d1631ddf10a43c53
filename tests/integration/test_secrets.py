"""No secret in any message, log event or span, on every error path we can reach.

Known secrets are fed in (a proxy password, encryption keys, an AWS secret access key and
a session token); each failure is provoked on both transports (a proxy that refuses or is
not there, a server that denies access, refuses the connection, stalls, drops the
connection, answers with a corrupted or foreign reply, or redirects elsewhere; a malformed
key configuration; a value encrypted under another key). Then everything said about it is
searched: the exception (str, repr, attributes, traceback, every chained cause), the
structlog events, the OpenTelemetry spans (with ``expose_keys`` on, so that spans carry
whole exceptions), the CLI's output and whatever reached a server that is not the one
configured.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from typing import Any, Literal
from urllib.parse import quote

import botocore.retries.standard
import pytest
import pytest_asyncio
import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from structlog.testing import capture_logs

from aiodynkv import AsyncDynamoKV, KVConfig, KVConfigError, KVError
from aiodynkv.testing import set_retry_waits

Transport = Literal["lean", "botocore"]
TRANSPORTS: tuple[Transport, ...] = ("lean", "botocore")

ACCESS_KEY_ID = "AKIDSECRETSTEST0001"  # an id, not a secret: it may appear
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY-SECRET-ACCESS-KEY"
SESSION_TOKEN = "FwoGZXIvYXdzEJr-SESSION-TOKEN-0123456789abcdefghijklmnop"
PROXY_USER = "proxy-user"
PROXY_PASSWORD = "pr0xy-P4ss@w0rd:with/odd&chars"
KEY_1 = bytes(range(32))
KEY_2 = bytes(range(100, 132))


def _forms(key: bytes) -> list[str]:
    encoded = base64.b64encode(key).decode()
    return [encoded, encoded.rstrip("="), encoded[4:20], key.hex(), key.hex()[8:40], repr(key)]


SECRETS: list[str] = [
    SECRET_ACCESS_KEY,
    SESSION_TOKEN,
    PROXY_PASSWORD,
    quote(PROXY_PASSWORD, safe=""),
    base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode(),
    *_forms(KEY_1),
    *_forms(KEY_2),
]


# -- what was said ------------------------------------------------------------------------


def everything_about(exc: BaseException) -> str:
    """str, repr, attributes, notes and traceback of `exc` and of everything chained to it."""
    seen: list[BaseException] = []
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or any(current is s for s in seen):
            continue
        seen.append(current)
        stack += [current.__cause__, current.__context__, *current.args]
    texts = []
    for current in seen:
        texts += [str(current), repr(current), repr(getattr(current, "__notes__", ""))]
        texts.append("".join(traceback.format_exception(current)))
        for name in ("message", "reason", "body", "key", "operation", "table"):
            texts.append(repr(getattr(current, name, "")))
    return "\n".join(texts)


def everything_in(spans: InMemorySpanExporter) -> str:
    texts = []
    for span in spans.get_finished_spans():
        texts += [span.name, repr(dict(span.attributes or {})), str(span.status.description)]
        for event in span.events:
            texts += [event.name, repr(dict(event.attributes or {}))]
    return "\n".join(texts)


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret ({secret[:6]}...) in {where}"


class Watch:
    """Collects the exceptions, log events and spans of the calls made under it."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.errors: list[BaseException] = []
        self.logs: list[MutableMapping[str, Any]] = []

    async def call(self, call: Awaitable[Any]) -> None:
        try:
            await call
        except Exception as exc:  # noqa: BLE001 - every failure is searched
            self.errors.append(exc)

    def assert_clean(self) -> None:
        assert self.errors, "nothing failed: the scenario did not reach an error path"
        for error in self.errors:
            assert_no_secret(everything_about(error), f"{type(error).__name__}")
        assert_no_secret(repr(self.logs), "the log events")
        assert_no_secret(everything_in(self.spans), "the spans")


@pytest.fixture
def watch() -> Iterator[Watch]:
    structlog.reset_defaults()
    found = Watch()
    with capture_logs() as logs:
        found.logs = logs
        yield found
    found.tracer_provider.shutdown()
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def secret_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> Iterator[pytest.MonkeyPatch]:
    """Credentials with a secret key and a session token; no AWS files; no waiting."""
    for name in list(os.environ):
        if name.startswith("AIODYNKV_") and name != "AIODYNKV_DYNALITE":
            monkeypatch.delenv(name)
    for name in ("AWS_PROFILE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("NO_PROXY", "no_proxy", "AWS_ACCOUNT_ID", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)

    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda *_: 0.0
    )  # botocore's own backoff has no public switch
    with set_retry_waits(False):
        yield monkeypatch


# -- servers ------------------------------------------------------------------------------

Reply = Callable[[bytes], bytes | None]  # request head -> raw reply (None: drop; b"": stall)


class Stub:
    """A server on 127.0.0.1 answering every request with `reply`; notes what it read."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.heads: list[bytes] = []
        self.url = ""

    async def __aenter__(self) -> Stub:
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stopping.set()
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                head += await reader.readexactly(length)
                self.heads.append(head)
                answer = self.reply(head)
                if answer is None:
                    break
                if answer == b"":
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), 5)
                    break
                writer.write(answer)
                await writer.drain()
        writer.close()


def http(status: int, body: bytes, **headers: str) -> Reply:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    return lambda _head: raw


def dynamo_error(code: str, message: str, status: int = 400) -> Reply:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
    return http(status, body.encode(), Content_Type="application/x-amz-json-1.0")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture
async def elsewhere() -> AsyncIterator[Stub]:
    """A server that is not the configured one: nothing secret may reach it."""
    async with Stub(http(200, b"{}", Content_Type="application/x-amz-json-1.0")) as stub:
        yield stub


def store(endpoint: str | None, transport: Transport, watch: Watch, **fields: Any) -> AsyncDynamoKV:
    settings: dict[str, Any] = {
        "table": "secrets-test",
        "endpoint": endpoint,
        "region": "us-east-1",
        "transport": transport,
        "max_attempts": 2,
        "connect_timeout": 0.5,
        "read_timeout": 0.3,
        "encryption_keys": {"k1": KEY_1, "k2": KEY_2},
        "encryption_key_id": "k1",
        "expose_keys": True,  # spans then carry whole exceptions: the most that is said
        "tracer_provider": watch.tracer_provider,
        "coalesce_reads": False,
    }
    settings.update(fields)
    return AsyncDynamoKV(KVConfig(**settings))


async def exercise(kv: AsyncDynamoKV, watch: Watch) -> None:
    """A read, a write and a counter, each failing its own way."""
    try:
        await kv.open()
    except KVError as exc:
        watch.errors.append(exc)
        return
    try:
        await watch.call(kv.get("session:1"))
        await watch.call(kv.set("session:1", "value"))
        await watch.call(kv.incr("counter", 5))
    finally:
        await kv.aclose()


# -- the scenarios ------------------------------------------------------------------------

SERVER_FAILURES: dict[str, Reply] = {
    "unrecognized-client": dynamo_error(
        "UnrecognizedClientException", "The security token included in the request is invalid."
    ),
    "invalid-signature": dynamo_error(
        "InvalidSignatureException", "The request signature we calculated does not match."
    ),
    "expired-token": dynamo_error("ExpiredTokenException", "The security token has expired."),
    "access-denied": dynamo_error("AccessDeniedException", "not authorized", status=403),
    "server-error": dynamo_error("InternalServerError", "down", status=500),
    "stall": lambda _head: b"",
    "drop": lambda _head: None,
    "crc-mismatch": http(200, b'{"Item": {}}', x_amz_crc32="12345"),
    "not-json": http(200, b"<html>captive portal</html>"),
}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("failure", list(SERVER_FAILURES))
async def test_no_secret_in_what_a_failing_server_makes_us_say(
    transport: Transport, failure: str, watch: Watch
) -> None:
    async with Stub(SERVER_FAILURES[failure]) as server:
        await exercise(store(server.url, transport, watch), watch)
    assert server.heads  # the failure came from the server
    watch.assert_clean()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_no_secret_when_the_connection_is_refused(transport: Transport, watch: Watch) -> None:
    await exercise(store(f"http://127.0.0.1:{closed_port()}", transport, watch), watch)
    watch.assert_clean()


@pytest.mark.parametrize(
    "transport",
    [
        "lean",
        pytest.param(
            "botocore",
            marks=pytest.mark.xfail(
                strict=True,
                reason="aiobotocore lets aiohttp follow redirects (botocore's urllib3 does "
                "not): the signed request, session token included, goes to the new location",
            ),
        ),
    ],
)
@pytest.mark.parametrize("status", [301, 307])
async def test_a_redirect_carries_no_secret_elsewhere(
    transport: Transport, status: int, watch: Watch, elsewhere: Stub
) -> None:
    async with Stub(http(status, b"", Location=f"{elsewhere.url}/")) as server:
        await exercise(store(server.url, transport, watch), watch)
    assert server.heads
    assert_no_secret(repr(elsewhere.heads), "requests to another server")
    assert elsewhere.heads == []  # DynamoDB never redirects: nothing is followed
    watch.assert_clean()


def _refusing_proxy(_head: bytes) -> bytes:
    return b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("proxy_kind", ["refuses", "absent"])
async def test_no_secret_when_the_proxy_fails(
    transport: Transport, proxy_kind: str, watch: Watch, secret_environment: pytest.MonkeyPatch
) -> None:
    async with Stub(_refusing_proxy) as proxy:
        port = proxy.url.rsplit(":", 1)[1] if proxy_kind == "refuses" else str(closed_port())
        password = quote(PROXY_PASSWORD, safe="")
        secret_environment.setenv("HTTPS_PROXY", f"http://{PROXY_USER}:{password}@127.0.0.1:{port}")
        # no endpoint: AWS itself, reached (not) through the proxy
        await exercise(store(None, transport, watch), watch)
    if proxy_kind == "refuses":
        assert proxy.heads  # the tunnel was asked for, with the credentials
    watch.assert_clean()


MALFORMED_KEYS = [
    lambda a, b: f"k1:{a},k2={b}",
    lambda a, b: f"k1:{a},{b}",
    lambda a, b: f"k1:{a};k2:{b}",
    lambda a, b: f"k1:{a[:-4]},k2:{b}",
    lambda a, b: f"k1:{a}@,k2:{b}",
    lambda a, b: f"k1:{b}:{a}",
    lambda a, b: f"{a}:k1,k2:{b}",
]


@pytest.mark.parametrize("entries", MALFORMED_KEYS)
def test_no_secret_in_a_key_configuration_error(
    entries: Callable[[str, str], str],
    watch: Watch,
    capsys: pytest.CaptureFixture[str],
    secret_environment: pytest.MonkeyPatch,
) -> None:
    from aiodynkv._cli import main as cli_main

    text = entries(base64.b64encode(KEY_1).decode(), base64.b64encode(KEY_2).decode())
    env = {"AIODYNKV_TABLE": "secrets-test", "AIODYNKV_ENCRYPTION_KEYS": text}
    with pytest.raises(KVConfigError) as caught:
        KVConfig.from_env(env)
    watch.errors.append(caught.value)
    for name, value in env.items():
        secret_environment.setenv(name, value)
    capsys.readouterr()
    assert cli_main(["get", "k"]) != 0
    printed = capsys.readouterr()
    assert_no_secret(printed.out + printed.err, "the CLI's output")
    watch.assert_clean()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_no_secret_when_a_value_is_under_another_key(
    transport: Transport, watch: Watch, moto_endpoint: str
) -> None:
    table = f"secrets-{uuid.uuid4().hex[:10]}"
    # A real server, where no call should time out: moto on a loaded machine is slow.
    keys: dict[str, Any] = {
        "encryption_keys": {"k1": KEY_1},
        "encryption_key_id": "k1",
        "connect_timeout": 5.0,
        "read_timeout": 5.0,
    }
    async with store(moto_endpoint, transport, watch, table=table, create_table=True, **keys) as kv:
        await kv.set("session:1", "value")
        await kv.set("session:2", "value")
    wrong_key = {**keys, "encryption_keys": {"k1": KEY_2}}
    unknown_id = {**keys, "encryption_keys": {"k2": KEY_2}, "encryption_key_id": "k2"}
    for settings in (wrong_key, unknown_id):
        async with store(moto_endpoint, transport, watch, table=table, **settings) as kv:
            await watch.call(kv.get("session:1"))
            await watch.call(kv.get_many(["session:1", "session:2"]))
    async with store(moto_endpoint, transport, watch, table=table, **keys) as kv:
        await kv.client.delete_table(TableName=table)
    assert len(watch.errors) == 4
    watch.assert_clean()
