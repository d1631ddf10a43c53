"""Spans, metrics and log events of every store operation (OpenTelemetry and structlog).

Each store operation runs inside ``with telemetry.operation(...) as op:``, which
gives it one CLIENT span (current during the request, so botocore's own spans
nest under it), one point of the ``db.client.operation.duration`` histogram and
one log event, all carrying the same attribute values. Consumed capacity and
retries read from the response become counters. (`aiodynkv._coalesce` also
links spans, through the OpenTelemetry API.)

`HttpSpans` gives the lean transport one CLIENT span per HTTP attempt, under the
operation's span, with the name and attributes ``opentelemetry-instrumentation-botocore``
gives botocore's calls (``DynamoDB.GetItem``, ``rpc.*``, ``aws.*``, ``http.status_code``);
the botocore transport leaves those spans to that instrumentation.

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
import functools
import json
import logging
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import structlog
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode

from aiodynkv._errors import ConditionFailedError, KeyNotFoundError, KVError

if TYPE_CHECKING:
    from aiodynkv._config import KVConfig

__all__ = ["DURATION_BUCKETS", "HttpSpans", "Operation", "Telemetry"]

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
_READS = frozenset({"GetItem", "BatchGetItem", "Scan", "Query", "DescribeTable"})
_SCOPE = "aiodynkv"
_SCHEMA_URL = "https://opentelemetry.io/schemas/1.28.0"
_STDLIB = logging.getLogger(_SCOPE)
_STDLIB.addHandler(logging.NullHandler())
#: structlog's filtering wrapper classes that drop DEBUG (structlog caches one per level).
_ABOVE_DEBUG = frozenset(
    structlog.make_filtering_bound_logger(level)
    for level in (logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
)


class _StdlibEvents:
    """structlog's calling convention (`event`, then fields) on the ``aiodynkv`` logger."""

    __slots__ = ()

    def _log(self, level: int, event: str, **fields: Any) -> None:
        if _STDLIB.isEnabledFor(level):
            text = " ".join(f"{name}={value!r}" for name, value in fields.items())
            _STDLIB.log(level, "%s %s", event, text, extra={"aiodynkv": fields})

    debug = functools.partialmethod(_log, logging.DEBUG)
    info = functools.partialmethod(_log, logging.INFO)
    warning = functools.partialmethod(_log, logging.WARNING)


_STDLIB_EVENTS = _StdlibEvents()


class _Sums:
    """One store's running totals of one counter, by attribute set.

    Keyed by the identity of the attribute mapping: `Telemetry` hands out one cached
    mapping per attribute set, and the entry keeps it alive.
    """

    __slots__ = ("__weakref__", "totals")

    def __init__(self) -> None:
        self.totals: dict[int, list[Any]] = {}

    def add(self, amount: float, attributes: dict[str, Any]) -> None:
        entry = self.totals.get(id(attributes))
        if entry is None:
            self.totals[id(attributes)] = [attributes, amount]
        else:
            entry[1] += amount


class _ObservedCounter:
    """A monotonic counter reported from in-process sums when a metric reader collects.

    A synchronous SDK counter validates, copies and hashes its attributes on every
    ``add``; summing in a dict and reporting the totals through an observable counter
    exports the same cumulative sums for a fraction of the cost per call. One per
    (meter, name), shared by every store on that meter (the SDK adds up equal
    attribute sets observed by several stores).
    """

    def __init__(self, meter: Any, name: str, unit: str, description: str) -> None:
        self._lock = threading.Lock()  # the reader's thread collects while stores register
        self._sums: list[weakref.ref[_Sums]] = []
        #: Totals of stores that are gone, by attribute set: a sum never goes down.
        self._retired: dict[tuple[Any, ...], list[Any]] = {}
        meter.create_observable_counter(
            name, callbacks=[self._observe], unit=unit, description=description
        )

    def sums(self) -> _Sums:
        """New totals for one store; kept (retired) when the store is gone."""
        sums = _Sums()
        weakref.finalize(sums, self._retire, sums.totals)
        with self._lock:
            self._sums = [ref for ref in self._sums if ref() is not None]
            self._sums.append(weakref.ref(sums))
        return sums

    def _retire(self, totals: dict[int, list[Any]]) -> None:
        with self._lock:
            for attributes, total in list(totals.values()):
                key = tuple(attributes.items())
                entry = self._retired.get(key)
                if entry is None:
                    self._retired[key] = [attributes, total]
                else:
                    entry[1] += total

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        del options
        with self._lock:
            live = [sums for ref in self._sums if (sums := ref()) is not None]
            entries = [tuple(entry) for entry in self._retired.values()]
        entries += [tuple(entry) for sums in live for entry in list(sums.totals.values())]
        return [Observation(total, attributes) for attributes, total in entries]


_COUNTERS: weakref.WeakKeyDictionary[Any, dict[str, _ObservedCounter]] = weakref.WeakKeyDictionary()
_COUNTERS_LOCK = threading.Lock()


def _counter(meter: Any, name: str, unit: str, description: str) -> _Sums:
    """This store's totals of the meter's observable counter `name` (created once)."""
    with _COUNTERS_LOCK:
        counters = _COUNTERS.setdefault(meter, {})
        counter = counters.get(name)
        if counter is None:
            counter = counters[name] = _ObservedCounter(meter, name, unit, description)
    return counter.sums()


class Telemetry:
    """Tracer, instruments and logger of one store, with the constant attributes built once."""

    __slots__ = (
        "_base",
        "_cache",
        "_capacity",
        "_duration",
        "_extra_attrs",
        "_logger",
        "_metric_attrs",
        "_noop",
        "_proxied",
        "_retries",
        "_span_attrs",
        "_span_names",
        "_structlog",
        "config",
        "expose_keys",
    )

    def __init__(self, config: KVConfig) -> None:
        from aiodynkv import __version__ as version  # not at the top: aiodynkv imports us

        self.config = config
        self.expose_keys = config.expose_keys
        provider = config.tracer_provider or trace.get_tracer_provider()
        self._base = provider.get_tracer(_SCOPE, version, schema_url=_SCHEMA_URL)
        self._noop = isinstance(provider, trace.NoOpTracerProvider)
        self._proxied = isinstance(provider, trace.ProxyTracerProvider)
        meter = (config.meter_provider or metrics.get_meter_provider()).get_meter(
            _SCOPE, version, schema_url=_SCHEMA_URL
        )
        self._duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of database client operations.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self._capacity = _counter(
            meter,
            "aiodynkv.consumed_capacity",
            "{capacity_unit}",
            "DynamoDB capacity units consumed (ReturnConsumedCapacity=TOTAL).",
        )
        self._retries = _counter(
            meter,
            "aiodynkv.retries",
            "{retry}",
            "Requests the AWS SDK retried (throttling, 5xx, connection errors).",
        )
        self._cache = _counter(
            meter,
            "aiodynkv.cache.lookups",
            "{lookup}",
            "Near-cache lookups by result (aiodynkv.cache.result: hit or miss).",
        )
        self._logger = config.logger
        self._structlog: Any = None
        self._span_attrs: dict[tuple[str, str], dict[str, Any]] = {}
        self._span_names: dict[str, str] = {}
        self._extra_attrs: dict[tuple[str, str | None, str, str], dict[str, Any]] = {}
        self._metric_attrs: dict[tuple[str, str | None], dict[str, Any]] = {}

    @property
    def logger(self) -> Any:
        """The injected logger, else structlog's once configured, else the stdlib one."""
        if self._logger is not None:
            return self._logger
        if structlog.is_configured():
            if self._structlog is None:  # a lazy proxy: it follows later reconfiguration
                self._structlog = structlog.get_logger(_SCOPE)
            return self._structlog
        return _STDLIB_EVENTS

    def logs_events(self) -> bool:
        """Whether debug events go anywhere (skips building them when not)."""
        if self._logger is not None:
            return True
        if structlog.is_configured():
            return structlog.get_config()["wrapper_class"] not in _ABOVE_DEBUG
        return _STDLIB.isEnabledFor(logging.DEBUG)

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
            # The usual outcome, set with the rest when the span starts (one attribute
            # copy in the SDK); `Operation.__exit__` overwrites it only when it differs.
            attrs["aiodynkv.outcome"] = "ok"
            self._span_attrs[(operation, dynamo_op)] = attrs
        return attrs

    def metric_attributes(self, dynamo_op: str, error_type: str | None = None) -> dict[str, Any]:
        """Metric attributes of a DynamoDB operation and its error type (cached).

        One ready mapping per (operation, error type): the SDK copies what it is
        given, so the same dict is handed over on every record.
        """
        attrs = self._metric_attrs.get((dynamo_op, error_type))
        if attrs is None:
            host, port = self.config.server_address
            attrs = {
                "db.system.name": "aws.dynamodb",
                "db.collection.name": self.config.table,
                "db.operation.name": dynamo_op,
                "server.address": host,
                "server.port": port,
            }
            if error_type is not None:
                attrs["error.type"] = error_type
            self._metric_attrs[(dynamo_op, error_type)] = attrs
        return attrs

    def metric_attributes_with(
        self, dynamo_op: str, error_type: str | None, name: str, value: str
    ) -> dict[str, Any]:
        """`metric_attributes` plus one more attribute of few values (cached)."""
        key = (dynamo_op, error_type, name, value)
        attrs = self._extra_attrs.get(key)
        if attrs is None:
            attrs = {**self.metric_attributes(dynamo_op, error_type), name: value}
            self._extra_attrs[key] = attrs
        return attrs

    def span_name(self, dynamo_op: str) -> str:
        """``"<DynamoDB operation> <table>"``, the span name the conventions ask for (cached)."""
        name = self._span_names.get(dynamo_op)
        if name is None:
            name = self._span_names[dynamo_op] = f"{dynamo_op} {self.config.table}"
        return name

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
        if not op.span.is_recording():
            yield
            return
        token = otel_context.attach(trace.set_span_in_context(op.span))
        try:
            yield
        finally:
            otel_context.detach(token)

    def tracing(self) -> bool:
        """False while no span can record, so that none is started.

        That is on the no-op provider, and on the API's proxy until an SDK is set.
        """
        if self._proxied:
            if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
                return False
            # The global provider is set once and for all: no need to ask again.
            self._proxied = False
            self._noop = False
            return True
        return not self._noop

    def http_spans(self) -> HttpSpans | None:
        """The per-attempt HTTP spans of the lean transport; None when tracing is off."""
        return None if self._noop else HttpSpans(self)

    def warn(self, event: str, **fields: Any) -> None:
        """Log a warning event (retries, throttling, capability gaps)."""
        self.logger.warning(event, **fields)

    def debug(self, event: str, **fields: Any) -> None:
        """Log a debug event, only when logging is configured."""
        if self.logs_events():
            self.logger.debug(event, **fields)


class Admission(Protocol):
    """What counts the operations in flight (the store's core)."""

    def admit(self, operation: str) -> None:
        """Count one more operation, or raise the error that refuses it."""

    def release(self) -> None:
        """An admitted operation has ended."""


class Operation:
    """One traced, timed and logged store operation (see `Telemetry.operation`)."""

    __slots__ = (
        "_admission",
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
        admission: Admission | None = None,
    ) -> None:
        self.tel = tel
        self._admission = admission
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
        if self._admission is not None:
            self._admission.admit(self.name)  # raises when the store refuses the call
        tel = self.tel
        self._start = time.perf_counter()
        if not tel.tracing():
            self.span: trace.Span = trace.INVALID_SPAN
            return self
        attrs = tel.span_attributes(self.name, self.dynamo_op)
        if self.batch_size is not None or (self.key is not None and tel.expose_keys):
            attrs = dict(attrs)
            if self.batch_size is not None:
                attrs["db.operation.batch.size"] = self.batch_size
            if self.key is not None and tel.expose_keys:
                attrs["aiodynkv.key"] = self.key
        span = self.span = tel._base.start_span(
            tel.span_name(self.dynamo_op),
            kind=SpanKind.CLIENT,
            attributes=attrs,
            links=self.links,
        )
        # Current only when recording: a span that records nothing has no children
        # worth parenting (the caller's context stays current instead).
        if span.is_recording():
            self._token = otel_context.attach(trace.set_span_in_context(span))
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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._admission is None:
            self._end(exc)
            return
        try:
            self._end(exc)
        finally:
            self._admission.release()

    def _end(self, exc: BaseException | None) -> None:  # noqa: PLR0912 (one place decides outcome, metrics, span and log)
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
        metric_attrs = tel.metric_attributes(self.dynamo_op, error_type)
        if self.cache != "hit":  # answered from process memory: no database operation
            tel._duration.record(duration, metric_attrs)
        if self.read_units:
            self._add(tel._capacity, self.read_units, "aiodynkv.capacity.kind", "read", error_type)
        if self.write_units:
            self._add(
                tel._capacity, self.write_units, "aiodynkv.capacity.kind", "write", error_type
            )
        if self.retries:
            tel._retries.add(self.retries, metric_attrs)
        if self.cache_hits or self.cache_misses:
            self._add(tel._cache, self.cache_hits, "aiodynkv.cache.result", "hit", error_type)
            self._add(tel._cache, self.cache_misses, "aiodynkv.cache.result", "miss", error_type)
        if self._token is not None:  # recording (see __enter__)
            if self.outcome != "ok" or self.cache is not None or self.retries or error_type:
                late: dict[str, Any] = {"aiodynkv.outcome": self.outcome}  # the rare extras
                if self.cache is not None:
                    late["aiodynkv.cache"] = self.cache
                if self.retries:
                    late["aiodynkv.retries"] = self.retries
                if error_type is not None:
                    late["error.type"] = error_type
                span.set_attributes(late)
            if error_type is not None and exc is not None:
                reason = _describe(exc)
                if tel.expose_keys:
                    span.record_exception(exc)
                else:  # the exception's message names the key; record the reason only
                    span.add_event(
                        "exception",
                        {"exception.type": error_type, "exception.message": reason},
                    )
                span.set_status(Status(StatusCode.ERROR, reason))
            span.end()
            otel_context.detach(self._token)  # type: ignore[arg-type]
        if error_type is not None or self.retries or tel.logs_events():
            self._log(duration, error_type, exc)

    def _add(self, sums: _Sums, amount: float, name: str, value: str, error: str | None) -> None:
        """Add `amount` (if any) to `sums`, under the metric attributes plus `name`=`value`."""
        if amount:
            sums.add(amount, self.tel.metric_attributes_with(self.dynamo_op, error, name, value))

    def _log(self, duration: float, error_type: str | None, exc: BaseException | None) -> None:
        tel = self.tel
        cancelled = isinstance(exc, asyncio.CancelledError)
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


# -- the lean transport's HTTP spans ------------------------------------------------------
#
# What opentelemetry-instrumentation-botocore (its DynamoDB extension) reads from a
# request and a reply, so that the lean transport's spans carry the same attributes.

_AWS_DDB = "aws.dynamodb."
#: Operations whose table comes from ``TableName`` / the keys of ``RequestItems``.
_BY_TABLE_NAME = frozenset(
    {
        "CreateTable",
        "DeleteItem",
        "DeleteTable",
        "DescribeTable",
        "GetItem",
        "PutItem",
        "Query",
        "Scan",
        "UpdateItem",
        "UpdateTable",
    }
)
_BY_REQUEST_ITEMS = frozenset({"BatchGetItem", "BatchWriteItem"})
_LISTED = (
    ("AttributesToGet", "attributes_to_get"),
    ("ConsistentRead", "consistent_read"),
    ("IndexName", "index_name"),
    ("Limit", "limit"),
    ("ProjectionExpression", "projection"),
    ("Select", "select"),
)
#: Request fields copied as they are, by operation: (field, attribute suffix).
_REQUEST_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "GetItem": (("ConsistentRead", "consistent_read"), ("ProjectionExpression", "projection")),
    "Query": (("ScanIndexForward", "scan_forward"), *_LISTED),
    "Scan": (("Segment", "segment"), ("TotalSegments", "total_segments"), *_LISTED),
    "ListTables": (("ExclusiveStartTableName", "exclusive_start_table"), ("Limit", "limit")),
}
#: Request fields of table definitions, sent as a list of JSON strings.
_JSON_LISTS: dict[str, tuple[tuple[str, str], ...]] = {
    "CreateTable": (
        ("GlobalSecondaryIndexes", "global_secondary_indexes"),
        ("LocalSecondaryIndexes", "local_secondary_indexes"),
    ),
    "UpdateTable": (
        ("AttributeDefinitions", "attribute_definitions"),
        ("GlobalSecondaryIndexUpdates", "global_secondary_index_updates"),
    ),
}
_CAPACITY_LISTS = _BY_REQUEST_ITEMS
_CAPACITY_ONE = frozenset({"DeleteItem", "GetItem", "PutItem", "Query", "Scan", "UpdateItem"})
_COLLECTION_METRICS = frozenset({"BatchWriteItem", "DeleteItem", "PutItem", "UpdateItem"})
#: ConsumedCapacity's members, and those of its Capacity entries (Table, indexes), in
#: the order of botocore's model, which is the order its parser builds them in.
_CAPACITY_MEMBERS = (
    "TableName",
    "CapacityUnits",
    "ReadCapacityUnits",
    "WriteCapacityUnits",
    "Table",
    "LocalSecondaryIndexes",
    "GlobalSecondaryIndexes",
)
_UNITS_MEMBERS = ("ReadCapacityUnits", "WriteCapacityUnits", "CapacityUnits")


def _in_order(entry: dict[str, Any], members: tuple[str, ...]) -> dict[str, Any]:
    ordered = {name: entry[name] for name in members if name in entry}
    ordered.update((name, value) for name, value in entry.items() if name not in ordered)
    return ordered


#: `_capacity_json` of flat entries (a table's name and units), by their items.
_FLAT_CAPACITY: dict[tuple[tuple[tuple[str, Any], ...], tuple[type, ...]], str] = {}
_FLAT_CAPACITY_MAX = 256


def _capacity_json(entry: Any) -> str:
    """One ConsumedCapacity entry as JSON, as botocore's parser orders it."""
    if not isinstance(entry, dict):
        return json.dumps(entry)
    try:  # the usual entry: {"TableName": ..., "CapacityUnits": ...}, the same each time
        # the types too: 1 and 1.0 are equal keys but different JSON
        key = (tuple(entry.items()), tuple(map(type, entry.values())))
        found = _FLAT_CAPACITY.get(key)
    except TypeError:  # unhashable: indexes
        key, found = None, None
    if found is not None:
        return found
    text = _nested_capacity_json(entry)
    if key is not None:
        if len(_FLAT_CAPACITY) >= _FLAT_CAPACITY_MAX:
            _FLAT_CAPACITY.clear()
        _FLAT_CAPACITY[key] = text
    return text


def _nested_capacity_json(entry: dict[str, Any]) -> str:
    ordered = _in_order(entry, _CAPACITY_MEMBERS)
    table = ordered.get("Table")
    if isinstance(table, dict):
        ordered["Table"] = _in_order(table, _UNITS_MEMBERS)
    for indexes in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes"):
        found = ordered.get(indexes)
        if isinstance(found, dict):
            ordered[indexes] = {
                name: _in_order(units, _UNITS_MEMBERS) if isinstance(units, dict) else units
                for name, units in found.items()
            }
    return json.dumps(ordered)


def _request_attributes(action: str, request: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    """Add the attributes the instrumentation reads from a request of `action`."""
    if action in _BY_TABLE_NAME:
        table = request.get("TableName")
        if table is not None:
            attrs["aws.dynamodb.table_names"] = (table,)
    elif action in _BY_REQUEST_ITEMS:
        # A request that renders its own text (`BatchWriteText`) names its table unparsed.
        tables = getattr(request, "tables", None)
        if tables is None:
            items = request.get("RequestItems")
            tables = tuple(items) if isinstance(items, dict) else None
        if tables is not None:
            attrs["aws.dynamodb.table_names"] = tables
    for field, suffix in _REQUEST_FIELDS.get(action, ()):
        value = request.get(field)
        if value is not None:
            attrs[_AWS_DDB + suffix] = value
    for field, suffix in _JSON_LISTS.get(action, ()):
        value = request.get(field)
        if isinstance(value, list):
            attrs[_AWS_DDB + suffix] = [json.dumps(item) for item in value]
    throughput = request.get("ProvisionedThroughput") if action in _JSON_LISTS else None
    if isinstance(throughput, dict):
        for field, suffix in (
            ("ReadCapacityUnits", "provisioned_read_capacity"),
            ("WriteCapacityUnits", "provisioned_write_capacity"),
        ):
            if throughput.get(field) is not None:
                attrs[_AWS_DDB + suffix] = throughput[field]


def _reply_attributes(action: str, reply: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    """Add the attributes the instrumentation reads from a successful reply of `action`."""
    consumed = reply.get("ConsumedCapacity")
    if consumed is not None:
        if action in _CAPACITY_LISTS and isinstance(consumed, list):
            attrs["aws.dynamodb.consumed_capacity"] = [_capacity_json(c) for c in consumed]
        elif action in _CAPACITY_ONE:
            attrs["aws.dynamodb.consumed_capacity"] = (_capacity_json(consumed),)
    if action in _COLLECTION_METRICS:
        metrics_ = reply.get("ItemCollectionMetrics")
        if isinstance(metrics_, dict):
            with contextlib.suppress(TypeError, ValueError):  # binary keys: not JSON
                attrs["aws.dynamodb.item_collection_metrics"] = json.dumps(metrics_)
    if action == "Scan":
        for field, suffix in (("Count", "count"), ("ScannedCount", "scanned_count")):
            if reply.get(field) is not None:
                attrs[_AWS_DDB + suffix] = reply[field]
    elif action == "ListTables" and reply.get("TableNames") is not None:
        attrs["aws.dynamodb.table_count"] = len(reply["TableNames"])


class HttpSpans:
    """The CLIENT span of every HTTP attempt of the lean transport (one per store).

    Named and attributed as ``opentelemetry-instrumentation-botocore`` names and
    attributes botocore's calls, a child of the operation's span. Made only while the
    current span records: without an SDK nothing is looked up, when the operation is
    not sampled a request costs one context lookup.
    """

    __slots__ = ("_constant", "_tel")

    def __init__(self, tel: Telemetry) -> None:
        self._tel = tel
        self._constant: dict[tuple[str, str, str], tuple[str, dict[str, Any]]] = {}

    def request(
        self, action: str, request: Mapping[str, Any], endpoint_url: str, region: str
    ) -> TracedRequest | None:
        """The spans of one request's attempts; None when the current span does not record."""
        parent = otel_context.get_current()
        # The cheaper test first: with no SDK no span records, whatever the provider says.
        if not trace.get_current_span(parent).is_recording() or not self._tel.tracing():
            return None
        constant = self._constant.get((action, endpoint_url, region))
        if constant is None:
            constant = self._constant[(action, endpoint_url, region)] = _constant_attributes(
                action, endpoint_url, region
            )
        name, attrs = constant
        attrs = dict(attrs)
        _request_attributes(action, request, attrs)
        return TracedRequest(self._tel._base, action, name, attrs, parent)


def _constant_attributes(action: str, endpoint_url: str, region: str) -> tuple[str, dict[str, Any]]:
    """The span name and the attributes every request of `action` has."""
    parts = urlsplit(endpoint_url)
    attrs: dict[str, Any] = {
        "rpc.system": "aws-api",
        "rpc.service": "DynamoDB",
        "rpc.method": action,
        "cloud.region": region,
    }
    if parts.hostname:
        attrs["server.address"] = parts.hostname
        attrs["server.port"] = parts.port or 443  # as the instrumentation reports it
    attrs["db.system"] = "dynamodb"
    attrs["db.operation"] = action
    attrs["net.peer.name"] = parts.netloc.rpartition("@")[2]  # never a user:password@
    return f"DynamoDB.{action}", attrs


class TracedRequest:
    """The span of each attempt of one request (see `HttpSpans`).

    An attempt's span is made when the attempt ends, with its start time, its parent
    (the context current when the request began) and every attribute, those of the
    reply included, in one mapping: the SDK copies and checks the attributes once,
    and no span is held open across the request.
    """

    __slots__ = ("action", "attrs", "name", "parent", "tracer")

    def __init__(
        self, tracer: Any, action: str, name: str, attrs: dict[str, Any], parent: Any
    ) -> None:
        self.tracer = tracer
        self.action = action
        self.name = name
        self.attrs = attrs
        self.parent = parent

    def start(self) -> int:
        """The start time of the next attempt (nanoseconds, as the SDK takes them)."""
        return time.time_ns()

    def _span(self, started: int, attrs: dict[str, Any]) -> Any:
        return self.tracer.start_span(
            self.name,
            context=self.parent,
            kind=SpanKind.CLIENT,
            attributes=attrs,
            start_time=started,
        )

    def reply(self, started: int, reply: Mapping[str, Any]) -> None:
        """The span of an attempt that got a 2xx reply (parsed, with ``ResponseMetadata``)."""
        meta = reply.get("ResponseMetadata") or {}
        attrs = dict(self.attrs)
        if meta.get("RequestId"):
            attrs["aws.request_id"] = meta["RequestId"]
        attrs["retry_attempts"] = meta.get("RetryAttempts", 0)
        attrs["http.status_code"] = meta.get("HTTPStatusCode", 200)
        _reply_attributes(self.action, reply, attrs)
        self._span(started, attrs).end()

    def error(
        self,
        started: int,
        *,
        status: int,
        code: str,
        message: str,
        request_id: str | None,
        attempt: int,
    ) -> None:
        """The span of an attempt that got an error reply of DynamoDB (status, code, message)."""
        attrs = dict(self.attrs)
        if request_id:
            attrs["aws.request_id"] = request_id
        attrs["retry_attempts"] = attempt - 1
        attrs["http.status_code"] = status
        span = self._span(started, attrs)
        if status >= 400:
            # botocore's ClientError text, which the instrumentation puts in the status
            text = f"An error occurred ({code}) when calling the {self.action} operation: "
            self._failed(span, code, text + (message or "Unknown"))
        span.end()

    def failed(self, started: int, kind: str, description: str) -> None:
        """The span of an attempt that got no usable reply (`description` has no secrets)."""
        span = self._span(started, self.attrs)
        self._failed(span, kind, description)
        span.end()

    @staticmethod
    def _failed(span: Any, kind: str, description: str) -> None:
        span.add_event("exception", {"exception.type": kind, "exception.message": description})
        span.set_status(Status(StatusCode.ERROR, description))
