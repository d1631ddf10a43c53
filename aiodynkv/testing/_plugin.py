"""pytest plugin: fixtures for testing code that uses aiodynkv.

- ``dynamodb_endpoint`` (session): ``AIODYNKV_TEST_ENDPOINT`` if set; else DynamoDB
  Local in testcontainers if a Docker engine answers; else the embedded moto server.
- ``kv``: an open `AsyncDynamoKV` on a fresh table of that endpoint, per test.
- ``memory_kv``: an open `InMemoryKV`, per test.

The async fixtures exist when pytest-asyncio is installed (``pip install 'aiodynkv[pytest]'``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from importlib.util import find_spec

import pytest

from aiodynkv._store import AsyncDynamoKV
from aiodynkv.testing._local import Kind, LocalDynamoDB, docker_available
from aiodynkv.testing._memory import InMemoryKV

ENDPOINT_VARIABLE = "AIODYNKV_TEST_ENDPOINT"


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    """Endpoint URL of a DynamoDB-compatible server for the whole test session."""
    configured = os.environ.get(ENDPOINT_VARIABLE)
    if configured:
        yield configured
        return
    kind: Kind = "dynamodb-local" if docker_available()[0] else "moto"
    with LocalDynamoDB(kind) as server:
        yield server.endpoint


if find_spec("pytest_asyncio") is not None:
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def kv(dynamodb_endpoint: str) -> AsyncIterator[AsyncDynamoKV]:
        """An open store on a fresh table, deleted afterwards."""
        table = f"test-{uuid.uuid4().hex[:12]}"
        async with AsyncDynamoKV(
            table=table, endpoint=dynamodb_endpoint, create_table=True
        ) as store:
            try:
                yield store
            finally:
                await store.client.delete_table(TableName=table)

    @pytest_asyncio.fixture
    async def memory_kv() -> AsyncIterator[InMemoryKV]:
        """An open in-memory store."""
        async with InMemoryKV() as store:
            yield store
