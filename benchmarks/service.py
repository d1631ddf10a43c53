"""A service benchmark: one FastAPI app per client behind uvicorn, under HTTP load.

    python benchmarks/service.py [--quick] [--json FILE]

Starts the stub (answering every DynamoDB request after 2 ms), seeds it, then one
uvicorn process (one worker) per contender, each serving a FastAPI app with
``GET /items/{key}`` and ``PUT /items/{key}`` on top of that client:

- ``aiodynkv``: `AsyncDynamoKV` in its default configuration, no OpenTelemetry SDK;
- ``aiodynkv-sdk``: the same plus an OpenTelemetry SDK configured as applications do
  (`BatchSpanProcessor`, `PeriodicExportingMetricReader`, both exporters dropping what
  they get), passed to the store only: FastAPI itself is not instrumented, so the extra
  cost is aiodynkv's tracing and nothing else;
- ``aiodynamo``: aiodynamo on aiohttp; ``aioboto3``: the raw aioboto3 client (as in
  ``contenders.py``).

This process is the load generator: 64 concurrent keep-alive connections (aiohttp), each
sending its next request as soon as the previous answer arrives, for a fixed time. The
workloads: 100 % GET over uniform keys, 100 % GET over 50 hot keys, 90 % GET / 10 % PUT.
Every round runs each (workload, contender) once, the contenders' order rotating every
round. Figures: requests/s, p50 and p99 latency at the client, and the server process's
CPU time per 1,000 requests (its own ``time.process_time()``, all threads). The 1-minute
load average is read after each run; a workload whose runs saw more than 1.0 (on 2 cores)
is marked noisy.

The stub's own count of DynamoDB requests is read around every run: *backend requests
per 1,000* service requests shows what read coalescing merged.

The floor of the traced/untraced throughput ratio, per workload: the SDK's own work per
service request, measured in this process after the runs with the providers configured
as the traced app configures them (`tracing.sdk_floor`: the call's span with its
attributes and one histogram point, plus one attempt span per backend request the traced
app sent per service request), added to the untraced app's server CPU per request. The
apps are CPU-bound (one worker, 64 connections), so req/s goes as one over the CPU per
request, and the floor is *untraced CPU / (untraced CPU + the SDK's work)*: the ratio a
traced app would keep if aiodynkv's own tracing code cost nothing.

The coalescing trade-off (``--tradeoff``, on by default): 100 % GET over uniform keys
only, aiodynkv with ``coalesce_reads=False``, as shipped (same-turn batches), with a
``coalesce_window`` of 0.5 ms and of 2 ms, and with a 2 ms window bounded by
``coalesce_max_keys=16``, next to aiodynamo; one round (``--tradeoff-seconds`` per cell).

Prints Markdown; ``run.py`` puts it in BENCHMARKS.md. Every process started here is
stopped here, by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CONTENDERS = ["aiodynkv", "aiodynkv-sdk", "aiodynamo", "aioboto3"]
#: The coalescing trade-off's apps (aiodynkv and aiodynamo come from CONTENDERS).
TRADEOFF = [
    "aiodynkv-coalesce-off",
    "aiodynkv",
    "aiodynkv-window-0.5ms",
    "aiodynkv-window-2ms",
    "aiodynkv-window-2ms-16keys",
    "aiodynamo",
]
LABELS = {
    "aiodynkv": "aiodynkv",
    "aiodynkv-sdk": "aiodynkv + OpenTelemetry SDK",
    "aiodynamo": "aiodynamo (aiohttp)",
    "aioboto3": "aioboto3 raw client",
    "aiodynkv-coalesce-off": "aiodynkv, `coalesce_reads=False`",
    "aiodynkv-window-0.5ms": "aiodynkv, `coalesce_window=0.0005`",
    "aiodynkv-window-2ms": "aiodynkv, `coalesce_window=0.002`",
    "aiodynkv-window-2ms-16keys": "aiodynkv, `coalesce_window=0.002, coalesce_max_keys=16`",
}
#: KVConfig fields of the trade-off's aiodynkv variants.
VARIANTS: dict[str, dict[str, Any]] = {
    "aiodynkv-coalesce-off": {"coalesce_reads": False},
    "aiodynkv-window-0.5ms": {"coalesce_window": 0.0005},
    "aiodynkv-window-2ms": {"coalesce_window": 0.002},
    "aiodynkv-window-2ms-16keys": {"coalesce_window": 0.002, "coalesce_max_keys": 16},
}
WORKLOADS = {
    "get_uniform": "100 % GET, uniform keys",
    "get_hot50": "100 % GET, 50 hot keys",
    "mixed_90_10": "90 % GET / 10 % PUT, uniform keys",
}
CONCURRENCY = 64
LATENCY_MS = 2.0
KEYS = 10_000
HOT_KEYS = 50
NOISY_LOAD = 1.0
VALUE = "v" * 100


class Body(BaseModel):
    """What ``PUT /items/{key}`` takes."""

    value: str


def key_of(i: int) -> str:
    return f"key:{i:06d}"


# -- the server side (one process per contender) ------------------------------------------


def build_app(contender: Any) -> Any:
    """The FastAPI app a user would write: the client opened in the lifespan."""
    import contextlib

    from fastapi import FastAPI, HTTPException

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        del app
        await contender.open()
        try:
            yield
        finally:
            await contender.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/items/{key}")
    async def get_item(key: str) -> dict[str, str]:
        value = await contender.get(key)
        if value is None:
            raise HTTPException(status_code=404, detail="no such item")
        return {"key": key, "value": value}

    @app.put("/items/{key}", status_code=204)
    async def put_item(key: str, body: Body) -> None:
        await contender.set(key, body.value)

    @app.get("/_stats")
    async def stats() -> dict[str, float]:
        return {"cpu_seconds": time.process_time()}

    return app


def serve(name: str, url: str, port: int) -> None:
    """Run one contender's app on 127.0.0.1:`port` until terminated."""
    import uvicorn
    from contenders import CONTENDERS as MAKERS

    if name in VARIANTS:
        from contenders import Aiodynkv

        contender: Any = Aiodynkv(url, **VARIANTS[name])
    else:
        contender = MAKERS[name](url)
    contender.load()
    if getattr(contender, "sdk", False):
        from tracing import sdk_providers

        contender.tracer_provider, contender.meter_provider = sdk_providers()
    config = uvicorn.Config(
        build_app(contender),
        host="127.0.0.1",
        port=port,
        workers=1,
        access_log=False,
        log_level="warning",
        lifespan="on",
    )
    uvicorn.Server(config).run()


# -- the load generator ----------------------------------------------------------------------


async def load(base: str, workload: str, seconds: float, session: Any, seed: int) -> dict[str, Any]:
    """Keep CONCURRENCY requests in flight for `seconds`; latencies and counts."""
    rng = random.Random(seed)
    latencies: list[float] = []
    errors = 0
    first_error: list[str] = []
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            if workload == "get_hot50":
                i, put = rng.randrange(HOT_KEYS), False
            else:
                i, put = rng.randrange(KEYS), workload == "mixed_90_10" and rng.random() < 0.1
            path = f"{base}/items/{key_of(i)}"
            began = time.perf_counter()
            try:
                if put:
                    async with session.put(path, json={"value": VALUE}) as response:
                        body = await response.read()
                        ok = response.status == 204
                else:
                    async with session.get(path) as response:
                        body = await response.read()
                        ok = response.status == 200
                if not ok and not first_error:
                    first_error.append(f"{response.status} {body[:200]!r}")
            except Exception as exc:  # counted, not fatal
                ok = False
                if not first_error:
                    first_error.append(repr(exc)[:200])
            if ok:
                latencies.append(time.perf_counter() - began)
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    wall = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, round(q * (len(latencies) - 1)))] * 1e3

    return {
        "requests": len(latencies),
        "errors": errors,
        "first_error": first_error[0] if first_error else None,
        "wall_s": wall,
        "rps": len(latencies) / wall,
        "p50_ms": pct(0.50) if latencies else float("nan"),
        "p99_ms": pct(0.99) if latencies else float("nan"),
    }


async def server_cpu(session: Any, base: str) -> float:
    async with session.get(f"{base}/_stats") as response:
        return float((await response.json())["cpu_seconds"])


def stub_requests(stub_port: int) -> int:
    """DynamoDB requests the stub has served so far (``BenchStub.Stats``)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", stub_port, timeout=10)
    try:
        conn.request("POST", "/", body=b"{}", headers={"X-Amz-Target": "BenchStub.Stats"})
        return int(json.loads(conn.getresponse().read())["requests"])
    finally:
        conn.close()


async def drive(
    servers: dict[str, str],
    rounds: int,
    seconds: float,
    warmup: float,
    log: Any,
    stub_port: int,
    workloads: list[str] | None = None,
) -> dict[str, Any]:
    import aiohttp

    workloads = workloads or list(WORKLOADS)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY + 4)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        w: {c: [] for c in servers} for w in workloads
    }
    async with aiohttp.ClientSession(connector=connector) as session:
        for name, base in servers.items():  # warm-up: connections, caches, first calls
            for workload in workloads:
                await load(base, workload, warmup, session, seed=0)
            log(f"service: warmed up {name}")
        names = list(servers)
        for round_ in range(rounds):
            for workload in workloads:
                shift = (round_ + workloads.index(workload)) % len(names)
                for name in names[shift:] + names[:shift]:
                    base = servers[name]
                    cpu0 = await server_cpu(session, base)
                    backend0 = stub_requests(stub_port)
                    result = await load(base, workload, seconds, session, seed=round_ + 1)
                    cpu = await server_cpu(session, base) - cpu0
                    backend = stub_requests(stub_port) - backend0
                    result["cpu_ms_per_1k"] = cpu * 1e3 / max(1, result["requests"]) * 1e3
                    result["backend_per_1k"] = backend / max(1, result["requests"]) * 1e3
                    result["load"] = os.getloadavg()[0]
                    result["round"] = round_
                    runs[workload][name].append(result)
                    log(
                        f"service {workload:11} {name:13} {result['rps']:8.0f} req/s "
                        f"p50 {result['p50_ms']:6.1f} p99 {result['p99_ms']:6.1f} ms "
                        f"cpu {result['cpu_ms_per_1k']:6.0f} ms/1k load {result['load']:.2f}"
                    )
    return runs


def start_servers(
    url: str, names: list[str]
) -> tuple[dict[str, str], list[subprocess.Popen[bytes]]]:
    from run import free_port

    procs: list[subprocess.Popen[bytes]] = []
    servers: dict[str, str] = {}
    for name in names:
        port = free_port()
        cmd = [sys.executable, __file__, "--serve", name, "--url", url, "--port", str(port)]
        # stdout is the report's (run.py reads it): the apps print elsewhere.
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL))
        servers[name] = f"http://127.0.0.1:{port}"
    return servers, procs


async def wait_ready(servers: dict[str, str], procs: list[subprocess.Popen[bytes]]) -> None:
    import aiohttp

    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        for (name, base), proc in zip(servers.items(), procs, strict=True):
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"the {name} app exited with {proc.returncode}")
                try:
                    await server_cpu(session, base)
                    break
                except aiohttp.ClientError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"the {name} app did not start within 60 s") from None
                    await asyncio.sleep(0.2)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        _wait_or_kill(proc)


def _wait_or_kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def run(
    url: str,
    rounds: int,
    seconds: float,
    warmup: float,
    log: Any,
    tradeoff_seconds: float | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start the apps on the stub at `url`, drive them, stop them; the raw runs.

    Then, unless `tradeoff_seconds` is None, the coalescing trade-off's apps: one round
    of 100 % GET over uniform keys.
    """
    port = int(url.rsplit(":", 1)[1])
    names = CONTENDERS + ([n for n in TRADEOFF if n not in CONTENDERS] if tradeoff_seconds else [])
    servers, procs = start_servers(url, names)
    try:
        asyncio.run(wait_ready(servers, procs))
        main = {n: servers[n] for n in CONTENDERS}
        runs = asyncio.run(drive(main, rounds, seconds, warmup, log, port))
        tradeoff: dict[str, Any] = {}
        if tradeoff_seconds:
            trade = {n: servers[n] for n in TRADEOFF}
            tradeoff = asyncio.run(
                drive(trade, 1, tradeoff_seconds, warmup, log, port, ["get_uniform"])
            )
        return runs, tradeoff
    finally:
        stop(procs)


def sdk_cost(url: str, calls: int) -> dict[str, float]:
    """CPU µs of the SDK's own work per traced call and per attempt span (`sdk_floor`).

    Made in this process on providers configured as the traced app's (`sdk_providers`);
    the median of five blocks of `calls` each.
    """
    from tracing import TABLE, sdk_floor, sdk_providers

    from aiodynkv import AsyncDynamoKV
    from aiodynkv._telemetry import Telemetry

    tracer_provider, meter_provider = sdk_providers()
    config = AsyncDynamoKV(
        table=TABLE, endpoint=url, tracer_provider=tracer_provider, meter_provider=meter_provider
    ).config
    tel = Telemetry(config)
    out = {}
    try:
        for name, kw in (("call_us", {"attempt": False}), ("attempt_us", {"call": False})):
            work = sdk_floor(tracer_provider, meter_provider, tel, url, **kw)
            for _ in range(calls // 5):  # warm-up
                work()
            blocks = []
            for _ in range(5):
                began = time.process_time()
                for _ in range(calls):
                    work()
                blocks.append((time.process_time() - began) / calls * 1e6)
            out[name] = statistics.median(blocks)
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()
    return out


# -- the report ----------------------------------------------------------------------------


def summarize(runs: dict[str, Any], sdk: dict[str, float] | None = None) -> dict[str, Any]:
    """Medians per (workload, contender), paired per-round ratios, and the tracing floor."""
    out: dict[str, Any] = {}
    for workload, by_name in runs.items():
        rows: dict[str, Any] = {}
        for name, reps in by_name.items():
            if not reps:
                continue
            rows[name] = {
                k: statistics.median(r[k] for r in reps)
                for k in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_1k", "backend_per_1k")
            }
            rows[name]["errors"] = sum(r["errors"] for r in reps)
            rows[name]["first_error"] = next((r["first_error"] for r in reps if r["errors"]), None)
            rows[name]["load"] = max(r["load"] for r in reps)

        def per_round(a: str, b: str, key: str, by_name: dict[str, Any] = by_name) -> Any:
            x = {r["round"]: r[key] for r in by_name.get(a, [])}
            y = {r["round"]: r[key] for r in by_name.get(b, [])}
            ratios = [x[k] / y[k] for k in x.keys() & y.keys() if y[k]]
            return statistics.median(ratios) if ratios else None

        out[workload] = {
            "rows": rows,
            "traced_rps": per_round("aiodynkv-sdk", "aiodynkv", "rps"),
            "traced_cpu": per_round("aiodynkv-sdk", "aiodynkv", "cpu_ms_per_1k"),
            "p99_vs_aiodynamo": per_round("aiodynkv", "aiodynamo", "p99_ms"),
            "p50_vs_aiodynamo": per_round("aiodynkv", "aiodynamo", "p50_ms"),
            "load": max((r["load"] for r in rows.values()), default=0.0),
        }
        untraced, traced = rows.get("aiodynkv"), rows.get("aiodynkv-sdk")
        if sdk and untraced and traced:
            # The SDK's work per service request: the call's span and point, and one
            # attempt span per backend request the traced app sent.
            work = sdk["call_us"] + sdk["attempt_us"] * traced["backend_per_1k"] / 1e3
            cpu = untraced["cpu_ms_per_1k"]  # ms per 1,000 requests = µs per request
            out[workload]["sdk_us"] = work
            out[workload]["traced_floor"] = cpu / (cpu + work)
    return out


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None or value != value else f"{value:,.{digits}f}"  # noqa: PLR0124


def report(summary: dict[str, Any], rounds: int, seconds: float) -> list[str]:
    lines = [
        f"One uvicorn worker per client, FastAPI routes `GET`/`PUT /items/{{key}}`, "
        f"{CONCURRENCY} concurrent keep-alive connections, the stub answering after "
        f"{LATENCY_MS:g} ms; {rounds} round(s) of {seconds:g} s per cell, contenders in "
        "rotating order. Cells: req/s · p50 ms · p99 ms · server CPU ms per 1,000 requests "
        "(medians over the rounds). The traced row has an OpenTelemetry SDK "
        "(`BatchSpanProcessor`, `PeriodicExportingMetricReader`) given to the store; FastAPI "
        "itself is not instrumented, so the difference is aiodynkv's tracing.",
        "",
        "| workload | load avg | " + " | ".join(LABELS[c] for c in CONTENDERS) + " |",
        "|---|--:|" + "--:|" * len(CONTENDERS),
    ]
    for workload, s in summary.items():
        cells = []
        for name in CONTENDERS:
            r = s["rows"].get(name)
            if r is None:
                cells.append("-")
                continue
            err = f" ({r['errors']} errors: {r['first_error']})" if r["errors"] else ""
            cells.append(
                f"{fmt(r['rps'])} · {fmt(r['p50_ms'], 1)} · {fmt(r['p99_ms'], 1)} · "
                f"{fmt(r['cpu_ms_per_1k'])}{err}"
            )
        noisy = " **noisy**" if s["load"] > NOISY_LOAD else ""
        lines.append(
            f"| {WORKLOADS[workload]} | {s['load']:.2f}{noisy} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "Paired ratios (median over rounds of each round's pair):",
        "",
        "| workload | traced / untraced req/s (target ≥ 0.90) | its floor "
        "| the SDK's work, µs per request | traced / untraced server CPU "
        "| aiodynkv p99 / aiodynamo p99 (target ≤ 1.00) | aiodynkv p50 / aiodynamo p50 "
        "| backend requests per 1,000: aiodynkv, traced, aiodynamo |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for workload, s in summary.items():
        backend = " · ".join(
            fmt(s["rows"].get(n, {}).get("backend_per_1k"))
            for n in ("aiodynkv", "aiodynkv-sdk", "aiodynamo")
        )
        lines.append(
            f"| {WORKLOADS[workload]} | {fmt(s['traced_rps'], 2)} "
            f"| {fmt(s.get('traced_floor'), 2)} | {fmt(s.get('sdk_us'), 1)} "
            f"| {fmt(s['traced_cpu'], 2)} "
            f"| {fmt(s['p99_vs_aiodynamo'], 2)} | {fmt(s['p50_vs_aiodynamo'], 2)} | {backend} |"
        )
    lines += [
        "",
        "*its floor*: the traced/untraced ratio a traced app would keep if aiodynkv's own "
        "tracing code cost nothing: the untraced app's server CPU per request over that plus "
        "the SDK's own work per request (the call's span with its attributes and one "
        "histogram point, plus one attempt span per backend request the traced app sent), "
        "that work measured in this run on the same SDK configuration; the apps are "
        "CPU-bound, so req/s goes as one over CPU per request.",
    ]
    worse = [w for w, s in summary.items() if (s["p99_vs_aiodynamo"] or 0) > 1.0]
    if worse:
        lines += [
            "",
            "aiodynkv's p99 is above aiodynamo's in: "
            + ", ".join(
                f"{WORKLOADS[w]} ({fmt(summary[w]['rows']['aiodynkv']['p99_ms'], 1)} ms vs "
                f"{fmt(summary[w]['rows']['aiodynamo']['p99_ms'], 1)} ms)"
                for w in worse
            )
            + ".",
        ]
    if any(s["load"] > NOISY_LOAD for s in summary.values()):
        lines += [
            "",
            f"**Noisy**: the 1-minute load average exceeded {NOISY_LOAD:g} on 2 cores during "
            "the marked workloads; absolute figures are inflated, compare the paired ratios.",
        ]
    return lines


def tradeoff_report(summary: dict[str, Any], seconds: float) -> list[str]:
    """The coalescing trade-off table: median, tail and cost of each batching bound."""
    s = summary.get("get_uniform")
    if not s:
        return []
    rows = s["rows"]
    dynamo = rows.get("aiodynamo", {})
    lines = [
        "",
        "#### Coalescing: what the batching bound does to the tail (100 % GET, uniform keys)",
        "",
        f"One round of {seconds:g} s per app, same load as above. The window is how long "
        "the first read of a batch waits for company; the size bound sends a batch as soon "
        "as that many distinct keys wait, whichever comes first.",
        "",
        "| aiodynkv setting | req/s | p50 ms | p99 ms | p99 / p50 | p99 vs aiodynamo "
        "| p50 vs aiodynamo | server CPU ms per 1k | backend requests per 1k |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name in TRADEOFF:
        r = rows.get(name)
        if r is None:
            continue
        vs = {
            k: (r[k] / dynamo[k] if dynamo.get(k) and name != "aiodynamo" else None)
            for k in ("p99_ms", "p50_ms")
        }
        lines.append(
            f"| {LABELS[name]} | {fmt(r['rps'])} | {fmt(r['p50_ms'], 1)} | {fmt(r['p99_ms'], 1)} "
            f"| {fmt(r['p99_ms'] / r['p50_ms'] if r['p50_ms'] else None, 1)} "
            f"| {fmt(vs['p99_ms'], 2)} | {fmt(vs['p50_ms'], 2)} "
            f"| {fmt(r['cpu_ms_per_1k'])} | {fmt(r['backend_per_1k'])} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of 3 s per cell")
    parser.add_argument("--rounds", type=int, help="rounds (default 3, quick 1)")
    parser.add_argument("--seconds", type=float, help="seconds per cell (default 20, quick 3)")
    parser.add_argument("--json", type=Path, help="also write the raw runs here")
    parser.add_argument(
        "--tradeoff-seconds",
        type=float,
        help="seconds per cell of the coalescing trade-off (default 10, quick 3; 0: skip it)",
    )
    parser.add_argument(
        "--serve", choices=list(dict.fromkeys(CONTENDERS + TRADEOFF)), help=argparse.SUPPRESS
    )
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve(options.serve, options.url, options.port)
        return
    rounds = options.rounds or (1 if options.quick else 3)
    seconds = options.seconds or (3.0 if options.quick else 20.0)
    warmup = 1.0 if options.quick else 3.0
    tradeoff_seconds = options.tradeoff_seconds
    if tradeoff_seconds is None:
        tradeoff_seconds = 3.0 if options.quick else 10.0
    began = time.monotonic()
    from run import configure_stub, run_worker, start_stub

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    stub = start_stub(3600)
    try:
        seeded = run_worker(stub, "seed", "aiodynkv", {"keys": KEYS})
        if "error" in seeded:
            raise SystemExit(f"seeding failed: {seeded['error']}")
        configure_stub(stub, LATENCY_MS)
        runs, tradeoff = run(stub.url, rounds, seconds, warmup, log, tradeoff_seconds or None)
        sdk = sdk_cost(stub.url, 2_000 if options.quick else 5_000)
    finally:
        stub.stop()
    summary = summarize(runs, sdk)
    traded = summarize(tradeoff) if tradeoff else {}
    lines = report(summary, rounds, seconds)
    lines += tradeoff_report(traded, tradeoff_seconds)
    elapsed = time.monotonic() - began
    lines += ["", f"The service benchmark took {elapsed / 60:.1f} minutes."]
    print("\n".join(lines))
    if options.json:
        options.json.write_text(
            json.dumps(
                {
                    "runs": runs,
                    "summary": summary,
                    "sdk": sdk,
                    "tradeoff": traded,
                    "tradeoff_runs": tradeoff,
                    "labels": LABELS,
                    "seconds": elapsed,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
