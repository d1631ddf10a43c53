"""Bad input, load, cancellation and leaks, against real servers."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from structlog.testing import capture_logs

from aiodynkv import AsyncDynamoKV, InsecureEndpointWarning, KVError
from aiodynkv._codec import MAX_ITEM_BYTES
from tests.faults import FaultProxy


@pytest_asyncio.fixture
async def kv(dynalite_endpoint: str) -> AsyncIterator[AsyncDynamoKV]:
    table = f"h-{uuid.uuid4().hex[:12]}"
    async with AsyncDynamoKV(
        table=table, endpoint=dynalite_endpoint, create_table=True, compress_threshold=None
    ) as store:
        yield store
        await store.client.delete_table(TableName=table)


# -- bad input: only documented errors, nothing half-written ---------------------------------

ANY_KEY = st.one_of(
    st.text(max_size=30),
    st.text(
        alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3
    ),
    st.sampled_from(
        ["", "\x00", "a\x00b", "a\x1fb", "x" * 2047, "x" * 2048, "x" * 2049, "é" * 1025]
    ),
    st.binary(max_size=5),
    st.integers(),
    st.none(),
    st.floats(),
    st.lists(st.text(max_size=3), max_size=2),
)
ANY_VALUE = st.one_of(
    st.text(max_size=30),
    st.binary(max_size=30),
    st.sampled_from(
        [b"\x01" * (MAX_ITEM_BYTES - 40), b"\x01" * (MAX_ITEM_BYTES + 1), "\ud800", "a\x00b", ""]
    ),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True),
    st.none(),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
ANY_TTL = st.one_of(
    st.none(),
    st.integers(min_value=-10, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.booleans(),
)
DOCUMENTED = (KVError, TypeError)


async def only_documented_errors(call: Any) -> None:
    try:
        await call()
    except DOCUMENTED:
        return


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=ANY_KEY, value=ANY_VALUE, ttl=ANY_TTL, delta=st.one_of(st.integers(), st.floats()))
async def test_bad_input_raises_only_documented_errors_and_writes_nothing(
    kv: AsyncDynamoKV, key: Any, value: Any, ttl: Any, delta: Any
) -> None:
    probe = f"probe-{uuid.uuid4().hex}"
    before = await kv.get_many([probe])
    pairs: list[tuple[Any, Any]] = [(probe, "ok"), (key, value)]
    calls = [
        lambda: kv.set(key, value, ttl=ttl),
        lambda: kv.set_many(dict(pairs) if isinstance(key, str) else pairs),
        lambda: kv.incr(key, delta),
        lambda: kv.get(key, None),
        lambda: kv.delete(key),
    ]
    for call in calls:
        await only_documented_errors(call)
    if before == {} and not await kv.exists(probe):
        return  # the batch was refused whole: nothing half-written
    # The batch was accepted: then every part of it was valid and written.
    assert await kv.get(probe) == "ok"
    await kv.delete(probe)


# -- load, memory, pool ------------------------------------------------------------------------


@pytest.mark.slow
async def test_10000_concurrent_operations_succeed_and_read_back_with_flat_memory(
    kv: AsyncDynamoKV,
) -> None:
    await kv.set_many({f"seed:{i}": f"s{i}" for i in range(7000)})
    live_objects = []
    for round_ in range(3):
        writes = {f"r{round_}:{i}": f"v{i}" for i in range(2000)}
        results = await asyncio.gather(  # 10,000 operations in flight at once
            *(kv.set(k, v) for k, v in writes.items()),
            *(kv.incr(f"counter:{round_}") for _ in range(1000)),
            *(kv.get(f"seed:{i}") for i in range(7000)),
        )
        assert results[:2000] == [True] * 2000
        assert sorted(results[2000:3000]) == list(range(1, 1001))
        assert results[3000:] == [f"s{i}" for i in range(7000)]
        assert await kv.get_many(writes) == writes
        del results
        gc.collect()
        live_objects.append(len(gc.get_objects()))
    # Flat: after the third round no more objects live than after the first (plus slack).
    assert live_objects[2] <= live_objects[0] * 1.02 + 500, live_objects


# -- cancellation ------------------------------------------------------------


async def test_a_cancelled_call_leaves_the_store_usable_and_leaks_no_connection(
    dynalite_endpoint: str, kv: AsyncDynamoKV
) -> None:
    upstream = int(dynalite_endpoint.rsplit(":", 1)[1])
    proxy = await FaultProxy(upstream).start()
    try:
        async with AsyncDynamoKV(
            kv.config, endpoint=proxy.endpoint, create_table=False, max_pool_connections=4
        ) as store:
            proxy.delay = 0.5
            for _ in range(3):
                tasks = [asyncio.ensure_future(store.set(f"k{i}", "v")) for i in range(8)]
                await asyncio.sleep(0.1)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            proxy.delay = 0.0
            # The proxy's delayed handlers answer the cancelled calls' closed sockets, then
            # see them closed (as late as a loaded loop lets them).
            for _ in range(300):
                if not proxy.busy:
                    break
                await asyncio.sleep(0.05)
            assert not proxy.busy
            await asyncio.sleep(0.1)  # the handlers that answered last read the sockets' ends
            assert proxy.stats.connections <= 4  # nothing left open from the cancelled calls
            proxy.stats.max_connections = proxy.stats.connections
            results = await asyncio.wait_for(
                asyncio.gather(*(store.set(f"after{i}", "v") for i in range(50))), timeout=30
            )
            assert results == [True] * 50
            assert proxy.stats.max_connections <= 4
    finally:
        await proxy.kill()


# -- secrets, values and keys stay out of telemetry, errors and reprs ---------------------------


async def test_no_secret_value_or_key_leaks(
    monkeypatch: pytest.MonkeyPatch, dynalite_endpoint: str
) -> None:
    secret, token = "SECRETabc123xyz", "TOKENqqq987"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLEAKCHECK")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    structlog.reset_defaults()
    table = f"h-{uuid.uuid4().hex[:12]}"
    texts: list[str] = []
    with capture_logs() as logs:
        async with AsyncDynamoKV(
            table=table, endpoint=dynalite_endpoint, create_table=True, tracer_provider=provider
        ) as store:
            texts.append(repr(store) + repr(store.config))
            await store.set("private:key", "private-value")
            await store.get("private:key")
            await store.get_many(["private:key"])
            failures = await asyncio.gather(
                store.incr("private:key"),
                store.set("private:key", "x", if_version=1),
                return_exceptions=True,
            )
            assert all(isinstance(f, KVError) for f in failures)
            texts.extend(str(f) + repr(f) for f in failures)
            await store.client.delete_table(TableName=table)
            try:
                await store.get("private:key")
            except KVError as exc:
                texts.append(str(exc))
    structlog.reset_defaults()
    provider.shutdown()
    telemetry = str(logs) + str(
        [
            (s.name, dict(s.attributes or {}), s.status.description, s.events)
            for s in exporter.get_finished_spans()
        ]
    )
    everything = telemetry + "".join(texts)
    assert secret not in everything and token not in everything
    assert "private-value" not in everything
    assert "private:key" not in telemetry  # keys only with trace_keys / log_keys


def test_plain_http_to_a_remote_host_warns() -> None:
    with pytest.warns(InsecureEndpointWarning, match="plain http"):
        AsyncDynamoKV(table="kvt", endpoint="http://dynamodb.internal.example:8000")


def test_loopback_and_https_do_not_warn() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AsyncDynamoKV(table="kvt", endpoint="http://127.0.0.1:8000")
        AsyncDynamoKV(table="kvt", endpoint="https://dynamodb.internal.example")
        AsyncDynamoKV(table="kvt")


async def test_reserved_words_and_odd_attribute_names_travel_as_names(
    dynalite_endpoint: str,
) -> None:
    table = f"h-{uuid.uuid4().hex[:12]}"
    async with AsyncDynamoKV(
        table=table,
        endpoint=dynalite_endpoint,
        create_table=True,
        partition_key="key",
        value_attribute="data value",
        ttl_attribute="ttl",
        version_attribute="size) OR (#x",
    ) as store:
        await store.set("k", "v", ttl=100)
        assert await store.get("k") == "v"
        assert await store.incr("n") == 1
        _, version = await store.get_with_version("k")
        assert await store.set("k", "w", if_version=version)
        assert await store.delete("k")
        assert [k async for k in store.keys()] == ["n"]
        raw = await store.client.get_item(TableName=table, Key={"key": {"S": "n"}})
        assert set(raw["Item"]) == {"key", "data value", "size) OR (#x", "tk"}
        await store.client.delete_table(TableName=table)
