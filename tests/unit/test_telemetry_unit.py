from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from structlog.testing import capture_logs

from aiodynkv import (
    ConditionFailedError,
    KeyNotFoundError,
    KVConfig,
    ThrottledError,
    WrongTypeError,
)
from aiodynkv._telemetry import Telemetry

SECRET_KEY = "session:s3cr3t"


class Recorder:
    """An injected logger recording (level, event, fields)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def debug(self, event: str, **fields: Any) -> None:
        self.events.append(("debug", event, fields))

    def info(self, event: str, **fields: Any) -> None:
        self.events.append(("info", event, fields))

    def warning(self, event: str, **fields: Any) -> None:
        self.events.append(("warning", event, fields))

    def error(self, event: str, **fields: Any) -> None:  # pragma: no cover - must not be used
        self.events.append(("error", event, fields))


@pytest.fixture(autouse=True)
def _structlog_unconfigured() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def recorded(**fields: Any) -> tuple[Telemetry, Recorder]:
    recorder = Recorder()
    return Telemetry(KVConfig(table="kvt", logger=recorder, **fields)), recorder


def throttled() -> ThrottledError:
    return ThrottledError(
        "get on table 'kvt' failed: ThrottlingException: slow down",
        operation="get",
        table="kvt",
        key=SECRET_KEY,
        reason="ThrottlingException: slow down",
    )


# -- capacity and retries ------------------------------------------------------------


def test_capacity_and_retries_are_read_from_responses() -> None:
    tel = Telemetry(KVConfig(table="kvt"))
    with tel.operation("get_many", "BatchGetItem", batch_size=3) as op:
        op.observe(
            {
                "ConsumedCapacity": [{"TableName": "kvt", "CapacityUnits": 1.5}],
                "ResponseMetadata": {"RetryAttempts": 2},
            }
        )
        op.observe({"ConsumedCapacity": {"CapacityUnits": 2.0, "ReadCapacityUnits": 2.0}})
    assert op.read_units == 3.5 and op.write_units == 0
    assert op.retries == 2


def test_writes_count_write_units() -> None:
    tel = Telemetry(KVConfig(table="kvt"))
    with tel.operation("set", "UpdateItem", "k") as op:
        op.observe({"ConsumedCapacity": {"CapacityUnits": 1.0}})
    assert (op.read_units, op.write_units) == (0.0, 1.0)


# -- levels ----------------------------------------------------------------------------


def test_a_completed_call_is_logged_at_debug() -> None:
    tel, recorder = recorded()
    with tel.operation("get", "GetItem", SECRET_KEY) as op:
        op.observe({"ConsumedCapacity": {"CapacityUnits": 0.5}})
    [(level, event, fields)] = recorder.events
    assert (level, event) == ("debug", "aiodynkv.get")
    assert fields["outcome"] == "ok"
    assert fields["table"] == "kvt" and fields["db_operation"] == "GetItem"
    assert fields["read_units"] == 0.5
    assert "retries" not in fields


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (KeyNotFoundError("get: not found", key=SECRET_KEY), "miss"),
        (ConditionFailedError("set: condition failed", key=SECRET_KEY), "condition_failed"),
    ],
)
def test_expected_outcomes_are_logged_at_debug(exc: Exception, outcome: str) -> None:
    tel, recorder = recorded()
    with pytest.raises(type(exc)), tel.operation("get", "GetItem", SECRET_KEY):
        raise exc
    [(level, _, fields)] = recorder.events
    assert (level, fields["outcome"]) == ("debug", outcome)
    assert "error_type" not in fields


def test_a_failure_raised_to_the_caller_is_logged_at_info() -> None:
    tel, recorder = recorded()
    with pytest.raises(ThrottledError), tel.operation("get", "GetItem", SECRET_KEY):
        raise throttled()
    [(level, event, fields)] = recorder.events
    assert (level, event) == ("info", "aiodynkv.get")
    assert fields["outcome"] == "error"
    assert fields["error_type"] == "ThrottledError"
    assert fields["error"] == "ThrottlingException: slow down"
    assert SECRET_KEY not in repr(fields)


def test_a_failure_without_a_reason_logs_its_type() -> None:
    tel, recorder = recorded()
    with pytest.raises(RuntimeError), tel.operation("incr", "UpdateItem", SECRET_KEY):
        raise RuntimeError(SECRET_KEY)
    [(level, _, fields)] = recorder.events
    assert level == "info"
    assert (fields["error_type"], fields["error"]) == ("RuntimeError", "RuntimeError")


def test_a_retried_call_is_logged_at_warning() -> None:
    tel, recorder = recorded()
    with tel.operation("get", "GetItem", SECRET_KEY) as op:
        op.observe({"ResponseMetadata": {"RetryAttempts": 2}})
    [(level, _, fields)] = recorder.events
    assert (level, fields["retries"]) == ("warning", 2)


def test_a_retried_call_that_failed_is_logged_at_info() -> None:
    tel, recorder = recorded()

    def retried_then_failed() -> None:
        with tel.operation("get", "GetItem", SECRET_KEY) as op:
            op.observe({"ResponseMetadata": {"RetryAttempts": 2}})
            raise throttled()

    with pytest.raises(ThrottledError):
        retried_then_failed()
    [(level, _, fields)] = recorder.events
    assert (level, fields["retries"], fields["outcome"]) == ("info", 2, "error")


def test_cancellation_is_logged_as_cancelled_at_debug() -> None:
    tel, recorder = recorded()
    with pytest.raises(asyncio.CancelledError), tel.operation("get", "GetItem", "k"):
        raise asyncio.CancelledError
    [(level, _, fields)] = recorder.events
    assert (level, fields["outcome"]) == ("debug", "cancelled")
    assert "error_type" not in fields


def test_warn_and_debug_helpers() -> None:
    tel, recorder = recorded()
    tel.warn("aiodynkv.coalescing_off", reason="x")
    tel.debug("aiodynkv.detail", n=1)
    assert recorder.events == [
        ("warning", "aiodynkv.coalescing_off", {"reason": "x"}),
        ("debug", "aiodynkv.detail", {"n": 1}),
    ]


def test_batch_size_is_logged() -> None:
    tel, recorder = recorded()
    with tel.operation("set_many", "BatchWriteItem", batch_size=30):
        pass
    assert recorder.events[0][2]["batch_size"] == 30


# -- keys stay out unless expose_keys ---------------------------------------------------


def test_keys_stay_out_of_logs_and_messages_by_default() -> None:
    tel, recorder = recorded()
    with pytest.raises(ThrottledError) as info, tel.operation("get", "GetItem", SECRET_KEY):
        raise throttled()
    assert "key" not in recorder.events[0][2]
    assert info.value.show_key is False
    assert SECRET_KEY not in str(info.value)
    assert info.value.key == SECRET_KEY


def test_expose_keys_puts_keys_in_logs_and_messages() -> None:
    tel, recorder = recorded(expose_keys=True)
    with tel.operation("get", "GetItem", SECRET_KEY):
        pass
    with pytest.raises(ThrottledError) as info, tel.operation("get", "GetItem", SECRET_KEY):
        raise throttled()
    assert [fields["key"] for _, _, fields in recorder.events] == [SECRET_KEY, SECRET_KEY]
    assert info.value.show_key is True
    assert SECRET_KEY in str(info.value)


def _traced(expose_keys: bool) -> tuple[Telemetry, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = KVConfig(
        table="kvt", tracer_provider=provider, logger=Recorder(), expose_keys=expose_keys
    )
    return Telemetry(config), exporter


def test_spans_hold_no_key_by_default_and_record_only_the_reason() -> None:
    tel, exporter = _traced(expose_keys=False)
    with pytest.raises(ThrottledError), tel.operation("get", "GetItem", SECRET_KEY):
        raise throttled()
    [span] = exporter.get_finished_spans()
    assert span.name == "GetItem kvt"
    attributes = dict(span.attributes or {})
    assert "aiodynkv.key" not in attributes
    assert attributes["error.type"] == "ThrottledError"
    assert attributes["aiodynkv.outcome"] == "error"
    [event] = span.events
    assert dict(event.attributes or {}) == {
        "exception.type": "ThrottledError",
        "exception.message": "ThrottlingException: slow down",
    }
    assert SECRET_KEY not in repr(span.to_json())


def test_spans_hold_the_key_with_expose_keys() -> None:
    tel, exporter = _traced(expose_keys=True)
    with pytest.raises(ThrottledError), tel.operation("get", "GetItem", SECRET_KEY):
        raise throttled()
    [span] = exporter.get_finished_spans()
    assert dict(span.attributes or {})["aiodynkv.key"] == SECRET_KEY
    assert SECRET_KEY in str(dict(span.events[0].attributes or {})["exception.message"])


def test_spans_of_expected_outcomes_are_not_errors() -> None:
    tel, exporter = _traced(expose_keys=False)
    with pytest.raises(KeyNotFoundError), tel.operation("get", "GetItem", SECRET_KEY):
        raise KeyNotFoundError("get: not found", key=SECRET_KEY)
    [span] = exporter.get_finished_spans()
    assert dict(span.attributes or {})["aiodynkv.outcome"] == "miss"
    assert "error.type" not in dict(span.attributes or {})
    assert not span.events


# -- where events go -------------------------------------------------------------------


def test_unconfigured_events_go_to_the_stdlib_logger_with_a_null_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stdlib = logging.getLogger("aiodynkv")
    assert any(isinstance(h, logging.NullHandler) for h in stdlib.handlers)
    tel = Telemetry(KVConfig(table="kvt"))
    caplog.set_level(logging.DEBUG, logger="aiodynkv")
    with tel.operation("get", "GetItem", SECRET_KEY):
        pass
    with pytest.raises(WrongTypeError), tel.operation("incr", "UpdateItem", SECRET_KEY):
        raise WrongTypeError("incr: not a counter", key=SECRET_KEY, reason="not a counter")
    with tel.operation("set", "UpdateItem", SECRET_KEY) as op:
        op.observe({"ResponseMetadata": {"RetryAttempts": 1}})
    records = [r for r in caplog.records if r.name == "aiodynkv"]
    assert [(r.levelno, r.getMessage().split(" ")[0]) for r in records] == [
        (logging.DEBUG, "aiodynkv.get"),
        (logging.INFO, "aiodynkv.incr"),
        (logging.WARNING, "aiodynkv.set"),
    ]
    assert "error_type='WrongTypeError'" in records[1].getMessage()
    assert records[1].aiodynkv["outcome"] == "error"  # type: ignore[attr-defined]
    assert all(SECRET_KEY not in r.getMessage() for r in records)


def test_unconfigured_debug_events_are_not_even_built(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aiodynkv")
    tel = Telemetry(KVConfig(table="kvt"))
    assert tel.logs_events() is False
    with tel.operation("get", "GetItem", "k"):
        pass
    tel.debug("aiodynkv.detail", n=1)
    assert not [r for r in caplog.records if r.name == "aiodynkv"]
    caplog.set_level(logging.DEBUG, logger="aiodynkv")
    assert tel.logs_events() is True


def test_configured_structlog_receives_the_events() -> None:
    tel = Telemetry(KVConfig(table="kvt"))
    with capture_logs() as logs:
        assert tel.logs_events() is True
        with tel.operation("get", "GetItem", "k") as op:
            op.observe({"ResponseMetadata": {"RetryAttempts": 1}})
        with tel.operation("exists", "GetItem", "k"):
            pass
        with pytest.raises(ThrottledError), tel.operation("get", "GetItem", "k"):
            raise throttled()
        tel.warn("aiodynkv.something", detail=1)
        tel.debug("aiodynkv.detail", n=1)
    levels = [(e["event"], e["log_level"]) for e in logs]
    assert levels == [
        ("aiodynkv.get", "warning"),
        ("aiodynkv.exists", "debug"),
        ("aiodynkv.get", "info"),
        ("aiodynkv.something", "warning"),
        ("aiodynkv.detail", "debug"),
    ]
    assert logs[0]["retries"] == 1


def test_structlog_filtering_out_debug_gets_no_debug_events_built() -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        processors=[structlog.processors.JSONRenderer()],
    )
    tel = Telemetry(KVConfig(table="kvt"))
    assert tel.logs_events() is False
    with capture_logs() as logs:  # capture_logs keeps the wrapper class: INFO and up
        with tel.operation("get", "GetItem", "k"):
            pass
        with pytest.raises(ThrottledError), tel.operation("get", "GetItem", "k"):
            raise throttled()
    assert [(e["event"], e["log_level"]) for e in logs] == [("aiodynkv.get", "info")]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    assert tel.logs_events() is True


def test_an_injected_logger_wins_over_structlog() -> None:
    tel, recorder = recorded()
    with capture_logs() as logs, tel.operation("get", "GetItem", "k"):
        pass
    assert not logs
    assert [e[1] for e in recorder.events] == ["aiodynkv.get"]


def test_counters_add_up_across_calls_and_stores_sharing_a_meter() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    stores = [Telemetry(KVConfig(table="kvt", meter_provider=provider)) for _ in range(2)]
    response = {
        "ConsumedCapacity": {"TableName": "kvt", "CapacityUnits": 1.5},
        "ResponseMetadata": {"RetryAttempts": 2},
    }

    def sums() -> dict[tuple[str, str, str], float]:
        data = reader.get_metrics_data()
        assert data is not None
        found: dict[tuple[str, str, str], float] = {}
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name not in ("aiodynkv.consumed_capacity", "aiodynkv.retries"):
                        continue
                    for p in m.data.data_points:
                        assert isinstance(p, NumberDataPoint)
                        attrs = dict(p.attributes or {})
                        kind = str(attrs.get("aiodynkv.capacity.kind"))
                        found[(m.name, str(attrs["db.operation.name"]), kind)] = p.value
        return found

    for tel in stores:
        with tel.operation("get", "GetItem", "k") as op:
            op.observe(response)
    assert sums() == {
        ("aiodynkv.consumed_capacity", "GetItem", "read"): 3.0,
        ("aiodynkv.retries", "GetItem", "None"): 4,
    }
    with stores[0].operation("set", "UpdateItem", "k") as op:
        op.observe(response)
    assert sums() == {
        ("aiodynkv.consumed_capacity", "GetItem", "read"): 3.0,
        ("aiodynkv.retries", "GetItem", "None"): 4,
        ("aiodynkv.consumed_capacity", "UpdateItem", "write"): 1.5,
        ("aiodynkv.retries", "UpdateItem", "None"): 2,
    }
    del stores[:], tel, op  # a store that is gone keeps its share: sums never go down
    gc.collect()
    assert sums() == {
        ("aiodynkv.consumed_capacity", "GetItem", "read"): 3.0,
        ("aiodynkv.retries", "GetItem", "None"): 4,
        ("aiodynkv.consumed_capacity", "UpdateItem", "write"): 1.5,
        ("aiodynkv.retries", "UpdateItem", "None"): 2,
    }
    provider.shutdown()


# -- the lean transport's HTTP spans against the instrumentation's own extension ---------

ENDPOINT = "http://127.0.0.1:8000"
GSI = {"IndexName": "g", "KeySchema": [{"AttributeName": "x", "KeyType": "HASH"}]}
_HTTP_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "GetItem",
        {"TableName": "t", "Key": {}, "ConsistentRead": False, "ProjectionExpression": "#k"},
        {"ConsumedCapacity": {"CapacityUnits": 1, "TableName": "t"}},
    ),
    (
        "Query",
        {
            "TableName": "t",
            "IndexName": "g",
            "Limit": 5,
            "ScanIndexForward": False,
            "Select": "ALL_ATTRIBUTES",
            "AttributesToGet": ["a", "b"],
        },
        {"Items": [], "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5}},
    ),
    (
        "Scan",
        {"TableName": "t", "Segment": 1, "TotalSegments": 4, "ConsistentRead": True},
        {"Items": [], "Count": 3, "ScannedCount": 7},
    ),
    ("ListTables", {"ExclusiveStartTableName": "a", "Limit": 2}, {"TableNames": ["b", "c"]}),
    (
        "PutItem",
        {"TableName": "t", "Item": {}},
        {
            "ConsumedCapacity": {"TableName": "t", "WriteCapacityUnits": 1, "CapacityUnits": 1},
            "ItemCollectionMetrics": {"SizeEstimateRangeGB": [0.0, 1.0]},
        },
    ),
    (
        "BatchWriteItem",
        {"RequestItems": {"t": [], "u": []}},
        {
            "ConsumedCapacity": [
                {
                    "Table": {"CapacityUnits": 2, "WriteCapacityUnits": 2},
                    "GlobalSecondaryIndexes": {"g": {"CapacityUnits": 1, "ReadCapacityUnits": 1}},
                    "CapacityUnits": 3,
                    "TableName": "t",
                }
            ],
            "UnprocessedItems": {},
        },
    ),
    ("TransactWriteItems", {"TransactItems": []}, {}),
    (
        "CreateTable",
        {
            "TableName": "t",
            "GlobalSecondaryIndexes": [GSI],
            "ProvisionedThroughput": {"ReadCapacityUnits": 3, "WriteCapacityUnits": 4},
        },
        {"TableDescription": {}},
    ),
]


def _as_botocore_parses(action: str, reply: dict[str, Any]) -> dict[str, Any]:
    """`reply` as it comes out of botocore's parser (model member order, doubles)."""
    import json

    import botocore.parsers
    import botocore.session

    model = botocore.session.get_session().get_service_model("dynamodb")
    output = model.operation_model(action).output_shape
    raw = {"body": json.dumps(reply).encode(), "headers": {}, "status_code": 200}
    parsed: dict[str, Any] = botocore.parsers.create_parser("json").parse(raw, output)
    parsed.pop("ResponseMetadata", None)
    return parsed


def _instrumentation_attributes(
    action: str, request: dict[str, Any], result: dict[str, Any]
) -> dict[str, Any]:
    """The attributes opentelemetry-instrumentation-botocore gives one call of `action`."""
    from types import SimpleNamespace

    from opentelemetry.instrumentation.botocore import _apply_response_attributes
    from opentelemetry.instrumentation.botocore.extensions.dynamodb import _DynamoDbExtension
    from opentelemetry.instrumentation.botocore.extensions.types import (
        _AwsSdkCallContext,
        _BotocoreInstrumentorContext,
    )
    from opentelemetry.instrumentation.botocore.utils import get_server_attributes

    model = SimpleNamespace(
        service_name="dynamodb", api_version="2012-08-10", service_id="DynamoDB"
    )
    client = SimpleNamespace(
        meta=SimpleNamespace(service_model=model, region_name="eu-west-1", endpoint_url=ENDPOINT)
    )
    context = _AwsSdkCallContext(client, (action, request))
    extension = _DynamoDbExtension(context)
    attrs: dict[str, Any] = {
        "rpc.system": "aws-api",
        "rpc.service": context.service_id,
        "rpc.method": action,
        "cloud.region": context.region,
        **get_server_attributes(ENDPOINT),
    }
    extension.extract_attributes(attrs)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("reference").start_span(context.span_name, attributes=attrs)
    instrumentor = _BotocoreInstrumentorContext(logger=None)  # type: ignore[arg-type]
    extension.before_service_call(span, instrumentor)
    _apply_response_attributes(span, result)
    extension.on_success(span, result, instrumentor)
    span.end()
    (finished,) = exporter.get_finished_spans()
    return {"name": finished.name, **dict(finished.attributes or {})}


@pytest.mark.parametrize(
    ("action", "request_", "reply"), _HTTP_CASES, ids=[c[0] for c in _HTTP_CASES]
)
def test_http_span_attributes_are_the_instrumentations(
    action: str, request_: dict[str, Any], reply: dict[str, Any]
) -> None:
    meta = {"HTTPStatusCode": 200, "RetryAttempts": 0, "RequestId": "r-1"}
    expected = _instrumentation_attributes(
        action, request_, {**_as_botocore_parses(action, reply), "ResponseMetadata": meta}
    )
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = KVConfig(
        table="bench", region="eu-west-1", endpoint=ENDPOINT, tracer_provider=provider
    )
    spans = Telemetry(config).http_spans()
    assert spans is not None
    with provider.get_tracer("app").start_as_current_span("parent"):
        traced = spans.request(action, request_, ENDPOINT, "eu-west-1")
        assert traced is not None
        traced.reply(traced.start(), {**reply, "ResponseMetadata": meta})
    ours = exporter.get_finished_spans()[0]
    assert {"name": ours.name, **dict(ours.attributes or {})} == expected


def test_no_http_spans_without_a_recording_span_or_with_the_no_op_provider() -> None:
    from opentelemetry.trace import NoOpTracerProvider

    provider = TracerProvider()
    spans = Telemetry(
        KVConfig(table="bench", endpoint=ENDPOINT, tracer_provider=provider)
    ).http_spans()
    assert spans is not None
    assert spans.request("GetItem", {"TableName": "t"}, ENDPOINT, "us-east-1") is None
    quiet = KVConfig(table="bench", endpoint=ENDPOINT, tracer_provider=NoOpTracerProvider())
    assert Telemetry(quiet).http_spans() is None


_GLOBAL_SDK_LATER = """
import asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from aiodynkv import AsyncDynamoKV

async def main():
    exporter = InMemorySpanExporter()
    async with AsyncDynamoKV(table="kvt", transport="memory", create_table=True) as kv:
        await kv.set("k", "v")
        assert kv._core.tel.tracing() is False
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        assert kv._core.tel.tracing() is True
        await kv.get("k")
    print(sorted(span.name for span in exporter.get_finished_spans()))

asyncio.run(main())
"""


def test_no_span_is_started_until_an_sdk_is_set_globally_and_then_every_one_is() -> None:
    import subprocess
    import sys

    done = subprocess.run(  # noqa: S603 (this interpreter, a fixed script)
        [sys.executable, "-c", _GLOBAL_SDK_LATER], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "['GetItem kvt']"
