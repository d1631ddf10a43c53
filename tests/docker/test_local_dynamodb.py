"""`LocalDynamoDB("dynamodb-local")` on a real Docker engine: the image setting, the pull policy."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from aiodynkv import AsyncDynamoKV
from aiodynkv.testing import ImageUnavailableError, LocalDynamoDB
from aiodynkv.testing._local import running_servers

MISSING = "aiodynkv/no-such-image:never"


def _containers(client: Any) -> set[str]:
    return {container.id for container in client.containers.list(all=True)}


async def test_dynamodb_local_runs_the_configured_image_and_removes_its_container(
    docker_client: Any,
) -> None:
    server = LocalDynamoDB("dynamodb-local")
    async with server:
        assert server.container_id is not None
        container = docker_client.containers.get(server.container_id)
        assert container.status == "running"
        assert server.image in container.image.tags
        published = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"]
        assert server.endpoint == f"http://127.0.0.1:{published[0]['HostPort']}"
        async with AsyncDynamoKV(
            table=f"t-{uuid.uuid4().hex[:8]}", endpoint=server.endpoint, create_table=True
        ) as store:
            await store.set("greeting", "hello", ttl=60)
            assert await store.get("greeting") == "hello"
            await store.client.delete_table(TableName=store.config.table)
        container_id = server.container_id
    assert server not in running_servers()
    assert container_id not in _containers(docker_client)


def test_a_missing_image_with_pull_never_names_the_image_and_the_argument(
    docker_client: Any,
) -> None:
    before = _containers(docker_client)
    server = LocalDynamoDB("dynamodb-local", image=MISSING, pull="never")
    with pytest.raises(ImageUnavailableError) as caught:
        server.start()
    message = str(caught.value)
    assert MISSING in message
    assert "'never'" in message
    assert "image=" in message
    assert caught.value.image == MISSING
    assert caught.value.__cause__ is None  # no docker-py traceback chained to it
    assert _containers(docker_client) == before
    assert server.container_id is None


def test_an_image_that_cannot_be_pulled_names_the_image_and_the_variable(
    docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIODYNKV_DYNAMODB_LOCAL_IMAGE", MISSING)
    monkeypatch.delenv("AIODYNKV_DYNAMODB_LOCAL_PULL", raising=False)
    before = _containers(docker_client)
    server = LocalDynamoDB("dynamodb-local")
    assert (server.image, server.pull) == (MISSING, "missing")
    started = time.monotonic()
    with pytest.raises(ImageUnavailableError, match="could not be pulled") as caught:
        server.start()
    assert time.monotonic() - started < 60
    message = str(caught.value)
    assert MISSING in message
    assert "AIODYNKV_DYNAMODB_LOCAL_IMAGE" in message
    assert "\n" not in message
    assert _containers(docker_client) == before
