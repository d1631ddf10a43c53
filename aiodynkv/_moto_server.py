"""Entry point of the embedded emulator: moto's DynamoDB on one thread.

``python -m moto.server`` serves each request on its own thread without locking,
so concurrent UpdateItem calls on one item can lose updates (500 concurrent
``incr`` ended at 498 in our tests). One thread serves requests one at a time,
which makes every request atomic, as DynamoDB's are.

Run as ``python -m aiodynkv._moto_server HOST PORT [OWNER_PID]``. It stops on
SIGTERM and SIGINT, even when it was started with SIGINT ignored (as ``&`` and CI
runners do), and when ``OWNER_PID`` is given it also stops as soon as that process
is gone, so a killed test run (SIGKILL, a CI timeout) cannot leave it behind.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

_OWNER_POLL_SECONDS = 0.5


def _stop(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def _watch_owner(owner: int) -> None:
    """Exit the whole process once `owner` is no longer our parent (it died)."""
    event = threading.Event()
    while not event.wait(_OWNER_POLL_SECONDS):
        if os.getppid() != owner:
            os._exit(0)  # the main thread is blocked in select(): leave at once


def main(argv: list[str]) -> None:
    """Serve moto on ``argv[0]:argv[1]`` until SIGTERM, SIGINT or the owner's death."""
    host, port = argv[0], int(argv[1])
    # Set explicitly: an inherited SIG_IGN for SIGINT would otherwise survive.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if len(argv) > 2:
        owner = int(argv[2])
        if os.getppid() != owner:
            return  # the owner died before we even started
        threading.Thread(target=_watch_owner, args=(owner,), daemon=True).start()
    os.environ.setdefault("MOTO_PORT", str(port))
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )
    from werkzeug.serving import WSGIRequestHandler, run_simple

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """Don't log every request."""

    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=QuietHandler)


if __name__ == "__main__":  # pragma: no cover - run as a subprocess
    main(sys.argv[1:])
