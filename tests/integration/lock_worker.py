"""A worker process for the lease tests (run as ``python -m tests.integration.lock_worker``).

``count ENDPOINT TABLE N``: N times, take the lease ``"counter"`` and, inside it, read the
plain key ``"count"``, sleep, write it back plus one (no atomicity of its own); print one
JSON line per acquisition: the fencing token and the value read.

``hold ENDPOINT TABLE LEASE``: take the lease ``"job"``, print its token, then sleep
(renewing) until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiodynkv import AsyncDynamoKV


async def count(endpoint: str, table: str, times: int) -> None:
    async with AsyncDynamoKV(table=table, endpoint=endpoint, coalesce_reads=False) as kv:
        for _ in range(times):
            async with kv.lock("counter", lease=5.0, wait=60.0, poll=0.05) as held:
                value = int(await kv.get("count", "0"))
                await asyncio.sleep(0.002)
                await kv.set("count", str(value + 1))
                token = held.token
            sys.stdout.write(json.dumps({"token": token, "read": value}) + "\n")
            sys.stdout.flush()


async def hold(endpoint: str, table: str, lease: float) -> None:
    async with AsyncDynamoKV(table=table, endpoint=endpoint) as kv:
        lock = kv.lock("job", lease=lease, wait=0)
        token = await lock.acquire()
        sys.stdout.write(json.dumps({"token": token}) + "\n")
        sys.stdout.flush()
        await asyncio.sleep(3600)


def main() -> None:
    mode, endpoint, table, arg = sys.argv[1:5]
    if mode == "count":
        asyncio.run(count(endpoint, table, int(arg)))
    else:
        asyncio.run(hold(endpoint, table, float(arg)))


if __name__ == "__main__":
    main()
