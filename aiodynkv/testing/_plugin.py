"""pytest plugin: fixtures for testing code that uses aiodynkv.

Registered in every test session of every project that installs aiodynkv, so every
fixture name starts with ``aiodynkv_``:

- ``aiodynkv_endpoint`` (session): ``AIODYNKV_TEST_ENDPOINT`` if set; else DynamoDB
  Local in testcontainers if a Docker engine answers (`LocalDynamoDB`'s image and pull
  settings); else, or when the image is neither present nor pullable, the embedded moto
  server, said in one summary line. ``AIODYNKV_DYNAMODB_LOCAL_FALLBACK=fail`` makes
  both a failure instead.
- ``aiodynkv_kv``: an open `AsyncDynamoKV` on a fresh table of that endpoint, per test.
- ``aiodynkv_memory``: an open `InMemoryKV`, per test.

The async fixtures need pytest-asyncio (the ``pytest`` extra). Any `LocalDynamoDB`
the session started and left running is stopped when it finishes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from importlib.util import find_spec
from typing import Any

import pytest

from aiodynkv._store import AsyncDynamoKV
from aiodynkv.testing import InMemoryKV
from aiodynkv.testing._local import (
    ImageUnavailableError,
    LocalDynamoDB,
    docker_available,
    running_servers,
)

ENDPOINT_VARIABLE = "AIODYNKV_TEST_ENDPOINT"
FALLBACK_VARIABLE = "AIODYNKV_DYNAMODB_LOCAL_FALLBACK"
_FALLBACKS = ("moto", "fail")
_BEFORE_SESSION = pytest.StashKey[frozenset[LocalDynamoDB]]()
_FELL_BACK = pytest.StashKey[str]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Note the servers already running, which belong to someone else."""
    session.stash[_BEFORE_SESSION] = frozenset(running_servers())


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the servers this session started and left running."""
    before = session.stash.get(_BEFORE_SESSION, frozenset())
    for server in running_servers():
        if server not in before:
            server.stop()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The one line saying that the fixtures did not get DynamoDB Local, and why."""
    if _FELL_BACK in config.stash:
        terminalreporter.write_line(config.stash[_FELL_BACK], yellow=True)


def _dynamodb_local(config: pytest.Config) -> LocalDynamoDB | None:
    """DynamoDB Local started, or None when the embedded emulator is to be used instead."""
    fallback = os.environ.get(FALLBACK_VARIABLE) or "moto"
    if fallback not in _FALLBACKS:
        message = f"{FALLBACK_VARIABLE} must be 'moto' or 'fail', not {fallback!r}"
        pytest.fail(message, pytrace=False)
    ok, reason = docker_available()
    if not ok:
        if fallback == "fail":
            message = f"aiodynkv: DynamoDB Local needs Docker: {reason} ({FALLBACK_VARIABLE}=fail)"
            pytest.fail(message, pytrace=False)
        return None
    server = LocalDynamoDB("dynamodb-local")
    try:
        server.start()
    except ImageUnavailableError as exc:
        problem = str(exc)
    else:  # pragma: no cover - needs Docker (nox -s docker)
        return server
    # Outside the except block: the failure carries no chained exception to print.
    if fallback == "fail":
        pytest.fail(f"aiodynkv: {problem} ({FALLBACK_VARIABLE}=fail)", pytrace=False)
    config.stash[_FELL_BACK] = (
        f"aiodynkv: the fixtures used the embedded emulator, not DynamoDB Local: {problem}"
    )
    return None


@pytest.fixture(scope="session")
def aiodynkv_endpoint(pytestconfig: pytest.Config) -> Iterator[str]:
    """Endpoint URL of a DynamoDB-compatible server for the whole test session."""
    configured = os.environ.get(ENDPOINT_VARIABLE)
    if configured:
        yield configured
        return
    server = _dynamodb_local(pytestconfig) or LocalDynamoDB("moto")
    with server:
        yield server.endpoint


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
