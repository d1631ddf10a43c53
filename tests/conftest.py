"""Backends for the contract suite, each with its capabilities declared once.

Every contract test runs on each backend. A backend that lacks something a test
needs is declared here (``CAPABILITIES``), and the test says what it needs with
``@pytest.mark.backend_needs("...")``; it is then skipped on that backend with
the reason below, never by a skip inside the test.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio

from aiodynkv import AsyncDynamoKV, KVStore
from aiodynkv._codec import Item
from aiodynkv.testing import InMemoryKV, LocalDynamoDB, docker_available

# "<server>/botocore" runs the same server through the botocore transport; the plain
# server names use the default (lean) transport. "memory" is `InMemoryKV`: `AsyncDynamoKV`
# over an in-process memory transport of its own (no server).
KINDS = (
    "memory",
    "moto",
    "dynalite",
    "dynamodb-local",
    "moto/botocore",
    "dynalite/botocore",
)

# What each backend lacks, with the reason shown in the skip.
CAPABILITIES: dict[str, dict[str, str]] = {
    "memory": {
        "server": "InMemoryKV has no server",
        "endpoint": "the memory transport has no endpoint to connect to; its S3 stand-in "
        "has every bucket and its KMS stand-in every key",
    },
    "moto": {
        "exact_size_limit": "moto counts item size its own way (rejects items DynamoDB accepts)",
        "updated_values": (
            "moto's UPDATED_NEW/UPDATED_OLD leave out attributes whose value did not change "
            "and add the key of a new item"
        ),
    },
    "dynalite": {
        "ttl_api": "dynalite has no UpdateTimeToLive / DescribeTimeToLive API",
        "transactions": "dynalite has no TransactWriteItems / TransactGetItems API",
        "s3_kms": "dynalite serves DynamoDB only: no S3 or KMS on its endpoint",
        "old_item_on_failure": (
            "dynalite does not return the old item of a failed condition "
            "(ReturnValuesOnConditionCheckFailure)"
        ),
    },
    "dynamodb-local": {
        "s3_kms": "DynamoDB Local serves DynamoDB only: no S3 or KMS on its endpoint",
    },
}


@dataclass
class Backend:
    """A backend of the contract suite."""

    kind: str
    endpoint: str | None
    lacks: dict[str, str] = field(default_factory=dict)
    transport: str = "lean"

    def check(self, needs: tuple[str, ...]) -> None:
        for capability in needs:
            if capability in self.lacks:
                pytest.skip(
                    f"{self.kind}: {self.lacks[capability]} (declared in tests/conftest.py)"
                )


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with LocalDynamoDB("moto") as server:
        yield server.endpoint


@pytest.fixture(scope="session")
def dynalite_endpoint() -> Iterator[str]:
    with LocalDynamoDB("dynalite", install=True) as server:
        yield server.endpoint


@pytest.fixture(scope="session")
def dynamodb_local_endpoint() -> Iterator[str]:
    ok, reason = docker_available()
    if not ok:
        pytest.skip(f"DynamoDB Local (testcontainers) skipped: {reason}")
    with LocalDynamoDB("dynamodb-local") as server:  # pragma: no cover - needs Docker
        yield server.endpoint


# -- Without Docker, the DynamoDB Local group is one reported reason, not a skip per test.
_NO_DOCKER = pytest.StashKey[tuple[str, int]]()


def _needs_dynamodb_local(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    on_it = callspec is not None and callspec.params.get("backend") == "dynamodb-local"
    return on_it or "dynamodb_local_endpoint" in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)  # after -k and -m: count only what would have run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the DynamoDB Local tests when no Docker engine answers (reported once)."""
    group = [item for item in items if _needs_dynamodb_local(item)]
    if not group:
        return
    ok, reason = docker_available()
    if ok:  # pragma: no cover - needs Docker
        return
    config.stash[_NO_DOCKER] = (reason, len(group))
    config.hook.pytest_deselected(items=group)
    items[:] = [item for item in items if not _needs_dynamodb_local(item)]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if _NO_DOCKER in config.stash:
        reason, count = config.stash[_NO_DOCKER]
        terminalreporter.write_line(
            f"DynamoDB Local (testcontainers): {count} tests not run: {reason}", yellow=True
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends(*kinds): run only on these backends; for a claim about the client's own "
        "clock, whose every server-side step another test proves on every backend",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every backend for tests that use one; the botocore legs only where a module asks.

    The botocore transport runs the contract suite (``EVERY_TRANSPORT = True`` in the
    module) and its own parity tests; the feature suites run on the default transport.
    A test marked ``backends(...)`` runs on those only.
    """
    if "backend" not in metafunc.fixturenames:
        return
    every = getattr(metafunc.module, "EVERY_TRANSPORT", False)
    kinds = [kind for kind in KINDS if every or "/" not in kind]
    only = metafunc.definition.get_closest_marker("backends")
    if only is not None:
        unknown = set(only.args) - set(KINDS)
        assert not unknown, f"backends(): no backend named {sorted(unknown)}"
        kinds = [kind for kind in kinds if kind in only.args]
    metafunc.parametrize("backend", kinds, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    kind: str = request.param
    server, _, transport = kind.partition("/")
    endpoint = None
    if server != "memory":
        endpoint = request.getfixturevalue(f"{server.replace('-', '_')}_endpoint")
    found = Backend(kind, endpoint, CAPABILITIES[server], transport or "lean")
    marker = request.node.get_closest_marker("backend_needs")
    if marker is not None:
        found.check(tuple(marker.args))
    return found


# Tables are reused across tests (emptied in between): creating and deleting one per test
# cost more than the tests themselves. Per endpoint, per worker process.
_SPARE_TABLES: dict[str, list[str]] = {}


async def _emptied(store: AsyncDynamoKV) -> bool:
    """Delete every item of the store's table; False if the table cannot be reused."""
    table, key = store.config.table, store.config.partition_key
    try:
        start: dict[str, Any] = {}
        while True:
            page = await raw_call(
                store,
                "Scan",
                {
                    "TableName": table,
                    "ConsistentRead": True,
                    "ProjectionExpression": "#k",
                    "ExpressionAttributeNames": {"#k": key},
                    **start,
                },
            )
            items = page.get("Items", [])
            for at in range(0, len(items), 25):
                chunk = items[at : at + 25]
                pending: Any = {table: [{"DeleteRequest": {"Key": {key: i[key]}}} for i in chunk]}
                while pending:
                    reply = await raw_call(store, "BatchWriteItem", {"RequestItems": pending})
                    pending = reply.get("UnprocessedItems") or {}
            if "LastEvaluatedKey" not in page:
                return True
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    except Exception:  # noqa: BLE001 - a table the test deleted or broke is not reused
        return False


StoreFactory = Callable[..., Any]


@contextlib.asynccontextmanager
async def pooled_table(endpoint: str, transport: str = "lean") -> AsyncIterator[AsyncDynamoKV]:
    """A store on an empty table of `endpoint`: a spare one emptied by an earlier test, or
    a new one. Returned to the spares when the test leaves it reusable."""
    spare = _SPARE_TABLES.setdefault(endpoint, [])
    table = spare.pop() if spare else f"t-{uuid.uuid4().hex[:12]}"
    admin = await AsyncDynamoKV(
        table=table, endpoint=endpoint, create_table=True, transport=transport
    ).open()
    try:
        yield admin
    finally:
        if await _emptied(admin):
            spare.append(table)
        await admin.aclose()


@pytest_asyncio.fixture
async def make_store(backend: Backend) -> AsyncIterator[StoreFactory]:
    """Open stores of the current backend on one empty table; closes them after."""
    opened: list[Any] = []
    async with contextlib.AsyncExitStack() as stack:
        admin: Any
        if backend.endpoint is None:
            admin = await stack.enter_async_context(InMemoryKV(table=f"t-{uuid.uuid4().hex[:12]}"))
        else:
            admin = await stack.enter_async_context(
                pooled_table(backend.endpoint, backend.transport)
            )

        async def factory(**fields: Any) -> Any:
            store: Any
            if isinstance(admin, InMemoryKV):
                fields.pop("transport", None)  # its only transport: never a real endpoint
                # Same transport: the same table and objects, other settings.
                store = InMemoryKV(admin.config, client=admin.transport, **fields)
            else:
                store = AsyncDynamoKV(admin.config, **fields)
            await store.open()
            opened.append(store)
            return store

        yield factory
        for store in opened:
            await store.aclose()


async def raw_call(store: Any, action: str, request: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB request sent as is: through the memory transport, or the store's client."""
    if store.config.transport == "memory":
        response: dict[str, Any] = await store._core.transport.send(action, request)
        return response
    from botocore import xform_name

    reply: dict[str, Any] = await getattr(store.client, xform_name(action))(**request)
    return reply


@pytest_asyncio.fixture
async def store(make_store: StoreFactory) -> KVStore:
    result: KVStore = await make_store()
    return result


async def raw_item(store: Any, stored_key: str) -> Item | None:
    """The item as the backend holds it, expired or not (bypasses the store's filtering)."""
    response = await raw_call(
        store,
        "GetItem",
        {
            "TableName": store.config.table,
            "Key": {store.config.partition_key: {"S": stored_key}},
            "ConsistentRead": True,
        },
    )
    item: Item | None = response.get("Item")
    return item


async def put_raw(store: Any, item: Item) -> None:
    """Write an item as another program (GoFr, an older aiodynkv) would have."""
    await raw_call(store, "PutItem", {"TableName": store.config.table, "Item": item})


class Clock:
    """A frozen wall clock the test moves forward (``time.time`` is patched); no sleeping.

    Frozen, so that the real time a loaded machine takes between two calls cannot
    change what a test sees.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import time

        self.offset = 0.0
        start = time.time()
        monkeypatch.setattr(time, "time", lambda: start + self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Move the wall clock forward instead of sleeping (expiry is computed client-side)."""
    return Clock(monkeypatch)
