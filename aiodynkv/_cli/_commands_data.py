"""The commands on keys: get, set, delete, exists, ttl and keys."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from aiodynkv._cli._app import (
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    CommandError,
    _Command,
    _out,
    _with_store,
    app,
)
from aiodynkv._store import AsyncDynamoKV

KeyArg = Annotated[str, typer.Argument(help="The key.", show_default=False)]


@app.command(cls=_Command)
def get(ctx: typer.Context, key: KeyArg) -> None:
    """Print the value of KEY: text as it is, a counter as a number, bytes unchanged."""
    value = _with_store(ctx, lambda kv: kv.get(key))
    if isinstance(value, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(value)
        sys.stdout.buffer.flush()
    else:
        _out(str(value))


@app.command("set", cls=_Command)
def set_(
    ctx: typer.Context,
    key: KeyArg,
    value: Annotated[
        str | None, typer.Argument(help="The value (text).", show_default=False)
    ] = None,
    ttl: Annotated[
        float | None,
        typer.Option(
            "--ttl", metavar="SECONDS", help="Seconds until the key expires (default: never)."
        ),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            "-f",
            metavar="FILE",
            help="Store the bytes of FILE instead of VALUE ('-' reads stdin).",
        ),
    ] = None,
) -> None:
    """Store VALUE (text) or the bytes of --file at KEY, replacing what was there."""
    if (value is None) == (file is None):
        raise typer.BadParameter("give either VALUE or --file")
    data: str | bytes
    if file is None:
        data = str(value)
    elif file == "-":
        data = sys.stdin.buffer.read()
    else:
        data = _read_bytes(file)
    _with_store(ctx, lambda kv: kv.set(key, data, ttl=ttl))


def _read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(EXIT_USAGE, f"cannot read {path}: {exc.strerror or exc}") from None


@app.command(cls=_Command)
def delete(ctx: typer.Context, key: KeyArg) -> None:
    """Delete KEY. Exit 1 if it did not exist."""
    if not _with_store(ctx, lambda kv: kv.delete(key)):
        raise CommandError(EXIT_NOT_FOUND, f"key {key!r} not found")


@app.command(cls=_Command)
def exists(ctx: typer.Context, key: KeyArg) -> None:
    """Print true or false. Exit 0 if KEY exists, 1 if not."""
    found = _with_store(ctx, lambda kv: kv.exists(key))
    _out("true" if found else "false")
    if not found:
        raise typer.Exit(EXIT_NOT_FOUND)


@app.command(cls=_Command)
def ttl(ctx: typer.Context, key: KeyArg) -> None:
    """Print the seconds until KEY expires, or 'none' if it never does."""
    remaining = _with_store(ctx, lambda kv: kv.ttl(key))
    _out("none" if remaining is None else f"{remaining:.1f}")


@app.command(cls=_Command)
def keys(
    ctx: typer.Context,
    prefix: Annotated[
        str | None, typer.Argument(help="Only keys starting with this.", show_default=False)
    ] = None,
) -> None:
    """Print every key (of the namespace), one a line. A full table Scan."""

    async def listing(kv: AsyncDynamoKV) -> None:
        async for key in kv.keys(prefix):
            _out(key)

    _with_store(ctx, listing)
