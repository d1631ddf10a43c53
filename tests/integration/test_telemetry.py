"""Spans, metrics and log events of real calls (moto), read back with the OpenTelemetry SDK."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
import structlog
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from structlog.testing import capture_logs

from aiodynkv import AsyncDynamoKV, KeyNotFoundError, TableNotFoundError
from aiodynkv._telemetry import DURATION_BUCKETS


class Otel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def finished(self, name: str | None = None) -> list[Any]:
        """aiodynkv's spans of calls (the HTTP attempts' spans are compared elsewhere)."""
        return [
            s
            for s in self.spans.get_finished_spans()
            if not s.name.startswith("DynamoDB.") and (name is None or s.name == name)
        ]

    def metric(self, name: str) -> Any:
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        return metric
        return None


@pytest.fixture
def otel() -> Iterator[Otel]:
    found = Otel()
    yield found
    found.tracer_provider.shutdown()
    found.meter_provider.shutdown()


@pytest.fixture(autouse=True)
def unconfigured_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest_asyncio.fixture
async def kv(moto_endpoint: str, otel: Otel) -> AsyncIterator[AsyncDynamoKV]:
    table = f"o-{uuid.uuid4().hex[:12]}"
    async with AsyncDynamoKV(
        table=table,
        endpoint=moto_endpoint,
        create_table=True,
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    ) as store:
        otel.spans.clear()
        yield store
        await store.client.delete_table(TableName=table)


async def test_one_client_span_per_call_with_semantic_attributes(
    kv: AsyncDynamoKV, otel: Otel
) -> None:
    await kv.set("user:1", "secret-value")
    assert await kv.get("user:1") == "secret-value"
    set_span, get_span = otel.finished()
    assert set_span.name == f"UpdateItem {kv.config.table}"
    assert get_span.name == f"GetItem {kv.config.table}"
    assert get_span.kind is SpanKind.CLIENT
    attrs = dict(get_span.attributes)
    host, port = kv.config.server_address
    assert attrs == {
        "db.system.name": "aws.dynamodb",
        "db.collection.name": kv.config.table,
        "db.operation.name": "GetItem",
        "aws.dynamodb.table_names": (kv.config.table,),
        "aws.dynamodb.consistent_read": True,
        "server.address": host,
        "server.port": port,
        "aiodynkv.operation": "get",
        "aiodynkv.outcome": "hit",
    }
    assert get_span.status.status_code is StatusCode.UNSET


async def test_a_miss_is_an_outcome_not_an_error(kv: AsyncDynamoKV, otel: Otel) -> None:
    with pytest.raises(KeyNotFoundError):
        await kv.get("absent")
    assert await kv.set("k", "v", if_absent=True)
    assert not await kv.set("k", "v", if_absent=True)
    spans = otel.finished()
    assert [s.attributes["aiodynkv.outcome"] for s in spans] == ["miss", "ok", "condition_failed"]
    assert all(s.status.status_code is StatusCode.UNSET for s in spans)
    assert all("error.type" not in s.attributes for s in spans)


async def test_failures_set_error_status_and_type_without_the_key(
    moto_endpoint: str, otel: Otel
) -> None:
    async with AsyncDynamoKV(
        table="missing-table",
        endpoint=moto_endpoint,
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    ) as kv:
        with pytest.raises(TableNotFoundError):
            await kv.get("private-key")
    (span,) = otel.finished()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "TableNotFoundError"
    event = span.events[0]
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "TableNotFoundError"
    assert "private-key" not in str(event.attributes) + str(span.status.description)
    points = otel.metric("db.client.operation.duration").data.data_points
    assert any(p.attributes.get("error.type") == "TableNotFoundError" for p in points)


async def test_keys_appear_only_when_opted_in(kv: AsyncDynamoKV, otel: Otel) -> None:
    await kv.set("user:42", "v")
    assert "user:42" not in str([dict(s.attributes) for s in otel.finished()])
    async with AsyncDynamoKV(kv.config, expose_keys=True) as traced:
        await traced.get("user:42")
    assert otel.finished()[-1].attributes["aiodynkv.key"] == "user:42"


async def test_duration_histogram_in_seconds_with_bucket_advice(
    kv: AsyncDynamoKV, otel: Otel
) -> None:
    await kv.set("k", "v")
    await kv.get("k")
    metric = otel.metric("db.client.operation.duration")
    assert metric.unit == "s"
    points = {p.attributes["db.operation.name"]: p for p in metric.data.data_points}
    get_point = points["GetItem"]
    assert get_point.count == 1
    assert 0 < get_point.sum < 5
    assert tuple(get_point.explicit_bounds) == DURATION_BUCKETS
    assert get_point.attributes["db.system.name"] == "aws.dynamodb"
    assert get_point.attributes["db.collection.name"] == kv.config.table


async def test_consumed_capacity_is_counted_by_kind(dynalite_endpoint: str, otel: Otel) -> None:
    table = f"o-{uuid.uuid4().hex[:12]}"
    async with AsyncDynamoKV(
        table=table,
        endpoint=dynalite_endpoint,
        create_table=True,
        meter_provider=otel.meter_provider,
        tracer_provider=otel.tracer_provider,
    ) as kv:
        await kv.set("k", "v")
        await kv.get("k")
        await kv.client.delete_table(TableName=table)
    metric = otel.metric("aiodynkv.consumed_capacity")
    kinds = {
        (p.attributes["aiodynkv.capacity.kind"], p.attributes["db.operation.name"]): p.value
        for p in metric.data.data_points
    }
    assert kinds[("write", "UpdateItem")] >= 1
    assert kinds[("read", "GetItem")] >= 0.5


async def test_botocore_spans_nest_under_ours(kv: AsyncDynamoKV, otel: Otel) -> None:
    from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor

    instrumentor = AiobotocoreInstrumentor()  # type: ignore[no-untyped-call]
    instrumentor.instrument(tracer_provider=otel.tracer_provider)
    try:
        # botocore's hooks see only the botocore transport (README: when to choose it).
        async with AsyncDynamoKV(kv.config, transport="botocore") as store:
            otel.spans.clear()
            await store.set("k", "v")
    finally:
        instrumentor.uninstrument()
    spans = otel.spans.get_finished_spans()
    ours = next(s for s in spans if (s.attributes or {}).get("aiodynkv.operation") == "set")
    sdk = [s for s in spans if s is not ours]
    assert sdk, "the instrumentor produced no span"
    assert all(s.parent is not None and s.parent.span_id == ours.context.span_id for s in sdk)
    assert all(s.context.trace_id == ours.context.trace_id for s in sdk)


async def test_unconfigured_logging_prints_nothing_for_successful_calls(
    kv: AsyncDynamoKV, capsys: pytest.CaptureFixture[str]
) -> None:
    await kv.set("k", "v")
    await kv.get("k")
    await kv.get("absent", None)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


async def test_configured_structlog_gets_one_debug_event_per_call(kv: AsyncDynamoKV) -> None:
    with capture_logs() as logs:
        await kv.set("user:7", "super-secret")
        await kv.get("user:7")
    assert [e["event"] for e in logs] == ["aiodynkv.set", "aiodynkv.get"]
    get_event = logs[1]
    assert get_event["log_level"] == "debug"
    assert get_event["db_operation"] == "GetItem"
    assert get_event["outcome"] == "hit"
    assert get_event["table"] == kv.config.table
    assert get_event["duration_ms"] > 0
    assert "super-secret" not in str(logs) and "user:7" not in str(logs)


async def test_raised_failures_log_at_info_and_keys_only_with_expose_keys(
    moto_endpoint: str,
) -> None:
    async with AsyncDynamoKV(table="missing-table", endpoint=moto_endpoint, expose_keys=True) as kv:
        with capture_logs() as logs, pytest.raises(TableNotFoundError):
            await kv.get("user:9")
    (event,) = logs
    assert event["log_level"] == "info"  # raised to the caller, who decides
    assert event["error_type"] == "TableNotFoundError"
    assert event["key"] == "user:9"


async def test_an_injected_logger_is_used(kv: AsyncDynamoKV) -> None:
    events: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def debug(self, event: str, **fields: Any) -> None:
            events.append((event, fields))

        info = warning = debug

    async with AsyncDynamoKV(kv.config, logger=Recorder()) as store:
        await store.exists("k")
    assert events[-1][0] == "aiodynkv.exists"


async def test_get_with_ttl_and_delete_many_are_one_span_each(
    kv: AsyncDynamoKV, otel: Otel
) -> None:
    await kv.set_many({"a": "1", "b": "2"}, ttl=60)
    otel.spans.clear()
    value, remaining = await kv.get_with_ttl("a")
    assert value == "1" and remaining is not None
    assert await kv.delete_many(["a", "b", "c"]) == 2
    ttl_span, delete_span = otel.finished()
    assert ttl_span.name == f"GetItem {kv.config.table}"
    assert ttl_span.attributes["aiodynkv.operation"] == "get_with_ttl"
    assert ttl_span.attributes["aiodynkv.outcome"] == "hit"
    assert delete_span.name == f"DeleteItem {kv.config.table}"
    assert delete_span.attributes["aiodynkv.operation"] == "delete_many"
