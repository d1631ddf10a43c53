"""Entry point of the embedded emulator: moto's DynamoDB on one thread.

``python -m moto.server`` serves each request on its own thread without locking,
so concurrent UpdateItem calls on one item can lose updates (500 concurrent
``incr`` ended at 498 in our tests). One thread serves requests one at a time,
which makes every request atomic, as DynamoDB's are.

Run as ``python -m aiodynkv.testing._moto_server HOST PORT``. It stops on SIGTERM and
SIGINT, even when it was started with SIGINT ignored (as ``&`` and CI runners do).
`LocalDynamoDB` runs it under `aiodynkv.testing._owned`, which also stops it once its owner
is gone.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _stop(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str]) -> None:
    """Serve moto on ``argv[0]:argv[1]`` until SIGTERM or SIGINT."""
    host, port = argv[0], int(argv[1])
    # Set explicitly: an inherited SIG_IGN for SIGINT would otherwise survive.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    os.environ.setdefault("MOTO_PORT", str(port))
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )
    from werkzeug.serving import WSGIRequestHandler, run_simple

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """Don't log every request."""

        def send_response(self, code: int, message: str | None = None) -> None:
            """The status line and Date only: moto's app sends its own Server header.

            http.server would add a second one, and a strict HTTP parser (aiohttp's in
            asyncio debug mode, ``python -X dev``) rejects a reply with two.
            """
            self.send_response_only(code, message)
            self.send_header("Date", self.date_time_string())

    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=QuietHandler)


if __name__ == "__main__":  # pragma: no cover - run as a subprocess
    main(sys.argv[1:])
