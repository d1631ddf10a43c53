"""The owner watch every local server runs under (`aiodynkv.testing._owned`), through each way out.

Each test starts the watch as a real subprocess, as `LocalDynamoDB` does, around a
stand-in server (`sleep`, or Python that ignores SIGTERM), and looks the processes up
in /proc to see that none is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aiodynkv.testing._owned import watch_command
from tests.processes import command_line, descendants, survivors

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc"),
]

_SLEEP = ["sleep", "120"]


@contextlib.contextmanager
def _watch(
    owner: int,
    command: list[str],
    *,
    stdout: int | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """The owner watch around `command`; whatever the test saw, nothing it started stays."""
    watch = subprocess.Popen(  # noqa: S603 (our own test command)
        watch_command(owner, command),
        stdout=stdout,
        preexec_fn=preexec_fn,  # noqa: PLW1509 (only sets a signal disposition)
        start_new_session=True,
    )
    try:
        yield watch
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(watch.pid, signal.SIGKILL)
        watch.communicate()


def _assert_gone(started: dict[int, str]) -> None:
    left = survivors(started, within=5)
    assert not left, {pid: command_line(pid) for pid in left}


def _child_of(watch: subprocess.Popen[bytes], within: float = 10.0) -> dict[int, str]:
    """The server process the watch started, once it is there."""
    deadline = time.monotonic() + within
    while not (found := descendants(watch.pid)):
        assert watch.poll() is None, f"the watch ended with {watch.returncode}"
        assert time.monotonic() < deadline, "the watch started no child"
        time.sleep(0.05)
    return found


def _marked(marker: str) -> dict[int, str]:
    """Every living `sleep <marker>`, wherever it was reparented (not the watch around it,
    whose command line holds the same words)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            command = command_line(int(entry.name))
            if command.startswith(f"sleep {marker}"):
                found[int(entry.name)] = command
    return found


def _assert_none_marked(marker: str) -> None:
    deadline = time.monotonic() + 5
    while (left := _marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:  # clean up before failing
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, left


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_the_server_ends_when_its_owner_is_killed_with_sigkill() -> None:
    # The owner is a process of its own, so that the test can SIGKILL it: no hook runs.
    script = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        subprocess.Popen([sys.executable, "-m", "aiodynkv.testing._owned", str(os.getpid()),
                          *{_SLEEP!r}])
        time.sleep(120)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)  # noqa: S603
    try:
        deadline = time.monotonic() + 10
        while len(started := descendants(owner.pid)) < 2:  # the watch and its server
            assert time.monotonic() < deadline, started
            time.sleep(0.05)
        assert any(command_line(pid).startswith("sleep") for pid in started), started
        owner.kill()
        owner.wait()
        _assert_gone(started)
    finally:  # whatever the test saw, nothing it started stays
        with contextlib.suppress(ProcessLookupError):
            os.killpg(owner.pid, signal.SIGKILL)
        owner.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_ends_the_server_even_with_sigint_ignored(signum: int) -> None:
    # Started as `&` and CI runners start things: SIGINT ignored, inherited by `sleep`.
    with _watch(os.getpid(), _SLEEP, preexec_fn=_ignore_sigint) as watch:
        started = _child_of(watch)
        os.kill(watch.pid, signum)  # the watch alone, not its group
        assert watch.wait(timeout=10) == 0
        _assert_gone(started)


def test_a_server_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " print('ignoring', flush=True); time.sleep(120)",
    ]
    with _watch(os.getpid(), stubborn, stdout=subprocess.PIPE) as watch:
        started = _child_of(watch)
        assert watch.stdout is not None
        assert watch.stdout.readline() == b"ignoring\n"  # its SIGTERM handler is set
        began = time.monotonic()
        watch.terminate()
        assert watch.wait(timeout=20) == 0
        assert time.monotonic() - began >= 4  # it was given its grace period first
        _assert_gone(started)


def test_the_watch_exits_with_the_status_of_a_server_that_ends_on_its_own() -> None:
    server = [sys.executable, "-c", "print('port in use'); raise SystemExit(3)"]
    with _watch(os.getpid(), server, stdout=subprocess.PIPE) as watch:
        out, _ = watch.communicate(timeout=20)
    assert watch.returncode == 3
    assert out == b"port in use\n"  # the server's output goes where the watch's goes


def test_nothing_starts_when_the_owner_is_already_gone(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    # PID 1 is not our parent: as if the owner died before the watch began.
    with _watch(1, [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]) as watch:
        assert watch.wait(timeout=20) == 0
    assert not marker.exists()


def test_the_server_ends_when_the_watch_itself_is_killed() -> None:
    # A test that SIGKILLs `LocalDynamoDB.pid` to fake a crash kills the watch: the
    # kernel then ends the server too (Linux's parent-death signal).
    with _watch(os.getpid(), _SLEEP) as watch:
        started = _child_of(watch)
        os.kill(watch.pid, signal.SIGKILL)  # the watch alone
        watch.wait(timeout=10)
        _assert_gone(started)


@pytest.mark.parametrize(
    "signals",
    [(signal.SIGTERM, signal.SIGHUP), (signal.SIGINT, signal.SIGTERM), (signal.SIGTERM,) * 3],
)
def test_stop_signals_in_quick_succession_still_end_the_server(
    signals: tuple[int, ...],
) -> None:
    for attempt in range(5):
        marker = f"{120 + attempt}.{os.getpid()}{signals[0]}{len(signals)}"
        with _watch(os.getpid(), ["sleep", marker]) as watch:
            _child_of(watch)
            for signum in signals:
                os.kill(watch.pid, signum)  # the watch alone, twice or more at once
            assert watch.wait(timeout=20) == 0
            _assert_none_marked(marker)  # before the fixture's group kill could hide it


def test_a_stop_signal_during_startup_leaves_nothing() -> None:
    # The signal lands at any moment of the watch's start, also while it starts the server.
    for attempt in range(30):
        marker = f"{200 + attempt}.{os.getpid()}"
        with _watch(os.getpid(), ["sleep", marker]) as watch:
            time.sleep(attempt * 0.004)
            with contextlib.suppress(ProcessLookupError):
                os.kill(watch.pid, signal.SIGTERM)
            watch.wait(timeout=20)
            _assert_none_marked(marker)  # before the fixture's group kill could hide it


def test_what_the_server_started_ends_with_it() -> None:
    # A launcher script that starts the real server without exec (a shell wrapper).
    marker = f"321.{os.getpid()}"
    with _watch(os.getpid(), ["sh", "-c", f"sleep {marker} & wait"]) as watch:
        deadline = time.monotonic() + 10
        while not _marked(marker):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(watch.pid, signal.SIGTERM)
        assert watch.wait(timeout=20) == 0
        _assert_none_marked(marker)


def test_a_server_killed_by_a_signal_exits_with_128_plus_its_number() -> None:
    server = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    with _watch(os.getpid(), server) as watch:
        assert watch.wait(timeout=20) == 128 + signal.SIGKILL
