"""What tracing costs: one process, a store with an OpenTelemetry SDK and one without, paired.

    python benchmarks/tracing.py [--quick] [--url http://127.0.0.1:PORT] [--json FILE]

Starts the stub (unless ``--url`` names one) and opens two aiodynkv stores on it in one
process: *untraced* (no SDK: the API's no-op providers) and *traced* (an SDK configured
as applications do: a `TracerProvider` with a `BatchSpanProcessor` whose exporter drops
the spans, a `MeterProvider` with a `PeriodicExportingMetricReader` whose exporter drops
the points). Blocks of sequential calls alternate between the two, the order flipping
every round, and each block's figure is its process CPU time per call, so that both sides
of a ratio saw the machine at nearly the same moment. The telemetry alone (one
``with tel.operation(...)`` per call, no request) is measured the same way.

Prints a Markdown table: CPU µs per call of each side (medians) and the median of the
per-round ratios traced / untraced, with the 1-minute load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TABLE = "bench"
KEYS = 2_000
NOISY_LOAD = 1.0


class _DropSpans:
    """A span exporter that drops what it is given."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        del spans
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        del timeout_millis
        return True


def sdk_providers() -> tuple[Any, Any]:
    """A tracer and a meter provider set up as an application sets them up."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        MetricExporter,
        MetricExportResult,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    class DropMetrics(MetricExporter):
        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **_: Any) -> Any:
            del metrics_data, timeout_millis
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            del timeout_millis
            return True

        def shutdown(self, timeout_millis: float = 30_000, **_: Any) -> None:
            del timeout_millis

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_DropSpans()))  # type: ignore[arg-type]
    reader = PeriodicExportingMetricReader(DropMetrics(), export_interval_millis=60_000)
    return tracer_provider, MeterProvider(metric_readers=[reader])


async def block(call: Callable[[int], Awaitable[Any]], start: int, ops: int) -> float:
    """CPU µs per call of `ops` sequential calls."""
    began = time.process_time()
    for i in range(start, start + ops):
        await call(i % KEYS)
    return (time.process_time() - began) / ops * 1e6


def telemetry_block(tel: Any, ops: int) -> float:
    began = time.process_time()
    response = {"ResponseMetadata": {"RetryAttempts": 0}}
    for _ in range(ops):
        with tel.operation("get", "GetItem", "key:000001") as op:
            op.observe(response)
    return (time.process_time() - began) / ops * 1e6


def paired(samples: dict[str, list[float]]) -> dict[str, Any]:
    traced, untraced = samples["traced"], samples["untraced"]
    ratios = [a / b for a, b in zip(traced, untraced, strict=True) if b]
    return {
        "traced_us": statistics.median(traced),
        "untraced_us": statistics.median(untraced),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "rounds": len(ratios),
    }


async def measure(url: str, rounds: int, ops: int) -> dict[str, Any]:
    from aiodynkv import AsyncDynamoKV
    from aiodynkv._telemetry import Telemetry

    tracer_provider, meter_provider = sdk_providers()
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
    results: dict[str, Any] = {}
    try:
        for kv in stores.values():
            await kv.open()
        kv = stores["untraced"]
        for i in range(KEYS):
            await kv.set(f"key:{i:06d}", f"{i:06d}".ljust(100, "x"))
        calls: dict[str, dict[str, Callable[[int], Awaitable[Any]]]] = {}
        for name, store in stores.items():

            async def get(i: int, store: AsyncDynamoKV = store) -> Any:
                return await store.get(f"key:{i:06d}", None)

            async def set_(i: int, store: AsyncDynamoKV = store) -> Any:
                return await store.set(f"key:{i:06d}", f"{i:06d}".ljust(100, "y"))

            calls[name] = {"get": get, "set": set_}
        tels = {name: Telemetry(store.config) for name, store in stores.items()}
        order = ["untraced", "traced"]
        for warm in order:  # warm-up: imports, connections, caches
            for op in ("get", "set"):
                await block(calls[warm][op], 0, max(50, ops // 4))
            telemetry_block(tels[warm], 2_000)
        samples: dict[str, dict[str, list[float]]] = {
            what: {name: [] for name in order} for what in ("get", "set", "telemetry")
        }
        for round_ in range(rounds):
            turn = order if round_ % 2 == 0 else order[::-1]
            for what in ("get", "set"):
                for name in turn:
                    samples[what][name].append(await block(calls[name][what], round_ * ops, ops))
            for name in turn:
                samples["telemetry"][name].append(telemetry_block(tels[name], ops * 10))
        results = {what: paired(s) for what, s in samples.items()}
    finally:
        for kv in stores.values():
            await kv.aclose()
        tracer_provider.shutdown()
        meter_provider.shutdown()
    return results


def table(results: dict[str, Any], load: tuple[float, float]) -> list[str]:
    noisy = max(load) > NOISY_LOAD
    lines = [
        "| call | untraced CPU µs | traced CPU µs | traced / untraced (median of rounds) "
        "| range | rounds |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    names = {"get": "`get`", "set": "`set`", "telemetry": "telemetry alone (no request)"}
    for what, r in results.items():
        lines.append(
            f"| {names[what]} | {r['untraced_us']:.1f} | {r['traced_us']:.1f} "
            f"| {r['ratio']:.2f}x | {r['ratio_min']:.2f} to {r['ratio_max']:.2f} | {r['rounds']} |"
        )
    lines += [
        "",
        f"1-minute load average {load[0]:.2f} at the start, {load[1]:.2f} at the end"
        + (" (**noisy**: above 1.0 on 2 cores)." if noisy else "."),
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls")
    parser.add_argument("--url", help="a running stub (else one is started)")
    parser.add_argument("--rounds", type=int, help="A/B rounds (default 12, quick 6)")
    parser.add_argument("--ops", type=int, help="calls per block (default 400, quick 200)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    options = parser.parse_args()
    rounds = options.rounds or (6 if options.quick else 12)
    ops = options.ops or (200 if options.quick else 400)
    stub = None
    url = options.url
    if url is None:
        from run import start_stub

        stub = start_stub(600)
        url = stub.url
    try:
        load_start = os.getloadavg()[0]
        results = asyncio.run(measure(url, rounds, ops))
        load_end = os.getloadavg()[0]
    finally:
        if stub is not None:
            stub.stop()
    print("\n".join(table(results, (load_start, load_end))))
    if options.json:
        options.json.write_text(json.dumps({"results": results, "load": [load_start, load_end]}))


if __name__ == "__main__":
    main()
