"""What tracing costs: one process, a store with an OpenTelemetry SDK and one without, paired.

    python benchmarks/tracing.py [--quick] [--botocore] [--url http://127.0.0.1:PORT] [--json FILE]

Starts the stub (unless ``--url`` names one) and opens two aiodynkv stores on it in one
process: *untraced* (no SDK: the API's no-op providers) and *traced* (an SDK configured
as applications do: a `TracerProvider` with a `BatchSpanProcessor` whose exporter drops
the spans, a `MeterProvider` with a `PeriodicExportingMetricReader` whose exporter drops
the points). A third side, *floor*, is the untraced call followed by the SDK's own work
for the telemetry a traced call promises (the call's span and its attributes, one HTTP
attempt span and its attributes, one histogram point), made directly on the same
providers: what any code emitting that telemetry pays the SDK. Blocks of sequential
calls rotate between the sides, the order changing every round, and each block's figure
is its process CPU time per call, so that the sides of a ratio saw the machine at nearly
the same moment. The telemetry alone (one ``with tel.operation(...)`` per call, no
request) is measured the same way.

With ``--botocore``: a store with ``transport="botocore"`` and the raw aioboto3 contender
of ``run.py`` (its own client, ``get_item`` with ``ConsistentRead``), paired the same way
over three times the rounds;
a third side, *floor*, is the raw client's ``get_item`` followed by what aiodynkv must add
to it whatever its code (`botocore_floor`: validate and namespace the key, build the
request dict, open and close the call's telemetry with no SDK, check the item's expiry
and decode its value), made directly with aiodynkv's own functions: the ratio the
botocore transport would reach if everything else it does cost nothing.

``--json FILE`` writes every figure.

Prints a Markdown table: CPU µs per call of each side (medians) and the median of the
per-round ratios, with the 1-minute load average.
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


def paired(samples: dict[str, list[float]], side: str, base: str) -> dict[str, Any]:
    """Medians of two sides and the median of their per-round ratios `side` / `base`."""
    ratios = [a / b for a, b in zip(samples[side], samples[base], strict=True) if b]
    return {
        "side": side,
        "base": base,
        "side_us": statistics.median(samples[side]),
        "base_us": statistics.median(samples[base]),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "rounds": len(ratios),
    }


def sdk_floor(
    tracer_provider: Any,
    meter_provider: Any,
    tel: Any,
    url: str,
    *,
    call: bool = True,
    attempt: bool = True,
) -> Callable[[], None]:
    """The SDK work of the telemetry a traced call promises, with nothing of aiodynkv's.

    The call's span with the attributes aiodynkv gives it, a child span with the
    attributes of a `DynamoDB.GetItem` attempt, one point of the duration histogram with
    its attributes: what any library emitting the same telemetry pays the SDK.
    ``call=False`` leaves out the call's span and point (the attempt span alone);
    ``attempt=False`` leaves out the attempt span.
    """
    from opentelemetry.trace import SpanKind, set_span_in_context

    from aiodynkv._telemetry import DURATION_BUCKETS

    tracer = tracer_provider.get_tracer("floor")
    histogram = meter_provider.get_meter("floor").create_histogram(
        "floor.duration", unit="s", explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS)
    )
    call_attrs = dict(tel.span_attributes("get", "GetItem"))
    metric_attrs = dict(tel.metric_attributes("GetItem"))
    http_attrs = {
        "rpc.system": "aws-api",
        "rpc.service": "DynamoDB",
        "rpc.method": "GetItem",
        "cloud.region": "us-east-1",
        "server.address": "127.0.0.1",
        "server.port": int(url.rsplit(":", 1)[1]),
        "db.system": "dynamodb",
        "db.operation": "GetItem",
        "net.peer.name": url.split("//", 1)[1],
        "aws.dynamodb.table_names": (TABLE,),
        "aws.dynamodb.consistent_read": True,
        "aws.request_id": "0123456789abcdef",
        "retry_attempts": 0,
        "http.status_code": 200,
        "aws.dynamodb.consumed_capacity": ('{"TableName": "bench", "CapacityUnits": 1.0}',),
    }
    client = SpanKind.CLIENT

    def work() -> None:
        span = tracer.start_span("GetItem bench", kind=client, attributes=call_attrs)
        parent = set_span_in_context(span)
        tracer.start_span("DynamoDB.GetItem", parent, client, http_attrs).end()
        histogram.record(0.0005, metric_attrs, context=parent)  # its span current: exemplars
        span.end()

    def call_only() -> None:
        span = tracer.start_span("GetItem bench", kind=client, attributes=call_attrs)
        histogram.record(0.0005, metric_attrs, context=set_span_in_context(span))
        span.end()

    def attempt_only() -> None:
        tracer.start_span("DynamoDB.GetItem", None, client, http_attrs).end()

    if call and attempt:
        return work
    return call_only if call else attempt_only


def botocore_floor(store: Any) -> Callable[[str, Any], None]:
    """What aiodynkv adds to a raw ``get_item`` that no implementation can skip.

    For one `get`: the key validated and namespaced, the GetItem request dict built, the
    call's telemetry opened and closed (no SDK: the API's no-op providers), the item's
    expiry checked and its value decoded, each with aiodynkv's own function.
    """
    from aiodynkv import _codec
    from aiodynkv import _requests as requests
    from aiodynkv._telemetry import Telemetry

    config = store.config
    tel = Telemetry(config)
    encode = store._keys.encode
    response = {"ResponseMetadata": {"RetryAttempts": 0}}

    def work(key: str, value: Any) -> None:
        stored = encode(key, "get", TABLE)
        with tel.operation("get", "GetItem", key) as op:
            requests.get(config, stored, consistent=True)
            op.observe(response)
            item = {config.partition_key: {"S": stored}, config.value_attribute: {"S": value}}
            if not _codec.is_expired(item, config, 0.0):
                _codec.decode_value(item, config)

    return work


async def measure(url: str, rounds: int, ops: int, botocore: bool = False) -> list[dict[str, Any]]:
    """Paired figures: traced, SDK floor vs untraced; or botocore vs its raw client."""
    from aiodynkv import AsyncDynamoKV
    from aiodynkv._telemetry import Telemetry

    tracer_provider, meter_provider = sdk_providers()
    stores = _stores(url, botocore, tracer_provider, meter_provider)
    seeder = AsyncDynamoKV(table=TABLE, endpoint=url, create_table=True)
    try:
        await seeder.open()
        for i in range(KEYS):
            await seeder.set(f"key:{i:06d}", f"{i:06d}".ljust(100, "x"))
        for kv in stores.values():
            await kv.open()
        calls = _calls(stores, botocore)
        if botocore:
            calls["floor"] = _raw_with_floor(stores["raw"], botocore_floor(stores["botocore"]))
        else:
            floor = sdk_floor(
                tracer_provider, meter_provider, Telemetry(stores["traced"].config), url
            )
            calls["floor"] = _with_floor(calls["untraced"], floor)
        samples = await _rounds(calls, rounds, ops)
        if not botocore:
            tels = {name: Telemetry(store.config) for name, store in stores.items()}
            samples["telemetry"] = {name: [] for name in tels}
            for tel in tels.values():
                telemetry_block(tel, 2_000)
            for round_ in range(rounds):
                for name in list(tels)[round_ % 2 :] + list(tels)[: round_ % 2]:
                    samples["telemetry"][name].append(telemetry_block(tels[name], ops * 10))
    finally:
        for kv in (*stores.values(), seeder):
            await (kv.close() if hasattr(kv, "cm") else kv.aclose())
        tracer_provider.shutdown()
        meter_provider.shutdown()
    if botocore:
        return [
            dict(paired(samples["get"], "botocore", "raw"), what="get"),
            dict(paired(samples["get"], "floor", "raw"), what="get"),
        ]
    results = []
    for what in ("get", "set"):
        results.append(dict(paired(samples[what], "traced", "untraced"), what=what))
        results.append(dict(paired(samples[what], "floor", "untraced"), what=what))
    results.append(dict(paired(samples["telemetry"], "traced", "untraced"), what="telemetry"))
    return results


Calls = dict[str, dict[str, Callable[[int], Awaitable[Any]]]]


def _stores(url: str, botocore: bool, tracer_provider: Any, meter_provider: Any) -> dict[str, Any]:
    """The stores of the sides, by side (not yet open)."""
    from aiodynkv import AsyncDynamoKV

    if botocore:
        from contenders import RawAioboto3

        raw = RawAioboto3(url)
        raw.load()
        return {
            "botocore": AsyncDynamoKV(table=TABLE, endpoint=url, transport="botocore"),
            "raw": raw,
        }
    return {
        "untraced": AsyncDynamoKV(table=TABLE, endpoint=url),
        "traced": AsyncDynamoKV(
            table=TABLE,
            endpoint=url,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        ),
    }


def _with_floor(
    untraced: dict[str, Callable[[int], Awaitable[Any]]], floor: Callable[[], None]
) -> dict[str, Callable[[int], Awaitable[Any]]]:
    """The untraced calls, each followed by the SDK's work of the telemetry (`sdk_floor`)."""

    async def floor_get(i: int) -> Any:
        found = await untraced["get"](i)
        floor()
        return found

    async def floor_set(i: int) -> Any:
        done = await untraced["set"](i)
        floor()
        return done

    return {"get": floor_get, "set": floor_set}


def _raw_with_floor(
    raw: Any, floor: Callable[[str, Any], None]
) -> dict[str, Callable[[int], Awaitable[Any]]]:
    """The raw client's `get`, followed by what aiodynkv must add (`botocore_floor`)."""

    async def floor_get(i: int) -> Any:
        key = f"key:{i:06d}"
        value = await raw.get(key)
        floor(key, value)
        return value

    return {"get": floor_get}


async def _rounds(calls: Calls, rounds: int, ops: int) -> dict[str, dict[str, list[float]]]:
    """Blocks of `ops` calls, rotating between the sides each round: CPU µs per call."""
    order = list(calls)
    whats = list(calls[order[0]])
    for name in order:  # warm-up: imports, connections, caches
        for what in whats:
            await block(calls[name][what], 0, max(50, ops // 4))
    samples: dict[str, dict[str, list[float]]] = {w: {n: [] for n in order} for w in whats}
    for round_ in range(rounds):
        turn = order[round_ % len(order) :] + order[: round_ % len(order)]
        for what in whats:
            for name in turn:
                samples[what][name].append(await block(calls[name][what], round_ * ops, ops))
    return samples


def _calls(
    stores: dict[str, Any], botocore: bool
) -> dict[str, dict[str, Callable[[int], Awaitable[Any]]]]:
    """The calls of each side: `get` (and `set`), by side."""
    calls: dict[str, dict[str, Callable[[int], Awaitable[Any]]]] = {}
    for name, store in stores.items():
        if name == "raw":
            continue

        async def get(i: int, store: Any = store) -> Any:
            return await store.get(f"key:{i:06d}", None)

        async def set_(i: int, store: Any = store) -> Any:
            return await store.set(f"key:{i:06d}", f"{i:06d}".ljust(100, "y"))

        calls[name] = {"get": get} if botocore else {"get": get, "set": set_}
    if botocore:
        raw = stores["raw"]

        async def raw_get(i: int) -> Any:
            return await raw.get(f"key:{i:06d}")

        calls["raw"] = {"get": raw_get}
    return calls


LABELS = {
    ("traced", "untraced"): "{what}: OpenTelemetry SDK configured vs none",
    ("floor", "untraced"): "{what}: none + the SDK's own work for the same telemetry (the floor)",
    ("botocore", "raw"): '{what}: transport="botocore" vs the raw aioboto3 client\'s get_item',
    ("floor", "raw"): "{what}: the raw client + what aiodynkv must add (the floor) vs the raw "
    "client",
}


def table(results: list[dict[str, Any]], load: tuple[float, float]) -> list[str]:
    noisy = max(load) > NOISY_LOAD
    lines = [
        "| figure | CPU µs per call | vs µs | ratio (median of rounds) | range | rounds |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        what = "telemetry alone (no request)" if r["what"] == "telemetry" else f"`{r['what']}`"
        label = LABELS[(r["side"], r["base"])].format(what=what)
        lines.append(
            f"| {label} | {r['side_us']:.1f} | {r['base_us']:.1f} "
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
    parser.add_argument(
        "--rounds", type=int, help="A/B rounds (default 12, quick 6; with --botocore 36, quick 12)"
    )
    parser.add_argument("--ops", type=int, help="calls per block (default 400, quick 200)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument(
        "--botocore",
        action="store_true",
        help='transport="botocore" get vs the same client\'s get_item, instead',
    )
    options = parser.parse_args()
    # A botocore block's ratio spreads about +-10 % from round to round (the raw client's
    # own CPU per call varies that much), so its median needs more rounds to settle.
    rounds = options.rounds or (
        (12 if options.quick else 36) if options.botocore else (6 if options.quick else 12)
    )
    ops = options.ops or (200 if options.quick else 400)
    stub = None
    url = options.url
    if url is None:
        from run import start_stub

        stub = start_stub(600)
        url = stub.url
    try:
        load_start = os.getloadavg()[0]
        results = asyncio.run(measure(url, rounds, ops, options.botocore))
        load_end = os.getloadavg()[0]
    finally:
        if stub is not None:
            stub.stop()
    print("\n".join(table(results, (load_start, load_end))))
    if options.json:
        options.json.write_text(json.dumps({"results": results, "load": [load_start, load_end]}))


if __name__ == "__main__":
    main()
