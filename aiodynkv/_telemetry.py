"""Spans, metrics and log events of every store operation (OpenTelemetry and structlog).

Each store operation runs inside ``with telemetry.operation(...) as op:``, which
gives it one CLIENT span (current during the request, so botocore's own spans
nest under it), one point of the ``db.client.operation.duration`` histogram and
one log event, all carrying the same attribute values. Consumed capacity and
retries read from the response become counters. (`aiodynkv._coalesce` also
links spans, through the OpenTelemetry API.)

Nothing is configured here: without an SDK the API calls are no-ops. Log events
go to the logger in ``KVConfig.logger``; else to structlog's ``aiodynkv`` logger
once the application has called ``structlog.configure``; else to the standard
library's ``logging.getLogger("aiodynkv")``, which has a `logging.NullHandler`,
so the library prints nothing until the application configures logging.

Levels: DEBUG for every completed call and expected outcome (a miss, a failed
condition); INFO for a failure raised to the caller (the caller decides whether
it is an error); WARNING only for what the caller cannot see (requests retried,
coalescing turned off).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from aiodynkv._errors import ConditionFailedError, KeyNotFoundError, KVError
from aiodynkv._version import __version__

if TYPE_CHECKING:
    from aiodynkv._config import KVConfig

__all__ = ["DURATION_BUCKETS", "Operation", "Telemetry"]

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
_READS = frozenset({"GetItem", "BatchGetItem", "Scan", "Query", "DescribeTable"})
_SCOPE = "aiodynkv"
_SCHEMA_URL = "https://opentelemetry.io/schemas/1.28.0"
_STDLIB = logging.getLogger(_SCOPE)
_STDLIB.addHandler(logging.NullHandler())


class _StdlibEvents:
    """structlog's calling convention (`event`, then fields) on the ``aiodynkv`` logger."""

    __slots__ = ()

    def _log(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if _STDLIB.isEnabledFor(level):
            text = " ".join(f"{name}={value!r}" for name, value in fields.items())
            _STDLIB.log(level, "%s %s", event, text, extra={"aiodynkv": fields})

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)


_STDLIB_EVENTS = _StdlibEvents()


class Telemetry:
    """Tracer, instruments and logger of one store, with the constant attributes built once."""

    __slots__ = (
        "_base",
        "_cache",
        "_capacity",
        "_duration",
        "_logger",
        "_metric_attrs",
        "_retries",
        "_span_attrs",
        "config",
        "expose_keys",
    )

    def __init__(self, config: KVConfig) -> None:
        self.config = config
        self.expose_keys = config.expose_keys
        version = __version__
        provider = config.tracer_provider or trace.get_tracer_provider()
        self._base = provider.get_tracer(_SCOPE, version, schema_url=_SCHEMA_URL)
        meter = (config.meter_provider or metrics.get_meter_provider()).get_meter(
            _SCOPE, version, schema_url=_SCHEMA_URL
        )
        self._duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of database client operations.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self._capacity = meter.create_counter(
            "aiodynkv.consumed_capacity",
            unit="{capacity_unit}",
            description="DynamoDB capacity units consumed (ReturnConsumedCapacity=TOTAL).",
        )
        self._retries = meter.create_counter(
            "aiodynkv.retries",
            unit="{retry}",
            description="Requests the AWS SDK retried (throttling, 5xx, connection errors).",
        )
        self._cache = meter.create_counter(
            "aiodynkv.cache.lookups",
            unit="{lookup}",
            description="Near-cache lookups by result (aiodynkv.cache.result: hit or miss).",
        )
        self._logger = config.logger
        self._span_attrs: dict[tuple[str, str], dict[str, Any]] = {}
        self._metric_attrs: dict[str, dict[str, Any]] = {}

    @property
    def logger(self) -> Any:
        """The injected logger, else structlog's once configured, else the stdlib one."""
        if self._logger is not None:
            return self._logger
        if structlog.is_configured():
            return structlog.get_logger(_SCOPE)
        return _STDLIB_EVENTS

    def logs_events(self) -> bool:
        """Whether debug events go anywhere (skips building them when not)."""
        return (
            self._logger is not None
            or structlog.is_configured()
            or _STDLIB.isEnabledFor(logging.DEBUG)
        )

    def span_attributes(self, operation: str, dynamo_op: str) -> dict[str, Any]:
        """Constant span attributes of an operation (cached; never mutate the result)."""
        attrs = self._span_attrs.get((operation, dynamo_op))
        if attrs is None:
            config = self.config
            host, port = config.server_address
            attrs = {
                **self.metric_attributes(dynamo_op),
                "aws.dynamodb.table_names": (config.table,),
                "aiodynkv.operation": operation,
                "server.address": host,
                "server.port": port,
            }
            if dynamo_op in ("GetItem", "BatchGetItem"):
                attrs["aws.dynamodb.consistent_read"] = config.consistent_read
            self._span_attrs[(operation, dynamo_op)] = attrs
        return attrs

    def metric_attributes(self, dynamo_op: str) -> dict[str, Any]:
        """Constant metric attributes of a DynamoDB operation (cached)."""
        attrs = self._metric_attrs.get(dynamo_op)
        if attrs is None:
            host, port = self.config.server_address
            attrs = {
                "db.system.name": "aws.dynamodb",
                "db.collection.name": self.config.table,
                "db.operation.name": dynamo_op,
                "server.address": host,
                "server.port": port,
            }
            self._metric_attrs[dynamo_op] = attrs
        return attrs

    def operation(
        self,
        operation: str,
        dynamo_op: str,
        key: str | None = None,
        *,
        batch_size: int | None = None,
        links: Any = None,
    ) -> Operation:
        """Context manager timing, tracing and logging one store operation."""
        return Operation(self, operation, dynamo_op, key, batch_size, links)

    @contextlib.contextmanager
    def activate(self, op: Operation) -> Iterator[None]:
        """Make `op`'s span current (for work done on its behalf in another task)."""
        if not op.span.get_span_context().is_valid:
            yield
            return
        token = otel_context.attach(trace.set_span_in_context(op.span))
        try:
            yield
        finally:
            otel_context.detach(token)

    def warn(self, event: str, **fields: Any) -> None:
        """Log a warning event (retries, throttling, capability gaps)."""
        self.logger.warning(event, **fields)

    def debug(self, event: str, **fields: Any) -> None:
        """Log a debug event, only when logging is configured."""
        if self.logs_events():
            self.logger.debug(event, **fields)


class Operation:
    """One traced, timed and logged store operation (see `Telemetry.operation`)."""

    __slots__ = (
        "_start",
        "_token",
        "batch_size",
        "cache",
        "cache_hits",
        "cache_misses",
        "deadline",
        "dynamo_op",
        "in_doubt",
        "key",
        "links",
        "name",
        "outcome",
        "read_units",
        "retries",
        "span",
        "tel",
        "write_units",
    )

    def __init__(
        self,
        tel: Telemetry,
        name: str,
        dynamo_op: str,
        key: str | None,
        batch_size: int | None,
        links: Any,
    ) -> None:
        self.tel = tel
        self.name = name
        self.dynamo_op = dynamo_op
        self.key = key
        self.batch_size = batch_size
        self.links = links
        self.outcome = "ok"
        self.read_units = 0.0
        self.write_units = 0.0
        self.retries = 0
        #: A write request of this operation may have been applied without a known result.
        self.in_doubt = False
        #: When the whole call must end (``time.monotonic()``), set by the store's core
        #: when the call's first request gets a pooled connection.
        self.deadline: float | None = None
        #: Near cache: "hit", "miss", "partial" (batches) or "bypass"; None without one.
        self.cache: str | None = None
        self.cache_hits = 0
        self.cache_misses = 0
        self._token: object = None

    def __enter__(self) -> Operation:
        tel = self.tel
        attrs = tel.span_attributes(self.name, self.dynamo_op)
        if self.batch_size is not None or (self.key is not None and tel.expose_keys):
            attrs = dict(attrs)
            if self.batch_size is not None:
                attrs["db.operation.batch.size"] = self.batch_size
            if self.key is not None and tel.expose_keys:
                attrs["aiodynkv.key"] = self.key
        self.span = tel._base.start_span(
            f"{self.dynamo_op} {tel.config.table}",
            kind=SpanKind.CLIENT,
            attributes=attrs,
            links=self.links,
        )
        if self.span.get_span_context().is_valid:
            self._token = otel_context.attach(trace.set_span_in_context(self.span))
        self._start = time.perf_counter()
        return self

    def observe(self, response: Mapping[str, Any]) -> None:
        """Take consumed capacity and the SDK's retry count from a response."""
        consumed = response.get("ConsumedCapacity")
        if consumed:
            for entry in consumed if isinstance(consumed, list) else (consumed,):
                reads = entry.get("ReadCapacityUnits")
                writes = entry.get("WriteCapacityUnits")
                if reads is None and writes is None:
                    units = float(entry.get("CapacityUnits", 0.0))
                    if self.dynamo_op in _READS:
                        self.read_units += units
                    else:
                        self.write_units += units
                else:
                    self.read_units += float(reads or 0.0)
                    self.write_units += float(writes or 0.0)
        meta = response.get("ResponseMetadata")
        if meta:
            self.retries += int(meta.get("RetryAttempts", 0) or 0)

    def __exit__(  # noqa: PLR0912 (one place decides outcome, metrics, span and log)
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        duration = time.perf_counter() - self._start
        tel = self.tel
        span = self.span
        error_type: str | None = None
        if exc is not None:
            if isinstance(exc, KVError) and tel.expose_keys:
                exc.show_key = True
            if isinstance(exc, KeyNotFoundError):
                self.outcome = "miss"
            elif isinstance(exc, ConditionFailedError):
                self.outcome = "condition_failed"
            else:
                error_type = type(exc).__name__
                self.outcome = "error"
        metric_attrs = tel.metric_attributes(self.dynamo_op)
        if error_type is not None:
            metric_attrs = {**metric_attrs, "error.type": error_type}
        if self.cache != "hit":  # answered from process memory: no database operation
            tel._duration.record(duration, metric_attrs)
        if self.read_units or self.write_units or self.retries:
            self._count(metric_attrs)
        if self.cache_hits:
            tel._cache.add(self.cache_hits, {**metric_attrs, "aiodynkv.cache.result": "hit"})
        if self.cache_misses:
            tel._cache.add(self.cache_misses, {**metric_attrs, "aiodynkv.cache.result": "miss"})
        if span.is_recording():
            span.set_attribute("aiodynkv.outcome", self.outcome)
            if self.cache is not None:
                span.set_attribute("aiodynkv.cache", self.cache)
            if self.retries:
                span.set_attribute("aiodynkv.retries", self.retries)
            if error_type is not None and exc is not None:
                reason = _describe(exc)
                span.set_attribute("error.type", error_type)
                if tel.expose_keys:
                    span.record_exception(exc)
                else:  # the exception's message names the key; record the reason only
                    span.add_event(
                        "exception",
                        {"exception.type": error_type, "exception.message": reason},
                    )
                span.set_status(Status(StatusCode.ERROR, reason))
        span.end()
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
        self._log(duration, error_type, exc)

    def _count(self, metric_attrs: dict[str, Any]) -> None:
        tel = self.tel
        if self.read_units:
            tel._capacity.add(self.read_units, {**metric_attrs, "aiodynkv.capacity.kind": "read"})
        if self.write_units:
            tel._capacity.add(self.write_units, {**metric_attrs, "aiodynkv.capacity.kind": "write"})
        if self.retries:
            tel._retries.add(self.retries, metric_attrs)

    def _log(self, duration: float, error_type: str | None, exc: BaseException | None) -> None:
        tel = self.tel
        cancelled = isinstance(exc, asyncio.CancelledError)
        if error_type is None and not self.retries and not tel.logs_events():
            return
        fields: dict[str, Any] = {
            "table": tel.config.table,
            "db_operation": self.dynamo_op,
            "outcome": "cancelled" if cancelled else self.outcome,
            "duration_ms": round(duration * 1000.0, 3),
        }
        if self.read_units or self.write_units:
            fields["read_units"] = self.read_units
            fields["write_units"] = self.write_units
        if self.retries:
            fields["retries"] = self.retries
        if self.batch_size is not None:
            fields["batch_size"] = self.batch_size
        if self.key is not None and tel.expose_keys:
            fields["key"] = self.key
        event = f"aiodynkv.{self.name}"
        if error_type is not None and not cancelled:
            # Raised to the caller, who decides whether it is an error.
            tel.logger.info(event, error_type=error_type, error=_describe(exc), **fields)
        elif self.retries:
            tel.logger.warning(event, **fields)
        else:
            tel.logger.debug(event, **fields)


def _describe(exc: BaseException | None) -> str:
    """What went wrong, without keys or values."""
    if isinstance(exc, KVError) and exc.reason:
        return exc.reason
    return type(exc).__name__
