"""A fixed-window rate limiter on ``incr`` with a TTL, guarding an aiohttp app.

Run it (after ``pip install -e '.[examples]'`` in a clone of the repository)::

    python examples/rate_limiter.py

It serves http://127.0.0.1:8082 (``--host``, ``--port``), allowing each client
``--limit`` requests (5) per ``--window`` seconds (10); past that it answers 429
with ``Retry-After``. Without ``AIODYNKV_ENDPOINT`` it first starts the embedded
emulator. Try ``for i in $(seq 7); do curl -si localhost:8082/ | head -1; done``.

How it works: the counter of a window is the key ``rl:<client>:<window number>``.
One ``incr`` per request counts it atomically, however many app instances share
the table, and gives the key a TTL that ends with the window, so old windows
delete themselves (reads treat them as gone at once; DynamoDB removes them later).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from aiodynkv import AsyncDynamoKV, KVConfig, KVStore, ThrottledError, TransientError

DEFAULT_TABLE = "aiodynkv"


@dataclass(frozen=True, slots=True)
class Decision:
    """The limiter's answer for one request.

    Attributes:
        allowed: Whether the request may go ahead.
        count: Requests counted in the current window, this one included.
        remaining: Requests still allowed in the window.
        reset_after: Seconds until the window ends.
    """

    allowed: bool
    count: int
    remaining: int
    reset_after: float


class FixedWindowLimiter:
    """At most `limit` hits per `window` seconds per client, counted in a `KVStore`.

    Args:
        kv: The store (its namespace ``ratelimit`` is used).
        limit: Hits allowed per window.
        window: Window length in seconds.
    """

    def __init__(self, kv: KVStore, *, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.kv = kv.namespace("ratelimit")
        self.limit = limit
        self.window = window

    async def hit(self, client: str) -> Decision:
        """Count one request of `client` and decide."""
        now = time.time()
        number = math.floor(now / self.window)
        reset_after = (number + 1) * self.window - now
        # The TTL ends the key with its window; a whole window more of slack keeps a
        # late request of this window from recreating a fresh counter.
        count = await self.kv.incr(f"rl:{client}:{number}", ttl=reset_after + self.window)
        return Decision(count <= self.limit, count, max(0, self.limit - count), reset_after)


LIMITER = web.AppKey("limiter", FixedWindowLimiter)


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 429 to a client over its limit; add X-RateLimit-* headers otherwise."""
    client = request.headers.get("X-Client-Id") or request.remote or "unknown"
    try:
        decision = await request.app[LIMITER].hit(client)
    except TransientError as exc:  # the store is throttled or unreachable: fail closed
        retry_after = "2" if isinstance(exc, ThrottledError) else "1"
        raise web.HTTPServiceUnavailable(
            text="try again later\n", headers={"Retry-After": retry_after}
        ) from None
    headers = {
        "X-RateLimit-Limit": str(request.app[LIMITER].limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(math.ceil(decision.reset_after)),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(math.ceil(decision.reset_after))
        raise web.HTTPTooManyRequests(text="rate limit exceeded\n", headers=headers)
    response = await handler(request)
    response.headers.update(headers)
    return response


async def hello(_request: web.Request) -> web.Response:
    """The guarded resource."""
    return web.Response(text="hello\n")


def make_app(*, limit: int = 5, window: float = 10.0) -> web.Application:
    """The app, with the store opened in a cleanup_ctx and the limiter around every route."""
    app = web.Application(middlewares=[rate_limit])

    async def store(app: web.Application) -> AsyncIterator[None]:
        config = (
            KVConfig.from_env()
            if os.environ.get("AIODYNKV_TABLE")
            else KVConfig.from_env(table=DEFAULT_TABLE)
        )
        async with AsyncDynamoKV(config) as kv:
            app[LIMITER] = FixedWindowLimiter(kv, limit=limit, window=window)
            yield

    app.cleanup_ctx.append(store)
    app.router.add_get("/", hello)
    return app


def main() -> None:
    """Serve the app, on the embedded emulator unless AIODYNKV_ENDPOINT is set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    app = make_app(limit=args.limit, window=args.window)
    if os.environ.get("AIODYNKV_ENDPOINT"):
        web.run_app(app, host=args.host, port=args.port)
        return
    from aiodynkv.testing import LocalDynamoDB

    with LocalDynamoDB("moto") as server:
        os.environ["AIODYNKV_ENDPOINT"] = server.endpoint
        os.environ.setdefault("AIODYNKV_CREATE_TABLE", "true")
        print(f"embedded emulator on {server.endpoint}")
        web.run_app(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
