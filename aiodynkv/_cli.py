"""The ``aiodynkv`` command line (the ``cli`` extra: typer and rich).

Commands, in ``aiodynkv --help`` order: on keys (get, set, delete, exists, ttl, keys),
on the whole table (health, create-table, export, import), for development (demo,
local). Exit codes: 0 ok, 1 key not found, 2 usage error or invalid input, 3 server or
connection error, 130 interrupted; an expected error prints one line to stderr,
``aiodynkv: <message>``, and no traceback.

Export and import copy between a store and JSON Lines, one item a line: ``key``, then
``value`` (a string, or an integer for a counter) or ``value_b64`` (bytes), and
``expires_at`` (epoch seconds) for an item with a TTL (docs/cli.md, docs/migration.md).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
import os
import signal
import socket
import sys
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol, TextIO, TypeVar

import structlog
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from aiodynkv._config import ENV_PREFIX, KVConfig
from aiodynkv._errors import (
    BatchIncompleteError,
    KeyNotFoundError,
    KVConfigError,
    KVError,
    KVValidationError,
    TableNotFoundError,
    TransientError,
)
from aiodynkv._protocol import KVStore, StoredItem, Value
from aiodynkv._store import AsyncDynamoKV

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_SERVER",
    "EXIT_USAGE",
    "FIELDS",
    "Record",
    "RecordError",
    "Reporter",
    "Summary",
    "app",
    "count_lines",
    "decode",
    "encode",
    "export_items",
    "import_items",
    "main",
]

EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_SERVER = 3
EXIT_INTERRUPTED = 130
REGION_HELP = (
    "AWS region. Else AWS_REGION, else AWS_DEFAULT_REGION, else the profile's region in "
    "~/.aws/config; us-east-1 only for a loopback endpoint (127.0.0.0/8, ::1, localhost). "
    "Without any of these, commands against AWS fail with exit code 2."
)
CREATE_TABLE_HINT = (
    "create it with `aiodynkv create-table` (with the same --table, --endpoint and --region)"
)
_T = TypeVar("_T")


class CommandError(Exception):
    """An expected failure: print `message` on one line and exit with `code`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _cannot(what: str, exc: OSError, code: int = EXIT_USAGE) -> CommandError:
    """The failure of a file or socket operation: ``cannot <what>: <why>``."""
    return CommandError(code, f"cannot {what}: {exc.strerror or exc}")


@dataclass(frozen=True, slots=True)
class Globals:
    """The options given before the command."""

    table: str | None = None
    endpoint: str | None = None
    region: str | None = None
    namespace: str | None = None
    verbose: bool = False

    def config(self, **fields: Any) -> KVConfig:
        """The store's config: these options over ``AIODYNKV_*`` variables (as `from_env`)."""
        given = {name: getattr(self, name) for name in ("table", "endpoint", "region", "namespace")}
        values = {name: value for name, value in given.items() if value} | fields
        if "table" not in values and not os.environ.get(f"{ENV_PREFIX}TABLE"):
            raise CommandError(EXIT_USAGE, f"no table: pass --table or set {ENV_PREFIX}TABLE")
        return KVConfig.from_env(None, logger=_logger(self.verbose), **values)


def _logger(verbose: bool) -> Any:
    """The store's events on stderr with --verbose, else nowhere (errors get one line)."""
    level = logging.DEBUG if verbose else logging.CRITICAL  # the store logs nothing critical
    return structlog.wrap_logger(
        structlog.PrintLogger(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
    )


class _TidyHelp:
    """Help screens with arguments as ``KEY`` (``[KEY]`` optional) and flags without a type."""

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, typer.core.TyperArgument) and param.metavar is None:
                param.metavar = (param.name or "value").upper()
            elif isinstance(param, typer.core.TyperOption) and param.is_flag:
                param.metavar = ""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces: list[str] = [ctx.command.options_metavar or ""]
        for param in self.params:
            if isinstance(param, typer.core.TyperArgument):
                name = param.metavar or ""
                pieces.append(name if param.required else f"[{name}]")
        return [piece for piece in pieces if piece]

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""
        return option


class _Command(_TidyHelp, typer.core.TyperCommand):
    """A command with tidy help (see `_TidyHelp`)."""


class _Group(_TidyHelp, typer.core.TyperGroup):
    """The command group with tidy help (see `_TidyHelp`)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [*super().collect_usage_pieces(ctx), self.subcommand_metavar or "COMMAND"]


app = typer.Typer(
    name="aiodynkv",
    help="A key-value store on one DynamoDB table, from the shell.",
    cls=_Group,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _global_option(flag: str, short: str, metavar: str, help_text: str) -> Any:
    """A global option, also read from ``AIODYNKV_<NAME>``."""
    variable = ENV_PREFIX + flag.lstrip("-").upper()
    return typer.Option(flag, short, envvar=variable, metavar=metavar, help=help_text)


@app.callback()
def _root(
    ctx: typer.Context,
    table: Annotated[
        str | None, _global_option("--table", "-t", "NAME", "DynamoDB table name.")
    ] = None,
    endpoint: Annotated[
        str | None,
        _global_option(
            "--endpoint", "-e", "URL", "URL of a DynamoDB-compatible server; leave out for AWS."
        ),
    ] = None,
    region: Annotated[str | None, _global_option("--region", "-r", "REGION", REGION_HELP)] = None,
    namespace: Annotated[
        str | None, _global_option("--namespace", "-n", "NAME", "Namespace of the keys.")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log every store call to stderr.")
    ] = False,
) -> None:
    """A key-value store on one DynamoDB table, from the shell.

    Every other AIODYNKV_* variable of KVConfig.from_env is read too. Install from a
    clone of the repository with: pip install -e '.[cli,local]'
    """
    ctx.obj = Globals(table, endpoint, region, namespace, verbose)


def _globals(ctx: typer.Context) -> Globals:
    found: Globals = ctx.ensure_object(Globals)
    return found


def _with_store(ctx: typer.Context, use: Callable[[AsyncDynamoKV], Awaitable[_T]]) -> _T:
    """Open the store configured by the options, run `use` on it, close it."""
    config = _globals(ctx).config()

    async def run() -> _T:
        async with AsyncDynamoKV(config) as kv:
            return await use(kv)

    return asyncio.run(run())


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(f"aiodynkv: {' '.join(text.split())}\n")
    sys.stderr.flush()


# -- the entry point ----------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``aiodynkv`` command line with `argv` (default: ``sys.argv[1:]``); the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stderr.write("usage: aiodynkv [OPTIONS] COMMAND [ARGS]... (aiodynkv --help)\n")
        return EXIT_USAGE
    command = typer.main.get_command(app)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning  # restored on the way out
            result = command.main(args, prog_name="aiodynkv", standalone_mode=False)
    except Exception as exc:
        expected = (typer.TyperException, typer.Abort, CommandError, KVError)
        if not isinstance(exc, (*expected, *_local_server_errors())):
            raise
        code, message = _failure(exc)
        _err(message)
        return code
    if result == EXIT_INTERRUPTED:  # typer turns KeyboardInterrupt into a silent exit 130
        _err("interrupted")
    return result if isinstance(result, int) else 0


def _local_server_errors() -> tuple[type[Exception], ...]:
    """`LocalServerError` once `local` or `demo` loaded it (no other command loads it)."""
    local = sys.modules.get("aiodynkv.testing._local")
    return () if local is None else (local.LocalServerError,)


def _warning(message: Warning | str, category: type[Warning], *_where: Any, **_source: Any) -> None:
    """Show a warning (`warnings.showwarning`'s arguments) as one line, without source."""
    _err(f"warning: {category.__name__}: {message}")


def _missing_table(exc: BaseException) -> TableNotFoundError | None:
    """The TableNotFoundError that `exc` is or was caused by (a batch wraps it), if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TableNotFoundError):
            return seen
        seen = seen.__cause__
    return None


def _failure(exc: BaseException) -> tuple[int, str]:  # noqa: PLR0911 (one return per kind)
    """The exit code and the one-line message for an expected failure."""
    if isinstance(exc, typer.TyperException):
        message = exc.format_message()
        if exc.exit_code == EXIT_USAGE:  # typer's UsageError and its subclasses
            message = f"usage error: {message} (aiodynkv --help)"
        return exc.exit_code, message
    if isinstance(exc, CommandError):
        return exc.code, str(exc)
    missing = _missing_table(exc)
    if missing is not None:
        table = f"table {missing.table!r}" if missing.table else "the table"
        return EXIT_SERVER, f"{table} does not exist: {CREATE_TABLE_HINT}"
    if isinstance(exc, KeyNotFoundError):
        return EXIT_NOT_FOUND, f"key {exc.key!r} not found" if exc.key is not None else str(exc)
    if isinstance(exc, (KVConfigError, KVValidationError)):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, (KVError, *_local_server_errors())):
        return EXIT_SERVER, f"{type(exc).__name__}: {exc}"
    return EXIT_INTERRUPTED, "aborted"  # typer.Abort: end of input at a prompt


# -- commands on keys: get, set, delete, exists, ttl and keys ------------------------------


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
        try:
            data = Path(file).read_bytes()
        except OSError as exc:
            raise _cannot(f"read {file}", exc) from None
    _with_store(ctx, lambda kv: kv.set(key, data, ttl=ttl))


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


# -- commands on the whole table: health, create-table, export and import ------------------


_MAX_WARNINGS = 20


@app.command(cls=_Command)
def health(ctx: typer.Context) -> None:
    """Print the table's health as JSON. Exit 0 when UP, 3 when DOWN."""
    report = _with_store(ctx, lambda kv: kv.health())
    _out(json.dumps({"status": report.status, **report.details}, default=str))
    if not report.is_up:
        message = report.details.get("message") or report.details.get("table_status")
        raise CommandError(EXIT_SERVER, f"DOWN: {message}")


@app.command("create-table", cls=_Command)
def create_table(ctx: typer.Context) -> None:
    """Create the table if it is missing (on-demand billing) and enable TTL."""
    config = _with_store(ctx, _ensure_table)
    _out(f"table {config.table!r} is ready (key {config.partition_key!r}, TTL on "
         f"{config.ttl_attribute!r})")  # fmt: skip


async def _ensure_table(kv: AsyncDynamoKV) -> KVConfig:
    await kv.ensure_table()
    return kv.config


# -- export and import: progress on stderr, then the commands -------------------------------


class _ProgressReporter:
    """Progress bars on stderr, and the first problems above them."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None
        self.warnings = 0

    def phase(self, description: str, total: int | None) -> None:
        if self.task is not None:
            done = self.progress.tasks[-1].completed
            self.progress.update(self.task, total=done, completed=done)
        self.task = self.progress.add_task(description, total=total)

    def advance(self, steps: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, steps)

    def warn(self, message: str) -> None:
        self.warnings += 1
        if self.warnings <= _MAX_WARNINGS:
            self.progress.console.print(
                f"aiodynkv: {message}", markup=False, highlight=False, soft_wrap=True
            )
        elif self.warnings == _MAX_WARNINGS + 1:
            self.progress.console.print("aiodynkv: (further problems are counted, not shown)")


@contextlib.contextmanager
def _progress() -> Iterator[_ProgressReporter]:
    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    progress = Progress(
        TextColumn("{task.description:<12}"), *columns, console=Console(stderr=True)
    )
    with progress:
        yield _ProgressReporter(progress)


def _report(verb: str, summary: Summary, started: float) -> None:
    sys.stderr.write(summary.line(verb, time.monotonic() - started) + "\n")


@app.command("export", cls=_Command)
def export_(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="JSON Lines file to write ('-' for stdout).")],
    prefix: Annotated[
        str | None,
        typer.Option("--prefix", metavar="PREFIX", help="Only keys starting with this."),
    ] = None,
) -> None:
    """Write every item (of the namespace) to FILE, one JSON object a line.

    The file is written in full or not at all: FILE.part is renamed to FILE at the end.
    """
    config = _globals(ctx).config()
    started = time.monotonic()
    summary = Summary()

    async def run(out: TextIO, reporter: _ProgressReporter) -> None:
        async with AsyncDynamoKV(config) as kv:
            await export_items(kv, out, reporter, summary, prefix=prefix)

    try:
        if file == "-":
            with _progress() as reporter:
                asyncio.run(run(sys.stdout, reporter))
            sys.stdout.flush()
        else:
            target = Path(file)
            part = target.with_name(target.name + ".part")
            try:
                out = part.open("w", encoding="utf-8")
            except OSError as exc:
                raise _cannot(f"write {file}", exc) from None
            try:
                with out, _progress() as reporter:
                    asyncio.run(run(out, reporter))
                part.replace(target)
            finally:
                part.unlink(missing_ok=True)
    except BaseException:
        _report("export stopped", summary, started)
        raise
    _report("exported", summary, started)


@app.command("import", cls=_Command)
def import_(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="JSON Lines file to read ('-' for stdin).")],
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=1, metavar="N", help="Lines read and compared per batch."),
    ] = 1000,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Write every item, even one the table already holds identically."
        ),
    ] = False,
    create_table: Annotated[
        bool,
        typer.Option(
            "--create-table", help="Create the table first if it is missing (as create-table)."
        ),
    ] = False,
) -> None:
    """Write the items in FILE (JSON Lines, as written by export) to the table.

    A key that already holds the identical value is skipped, so running the same
    import again, e.g. after an interruption, writes only what is still missing.
    """
    config = _globals(ctx).config(**({"create_table": True} if create_table else {}))
    started = time.monotonic()
    summary = Summary()
    options: dict[str, Any] = {"batch_size": batch_size, "overwrite": overwrite}
    with _open_lines(file) as (lines, total):
        try:
            with _progress() as reporter:

                async def run() -> None:
                    async with AsyncDynamoKV(config) as kv:
                        await import_items(kv, lines, reporter, summary, total=total, **options)

                asyncio.run(run())
        except BaseException as exc:
            _report("import stopped", summary, started)
            failure = _import_failure(exc, file, config.table)
            if failure is None:
                raise
            raise failure from None
    _report("imported", summary, started)
    if summary.unwritten:
        raise CommandError(EXIT_SERVER, f"{summary.unwritten} items were not written")
    if summary.invalid:
        raise CommandError(EXIT_USAGE, f"{summary.invalid} lines or items are invalid")


def _import_failure(exc: BaseException, file: str, table: str) -> CommandError | None:
    """The one-line failure an import that stopped on `exc` ends in (None: `exc` itself).

    Says how to resume when running the command again would finish the job.
    """
    if isinstance(exc, UnicodeDecodeError):
        return CommandError(EXIT_USAGE, f"{file} is not UTF-8 text ({exc.reason})")
    if isinstance(exc, KVError) and _missing_table(exc) is not None:
        return CommandError(
            EXIT_SERVER,
            f"table {table!r} does not exist: add --create-table, or {CREATE_TABLE_HINT}",
        )
    if isinstance(exc, (TransientError, BatchIncompleteError, KeyboardInterrupt)):
        _err("run the same command again to resume: keys already imported are skipped")
    return None


@contextlib.contextmanager
def _open_lines(file: str) -> Iterator[tuple[TextIO, int | None]]:
    if file == "-":
        yield sys.stdin, None
        return
    try:
        total = count_lines(file)
        stream = Path(file).open(encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise _cannot(f"read {file}", exc) from None
    with stream:
        yield stream, total


# -- development commands: demo and local (the embedded emulator until Ctrl-C) -------------


LOCAL_HOST = "127.0.0.1"
DEFAULT_LOCAL_TABLE = "aiodynkv"


@app.command(cls=_Command)
def demo() -> None:
    """Run a tour of the API against a fresh embedded emulator."""
    from aiodynkv.__main__ import run_demo

    run_demo()


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCAL_HOST, port))
        except OSError as exc:
            raise _cannot(f"listen on {LOCAL_HOST}:{port}", exc, EXIT_SERVER) from None


def wait_for_interrupt(on_ready: Callable[[], object] | None = None) -> None:
    """Block until SIGINT or SIGTERM (even if started with SIGINT ignored, as ``&`` does).

    `on_ready` is called once the handlers are in place (tests signal from it).
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
        _out(
            f"DynamoDB emulator (moto) on {server.endpoint}, table {table!r} ready.\n"
            "In another terminal:\n"
            f"    export AIODYNKV_ENDPOINT={server.endpoint} AIODYNKV_TABLE={table}\n"
            "    aiodynkv set greeting hello && aiodynkv get greeting\n"
            "The data lives in memory. Press Ctrl-C to stop."
        )
        wait_for_interrupt()
    _out("stopped")


# -- the copying behind export and import (no typer, no rich): the file format first ------

FIELDS = ("key", "value", "value_b64", "expires_at")


class RecordError(ValueError):
    """A line is not a valid record; the message says why."""


@dataclass(frozen=True, slots=True)
class Record:
    """One item: its key (in the namespace), value (str, bytes or a counter's int), expiry."""

    key: str
    value: Value
    expires_at: int | None = None


def encode(record: Record) -> str:
    """The record as one line of JSON (without the newline)."""
    obj: dict[str, object] = {"key": record.key}
    if isinstance(record.value, bytes):
        obj["value_b64"] = base64.b64encode(record.value).decode("ascii")
    else:
        obj["value"] = record.value
    if record.expires_at is not None:
        obj["expires_at"] = record.expires_at
    return json.dumps(obj, ensure_ascii=False)


def decode(line: str) -> Record:
    """Parse one line (`RecordError`: not a JSON object with the fields of `FIELDS`)."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise RecordError(f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise RecordError(f"unknown field {unknown[0]!r} (allowed: {', '.join(FIELDS)})")
    key = obj.get("key")
    if not isinstance(key, str) or not key:
        raise RecordError('"key" must be a non-empty string')
    return Record(key, _value_of(obj), _expiry_of(obj.get("expires_at")))


def _value_of(obj: dict[str, object]) -> Value:
    if ("value" in obj) == ("value_b64" in obj):
        raise RecordError('give exactly one of "value" and "value_b64"')
    if "value_b64" in obj:
        encoded = obj["value_b64"]
        if not isinstance(encoded, str):
            raise RecordError('"value_b64" must be a base64 string')
        try:
            return base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise RecordError(f'"value_b64" is not valid base64 ({exc})') from None
    value = obj["value"]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(
            '"value" must be a string, or an integer for a counter '
            '(bytes go in "value_b64"; encode other JSON as a string)'
        )
    return value


def _expiry_of(raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise RecordError('"expires_at" must be epoch seconds (a number)')
    return math.ceil(raw)


# -- the copying: export_items and import_items ---------------------------------------------

# An expiry is written as ttl = expires_at - now - margin: the store rounds the
# expiry up (ceil(now + ttl)), so without the margin it could land one second late.
_EXPIRY_MARGIN = 0.5


class Reporter(Protocol):
    """Where progress and per-item problems go (a progress bar, or nothing)."""

    def phase(self, description: str, total: int | None) -> None:
        """Start a phase of `total` steps (None: unknown)."""

    def advance(self, steps: int) -> None:
        """Count `steps` done in the current phase."""

    def warn(self, message: str) -> None:
        """Report a problem with one item; the transfer goes on."""


@dataclass
class Summary:
    """What a transfer did. ``read == written + skipped + failed`` once it has finished."""

    read: int = 0  # keys listed (export) or non-blank lines read (import)
    written: int = 0
    skipped: int = 0  # expired, identical in the table already, or superseded by a later line
    invalid: int = 0  # lines or items that cannot be stored (bad JSON, a bad key, too large)
    unwritten: int = 0  # items the server did not take before the batch deadline

    @property
    def failed(self) -> int:
        """Items that failed, for either reason."""
        return self.invalid + self.unwritten

    def line(self, verb: str, seconds: float) -> str:
        """One line for people: ``imported: 10 read, 9 written, 1 skipped, 0 failed (0.4 s)``."""
        return (
            f"{verb}: {self.read} read, {self.written} written, {self.skipped} skipped, "
            f"{self.failed} failed ({seconds:.1f} s)"
        )


async def export_items(
    kv: KVStore,
    out: TextIO,
    reporter: Reporter,
    summary: Summary,
    *,
    prefix: str | None = None,
) -> None:
    """Write every unexpired item of `kv` (under `prefix`) to `out`: JSON Lines, sorted by key."""
    reporter.phase("reading items", None)
    items = []
    async for item in kv.items(prefix):  # one paginated Scan: values and expiry together
        items.append(item)
        reporter.advance(1)
    items.sort(key=lambda item: item.key)
    reporter.phase("exporting", len(items))
    for item in items:
        summary.read += 1
        expires_at = None if item.expires_at is None else math.ceil(item.expires_at)
        out.write(encode(Record(item.key, item.value, expires_at)) + "\n")
        summary.written += 1
    reporter.advance(len(items))


def _ttl_until(expires_at: int | None) -> float | None:
    """The TTL that stores `expires_at` exactly; 0 or less when it is (nearly) past."""
    if expires_at is None:
        return None
    return expires_at - time.time() - _EXPIRY_MARGIN


def _expired(ttl: float | None) -> bool:
    return ttl is not None and ttl <= 0


#: What happened to the items of one write: "written", "skipped" and "unwritten".
_Counts = Counter[str]


def _same(record: Record, have: StoredItem | None) -> bool:
    """True if the table holds this exact item: same type, value and expiry."""
    if have is None or type(have.value) is not type(record.value) or have.value != record.value:
        return False
    if have.expires_at is None or record.expires_at is None:
        return have.expires_at is None and record.expires_at is None
    # The file holds whole seconds, rounded up; the table the exact expiry.
    return abs(have.expires_at - record.expires_at) <= 1.0


@dataclass
class _Importer:
    """Writes batches of records, counting what happened to each in `summary`."""

    kv: AsyncDynamoKV
    reporter: Reporter
    summary: Summary
    overwrite: bool
    limit: asyncio.Semaphore  # set_many/set_counter calls in flight

    def invalid(self, where: str, problem: object) -> None:
        self.summary.invalid += 1
        self.reporter.warn(f"{where}: {problem}")

    async def batch(self, records: list[tuple[int, Record]]) -> None:
        """Import one batch; a later line for the same key wins, an expired one is skipped."""
        latest = {record.key: (number, record) for number, record in records}
        live = [(n, r) for n, r in latest.values() if not _expired(_ttl_until(r.expires_at))]
        self.summary.skipped += len(records) - len(live)
        try:
            counts = await self.apply([record for _, record in live])
        except KVValidationError:
            # Something in the batch cannot be stored, and nothing of the failing call
            # was sent: redo the batch one record at a time to find out what.
            counts = _Counts()
            for number, record in live:
                try:
                    counts += await self.apply([record])
                except KVValidationError as exc:  # noqa: PERF203 (only after a refusal)
                    self.invalid(f"line {number}", exc)
        self.summary.written += counts["written"]
        self.summary.skipped += counts["skipped"]
        self.summary.unwritten += counts["unwritten"]

    async def apply(self, records: list[Record]) -> _Counts:
        """Write the records that the table does not already hold identically."""
        stored: dict[str, StoredItem] = {}
        if records and not self.overwrite:
            stored = await self.kv._stored_many([record.key for record in records])
        counts = _Counts()
        groups: dict[int | None, dict[str, str | bytes]] = {}
        jobs = []
        for record in records:
            if _same(record, stored.get(record.key)):
                counts["skipped"] += 1
            elif isinstance(record.value, int):  # one atomic write
                jobs.append(
                    self._write({record.key: record.value}, record.expires_at, counter=True)
                )
            else:
                groups.setdefault(record.expires_at, {})[record.key] = record.value
        jobs += [self._write(items, expires_at) for expires_at, items in groups.items()]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
            counts += result
        return counts

    async def _write(
        self, items: dict[str, Any], expires_at: int | None, *, counter: bool = False
    ) -> _Counts:
        """One set_many of values, or a set_counter of one counter, unless expired meanwhile."""
        async with self.limit:
            ttl = _ttl_until(expires_at)
            if _expired(ttl):
                return _Counts(skipped=len(items))  # expired while waiting its turn
            try:
                if counter:
                    [(key, value)] = items.items()
                    await self.kv.set_counter(key, value, ttl=ttl)
                else:
                    await self.kv.set_many(items, ttl=ttl)
            except BatchIncompleteError as exc:
                self.reporter.warn(
                    f"{len(exc.unprocessed)} items not written before the batch deadline "
                    "(run the import again to retry them)"
                )
                return _Counts(
                    written=len(items) - len(exc.unprocessed), unwritten=len(exc.unprocessed)
                )
            return _Counts(written=len(items))


async def import_items(
    kv: AsyncDynamoKV,
    lines: Iterable[str],
    reporter: Reporter,
    summary: Summary,
    *,
    total: int | None = None,
    batch_size: int = 1000,
    overwrite: bool = False,
    concurrency: int = 16,
) -> None:
    """Write the records in `lines` (JSON Lines) to `kv`, `batch_size` lines at a time.

    Bad lines and items that cannot be stored are reported, counted as invalid and passed
    over. `total` (lines) sizes the progress bar; `overwrite` writes without reading first;
    `concurrency` bounds the ``set_many``/``set_counter`` calls in flight.
    """
    importer = _Importer(kv, reporter, summary, overwrite, asyncio.Semaphore(concurrency))
    reporter.phase("importing", total)
    batch: list[tuple[int, Record]] = []
    consumed = 0
    for number, line in enumerate(lines, 1):
        consumed += 1
        if not line.strip():
            continue
        summary.read += 1
        try:
            batch.append((number, decode(line)))
        except RecordError as exc:
            importer.invalid(f"line {number}", exc)
        if len(batch) >= batch_size:
            await importer.batch(batch)
            reporter.advance(consumed)
            batch, consumed = [], 0
    await importer.batch(batch)
    reporter.advance(consumed)


def count_lines(path: str) -> int:
    """Lines in a file, for the progress bar's total (a fast binary read)."""
    count = 0
    last = b"\n"
    with open(path, "rb") as file:  # noqa: PTH123 (a plain path string from the command line)
        while chunk := file.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")
