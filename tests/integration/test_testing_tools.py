"""aiodynkv.testing: LocalDynamoDB, the pytest plugin's fixtures, the demo."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from aiodynkv import AsyncDynamoKV, StoreClosedError
from aiodynkv.__main__ import main
from aiodynkv.testing import (
    InMemoryKV,
    LocalDynamoDB,
    LocalServerError,
    docker_available,
    find_dynalite,
)


def test_local_moto_starts_answers_and_stops() -> None:
    server = LocalDynamoDB("moto")
    with pytest.raises(LocalServerError, match="not running"):
        _ = server.endpoint
    with server:
        assert server.endpoint.startswith("http://127.0.0.1:")
        assert server.pid is not None
        assert server.start() == server.endpoint  # already running: same endpoint
        assert "moto" in repr(server)
    assert server.pid is None


async def test_local_dynalite_as_async_context_manager() -> None:
    async with (
        LocalDynamoDB("dynalite") as server,
        AsyncDynamoKV(table="tools", endpoint=server.endpoint, create_table=True) as kv,
    ):
        await kv.set("k", "v")
        assert await kv.get("k") == "v"


def test_a_server_that_exits_reports_its_output(monkeypatch: pytest.MonkeyPatch) -> None:
    server = LocalDynamoDB(
        "dynalite", port=1, startup_timeout=5
    )  # port 1 needs privileges or fails
    monkeypatch.setenv("AIODYNKV_DYNALITE", "/bin/false")
    with pytest.raises(LocalServerError, match="exited with code 1"):
        server.start()
    assert server.pid is None


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        LocalDynamoDB("redis")  # type: ignore[arg-type]


def test_find_dynalite_explains_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AIODYNKV_DYNALITE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    import aiodynkv.testing._local as local

    monkeypatch.setattr(local, "_CACHE", tmp_path / "aiodynkv")
    with pytest.raises(LocalServerError, match="npm install dynalite@4"):
        find_dynalite(install=True)  # no npm on this PATH either


def test_docker_availability_gives_a_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    ok, reason = docker_available(timeout=1)
    assert not ok and "no Docker engine answers" in reason
    monkeypatch.delenv("DOCKER_HOST")
    if not Path("/var/run/docker.sock").exists():
        ok, reason = docker_available()
        assert not ok and "DOCKER_HOST is unset" in reason
        with pytest.raises(LocalServerError, match="needs Docker"):
            LocalDynamoDB("dynamodb-local").start()


def test_the_demo_stores_and_reads_back(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "get: 'alice'" in out
    assert "get_many returned 250" in out
    assert "session exists?     -> False" in out
    assert "health                           -> UP" in out


def test_main_without_a_command_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_python_dash_m_runs_the_demo() -> None:
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "aiodynkv", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2


# -- the plugin's fixtures, as a user's tests would use them ---------------------------


async def test_plugin_kv_fixture_is_an_open_store_on_a_fresh_table(
    kv: Any, dynamodb_endpoint: str
) -> None:
    assert isinstance(kv, AsyncDynamoKV) and kv.is_open
    assert kv.config.endpoint == dynamodb_endpoint
    assert [k async for k in kv.keys()] == []
    await kv.set("k", "v")
    assert (await kv.health()).status == "UP"


async def test_plugin_memory_kv_fixture(memory_kv: InMemoryKV) -> None:
    await memory_kv.set("k", "v")
    assert memory_kv.dump() == {"k": "v"}
    assert "items=1" in repr(memory_kv)


async def test_memory_store_lifecycle_matches_the_real_one() -> None:
    store = InMemoryKV()
    with pytest.raises(StoreClosedError, match="unopened"):
        await store.get("k")
    assert (await store.health()).status == "DOWN"
    async with store:
        await store.ensure_table()
        with pytest.raises(StoreClosedError, match="already opened"):
            await store.open()
        assert store.is_open
    with pytest.raises(StoreClosedError, match="closed"):
        await store.set("k", "v")
