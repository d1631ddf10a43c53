"""Run a server for as long as the process that started it lives.

``python -m aiodynkv._owned OWNER_PID COMMAND [ARG ...]`` starts COMMAND as its own
child and stays beside it. It stops the child (SIGTERM, then SIGKILL after a grace
period) and exits when:

- its owner is gone: its parent is no longer ``OWNER_PID``, even when the owner was
  killed with SIGKILL or by a CI timeout, so that no atexit hook or finalizer ran;
- it gets SIGTERM, SIGINT or SIGHUP, even when it was started with SIGINT ignored
  (as ``&`` and CI runners do; a server such as dynalite would keep that setting).

It exits with the child's status when the child ends on its own. `LocalDynamoDB`
starts every local server through it, in a process group of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType

_POLL_SECONDS = 0.25
_GRACE_SECONDS = 5.0
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)
)


class _StopSignalError(Exception):
    """A stop signal arrived."""


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _StopSignalError


def _end(child: subprocess.Popen[bytes]) -> None:
    """Stop `child`: SIGTERM, then SIGKILL when it does not end within the grace period."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main(argv: list[str]) -> int:
    """Run ``argv[1:]`` while process ``argv[0]`` is our parent; return the exit status."""
    owner, command = int(argv[0]), argv[1:]
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _raise_stop)
    if os.getppid() != owner:
        return 0  # the owner died before we even started
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # noqa: S603 (our own command)
    try:
        while child.poll() is None and os.getppid() == owner:
            time.sleep(_POLL_SECONDS)  # a stop signal interrupts it at once
        if child.returncode is not None:
            return child.returncode
    except _StopSignalError:
        pass
    finally:
        for signum in _STOP_SIGNALS:  # one stop is enough
            signal.signal(signum, signal.SIG_IGN)
        _end(child)
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a subprocess
    sys.exit(main(sys.argv[1:]))
