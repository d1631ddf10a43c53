"""The development commands: demo and local (the embedded emulator until Ctrl-C)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from typing import Annotated

import typer

from aiodynkv._cli._app import (
    EXIT_SERVER,
    CommandError,
    _Command,
    _globals,
    _out,
    app,
)
from aiodynkv._config import ENV_PREFIX
from aiodynkv._store import AsyncDynamoKV

LOCAL_HOST = "127.0.0.1"
DEFAULT_LOCAL_TABLE = "aiodynkv"


@app.command(cls=_Command)
def demo() -> None:
    """Run a tour of the API against a fresh embedded emulator."""
    from aiodynkv._demo import run_demo

    run_demo()


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCAL_HOST, port))
        except OSError as exc:
            raise CommandError(
                EXIT_SERVER, f"cannot listen on {LOCAL_HOST}:{port}: {exc.strerror or exc}"
            ) from None


def wait_for_interrupt(on_ready: Callable[[], object] | None = None) -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM.

    Both handlers are installed explicitly: a process started with SIGINT ignored
    (``&`` in a shell, CI runners) inherits SIG_IGN, and Python keeps it.

    Args:
        on_ready: Called once the handlers are in place (tests signal from it).
    """
    try:
        with stop_signals():
            if on_ready is not None:
                on_ready()
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise KeyboardInterrupt; restored after."""
    previous = {
        signum: signal.signal(signum, signal.default_int_handler)
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@app.command(cls=_Command)
def local(
    ctx: typer.Context,
    port: Annotated[
        int,
        typer.Option("--port", "-p", min=1, max=65535, metavar="PORT", help="Port on 127.0.0.1."),
    ] = 8000,
) -> None:
    """Run the embedded DynamoDB emulator (moto) on 127.0.0.1 until Ctrl-C.

    A stand-in for DynamoDB Local without Docker. The table (--table, else
    AIODYNKV_TABLE, else 'aiodynkv') is created; the data lives in memory.
    It stops on Ctrl-C and on SIGTERM, also when started in the background.
    """
    from aiodynkv.testing._local import LocalDynamoDB

    table = _globals(ctx).table or os.environ.get(f"{ENV_PREFIX}TABLE") or DEFAULT_LOCAL_TABLE
    _check_port_free(port)
    # A stop request is honoured at any moment, also while starting: from here on,
    # SIGINT and SIGTERM raise KeyboardInterrupt, and the server stops on the way out.
    with (
        stop_signals(),
        contextlib.suppress(KeyboardInterrupt),
        LocalDynamoDB("moto", port=port) as server,
    ):
        config = _globals(ctx).config(table=table, endpoint=server.endpoint, create_table=True)

        async def create() -> None:
            async with AsyncDynamoKV(config):
                pass

        asyncio.run(create())
        _out(f"DynamoDB emulator (moto) on {server.endpoint}, table {table!r} ready.")
        _out("In another terminal:")
        _out(f"    export AIODYNKV_ENDPOINT={server.endpoint} AIODYNKV_TABLE={table}")
        _out("    aiodynkv set greeting hello && aiodynkv get greeting")
        _out("The data lives in memory. Press Ctrl-C to stop.")
        wait_for_interrupt()
    _out("stopped")
