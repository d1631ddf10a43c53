"""``python -m aiodynkv`` and the ``aiodynkv`` console script.

Without the ``cli`` extra (typer and rich) only ``demo`` runs, so the README's quick
start needs the ``local`` extra alone; ``--help`` then says what to install (exit 0),
any other command too (exit 2). The demo (`run_demo`) tours the API against the
embedded emulator (moto) on a free loopback port.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence

_CLI_PACKAGES = frozenset({"typer", "rich", "click"})
# aiodynkv is not on PyPI yet: the extras are installed from a clone of the repository.
INSTALL_HINT = "pip install -e '.[cli,local]' (in a clone of the aiodynkv repository)"
DEMO_ONLY_HELP = f"""\
usage: python -m aiodynkv demo

Only the demo is available: the other commands (get, set, keys, export, import,
local, ...) need the cli extra (typer and rich). Install it with:

    {INSTALL_HINT}
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named in `argv` (default: ``sys.argv[1:]``); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        from aiodynkv._cli import main as cli_main
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in _CLI_PACKAGES:
            raise
        return _demo_only(args)
    return cli_main(args)


def _demo_only(args: list[str]) -> int:
    if args == ["demo"]:
        run_demo()
        return 0
    if args in (["--help"], ["-h"]):
        sys.stdout.write(DEMO_ONLY_HELP)
        return 0
    sys.stderr.write(DEMO_ONLY_HELP)
    return 2


async def _tour(endpoint: str, say: Callable[[str], None]) -> None:
    from aiodynkv._store import AsyncDynamoKV

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
    from aiodynkv.testing._local import LocalDynamoDB

    with LocalDynamoDB("moto") as server:
        say(f"embedded emulator (moto) on {server.endpoint}")
        asyncio.run(_tour(server.endpoint, say))
    say("done: the emulator is stopped")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
