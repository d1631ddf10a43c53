"""The lean transport's HTTP spans match what opentelemetry-instrumentation-botocore gives.

The same calls run twice through a fault proxy in front of moto: on the botocore
transport with ``AiobotocoreInstrumentor`` (the reference), and on the lean transport
without it. Every HTTP-level span is compared: name, kind, parent (aiodynkv's span of
the call), status, event names and attributes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from aiodynkv import AsyncDynamoKV
from tests.faults import FaultProxy

#: Attributes both spans carry whose values differ legitimately between two runs
#: (``retry_attempts`` does not: the lean span of the attempt that answered has botocore's
#: count). The ``exception`` events differ in ``exception.type`` (botocore's class path
#: against the error code) and botocore's stack trace; their messages are compared.
DIFFERENT_VALUES = frozenset({"aws.request_id"})
#: The throttling the proxy answers with (a retryable error of DynamoDB).
THROTTLED = "ProvisionedThroughputExceededException"


class Spans:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def calls(self) -> list[tuple[ReadableSpan, list[ReadableSpan]]]:
        """aiodynkv's span of each call, with its HTTP-level children, in order."""
        spans = self.exporter.get_finished_spans()
        ours = [s for s in spans if "aiodynkv.operation" in (s.attributes or {})]
        ours.sort(key=lambda s: s.start_time or 0)
        children = [s for s in spans if s.name.startswith("DynamoDB.")]
        children.sort(key=lambda s: s.start_time or 0)
        assert len(ours) + len(children) == len(spans), [s.name for s in spans]
        return [
            (
                call,
                [
                    c
                    for c in children
                    if c.parent is not None and c.parent.span_id == call.context.span_id
                ],
            )
            for call in ours
        ]


@pytest.fixture
def spans() -> Iterator[Spans]:
    found = Spans()
    yield found
    found.provider.shutdown()


@pytest_asyncio.fixture
async def proxy(moto_endpoint: str) -> AsyncIterator[FaultProxy]:
    found = await FaultProxy(int(moto_endpoint.rsplit(":", 1)[1])).start()
    yield found
    await found.kill()


@pytest_asyncio.fixture
async def table(moto_endpoint: str) -> AsyncIterator[str]:
    name = f"p-{uuid.uuid4().hex[:12]}"
    async with AsyncDynamoKV(table=name, endpoint=moto_endpoint, create_table=True) as kv:
        yield name
        await kv.client.delete_table(TableName=name)


async def the_calls(kv: AsyncDynamoKV, proxy: FaultProxy, prefix: str) -> None:
    """GetItem, UpdateItem, BatchWriteItem, BatchGetItem, a failed condition, a retry."""
    await kv.set(f"{prefix}a", "1")
    assert await kv.get(f"{prefix}a") == "1"
    await kv.set_many({f"{prefix}b": "2", f"{prefix}c": "3"})
    assert await kv.get_many([f"{prefix}a", f"{prefix}b"]) == {f"{prefix}a": "1", f"{prefix}b": "2"}
    assert not await kv.set(f"{prefix}a", "x", if_absent=True)
    proxy.script["GetItem"] = ["throttle"]
    assert await kv.get(f"{prefix}a") == "1"
    assert not proxy.script["GetItem"], "the throttling was not played"


async def run(
    transport: str, table: str, proxy: FaultProxy, spans: Spans
) -> list[tuple[ReadableSpan, list[ReadableSpan]]]:
    async with AsyncDynamoKV(
        table=table,
        endpoint=proxy.endpoint,
        transport=transport,
        coalesce_reads=False,
        tracer_provider=spans.provider,
    ) as kv:
        await the_calls(kv, proxy, f"{transport}:")
    return spans.calls()


def shape(span: ReadableSpan) -> dict[str, Any]:
    """What must be equal, the values of `DIFFERENT_VALUES` left out (their keys kept)."""
    attrs = dict(span.attributes or {})
    for name in DIFFERENT_VALUES & attrs.keys():
        attrs[name] = "<differs>"
    return {
        "name": span.name,
        "kind": span.kind,
        "status": span.status.status_code,
        "description": span.status.description,
        "events": [
            (event.name, (event.attributes or {}).get("exception.message")) for event in span.events
        ],
        "attributes": attrs,
    }


async def test_lean_http_spans_match_the_botocore_instrumentation(
    table: str, proxy: FaultProxy, spans: Spans
) -> None:
    from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor

    instrumentor = AiobotocoreInstrumentor()  # type: ignore[no-untyped-call]
    instrumentor.instrument(tracer_provider=spans.provider)
    try:
        reference = await run("botocore", table, proxy, spans)
    finally:
        instrumentor.uninstrument()
    spans.exporter.clear()
    lean = await run("lean", table, proxy, spans)

    operations = [
        "UpdateItem",
        "GetItem",
        "BatchWriteItem",
        "BatchGetItem",
        "UpdateItem",
        "GetItem",
    ]
    assert [call.attributes["db.operation.name"] for call, _ in reference] == operations  # type: ignore[index]
    assert [call.attributes["db.operation.name"] for call, _ in lean] == operations  # type: ignore[index]
    # botocore's span covers a call and its retries; the lean transport makes one per attempt
    assert [len(children) for _, children in reference] == [1, 1, 1, 1, 1, 1]
    assert [len(children) for _, children in lean] == [1, 1, 1, 1, 1, 2]
    for (ref_call, (ref_span,)), (lean_call, lean_spans) in zip(reference, lean, strict=True):
        *earlier, last = lean_spans
        assert ref_span.kind is SpanKind.CLIENT
        assert ref_span.parent is not None and ref_span.parent.span_id == ref_call.context.span_id
        assert last.parent is not None and last.parent.span_id == lean_call.context.span_id
        assert last.context.trace_id == lean_call.context.trace_id
        assert shape(last) == shape(ref_span)
        for name in DIFFERENT_VALUES & dict(ref_span.attributes or {}).keys():
            assert last.attributes[name] != ref_span.attributes[name]  # type: ignore[index]
        for attempt in earlier:  # the throttled attempt: same span, the error's outcome
            throttled = shape(attempt)
            assert throttled["status"] is StatusCode.ERROR
            assert [name for name, _ in throttled["events"]] == ["exception"]
            assert throttled["attributes"]["http.status_code"] == 400
            assert throttled["attributes"]["retry_attempts"] == 0
            assert THROTTLED in throttled["description"]
            assert throttled["attributes"].keys() == shape(last)["attributes"].keys() - {
                "aws.dynamodb.consumed_capacity"  # a reply's, not an error's
            }

    failed = shape(lean[4][1][0])
    assert failed["status"] is StatusCode.ERROR
    assert failed["attributes"]["http.status_code"] == 400
    assert "ConditionalCheckFailedException" in failed["description"]
    retried = shape(lean[5][1][1])
    assert retried["attributes"]["retry_attempts"] == 1
    assert retried["status"] is StatusCode.UNSET


async def test_no_doubled_http_spans_with_the_instrumentation_on_the_lean_transport(
    table: str, proxy: FaultProxy, spans: Spans
) -> None:
    from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor

    instrumentor = AiobotocoreInstrumentor()  # type: ignore[no-untyped-call]
    instrumentor.instrument(tracer_provider=spans.provider)
    try:
        lean = await run("lean", table, proxy, spans)
    finally:
        instrumentor.uninstrument()
    assert [len(children) for _, children in lean] == [1, 1, 1, 1, 1, 2]
    scopes = {
        span.instrumentation_scope.name  # type: ignore[union-attr]
        for _, children in lean
        for span in children
    }
    assert scopes == {"aiodynkv"}


async def test_the_botocore_transport_makes_no_http_spans_of_its_own(
    table: str, proxy: FaultProxy, spans: Spans
) -> None:
    calls = await run("botocore", table, proxy, spans)
    assert [children for _, children in calls] == [[]] * 6


async def test_no_http_span_work_when_the_call_is_not_recorded(
    table: str, proxy: FaultProxy, spans: Spans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
    from opentelemetry.trace import NoOpTracerProvider

    from aiodynkv._telemetry import TracedRequest

    started: list[str] = []
    monkeypatch.setattr(TracedRequest, "start", lambda self: started.append(self.name))
    unsampled = TracerProvider(sampler=ALWAYS_OFF)
    unsampled.add_span_processor(SimpleSpanProcessor(spans.exporter))
    for provider in (unsampled, NoOpTracerProvider()):
        async with AsyncDynamoKV(
            table=table, endpoint=proxy.endpoint, tracer_provider=provider
        ) as kv:
            await kv.set("k", "v")
            assert await kv.get("k") == "v"
            assert (kv._core.transport.spans is None) is (provider is not unsampled)  # type: ignore[union-attr]
    unsampled.shutdown()
    assert started == []
    assert spans.exporter.get_finished_spans() == ()


async def test_attempts_without_a_reply_and_an_abandoned_attempt_end_their_spans(
    table: str, proxy: FaultProxy, spans: Spans
) -> None:
    from aiodynkv import KVTimeoutError, TransientError

    proxy.delay = 1.0  # every reply comes after the read timeout
    async with AsyncDynamoKV(
        table=table,
        endpoint=proxy.endpoint,
        tracer_provider=spans.provider,
        coalesce_reads=False,
        read_timeout=0.2,
        max_attempts=2,
    ) as kv:
        with pytest.raises(TransientError):
            await kv.get("k")
        (call, attempts) = spans.calls()[-1]
        assert call.status.status_code is StatusCode.ERROR
        assert [a.name for a in attempts] == ["DynamoDB.GetItem"] * 2
        for attempt in attempts:
            assert attempt.status.status_code is StatusCode.ERROR
            assert "http.status_code" not in (attempt.attributes or {})
            assert [e.name for e in attempt.events] == ["exception"]
        spans.exporter.clear()
    async with AsyncDynamoKV(
        table=table,
        endpoint=proxy.endpoint,
        tracer_provider=spans.provider,
        coalesce_reads=False,
        read_timeout=5.0,
        call_timeout=0.3,  # the call's deadline passes while the attempt waits
    ) as kv:
        with pytest.raises(KVTimeoutError):
            await kv.get("k")
    ((call, (attempt,)),) = spans.calls()
    assert attempt.end_time is not None
    assert attempt.status.status_code is StatusCode.ERROR
    assert attempt.status.description == "the attempt was abandoned"
