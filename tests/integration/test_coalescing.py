"""Read coalescing: concurrent gets share BatchGetItem requests; each caller keeps its result."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import botocore.exceptions as bex
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aiodynkv import (
    AccessDeniedError,
    AsyncDynamoKV,
    KeyNotFoundError,
    TableNotFoundError,
    ThrottledError,
)


class Recorder:
    """Wraps a real client and records the requests sent through it."""

    def __init__(
        self,
        client: Any,
        deny_batch: bool = False,
        unprocessed_rounds: int = 0,
        deny_message: str = "not authorized to perform: dynamodb:BatchGetItem",
    ) -> None:
        self._client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.deny_batch = deny_batch
        self.deny_message = deny_message
        self.unprocessed_rounds = unprocessed_rounds

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        async def call(**request: Any) -> Any:
            self.calls.append((name, request))
            if name == "batch_get_item" and self.deny_batch:
                raise bex.ClientError(
                    {
                        "Error": {
                            "Code": "AccessDeniedException",
                            "Message": self.deny_message,
                        }
                    },
                    "BatchGetItem",
                )
            if name == "batch_get_item" and self.unprocessed_rounds:
                self.unprocessed_rounds -= 1
                ((table, spec),) = request["RequestItems"].items()
                return {"Responses": {table: []}, "UnprocessedKeys": {table: spec}}
            return await method(**request)

        return call

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.calls if n == name)


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest_asyncio.fixture
async def base(moto_endpoint: str) -> AsyncIterator[AsyncDynamoKV]:
    table = f"c-{uuid.uuid4().hex[:12]}"
    async with AsyncDynamoKV(table=table, endpoint=moto_endpoint, create_table=True) as kv:
        await kv.set_many({f"k{i}": f"v{i}" for i in range(300)})
        yield kv
        await kv.client.delete_table(TableName=table)


async def test_concurrent_gets_share_batch_requests(base: AsyncDynamoKV) -> None:
    recorder = Recorder(base.client)
    async with AsyncDynamoKV(base.config, client=recorder, transport="botocore") as kv:
        values = await asyncio.gather(*(kv.get(f"k{i}") for i in range(64)))
    assert values == [f"v{i}" for i in range(64)]
    assert recorder.count("batch_get_item") == 1
    assert recorder.count("get_item") == 0
    ((_, request),) = [c for c in recorder.calls if c[0] == "batch_get_item"]
    spec = request["RequestItems"][base.config.table]
    assert len(spec["Keys"]) == 64 and spec["ConsistentRead"] is True


async def test_more_than_100_concurrent_gets_split_into_requests_of_100(
    base: AsyncDynamoKV,
) -> None:
    recorder = Recorder(base.client)
    async with AsyncDynamoKV(base.config, client=recorder, transport="botocore") as kv:
        values = await asyncio.gather(*(kv.get(f"k{i}") for i in range(250)))
    assert values == [f"v{i}" for i in range(250)]
    sizes = sorted(
        len(r["RequestItems"][base.config.table]["Keys"])
        for n, r in recorder.calls
        if n == "batch_get_item"
    )
    assert sizes == [50, 100, 100]


async def test_duplicates_are_fetched_once_and_misses_stay_per_caller(base: AsyncDynamoKV) -> None:
    recorder = Recorder(base.client)
    async with AsyncDynamoKV(base.config, client=recorder, transport="botocore") as kv:
        results = await asyncio.gather(
            kv.get("k1"),
            kv.get("k1"),
            kv.get("nope", "dflt"),
            kv.get("nope"),
            return_exceptions=True,
        )
    assert list(results[:3]) == ["v1", "v1", "dflt"]
    assert isinstance(results[3], KeyNotFoundError) and results[3].key == "nope"
    ((_, request),) = [c for c in recorder.calls if c[0] == "batch_get_item"]
    assert len(request["RequestItems"][base.config.table]["Keys"]) == 2


async def test_a_lone_get_is_a_plain_get_item(base: AsyncDynamoKV) -> None:
    recorder = Recorder(base.client)
    async with AsyncDynamoKV(base.config, client=recorder, transport="botocore") as kv:
        assert await kv.get("k5") == "v5"
        assert await kv.get("k6") == "v6"
    assert recorder.count("get_item") == 2 and recorder.count("batch_get_item") == 0


async def test_after_a_lone_get_the_next_turns_first_read_goes_out_without_waiting(
    base: AsyncDynamoKV,
) -> None:
    recorder = Recorder(base.client)
    async with AsyncDynamoKV(base.config, client=recorder, transport="botocore") as kv:
        assert await kv.get("k0") == "v0"  # alone after its turn
        turn = [asyncio.ensure_future(kv.get(f"k{i}")) for i in range(1, 65)]
        await asyncio.sleep(0)  # the turn ran: its first read was sent without waiting
        assert recorder.count("get_item") == 2
        assert await asyncio.gather(*turn) == [f"v{i}" for i in range(1, 65)]
        # company came: the next turn's reads are led with a pass and share one request
        assert await asyncio.gather(*(kv.get(f"k{i}") for i in range(65, 129))) == [
            f"v{i}" for i in range(65, 129)
        ]
    sizes = [
        len(r["RequestItems"][base.config.table]["Keys"])
        for n, r in recorder.calls
        if n == "batch_get_item"
    ]
    assert recorder.count("get_item") == 2 and sizes == [63, 64]


async def test_a_cancelled_first_read_still_lets_the_turns_other_reads_go_out(
    base: AsyncDynamoKV,
) -> None:
    recorder = Recorder(base.client)
    async with AsyncDynamoKV(base.config, client=recorder, transport="botocore") as kv:
        tasks = [asyncio.ensure_future(kv.get(f"k{i}")) for i in range(3)]
        await asyncio.sleep(0)  # each task has registered its read; the first waits to flush
        tasks[0].cancel()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        assert isinstance(results[0], asyncio.CancelledError)
        assert results[1:] == ["v1", "v2"]
    ((_, request),) = [c for c in recorder.calls if c[0] == "batch_get_item"]
    assert len(request["RequestItems"][base.config.table]["Keys"]) == 2  # not the cancelled one
    assert recorder.count("get_item") == 0


async def test_a_read_that_arrives_while_a_lone_read_is_in_flight_is_sent_too(
    base: AsyncDynamoKV,
) -> None:
    recorder = Recorder(base.client)
    async with AsyncDynamoKV(base.config, client=recorder, transport="botocore") as kv:
        first = asyncio.ensure_future(kv.get("k1"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the first read has gone out alone
        found = await asyncio.wait_for(asyncio.gather(first, kv.get("k2")), 10)
        assert list(found) == ["v1", "v2"]
    assert recorder.count("get_item") == 2


async def test_coalescing_can_be_turned_off(base: AsyncDynamoKV) -> None:
    recorder = Recorder(base.client)
    async with AsyncDynamoKV(
        base.config, client=recorder, transport="botocore", coalesce_reads=False
    ) as kv:
        await asyncio.gather(*(kv.get(f"k{i}") for i in range(10)))
    assert recorder.count("get_item") == 10 and recorder.count("batch_get_item") == 0


async def test_a_window_gathers_reads_across_loop_turns(base: AsyncDynamoKV) -> None:
    recorder = Recorder(base.client)
    # A window far longer than the late reads' 0.01 s: a loop that a loaded machine
    # stalls for a while still wakes them before the window's timer.
    async with AsyncDynamoKV(
        base.config, client=recorder, transport="botocore", coalesce_window=0.5
    ) as kv:

        async def late(i: int) -> Any:
            await asyncio.sleep(0.01)
            return await kv.get(f"k{i}")

        assert list(await asyncio.gather(kv.get("k0"), late(1), late(2))) == ["v0", "v1", "v2"]
    assert recorder.count("batch_get_item") == 1


async def test_a_size_bound_sends_the_reads_before_the_window_ends(base: AsyncDynamoKV) -> None:
    recorder = Recorder(base.client)
    # A window far longer than the test: only the size bound can send the first 20.
    async with AsyncDynamoKV(
        base.config,
        client=recorder,
        transport="botocore",
        coalesce_window=1.0,
        coalesce_max_keys=10,
    ) as kv:
        first = [asyncio.ensure_future(kv.get(f"k{i}")) for i in range(25)]
        done, _ = await asyncio.wait(first[:20], timeout=0.5)
        assert len(done) == 20  # sent on size, not on the window's timer
        assert all(not task.done() for task in first[20:])  # 5 keys: still in their window
        values = await asyncio.gather(*first)
    assert values == [f"v{i}" for i in range(25)]
    sizes = [
        len(r["RequestItems"][base.config.table]["Keys"])
        for n, r in recorder.calls
        if n == "batch_get_item"
    ]
    assert sizes == [10, 10, 5]


async def test_each_caller_gets_its_own_exception(moto_endpoint: str) -> None:
    async with AsyncDynamoKV(table="no-such-table", endpoint=moto_endpoint) as kv:
        results = await asyncio.gather(
            *(kv.get(f"key-{i}") for i in range(5)), return_exceptions=True
        )
    assert all(isinstance(r, TableNotFoundError) for r in results)
    assert [r.key for r in results if isinstance(r, TableNotFoundError)] == [
        f"key-{i}" for i in range(5)
    ]
    assert len({id(r) for r in results}) == 5
    assert all("key-" not in str(r) for r in results)  # keys stay out of messages


async def test_a_cancelled_caller_leaves_the_others_untouched(base: AsyncDynamoKV) -> None:
    async with AsyncDynamoKV(base.config) as kv:
        tasks = [asyncio.ensure_future(kv.get(f"k{i}")) for i in range(10)]
        await asyncio.sleep(0)
        tasks[3].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[3], asyncio.CancelledError)
        assert [r for i, r in enumerate(results) if i != 3] == [
            f"v{i}" for i in range(10) if i != 3
        ]
        assert await kv.get("k3") == "v3"  # the store is still usable


async def test_reads_whose_callers_all_gave_up_send_nothing(base: AsyncDynamoKV) -> None:
    recorder = Recorder(base.client)
    async with AsyncDynamoKV(
        base.config, client=recorder, transport="botocore", coalesce_window=0.05
    ) as kv:
        tasks = [asyncio.ensure_future(kv.get(f"k{i}")) for i in range(3)]
        await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        await asyncio.sleep(0.1)  # past the window: the flush finds no caller left
        assert recorder.count("batch_get_item") == recorder.count("get_item") == 0
        assert await kv.get("k1") == "v1"
    assert recorder.count("get_item") == 1


async def test_unprocessed_keys_are_retried(base: AsyncDynamoKV) -> None:
    recorder = Recorder(base.client, unprocessed_rounds=2)
    async with AsyncDynamoKV(base.config, client=recorder, transport="botocore") as kv:
        values = await asyncio.gather(*(kv.get(f"k{i}") for i in range(20)))
    assert values == [f"v{i}" for i in range(20)]
    assert recorder.count("batch_get_item") == 3


async def test_without_batch_permission_it_falls_back_to_get_item(base: AsyncDynamoKV) -> None:
    recorder = Recorder(base.client, deny_batch=True)
    async with AsyncDynamoKV(base.config, client=recorder, transport="botocore") as kv:
        first = await asyncio.gather(*(kv.get(f"k{i}") for i in range(5)))
        second = await asyncio.gather(*(kv.get(f"k{i}") for i in range(5)))
    assert first == second == [f"v{i}" for i in range(5)]
    assert recorder.count("batch_get_item") == 1  # tried once, then never again
    assert recorder.count("get_item") == 10


async def test_a_denial_that_is_not_about_batch_reads_fails_each_caller_and_keeps_coalescing(
    base: AsyncDynamoKV,
) -> None:
    recorder = Recorder(base.client, deny_batch=True, deny_message="the key is disabled")
    async with AsyncDynamoKV(base.config, client=recorder, transport="botocore") as kv:
        first = await asyncio.gather(*(kv.get(f"k{i}") for i in range(3)), return_exceptions=True)
        assert all(isinstance(error, AccessDeniedError) for error in first), first
        assert [error.key for error in first] == ["k0", "k1", "k2"]  # type: ignore[union-attr]
        await asyncio.gather(*(kv.get(f"k{i}") for i in range(3)), return_exceptions=True)
    assert recorder.count("batch_get_item") == 2  # not turned off
    assert recorder.count("get_item") == 0


async def test_keys_still_unprocessed_at_the_deadline_fail_each_caller_as_throttled(
    base: AsyncDynamoKV,
) -> None:
    recorder = Recorder(base.client, unprocessed_rounds=10_000)
    config = base.config.replace(max_attempts=2, read_timeout=0.2)
    async with AsyncDynamoKV(config, client=recorder, transport="botocore") as kv:
        results = await asyncio.gather(*(kv.get(f"k{i}") for i in range(3)), return_exceptions=True)
    assert all(isinstance(error, ThrottledError) for error in results), results
    assert [error.key for error in results] == ["k0", "k1", "k2"]  # type: ignore[union-attr]
    assert recorder.count("get_item") == 0


async def test_aclose_lets_accepted_reads_finish(base: AsyncDynamoKV) -> None:
    kv = await AsyncDynamoKV(base.config).open()
    tasks = [asyncio.ensure_future(kv.get(f"k{i}")) for i in range(30)]
    await asyncio.sleep(0)
    await kv.aclose()
    assert [t.result() for t in tasks] == [f"v{i}" for i in range(30)]


async def test_every_get_keeps_its_span_linked_to_the_shared_request(
    base: AsyncDynamoKV, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    async with AsyncDynamoKV(base.config, tracer_provider=provider) as kv:
        await asyncio.gather(*(kv.get(f"k{i}") for i in range(8)))
    finished = exporter.get_finished_spans()
    gets = [s for s in finished if s.name.startswith("GetItem")]
    (batch,) = [s for s in finished if s.name.startswith("BatchGetItem")]
    assert len(gets) == 8
    assert (batch.attributes or {})["db.operation.batch.size"] == 8
    assert {link.context.span_id for link in batch.links} == {s.context.span_id for s in gets}
    assert batch.parent is None  # not parented by whichever caller came first
    assert all((s.attributes or {})["aiodynkv.outcome"] == "hit" for s in gets)


async def test_a_flush_that_never_answers_gives_up_within_the_call_budget(
    base: AsyncDynamoKV, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiodynkv import KVTimeoutError
    from aiodynkv._coalesce import ReadCoalescer

    async def hang(_self: ReadCoalescer, _pending: Any) -> None:
        await asyncio.Event().wait()  # a shared request that never comes back

    monkeypatch.setattr(ReadCoalescer, "_fetch", hang)
    settings = {"connect_timeout": 0.2, "read_timeout": 0.3, "max_attempts": 1}
    async with AsyncDynamoKV(base.config, **settings) as kv:
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.wait_for(
            asyncio.gather(kv.get("a"), kv.get("b"), return_exceptions=True), timeout=10
        )
        elapsed = loop.time() - started
    assert all(isinstance(r, KVTimeoutError) for r in results)
    assert [r.key for r in results if isinstance(r, KVTimeoutError)] == ["a", "b"]
    assert elapsed < 0.5 + 5.0  # budget + a loaded machine's slack; forever is 10 s


async def test_a_flush_that_breaks_fails_every_caller_instead_of_hanging(
    base: AsyncDynamoKV, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiodynkv import KVError
    from aiodynkv._coalesce import ReadCoalescer

    async def broken(_self: ReadCoalescer, _live: Any) -> None:
        raise RuntimeError("cannot enter context")  # what a shared Context once did

    monkeypatch.setattr(ReadCoalescer, "_fetch_many", broken)
    async with AsyncDynamoKV(base.config) as kv:
        results = await asyncio.wait_for(
            asyncio.gather(kv.get("a"), kv.get("b"), return_exceptions=True), timeout=10
        )
        assert all(isinstance(r, KVError) for r in results)
        monkeypatch.undo()
        await base.set("a", "1")
        assert await kv.get("a") == "1"  # the store still works afterwards


async def test_an_untraced_shared_request_makes_no_links(
    base: AsyncDynamoKV, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a recording tracer no span is started: nothing to link, nothing allocated."""
    from aiodynkv import _coalesce

    made: list[Any] = []
    link = _coalesce.Link  # type: ignore[attr-defined]

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(args)
        return link(*args, **kwargs)

    monkeypatch.setattr(_coalesce, "Link", counted)
    async with AsyncDynamoKV(base.config) as kv:
        values = await asyncio.gather(*(kv.get(f"k{i}") for i in range(8)))
    assert values == [f"v{i}" for i in range(8)]
    assert made == []
