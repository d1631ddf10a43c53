"""A runnable tour of the basic calls: ``python examples/quickstart.py``.

Starts the embedded emulator (``pip install -e '.[local]'`` in the clone) unless
``AIODYNKV_ENDPOINT`` points at a server already running.
"""

from __future__ import annotations

import asyncio
import os

from aiodynkv import AsyncDynamoKV, KeyNotFoundError
from aiodynkv.testing import LocalDynamoDB


async def tour(endpoint: str) -> None:
    """Store, read, expire, count and delete a few keys."""
    async with AsyncDynamoKV(
        table="quickstart", region="us-east-1", endpoint=endpoint, create_table=True
    ) as kv:
        await kv.set("user:1", "alice")
        print("user:1 =", await kv.get("user:1"))
        print("missing =", await kv.get("missing", None))
        await kv.set("blob", b"\x00\x01", ttl=60)
        print("blob exists:", await kv.exists("blob"), "ttl:", round(await kv.ttl("blob") or 0))
        print("hits:", await kv.incr("hits"))
        print("deleted user:1:", await kv.delete("user:1"))
        try:
            await kv.get("user:1")
        except KeyNotFoundError as exc:
            print("KeyNotFoundError:", exc)
        print("health:", (await kv.health()).status)


def main() -> None:
    """Run the tour against AIODYNKV_ENDPOINT or a fresh embedded emulator."""
    endpoint = os.environ.get("AIODYNKV_ENDPOINT")
    if endpoint:
        asyncio.run(tour(endpoint))
        return
    with LocalDynamoDB("moto") as server:
        asyncio.run(tour(server.endpoint))


if __name__ == "__main__":
    main()
