"""Where a traced and an untraced `get`/`set` spend their client CPU, by component.

    python benchmarks/profile_tracing.py [--quick] [--ops 3000] [--top 15] [--botocore]

Starts the stub, opens two aiodynkv stores in this process (no SDK, and an SDK set up as
`tracing.py` sets it up), runs ``--ops`` sequential calls of each under cProfile (CPU
clock) and prints the self time per call grouped by component: request build and
validation (the store, codec, keys, requests modules), the lean transport, signing, JSON,
aiohttp and the socket, asyncio, OpenTelemetry (trace SDK, metrics SDK, API/context),
structlog/logging and aiodynkv's own telemetry module. cProfile inflates cheap, frequent
calls: each side's groups are scaled to add up to its CPU per call measured first without
the profiler (the shares are cProfile's, the total is real). With ``--botocore`` it profiles
``transport="botocore"`` `get` and the raw aioboto3 contender's ``get_item`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tracing import KEYS, TABLE, sdk_providers  # noqa: E402

GROUPS = [
    ("aiodynkv telemetry", "/aiodynkv/_telemetry.py"),
    ("aiodynkv coalescer", "/aiodynkv/_coalesce.py"),
    ("aiodynkv JSON codec (wire)", "/aiodynkv/_transport/_wire.py"),
    ("aiodynkv lean transport", "/aiodynkv/_transport/lean.py"),
    ("aiodynkv botocore transport", "/aiodynkv/_transport/botocore.py"),
    ("aiodynkv core (admit, send, deadline)", "/aiodynkv/_core.py"),
    ("aiodynkv request build, validation, decode", "/aiodynkv/"),
    ("OpenTelemetry trace SDK", "/opentelemetry/sdk/trace/"),
    ("OpenTelemetry metrics SDK", "/opentelemetry/sdk/metrics/"),
    ("OpenTelemetry SDK other", "/opentelemetry/sdk/"),
    ("OpenTelemetry API, context", "/opentelemetry/"),
    ("structlog", "/structlog/"),
    ("logging", "/logging/"),
    ("aiobotocore", "/aiobotocore/"),
    ("botocore", "/botocore/"),
    ("aiohttp/yarl/multidict", "/aiohttp/"),
    ("aiohttp/yarl/multidict", "/yarl/"),
    ("aiohttp/yarl/multidict", "/multidict/"),
    ("asyncio", "/asyncio/"),
    ("json", "/json/"),
    ("threading (SDK locks)", "/threading.py"),
]


#: Groups of C functions (cProfile's "~" file), by a word of their name.
C_GROUPS = [
    (("json", "encode", "decode"), "json"),
    (("hmac", "sha256", "openssl"), "HMAC/SHA-256 (C)"),
    (("socket", "send", "recv", "poll"), "socket and selector (C)"),
]


#: The SigV4 signer's functions, in the lean transport's module.
SIGNING = frozenset(
    {"canonical_host", "canonical_path", "_trim", "_signing_key", "_target_line", "timestamp",
     "headers"}
)  # fmt: skip


def group_of(filename: str, function: str) -> str:
    if filename.endswith("/aiodynkv/_transport/lean.py") and function in SIGNING:
        return "aiodynkv signing"
    found = next((name for name, marker in GROUPS if marker in filename), None)
    if found is None and filename == "~":
        words = (name for words, name in C_GROUPS if any(w in function for w in words))
        found = next(words, "builtins (C)")
    if found is None:
        found = "benchmark loop" if "/benchmarks/" in filename else f"other ({Path(filename).name})"
    return found


#: Seconds spent in the garbage collector (cProfile cannot see it), and when it started.
_GC = [0.0, 0.0]


def _gc_timer(phase: str, _info: dict[str, Any]) -> None:
    if phase == "start":
        _GC[1] = time.thread_time()
    else:
        _GC[0] += time.thread_time() - _GC[1]


async def cpu_per_call(call: Callable[[int], Awaitable[Any]], ops: int) -> tuple[float, float]:
    """CPU µs per call, and the garbage collector's µs per call within it."""
    _GC[0] = 0.0
    gc.callbacks.append(_gc_timer)
    began = time.process_time()
    try:
        for i in range(ops):
            await call(i % KEYS)
    finally:
        gc.callbacks.remove(_gc_timer)
    return (time.process_time() - began) / ops * 1e6, _GC[0] / ops * 1e6


async def profiled(call: Callable[[int], Awaitable[Any]], ops: int) -> pstats.Stats:
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for i in range(ops):
        await call(i % KEYS)
    profiler.disable()
    return pstats.Stats(profiler)


def grouped(stats: pstats.Stats, ops: int) -> dict[str, float]:
    groups: dict[str, float] = defaultdict(float)
    for (filename, _, function), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        groups[group_of(filename, function)] += tottime / ops * 1e6
    return groups


def top(stats: pstats.Stats, ops: int, n: int) -> list[str]:
    rows = []
    for (filename, line, function), (_, ncalls, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(filename).name}:{line}({function})"
        rows.append((tottime / ops * 1e6, ncalls / ops, where))
    return [f"    {t:7.1f}  {c:5.1f}  {w}" for t, c, w in sorted(rows, reverse=True)[:n]]


async def main_async(url: str, ops: int, n: int, botocore: bool) -> None:
    from aiodynkv import AsyncDynamoKV

    tracer_provider, meter_provider = sdk_providers()
    if botocore:
        stores = {
            "botocore": AsyncDynamoKV(
                table=TABLE, endpoint=url, transport="botocore", create_table=True
            )
        }
    else:
        stores = {
            "untraced": AsyncDynamoKV(table=TABLE, endpoint=url, create_table=True),
            "traced": AsyncDynamoKV(
                table=TABLE,
                endpoint=url,
                create_table=True,
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
            ),
        }
    for kv in stores.values():
        await kv.open()
    first = next(iter(stores.values()))
    for i in range(KEYS):
        await first.set(f"key:{i:06d}", f"{i:06d}".ljust(100, "x"))
    sides: dict[str, Callable[[int], Awaitable[Any]]] = {}
    for name, store in stores.items():

        async def get(i: int, store: AsyncDynamoKV = store) -> Any:
            return await store.get(f"key:{i:06d}", None)

        async def set_(i: int, store: AsyncDynamoKV = store) -> Any:
            return await store.set(f"key:{i:06d}", f"{i:06d}".ljust(100, "y"))

        sides[f"{name} get"] = get
        if not botocore:
            sides[f"{name} set"] = set_
    raw = None
    if botocore:
        from contenders import RawAioboto3

        raw = RawAioboto3(url)
        raw.load()
        await raw.open()

        async def raw_get(i: int) -> Any:
            return await raw.get(f"key:{i:06d}")

        sides["raw aioboto3 get_item (its own client)"] = raw_get
    try:
        for call in sides.values():
            await cpu_per_call(call, 300)
        measured = {name: await cpu_per_call(call, ops) for name, call in sides.items()}
        results = {name: await profiled(call, ops) for name, call in sides.items()}
    finally:
        for kv in stores.values():
            await kv.aclose()
        if raw is not None:
            await raw.close()
        tracer_provider.shutdown()
        meter_provider.shutdown()
    print_table(sides, measured, results, ops, n)


def print_table(
    sides: dict[str, Any],
    measured: dict[str, tuple[float, float]],
    results: dict[str, pstats.Stats],
    ops: int,
    n: int,
) -> None:
    groups = {name: grouped(stats, ops) for name, stats in results.items()}
    plain = {name: cpu for name, (cpu, _) in measured.items()}

    def biggest(group: str) -> float:
        return max(x.get(group, 0.0) for x in groups.values())

    names = sorted({g for gs in groups.values() for g in gs}, key=lambda g: -biggest(g))
    # cProfile inflates every call; each side's groups are scaled so that they add up
    # to its CPU per call measured without the profiler (shares kept, µs made real).
    scale = {s: plain[s] / (sum(groups[s].values()) or 1.0) for s in sides}
    print("| component: self time, µs per call (scaled to the unprofiled CPU) | ", end="")
    print(" | ".join(sides) + " |")
    print("|---|" + "--:|" * len(sides))
    for g in names:
        if biggest(g) >= 0.5:
            cells = " | ".join(f"{groups[s].get(g, 0) * scale[s]:.1f}" for s in sides)
            print(f"| {g} | {cells} |")
    total = " | ".join(f"**{plain[s]:.0f}**" for s in sides)
    print(f"| **CPU per call without the profiler** | {total} |")
    profiled = " | ".join(f"{sum(groups[s].values()):.0f}" for s in sides)
    print(f"| (under cProfile) | {profiled} |")
    collected = " | ".join(f"{measured[s][1]:.1f}" for s in sides)
    print(f"| garbage collection, measured (cProfile charges it to the rows above) | {collected} |")
    for name, stats in results.items() if n else ():
        print(f"\n== {name}: top {n} functions (self µs per call, calls per call)")
        print("\n".join(top(stats, ops, n)))


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, help="calls per side (default 3000, quick 1000)")
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--botocore", action="store_true")
    options = parser.parse_args()
    from run import start_stub

    stub = start_stub(600)
    try:
        print(f"load average {os.getloadavg()[0]:.2f} at the start")
        ops = options.ops or (1000 if options.quick else 3000)
        asyncio.run(main_async(stub.url, ops, options.top, options.botocore))
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
    finally:
        stub.stop()


if __name__ == "__main__":
    main()
