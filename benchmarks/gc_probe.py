"""What the service benchmark's apps give the cyclic GC, per 1,000 requests.

    python benchmarks/gc_probe.py probe [--apps A,B] [--workloads W] [--seconds S]
    python benchmarks/gc_probe.py bench [--trees NAME=PATH,...] [--rounds N] [--seconds S]

``probe``: each app of ``service.py`` (same routes, same client) runs with a GC callback
that counts, per 1,000 served requests, the collections of each generation, the objects
promoted into generation 2 (what survives a generation-1 collection: what makes Python
run a full collection once it exceeds a quarter of the long-lived heap), the full
collections' pauses, and the types of the promoted objects (the tail of generation 2's
list after each generation-1 collection, where the survivors are appended).

``bench``: the plain service apps (no probe), aiodynkv from each named source tree (for
example ``main=/tmp/main-export,branch=.``) and aiodynamo, driven by ``service.drive``
in rotating order; paired per-round ratios of each aiodynkv's p50 and p99 to aiodynamo's.

Every process started here is stopped here, by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


class Null:
    """No client: each call answers after the stub's latency (``asyncio.sleep``).

    The app's own share of the GC's work (FastAPI, uvicorn), with no client's.
    """

    name = "null"

    def __init__(self, url: str) -> None:
        del url

    def load(self) -> None:
        """Nothing to import."""

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def get(self, key: str) -> str:
        del key
        await asyncio.sleep(0.002)
        return "v" * 100

    async def set(self, key: str, value: str) -> None:
        del key, value
        await asyncio.sleep(0.002)


class GcProbe:
    """GC callback: collections, gen-2 promotions and their types, full-collection pauses."""

    def __init__(self) -> None:
        self.reset()
        self._young = 0
        self._began = 0.0
        self._cpu = 0.0
        gc.callbacks.append(self._callback)

    def reset(self) -> None:
        self.requests = 0
        self.collections = [0, 0, 0]
        self.promoted = 0
        self.full_ms: list[float] = []
        self.full_cpu_ms: list[float] = []
        self.collected = [0, 0, 0]
        self.types: collections.Counter[str] = collections.Counter()
        self.cpu = time.process_time()
        self.wall = time.perf_counter()

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        generation = info["generation"]
        if phase == "start":
            if generation == 1:
                self._young = len(gc.get_objects(0)) + len(gc.get_objects(1))
            self._began = time.perf_counter()
            self._cpu = time.thread_time()
            return
        elapsed = time.perf_counter() - self._began
        self.collections[generation] += 1
        self.collected[generation] += info["collected"]
        if generation == 2:
            self.full_ms.append(elapsed * 1e3)
            self.full_cpu_ms.append((time.thread_time() - self._cpu) * 1e3)
        elif generation == 1:
            promoted = max(0, self._young - info["collected"])
            self.promoted += promoted
            if promoted:
                old = gc.get_objects(2)
                self.types.update(type(o).__name__ for o in old[len(old) - promoted :])
                del old

    def take(self) -> dict[str, Any]:
        per_k = 1e3 / max(1, self.requests)
        gen2 = collections.Counter(type(o).__name__ for o in gc.get_objects(2))
        out = {
            "requests": self.requests,
            "rps": self.requests / (time.perf_counter() - self.wall),
            "cpu_ms_per_1k": (time.process_time() - self.cpu) * 1e3 * per_k,
            "gen0_per_1k": self.collections[0] * per_k,
            "gen1_per_1k": self.collections[1] * per_k,
            "gen2_per_1k": self.collections[2] * per_k,
            "promoted_per_1k": self.promoted * per_k,
            "promoted_per_request": self.promoted / max(1, self.requests),
            "full_ms": [round(x, 1) for x in self.full_ms],
            "full_ms_median": statistics.median(self.full_ms) if self.full_ms else None,
            "full_cpu_ms_median": (
                statistics.median(self.full_cpu_ms) if self.full_cpu_ms else None
            ),
            "collected_per_1k": [round(n * per_k) for n in self.collected],
            "promoted_types_per_1k": {k: round(v * per_k) for k, v in self.types.most_common(25)},
            "heap_gen2": sum(gen2.values()),
            "heap_total": len(gc.get_objects()),
        }
        self.reset()
        return out


def serve(tree: Path, name: str, url: str, port: int) -> None:
    """One ``service.py`` app from `tree`, wrapped with the GC probe (``/_gc``)."""
    sys.path[:0] = [str(tree / "benchmarks"), str(tree)]
    import service
    import uvicorn
    from contenders import CONTENDERS as MAKERS

    contender = Null(url) if name == "null" else MAKERS[name](url)
    contender.load()
    probe = GcProbe()
    app = service.build_app(contender)

    async def probed(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/_gc":
            body = json.dumps(probe.take()).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http" and scope["path"].startswith("/items/"):
            probe.requests += 1
        await app(scope, receive, send)

    config = uvicorn.Config(
        probed, host="127.0.0.1", port=port, access_log=False, log_level="warning", lifespan="on"
    )
    uvicorn.Server(config).run()


def start(
    apps: list[tuple[str, Path, str]], url: str, probe: bool
) -> tuple[dict[str, str], list[subprocess.Popen[bytes]]]:
    """Start (label, tree, contender) apps; their base URLs by label, and the processes."""
    from run import free_port

    servers, procs = {}, []
    for label, tree, name in apps:
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(tree)}
        if probe:
            cmd = [sys.executable, __file__, "serve", "--tree", str(tree), "--app", name]
        else:
            cmd = [sys.executable, str(tree / "benchmarks" / "service.py"), "--serve", name]
        cmd += ["--url", url, "--port", str(port)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL))
        servers[label] = f"http://127.0.0.1:{port}"
    return servers, procs


async def probe_drive(
    servers: dict[str, str], workloads: list[str], seconds: float
) -> dict[str, Any]:
    import aiohttp
    import service

    out: dict[str, Any] = {}
    connector = aiohttp.TCPConnector(limit=service.CONCURRENCY + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        for base in servers.values():
            for workload in workloads:
                await service.load(base, workload, 2.0, session, seed=0)
        service.freeze_heap()
        for workload in workloads:
            for label, base in servers.items():
                async with session.get(f"{base}/_gc") as response:
                    await response.read()
                result = await service.load(base, workload, seconds, session, seed=1)
                async with session.get(f"{base}/_gc") as response:
                    figures = json.loads(await response.read())
                figures.update(
                    p50_ms=result["p50_ms"], p99_ms=result["p99_ms"], load=os.getloadavg()[0]
                )
                out.setdefault(workload, {})[label] = figures
                print(f"{workload} {label}: {json.dumps(figures)}", file=sys.stderr, flush=True)
    return out


def trees(spec: str) -> list[tuple[str, Path]]:
    return [(n, Path(p).resolve()) for n, p in (item.split("=", 1) for item in spec.split(","))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["probe", "bench", "serve"])
    parser.add_argument("--trees", default=f"here={HERE.parent}")
    parser.add_argument("--apps", default="aiodynkv,aiodynamo")
    parser.add_argument("--workloads", default="get_uniform,get_hot50,mixed_90_10")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--app", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.mode == "serve":
        serve(options.tree, options.app, options.url, options.port)
        return
    sys.path.insert(0, str(HERE))
    import service

    workloads = options.workloads.split(",")
    apps: list[tuple[str, Path, str]] = []
    for tree_name, tree in trees(options.trees):
        apps += [
            (f"{name}@{tree_name}", tree, name)
            for name in options.apps.split(",")
            if name.startswith("aiodynkv")
        ]
    apps += [
        (name, HERE.parent, name) for name in options.apps.split(",") if "aiodynkv" not in name
    ]
    stub = service.seeded_stub()
    try:
        servers, procs = start(apps, stub.url, probe=options.mode == "probe")
        try:
            asyncio.run(service.wait_ready(servers, procs)) if options.mode == "bench" else None
            if options.mode == "probe":
                asyncio.run(service.wait_ready(servers, procs, _ping_gc))
                out = asyncio.run(probe_drive(servers, workloads, options.seconds))
            else:
                port = int(stub.url.rsplit(":", 1)[1])
                out = asyncio.run(
                    service.drive(
                        servers, options.rounds, options.seconds, 3.0, service._log, port, workloads
                    )
                )
                print_bench(out)
        finally:
            service.stop(procs)
    finally:
        stub.stop()
    if options.json:
        options.json.write_text(json.dumps(out, indent=1))


async def _ping_gc(session: Any, base: str) -> None:
    async with session.get(f"{base}/_gc") as response:
        await response.read()


def print_bench(runs: dict[str, Any]) -> None:
    """Per workload and aiodynkv tree: medians, and paired ratios to aiodynamo."""
    for workload, by_name in runs.items():
        base = {r["round"]: r for r in by_name.get("aiodynamo", [])}
        for label, reps in by_name.items():
            line = (
                f"{workload:11} {label:18} rps {statistics.median(r['rps'] for r in reps):6.0f} "
                f"p50 {statistics.median(r['p50_ms'] for r in reps):5.1f} "
                f"p99 {statistics.median(r['p99_ms'] for r in reps):5.1f} "
                f"load max {max(r['load'] for r in reps):.2f}"
            )
            if label != "aiodynamo" and base:
                p99 = [r["p99_ms"] / base[r["round"]]["p99_ms"] for r in reps]
                p50 = [r["p50_ms"] / base[r["round"]]["p50_ms"] for r in reps]
                line += (
                    f" | p99/aiodynamo median {statistics.median(p99):.2f} "
                    f"({', '.join(f'{x:.2f}' for x in p99)}) "
                    f"p50/aiodynamo {statistics.median(p50):.2f}"
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
