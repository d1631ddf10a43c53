"""Every example, run with the command in its docstring, answering real HTTP.

Each runs as a subprocess from the repository root; the web apps listen on a free
127.0.0.1 port and are stopped with SIGINT, as Ctrl-C would. The FastAPI app starts
its own embedded emulator (exactly the documented command); the others are pointed
at the session's moto server through ``AIODYNKV_ENDPOINT`` to save a server start.
Each app runs in its own process group, which is killed whole if it does not stop.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES: tuple[str, ...] = (
    "quickstart.py", "fastapi_app.py", "aiohttp_app.py", "rate_limiter.py", "tracing.py"
)  # fmt: skip
# Run by tests/integration/test_coordination_examples.py.
EXAMPLES += ("job_runner.py", "order_flow.py")
# Run by tests/integration/test_typed.py.
EXAMPLES += ("typed_encrypted.py",)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command(name: str) -> list[str]:
    """The example's own run command, from its docstring, with this interpreter."""
    path = ROOT / "examples" / name
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    documented = re.findall(r"python examples/[\w.]+\.py", doc)
    assert documented, f"{name}: its docstring gives no `python examples/...` command"
    assert documented[0] == f"python examples/{name}"
    return [sys.executable, f"examples/{name}"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIODYNKV_", "OTEL_"))}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def _on_moto(endpoint: str, **extra: str) -> dict[str, str]:
    return _env(
        AIODYNKV_ENDPOINT=endpoint,
        AIODYNKV_TABLE=f"ex-{uuid.uuid4().hex[:10]}",
        AIODYNKV_CREATE_TABLE="true",
        **extra,
    )


class Server:
    """An example web app in a subprocess, and an HTTP client for it."""

    def __init__(self, name: str, env: dict[str, str], *args: str, ready: str = "/healthz"):
        self.port = _free_port()
        self.process = subprocess.Popen(  # noqa: S603 (our own examples)
            [*command(name), "--port", str(self.port), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        self.output = ""
        self.name = name
        self.ready = ready

    def wait_ready(self) -> Server:
        """Poll until the app answers HTTP (or fail with its output)."""
        name, ready = self.name, self.ready
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                self.stop()
                pytest.fail(f"{name} exited with {self.process.returncode}:\n{self.output}")
            try:
                self.http.get(ready)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"{name} did not answer within 60 s:\n{self.output}")
                time.sleep(0.1)
        return self

    def stop_output(self) -> str:
        """Stop the app and return everything it printed."""
        self.stop()
        return self.output

    def stop(self) -> int:
        """Ctrl-C, then wait; returns the exit code."""
        self.http.close()
        if (code := self.process.returncode) is not None:
            return code  # stopped before
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.output, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # the app and its emulator
            self.output, _ = self.process.communicate()
        return self.process.returncode


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Server] = []

    def start(
        name: str, env: dict[str, str], *args: str, ready: str = "/healthz", wait: bool = True
    ) -> Server:
        server = Server(name, env, *args, ready=ready)
        started.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in started:
        server.stop()


def test_every_example_documents_its_command() -> None:
    found = sorted(p.name for p in (ROOT / "examples").glob("*.py"))
    assert found == sorted(EXAMPLES)
    for name in EXAMPLES:
        command(name)


def run_example(name: str, endpoint: str) -> subprocess.CompletedProcess[str]:
    """Run an example to completion with its docstring's command, against `endpoint`."""
    return subprocess.run(  # noqa: S603 (our own example)
        command(name),
        cwd=ROOT,
        env=_env(AIODYNKV_ENDPOINT=endpoint),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_quickstart(moto_endpoint: str) -> None:
    result = run_example("quickstart.py", moto_endpoint)
    assert result.returncode == 0, result.stderr
    assert "user:1 = alice" in result.stdout and "health: UP" in result.stdout


def _cache_and_sessions(http: httpx.Client) -> None:
    """The API fastapi_app.py and aiohttp_app.py share."""
    assert http.put("/cache/greeting", json={"value": "hello", "ttl": 60}).status_code == 204
    got = http.get("/cache/greeting")
    assert got.status_code == 200
    assert got.json()["value"] == "hello" and 55 < got.json()["ttl"] <= 61
    assert http.put("/cache/forever", json={"value": "x"}).status_code == 204
    assert http.get("/cache/forever").json()["ttl"] is None
    assert http.get("/cache/nope").status_code == 404
    assert http.put("/cache/bad", json={"ttl": 5}).status_code == 422
    assert http.delete("/cache/greeting").status_code == 204
    assert http.delete("/cache/greeting").status_code == 404
    created = http.post("/sessions", json={"user": "alice", "data": {"cart": [1, 2]}})
    assert created.status_code == 201
    session_id = created.json()["session_id"]
    read = http.get(f"/sessions/{session_id}")
    assert read.status_code == 200
    assert read.json() == {"user": "alice", "data": {"cart": [1, 2]}}
    assert http.delete(f"/sessions/{session_id}").status_code == 204
    assert http.get(f"/sessions/{session_id}").status_code == 404
    health = http.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "UP"
    _reveals_nothing(health)


def _reveals_nothing(health: httpx.Response) -> None:
    """A health answer holds the status and the latency, and no endpoint, region or secret."""
    assert set(health.json()) <= {"status", "latency_ms"}
    for detail in ("127.0.0.1", "http", "region", "us-east-1", "endpoint", "aws", "key"):
        assert detail not in health.text.lower(), detail


# One table of requests, both apps: the same status, the same error body, no internal names.
# (method, path, extra headers, body, status, "error" of the answer or None for success)
SAME_API: tuple[tuple[str, str, dict[str, str], bytes | None, int, str | None], ...] = (
    ("PUT", "/cache/team%2Fa", {}, b'{"value": "v"}', 204, None),
    ("GET", "/cache/team/a", {}, None, 200, None),  # %2F and / are the same key
    ("GET", "/cache/team%2Fa", {}, None, 200, None),
    ("PUT", "/cache/k", {}, b"not json", 400, "BadRequest"),
    ("PUT", "/cache/k", {}, b"[1, 2]", 422, "UnprocessableEntity"),
    ("PUT", "/cache/k", {}, b'{"ttl": 5}', 422, "UnprocessableEntity"),
    ("PUT", "/cache/k", {}, b'{"value": "v", "ttl": -1}', 422, "UnprocessableEntity"),
    ("GET", "/cache/missing", {}, None, 404, "KeyNotFoundError"),
    ("DELETE", "/cache/missing", {}, None, 404, "NotFound"),
    ("PUT", "/cache/k", {"If-Match": "garbage"}, b'{"value": "v"}', 400, "BadRequest"),
    ("PUT", "/cache/k", {"If-Match": '"123"'}, b'{"value": "v"}', 412, "ConditionFailedError"),
    ("GET", "/cache/" + "k" * 3000, {}, None, 400, "InvalidKeyError"),
    ("POST", "/sessions", {}, b"{", 400, "BadRequest"),
    ("POST", "/sessions", {}, b'{"user": 1}', 422, "UnprocessableEntity"),
    ("GET", "/sessions/nope", {}, None, 404, "NotFound"),
)


@pytest.mark.parametrize("name", ["fastapi_app.py", "aiohttp_app.py"])
def test_both_web_apps_answer_one_table_of_requests_alike(
    serve: Any, moto_endpoint: str, name: str
) -> None:
    env = _on_moto(moto_endpoint)
    app = serve(name, env)
    for method, path, headers, body, status, error in SAME_API:
        sent = {"content-type": "application/json", **headers}
        answer = app.http.request(method, path, headers=sent, content=body)
        assert answer.status_code == status, (method, path, answer.status_code, answer.text)
        if error is None:
            continue
        assert answer.json() == {"error": error, "detail": answer.json()["detail"]}, answer.text
        for internal in (env["AIODYNKV_TABLE"], "GetItem", "PutItem", "operation", "table"):
            assert internal not in answer.text, (path, answer.text)
        assert "k" * 100 not in answer.text


@pytest.mark.parametrize("name", ["fastapi_app.py", "aiohttp_app.py"])
def test_bad_input_gets_the_status_a_client_expects(
    serve: Any, moto_endpoint: str, name: str
) -> None:
    # Compression off, so that a 450 KB value is over DynamoDB's 400 KB item limit (text
    # that zlib could shrink below the limit would be stored, which is the point of it).
    app = serve(name, _on_moto(moto_endpoint, AIODYNKV_COMPRESS_THRESHOLD="none"))
    long_key = "k" * 3000
    for answer in (
        app.http.put(f"/cache/{long_key}", json={"value": "v"}),
        app.http.get(f"/cache/{long_key}"),
    ):
        assert answer.status_code in (400, 422), answer.text
        assert answer.json()["error"] == "InvalidKeyError"
        assert long_key not in answer.text  # the message does not echo the key
    big = app.http.put("/cache/big", json={"value": "x" * 450_000})
    assert big.status_code == 413, big.text
    assert big.json()["error"] == "ValueTooLargeError"
    missing = app.http.get("/cache/never-set")
    assert missing.status_code == 404
    assert "Traceback" not in app.stop_output()


def _etag(answer: httpx.Response) -> str:
    """The answer's ETag: the item's version, quoted."""
    etag = str(answer.headers.get("ETag", ""))
    assert re.fullmatch(r'"\d+"', etag), (answer.status_code, dict(answer.headers))
    return etag


@pytest.mark.parametrize("name", ["fastapi_app.py", "aiohttp_app.py"])
def test_if_match_and_if_none_match_make_cache_writes_conditional(
    serve: Any, moto_endpoint: str, name: str
) -> None:
    app = serve(name, _on_moto(moto_endpoint))
    http: httpx.Client = app.http

    def put(key: str, value: str, **headers: str) -> httpx.Response:
        return http.put(f"/cache/{key}", json={"value": value}, headers=headers)

    def current(key: str) -> tuple[str, str]:
        got = http.get(f"/cache/{key}")
        assert got.status_code == 200, got.text
        return got.json()["value"], _etag(got)

    assert put("page", "v1").status_code == 204
    _, first = current("page")
    updated = put("page", "v2", **{"If-Match": first})
    assert updated.status_code == 204, updated.text
    second = _etag(updated)
    assert second != first
    assert current("page") == ("v2", second)  # the ETag the PUT gave is the stored one

    # Someone who read v1 writes too late: 412, and v2 stays.
    stale = put("page", "lost update", **{"If-Match": first})
    assert stale.status_code == 412, stale.text
    assert stale.json()["error"] == "ConditionFailedError"
    assert current("page") == ("v2", second)

    # If-None-Match: * creates only.
    assert put("page", "again", **{"If-None-Match": "*"}).status_code == 412
    assert current("page") == ("v2", second)
    assert put("fresh", "new", **{"If-None-Match": "*"}).status_code == 204
    assert current("fresh")[0] == "new"

    # If-Match on a key that does not exist: nothing to match, 412.
    assert put("absent", "x", **{"If-Match": second}).status_code == 412
    assert http.get("/cache/absent").status_code == 404

    # Malformed conditions (not * nor a list of entity-tags) are 400, and write nothing.
    for header in ("If-Match", "If-None-Match"):
        for bad in ("12", '"12', '"1" "2"', '"1"x', '*, "1"', 'w/"1"', '"a b"', '"1";'):
            for key in ("page", "absent"):
                answer = put(key, "malformed", **{header: bad})
                assert answer.status_code == 400, (header, bad, answer.status_code, answer.text)
                answer = http.delete(f"/cache/{key}", headers={header: bad})
                assert answer.status_code == 400, (header, bad, answer.status_code, answer.text)
    assert current("page") == ("v2", second)
    assert http.get("/cache/absent").status_code == 404

    # DELETE takes If-Match too.
    assert http.delete("/cache/page", headers={"If-Match": first}).status_code == 412
    assert http.delete("/cache/page", headers={"If-Match": second}).status_code == 204
    assert http.get("/cache/page").status_code == 404
    assert "Traceback" not in app.stop_output()


@pytest.mark.parametrize("name", ["fastapi_app.py", "aiohttp_app.py"])
def test_conditional_requests_follow_rfc_9110(serve: Any, moto_endpoint: str, name: str) -> None:
    """If-Match and If-None-Match as RFC 9110 §13.1 has them: *, lists, strong comparison."""
    app = serve(name, _on_moto(moto_endpoint))
    http: httpx.Client = app.http

    def put(key: str, value: str, headers: Any) -> int:
        return http.put(f"/cache/{key}", json={"value": value}, headers=headers).status_code

    def delete(key: str, headers: Any) -> int:
        return http.delete(f"/cache/{key}", headers=headers).status_code

    def current(key: str) -> tuple[str, str] | None:
        got = http.get(f"/cache/{key}")
        if got.status_code == 404:
            return None
        assert got.status_code == 200, got.text
        return got.json()["value"], _etag(got)

    assert put("page", "v1", {}) == 204
    _, etag = current("page") or ("", "")
    digits = etag.strip('"')
    arabic = digits.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))  # int() reads these
    # Valid entity-tags that are not the current version: 412, nothing written, never
    # 400 or 500: a 5000-digit one (int() would refuse it), 20 digits (over 63 bits),
    # the version zero-padded or in other digits (strong comparison is octet by octet),
    # weak (never a strong match), and a list without the version.
    for tag in (
        '"' + "9" * 5000 + '"',
        '"' + "9" * 20 + '"',
        f'"0{digits}"',
        f'"+{digits}"',
        f'"{arabic}"'.encode(),
        f"W/{etag}",
        '"abc", "1", W/' + etag,
        '"*"',
    ):
        assert put("page", "x", {"If-Match": tag}) == 412, tag[:40]
        assert delete("page", {"If-Match": tag}) == 412, tag[:40]
    assert current("page") == ("v1", etag)

    # A list matches if any of its tags does, also across several header lines, and
    # also when another tag holds a comma.
    assert put("page", "v2", {"If-Match": f'"1", W/"2", "a,b", {etag}'}) == 204
    _, etag = current("page") or ("", "")
    assert put("page", "v3", [("If-Match", '"1"'), ("If-Match", f'W/"x", {etag}')]) == 204
    value, etag = current("page") or ("", "")
    assert value == "v3"

    # If-Match: * is "the item exists".
    assert put("page", "v4", {"If-Match": "*"}) == 204
    value, etag = current("page") or ("", "")
    assert value == "v4"
    assert put("missing", "x", {"If-Match": "*"}) == 412
    assert delete("missing", {"If-Match": "*"}) == 412
    assert current("missing") is None

    # If-None-Match: * on DELETE: 412 while the item exists, 404 when there is none.
    assert delete("page", {"If-None-Match": "*"}) == 412
    assert current("page") == ("v4", etag)
    assert delete("missing", {"If-None-Match": "*"}) == 404

    # If-None-Match with tags: 412 when one matches (weakly), else the write proceeds.
    assert put("page", "no", {"If-None-Match": etag}) == 412
    assert put("page", "no", {"If-None-Match": f'"1", W/{etag}'}) == 412
    assert delete("page", {"If-None-Match": etag}) == 412
    assert current("page") == ("v4", etag)
    assert put("page", "v5", {"If-None-Match": '"1"'}) == 204
    value, etag = current("page") or ("", "")
    assert value == "v5"

    # Both headers: If-Match first, then If-None-Match: * (false for an existing item);
    # 412 either way, never the library's 422 for if_absent with if_version.
    for match in (etag, '"1"', "*"):
        both = {"If-Match": match, "If-None-Match": "*"}
        assert put("page", "no", both) == 412, match
        assert delete("page", both) == 412, match
        assert put("missing", "no", both) == 412, match
        assert delete("missing", both) == 412, match
    assert current("page") == ("v5", etag)
    assert current("missing") is None

    # If-Match with the current version, on DELETE.
    assert delete("page", {"If-Match": f'"1", {etag}'}) == 204
    assert current("page") is None
    assert "Traceback" not in app.stop_output()


def test_fastapi_app_on_its_own_embedded_emulator(serve: Any) -> None:
    app = serve("fastapi_app.py", _env())
    _cache_and_sessions(app.http)
    assert app.stop() == 0
    assert "embedded emulator on http://127.0.0.1:" in app.output
    assert "Application shutdown complete" in app.output


def test_aiohttp_app(serve: Any, moto_endpoint: str) -> None:
    app = serve("aiohttp_app.py", _on_moto(moto_endpoint))
    _cache_and_sessions(app.http)
    assert app.http.put("/cache/k", content=b"not json").status_code == 400
    assert app.stop() == 0


def test_healthz_is_503_when_the_table_is_down(serve: Any) -> None:
    env = _env(
        AIODYNKV_ENDPOINT=f"http://127.0.0.1:{_free_port()}",  # nothing listens there
        AIODYNKV_MAX_ATTEMPTS="1",
        AIODYNKV_CONNECT_TIMEOUT="1",
    )
    apps = {name: serve(name, env, wait=False) for name in ("fastapi_app.py", "aiohttp_app.py")}
    for name, app in apps.items():
        health = app.wait_ready().http.get("/healthz")
        assert health.status_code == 503, name
        assert health.json()["status"] == "DOWN"
        _reveals_nothing(health)
        unavailable = app.http.get("/cache/anything")
        assert unavailable.status_code == 503, name
        assert unavailable.headers["Retry-After"] == "1"
        assert unavailable.json() == {
            "error": "KVConnectionError",
            "detail": "the store is unavailable: retry",
        }


def test_rate_limiter_answers_429_past_the_limit_until_the_window_ends(
    serve: Any, moto_endpoint: str
) -> None:
    app = serve(
        "rate_limiter.py", _on_moto(moto_endpoint), "--limit", "3", "--window", "2", ready="/x"
    )
    for _attempt in range(5):
        alice = {"X-Client-Id": f"alice-{uuid.uuid4().hex}"}
        # Start right after a window boundary, so four requests fit in one window...
        time.sleep(2 - time.time() % 2 + 0.05)
        window = time.time() // 2
        answers = [app.http.get("/", headers=alice) for _ in range(4)]
        if time.time() // 2 == window:
            break
        # ...and when a slow machine let them straddle two windows, count again.
    else:
        pytest.fail("four requests never fitted in one 2 s window")
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[0].text == "hello\n"
    assert [r.headers["X-RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    retry_after = int(answers[3].headers["Retry-After"])
    assert 1 <= retry_after <= 2
    other = app.http.get("/", headers={"X-Client-Id": f"bob-{uuid.uuid4().hex}"})
    assert other.status_code == 200  # counted per client
    time.sleep(2 - time.time() % 2 + 0.05)  # the next window
    assert app.http.get("/", headers=alice).status_code == 200
    assert app.stop() == 0


def _spans(output: str) -> list[dict[str, Any]]:
    """The spans ConsoleSpanExporter printed (one indented JSON object each)."""
    decoder = json.JSONDecoder()
    spans, at = [], 0
    while (start := output.find("{", at)) != -1:
        obj, at = decoder.raw_decode(output, start)
        if "context" in obj and "name" in obj:
            spans.append(obj)
    return spans


def test_tracing_prints_our_spans_nested_under_the_application_span(moto_endpoint: str) -> None:
    result = run_example("tracing.py", moto_endpoint)
    assert result.returncode == 0, result.stderr
    spans = {span["name"]: span for span in _spans(result.stdout)}
    checkout = spans["checkout"]
    ours = spans["GetItem tracing-demo"]
    assert ours["kind"] == "SpanKind.CLIENT"
    assert ours["parent_id"] == checkout["context"]["span_id"]
    assert ours["attributes"]["db.system.name"] == "aws.dynamodb"
    assert spans["DynamoDB.GetItem"]["parent_id"] == ours["context"]["span_id"]
    assert {"UpdateItem tracing-demo", "BatchWriteItem tracing-demo"} <= set(spans)
    assert "db.client.operation.duration" in result.stdout  # the metrics, printed at exit


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_tracing_sends_otlp_over_http_to_a_collector(moto_endpoint: str) -> None:
    _Collector.received = []
    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=collector.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
        result = subprocess.run(  # noqa: S603 (our own example)
            [*command("tracing.py"), "--otlp"],
            cwd=ROOT,
            env=_env(AIODYNKV_ENDPOINT=moto_endpoint, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        collector.shutdown()
        collector.server_close()
    assert result.returncode == 0, result.stderr
    traces = b"".join(body for path, body in _Collector.received if path == "/v1/traces")
    for name in (b"checkout", b"GetItem tracing-demo", b"DynamoDB.GetItem", b"aws.dynamodb"):
        assert name in traces
    assert '"name": "checkout"' not in result.stdout  # spans went to OTLP, not the console


def _load(name: str) -> Any:
    """An example module, imported from its file (examples/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        name.removesuffix(".py"), ROOT / "examples" / name
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_both_web_apps_map_every_error_alike_and_a_write_in_doubt_is_504() -> None:
    import aiodynkv

    fastapi_app, aiohttp_app = _load("fastapi_app.py"), _load("aiohttp_app.py")
    assert fastapi_app.HTTP_STATUS == aiohttp_app.HTTP_STATUS
    in_doubt = aiodynkv.WriteInDoubtError("lost", operation="incr", table="t", key="k")
    for app in (fastapi_app, aiohttp_app):
        status, detail, headers = app.http_status(in_doubt)
        assert (status, headers) == (504, {}) and "read" in detail
        assert app.http_status(aiodynkv.ThrottledError("x"))[0] == 503
        assert app.http_status(aiodynkv.AccessDeniedError("x"))[0] == 500
