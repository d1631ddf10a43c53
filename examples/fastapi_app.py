r"""A FastAPI session and cache service on aiodynkv.

Run it (after ``pip install -e '.[examples]'`` in a clone of the repository)::

    python examples/fastapi_app.py

It serves http://127.0.0.1:8080 (``--host``, ``--port``). Without ``AIODYNKV_ENDPOINT``
it first starts the embedded emulator; otherwise the store comes from the ``AIODYNKV_*``
variables (table ``aiodynkv`` by default), as in docker-compose.yml. With
``OTEL_EXPORTER_OTLP_ENDPOINT`` set, traces go to that OTLP/HTTP collector (Jaeger).

- The store is opened once in the lifespan and handed to handlers by dependency
  injection (``Depends(store)``); tests can override `store` with an `InMemoryKV`.
- ``PUT/GET/DELETE /cache/{key}``: a cache of text values with an optional TTL, and
  optimistic concurrency with HTTP conditional requests (RFC 9110): GET answers an
  ``ETag``, the item's version (``"12345"``). PUT or DELETE with ``If-Match: "12345"``
  (or a list of tags, or ``*``: the item exists) applies only if the version is still
  one of those; ``If-None-Match: *`` only if there is no item (with tags: if none of
  them is the version). `preconditions` reads the version, then writes with
  ``if_version=`` it (or ``if_absent=True``), so a write in between fails too. A
  condition not met is 412 Precondition Failed; tags are compared as text, so
  ``"0012"`` or ``W/"12"`` never match 12, and a well-formed tag that is no version
  is simply 412.
- ``POST /sessions``, ``GET/DELETE /sessions/{id}``: sessions that expire after
  ``SESSION_TTL`` seconds of inactivity (each read extends them).
- ``GET /healthz``: ``{"status": "UP"}`` (200) or ``{"status": "DOWN"}`` (503), with the
  probe's latency; never the endpoint, region or credentials, which a public health
  route would hand to anyone who asks.
- Errors become the status a client expects, in one exception handler (`http_error`):
  invalid key 400, other invalid input 422, too large 413, not found 404, condition
  failed (If-Match, If-None-Match) 412, a write in doubt 504, throttled or unavailable 503 with
  ``Retry-After``. Copy it as it is. A body that is not JSON, or an ``If-Match`` or
  ``If-None-Match`` header that is neither ``*`` nor a list of entity-tags, is 400; JSON
  of the wrong shape is 422. Every error answer is ``{"error": name, "detail": text}``,
  the same as aiohttp_app.py's, and names no table, operation or value.
- Keys may hold ``/`` (sent as ``/`` or ``%2F``: the same key).

Try it::

    curl -X PUT localhost:8080/cache/greeting -H content-type:application/json \
         -d '{"value": "hello", "ttl": 60}'
    curl -i localhost:8080/cache/greeting                 # ETag: "<version>"
    curl -X PUT localhost:8080/cache/greeting -H content-type:application/json \
         -H 'If-Match: "<version>"' -d '{"value": "hi"}'  # 412 if someone wrote first
    curl localhost:8080/healthz
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.datastructures import Headers
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from aiodynkv import (
    AsyncDynamoKV,
    ConditionFailedError,
    InvalidKeyError,
    KeyNotFoundError,
    KVConfig,
    KVError,
    KVStore,
    KVValidationError,
    ThrottledError,
    TransientError,
    ValueTooLargeError,
    WriteInDoubtError,
)

DEFAULT_TABLE = "aiodynkv"
SESSION_TTL = 1800


def kv_config() -> KVConfig:
    """The store's settings: ``AIODYNKV_*`` variables, table ``aiodynkv`` by default."""
    if os.environ.get("AIODYNKV_TABLE"):
        return KVConfig.from_env()
    return KVConfig.from_env(table=DEFAULT_TABLE)


def setup_tracing() -> None:
    """Send spans to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (OTLP/HTTP), if it is set."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the store for the life of the app; close it (and flush spans) on shutdown."""
    async with AsyncDynamoKV(kv_config()) as kv:
        app.state.kv = kv
        yield


app = FastAPI(title="aiodynkv example", lifespan=lifespan)


# The status a client expects for each error, and what to tell it; the first class that
# matches decides, so subclasses come before their bases. Anything else (a
# misconfiguration, denied access) is the operator's problem: 500. The detail is ours,
# never the exception's message, which names the table and the operation.
HTTP_STATUS: tuple[tuple[type[KVError], int, str, dict[str, str]], ...] = (
    (InvalidKeyError, 400, "the key is empty, too long or holds a refused character", {}),
    (ValueTooLargeError, 413, "the value is over DynamoDB's 400 KB item limit", {}),
    (KVValidationError, 422, "the store refused this input", {}),
    (KeyNotFoundError, 404, "no such key (or it expired)", {}),
    (ConditionFailedError, 412, "If-Match or If-None-Match failed", {}),
    # Not retried blindly: the write may be applied; the client reads before it retries.
    (WriteInDoubtError, 504, "the write may or may not have been applied: read, then retry", {}),
    (ThrottledError, 503, "the store is busy: retry", {"Retry-After": "2"}),
    (TransientError, 503, "the store is unavailable: retry", {"Retry-After": "1"}),
)


def http_status(exc: KVError) -> tuple[int, str, dict[str, str]]:
    """The HTTP status, detail and headers for `exc`, from `HTTP_STATUS` (else 500)."""
    for error, status, detail, headers in HTTP_STATUS:
        if isinstance(exc, error):
            return status, detail, headers
    return 500, "internal error", {}


def error_body(error: str, detail: str) -> dict[str, str]:
    """Every error answer has this shape: ``{"error": name, "detail": text}``."""
    return {"error": error, "detail": detail}


@app.exception_handler(KVError)
async def http_error(_request: Request, exc: Exception) -> JSONResponse:
    """Every KVError a handler lets through, as a JSON error with the right status."""
    if not isinstance(exc, KVError):  # registered for KVError only
        raise exc
    status, detail, headers = http_status(exc)
    return JSONResponse(error_body(type(exc).__name__, detail), status, headers=headers)


@app.exception_handler(StarletteHTTPException)
async def http_exception(_request: Request, exc: Exception) -> JSONResponse:
    """The app's own 400/404 answers (and unknown routes), in the same shape."""
    if not isinstance(exc, StarletteHTTPException):  # registered for HTTPException only
        raise exc
    name = HTTPStatus(exc.status_code).phrase.replace(" ", "")
    return JSONResponse(error_body(name, str(exc.detail)), exc.status_code)


@app.exception_handler(RequestValidationError)
async def invalid_body(request: Request, exc: Exception) -> JSONResponse:
    """A body that is not JSON is 400; JSON of the wrong shape is 422."""
    if not isinstance(exc, RequestValidationError):  # registered for it only
        raise exc
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        return JSONResponse(error_body("BadRequest", "the body must be JSON"), 400)
    shape = SHAPES["cache" if request.url.path.startswith("/cache") else "sessions"]
    return JSONResponse(error_body("UnprocessableEntity", f"expected {shape}"), 422)


SHAPES = {
    "cache": '{"value": str, "ttl": seconds > 0}',
    "sessions": '{"user": str, "data": object}',
}


def store(request: Request) -> KVStore:
    """The app's store, for ``Depends``; override it in tests with an `InMemoryKV`."""
    kv: KVStore = request.app.state.kv
    return kv


KV = Annotated[KVStore, Depends(store)]

# RFC 9110 §8.8.3: an entity-tag is "opaque" or W/"weak", any octet but controls,
# space and '"' inside the quotes (a comma too). A list may have empty elements.
ELEMENT = r'[ \t]*(?:(?:W/)?"[^\x00-\x20"\x7f]*"[ \t]*)?'
ETAG_LIST = re.compile(rf"\*|{ELEMENT}(?:,{ELEMENT})*")


def entity_tags(lines: list[str], *, weak: bool) -> list[str] | None:
    """An If-Match or If-None-Match header, one line or several; 400 if malformed.

    None when absent, ``["*"]`` for ``*``, else its entity-tags as sent (``'"12"'``). A
    weak one counts only if `weak` (If-None-Match compares weakly, If-Match strongly),
    without its ``W/``. Tags are compared as text, never as numbers: ``"012"`` is not 12.
    """
    if not lines:
        return None
    header = ", ".join(lines)  # several lines are one list
    if ETAG_LIST.fullmatch(header) is None:
        raise HTTPException(400, "If-Match and If-None-Match take * or entity-tags, as ETag")
    if header == "*":
        return ["*"]
    return [tag for w, tag in re.findall(r'(W/)?("[^"]*")', header) if weak or not w]


async def preconditions(cache: KVStore, key: str, headers: Headers) -> tuple[bool, int | None]:
    """Evaluate If-Match, then If-None-Match (RFC 9110 §13.2.2); 412 when one fails.

    Returns whether there was a condition, and then the item's version (None: no item).
    Write with ``if_version=`` that version (``if_absent=True`` if None): a change since
    this read fails the write too, with 412.
    """
    if_match = entity_tags(headers.getlist("If-Match"), weak=False)
    if_none_match = entity_tags(headers.getlist("If-None-Match"), weak=True)
    if if_match is None and if_none_match is None:
        return False, None
    try:
        version: int | None = (await cache.get_with_version(key))[1]
    except KeyNotFoundError:
        version = None
    etag = None if version is None else f'"{version}"'

    def found(tags: list[str]) -> bool:
        return etag is not None and (tags == ["*"] or etag in tags)

    if (if_match is not None and not found(if_match)) or (
        if_none_match is not None and found(if_none_match)
    ):
        raise ConditionFailedError("If-Match or If-None-Match failed", current_version=version)
    return True, version


class CacheEntry(BaseModel):
    """A value to cache, and for how long (seconds; None: until deleted)."""

    value: str
    ttl: float | None = Field(default=None, gt=0)


class NewSession(BaseModel):
    """Who the session is for, and what to keep in it."""

    user: str
    data: dict[str, Any] = Field(default_factory=dict)


@app.put("/cache/{key:path}", status_code=204)
async def put_cache(key: str, entry: CacheEntry, kv: KV, request: Request) -> Response:
    """Store a value, with an optional TTL; 412 when If-Match or If-None-Match fails."""
    cache = kv.namespace("cache")
    conditional, version = await preconditions(cache, key, request.headers)
    if_absent = conditional and version is None
    if not await cache.set(
        key, entry.value, ttl=entry.ttl, if_absent=if_absent, if_version=version
    ):
        raise ConditionFailedError("the key was created meanwhile")
    # A write that matched version v leaves v + 1 (README, "Conditional writes and versions").
    # Otherwise the new version is not known here (a new item's is random; so is the
    # next one of version 0, an item written without aiodynkv): GET it for the ETag.
    return Response(status_code=204, headers={"ETag": f'"{version + 1}"'} if version else {})


@app.get("/cache/{key:path}")
async def get_cache(key: str, kv: KV, response: Response) -> dict[str, Any]:
    """The value and its remaining TTL, its version as the ETag; 404 when missing or expired."""
    cache = kv.namespace("cache")
    value, version = await cache.get_with_version(key)
    ttl = await cache.ttl(key)
    response.headers["ETag"] = f'"{version}"'
    return {"key": key, "value": value, "ttl": ttl}


@app.delete("/cache/{key:path}", status_code=204)
async def delete_cache(key: str, kv: KV, request: Request) -> Response:
    """Forget a value; 404 when there was none, 412 when If-Match or If-None-Match fails."""
    cache = kv.namespace("cache")
    conditional, version = await preconditions(cache, key, request.headers)
    # No item when the conditions were checked: nothing to delete (not even a new one).
    if (conditional and version is None) or not await cache.delete(key, if_version=version):
        raise HTTPException(404, "no such key (or it expired)")
    return Response(status_code=204)


@app.post("/sessions", status_code=201)
async def create_session(body: NewSession, kv: KV) -> dict[str, Any]:
    """Start a session; it expires after SESSION_TTL seconds without a read."""
    session_id = secrets.token_urlsafe(24)
    await kv.namespace("sessions").set_json(
        session_id, {"user": body.user, "data": body.data}, ttl=SESSION_TTL, if_absent=True
    )
    return {"session_id": session_id, "expires_in": SESSION_TTL}


@app.get("/sessions/{session_id}")
async def read_session(session_id: str, kv: KV) -> dict[str, Any]:
    """The session's contents; reading it extends it by SESSION_TTL (sliding expiry)."""
    sessions = kv.namespace("sessions")
    session = await sessions.get_json(session_id, None)
    if session is None or not await sessions.expire(session_id, SESSION_TTL):
        raise HTTPException(404, "no such session (or it expired)")
    result: dict[str, Any] = session
    return result


@app.delete("/sessions/{session_id}", status_code=204)
async def end_session(session_id: str, kv: KV) -> Response:
    """Log out."""
    await kv.namespace("sessions").delete(session_id)
    return Response(status_code=204)


@app.get("/healthz")
async def healthz(kv: KV) -> JSONResponse:
    """200 when the table is UP, 503 when it is DOWN; only the status and the latency."""
    health = await kv.health()
    body: dict[str, Any] = {"status": health.status}
    if "latency_ms" in health.details:
        body["latency_ms"] = health.details["latency_ms"]
    return JSONResponse(body, status_code=200 if health.is_up else 503)


def main() -> None:
    """Serve the app, on the embedded emulator unless AIODYNKV_ENDPOINT is set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    setup_tracing()
    if os.environ.get("AIODYNKV_ENDPOINT"):
        uvicorn.run(app, host=args.host, port=args.port)
        return
    from aiodynkv.testing import LocalDynamoDB

    with LocalDynamoDB("moto") as server:
        os.environ["AIODYNKV_ENDPOINT"] = server.endpoint
        os.environ.setdefault("AIODYNKV_CREATE_TABLE", "true")
        print(f"embedded emulator on {server.endpoint}")
        uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
