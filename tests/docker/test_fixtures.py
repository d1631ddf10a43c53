"""The pytest plugin's `aiodynkv_endpoint` / `aiodynkv_kv` on a real Docker engine.

Each test runs pytest in a subprocess on a small test file, as a project using aiodynkv
would, with the settings in its environment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.docker.helpers import run

MISSING = "aiodynkv/no-such-image:never"
USER_TESTS = """
import importlib

from aiodynkv.testing import LocalDynamoDB


async def test_round_trip(aiodynkv_endpoint, aiodynkv_kv):
    await aiodynkv_kv.set("greeting", "hello", ttl=60)
    assert await aiodynkv_kv.get("greeting") == "hello"
    client = importlib.import_module("docker").from_env()
    image = LocalDynamoDB("dynamodb-local").image
    ports = {
        binding["HostPort"]
        for container in client.containers.list(filters={"ancestor": image})
        for binding in container.attrs["NetworkSettings"]["Ports"]["8000/tcp"] or []
    }
    client.close()
    port = aiodynkv_endpoint.rsplit(":", 1)[1]
    print("SERVED BY", "container" if port in ports else "emulator")
"""


def _pytest(tmp_path: Path, **settings: str) -> tuple[int, str]:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIODYNKV_DYNAMODB_LOCAL_")}
    env.pop("AIODYNKV_TEST_ENDPOINT", None)
    env.update(settings)
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "-q",
        "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
        "--rootdir", str(tmp_path), str(tmp_path),
    ]  # fmt: skip
    result = run(command, env=env)
    return result.returncode, result.stdout + result.stderr


def test_the_fixtures_serve_from_a_container_of_the_configured_image(tmp_path: Path) -> None:
    image = os.environ.get("AIODYNKV_DYNAMODB_LOCAL_IMAGE", "amazon/dynamodb-local:latest")
    code, output = _pytest(tmp_path, AIODYNKV_DYNAMODB_LOCAL_IMAGE=image)
    assert code == 0, output
    assert "SERVED BY container" in output
    assert "1 passed" in output
    assert "embedded emulator" not in output


def test_an_unavailable_image_falls_back_to_the_emulator_with_one_line(tmp_path: Path) -> None:
    code, output = _pytest(
        tmp_path, AIODYNKV_DYNAMODB_LOCAL_IMAGE=MISSING, AIODYNKV_DYNAMODB_LOCAL_PULL="never"
    )
    assert code == 0, output
    assert "SERVED BY emulator" in output
    notes = [line for line in output.splitlines() if "embedded emulator" in line]
    assert len(notes) == 1, output
    assert MISSING in notes[0]
    assert "AIODYNKV_DYNAMODB_LOCAL_IMAGE" in notes[0]
    assert "Traceback" not in output


def test_fallback_fail_names_the_image_and_the_setting_without_a_traceback(
    tmp_path: Path,
) -> None:
    code, output = _pytest(
        tmp_path,
        AIODYNKV_DYNAMODB_LOCAL_IMAGE=MISSING,
        AIODYNKV_DYNAMODB_LOCAL_FALLBACK="fail",
    )
    assert code == 1, output
    assert "1 error" in output
    failure = [line for line in output.splitlines() if MISSING in line and "could not" in line]
    assert failure, output
    assert "AIODYNKV_DYNAMODB_LOCAL_IMAGE" in failure[0]
    assert "AIODYNKV_DYNAMODB_LOCAL_FALLBACK=fail" in failure[0]
    assert "testcontainers" not in output
    assert "Traceback" not in output
    assert "SERVED BY" not in output
