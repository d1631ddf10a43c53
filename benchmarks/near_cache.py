"""Near cache on a Zipf read workload: requests sent and capacity consumed, with and without.

    python benchmarks/near_cache.py                 # 10,000 keys, 60,000 reads, 2 ms latency
    python benchmarks/near_cache.py --quick         # a smaller run (CI, a smoke test)

Runs against benchmarks/stub.py (started here, on 127.0.0.1), which counts the
requests it served and the read units it charged (one per item read). The workload:
`--concurrency` tasks each issuing `get` calls for keys drawn from a Zipf
distribution (exponent `--zipf`, rank 1 the hottest), for `--reads` reads in total,
through one store; the stub adds `--latency-ms` per request, so the run lasts long
enough for `local_cache_ttl` to matter. Printed: one Markdown row per setting.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import random
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from aiodynkv import AsyncDynamoKV

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import start_stub

STUB = Path(__file__).with_name("stub.py")


def stub_call(endpoint: str, target: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 (a loopback URL we built)
        endpoint,
        data=json.dumps(body or {}).encode(),
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
        result: dict[str, Any] = json.loads(reply.read())
    return result


def zipf_keys(count: int, exponent: float, reads: int, seed: int) -> list[str]:
    weights = [1.0 / (rank**exponent) for rank in range(1, count + 1)]
    cumulative = list(itertools.accumulate(weights))
    total = cumulative[-1]
    rng = random.Random(seed)
    return [f"key:{bisect.bisect_left(cumulative, rng.random() * total)}" for _ in range(reads)]


async def run(
    endpoint: str, table: str, keys: list[str], concurrency: int, **cache: Any
) -> dict[str, float]:
    before = stub_call(endpoint, "BenchStub.Stats")
    queue = iter(keys)
    async with AsyncDynamoKV(table=table, endpoint=endpoint, **cache) as kv:
        start = time.perf_counter()

        async def worker() -> None:
            for key in queue:
                await kv.get(key, None)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    after = stub_call(endpoint, "BenchStub.Stats")
    return {
        "requests": after["requests"] - before["requests"],
        "read_units": after["read_units"] - before["read_units"],
        "seconds": elapsed,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=60_000)
    parser.add_argument("--zipf", type=float, default=1.1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    if options.quick:
        options.keys, options.reads = 1_000, 6_000
    stub = start_stub(900)
    endpoint = stub.url
    try:
        table = "bench-near-cache"
        async with AsyncDynamoKV(table=table, endpoint=endpoint, create_table=True) as kv:
            for start in range(0, options.keys, 1_000):
                end = min(options.keys, start + 1_000)
                await kv.set_many({f"key:{i}": "v" * 100 for i in range(start, end)})
        stub_call(endpoint, "BenchStub.Configure", {"latency_ms": options.latency_ms})
        keys = zipf_keys(options.keys, options.zipf, options.reads, seed=15)
        settings = [
            ("no cache, no coalescing", {"coalesce_reads": False}),
            ("no cache (coalescing on)", {}),
            ("cache 0.25 s", {"local_cache_items": 10_000, "local_cache_ttl": 0.25}),
            ("cache 1 s (default TTL)", {"local_cache_items": 10_000}),
            ("cache 1 s, 1,000 items", {"local_cache_items": 1_000}),
        ]
        print(
            f"Zipf s={options.zipf}, {options.keys:,} keys, {options.reads:,} gets, "
            f"{options.concurrency} tasks, stub latency {options.latency_ms} ms\n"
        )
        print("| setting | requests | read units | % of reads sent | seconds |")
        print("|---|---:|---:|---:|---:|")
        for name, cache in settings:
            result = await run(endpoint, table, keys, options.concurrency, **cache)
            share = 100.0 * result["read_units"] / options.reads
            print(
                f"| {name} | {result['requests']:,.0f} | {result['read_units']:,.0f} "
                f"| {share:.1f} % | {result['seconds']:.2f} |"
            )
    finally:
        stub.stop()


if __name__ == "__main__":
    asyncio.run(main())
