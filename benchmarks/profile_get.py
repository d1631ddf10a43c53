"""Where a `get` spends its client CPU: aiodynkv vs the raw aioboto3 `get_item`.

    python benchmarks/profile_get.py [--ops 2000] [--concurrency 1] [--top 25]

Starts the stub, seeds a few keys, then profiles each contender in this process with
cProfile and prints the self time grouped by package (aiodynkv, opentelemetry, botocore,
aiohttp, asyncio...) in µs per call, plus the heaviest functions. cProfile inflates
cheap, frequent calls; read the groups as proportions, not as exact costs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contenders import CONTENDERS, Contender
from run import Server, run_worker, start_stub

GROUPS = [
    ("aiodynkv", "/aiodynkv/"),
    ("opentelemetry", "/opentelemetry/"),
    ("structlog", "/structlog/"),
    ("aiobotocore", "/aiobotocore/"),
    ("botocore: user agent", "/botocore/useragent.py"),
    ("botocore: signing", "/botocore/auth.py"),
    ("botocore: endpoints/rules", "/botocore/endpoint_provider.py"),
    ("botocore: other", "/botocore/"),
    ("aiohttp/yarl/multidict", "/aiohttp/"),
    ("aiohttp/yarl/multidict", "/yarl/"),
    ("aiohttp/yarl/multidict", "/multidict/"),
    ("asyncio", "/asyncio/"),
    ("json", "/json/"),
]


def group_of(filename: str) -> str:
    for name, marker in GROUPS:
        if marker in filename:
            return name
    if filename.startswith("~") or filename == "":
        return "builtins (C)"
    if "/benchmarks/" in filename:
        return "benchmark loop"
    return "other Python"


async def profile(contender: Contender, ops: int, concurrency: int) -> tuple[pstats.Stats, float]:
    contender.load()
    await contender.open()
    get = contender.get
    if get is None:
        raise SystemExit("no get")
    keys = [f"key:{i % 1000:06d}" for i in range(ops)]
    for key in keys[:200]:  # warm up
        await get(key)
    per_task = ops // concurrency

    async def task(offset: int) -> None:
        for key in keys[offset : offset + per_task]:
            await get(key)

    profiler = cProfile.Profile(time.process_time)  # CPU, not wall: waiting is not cost
    cpu0 = time.process_time()
    profiler.enable()
    await asyncio.gather(*(task(t * per_task) for t in range(concurrency)))
    profiler.disable()
    cpu = (time.process_time() - cpu0) / (per_task * concurrency) * 1e6
    await contender.close()
    return pstats.Stats(profiler), cpu


def report(name: str, stats: pstats.Stats, cpu_us: float, ops: int, top: int) -> None:
    groups: dict[str, float] = defaultdict(float)
    rows = []
    for (filename, line, function), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        groups[group_of(filename)] += tottime
        rows.append((tottime, ncalls, cumtime, f"{Path(filename).name}:{line}({function})"))
    total = sum(groups.values())
    print(f"\n== {name}: {cpu_us:.0f} µs CPU per get under the profiler ({ops} gets)")
    for group, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {group:28} {seconds / ops * 1e6:8.1f} µs/get  {seconds / total * 100:5.1f} %")
    print(f"  top {top} functions by self time (µs per get, calls per get):")
    for tottime, ncalls, _, where in sorted(rows, reverse=True)[:top]:
        print(f"    {tottime / ops * 1e6:7.1f}  {ncalls / ops:5.1f}  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--contenders", default="aiodynkv,aioboto3")
    args = parser.parse_args()
    stub: Server = start_stub(600)
    try:
        seeded = run_worker(stub, "seed", "aiodynkv", {"keys": 1000})
        if "error" in seeded:
            raise SystemExit(f"seeding failed: {seeded['error']}")
        for name in args.contenders.split(","):
            contender = CONTENDERS[name](stub.url)
            stats, cpu = asyncio.run(profile(contender, args.ops, args.concurrency))
            report(contender.name, stats, cpu, args.ops, args.top)
    finally:
        stub.stop()


if __name__ == "__main__":
    main()
