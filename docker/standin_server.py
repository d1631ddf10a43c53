"""The stand-in image's entry point: moto's DynamoDB on 0.0.0.0, one request at a time.

It takes DynamoDB Local's arguments (``-jar DynamoDBLocal.jar -inMemory -sharedDb``, as
`LocalDynamoDB` and docker-compose.yml pass them), so the image can replace
``amazon/dynamodb-local`` unchanged: ``-port N`` is honoured (default 8000), the others
are accepted and ignored (moto keeps its data in memory). One thread serves every
request, so each request is atomic as DynamoDB's are, and each reply has one Server
header. It stops on SIGTERM and SIGINT.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType


def _stop(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def port_of(argv: list[str]) -> int:
    """The value of DynamoDB Local's ``-port`` option, 8000 without it."""
    if "-port" in argv:
        return int(argv[argv.index("-port") + 1])
    return 8000


def main(argv: list[str]) -> None:
    """Serve until SIGTERM or SIGINT."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, run_simple

    class Handler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """Don't log every request."""

        def send_response(self, code: int, message: str | None = None) -> None:
            """The status line and Date only: moto's app sends its own Server header."""
            self.send_response_only(code, message)
            self.send_header("Date", self.date_time_string())

    port = port_of(argv)
    print(f"aiodynkv stand-in: moto's DynamoDB on 0.0.0.0:{port}", flush=True)  # noqa: T201
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("0.0.0.0", port, app, threaded=False, request_handler=Handler)  # noqa: S104


if __name__ == "__main__":
    main(sys.argv[1:])
