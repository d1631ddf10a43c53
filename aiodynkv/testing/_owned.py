"""Run a server for as long as the process that started it lives.

``python -I .../_owned.py OWNER_PID COMMAND [ARG ...]`` (see `watch_command`) starts
COMMAND as its child and stops it (SIGTERM to its process group, SIGKILL after a grace
period) when its owner is gone (its parent is no longer ``OWNER_PID``, even after a
SIGKILL), or on SIGTERM, SIGINT or SIGHUP (even if started with SIGINT ignored, and
however many arrive). On Linux the kernel also kills the server when the watch dies.
It exits with the server's status (128 + N for signal N) or 0 once it stopped it, and
imports only the standard library, in isolated mode, to start fast.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_POLL_SECONDS = 0.1
_GRACE_SECONDS = 5.0
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)
)
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def watch_command(owner: int, server: list[str]) -> list[str]:
    """The command line that runs `server` under a watch for process `owner`."""
    return [sys.executable, "-I", str(Path(__file__).resolve()), str(owner), *server]


def _mask(how: int) -> None:
    """Block or unblock the stop signals, where the platform can (not on Windows)."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(how, _STOP_SIGNALS)


def _server_setup(watch: int, libc: ctypes.CDLL | None) -> None:
    """In the server's process, between fork and exec."""
    _mask(signal.SIG_UNBLOCK)  # the watch blocked them while it started us
    if libc is not None:  # Linux: the kernel SIGKILLs us when the watch dies
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != watch:  # the watch died before the kernel could know to tell us
        os._exit(1)


def _signal_ours(server: subprocess.Popen[bytes], signum: int) -> None:
    """Send `signum` to our process group when we lead it, else to the server alone.

    The group holds what the server started itself too; run by hand, we would share
    a group with the shell's job, and leave it alone.
    """
    try:
        if hasattr(os, "killpg") and os.getpgrp() == os.getpid():
            os.killpg(os.getpgrp(), signum)  # we get it too: our handler only takes note
        else:  # pragma: no cover - not how LocalDynamoDB runs it
            server.send_signal(signum)
    except ProcessLookupError:  # pragma: no cover - already gone
        pass


def _end(server: subprocess.Popen[bytes]) -> None:
    """Stop the server: SIGTERM (to the group), then SIGKILL after the grace period."""
    _signal_ours(server, signal.SIGTERM)
    try:
        server.wait(timeout=_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def main(argv: list[str]) -> int:
    """Run ``argv[1:]`` while process ``argv[0]`` is our parent; return the exit status."""
    owner, command = int(argv[0]), argv[1:]
    stops: list[int] = []
    # Blocked until the server runs: a stop that comes meanwhile waits, then counts.
    _mask(signal.SIG_BLOCK)
    for signum in _STOP_SIGNALS:
        signal.signal(signum, lambda signum, _frame: stops.append(signum))
    if os.getppid() != owner:
        return 0  # the owner died before we even started
    watch = os.getpid()
    libc = ctypes.CDLL(None) if sys.platform == "linux" else None
    try:
        server = subprocess.Popen(  # noqa: S603 (our owner's command)
            command,
            stdin=subprocess.DEVNULL,
            preexec_fn=lambda: _server_setup(watch, libc),  # noqa: PLW1509 (we run no threads)
        )
    except OSError as exc:
        sys.stderr.write(f"cannot start {command[0]}: {exc}\n")
        return 127
    _mask(signal.SIG_UNBLOCK)
    while not stops and server.poll() is None and os.getppid() == owner:
        time.sleep(_POLL_SECONDS)  # a signal handler only appends: nothing is raised here
    if server.returncode is not None and not stops:  # it ended on its own
        _signal_ours(server, signal.SIGTERM)  # ...and what it started ends with it
        code = server.returncode
        return 128 - code if code < 0 else code
    _end(server)
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a subprocess
    sys.exit(main(sys.argv[1:]))
