"""The commands on the whole table: health, create-table, export and import."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, TextIO

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

from aiodynkv._cli._app import (
    CREATE_TABLE_HINT,
    EXIT_SERVER,
    EXIT_USAGE,
    CommandError,
    _Command,
    _err,
    _globals,
    _missing_table,
    _out,
    _with_store,
    app,
)
from aiodynkv._cli._transfer import Summary, count_lines, export_items, import_items
from aiodynkv._config import KVConfig
from aiodynkv._errors import (
    BatchIncompleteError,
    KVError,
    TransientError,
)
from aiodynkv._store import AsyncDynamoKV

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


# -- export and import ---------------------------------------------------------------


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
    progress = Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
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
                raise CommandError(
                    EXIT_USAGE, f"cannot write {file}: {exc.strerror or exc}"
                ) from None
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
    with _open_lines(file) as (lines, total):
        try:
            with _progress() as reporter:

                async def run() -> None:
                    async with AsyncDynamoKV(config) as kv:
                        await import_items(
                            kv,
                            lines,
                            reporter,
                            summary,
                            total=total,
                            batch_size=batch_size,
                            overwrite=overwrite,
                        )

                asyncio.run(run())
        except UnicodeDecodeError as exc:
            _report("import stopped", summary, started)
            raise CommandError(EXIT_USAGE, f"{file} is not UTF-8 text ({exc.reason})") from None
        except KVError as exc:
            _report("import stopped", summary, started)
            if _missing_table(exc) is None:
                if isinstance(exc, (TransientError, BatchIncompleteError)):
                    _err("run the same command again to resume: keys already imported are skipped")
                raise
            raise CommandError(
                EXIT_SERVER,
                f"table {config.table!r} does not exist: add --create-table, "
                f"or {CREATE_TABLE_HINT}",
            ) from None
        except KeyboardInterrupt:
            _report("import stopped", summary, started)
            _err("run the same command again to resume: keys already imported are skipped")
            raise
        except BaseException:
            _report("import stopped", summary, started)
            raise
    _report("imported", summary, started)
    if summary.unwritten:
        raise CommandError(EXIT_SERVER, f"{summary.unwritten} items were not written")
    if summary.invalid:
        raise CommandError(EXIT_USAGE, f"{summary.invalid} lines or items are invalid")


@contextlib.contextmanager
def _open_lines(file: str) -> Iterator[tuple[TextIO, int | None]]:
    if file == "-":
        yield sys.stdin, None
        return
    try:
        total = count_lines(file)
        stream = Path(file).open(encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise CommandError(EXIT_USAGE, f"cannot read {file}: {exc.strerror or exc}") from None
    with stream:
        yield stream, total
