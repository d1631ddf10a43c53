"""The near cache on every backend: hits, misses, own writes, exact expiry, bypass, telemetry."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import Clock, StoreFactory

pytestmark = pytest.mark.asyncio

CACHED = {"local_cache_items": 100, "local_cache_ttl": 5.0, "local_cache_miss_ttl": 1.0}


async def _pair(make_store: StoreFactory, **fields: Any) -> tuple[Any, Any]:
    """A caching store and another writer (another process, as far as the cache knows)."""
    return await make_store(**CACHED, **fields), await make_store()


async def test_reads_are_served_from_memory_for_the_ttl(
    make_store: StoreFactory, clock: Clock
) -> None:
    kv, other = await _pair(make_store)
    await other.set("k", "v1")
    assert await kv.get("k") == "v1"
    await other.set("k", "v2")
    assert await kv.get("k") == "v1"  # cached: the other writer is not seen yet
    assert await kv.get_many(["k"]) == {"k": "v1"}
    clock.advance(5.1)
    assert await kv.get("k") == "v2"


async def test_missing_answers_are_cached_for_the_shorter_ttl(
    make_store: StoreFactory, clock: Clock
) -> None:
    kv, other = await _pair(make_store)
    assert await kv.get("k", None) is None
    await other.set("k", "v")
    assert await kv.get("k", None) is None
    assert await kv.get_many(["k"]) == {}
    clock.advance(1.1)
    assert await kv.get("k") == "v"


async def test_own_writes_update_or_invalidate(make_store: StoreFactory, clock: Clock) -> None:
    kv, other = await _pair(make_store)
    await kv.set("k", "v1")
    assert await kv.get("k") == "v1"
    await kv.set("k", bytearray(b"v2"))
    assert await kv.get("k") == b"v2"
    assert await kv.delete("k") is True
    assert await kv.get("k", None) is None
    await kv.set_many({"a": "1", "b": "2"})
    assert await kv.get_many(["a", "b"]) == {"a": "1", "b": "2"}
    await kv.delete_many(["a"])
    assert await kv.get_many(["a", "b"]) == {"b": "2"}
    await kv.set("n", "x")
    await kv.get("n")
    await kv.set_counter("n", 1)
    assert await kv.get("n") == 1
    assert await kv.incr("n") == 2
    assert await kv.get("n") == 2
    await kv.set("e", "v")
    await kv.get("e")
    assert await kv.expire("e", 0.5)
    clock.advance(0.6)
    assert await kv.get("e", None) is None
    await other.set("p", "v", ttl=0.5)
    await kv.get("p")
    assert await kv.persist("p")
    clock.advance(1)
    assert await kv.get("p") == "v"
    assert await kv.set("p", "no", if_absent=True) is False
    assert await kv.get("p") == "v"
    await kv.clear()
    assert await kv.get("b", None) is None


async def test_an_entry_never_outlives_the_items_exact_expiry(
    make_store: StoreFactory, clock: Clock
) -> None:
    kv, other = await _pair(make_store)
    await kv.set("own", "v", ttl=0.5)
    await other.set("theirs", "v", ttl=0.5)
    assert await kv.get("own") == "v"
    assert await kv.get("theirs") == "v"
    assert await kv.get_many(["theirs"]) == {"theirs": "v"}
    clock.advance(0.51)
    assert await kv.get("own", None) is None
    assert await kv.get("theirs", None) is None
    assert await kv.get_many(["own", "theirs"]) == {}


async def test_consistent_reads_bypass_the_cache(make_store: StoreFactory) -> None:
    kv, other = await _pair(make_store, consistent_read=False)
    await other.set("k", "v1")
    assert await kv.get("k") == "v1"
    await other.set("k", "v2")
    assert await kv.get("k", consistent=True) == "v2"
    assert await kv.get_many(["k"], consistent=True) == {"k": "v2"}
    await other.set("k", "v3")
    assert await kv.get("k") == "v2"  # the consistent read refreshed the cache


async def test_namespace_views_share_the_cache_by_stored_key(make_store: StoreFactory) -> None:
    kv, other = await _pair(make_store)
    await other.namespace("a").set("k", "in a")
    await other.set("k", "at root")
    assert await kv.namespace("a").get("k") == "in a"
    assert await kv.get("k") == "at root"
    await other.namespace("a").set("k", "changed")
    assert await kv.namespace("a").get("k") == "in a"  # another view object, same cache
    await kv.namespace("a").set("k", "mine")
    assert await kv.namespace("a").get_many(["k"]) == {"k": "mine"}


async def test_typed_and_encrypted_values_are_cached_decoded(make_store: StoreFactory) -> None:
    import os

    kv = await make_store(**CACHED, encryption_keys={"k1": os.urandom(32)})
    await kv.set_json("doc", {"a": 1})
    assert await kv.get_json("doc") == {"a": 1}
    assert await kv.typed(dict).get("doc") == {"a": 1}


def _telemetry() -> tuple[dict[str, Any], InMemorySpanExporter, InMemoryMetricReader]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    fields = {"tracer_provider": tracer_provider, "meter_provider": MeterProvider([reader])}
    return fields, exporter, reader


def _lookups(reader: InMemoryMetricReader) -> dict[str, int]:
    data = reader.get_metrics_data()
    counts: dict[str, int] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "aiodynkv.cache.lookups":
                    for point in metric.data.data_points:
                        attributes = dict(point.attributes or {})
                        result = str(attributes["aiodynkv.cache.result"])
                        counts[result] = counts.get(result, 0) + int(getattr(point, "value", 0))
    return counts


@pytest.mark.backend_needs("server")
async def test_hits_and_misses_are_counted_and_on_the_span(make_store: StoreFactory) -> None:
    fields, exporter, reader = _telemetry()
    kv = await make_store(**CACHED, **fields)
    await kv.set("k", "v")
    exporter.clear()
    await kv.get("k")  # a hit (the set left it)
    await kv.get("missing", None)  # a miss
    await kv.get_many(["k", "missing", "other"])  # hit, hit (missing), miss
    await kv.get("k", consistent=True)
    spans = [s for s in exporter.get_finished_spans() if s.name.startswith(("GetItem", "Batch"))]
    results = [dict(s.attributes or {}).get("aiodynkv.cache") for s in spans]
    assert results == ["hit", "miss", "partial", "bypass"]
    assert _lookups(reader) == {"hit": 3, "miss": 2}


@pytest.mark.backend_needs("server")
async def test_it_combines_with_coalescing_and_saves_requests(make_store: StoreFactory) -> None:
    fields, exporter, _ = _telemetry()
    kv = await make_store(**CACHED, **fields, coalesce_reads=True)
    other = await make_store()
    await other.set_many({f"k{i}": str(i) for i in range(10)})
    keys = [f"k{i % 10}" for i in range(50)]

    def shared_reads() -> int:
        return sum(
            1
            for s in exporter.get_finished_spans()
            if s.name.startswith("BatchGetItem") and "aiodynkv.cache" not in (s.attributes or {})
        )

    def callers(result: str) -> int:
        return sum(
            1
            for s in exporter.get_finished_spans()
            if (s.attributes or {}).get("aiodynkv.cache") == result
        )

    first = await asyncio.gather(*(kv.get(key) for key in keys))
    assert first == [str(i % 10) for i in range(50)]
    assert (shared_reads(), callers("miss")) == (1, 50)  # 50 misses, one BatchGetItem
    assert await asyncio.gather(*(kv.get(key) for key in keys)) == first
    assert (shared_reads(), callers("hit")) == (1, 50)  # then no request at all
