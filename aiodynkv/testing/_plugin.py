"""pytest plugin: fixtures for testing code that uses aiodynkv.

Every fixture name starts with ``aiodynkv_``, because the plugin is registered in
every test session of every project that installs aiodynkv and must not take a
name the project uses for its own fixtures:

- ``aiodynkv_endpoint`` (session): ``AIODYNKV_TEST_ENDPOINT`` if set; else DynamoDB
  Local in testcontainers if a Docker engine answers; else the embedded moto server.
- ``aiodynkv_kv``: an open `AsyncDynamoKV` on a fresh table of that endpoint, per test.
- ``aiodynkv_memory``: an open `InMemoryKV`, per test.

The names of 0.1 (``dynamodb_endpoint``, ``kv``, ``memory_kv``) still work in this
release and emit a `DeprecationWarning`; they go away in the next one.

The async fixtures exist when pytest-asyncio is installed (the ``pytest`` extra).

As a safety net, any `LocalDynamoDB` started during the session and still running
when it finishes is stopped then (servers also stop when the interpreter exits).
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from importlib.util import find_spec

import pytest

from aiodynkv._local import Kind, LocalDynamoDB, docker_available, running_servers
from aiodynkv._store import AsyncDynamoKV
from aiodynkv.testing._in_memory import InMemoryKV

ENDPOINT_VARIABLE = "AIODYNKV_TEST_ENDPOINT"
_RENAMED = {
    "dynamodb_endpoint": "aiodynkv_endpoint",
    "kv": "aiodynkv_kv",
    "memory_kv": "aiodynkv_memory",
}
_BEFORE_SESSION = pytest.StashKey[frozenset[LocalDynamoDB]]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Note the servers already running, which belong to someone else."""
    session.stash[_BEFORE_SESSION] = frozenset(running_servers())


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the servers this session started and left running."""
    before = session.stash.get(_BEFORE_SESSION, frozenset())
    for server in running_servers():
        if server not in before:
            server.stop()


def _deprecated(old: str) -> None:
    warnings.warn(
        f"the aiodynkv fixture {old!r} is deprecated and will be removed in the next "
        f"release: use {_RENAMED[old]!r}",
        DeprecationWarning,
        stacklevel=2,
    )


@pytest.fixture(scope="session")
def aiodynkv_endpoint() -> Iterator[str]:
    """Endpoint URL of a DynamoDB-compatible server for the whole test session."""
    configured = os.environ.get(ENDPOINT_VARIABLE)
    if configured:
        yield configured
        return
    kind: Kind = "dynamodb-local" if docker_available()[0] else "moto"
    with LocalDynamoDB(kind) as server:
        yield server.endpoint


@pytest.fixture(scope="session")
def dynamodb_endpoint(aiodynkv_endpoint: str) -> str:
    """Deprecated name of ``aiodynkv_endpoint``."""
    _deprecated("dynamodb_endpoint")
    return aiodynkv_endpoint


if find_spec("pytest_asyncio") is not None:
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def aiodynkv_kv(aiodynkv_endpoint: str) -> AsyncIterator[AsyncDynamoKV]:
        """An open store on a fresh table, deleted afterwards."""
        table = f"test-{uuid.uuid4().hex[:12]}"
        async with AsyncDynamoKV(
            table=table, endpoint=aiodynkv_endpoint, create_table=True
        ) as store:
            try:
                yield store
            finally:
                await store.client.delete_table(TableName=table)

    @pytest_asyncio.fixture
    async def aiodynkv_memory() -> AsyncIterator[InMemoryKV]:
        """An open in-memory store."""
        async with InMemoryKV() as store:
            yield store

    @pytest.fixture
    def kv(aiodynkv_kv: AsyncDynamoKV) -> AsyncDynamoKV:
        """Deprecated name of ``aiodynkv_kv``."""
        _deprecated("kv")
        return aiodynkv_kv

    @pytest.fixture
    def memory_kv(aiodynkv_memory: InMemoryKV) -> InMemoryKV:
        """Deprecated name of ``aiodynkv_memory``."""
        _deprecated("memory_kv")
        return aiodynkv_memory
