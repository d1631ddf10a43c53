"""aiodynkv.testing: LocalDynamoDB, the pytest plugin's fixtures, the demo.

Also the promise that no server outlives its test session: pytest runs in a
subprocess whose tests fail or are killed, and the processes it started are looked
up in /proc while it runs and checked to be gone after it ends.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

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
from tests.processes import command_line, descendants, survivors, wait_ended


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


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_server_whose_watch_was_killed_does_not_stay() -> None:
    # `pid` is the owner watch: a test killing it to fake a crash must not orphan moto.
    server = LocalDynamoDB("moto")
    server.start()
    assert server.pid is not None
    started = descendants(server.pid)
    assert any("serve_moto" in command_line(pid) for pid in started), started
    os.kill(server.pid, signal.SIGKILL)
    wait_ended(server.pid, within=5)  # dead before stop(), as a crash long ago would be
    server.stop()
    left = survivors(started, within=5)
    assert not left, {pid: command_line(pid) for pid in left}


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


def test_the_demo_runs_in_asyncio_debug_mode() -> None:
    # `python -X dev` turns on asyncio's debug mode and aiohttp's strict reply parser,
    # which refuses a reply with two Server headers: moto's app sends one of its own,
    # so the launcher's request handler must not add another.
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-m", "aiodynkv", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "health                           -> UP" in result.stdout


def test_the_emulator_sends_at_most_one_server_header() -> None:
    with LocalDynamoDB("moto") as server:
        host, port = server.endpoint.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request(
            "POST",
            "/",
            body=b"{}",
            headers={"X-Amz-Target": "DynamoDB_20120810.ListTables"},
        )
        response = connection.getresponse()
        response.read()
        connection.close()
    # The property that matters (aiohttp's strict parser refuses two): at most one.
    assert len(response.headers.get_all("Server") or []) <= 1, response.headers.items()


def test_main_without_a_command_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_python_dash_m_with_an_unknown_command_exits_2() -> None:
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
    aiodynkv_kv: AsyncDynamoKV, aiodynkv_endpoint: str
) -> None:
    kv = aiodynkv_kv
    assert isinstance(kv, AsyncDynamoKV) and kv.is_open
    assert kv.config.endpoint == aiodynkv_endpoint
    assert [k async for k in kv.keys()] == []
    await kv.set("k", "v")
    assert (await kv.health()).status == "UP"


async def test_plugin_memory_fixture(aiodynkv_memory: InMemoryKV) -> None:
    await aiodynkv_memory.set("k", "v")
    assert aiodynkv_memory.dump() == {"k": "v"}
    assert "items=1" in repr(aiodynkv_memory)


def test_the_plugin_offers_only_fixtures_named_aiodynkv(tmp_path: Path) -> None:
    # A plugin loaded in every session of every project must take none of its names.
    listing = _pytest(tmp_path, "def test_nothing():\n    pass\n", "--fixtures")
    out, _ = listing.communicate(timeout=120)
    assert listing.returncode == 0, out
    section = out.partition("fixtures defined from aiodynkv.testing._plugin")[2]
    names = set()
    for line in section.splitlines()[1:]:
        if line.startswith("-"):  # the next plugin's section
            break
        if line and not line[0].isspace():
            names.add(line.split()[0])
    assert names == {"aiodynkv_endpoint", "aiodynkv_kv", "aiodynkv_memory"}, out


def _pytest(
    tmp_path: Path,
    source: str,
    *args: str,
    test: str = "",
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """Start pytest in a subprocess on one test file written to `tmp_path`."""
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(source))
    target = f"test_inner.py::{test}" if test else "test_inner.py"
    return subprocess.Popen(  # noqa: S603 (our own test run)
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args, target],
        cwd=tmp_path,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


# -- no server outlives the session ---------------------------------------------------------


_LEAKY_TESTS = """
import os, signal, subprocess, sys, time
from pathlib import Path

import pytest

from aiodynkv.testing import LocalDynamoDB, LocalServerError, find_dynalite

READY, GO = Path("ready"), Path("go")


def wait_for_go():
    READY.write_text("ready")
    deadline = time.monotonic() + 60
    while not GO.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def local_cli():
    # `aiodynkv local` in its own group, killed hard (group SIGKILL) at teardown: its
    # moto child lives in a group of its own and must notice that its owner died.
    process = subprocess.Popen(
        [sys.executable, "-m", "aiodynkv", "local", "--port", os.environ["INNER_PORT"]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    assert "ready" in process.stdout.readline()
    yield process
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()


def test_fails_with_servers_running(aiodynkv_endpoint, local_cli):
    LocalDynamoDB("moto").start()  # never stopped by the test
    try:
        LocalDynamoDB("dynalite").start()
    except LocalServerError:
        pass  # dynalite is not installed here
    wait_for_go()
    with pytest.raises(subprocess.TimeoutExpired):
        local_cli.wait(timeout=0.1)  # a test that timed out waiting for it
    assert False, "planned failure"


def test_is_killed_while_servers_run(aiodynkv_endpoint):
    LocalDynamoDB("moto").start()
    try:
        LocalDynamoDB("dynalite").start()  # no atexit hook runs when pytest is killed
    except LocalServerError:
        pass  # dynalite is not installed here
    wait_for_go()
    time.sleep(600)  # killed by the outer test, as a CI timeout would
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize(
    ("test", "ending"),
    [
        ("test_fails_with_servers_running", "fails"),
        ("test_is_killed_while_servers_run", "SIGTERM"),
        ("test_is_killed_while_servers_run", "SIGKILL"),
    ],
)
@pytest.mark.slow
def test_no_server_outlives_a_test_session_that_fails_or_is_killed(
    tmp_path: Path, test: str, ending: str
) -> None:
    try:
        have_dynalite = bool(find_dynalite())
    except LocalServerError:
        have_dynalite = False
    # The plugin starts its own server: no AIODYNKV_TEST_ENDPOINT (an empty one is unset).
    env = {"AIODYNKV_TEST_ENDPOINT": "", "INNER_PORT": str(_free_port())}
    inner = _pytest(tmp_path, _LEAKY_TESTS, test=test, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "ready").exists():
            assert inner.poll() is None, inner.communicate()[0]
            assert time.monotonic() < deadline, "the inner test never got ready"
            time.sleep(0.05)
        started = descendants(inner.pid)
        commands = {pid: command_line(pid) for pid in started}
        # The servers themselves, not the owner watches (`aiodynkv.testing._owned`) around them.
        servers = [c for c in commands.values() if "_owned" not in c]
        assert sum("serve_moto" in c for c in servers) >= 2 + (ending == "fails"), commands
        assert any("dynalite" in c for c in servers) or not have_dynalite, commands
        if ending == "fails":
            (tmp_path / "go").write_text("go")
            out, _ = inner.communicate(timeout=120)
            assert inner.returncode == 1 and "planned failure" in out, out
        else:  # pytest alone is killed: no finalizer, no atexit hook runs
            inner.send_signal(getattr(signal, ending))
            inner.communicate(timeout=60)
        left = survivors(started, within=15)
        assert not left, {pid: command_line(pid) for pid in left}
    finally:
        if inner.poll() is None:
            os.killpg(inner.pid, signal.SIGKILL)
            inner.communicate()


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
