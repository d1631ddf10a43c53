"""The contenders: one class per client library, all behind the same five calls.

Each contender reads and writes the same items (partition key ``pk``, string attribute
``value``) in the table ``bench``, except py-key-value-aio, which insists on its own
schema (``collection`` + ``key``, JSON in ``value``) and so gets its own table ``pkv``
holding the same keys and values.

Library imports happen in `Contender.load`, so that a worker can time them apart from
opening the client. A method that a library lacks is None; that workload skips it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

TABLE = "bench"
PKV_TABLE = "pkv"
PKV_COLLECTION = "bench"
REGION = "us-east-1"
DUMMY_KEY = "x"
POOL = 64  # aiodynkv's default max_pool_connections; every botocore contender gets it too
AIODYNAMO_POOL = 100  # aiohttp's default connector limit, aiodynamo's out of the box
BATCH_CONCURRENCY = 8  # aiodynkv's default batch_concurrency; the hand-written batches match it
MAX_BATCH_ROUNDS = 50  # bound on unprocessed-item retry rounds (the stub never returns any)


def chunked(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


async def gather_bounded(
    calls: Iterable[Callable[[], Awaitable[Any]]], concurrency: int
) -> list[Any]:
    """Run the calls with at most `concurrency` in flight, like aiodynkv's batch driver."""
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


class Contender:
    """A client library under test. Subclasses set the calls they support."""

    name = "?"
    package = "?"  # distribution whose version the report prints
    get: Callable[[str], Awaitable[Any]] | None = None
    set: Callable[[str, str], Awaitable[Any]] | None = None
    get_many: Callable[[list[str]], Awaitable[Any]] | None = None
    set_many: Callable[[dict[str, str]], Awaitable[Any]] | None = None

    def __init__(self, url: str) -> None:
        self.url = url

    def load(self) -> None:
        """Import the library (timed separately from `open`)."""

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class _DropSpans:
    """A span exporter that drops what it is given: tracing's cost without an export's."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        del spans
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        del timeout_millis
        return True


class Aiodynkv(Contender):
    """aiodynkv; with no arguments exactly as shipped (`AsyncDynamoKV(table=, endpoint=)`).

    The default config: lean transport, read coalescing on, telemetry on with no
    OpenTelemetry SDK installed (the API's no-op providers), structlog unconfigured.
    ``fields`` change single `KVConfig` fields; ``sdk=True`` installs an OpenTelemetry SDK
    the way an application would: a `TracerProvider` with a `BatchSpanProcessor` (whose
    exporter drops the spans) and a `MeterProvider` with an `InMemoryMetricReader`.
    """

    name = "aiodynkv"
    package = "aiodynkv"

    def __init__(self, url: str, *, sdk: bool = False, **fields: Any) -> None:
        super().__init__(url)
        self.fields = fields
        self.sdk = sdk
        extra = [f"{k}={v!r}" for k, v in fields.items()] + (["OpenTelemetry SDK"] if sdk else [])
        if extra:
            self.name = f"aiodynkv {', '.join(extra)}"

    def load(self) -> None:
        import aiodynkv

        self.module = aiodynkv
        if self.sdk:
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            self.tracer_provider = TracerProvider()
            self.tracer_provider.add_span_processor(BatchSpanProcessor(_DropSpans()))  # type: ignore[arg-type]
            self.meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])

    async def open(self) -> None:
        fields: dict[str, Any] = {"table": TABLE, "endpoint": self.url, **self.fields}
        if self.sdk:
            fields["tracer_provider"] = self.tracer_provider
            fields["meter_provider"] = self.meter_provider
        self.kv = await self.module.AsyncDynamoKV(**fields).open()
        kv = self.kv

        async def get(key: str) -> Any:
            return await kv.get(key, None)

        self.get = get
        self.set = kv.set
        self.get_many = kv.get_many
        self.set_many = kv.set_many

    async def close(self) -> None:
        await self.kv.aclose()
        if self.sdk:
            self.tracer_provider.shutdown()
            self.meter_provider.shutdown()


def _boto_kwargs(url: str, config: Any) -> dict[str, Any]:
    return {
        "endpoint_url": url,
        "region_name": REGION,
        "aws_access_key_id": DUMMY_KEY,
        "aws_secret_access_key": DUMMY_KEY,
        "config": config,
    }


class _Aioboto3(Contender):
    """What the two aioboto3 contenders load."""

    def load(self) -> None:
        import aioboto3
        from aiobotocore.config import AioConfig

        self.aioboto3 = aioboto3
        self.config_cls = AioConfig


class RawAioboto3(_Aioboto3):
    """The floor for botocore-based code: plain client calls, nothing on top.

    The pool is 64 connections (aiodynkv's default; botocore's own is 10) so that the
    64-task workload measures the SDK, not a queue for connections. Batches are chunked
    and sent 8 at a time, as aiodynkv does.
    """

    name = "aioboto3 (raw client)"
    package = "aioboto3"

    async def open(self) -> None:
        session = self.aioboto3.Session()
        config = self.config_cls(max_pool_connections=POOL)
        self.cm = session.client("dynamodb", **_boto_kwargs(self.url, config))
        self.client = await self.cm.__aenter__()

    async def close(self) -> None:
        await self.cm.__aexit__(None, None, None)

    async def get(self, key: str) -> Any:  # type: ignore[override]
        response = await self.client.get_item(
            TableName=TABLE, Key={"pk": {"S": key}}, ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else item["value"]["S"]

    async def set(self, key: str, value: str) -> None:  # type: ignore[override]
        await self.client.put_item(TableName=TABLE, Item={"pk": {"S": key}, "value": {"S": value}})

    async def get_many(self, keys: list[str]) -> dict[str, str]:  # type: ignore[override]
        found: dict[str, str] = {}

        async def send(chunk: list[str]) -> None:
            request = {TABLE: {"Keys": [{"pk": {"S": k}} for k in chunk], "ConsistentRead": True}}
            for _ in range(MAX_BATCH_ROUNDS):
                response = await self.client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(TABLE, ()):
                    found[item["pk"]["S"]] = item["value"]["S"]
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    return

        await gather_bounded(
            [lambda c=c: send(c) for c in chunked(list(dict.fromkeys(keys)), 100)],
            BATCH_CONCURRENCY,
        )
        return found

    async def set_many(self, items: dict[str, str]) -> None:  # type: ignore[override]
        async def send(chunk: list[tuple[str, str]]) -> None:
            request = {
                TABLE: [
                    {"PutRequest": {"Item": {"pk": {"S": k}, "value": {"S": v}}}} for k, v in chunk
                ]
            }
            for _ in range(MAX_BATCH_ROUNDS):
                response = await self.client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    return

        await gather_bounded(
            [lambda c=c: send(c) for c in chunked(list(items.items()), 25)], BATCH_CONCURRENCY
        )


class BatchWriter(_Aioboto3):
    """aioboto3's resource layer: ``Table.batch_writer`` (bulk writes only)."""

    name = "aioboto3 Table.batch_writer"
    package = "aioboto3"

    async def open(self) -> None:
        session = self.aioboto3.Session()
        config = self.config_cls(max_pool_connections=POOL)
        self.cm = session.resource("dynamodb", **_boto_kwargs(self.url, config))
        resource = await self.cm.__aenter__()
        self.table = await resource.Table(TABLE)

    async def close(self) -> None:
        await self.cm.__aexit__(None, None, None)

    async def set_many(self, items: dict[str, str]) -> None:  # type: ignore[override]
        async with self.table.batch_writer() as writer:
            for key, value in items.items():
                await writer.put_item(Item={"pk": key, "value": value})


class Aiodynamo(Contender):
    """aiodynamo with its aiohttp HTTP client, set up as its documentation shows.

    One `aiohttp.ClientSession` for the process with a pool of 100 connections
    (aiohttp's default, more than the 64 the others get), `numeric_type=float` (its
    default and cheapest number converter) and its default throttling retries. Batches
    are chunked (100 keys / 25 items per request: aiodynamo's batch calls take one
    request's worth) and sent 8 at a time, as aiodynkv does.
    """

    name = "aiodynamo (aiohttp)"
    package = "aiodynamo"

    def load(self) -> None:
        import aiohttp
        from aiodynamo.client import Client
        from aiodynamo.credentials import Key, StaticCredentials
        from aiodynamo.errors import ItemNotFound
        from aiodynamo.http.aiohttp import AIOHTTP
        from aiodynamo.models import BatchGetRequest, BatchWriteRequest
        from yarl import URL

        self.aiohttp = aiohttp
        self.client_cls = Client
        self.key_cls, self.credentials_cls = Key, StaticCredentials
        self.not_found = ItemNotFound
        self.http_cls = AIOHTTP
        self.batch_get_cls, self.batch_write_cls = BatchGetRequest, BatchWriteRequest
        self.url_cls = URL

    async def open(self) -> None:
        connector = self.aiohttp.TCPConnector(limit=AIODYNAMO_POOL)
        self.session = self.aiohttp.ClientSession(connector=connector)
        self.client = self.client_cls(
            self.http_cls(self.session),
            self.credentials_cls(self.key_cls(DUMMY_KEY, DUMMY_KEY)),
            REGION,
            endpoint=self.url_cls(self.url),
            numeric_type=float,
        )

    async def close(self) -> None:
        await self.session.close()

    async def get(self, key: str) -> Any:  # type: ignore[override]
        try:
            item = await self.client.get_item(TABLE, {"pk": key}, consistent_read=True)
        except self.not_found:
            return None
        return item["value"]

    async def set(self, key: str, value: str) -> None:  # type: ignore[override]
        await self.client.put_item(TABLE, {"pk": key, "value": value})

    async def get_many(self, keys: list[str]) -> dict[str, str]:  # type: ignore[override]
        found: dict[str, str] = {}

        async def send(chunk: list[str]) -> None:
            wanted = [{"pk": k} for k in chunk]
            for _ in range(MAX_BATCH_ROUNDS):
                request = self.batch_get_cls(keys=wanted, consistent_read=True)
                response = await self.client.batch_get({TABLE: request})
                for item in response.items.get(TABLE, ()):
                    found[item["pk"]] = item["value"]
                wanted = response.unprocessed_keys.get(TABLE) or []
                if not wanted:
                    return

        await gather_bounded(
            [lambda c=c: send(c) for c in chunked(list(dict.fromkeys(keys)), 100)],
            BATCH_CONCURRENCY,
        )
        return found

    async def set_many(self, items: dict[str, str]) -> None:  # type: ignore[override]
        async def send(chunk: list[tuple[str, str]]) -> None:
            puts = [{"pk": k, "value": v} for k, v in chunk]
            for _ in range(MAX_BATCH_ROUNDS):
                result = await self.client.batch_write(
                    {TABLE: self.batch_write_cls(items_to_put=puts)}
                )
                left = result.get(TABLE)
                puts = left.unput_items if left else []
                if not puts:
                    return

        await gather_bounded(
            [lambda c=c: send(c) for c in chunked(list(items.items()), 25)], BATCH_CONCURRENCY
        )


class PyKeyValue(Contender):
    """py-key-value-aio's DynamoDBStore, on its own table (its schema differs).

    It is handed an aiobotocore client configured like the raw contender's (a pool of
    64 connections instead of botocore's default 10), which its constructor accepts;
    it checks the table and TTL when opened and stores each value as a JSON object.
    Its reads are eventually consistent (it sends no ``ConsistentRead``), so they cost
    half the capacity of the others' strongly consistent reads.
    """

    name = "py-key-value-aio"
    package = "py-key-value-aio"

    def load(self) -> None:
        import aioboto3
        from aiobotocore.config import AioConfig
        from key_value.aio.stores.dynamodb import DynamoDBStore

        self.store_cls = DynamoDBStore
        self.aioboto3, self.config_cls = aioboto3, AioConfig

    async def open(self) -> None:
        config = self.config_cls(max_pool_connections=POOL)
        session = self.aioboto3.Session()
        self.cm = session.client("dynamodb", **_boto_kwargs(self.url, config))
        client = await self.cm.__aenter__()
        self.store = self.store_cls(
            client=client, table_name=PKV_TABLE, default_collection=PKV_COLLECTION
        )
        await self.store.__aenter__()

    async def close(self) -> None:
        await self.store.__aexit__(None, None, None)
        await self.cm.__aexit__(None, None, None)

    async def get(self, key: str) -> Any:  # type: ignore[override]
        entry = await self.store.get(key)
        return None if entry is None else entry["value"]

    async def set(self, key: str, value: str) -> None:  # type: ignore[override]
        await self.store.put(key, {"value": value})

    async def get_many(self, keys: list[str]) -> list[Any]:  # type: ignore[override]
        return await self.store.get_many(keys)

    async def set_many(self, items: dict[str, str]) -> None:  # type: ignore[override]
        await self.store.put_many(list(items), [{"value": v} for v in items.values()])


CONTENDERS: dict[str, Callable[[str], Contender]] = {
    "aiodynkv": Aiodynkv,
    "aiodynkv-coalesce-off": lambda url: Aiodynkv(url, coalesce_reads=False),
    "aiodynkv-botocore": lambda url: Aiodynkv(url, transport="botocore"),
    "aiodynkv-sdk": lambda url: Aiodynkv(url, sdk=True),
    "aioboto3": RawAioboto3,
    "batch_writer": BatchWriter,
    "aiodynamo": Aiodynamo,
    "pykv": PyKeyValue,
}
