"""docker-compose.yml brought up for real: DynamoDB Local (or the image the settings name)
and the create-table service, then used from the host and taken down.

Works with the ``docker compose`` v2 plugin and with ``docker-compose`` 1.29.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aiodynkv import AsyncDynamoKV, KVConfig
from tests.docker.helpers import docker_cli, run

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "aiodynkv-nox"


def compose_command() -> list[str]:
    """``docker compose`` where the v2 plugin answers, else ``docker-compose``."""
    if run([docker_cli(), "compose", "version"]).returncode == 0:
        return [docker_cli(), "compose"]
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail("neither `docker compose` nor `docker-compose` is installed")
    return [found]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Compose:
    base: list[str]
    env: dict[str, str]
    endpoint: str

    def __call__(self, *args: str) -> tuple[int, str]:
        result = run([*self.base, *args], env=self.env)
        return result.returncode, result.stdout + result.stderr

    def labelled(self, kind: str) -> list[str]:
        label = f"label=com.docker.compose.project={PROJECT}"
        args = ["ps", "-aq"] if kind == "container" else ["network", "ls", "-q"]
        return run([docker_cli(), *args, "--filter", label], env=self.env).stdout.split()


@pytest.fixture(scope="module")
def compose() -> Iterator[Compose]:
    port = _free_port()
    env = {**os.environ, "AIODYNKV_DYNAMODB_LOCAL_PORT": str(port)}
    base = [
        *compose_command(),
        "--project-name",
        PROJECT,
        "--file",
        str(ROOT / "docker-compose.yml"),
    ]
    up = Compose(base, env, f"http://127.0.0.1:{port}")
    code, output = up("up", "-d")
    try:
        assert code == 0, output
        ids = up("ps", "-q", "create-table")[1].split()
        assert ids, "no create-table container"
        waited = run([docker_cli(), "wait", ids[-1]], env=env)
        assert waited.returncode == 0, waited.stderr
        yield up
    finally:
        up("down", "--volumes", "--remove-orphans")


def _state(compose: Compose, service: str) -> dict[str, object]:
    container = compose("ps", "-q", service)[1].split()[-1]
    inspected = run([docker_cli(), "inspect", container], env=compose.env)
    state: dict[str, object] = json.loads(inspected.stdout)[0]["State"]
    return state


def test_compose_runs_the_images_the_settings_name(compose: Compose) -> None:
    for service, variable, default in (
        ("dynamodb-local", "AIODYNKV_DYNAMODB_LOCAL_IMAGE", "amazon/dynamodb-local"),
        ("create-table", "AIODYNKV_AWS_CLI_IMAGE", "amazon/aws-cli"),
    ):
        container = compose("ps", "-q", service)[1].split()[-1]
        inspected = json.loads(run([docker_cli(), "inspect", container]).stdout)[0]
        assert inspected["Config"]["Image"] == os.environ.get(variable, default)
    assert _state(compose, "dynamodb-local")["Status"] == "running"


def test_create_table_made_the_table_enabled_ttl_and_exited_zero(compose: Compose) -> None:
    state = _state(compose, "create-table")
    assert state["Status"] == "exited"
    assert state["ExitCode"] == 0
    logs = compose("logs", "--no-color", "create-table")[1]
    assert "created table aiodynkv" in logs
    assert "TTL enabled on expires_at" in logs


async def test_the_table_is_keyed_billed_and_expiring_as_the_store_expects(
    compose: Compose,
) -> None:
    defaults = KVConfig(table="aiodynkv")
    async with AsyncDynamoKV(
        table="aiodynkv", endpoint=compose.endpoint, transport="botocore"
    ) as store:
        table = (await store.client.describe_table(TableName="aiodynkv"))["Table"]
        assert table["KeySchema"] == [{"AttributeName": defaults.partition_key, "KeyType": "HASH"}]
        assert table["AttributeDefinitions"] == [
            {"AttributeName": defaults.partition_key, "AttributeType": "S"}
        ]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        ttl = await store.client.describe_time_to_live(TableName="aiodynkv")
        assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
        assert ttl["TimeToLiveDescription"]["AttributeName"] == defaults.ttl_attribute


async def test_the_store_writes_and_reads_back_on_the_composed_table(compose: Compose) -> None:
    async with AsyncDynamoKV(table="aiodynkv", endpoint=compose.endpoint) as store:
        assert (await store.health()).status == "UP"
        await store.set("greeting", "hello", ttl=60)
        assert await store.get("greeting") == "hello"
        assert await store.delete("greeting")


def test_create_table_again_finds_the_table_and_succeeds(compose: Compose) -> None:
    code, output = compose("run", "--rm", "-T", "create-table")
    assert code == 0, output
    assert "table aiodynkv already exists" in output


def test_compose_down_removes_its_containers_and_network(compose: Compose) -> None:
    assert compose.labelled("container")
    code, output = compose("down", "--volumes", "--remove-orphans")
    assert code == 0, output
    assert compose.labelled("container") == []
    assert compose.labelled("network") == []
