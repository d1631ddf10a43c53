r"""The session and cache service of fastapi_app.py, on aiohttp.

Run it (after ``pip install -e '.[examples]'`` in a clone of the repository)::

    python examples/aiohttp_app.py

It serves http://127.0.0.1:8081 (``--host``, ``--port``). Without ``AIODYNKV_ENDPOINT``
it first starts the embedded emulator; otherwise the store comes from the ``AIODYNKV_*``
variables (table ``aiodynkv`` by default).

The store lives in a ``cleanup_ctx`` generator: opened before the app serves its
first request, closed after the last. Handlers find it at ``request.app[KV]``.
The routes are those of fastapi_app.py: ``/cache/{key}``, ``/sessions``,
``/sessions/{id}`` and ``/healthz`` (only ``{"status": "UP"}`` or ``"DOWN"`` with 503,
and the latency). The cache takes HTTP conditional requests (RFC 9110): GET answers an
``ETag``, the item's version (``"12345"``). PUT or DELETE with ``If-Match: "12345"`` (or
a list of tags, or ``*``: the item exists) applies only if the version is still one of
those; ``If-None-Match: *`` only if there is no item (with tags: if none of them is the
version). `_preconditions` reads the version, then writes with ``if_version=`` it (or
``if_absent=True``), so a write in between fails too. A condition not met is 412
Precondition Failed; tags are compared as text, so ``"0012"`` or ``W/"12"`` never
match 12, and a well-formed tag that is no version is simply 412. A header that is
neither ``*`` nor a list of entity-tags is 400. The middleware `kv_errors` turns
aiodynkv's errors into the status a client expects: invalid key 400, other invalid
input 422, too large 413, not found 404, condition failed 412, write in doubt 504, throttled or
unavailable 503 with ``Retry-After``; a body that is not JSON is 400, JSON of the wrong
shape 422. Every error answer is ``{"error": name, "detail": text}``, as in
fastapi_app.py, and names no table, operation or value. Keys may hold ``/`` (sent as
``/`` or ``%2F``: the same key).

Try it::

    curl -X PUT localhost:8081/cache/greeting -d '{"value": "hello", "ttl": 60}'
    curl -i localhost:8081/cache/greeting   # ETag: "<version>"
    curl -X PUT localhost:8081/cache/greeting -H 'If-Match: "<version>"' -d '{"value": "hi"}'
"""

from __future__ import annotations

import argparse
import math
import os
import re
import secrets
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

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
KV = web.AppKey("kv", KVStore)


def kv_config() -> KVConfig:
    """The store's settings: ``AIODYNKV_*`` variables, table ``aiodynkv`` by default."""
    if os.environ.get("AIODYNKV_TABLE"):
        return KVConfig.from_env()
    return KVConfig.from_env(table=DEFAULT_TABLE)


async def kv_context(app: web.Application) -> AsyncIterator[None]:
    """Open the store for the life of the app (aiohttp's cleanup_ctx)."""
    async with AsyncDynamoKV(kv_config()) as kv:
        app[KV] = kv
        yield


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


@web.middleware
async def kv_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every KVError a handler lets through, and the app's own 4xx, as one JSON shape."""
    try:
        return await handler(request)
    except KVError as exc:
        status, detail, headers = http_status(exc)
        return web.json_response(
            error_body(type(exc).__name__, detail), status=status, headers=headers
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        name = HTTPStatus(exc.status).phrase.replace(" ", "")
        detail = exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}" else ""
        return web.json_response(error_body(name, detail or exc.reason), status=exc.status)


routes = web.RouteTableDef()
SHAPES = {
    "cache": '{"value": str, "ttl": seconds > 0}',
    "sessions": '{"user": str, "data": object}',
}


async def _json_object(request: web.Request, shape: str) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPUnprocessableEntity(text=f"expected {shape}")
    return body


# RFC 9110 §8.8.3: an entity-tag is "opaque" or W/"weak", any octet but controls,
# space and '"' inside the quotes (a comma too). A list may have empty elements.
ELEMENT = r'[ \t]*(?:(?:W/)?"[^\x00-\x20"\x7f]*"[ \t]*)?'
ETAG_LIST = re.compile(rf"\*|{ELEMENT}(?:,{ELEMENT})*")


def _entity_tags(lines: list[str], *, weak: bool) -> list[str] | None:
    """An If-Match or If-None-Match header, one line or several; 400 if malformed.

    None when absent, ``["*"]`` for ``*``, else its entity-tags as sent (``'"12"'``). A
    weak one counts only if `weak` (If-None-Match compares weakly, If-Match strongly),
    without its ``W/``. Tags are compared as text, never as numbers: ``"012"`` is not 12.
    """
    if not lines:
        return None
    header = ", ".join(lines)  # several lines are one list
    if ETAG_LIST.fullmatch(header) is None:
        raise web.HTTPBadRequest(text="If-Match and If-None-Match take * or entity-tags")
    if header == "*":
        return ["*"]
    return [tag for w, tag in re.findall(r'(W/)?("[^"]*")', header) if weak or not w]


async def _preconditions(request: web.Request, cache: KVStore) -> tuple[bool, int | None]:
    """Evaluate If-Match, then If-None-Match (RFC 9110 §13.2.2); 412 when one fails.

    Returns whether there was a condition, and then the item's version (None: no item).
    Write with ``if_version=`` that version (``if_absent=True`` if None): a change since
    this read fails the write too, with 412.
    """
    if_match = _entity_tags(request.headers.getall("If-Match", []), weak=False)
    if_none_match = _entity_tags(request.headers.getall("If-None-Match", []), weak=True)
    if if_match is None and if_none_match is None:
        return False, None
    try:
        version: int | None = (await cache.get_with_version(request.match_info["key"]))[1]
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


@routes.put("/cache/{key:.+}")
async def put_cache(request: web.Request) -> web.Response:
    """Store ``{"value": str, "ttl": seconds or null}``; 412 when a precondition fails."""
    body = await _json_object(request, SHAPES["cache"])
    value, ttl = body.get("value"), body.get("ttl")
    ttl_ok = ttl is None or (
        isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and math.isfinite(ttl)
    )
    if not isinstance(value, str) or not ttl_ok or (ttl is not None and ttl <= 0):
        raise web.HTTPUnprocessableEntity(text=f"expected {SHAPES['cache']}")
    cache = request.app[KV].namespace("cache")
    conditional, version = await _preconditions(request, cache)
    if_absent = conditional and version is None
    key = request.match_info["key"]
    if not await cache.set(key, value, ttl=ttl, if_absent=if_absent, if_version=version):
        raise ConditionFailedError("the key was created meanwhile")
    # A write that matched version v leaves v + 1 (README, "Conditional writes and versions").
    # Otherwise the new version is not known here (a new item's is random; so is the
    # next one of version 0, an item written without aiodynkv): GET it for the ETag.
    return web.Response(status=204, headers={"ETag": f'"{version + 1}"'} if version else {})


@routes.get("/cache/{key:.+}")
async def get_cache(request: web.Request) -> web.Response:
    """The value and its remaining TTL, its version as the ETag; 404 when missing or expired."""
    key = request.match_info["key"]
    cache = request.app[KV].namespace("cache")
    value, version = await cache.get_with_version(key)
    ttl = await cache.ttl(key)
    body = {"key": key, "value": value, "ttl": ttl}
    return web.json_response(body, headers={"ETag": f'"{version}"'})


@routes.delete("/cache/{key:.+}")
async def delete_cache(request: web.Request) -> web.Response:
    """Forget a value; 404 when there was none, 412 when If-Match or If-None-Match fails."""
    key = request.match_info["key"]
    cache = request.app[KV].namespace("cache")
    conditional, version = await _preconditions(request, cache)
    # No item when the conditions were checked: nothing to delete (not even a new one).
    if (conditional and version is None) or not await cache.delete(key, if_version=version):
        raise web.HTTPNotFound(text="no such key (or it expired)")
    return web.Response(status=204)


@routes.post("/sessions")
async def create_session(request: web.Request) -> web.Response:
    """Start a session for ``{"user": str, "data": {...}}``."""
    body = await _json_object(request, SHAPES["sessions"])
    if not isinstance(body.get("user"), str) or not isinstance(body.get("data", {}), dict):
        raise web.HTTPUnprocessableEntity(text=f"expected {SHAPES['sessions']}")
    session_id = secrets.token_urlsafe(24)
    await (
        request.app[KV]
        .namespace("sessions")
        .set_json(
            session_id,
            {"user": body["user"], "data": body.get("data", {})},
            ttl=SESSION_TTL,
            if_absent=True,
        )
    )
    return web.json_response({"session_id": session_id, "expires_in": SESSION_TTL}, status=201)


@routes.get("/sessions/{session_id}")
async def read_session(request: web.Request) -> web.Response:
    """The session's contents; reading it extends it by SESSION_TTL."""
    session_id = request.match_info["session_id"]
    sessions = request.app[KV].namespace("sessions")
    session = await sessions.get_json(session_id, None)
    if session is None or not await sessions.expire(session_id, SESSION_TTL):
        raise web.HTTPNotFound(text="no such session (or it expired)")
    return web.json_response(session)


@routes.delete("/sessions/{session_id}")
async def end_session(request: web.Request) -> web.Response:
    """Log out."""
    await request.app[KV].namespace("sessions").delete(request.match_info["session_id"])
    return web.Response(status=204)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 when the table is UP, 503 when it is DOWN; only the status and the latency."""
    health = await request.app[KV].health()
    body: dict[str, Any] = {"status": health.status}
    if "latency_ms" in health.details:
        body["latency_ms"] = health.details["latency_ms"]
    return web.json_response(body, status=200 if health.is_up else 503)


def make_app() -> web.Application:
    """The application, its routes and its store's lifetime."""
    app = web.Application(middlewares=[kv_errors])
    app.cleanup_ctx.append(kv_context)
    app.add_routes(routes)
    return app


def main() -> None:
    """Serve the app, on the embedded emulator unless AIODYNKV_ENDPOINT is set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    if os.environ.get("AIODYNKV_ENDPOINT"):
        web.run_app(make_app(), host=args.host, port=args.port)
        return
    from aiodynkv.testing import LocalDynamoDB

    with LocalDynamoDB("moto") as server:
        os.environ["AIODYNKV_ENDPOINT"] = server.endpoint
        os.environ.setdefault("AIODYNKV_CREATE_TABLE", "true")
        print(f"embedded emulator on {server.endpoint}")
        web.run_app(make_app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
