"""docker-compose.yml: the services, their ports and the wiring between them (no Docker needed)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiodynkv import KVConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _constant(path: Path, name: str) -> object:
    """A module-level constant of a file, read without importing it."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found in {path}")


def _script(service: dict[str, Any]) -> str:
    command = service["command"]
    return "\n".join(command) if isinstance(command, list) else str(command)


def test_compose_has_dynamodb_local_the_table_the_app_and_jaeger(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"dynamodb-local", "create-table", "app", "jaeger"}
    # `docker compose up -d` stays DynamoDB Local + the table; the rest is opt-in.
    assert "profiles" not in services["dynamodb-local"]
    assert "profiles" not in services["create-table"]
    assert services["app"]["profiles"] == ["examples"]
    assert services["jaeger"]["profiles"] == ["examples"]


def _default(value: str) -> str:
    """`value` as docker compose reads it with none of its variables set."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def test_the_images_are_settings_whose_defaults_are_amazons(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["dynamodb-local"]["image"] == (
        "${AIODYNKV_DYNAMODB_LOCAL_IMAGE:-amazon/dynamodb-local}"
    )
    assert services["create-table"]["image"] == "${AIODYNKV_AWS_CLI_IMAGE:-amazon/aws-cli}"
    assert _default(services["dynamodb-local"]["image"]) == "amazon/dynamodb-local"
    assert _default(services["create-table"]["image"]) == "amazon/aws-cli"


def test_every_published_port_is_on_loopback_only(compose: dict[str, Any]) -> None:
    published = {
        name: [_default(port) for port in service.get("ports", [])]
        for name, service in compose["services"].items()
    }
    assert compose["services"]["dynamodb-local"]["ports"] == [
        "127.0.0.1:${AIODYNKV_DYNAMODB_LOCAL_PORT:-8000}:8000"
    ]
    assert published["dynamodb-local"] == ["127.0.0.1:8000:8000"]
    assert published["app"] == ["127.0.0.1:8080:8080"]
    assert set(published["jaeger"]) == {"127.0.0.1:16686:16686", "127.0.0.1:4318:4318"}
    assert all(port.startswith("127.0.0.1:") for ports in published.values() for port in ports)


def test_the_table_created_is_the_one_the_app_uses(compose: dict[str, Any]) -> None:
    services = compose["services"]
    script = _script(services["create-table"])
    created = set(re.findall(r"--table-name (\S+)", script))
    app_table = services["app"]["environment"]["AIODYNKV_TABLE"]
    assert created == {app_table}
    assert _constant(ROOT / "examples" / "fastapi_app.py", "DEFAULT_TABLE") == app_table
    # ... and keyed and expiring as the store expects.
    defaults = KVConfig(table=app_table)
    assert f"AttributeName={defaults.partition_key},AttributeType=S" in script
    assert f"AttributeName={defaults.partition_key},KeyType=HASH" in script
    assert f"AttributeName={defaults.ttl_attribute}" in script
    assert "--billing-mode PAY_PER_REQUEST" in script


def test_the_app_reaches_dynamodb_local_and_jaeger_by_service_name(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    app = services["app"]
    env = app["environment"]
    assert env["AIODYNKV_ENDPOINT"] == "http://dynamodb-local:8000"
    assert "-sharedDb" in services["dynamodb-local"]["command"]  # any credentials see the table
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"] and env["AWS_DEFAULT_REGION"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    assert app["depends_on"]["create-table"]["condition"] == "service_completed_successfully"
    assert "jaeger" in app["depends_on"]
    # Every variable the app gets is one KVConfig.from_env or the AWS/OTel SDKs read.
    config = KVConfig.from_env(
        {k: v for k, v in env.items() if k.startswith("AIODYNKV_")},
    )
    assert config.table == "aiodynkv"
    assert config.endpoint == "http://dynamodb-local:8000"


def test_the_app_image_runs_the_fastapi_example_on_the_published_port(
    compose: dict[str, Any],
) -> None:
    build = compose["services"]["app"]["build"]
    assert build["context"] == "."
    dockerfile = (ROOT / build["dockerfile"]).read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", dockerfile, re.MULTILINE)
    assert 'pip install ".[examples]"' in dockerfile
    cmd = re.search(r"^CMD (.+)$", dockerfile, re.MULTILINE)
    assert cmd is not None
    argv = ast.literal_eval(cmd.group(1))
    assert argv[:2] == ["python", "examples/fastapi_app.py"]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"  # noqa: S104 (in the container only)
    container_port = compose["services"]["app"]["ports"][0].rsplit(":", 1)[1]
    assert argv[argv.index("--port") + 1] == container_port
    assert "EXPOSE " + container_port in dockerfile
    healthcheck = " ".join(compose["services"]["app"]["healthcheck"]["test"])
    assert f"127.0.0.1:{container_port}/healthz" in healthcheck
