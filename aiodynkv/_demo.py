"""The demo behind ``python -m aiodynkv demo``: real requests to the embedded emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiodynkv._store import AsyncDynamoKV
from aiodynkv.testing._local import LocalDynamoDB

__all__ = ["run_demo"]


async def _tour(endpoint: str, say: Callable[[str], None]) -> None:
    async with AsyncDynamoKV(table="aiodynkv-demo", endpoint=endpoint, create_table=True) as kv:
        say(f"opened {kv!r}")
        await kv.set("user:1", "alice")
        say(f"set  user:1 = 'alice'            -> get: {await kv.get('user:1')!r}")
        await kv.set("blob", b"\x00\x01")
        say(f"set  blob   = b'\\x00\\x01'        -> get: {await kv.get('blob')!r}")
        await kv.set_json("profile:1", {"name": "alice", "langs": ["py", "go"]})
        say(f"set_json profile:1               -> get_json: {await kv.get_json('profile:1')!r}")
        await kv.set("session", "token", ttl=1)
        say(f"set  session (ttl=1 s)           -> ttl: {await kv.ttl('session'):.2f} s")
        hits = [await kv.incr("hits") for _ in range(3)]
        say(f"incr hits x3                     -> {hits}")
        say(
            f"set  lock if_absent (twice)      -> {await kv.set('lock', 'a', if_absent=True)}, "
            f"{await kv.set('lock', 'b', if_absent=True)}"
        )
        await kv.set_many({f"item:{i}": str(i) for i in range(250)})
        many = await kv.get_many(f"item:{i}" for i in range(250))
        say(f"set_many 250 items               -> get_many returned {len(many)}")
        say(f"get  missing (default None)      -> {await kv.get('missing', None)!r}")
        say(
            f"delete user:1                    -> {await kv.delete('user:1')} (again: "
            f"{await kv.delete('user:1')})"
        )
        await asyncio.sleep(1.5)
        say(f"after 1.5 s, session exists?     -> {await kv.exists('session')}")
        health = await kv.health()
        say(f"health                           -> {health.status} {health.details}")


def run_demo(say: Callable[[str], None] = print) -> None:
    """Start moto on a free loopback port, run the tour, stop the server."""
    with LocalDynamoDB("moto") as server:
        say(f"embedded emulator (moto) on {server.endpoint}")
        asyncio.run(_tour(server.endpoint, say))
    say("done: the emulator is stopped")
