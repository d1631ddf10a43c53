"""A service benchmark: one FastAPI app per client behind uvicorn, under HTTP load.

    python benchmarks/service.py [--quick] [--json FILE]
    python benchmarks/service.py --diagnose [--apps A,B] [--workloads W] [--experiment E]

Starts the stub (answering every DynamoDB request after 2 ms), seeds it, then one
uvicorn process (one worker) per contender, each serving a FastAPI app with
``GET /items/{key}`` and ``PUT /items/{key}`` on top of that client:

- ``aiodynkv``: `AsyncDynamoKV` in its default configuration, no OpenTelemetry SDK;
- ``aiodynkv-sdk``: the same plus an OpenTelemetry SDK configured as applications do
  (`BatchSpanProcessor`, `PeriodicExportingMetricReader`, both exporters dropping what
  they get), passed to the store only: FastAPI itself is not instrumented, so the extra
  cost is aiodynkv's tracing and nothing else;
- ``aiodynkv-floor``: the untraced store with the SDK's own work for the same telemetry
  made around each call and each backend request (`SdkFloor`), on an SDK set up as the
  traced app's: what any code emitting that telemetry would cost;
- ``aiodynamo``: aiodynamo on aiohttp; ``aioboto3``: the raw aioboto3 client (as in
  ``contenders.py``).

This process is the load generator: 64 concurrent keep-alive connections (aiohttp), each
sending its next request as soon as the previous answer arrives, for a fixed time. Its
own startup heap is frozen (``gc.freeze()``) after the warm-up, so that its full
collections (tens of ms) do not land on the latencies it measures. The
workloads: 100 % GET over uniform keys, 100 % GET over 50 hot keys, 90 % GET / 10 % PUT.
Every round runs each (workload, contender) once, the contenders' order rotating every
round. Figures: requests/s, p50 and p99 latency at the client, and the server process's
CPU time per 1,000 requests (its own ``time.process_time()``, all threads). The 1-minute
load average is read after each run; a workload whose runs saw more than 1.0 (on 2 cores)
is marked noisy.

The stub's own count of DynamoDB requests is read around every run: *backend requests
per 1,000* service requests shows what read coalescing merged.

The floor of the traced/untraced throughput ratio, per workload, is measured, not
computed: the floor app's req/s over the untraced app's, paired per round. Its SDK work
is made in a served process interleaved with real requests, so it pays what a traced
call pays and a tight loop does not: cold caches, context attach/detach, spans alive in
the `BatchSpanProcessor`'s queue, and the collections of a service's heap they bring.

``--diagnose``: instead of the benchmark, one probed run per (workload, app): GC pauses,
event-loop lag, the coalescer's batches and each request's time inside the app, in the
apps and in the load generator, and how much of the slowest 1 % requests' latency falls
in each (`tail_figures`). ``--experiment`` changes the apps to test a cause:
``gc-freeze`` (their startup heap frozen), ``ballast`` (aiodynamo's app also holds an idle
aioboto3 client), ``drop-client`` (aiodynkv's app lets its store's aioboto3 client go).

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
from array import array
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CONTENDERS = ["aiodynkv", "aiodynkv-sdk", "aiodynkv-floor", "aiodynamo", "aioboto3"]
#: The untraced store plus the SDK's own work of the traced store's telemetry (`SdkFloor`).
FLOOR = "aiodynkv-floor"
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
    "aiodynkv-floor": "aiodynkv + the SDK's work alone (floor)",
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


def build_app(contender: Any, probe: Probe | None = None) -> Any:
    """The FastAPI app a user would write: the client opened in the lifespan.

    With a `probe` (``--diagnose``), the app is wrapped to time each request and
    ``/_diag`` hands out (and resets) what the probe saw.
    """
    import contextlib

    from fastapi import FastAPI, HTTPException

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        del app
        await contender.open()
        floor = SdkFloor(contender) if getattr(contender, "floor", False) else None
        if probe and probe.experiment:
            await probe.start_experiment(contender)
        lag = asyncio.ensure_future(probe.watch_loop()) if probe else None
        try:
            yield
        finally:
            if lag is not None:
                lag.cancel()
            await contender.close()
            if probe:
                await probe.stop_experiment()
            if floor is not None:
                floor.shutdown()

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

    if probe is None:
        return app

    @app.get("/_diag")
    async def diag() -> dict[str, Any]:
        return probe.take()

    return probe.wrap(app)


class SdkFloor:
    """The untraced store plus the SDK's own work for the telemetry a traced call emits.

    The floor app's store has no SDK; this wraps its calls and its backend requests with
    what the traced store's telemetry costs the SDK, made directly on providers set up as
    the traced app's (`tracing.sdk_providers`), the way a traced call pays it: the call's
    span (its attributes as aiodynkv gives them) started before the call, current while
    it runs (context attach and detach) and ended after it with one point of the
    duration histogram; per backend request, an attempt span with the instrumentation's
    attributes (made at the end with its start time, as the lean transport makes it), one
    capacity counter point, and for a coalesced BatchGetItem its own span linked to every
    key's call span, with its histogram point. Spans go through the `BatchSpanProcessor`
    like the traced app's, so their life in its queue and the GC work it brings count too.
    """

    def __init__(self, contender: Any) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace import Link, SpanKind
        from tracing import sdk_providers

        from aiodynkv._telemetry import DURATION_BUCKETS, Telemetry

        self.providers = sdk_providers()
        tracer_provider, meter_provider = self.providers
        kv = contender.kv
        config = kv.config
        tel = Telemetry(config)
        tracer = tracer_provider.get_tracer("floor")
        meter = meter_provider.get_meter("floor")
        histogram = meter.create_histogram(
            "floor.duration", unit="s", explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS)
        )
        capacity = meter.create_counter("floor.capacity", unit="{capacity_unit}")
        client, attach, detach = SpanKind.CLIENT, context.attach, context.detach
        in_context, current = trace.set_span_in_context, context.get_current
        host, port = config.server_address
        calls = {
            action: (
                tel.span_name(action),
                dict(tel.span_attributes(op, action)),
                dict(tel.metric_attributes(action)),
            )
            for op, action in (("get", "GetItem"), ("set", "UpdateItem"), ("get", "BatchGetItem"))
        }
        units = {
            action: dict(tel.metric_attributes_with(action, None, "aiodynkv.capacity.kind", kind))
            for action, kind in (
                ("GetItem", "read"),
                ("UpdateItem", "write"),
                ("BatchGetItem", "read"),
            )
        }

        def attempt_attrs(action: str) -> dict[str, Any]:
            return {
                "rpc.system": "aws-api",
                "rpc.service": "DynamoDB",
                "rpc.method": action,
                "cloud.region": config.region or "us-east-1",
                "server.address": host,
                "server.port": port,
                "db.system": "dynamodb",
                "db.operation": action,
                "net.peer.name": f"{host}:{port}",
                "aws.dynamodb.table_names": (config.table,),
                "aws.dynamodb.consistent_read": True,
                "aws.request_id": "0123456789abcdef",
                "retry_attempts": 0,
                "http.status_code": 200,
                "aws.dynamodb.consumed_capacity": (
                    f'{{"TableName": "{config.table}", "CapacityUnits": 1.0}}',
                ),
            }

        attempts = {a: attempt_attrs(a) for a in ("GetItem", "UpdateItem", "BatchGetItem")}
        recent: list[Any] = [trace.INVALID_SPAN.get_span_context()]

        def traced(action: str, call: Any) -> Any:
            span_name, attrs, metric = calls[action]

            async def wrapper(*args: Any) -> Any:
                span = tracer.start_span(span_name, kind=client, attributes=attrs)
                recent[0] = span.get_span_context()
                token = attach(in_context(span))
                began = time.perf_counter()
                try:
                    return await call(*args)
                finally:
                    histogram.record(time.perf_counter() - began, metric)
                    span.end()
                    detach(token)

            return wrapper

        core = kv._core
        send = core.raw_send
        batch_name, batch_attrs, batch_metric = calls["BatchGetItem"]

        async def raw_send(action: str, request: dict[str, Any]) -> dict[str, Any]:
            started, batch, token = time.time_ns(), None, None
            if action == "BatchGetItem":
                keys = len(request["RequestItems"][config.table]["Keys"])
                batch = tracer.start_span(
                    batch_name,
                    kind=client,
                    attributes={**batch_attrs, "db.operation.batch.size": keys},
                    links=[Link(recent[0]) for _ in range(keys)],
                )
                token = attach(in_context(batch))
                began = time.perf_counter()
            parent = current()
            try:
                response: dict[str, Any] = await send(action, request)
            finally:
                constant = attempts.get(action)
                if constant is None:
                    constant = attempts[action] = attempt_attrs(action)
                attrs = dict(constant)
                tracer.start_span(
                    f"DynamoDB.{action}", parent, client, attrs, start_time=started
                ).end()
                capacity.add(1.0, units.get(action, units["UpdateItem"]))  # else a write
                if batch is not None and token is not None:
                    histogram.record(time.perf_counter() - began, batch_metric)
                    batch.end()
                    detach(token)
            return response

        core.raw_send = raw_send
        contender.get = traced("GetItem", contender.get)
        contender.set = traced("UpdateItem", contender.set)

    def shutdown(self) -> None:
        for provider in self.providers:
            provider.shutdown()


def serve(
    name: str, url: str, port: int, diagnose: bool = False, experiment: str | None = None
) -> None:
    """Run one contender's app on 127.0.0.1:`port` until terminated."""
    import uvicorn
    from contenders import CONTENDERS as MAKERS

    if name in VARIANTS or name == FLOOR:
        from contenders import Aiodynkv

        contender: Any = Aiodynkv(url, **VARIANTS.get(name, {}))
        contender.floor = name == FLOOR
    else:
        contender = MAKERS[name](url)
    contender.load()
    if getattr(contender, "sdk", False):
        from tracing import sdk_providers

        contender.tracer_provider, contender.meter_provider = sdk_providers()
    probe = None
    if diagnose:
        probe = Probe(coalescer=name.startswith("aiodynkv"), experiment=experiment)
    config = uvicorn.Config(
        build_app(contender, probe),
        host="127.0.0.1",
        port=port,
        workers=1,
        access_log=False,
        log_level="warning",
        lifespan="on",
    )
    uvicorn.Server(config).run()


# -- the diagnosis (``--diagnose``): where the tail comes from -------------------------------

_CELL: Any = None  # the request's cell (a ContextVar, made by the first Probe)
_BATCH: Any = None  # the flush's batch number (a ContextVar)


class Probe:
    """What one process saw: GC pauses, event-loop lag, and in an app its requests.

    Timestamps are ``time.perf_counter()`` (CLOCK_MONOTONIC, the same in every process
    here), so the load generator can lay its slowest requests over the app's events.
    Per request of an app: arrival at the ASGI app to its last body message sent, split
    at the coalesced read (its waiter registered, its batch resolved); per coalescer
    flush: distinct keys and waiters.
    """

    LAG_TICK = 0.002  # the loop-lag probe's period, s

    def __init__(self, *, coalescer: bool = False, experiment: str | None = None) -> None:
        import contextlib
        import contextvars
        import gc

        self.experiment = experiment
        self._stack = contextlib.AsyncExitStack()
        global _CELL, _BATCH  # noqa: PLW0603 (one probe per process, made at start)
        _CELL = _CELL or contextvars.ContextVar("service_cell")
        _BATCH = _BATCH or contextvars.ContextVar("service_batch")
        self._gc_began = 0.0
        self.reset()
        gc.callbacks.append(self._gc)
        if coalescer:
            self._patch_coalescer()

    def reset(self) -> None:
        # Flat arrays of doubles: what the probe keeps adds nothing for the GC to scan.
        self.gcs = array("d")  # (start, seconds, generation) triples
        self.lags = array("d")  # (tick due, seconds late) pairs
        self.requests = array("d")  # (start, total, pre, wait, post, batch) sextuples
        self.batches = array("d")  # (flush, keys, waiters) triples
        self.solo = 0
        self.cpu = time.process_time()
        self.began = time.perf_counter()

    def take(self) -> dict[str, Any]:
        """Everything seen since the last `take`, and start afresh."""

        def rows(values: array[float], width: int) -> list[list[float]]:
            return [list(values[i : i + width]) for i in range(0, len(values), width)]

        out = {
            "gcs": rows(self.gcs, 3),
            "lags": rows(self.lags, 2),
            "requests": rows(self.requests, 6),
            "batches": rows(self.batches, 3),
            "solo": self.solo,
            "cpu_s": time.process_time() - self.cpu,
            "wall_s": time.perf_counter() - self.began,
        }
        import gc

        # What one full collection of this process's heap costs, after the run.
        out["heap_objects"] = len(gc.get_objects())
        began = time.process_time()
        gc.collect()
        out["full_gc_cpu_ms"] = (time.process_time() - began) * 1e3
        self.reset()
        return out

    async def start_experiment(self, contender: Any) -> None:
        """``gc-freeze``: freeze the heap once the client is open; ``ballast``: the
        aiodynamo app also holds an idle aioboto3 DynamoDB client, as aiodynkv's does."""
        import gc

        if self.experiment == "ballast" and contender.name.startswith("aiodynamo"):
            import aioboto3
            from contenders import REGION

            session = aioboto3.Session()
            await self._stack.enter_async_context(
                session.client(
                    "dynamodb",
                    region_name=REGION,
                    endpoint_url=contender.url,
                    aws_access_key_id="x",
                    aws_secret_access_key="x",  # noqa: S106 (a local stub's dummy)
                )
            )
        elif self.experiment == "gc-freeze":
            gc.collect()
            gc.freeze()
        elif self.experiment == "drop-client" and contender.name.startswith("aiodynkv"):
            await _drop_client(contender)

    async def stop_experiment(self) -> None:
        await self._stack.aclose()

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_began = now
        else:
            self.gcs.extend((self._gc_began, now - self._gc_began, info["generation"]))

    async def watch_loop(self) -> None:
        """Loop lag: how late a timer of LAG_TICK fires, every tick."""
        tick = self.LAG_TICK
        while True:
            due = time.perf_counter() + tick
            await asyncio.sleep(tick)
            self.lags.extend((due, time.perf_counter() - due))

    def wrap(self, app: Any) -> Any:
        """An ASGI app around `app` that times each ``/items`` request."""
        cell_var, probe = _CELL, self

        async def timed(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or not scope["path"].startswith("/items/"):
                await app(scope, receive, send)
                return
            cell: list[Any] = [time.perf_counter(), None]
            token = cell_var.set(cell)

            async def sent(message: Any) -> None:
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    now = time.perf_counter()
                    began, waiter = cell
                    if waiter is not None and waiter.resolved is not None:
                        probe.requests.extend(
                            (
                                began,
                                now - began,
                                waiter.born - began,
                                waiter.resolved - waiter.born,
                                now - waiter.resolved,
                                waiter.batch,
                            )
                        )
                    else:
                        probe.requests.extend((began, now - began, -1.0, -1.0, -1.0, -1.0))
                await send(message)

            try:
                await app(scope, receive, sent)
            finally:
                cell_var.reset(token)

        return timed

    def _patch_coalescer(self) -> None:
        """Record each coalesced waiter's registration and resolution, and each flush."""
        from aiodynkv import _coalesce

        probe, cell_var, batch_var = self, _CELL, _BATCH
        base = _coalesce._Waiter

        class Waiter(base):  # type: ignore[misc, valid-type]
            __slots__ = ("batch", "born", "resolved")

            def __init__(self, *args: Any) -> None:
                super().__init__(*args)
                self.born = time.perf_counter()
                self.resolved: float | None = None
                self.batch = -1
                cell = cell_var.get(None)
                if cell is not None:
                    cell[1] = self

        resolve = _coalesce._resolve

        def resolved(waiters: list[Any], item: Any) -> None:
            now, batch = time.perf_counter(), batch_var.get(-1)
            for waiter in waiters:
                waiter.resolved, waiter.batch = now, batch
            resolve(waiters, item)

        fetch = _coalesce.ReadCoalescer._fetch

        async def fetched(self: Any, pending: dict[str, list[Any]]) -> None:
            batch_var.set(len(probe.batches) // 3)
            waiters = sum(len(w) for w in pending.values())
            probe.batches.extend((time.perf_counter(), len(pending), waiters))
            await fetch(self, pending)

        alone = _coalesce.ReadCoalescer._get_alone

        async def solo(self: Any, stored: str, waiter: Any) -> Any:
            probe.solo += 1
            return await alone(self, stored, waiter)

        _coalesce._Waiter = Waiter  # type: ignore[misc, assignment]
        _coalesce._resolve = resolved
        _coalesce.ReadCoalescer._fetch = fetched  # type: ignore[method-assign]
        _coalesce.ReadCoalescer._get_alone = solo  # type: ignore[method-assign]


async def _drop_client(contender: Any) -> None:
    """An experiment: the aiodynkv app's heap without the store's resident aioboto3 client.

    The lean transport learns its endpoint on its first request and its credentials from
    the client; after one read, the credentials are frozen (the stub's are static) and
    the client is closed and let go with the process-wide botocore loader that caches the
    parsed service model, so that only what the lean path itself needs stays.
    """
    import contextlib
    import gc

    await contender.get(key_of(0))
    core = contender.kv._core
    transport = core.transport
    frozen = await transport._credentials.get_frozen_credentials()

    class Static:
        async def get_frozen_credentials(self) -> Any:
            return frozen

    transport._credentials = Static()
    before = len(gc.get_objects())
    old = core._stack
    callbacks = old._exit_callbacks
    keep = [
        cb
        for cb in callbacks
        if getattr(getattr(cb[1], "__wrapped__", cb[1]), "__self__", None) is transport
    ]
    for cb in keep:
        callbacks.remove(cb)
    await old.aclose()  # the client's exit, and whatever else the store entered at open
    core._stack = contextlib.AsyncExitStack()
    core._stack.push_async_callback(transport.aclose)
    core.client = None
    from aiodynkv._transport.botocore import shared_loader

    shared_loader.cache_clear()  # the parsed service model and endpoint rules it keeps
    gc.collect()
    print(f"drop-client: {before} -> {len(gc.get_objects())} objects", file=sys.stderr, flush=True)


# -- the load generator ----------------------------------------------------------------------


async def load(
    base: str,
    workload: str,
    seconds: float,
    session: Any,
    seed: int,
    trace: list[tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """Keep CONCURRENCY requests in flight for `seconds`; latencies and counts.

    With `trace`, each answered request's (start, latency) is appended to it.
    """
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
                if trace is not None:
                    trace.append((began, latencies[-1]))
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
        freeze_heap()
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
    url: str, names: list[str], diagnose: bool = False, experiment: str | None = None
) -> tuple[dict[str, str], list[subprocess.Popen[bytes]]]:
    from run import free_port

    procs: list[subprocess.Popen[bytes]] = []
    servers: dict[str, str] = {}
    for name in names:
        port = free_port()
        cmd = [sys.executable, __file__, "--serve", name, "--url", url, "--port", str(port)]
        cmd += ["--diagnose"] if diagnose else []
        cmd += ["--experiment", experiment] if experiment else []
        # stdout is the report's (run.py reads it): the apps print elsewhere.
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL))
        servers[name] = f"http://127.0.0.1:{port}"
    return servers, procs


async def wait_ready(
    servers: dict[str, str],
    procs: list[subprocess.Popen[bytes]],
    ping: Callable[[Any, str], Awaitable[Any]] | None = None,
) -> None:
    """Wait (at most 60 s) until every app answers `ping` (default: its CPU route)."""
    import aiohttp

    ping = ping or server_cpu
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        for (name, base), proc in zip(servers.items(), procs, strict=True):
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"the {name} app exited with {proc.returncode}")
                try:
                    await ping(session, base)
                    break
                except aiohttp.ClientError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"the {name} app did not start within 60 s") from None
                    await asyncio.sleep(0.2)


async def diagnose_drive(
    servers: dict[str, str], workloads: list[str], seconds: float, warmup: float, log: Any
) -> dict[str, Any]:
    """One run per (workload, app), every process probed; the figures of `tail_report`."""
    import aiohttp

    probe = Probe()
    lag = asyncio.ensure_future(probe.watch_loop())
    out: dict[str, Any] = {}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY + 4)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            for base in servers.values():
                for workload in workloads:
                    await load(base, workload, warmup, session, seed=0)
            freeze_heap()
            for workload in workloads:
                for name, base in servers.items():
                    async with session.get(f"{base}/_diag") as response:
                        await response.read()
                    trace: list[tuple[float, float]] = []
                    probe.reset()
                    result = await load(base, workload, seconds, session, seed=1, trace=trace)
                    mine = probe.take()
                    async with session.get(f"{base}/_diag") as response:
                        app = await response.json()
                    figures = tail_figures(result, trace, mine, app)
                    figures["load"] = os.getloadavg()[0]
                    out.setdefault(workload, {})[name] = figures
                    log(f"diagnosed {workload} {name}: {json.dumps(figures)}")
    finally:
        lag.cancel()
    return out


def freeze_heap() -> None:
    """Keep the load generator's startup heap out of its full collections (`gc.freeze`).

    A full collection of this process's heap pauses it for tens of ms, and every
    request in flight would carry that pause into its latency.
    """
    import gc

    gc.collect()
    gc.freeze()


def _q(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _overlap(spans: list[tuple[float, float]], began: float, ended: float) -> float:
    """Seconds of [began, ended] covered by the (start, length) `spans`."""
    total = 0.0
    for start, length in spans:
        total += max(0.0, min(ended, start + length) - max(began, start))
    return total


def tail_figures(
    result: dict[str, Any],
    trace: list[tuple[float, float]],
    mine: dict[str, Any],
    app: dict[str, Any],
) -> dict[str, Any]:
    """Where the slowest 1 % of one run's requests spent their time (ms unless said)."""
    ms = 1e3
    p99 = _q([lat for _, lat in trace], 0.99)
    slow = [(b, lat) for b, lat in trace if lat >= p99]
    # Pauses and lag spikes (late by over 5 ms) of the app and of the load generator.
    app_gc = [(start, length) for start, length, _ in app["gcs"]]
    gen_gc = [(start, length) for start, length, _ in mine["gcs"]]
    app_lag = [(due, late) for due, late in app["lags"] if late > 0.005]
    gen_lag = [(due, late) for due, late in mine["lags"] if late > 0.005]

    def share(spans: list[tuple[float, float]]) -> float:
        # Mean fraction of a slow request's latency covered by these spans.
        if not slow:
            return float("nan")
        return statistics.mean(_overlap(spans, b, b + lat) / lat for b, lat in slow)

    requests = app["requests"]
    coalesced = [r for r in requests if r[2] >= 0]
    last_per_batch: dict[float, float] = {}
    for r in coalesced:
        last_per_batch[r[5]] = max(last_per_batch.get(r[5], 0.0), r[4])
    batches = app["batches"]
    gen2 = [length for _, length, gen in app["gcs"] if gen == 2]
    return {
        "rps": result["rps"],
        "client_p50": result["p50_ms"],
        "client_p99": result["p99_ms"],
        "loadgen_cpu": mine["cpu_s"] / mine["wall_s"],
        "app_cpu": app["cpu_s"] / app["wall_s"],
        "app_gc_per_s": len(app["gcs"]) / app["wall_s"],
        "app_gc_ms_per_s": sum(length for _, length, _ in app["gcs"]) * ms / app["wall_s"],
        "app_gc_max": max((length for _, length, _ in app["gcs"]), default=0.0) * ms,
        "app_gen2": len(gen2),
        "app_gen2_max": max(gen2, default=0.0) * ms,
        "app_heap_objects": app["heap_objects"],
        "app_full_gc_cpu_ms": app["full_gc_cpu_ms"],
        "loadgen_gc_ms_per_s": sum(length for _, length, _ in mine["gcs"]) * ms / mine["wall_s"],
        "loadgen_gc_max": max((length for _, length, _ in mine["gcs"]), default=0.0) * ms,
        "app_lag_p50": _q([late for _, late in app["lags"]], 0.5) * ms,
        "app_lag_p99": _q([late for _, late in app["lags"]], 0.99) * ms,
        "app_lag_max": max((late for _, late in app["lags"]), default=0.0) * ms,
        "loadgen_lag_p99": _q([late for _, late in mine["lags"]], 0.99) * ms,
        "loadgen_lag_max": max((late for _, late in mine["lags"]), default=0.0) * ms,
        "server_p50": _q([r[1] for r in requests], 0.5) * ms,
        "server_p99": _q([r[1] for r in requests], 0.99) * ms,
        "pre_p99": _q([r[2] for r in coalesced], 0.99) * ms,
        "wait_p50": _q([r[3] for r in coalesced], 0.5) * ms,
        "wait_p99": _q([r[3] for r in coalesced], 0.99) * ms,
        "post_p50": _q([r[4] for r in coalesced], 0.5) * ms,
        "post_p99": _q([r[4] for r in coalesced], 0.99) * ms,
        "last_post_p99": _q(list(last_per_batch.values()), 0.99) * ms,
        "batches_per_s": len(batches) / app["wall_s"],
        "batch_keys_mean": statistics.mean(k for _, k, _ in batches) if batches else 0.0,
        "batch_keys_max": max((k for _, k, _ in batches), default=0),
        "solo_per_s": app["solo"] / app["wall_s"],
        "slow_in_app_gc": share(app_gc),
        "slow_in_app_lag": share(app_lag),
        "slow_in_loadgen_gc": share(gen_gc),
        "slow_in_loadgen_lag": share(gen_lag),
    }


def tail_report(diag: dict[str, Any], seconds: float) -> list[str]:
    """The diagnosis as Markdown: one row per (workload, app)."""
    lines = [
        f"Tail diagnosis: one run of {seconds:g} s per (workload, app), every process probed "
        "(GC callbacks, a 2 ms loop-lag timer, each request timed inside the app). "
        "*server*: ASGI call to last body message; *wait*: coalesced read registered to "
        "its batch resolved; *post*: resolved to response sent (*last*: the batch's last "
        "waiter); *slow in ...*: mean share of the slowest 1 % requests' latency covered "
        "by GC pauses or loop stalls (> 5 ms late) of the app or of the load generator.",
        "",
        "| workload | app | load | req/s | client p50 · p99 | server p50 · p99 "
        "| wait p50 · p99 | post p50 · p99 · last p99 | batches/s · keys mean · max "
        "| app GC ms/s · max · gen2 (max) | app heap objects · a full collection, CPU ms "
        "| app lag p50 · p99 · max | loadgen CPU · GC max "
        "· lag p99 | slow in app GC · app lag · loadgen GC · loadgen lag |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for workload, by_app in diag.items():
        for name, f in by_app.items():
            lines.append(
                f"| {WORKLOADS[workload]} | {name} | {f['load']:.2f} | {fmt(f['rps'])} "
                f"| {fmt(f['client_p50'], 1)} · {fmt(f['client_p99'], 1)} "
                f"| {fmt(f['server_p50'], 1)} · {fmt(f['server_p99'], 1)} "
                f"| {fmt(f['wait_p50'], 1)} · {fmt(f['wait_p99'], 1)} "
                f"| {fmt(f['post_p50'], 1)} · {fmt(f['post_p99'], 1)} · "
                f"{fmt(f['last_post_p99'], 1)} "
                f"| {fmt(f['batches_per_s'])} · {fmt(f['batch_keys_mean'], 1)} · "
                f"{f['batch_keys_max']} "
                f"| {fmt(f['app_gc_ms_per_s'], 1)} · {fmt(f['app_gc_max'], 1)} · "
                f"{f['app_gen2']} ({fmt(f['app_gen2_max'], 1)}) "
                f"| {fmt(f['app_heap_objects'])} · {fmt(f['app_full_gc_cpu_ms'], 1)} "
                f"| {fmt(f['app_lag_p50'], 1)} · {fmt(f['app_lag_p99'], 1)} · "
                f"{fmt(f['app_lag_max'], 1)} "
                f"| {fmt(f['loadgen_cpu'], 2)} · {fmt(f['loadgen_gc_max'], 1)} · "
                f"{fmt(f['loadgen_lag_p99'], 1)} "
                f"| {fmt(f['slow_in_app_gc'], 2)} · {fmt(f['slow_in_app_lag'], 2)} · "
                f"{fmt(f['slow_in_loadgen_gc'], 2)} · {fmt(f['slow_in_loadgen_lag'], 2)} |"
            )
    return lines


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


# -- the report ----------------------------------------------------------------------------


def summarize(runs: dict[str, Any]) -> dict[str, Any]:
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

        def paired(a: str, b: str, key: str, by_name: dict[str, Any] = by_name) -> list[Any]:
            x = {r["round"]: r[key] for r in by_name.get(a, [])}
            y = {r["round"]: r[key] for r in by_name.get(b, [])}
            return [(x[k], y[k]) for k in sorted(x.keys() & y.keys())]

        def per_round(a: str, b: str, key: str) -> Any:
            ratios = [x / y for x, y in paired(a, b, key) if y]
            return statistics.median(ratios) if ratios else None

        def per_round_diff(a: str, b: str, key: str) -> Any:
            diffs = [x - y for x, y in paired(a, b, key)]
            return statistics.median(diffs) if diffs else None

        out[workload] = {
            "rows": rows,
            "traced_rps": per_round("aiodynkv-sdk", "aiodynkv", "rps"),
            "traced_cpu": per_round("aiodynkv-sdk", "aiodynkv", "cpu_ms_per_1k"),
            "p99_vs_aiodynamo": per_round("aiodynkv", "aiodynamo", "p99_ms"),
            "p50_vs_aiodynamo": per_round("aiodynkv", "aiodynamo", "p50_ms"),
            # The floor: the untraced app plus the SDK's own work (`SdkFloor`), paired.
            "traced_floor": per_round(FLOOR, "aiodynkv", "rps"),
            "traced_vs_floor": per_round("aiodynkv-sdk", FLOOR, "rps"),
            # ms per 1,000 requests = µs per request
            "sdk_us": per_round_diff(FLOOR, "aiodynkv", "cpu_ms_per_1k"),
            "own_us": per_round_diff("aiodynkv-sdk", FLOOR, "cpu_ms_per_1k"),
            "load": max((r["load"] for r in rows.values()), default=0.0),
        }
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
        "| traced / floor req/s | CPU µs per request: the SDK's work · aiodynkv's own "
        "tracing code | traced / untraced server CPU "
        "| aiodynkv p99 / aiodynamo p99 (target ≤ 1.00) | aiodynkv p50 / aiodynamo p50 "
        "| backend requests per 1,000: aiodynkv, traced, aiodynamo |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for workload, s in summary.items():
        backend = " · ".join(
            fmt(s["rows"].get(n, {}).get("backend_per_1k"))
            for n in ("aiodynkv", "aiodynkv-sdk", "aiodynamo")
        )
        lines.append(
            f"| {WORKLOADS[workload]} | {fmt(s['traced_rps'], 2)} "
            f"| {fmt(s.get('traced_floor'), 2)} | {fmt(s.get('traced_vs_floor'), 2)} "
            f"| {fmt(s.get('sdk_us'))} · {fmt(s.get('own_us'))} "
            f"| {fmt(s['traced_cpu'], 2)} "
            f"| {fmt(s['p99_vs_aiodynamo'], 2)} | {fmt(s['p50_vs_aiodynamo'], 2)} | {backend} |"
        )
    lines += [
        "",
        "*its floor*: the traced/untraced ratio a traced app would keep if aiodynkv's own "
        "tracing code cost nothing, measured: the req/s of a third app, the untraced store "
        "with the SDK's own work for the same telemetry made around each call and each "
        "backend request on the traced app's SDK configuration (the call's span, current "
        "while the call runs, with its attributes and one histogram point; per backend "
        "request an attempt span and a capacity point, and for a coalesced BatchGetItem its "
        "span linked to every caller and its point), paired with the untraced app in each "
        "round. *The SDK's work*: that app's server CPU per request minus the untraced "
        "app's; *aiodynkv's own tracing code*: the traced app's minus that app's.",
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


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seeded_stub() -> Any:
    """A stub with `KEYS` items, answering after `LATENCY_MS` (stop it when done)."""
    from run import configure_stub, run_worker, start_stub

    stub = start_stub(3600)
    try:
        seeded = run_worker(stub, "seed", "aiodynkv", {"keys": KEYS})
        if "error" in seeded:
            raise SystemExit(f"seeding failed: {seeded['error']}")
        configure_stub(stub, LATENCY_MS)
    except BaseException:
        stub.stop()
        raise
    return stub


def diagnose(options: argparse.Namespace) -> None:
    """``--diagnose``: probed runs of the named apps, and the tail table."""
    names = options.apps.split(",")
    workloads = options.workloads.split(",")
    seconds = options.seconds or 10.0
    stub = seeded_stub()
    try:
        servers, procs = start_servers(
            stub.url, names, diagnose=True, experiment=options.experiment
        )
        try:
            asyncio.run(wait_ready(servers, procs))
            diag = asyncio.run(diagnose_drive(servers, workloads, seconds, 2.0, _log))
        finally:
            stop(procs)
    finally:
        stub.stop()
    print("\n".join(tail_report(diag, seconds)))
    if options.json:
        options.json.write_text(json.dumps(diag, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of 3 s per cell")
    parser.add_argument("--rounds", type=int, help="rounds (default 5, quick 1)")
    parser.add_argument("--seconds", type=float, help="seconds per cell (default 9, quick 3)")
    parser.add_argument("--json", type=Path, help="also write the raw runs here")
    parser.add_argument(
        "--tradeoff-seconds",
        type=float,
        help="seconds per cell of the coalescing trade-off (default 10, quick 3; 0: skip it)",
    )
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="instead of the benchmark: one probed run per (workload, app) and where the "
        "slowest 1 %% of requests spent their time (--seconds, default 10)",
    )
    parser.add_argument(
        "--apps",
        default="aiodynkv,aiodynamo",
        help="with --diagnose: the apps, comma-separated (default aiodynkv,aiodynamo)",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help="with --diagnose: the workloads, comma-separated (default all)",
    )
    parser.add_argument(
        "--experiment",
        choices=["gc-freeze", "ballast", "drop-client"],
        help="with --diagnose: gc-freeze: each app freezes its heap once its client is "
        "open (the tail without full collections of the startup heap); ballast: the "
        "aiodynamo app also holds an idle aioboto3 DynamoDB client, as aiodynkv's does; "
        "drop-client: the aiodynkv apps let their store's aioboto3 client go after open",
    )
    parser.add_argument(
        "--serve", choices=list(dict.fromkeys(CONTENDERS + TRADEOFF)), help=argparse.SUPPRESS
    )
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve(options.serve, options.url, options.port, options.diagnose, options.experiment)
        return
    if options.diagnose:
        diagnose(options)
        return
    # Many short rounds rather than a few long ones: a cell's p99 is its p50 plus the
    # app's full-collection pause (about two a second, each holding every request in
    # flight), so 9 s already sees over a dozen; what moves a paired ratio is the
    # machine's load during one round, and a median of five pairs outvotes it.
    rounds = options.rounds or (1 if options.quick else 5)
    seconds = options.seconds or (3.0 if options.quick else 9.0)
    warmup = 1.0 if options.quick else 3.0
    tradeoff_seconds = options.tradeoff_seconds
    if tradeoff_seconds is None:
        tradeoff_seconds = 3.0 if options.quick else 10.0
    began = time.monotonic()
    stub = seeded_stub()
    try:
        runs, tradeoff = run(stub.url, rounds, seconds, warmup, _log, tradeoff_seconds or None)
    finally:
        stub.stop()
    summary = summarize(runs)
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
