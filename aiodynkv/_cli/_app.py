"""The ``aiodynkv`` app (typer): options, shared helpers, and errors to exit codes.

The commands themselves are in ``_commands_data`` (keys), ``_commands_table``
(health, create-table, export, import) and ``_commands_dev`` (demo, local).

Exit codes: 0 ok, 1 key not found, 2 usage error or invalid input, 3 server or
connection error, 130 interrupted. Expected errors print one line to stderr,
``aiodynkv: <message>``, and no traceback.

The help screens name every value by what it is (``KEY``, ``--ttl SECONDS``) and
show flags bare: `_Command` and `_Group` replace typer's ``{key}`` and ``<bool>``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import structlog
import typer

from aiodynkv._config import ENV_PREFIX, KVConfig
from aiodynkv._errors import (
    KeyNotFoundError,
    KVConfigError,
    KVError,
    KVValidationError,
    TableNotFoundError,
)
from aiodynkv._store import AsyncDynamoKV

__all__ = ["EXIT_INTERRUPTED", "EXIT_NOT_FOUND", "EXIT_SERVER", "EXIT_USAGE", "app", "main"]

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
        given = {
            "table": self.table,
            "endpoint": self.endpoint,
            "region": self.region,
            "namespace": self.namespace,
        }
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
    """Help screens that name values by what they are and show flags bare.

    typer renders a required argument as ``{key}`` in the usage line and gives every
    option a type column, ``<bool>`` for flags. Here an argument reads ``KEY`` (``[KEY]``
    when optional), a flag has no type column, and options carry their own metavar.
    """

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tidy()

    def _tidy(self) -> None:
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


@app.callback()
def _root(
    ctx: typer.Context,
    table: Annotated[
        str | None,
        typer.Option(
            "--table", "-t", envvar="AIODYNKV_TABLE", metavar="NAME", help="DynamoDB table name."
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            "-e",
            envvar="AIODYNKV_ENDPOINT",
            metavar="URL",
            help="URL of a DynamoDB-compatible server; leave out for AWS.",
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            "-r",
            envvar="AIODYNKV_REGION",
            metavar="REGION",
            help=REGION_HELP,
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            "-n",
            envvar="AIODYNKV_NAMESPACE",
            metavar="NAME",
            help="Namespace of the keys.",
        ),
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
    """Run the ``aiodynkv`` command line with `argv` (default: ``sys.argv[1:]``).

    Returns:
        The exit code.
    """
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
    """`LocalServerError`, once the test servers' module is loaded (by `local` or `demo`).

    Only those commands start a server; the others never load ``aiodynkv.testing``.
    """
    local = sys.modules.get("aiodynkv.testing._local")
    return () if local is None else (local.LocalServerError,)


def _warning(message: Warning | str, category: type[Warning], *_where: Any, **_source: Any) -> None:
    """Show a warning as one line of its own, without Python's source line.

    Takes `warnings.showwarning`'s arguments; the category and message are shown.
    """
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
