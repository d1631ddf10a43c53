"""AsyncDynamoKV against real servers: lifecycle, failures, table management, batch retries."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aioboto3
import pytest
import pytest_asyncio

from aiodynkv import (
    AsyncDynamoKV,
    BatchIncompleteError,
    KVConfig,
    KVConfigError,
    KVConnectionError,
    KVError,
    KVTimeoutError,
    StoreClosedError,
    TableNotFoundError,
    WriteInDoubtError,
)
from aiodynkv._transport import ServiceError
from aiodynkv._transport.botocore import _uses_local_credentials


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_table() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def kv(moto_endpoint: str) -> AsyncIterator[AsyncDynamoKV]:
    table = fresh_table()
    async with AsyncDynamoKV(table=table, endpoint=moto_endpoint, create_table=True) as store:
        yield store
        await store.client.delete_table(TableName=table)


# -- lifecycle -------------------------------------------------------------------------


async def test_calls_before_open_raise_store_closed(moto_endpoint: str) -> None:
    store = AsyncDynamoKV(table="kvt", endpoint=moto_endpoint)
    with pytest.raises(StoreClosedError, match="unopened"):
        await store.get("k")
    assert store.client is None and not store.is_open
    assert "unopened" in repr(store)


async def test_open_twice_raises_and_aclose_is_idempotent(kv: AsyncDynamoKV) -> None:
    with pytest.raises(StoreClosedError, match="already opened"):
        await kv.open()
    view = kv.namespace("ns")
    await view.set("k", "v")
    assert "namespace='ns'" in repr(view)


async def test_an_injected_client_is_used_and_never_closed(moto_endpoint: str) -> None:
    table = fresh_table()
    session = aioboto3.Session()
    async with session.client(
        "dynamodb",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    ) as client:
        async with AsyncDynamoKV(table=table, client=client, create_table=True) as kv:
            assert kv.client is client
            await kv.set("k", "v")
        # still usable after the store closed
        item = await client.get_item(TableName=table, Key={"pk": {"S": "k"}})
        assert item["Item"]["value"] == {"S": "v"}
        await client.delete_table(TableName=table)


async def test_aclose_waits_for_calls_in_flight(kv: AsyncDynamoKV) -> None:
    store = await AsyncDynamoKV(kv.config).open()
    pending = [asyncio.ensure_future(store.set(f"k{i}", "v")) for i in range(20)]
    await asyncio.sleep(0)
    await store.aclose()
    assert all(task.done() for task in pending)
    assert all(task.result() is True for task in pending)
    assert await kv.get_many([f"k{i}" for i in range(20)]) == {f"k{i}": "v" for i in range(20)}


def test_loopback_without_credentials_uses_placeholders(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from aiodynkv import KVConfig

    for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    local = KVConfig(table="kvt", endpoint="http://127.0.0.1:8000")
    assert _uses_local_credentials(local)
    assert not _uses_local_credentials(KVConfig(table="kvt"))
    assert not _uses_local_credentials(local.replace(profile="dev"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA")
    assert not _uses_local_credentials(local)


# -- failures are typed, bounded, chained ------------------------------------------------------


async def test_missing_table_raises_table_not_found_chained(moto_endpoint: str) -> None:
    async with AsyncDynamoKV(table="no-such-table", endpoint=moto_endpoint) as kv:
        with pytest.raises(TableNotFoundError, match="no-such-table") as info:
            await kv.get("k")
        assert isinstance(info.value.__cause__, ServiceError)  # the transport's failure
        health = await kv.health()
    assert health.status == "DOWN"
    assert health.details["error"] == "TableNotFoundError"


async def test_refused_connection_raises_kv_connection_error_quickly() -> None:
    endpoint = f"http://127.0.0.1:{unused_port()}"
    async with AsyncDynamoKV(
        table="kvt", endpoint=endpoint, connect_timeout=3.0, read_timeout=0.5, max_attempts=1
    ) as kv:
        with pytest.raises(KVConnectionError) as info:
            await asyncio.wait_for(kv.get("k"), timeout=10)
        assert info.value.key == "k"
        health = await asyncio.wait_for(kv.health(), timeout=10)
    assert health.status == "DOWN"
    assert health.details["error"] == "KVConnectionError"
    assert "endpoint" not in health.details  # nothing a stranger should see


_INTERNAL_NAMES = ("WireError", "AttemptError", "ServiceError", "_wire", "aiodynkv._")


@pytest.mark.parametrize("transport", ["lean", "botocore"])
async def test_connection_and_timeout_errors_name_no_internal_class(transport: str) -> None:
    held: list[asyncio.StreamWriter] = []

    async def never_answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # read nothing, answer nothing: the client's read times out

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    fields: dict[str, Any] = {"table": "kvt", "max_attempts": 1, "transport": transport}
    try:
        seen: list[KVError] = []
        async with AsyncDynamoKV(
            endpoint=f"http://127.0.0.1:{unused_port()}", connect_timeout=3.0, **fields
        ) as kv:
            with pytest.raises(KVConnectionError) as refused:
                await asyncio.wait_for(kv.get("k"), timeout=10)
            seen.append(refused.value)
            health = await kv.health()
        async with AsyncDynamoKV(
            endpoint=f"http://127.0.0.1:{port}", read_timeout=0.3, **fields
        ) as kv:
            with pytest.raises(KVTimeoutError) as late:
                await asyncio.wait_for(kv.get("k"), timeout=10)
            seen.append(late.value)
            # A write whose request went out may have been applied: in doubt, not a timeout.
            with pytest.raises(WriteInDoubtError) as sent:
                await asyncio.wait_for(kv.set("k", "v"), timeout=10)
            seen.append(sent.value)
    finally:
        silent.close()
        for writer in held:
            writer.close()
        await silent.wait_closed()
    for error in seen:
        for text in (str(error), error.reason or "", repr(error)):
            assert not any(name in text for name in _INTERNAL_NAMES), text
        assert str(error).startswith(f"{error.operation} on table 'kvt'")
    assert not any(name in health.details["message"] for name in _INTERNAL_NAMES)


async def test_health_of_an_unopened_store_is_down() -> None:
    health = await AsyncDynamoKV(table="kvt", endpoint="http://127.0.0.1:9").health()
    assert health.status == "DOWN"
    assert health.details["table"] == "kvt"


async def test_open_with_create_table_against_a_dead_server_raises_and_closes() -> None:
    store = AsyncDynamoKV(
        table="kvt",
        endpoint=f"http://127.0.0.1:{unused_port()}",
        create_table=True,
        connect_timeout=0.5,
        max_attempts=1,
    )
    with pytest.raises(KVConnectionError):
        await store.open()
    assert not store.is_open


# -- table management ---------------------------------------------------------------------------


async def test_ensure_table_is_safe_concurrently_and_twice(moto_endpoint: str) -> None:
    table = fresh_table()
    stores = [await AsyncDynamoKV(table=table, endpoint=moto_endpoint).open() for _ in range(3)]
    try:
        await asyncio.gather(*(s.ensure_table() for s in stores))
        await stores[0].ensure_table()
        await stores[1].set("k", "v")
        assert await stores[2].get("k") == "v"
    finally:
        await stores[0].client.delete_table(TableName=table)
        for store in stores:
            await store.aclose()


async def test_ensure_table_refuses_a_table_with_another_key(moto_endpoint: str) -> None:
    table = fresh_table()
    async with AsyncDynamoKV(table=table, endpoint=moto_endpoint, partition_key="id") as kv:
        await kv.ensure_table()
    with pytest.raises(KVConfigError, match="partition_key"):
        async with AsyncDynamoKV(table=table, endpoint=moto_endpoint, create_table=True):
            pass  # pragma: no cover


# -- batches: unprocessed keys are retried, and what stays is reported exactly ---------------


class StubbornClient:
    """Wraps a real client; the server never processes the keys in `stuck` (as under throttling)."""

    def __init__(self, client: Any, stuck: set[str], flaky_rounds: int = 0) -> None:
        self._client = client
        self.stuck = stuck
        self.flaky_rounds = flaky_rounds
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _split(self, entries: list[Any], pk: Any) -> tuple[list[Any], list[Any]]:
        self.calls += 1
        if self.calls <= self.flaky_rounds:
            return [], entries
        keep = [e for e in entries if pk(e) not in self.stuck]
        return keep, [e for e in entries if pk(e) in self.stuck]

    async def batch_get_item(self, **request: Any) -> Any:
        ((table, spec),) = request["RequestItems"].items()
        keep, left = self._split(spec["Keys"], lambda k: k["pk"]["S"])
        response: dict[str, Any] = {"Responses": {table: []}, "UnprocessedKeys": {}}
        if keep:
            response = await self._client.batch_get_item(
                RequestItems={table: {**spec, "Keys": keep}}
            )
        if left:
            response["UnprocessedKeys"] = {table: {**spec, "Keys": left}}
        return response

    async def batch_write_item(self, **request: Any) -> Any:
        ((table, entries),) = request["RequestItems"].items()
        keep, left = self._split(entries, lambda e: e["PutRequest"]["Item"]["pk"]["S"])
        if keep:
            await self._client.batch_write_item(RequestItems={table: keep})
        return {"UnprocessedItems": {table: left} if left else {}}


async def test_unprocessed_items_are_retried_until_written(kv: AsyncDynamoKV) -> None:
    flaky = StubbornClient(kv.client, stuck=set(), flaky_rounds=3)
    async with AsyncDynamoKV(kv.config, client=flaky, transport="botocore") as store:
        await store.set_many({f"k{i}": str(i) for i in range(60)})
        assert len(await store.get_many([f"k{i}" for i in range(60)])) == 60
    assert flaky.calls > 3 + 3  # three rejected rounds, then the real writes and reads
    assert len(await kv.get_many([f"k{i}" for i in range(60)])) == 60


async def test_keys_unprocessed_at_the_deadline_are_named_exactly(kv: AsyncDynamoKV) -> None:
    await kv.set_many({f"k{i}": str(i) for i in range(150)})
    stubborn = StubbornClient(kv.client, stuck={"k7", "k120"})
    async with AsyncDynamoKV(
        kv.config, client=stubborn, batch_deadline=0.3, transport="botocore"
    ) as store:
        with pytest.raises(BatchIncompleteError) as read:
            await store.get_many([f"k{i}" for i in range(150)])
        assert read.value.unprocessed == {"k7", "k120"}
        assert "after 0.3 s (batch_deadline)" in str(read.value)
        assert len(read.value.done) == 148 and "k7" not in read.value.done
        with pytest.raises(BatchIncompleteError) as write:
            await store.set_many({"k7": "new", "fresh": "x"})
        assert write.value.unprocessed == {"k7"}
    assert await kv.get("fresh") == "x"
    assert await kv.get("k7") == "7"


async def test_get_many_spreads_chunks_over_concurrent_requests(kv: AsyncDynamoKV) -> None:
    items = {f"key-{i}": f"v{i}" for i in range(450)}
    await kv.set_many(items)
    async with AsyncDynamoKV(kv.config, batch_concurrency=2) as store:
        assert await store.get_many(items) == items


async def test_batches_to_a_dead_server_fail_fast_naming_every_key() -> None:
    endpoint = f"http://127.0.0.1:{unused_port()}"
    async with AsyncDynamoKV(
        table="kvt", endpoint=endpoint, connect_timeout=2.0, max_attempts=1, batch_deadline=30
    ) as kv:
        with pytest.raises(BatchIncompleteError) as write:
            await asyncio.wait_for(kv.set_many({f"k{i}": "v" for i in range(60)}), timeout=15)
        assert write.value.unprocessed == {f"k{i}" for i in range(60)}
        assert isinstance(write.value.__cause__, KVConnectionError)
        with pytest.raises(BatchIncompleteError) as read:
            await asyncio.wait_for(kv.get_many([f"k{i}" for i in range(150)]), timeout=15)
        assert len(read.value.unprocessed) == 150
        # It failed fast: the message names the error, not a deadline that never came.
        assert "batch_deadline" not in str(read.value)
        assert "KVConnectionError" in str(read.value)


AwsConfig = Callable[[str], None]


@pytest.fixture
def aws_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> AwsConfig:
    """No region or profile from the environment; the AWS config file holds what it is given."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    config_file = tmp_path / "config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))

    def write(text: str) -> None:
        config_file.write_text(text)

    return write


@pytest.mark.usefixtures("aws_config")  # an empty AWS config file, nothing in the environment
async def test_no_region_anywhere_is_a_config_error() -> None:
    store = AsyncDynamoKV(table="kvt")  # AWS itself; opening makes no request
    with pytest.raises(KVConfigError, match="region") as caught:
        await store.open()
    assert not store.is_open
    # Someone starting a service on a laptop learns how to get a local server.
    assert "AIODYNKV_ENDPOINT" in str(caught.value) and "aiodynkv local" in str(caught.value)


async def test_the_region_from_the_aws_config_file_is_used(aws_config: AwsConfig) -> None:
    aws_config("[default]\nregion = eu-north-1\n")
    async with AsyncDynamoKV(table="kvt") as store:
        assert store.config.region == "eu-north-1"
        assert store.config.server_address == ("dynamodb.eu-north-1.amazonaws.com", 443)


@pytest.mark.parametrize(
    ("config_text", "profile", "field"),
    [
        ("[default]\nregion = eu-north-1\n", "missing", "profile"),  # no such profile
        ("[default\nregion = eu-north-1\n", None, "region"),  # a broken config file
    ],
)
async def test_a_bad_aws_profile_or_config_file_is_a_config_error(
    aws_config: AwsConfig,
    monkeypatch: pytest.MonkeyPatch,
    moto_endpoint: str,
    config_text: str,
    profile: str | None,
    field: str,
) -> None:
    aws_config(config_text)
    if profile:
        monkeypatch.setenv("AWS_PROFILE", profile)
    store = AsyncDynamoKV(table="kvt", endpoint=moto_endpoint)
    with pytest.raises(KVConfigError) as info:
        await store.open()
    assert info.value.field == field
    assert not store.is_open


async def test_the_region_from_the_aws_config_file_wins_over_the_loopback_fallback(
    aws_config: AwsConfig, moto_endpoint: str
) -> None:
    # A table made with boto3 under this profile lives in eu-north-1, also on a local
    # server: the store must sign for the same region to find it.
    aws_config("[default]\nregion = eu-north-1\n")
    table = f"reg-{uuid.uuid4().hex[:10]}"
    config = KVConfig(table=table, endpoint=moto_endpoint, create_table=True)
    assert config.effective_region == "eu-north-1"
    async with AsyncDynamoKV(config) as store:
        assert store.config.region == "eu-north-1"
        assert (await store.health()).details["region"] == "eu-north-1"
        await store.set("k", "v")
    async with AsyncDynamoKV(table=table, endpoint=moto_endpoint, region="eu-north-1") as same:
        assert await same.get("k") == "v"
        await same.client.delete_table(TableName=table)


async def test_set_many_on_the_lean_transport_sends_text_and_reads_back_every_value(
    kv: AsyncDynamoKV, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = kv._core.transport
    assert transport is not None
    sent: list[Any] = []
    send = transport.send

    async def recording(action: str, request: Any) -> Any:
        sent.append((action, request))
        return await send(action, request)

    monkeypatch.setattr(transport, "send", recording)
    view = kv.namespace("svc")
    plain = {f"k{i}": f"value {i}" for i in range(40)}
    mixed: dict[str, str | bytes] = {
        "caf\u00e9": 'na\u00efve "q" \\ \x00',
        "blob": b"\x00\xff" * 10,
        "big": "x" * 20_000,  # compressed
    }
    await view.set_many(plain, ttl=300)
    await view.set_many(mixed)
    writes = [request for action, request in sent if action == "BatchWriteItem"]
    assert [type(r).__name__ for r in writes] == ["BatchWriteText"] * 3
    assert await view.get_many([*plain, *mixed]) == {**plain, **mixed}
    items = [
        entry["PutRequest"]["Item"] for r in writes for entry in r["RequestItems"][kv.config.table]
    ]
    assert len({item["ver"]["N"] for item in items}) == 43  # a fresh version each
    assert {item["tk"]["S"] for item in items[:40]} != {item["tk"]["S"] for item in items[40:]}
    assert (await view.ttl("k3") or 0) > 290
