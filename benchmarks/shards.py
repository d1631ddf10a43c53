"""One hot counter spread over partition keys by sharding: ``python benchmarks/shards.py``.

DynamoDB serves about 1,000 writes per second per partition key's partition, so a
single hot counter tops out there whatever the client does. ``kv.counter(name,
shards=n)`` spreads increments over n partition keys. For shards = 1, 8 and 32 this
script sends the same number of increments to one counter (64 at a time) and counts,
on the client, the requests each distinct partition key received: the hottest key's
share is what bounds throughput on DynamoDB (about 1,000 writes/s x shards, at best),
and it shrinks as 1/shards. It also times the increments and one ``value()`` read.

Servers: the stub (``benchmarks/stub.py``, in-memory, instant) and dynalite
(``AIODYNKV_DYNALITE`` or ``.nox/_dynalite``). ``--quick`` sends fewer increments.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from aiodynkv import AsyncDynamoKV

ROOT = Path(__file__).resolve().parents[1]
PER_PARTITION = 1000  # DynamoDB's write limit per partition, writes/s


class CountingTransport:
    """Wraps a store's transport and counts requests per partition key written."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.per_key: Counter[str] = Counter()
        self.requests = 0

    async def send(self, action: str, request: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        if action == "UpdateItem":
            self.per_key[request["Key"]["pk"]["S"]] += 1
        response: dict[str, Any] = await self.inner.send(action, request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def measure(endpoint: str, shards: int, increments: int) -> dict[str, Any]:
    table = f"shards-{uuid.uuid4().hex[:8]}"
    async with AsyncDynamoKV(table=table, endpoint=endpoint, create_table=True) as kv:
        core = kv._core
        counting = CountingTransport(core.transport)
        core.transport = counting
        views = kv.counter("page:home", shards=shards)
        gate = asyncio.Semaphore(64)

        async def one() -> None:
            async with gate:
                await views.incr()

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(increments)))
        elapsed = time.perf_counter() - start
        writes = counting.requests
        read_start = time.perf_counter()
        total = await views.value()
        read_ms = (time.perf_counter() - read_start) * 1000.0
        reads = counting.requests - writes
        if total != increments:
            raise SystemExit(f"value() read {total}, expected {increments}")
        hottest = max(counting.per_key.values())
        await kv.client.delete_table(TableName=table)
    return {
        "shards": shards,
        "keys": len(counting.per_key),
        "hottest": hottest,
        "share": hottest / increments,
        "ceiling": int(PER_PARTITION * increments / hottest),
        "rate": increments / elapsed,
        "read_ms": read_ms,
        "reads": reads,
    }


def report(server: str, rows: list[dict[str, Any]], increments: int) -> None:
    print(f"\n{server}: {increments} increments of one counter, 64 in flight")
    print(
        "| shards | distinct partition keys | requests on the hottest key | its share "
        "| DynamoDB ceiling (writes/s) | measured here (incr/s) | value(): requests, ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['shards']} | {r['keys']} | {r['hottest']} | {r['share']:.1%} "
            f"| ~{r['ceiling']:,} | {r['rate']:,.0f} | {r['reads']}, {r['read_ms']:.1f} |"
        )


def start_stub() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "stub.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().split() if proc.stdout is not None else []
    if not line or line[0] != "READY":
        proc.kill()
        raise SystemExit("the stub did not start")
    return proc, f"http://127.0.0.1:{line[1]}"


async def run_all(endpoint: str, increments: int) -> list[dict[str, Any]]:
    return [await measure(endpoint, shards, increments) for shards in (1, 8, 32)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer increments")
    parser.add_argument("--no-dynalite", action="store_true", help="the stub only")
    args = parser.parse_args()
    increments = 480 if args.quick else 1600
    stub, endpoint = start_stub()
    try:
        report("stub", asyncio.run(run_all(endpoint, increments)), increments)
    finally:
        stub.terminate()
        stub.wait(timeout=10)
        if stub.stdout is not None:
            stub.stdout.close()
    if args.no_dynalite:
        return
    from aiodynkv.testing import LocalDynamoDB

    with LocalDynamoDB("dynalite") as server:
        report("dynalite", asyncio.run(run_all(server.endpoint, increments)), increments)


if __name__ == "__main__":
    main()
