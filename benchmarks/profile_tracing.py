"""Where a traced and an untraced `get`/`set` spend their client CPU, by component.

    python benchmarks/profile_tracing.py [--quick] [--ops 3000] [--top 15] [--botocore]
                                         [--json FILE]

Starts the stub, opens two aiodynkv stores in this process (no SDK, and an SDK set up as
`tracing.py` sets it up) and the aiodynamo contender of ``run.py`` (set up as in
``contenders.py``), runs ``--ops`` sequential calls of each under cProfile (CPU clock) and
prints the self time per call grouped by component, aiodynkv's and aiodynamo's columns
side by side: request build and validation (the store, codec, keys, requests modules;
aiodynamo's client, models and serializer), signing, JSON, aiohttp and the socket,
asyncio, OpenTelemetry (trace SDK, metrics SDK, API/context), structlog/logging and
aiodynkv's own telemetry module. cProfile inflates cheap, frequent calls: each side's
groups are scaled to add up to its CPU per call measured first without the profiler (the
shares are cProfile's, the total is real). With ``--botocore`` it profiles
``transport="botocore"`` `get` and the raw aioboto3 contender's ``get_item`` instead.

Below the table, the floor of aiodynkv's CPU per call against aiodynamo's: the
components both clients pay on the same library code (`SHARED`: aiohttp/yarl/multidict,
asyncio, the socket and selector calls), taken from aiodynkv's column, over aiodynamo's
CPU per call. It is the ratio aiodynkv would reach if everything of its own (request
build, validation, signing, JSON, decode, telemetry, the C builtins it calls) cost
nothing. ``--json FILE`` writes every column and these floors.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
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
    ("aiodynamo signing", "/aiodynamo/sign.py"),
    ("aiodynamo HTTP adapter", "/aiodynamo/http/"),
    ("aiodynamo request build, serialize, decode", "/aiodynamo/"),
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


#: The components both clients pay, on the same library code: the floor of a call.
SHARED = ("aiohttp/yarl/multidict", "asyncio", "socket and selector (C)", "other (selectors.py)")


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


async def main_async(url: str, ops: int, n: int, botocore: bool) -> dict[str, Any]:
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
    calls: dict[str, Callable[[int], Awaitable[Any]]] = {}
    for name, store in stores.items():

        async def get(i: int, store: AsyncDynamoKV = store) -> Any:
            return await store.get(f"key:{i:06d}", None)

        async def set_(i: int, store: AsyncDynamoKV = store) -> Any:
            return await store.set(f"key:{i:06d}", f"{i:06d}".ljust(100, "y"))

        calls[f"{name} get"] = get
        if not botocore:
            calls[f"{name} set"] = set_
    other = await _other_side(url, botocore, calls)
    sides = {name: calls[name] for name in (list(calls) if botocore else ORDER)}
    try:
        for call in sides.values():
            await cpu_per_call(call, 300)
        measured = {name: await cpu_per_call(call, ops) for name, call in sides.items()}
        results = {name: await profiled(call, ops) for name, call in sides.items()}
    finally:
        for kv in stores.values():
            await kv.aclose()
        await other.close()
        tracer_provider.shutdown()
        meter_provider.shutdown()
    return print_table(sides, measured, results, ops, n)


#: The columns, aiodynkv's next to aiodynamo's.
ORDER = [
    "untraced get",
    "aiodynamo get",
    "untraced set",
    "aiodynamo set",
    "traced get",
    "traced set",
]


async def _other_side(
    url: str, botocore: bool, calls: dict[str, Callable[[int], Awaitable[Any]]]
) -> Any:
    """Open the other client (raw aioboto3, or aiodynamo) and add its calls; return it."""
    if botocore:
        from contenders import RawAioboto3

        raw = RawAioboto3(url)
        raw.load()
        await raw.open()

        async def raw_get(i: int) -> Any:
            return await raw.get(f"key:{i:06d}")

        calls["raw aioboto3 get_item (its own client)"] = raw_get
        return raw
    from contenders import Aiodynamo

    dynamo = Aiodynamo(url)
    dynamo.load()
    await dynamo.open()
    if await dynamo.get("key:000001") is None:
        raise SystemExit("aiodynamo does not see the items aiodynkv wrote")

    async def dynamo_get(i: int) -> Any:
        return await dynamo.get(f"key:{i:06d}")

    async def dynamo_set(i: int) -> Any:
        return await dynamo.set(f"key:{i:06d}", f"{i:06d}".ljust(100, "y"))

    calls["aiodynamo get"] = dynamo_get
    calls["aiodynamo set"] = dynamo_set
    return dynamo


def print_table(
    sides: dict[str, Any],
    measured: dict[str, tuple[float, float]],
    results: dict[str, pstats.Stats],
    ops: int,
    n: int,
) -> dict[str, Any]:
    """Print the component table (and the floors); return its figures."""
    groups = {name: grouped(stats, ops) for name, stats in results.items()}
    plain = {name: cpu for name, (cpu, _) in measured.items()}

    def biggest(group: str) -> float:
        return max(x.get(group, 0.0) for x in groups.values())

    names = sorted({g for gs in groups.values() for g in gs}, key=lambda g: -biggest(g))
    # cProfile inflates every call; each side's groups are scaled so that they add up
    # to its CPU per call measured without the profiler (shares kept, µs made real).
    scale = {s: plain[s] / (sum(groups[s].values()) or 1.0) for s in sides}
    real = {s: {g: us * scale[s] for g, us in groups[s].items()} for s in sides}
    print("| component: self time, µs per call (scaled to the unprofiled CPU) | ", end="")
    print(" | ".join(sides) + " |")
    print("|---|" + "--:|" * len(sides))
    for g in names:
        if biggest(g) >= 0.5:
            cells = " | ".join(f"{real[s].get(g, 0):.1f}" for s in sides)
            print(f"| {g} | {cells} |")
    total = " | ".join(f"**{plain[s]:.0f}**" for s in sides)
    print(f"| **CPU per call without the profiler** | {total} |")
    profiled = " | ".join(f"{sum(groups[s].values()):.0f}" for s in sides)
    print(f"| (under cProfile) | {profiled} |")
    collected = " | ".join(f"{measured[s][1]:.1f}" for s in sides)
    print(f"| garbage collection, measured (cProfile charges it to the rows above) | {collected} |")
    floors = {}
    for what in ("get", "set"):
        mine, theirs = f"untraced {what}", f"aiodynamo {what}"
        if mine not in real or theirs not in real:
            continue
        shared = {s: sum(real[s].get(g, 0.0) for g in SHARED) for s in (mine, theirs)}
        floors[what] = {
            "aiodynkv_us": plain[mine],
            "aiodynamo_us": plain[theirs],
            "aiodynkv_shared_us": shared[mine],
            "aiodynamo_shared_us": shared[theirs],
            "aiodynkv_own_us": plain[mine] - shared[mine],
            "aiodynamo_own_us": plain[theirs] - shared[theirs],
            "ratio": plain[mine] / plain[theirs],
            "floor": shared[mine] / plain[theirs],
        }
    if floors:
        print(
            "\nThe floor of aiodynkv's CPU per call against aiodynamo's: the components "
            f"both pay on the same library code ({', '.join(SHARED)}), taken from aiodynkv's "
            "column, over aiodynamo's CPU per call; the ratio aiodynkv would reach if all "
            "its own work cost nothing.\n"
        )
        for what, f in floors.items():
            print(
                f"- `{what}`: shared {f['aiodynkv_shared_us']:.0f} µs (aiodynamo's "
                f"{f['aiodynamo_shared_us']:.0f}); own work {f['aiodynkv_own_us']:.0f} µs "
                f"(aiodynamo's {f['aiodynamo_own_us']:.0f}); floor "
                f"{f['aiodynkv_shared_us']:.0f} / {f['aiodynamo_us']:.0f} = "
                f"**{f['floor']:.2f}x**; this run's ratio {f['ratio']:.2f}x."
            )
    for name, stats in results.items() if n else ():
        print(f"\n== {name}: top {n} functions (self µs per call, calls per call)")
        print("\n".join(top(stats, ops, n)))
    return {
        "sides": {
            s: {"cpu_us": plain[s], "gc_us": measured[s][1], "groups": real[s]} for s in sides
        },
        "shared_groups": list(SHARED),
        "floors": floors,
    }


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, help="calls per side (default 3000, quick 1000)")
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--botocore", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()
    from run import start_stub

    stub = start_stub(600)
    try:
        print(f"load average {os.getloadavg()[0]:.2f} at the start")
        ops = options.ops or (1000 if options.quick else 3000)
        figures = asyncio.run(main_async(stub.url, ops, options.top, options.botocore))
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
    finally:
        stub.stop()
    if options.json:
        options.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
