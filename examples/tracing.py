"""aiodynkv's spans and metrics through the OpenTelemetry SDK.

Run it (after ``pip install -e '.[examples]'`` in a clone of the repository)::

    python examples/tracing.py

It prints every finished span as JSON (the console exporter), then the metrics.
With ``--otlp`` the spans go instead to an OTLP/HTTP collector at
``OTEL_EXPORTER_OTLP_ENDPOINT`` (default http://localhost:4318), for example
Jaeger from docker-compose.yml::

    docker compose --profile examples up -d jaeger
    python examples/tracing.py --otlp       # then open http://localhost:16686

What you see: one ``checkout`` span of the application, and under it one CLIENT
span per store call (``UpdateItem tracing-demo``, ``GetItem tracing-demo``,
``BatchWriteItem tracing-demo``...) with the database attributes, and under each of
those botocore's own HTTP-level span (``DynamoDB.GetItem``...), which
``AiobotocoreInstrumentor`` adds. Without ``AIODYNKV_ENDPOINT`` it starts the
embedded emulator first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from aiodynkv import AsyncDynamoKV, KeyNotFoundError

TABLE = "tracing-demo"


def configure(*, otlp: bool) -> tuple[TracerProvider, MeterProvider]:
    """Install SDK providers: spans to the console or to OTLP, metrics to the console."""
    resource = Resource.create({"service.name": "aiodynkv-tracing-example"})
    tracer_provider = TracerProvider(resource=resource)
    exporter: SpanExporter
    if otlp:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # reads OTEL_EXPORTER_OTLP_ENDPOINT
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    else:
        tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    reader = PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=60_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    metrics.set_meter_provider(meter_provider)
    # botocore's HTTP-level spans, nested under ours (the package has no type hints).
    AiobotocoreInstrumentor().instrument()  # type: ignore[no-untyped-call]
    return tracer_provider, meter_provider


async def checkout(endpoint: str) -> None:
    """A few store calls inside one application span."""
    tracer = trace.get_tracer("tracing-example")
    # transport="botocore": every call goes through the aioboto3 client, so the
    # instrumentor makes the HTTP-level spans (the default lean transport makes the
    # same spans itself, one per HTTP attempt, without the instrumentor).
    async with AsyncDynamoKV(
        table=TABLE, endpoint=endpoint, create_table=True, transport="botocore"
    ) as kv:
        with tracer.start_as_current_span("checkout"):
            await kv.set("cart:42", '["book", "pen"]', ttl=600)
            await kv.get("cart:42")
            await kv.incr("orders")
            await kv.set_many({"stock:book": "9", "stock:pen": "99"})
            with contextlib.suppress(KeyNotFoundError):
                await kv.get("coupon:42")  # a miss: outcome=miss, not an error


def main() -> None:
    """Configure the SDK, run the calls, flush everything."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--otlp", action="store_true", help="export spans with OTLP/HTTP")
    args = parser.parse_args()
    tracer_provider, meter_provider = configure(otlp=args.otlp)
    try:
        endpoint = os.environ.get("AIODYNKV_ENDPOINT")
        if endpoint:
            asyncio.run(checkout(endpoint))
        else:
            from aiodynkv.testing import LocalDynamoDB

            with LocalDynamoDB("moto") as server:
                asyncio.run(checkout(server.endpoint))
    finally:
        tracer_provider.shutdown()  # flushes the batch processor
        meter_provider.shutdown()  # prints the metrics once


if __name__ == "__main__":
    main()
