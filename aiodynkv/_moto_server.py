"""Entry point of the embedded emulator: moto's DynamoDB on one thread.

``python -m moto.server`` serves each request on its own thread without locking,
so concurrent UpdateItem calls on one item can lose updates (500 concurrent
``incr`` ended at 498 in our tests). One thread serves requests one at a time,
which makes every request atomic, as DynamoDB's are.

Run as ``python -m aiodynkv.testing._moto HOST PORT``.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> None:
    """Serve moto on ``argv[0]:argv[1]`` until SIGTERM or SIGINT."""
    host, port = argv[0], int(argv[1])
    os.environ.setdefault("MOTO_PORT", str(port))
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )
    from werkzeug.serving import WSGIRequestHandler, run_simple

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """Don't log every request."""

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=QuietHandler)


if __name__ == "__main__":  # pragma: no cover - run as a subprocess
    main(sys.argv[1:])
