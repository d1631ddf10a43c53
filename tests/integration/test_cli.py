"""The ``aiodynkv`` command line against real servers.

Most tests call ``aiodynkv._cli.main`` in-process (so coverage sees them), on the
session's moto or dynalite server; a few run ``python -m aiodynkv`` as a
subprocess, the way a person would in two terminals.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aiodynkv import AsyncDynamoKV, BatchIncompleteError, ThrottledError, _cli
from aiodynkv._cli import main as cli_main
from tests.conftest import StoreFactory, put_raw

FAST_FAIL = {
    "AIODYNKV_MAX_ATTEMPTS": "1",
    "AIODYNKV_CONNECT_TIMEOUT": "1",
    "AIODYNKV_BATCH_DEADLINE": "0.5",
}


@dataclass
class Result:
    code: int
    out: str
    err: str


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _table() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}"


def _store(
    endpoint: str, table: str, use: Callable[[AsyncDynamoKV], Any], namespace: str | None = None
) -> Any:
    """Open a store on `table` (created if missing) and run `use` on it."""

    async def go() -> Any:
        async with AsyncDynamoKV(
            table=table, endpoint=endpoint, namespace=namespace, create_table=True
        ) as kv:
            return await use(kv)

    return asyncio.run(go())


@dataclass
class Run:
    """Runs the CLI in-process with AIODYNKV_ENDPOINT/TABLE/NAMESPACE set for this test."""

    endpoint: str
    table: str
    namespace: str
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    def __call__(self, *args: str, stdin: bytes | None = None) -> Result:
        self.capsys.readouterr()
        if stdin is not None:
            self.monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = cli_main(list(args))
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def store(self, use: Callable[[AsyncDynamoKV], Any]) -> Any:
        """Run `use` on a store of the same table and namespace."""
        return _store(self.endpoint, self.table, use, self.namespace)


@pytest.fixture(scope="module")
def tables() -> dict[str, str]:
    """One table per server for the whole module; each test has its own namespace in it."""
    return {}


@pytest.fixture
def make_run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tables: dict[str, str],
) -> Callable[[str], Run]:
    for name in list(os.environ):
        if name.startswith("AIODYNKV_") and name != "AIODYNKV_DYNALITE":
            monkeypatch.delenv(name)

    def factory(endpoint: str) -> Run:
        if endpoint not in tables:
            tables[endpoint] = _table()
            _store(endpoint, tables[endpoint], lambda kv: kv.health())  # creates it
        namespace = f"test-{uuid.uuid4().hex[:8]}"
        monkeypatch.setenv("AIODYNKV_ENDPOINT", endpoint)
        monkeypatch.setenv("AIODYNKV_TABLE", tables[endpoint])
        monkeypatch.setenv("AIODYNKV_NAMESPACE", namespace)
        return Run(endpoint, tables[endpoint], namespace, capsys, monkeypatch)

    return factory


@pytest.fixture
def run(make_run: Callable[[str], Run], moto_endpoint: str) -> Run:
    return make_run(moto_endpoint)


@pytest.fixture
def bulk_run(make_run: Callable[[str], Run], dynalite_endpoint: str) -> Run:
    """On dynalite, which answers the one-GetItem-per-key expiry reads of export faster."""
    return make_run(dynalite_endpoint)


# -- single keys -----------------------------------------------------------------------


def test_set_get_exists_ttl_delete_round_trip(run: Run) -> None:
    assert run("set", "user:1", "alice") == Result(0, "", "")
    assert run("get", "user:1") == Result(0, "alice\n", "")
    assert run("exists", "user:1") == Result(0, "true\n", "")
    assert run("ttl", "user:1") == Result(0, "none\n", "")
    assert run("delete", "user:1") == Result(0, "", "")
    assert run("get", "user:1") == Result(1, "", "aiodynkv: key 'user:1' not found\n")
    assert run("exists", "user:1") == Result(1, "false\n", "")
    assert run("delete", "user:1") == Result(1, "", "aiodynkv: key 'user:1' not found\n")
    assert run("ttl", "user:1").code == 1


def test_set_with_ttl_bytes_from_a_file_and_from_stdin(run: Run, tmp_path: Path) -> None:
    assert run("set", "session", "token", "--ttl", "120").code == 0
    remaining = float(run("ttl", "session").out)
    assert 100 < remaining <= 121
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\x01binary")
    assert run("set", "blob", "--file", str(blob)).code == 0
    assert run("get", "blob").out == "\x00\x01binary"
    assert run("set", "piped", "-f", "-", stdin=b"from stdin\x00").code == 0
    assert run("get", "piped").out == "from stdin\x00"


def test_keys_lists_the_namespace_and_the_prefix_and_counters_print_as_numbers(
    run: Run,
) -> None:
    run.store(lambda kv: kv.set_many({"user:1": "x", "user:2": "x", "order:1": "x"}))
    run.store(lambda kv: kv.incr("hits", 41))
    other = f"{run.namespace}-other"
    assert run("--namespace", other, "set", "user:3", "y").code == 0
    assert sorted(run("keys").out.split()) == ["hits", "order:1", "user:1", "user:2"]
    assert sorted(run("keys", "user:").out.split()) == ["user:1", "user:2"]
    assert run("-n", other, "keys").out == "user:3\n"
    assert run("-n", other, "get", "user:1").code == 1
    assert run("get", "hits") == Result(0, "41\n", "")


def test_global_options_win_over_the_environment(run: Run, moto_endpoint: str) -> None:
    other = _table()
    assert run("--table", other, "create-table").code == 0
    assert run("--table", other, "--endpoint", moto_endpoint, "set", "k", "v").code == 0
    assert run("get", "k").code == 1  # AIODYNKV_TABLE's table does not have it
    assert run("-t", other, "-r", "us-east-1", "get", "k").out == "v\n"


def test_health_is_json_and_exit_3_when_down(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    up = run("health")
    assert up.code == 0
    report = json.loads(up.out)
    assert report["status"] == "UP" and report["table"] == run.table
    for name, value in FAST_FAIL.items():
        monkeypatch.setenv(name, value)
    down = run("--endpoint", f"http://127.0.0.1:{_closed_port()}", "health")
    assert down.code == 3
    assert json.loads(down.out)["status"] == "DOWN"
    assert down.err.startswith("aiodynkv: DOWN: ") and down.err.count("\n") == 1


def test_create_table_makes_a_table_ready_to_use(run: Run) -> None:
    fresh = _table()
    missing = run("-t", fresh, "set", "k", "v")
    assert missing == Result(
        3,
        "",
        f"aiodynkv: table '{fresh}' does not exist: create it with `aiodynkv create-table` "
        "(with the same --table, --endpoint and --region)\n",
    )
    made = run("-t", fresh, "create-table")
    assert made == Result(0, f"table '{fresh}' is ready (key 'pk', TTL on 'expires_at')\n", "")
    assert run("-t", fresh, "set", "k", "v").code == 0


def test_expected_errors_are_one_line_with_their_exit_code(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run() == Result(2, "", "usage: aiodynkv [OPTIONS] COMMAND [ARGS]... (aiodynkv --help)\n")
    for args in (["nope"], ["get"], ["set", "k"], ["set", "k", "v", "--file", "x"], ["get", "-x"]):
        result = run(*args)
        assert result.code == 2, args
        assert result.err.startswith("aiodynkv: usage error: ") and result.err.count("\n") == 1
    assert run("set", "bad\x1fkey", "v").code == 2  # InvalidKeyError
    assert run("set", "k", "v", "--ttl", "-1").code == 2  # KVValidationError
    assert run("set", "k", "--file", "/nonexistent/file").err.startswith("aiodynkv: cannot read")
    assert run("-e", "ftp://nowhere", "get", "k").code == 2  # KVConfigError
    monkeypatch.delenv("AIODYNKV_TABLE")
    assert run("get", "k") == Result(
        2, "", "aiodynkv: no table: pass --table or set AIODYNKV_TABLE\n"
    )
    for name, value in FAST_FAIL.items():
        monkeypatch.setenv(name, value)
    down = run("-t", "tbl", "-e", f"http://127.0.0.1:{_closed_port()}", "get", "k")
    assert down.code == 3
    assert down.err.startswith("aiodynkv: KVConnectionError: ") and down.err.count("\n") == 1
    assert down.out == ""  # the store's error event is not printed without --verbose
    verbose = run("-v", "-t", "tbl", "-e", f"http://127.0.0.1:{_closed_port()}", "get", "k")
    assert "aiodynkv.get" in verbose.err and "error" in verbose.err
    assert run("--help").code == 0


def test_no_region_for_a_remote_endpoint_is_a_usage_error_naming_the_ways_to_set_it(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config").write_text("[default]\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    result = run("-t", "tbl", "-e", "https://dynamodb.example.invalid", "get", "k")
    assert result.code == 2
    assert "region" in result.err and "AWS_REGION" in result.err
    assert result.err.count("\n") == 1


_AIODYNKV = (sys.executable, "-m", "aiodynkv")


def test_a_warning_is_one_line_without_source_code(tmp_path: Path) -> None:
    # Plain http to a host that is not loopback warns (InsecureEndpointWarning); the
    # command line says so in one line of its own, not Python's two with a source line.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "AIODYNKV_")) or name == "AIODYNKV_DYNALITE"
    }
    env |= {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AIODYNKV_MAX_ATTEMPTS": "1",
    }
    result = subprocess.run(  # noqa: S603 (our own module)
        [*_AIODYNKV, "-t", "tbl", "-e", "http://db.invalid:8000", "-r", "us-east-1", "get", "k"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    lines = result.stderr.splitlines()
    assert lines[0].startswith(
        "aiodynkv: warning: InsecureEndpointWarning: the endpoint is plain http"
    ), lines
    assert len(lines) == 2 and lines[1].startswith("aiodynkv: "), lines  # then the error
    assert result.returncode == 3


def test_a_missing_aws_profile_is_a_usage_error_in_one_line(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "config").write_text("[default]\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "missing")
    result = run("get", "k")
    assert result.code == 2, result.err
    assert "missing" in result.err and result.err.count("\n") == 1, result.err


def _help(*args: str) -> str:
    """The help screen as a terminal 200 columns wide would show it (in process)."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(
        _cli.app,
        [*args, "--help"],
        prog_name="aiodynkv",
        env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def test_help_names_values_by_what_they_are_and_shows_flags_bare() -> None:
    top = _help()
    assert "Usage: aiodynkv [OPTIONS] COMMAND [ARGS]..." in top
    assert "--verbose" in top and "--region" in top
    commands = ("get", "set", "delete", "exists", "ttl", "keys", "health", "create-table")
    for command in (*commands, "export", "import", "demo", "local"):
        text = _help(command) if command else top
        assert "<bool>" not in text, command
        assert "{" not in text.split("Usage:", 1)[1].splitlines()[0], command
    assert "Usage: aiodynkv get [OPTIONS] KEY" in _help("get")
    assert "Usage: aiodynkv set [OPTIONS] KEY [VALUE]" in _help("set")
    assert "Usage: aiodynkv keys [OPTIONS] [PREFIX]" in _help("keys")
    assert "SECONDS" in _help("set") and "--create-table" in _help("import")


def test_help_tells_the_region_rules_as_decided() -> None:
    text = " ".join(_help().replace("│", " ").split())
    assert " ".join(_cli.REGION_HELP.split()) in text


def test_importing_into_a_missing_table_says_how_to_create_it(run: Run, tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    dump.write_text('{"key": "k", "value": "v"}\n', encoding="utf-8")
    fresh = _table()
    missing = run("-t", fresh, "import", str(dump))
    assert missing.code == 3
    assert "run the same command again" not in missing.err
    assert missing.err.rstrip().endswith(
        f"aiodynkv: table '{fresh}' does not exist: add --create-table, or create it with "
        "`aiodynkv create-table` (with the same --table, --endpoint and --region)"
    )
    created = run("-t", fresh, "import", str(dump), "--create-table")
    assert created.code == 0, created.err
    assert "imported: 1 read, 1 written, 0 skipped, 0 failed (" in created.err
    assert run("-t", fresh, "get", "k") == Result(0, "v\n", "")


def test_an_import_file_that_is_not_utf8_is_a_usage_error(run: Run, tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(b'{"key": "k", "value": "\xff"}\n')
    result = run("import", str(dump))
    assert result.code == 2
    assert "import stopped: " in result.err and "run the same command again" not in result.err
    assert result.err.rstrip().endswith(f"aiodynkv: {dump} is not UTF-8 text (invalid start byte)")


def test_an_import_stopped_by_throttling_says_how_to_resume(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = tmp_path / "dump.jsonl"
    dump.write_text('{"key": "k", "value": "v"}\n', encoding="utf-8")

    async def throttled(*_args: Any, **_kwargs: Any) -> None:
        raise ThrottledError("set_many on table 't' failed: throttled")

    monkeypatch.setattr(AsyncDynamoKV, "set_many", throttled)
    result = run("import", str(dump))
    assert result.code == 3
    lines = result.err.rstrip().splitlines()
    assert lines[-2:] == [
        "aiodynkv: run the same command again to resume: keys already imported are skipped",
        "aiodynkv: ThrottledError: set_many on table 't' failed: throttled",
    ]


# -- export and import -------------------------------------------------------------------


def _fill(endpoint: str, table: str, namespace: str) -> None:
    async def fill(kv: AsyncDynamoKV) -> None:
        await kv.set("short", "lived", ttl=0.1)
        await kv.set_many({f"user:{i:03}": f"name {i} é" for i in range(70)})
        await kv.set_many({f"blob:{i:02}": bytes([i, 0, 255]) for i in range(20)}, ttl=3600)
        for i in range(5):
            await kv.incr(f"count:{i}", i * 7 - 3)
        await kv.namespace(f"{namespace}-elsewhere").set("user:001", "not exported")
        while await kv.exists("short"):  # noqa: ASYNC110 (expires within a second)
            await asyncio.sleep(0.1)

    _store(endpoint, table, fill, namespace)


def test_export_then_import_into_a_fresh_table_gives_identical_contents(
    bulk_run: Run, dynalite_endpoint: str, tmp_path: Path
) -> None:
    _fill(dynalite_endpoint, bulk_run.table, bulk_run.namespace)
    dump = tmp_path / "dump.jsonl"
    exported = bulk_run("export", str(dump))
    assert exported.code == 0, exported.err
    assert "exporting" in exported.err and "95/95" in exported.err  # the progress bar
    assert (
        exported.err.rstrip()
        .splitlines()[-1]
        .startswith("exported: 95 read, 95 written, 0 skipped, 0 failed (")
    )
    lines = dump.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["key"] for r in records] == sorted(r["key"] for r in records)
    by_key = {r["key"]: r for r in records}
    assert by_key["user:007"] == {"key": "user:007", "value": "name 7 é"}
    assert by_key["blob:03"]["value_b64"] == "AwD/"
    assert abs(by_key["blob:03"]["expires_at"] - (time.time() + 3600)) < 30
    assert by_key["count:0"] == {"key": "count:0", "value": -3}
    assert "short" not in by_key and len(by_key) == 95
    assert not (tmp_path / "dump.jsonl.part").exists()

    target = _table()
    assert bulk_run("-t", target, "create-table").code == 0
    imported = bulk_run("-t", target, "import", str(dump))
    assert imported.code == 0, imported.err
    assert "importing" in imported.err and "95/95" in imported.err
    assert "imported: 95 read, 95 written, 0 skipped, 0 failed (" in imported.err
    again = tmp_path / "again.jsonl"
    assert bulk_run("-t", target, "export", str(again)).code == 0
    assert again.read_bytes() == dump.read_bytes()  # values, types and expiries


def test_an_interrupted_import_resumes_without_losses_or_duplicates(
    bulk_run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = tmp_path / "dump.jsonl"
    lines = [json.dumps({"key": f"k:{i:03}", "value": f"v{i}"}) for i in range(120)]
    lines += [json.dumps({"key": f"n:{i}", "value": i}) for i in range(10)]  # counters
    dump.write_text("\n".join(lines) + "\n", encoding="utf-8")
    calls = 0
    real_set_many = AsyncDynamoKV.set_many

    async def failing_set_many(self: AsyncDynamoKV, *args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the third batch
        await real_set_many(self, *args, **kwargs)

    monkeypatch.setattr(AsyncDynamoKV, "set_many", failing_set_many)
    stopped = bulk_run("import", str(dump), "--batch-size", "30")
    assert stopped.code == 130
    assert "import stopped: " in stopped.err and "run the same command again" in stopped.err
    assert stopped.err.rstrip().endswith("aiodynkv: interrupted")
    monkeypatch.setattr(AsyncDynamoKV, "set_many", real_set_many)

    resumed = bulk_run("import", str(dump), "--batch-size", "30")
    assert resumed.code == 0, resumed.err
    assert "imported: 130 read, 70 written, 60 skipped, 0 failed (" in resumed.err
    again = bulk_run("import", str(dump))
    assert "imported: 130 read, 0 written, 130 skipped, 0 failed (" in again.err
    exported = bulk_run("export", "-")
    assert sorted(exported.out.splitlines()) == sorted(lines)


def test_import_reports_bad_lines_imports_the_rest_and_exits_2(run: Run, tmp_path: Path) -> None:
    dump = tmp_path / "mixed.jsonl"
    incompressible = base64.b64encode(os.urandom(420_000)).decode()
    dump.write_text(
        "\n".join(
            [
                '{"key": "good:1", "value": "one"}',
                "{not json",
                '{"key": "k", "value": "v", "ttl": 60}',
                '{"key": "k", "value": "v", "value_b64": "AA=="}',
                '{"key": "k", "value_b64": "***"}',
                '{"key": "k", "value": true}',
                '{"key": "", "value": "v"}',
                "[1, 2]",
                '{"key": "gone", "value": "v", "expires_at": 1000}',
                '{"key": "bad\\u001fkey", "value": "v"}',
                '{"key": "huge", "value_b64": "' + incompressible + '"}',
                "",
                '{"key": "good:2", "value_b64": "AAE=", "expires_at": 4102444800.5}',
                '{"key": "good:1", "value": "one, later"}',
            ]
        ),
        encoding="utf-8",
    )
    result = run("import", str(dump))
    assert result.code == 2
    assert "aiodynkv: line 2: not JSON" in result.err
    assert "unknown field 'ttl'" in result.err
    assert "line 11: " in result.err and "bytes" in result.err  # ValueTooLargeError
    assert "imported: 13 read, 2 written, 2 skipped, 9 failed (" in result.err
    assert result.err.rstrip().endswith("aiodynkv: 9 lines or items are invalid")
    exported = [json.loads(line) for line in run("export", "-").out.splitlines()]
    assert exported == [
        {"key": "good:1", "value": "one, later"},
        {"key": "good:2", "value_b64": "AAE=", "expires_at": 4102444801},
    ]


def test_import_overwrites_counters_and_values_that_differ(run: Run, tmp_path: Path) -> None:
    async def seed(kv: AsyncDynamoKV) -> None:
        await kv.incr("hits", 5)
        await kv.set("word", "old")
        await kv.set("same", "same")
        await kv.set("was-text", "text")

    run.store(seed)
    dump = tmp_path / "dump.jsonl"
    dump.write_text(
        '{"key": "hits", "value": 7}\n{"key": "word", "value": "new", "expires_at": 4102444800}\n'
        '{"key": "same", "value": "same"}\n{"key": "was-text", "value": 3}\n',
        encoding="utf-8",
    )
    result = run("import", str(dump))
    assert "imported: 4 read, 3 written, 1 skipped, 0 failed (" in result.err
    overwrite = run("import", str(dump), "--overwrite")
    assert "imported: 4 read, 4 written, 0 skipped, 0 failed (" in overwrite.err
    values = run.store(lambda kv: kv.get_many(["hits", "was-text", "word"]))
    assert values == {"hits": 7, "was-text": 3, "word": "new"}  # counters replaced, not added to


def test_export_to_stdout_and_import_from_stdin(run: Run) -> None:
    assert run("set", "a", "1").code == 0
    other = f"{run.namespace}-other"
    assert run("-n", other, "set", "b", "2").code == 0
    exported = run("-n", other, "export", "-")
    assert exported.out == '{"key": "b", "value": "2"}\n'
    imported = run("import", "-", stdin=exported.out.encode())
    assert "imported: 1 read, 1 written, 0 skipped, 0 failed (" in imported.err
    assert sorted(run("keys").out.split()) == ["a", "b"]


def test_a_batch_left_unprocessed_is_counted_and_exits_3(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def incomplete(*_args: Any, **_kwargs: Any) -> None:
        raise BatchIncompleteError("deadline", unprocessed=["k2"])

    monkeypatch.setattr(AsyncDynamoKV, "set_many", incomplete)
    dump = tmp_path / "dump.jsonl"
    dump.write_text('{"key": "k1", "value": "v"}\n{"key": "k2", "value": "v"}\n')
    result = run("import", str(dump))
    assert result.code == 3
    assert "1 items not written before the batch deadline" in result.err
    assert "imported: 2 read, 1 written, 0 skipped, 1 failed (" in result.err


def test_files_that_cannot_be_read_or_written_and_servers_that_fail(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = run("import", str(tmp_path / "nope.jsonl"))
    assert missing.code == 2 and missing.err.startswith("aiodynkv: cannot read")
    unwritable = run("export", str(tmp_path / "no-such-dir" / "x.jsonl"))
    assert unwritable.code == 2 and "cannot write" in unwritable.err
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"key": "k", "value": "caf\xe9"}\n')
    assert run("import", str(latin)).code == 2
    for name, value in FAST_FAIL.items():
        monkeypatch.setenv(name, value)
    down = f"http://127.0.0.1:{_closed_port()}"
    export = run("-e", down, "export", str(tmp_path / "x.jsonl"))
    assert export.code == 3 and "export stopped: 0 read" in export.err
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "x.jsonl.part").exists()
    imported = run("-e", down, "import", "-", stdin=b'{"key": "k", "value": "v"}\n')
    assert imported.code == 3 and "import stopped: 1 read, 0 written" in imported.err


# -- local, demo, and python -m aiodynkv -------------------------------------------------


def _free_port() -> int:
    return _closed_port()


def test_local_serves_the_emulator_until_interrupted(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    seen: list[Result] = []

    def meanwhile() -> None:  # what a second terminal does while `local` runs
        seen.append(run("-e", endpoint, "-t", "aiodynkv", "set", "greeting", "hello"))
        seen.append(run("-e", endpoint, "-t", "aiodynkv", "get", "greeting"))

    monkeypatch.setattr(_cli, "wait_for_interrupt", meanwhile)
    monkeypatch.delenv("AIODYNKV_TABLE")
    code = cli_main(["local", "--port", str(port)])
    assert code == 0
    assert seen == [Result(0, "", ""), Result(0, "hello\n", "")]
    with socket.socket() as sock:  # stopped: the port is free again
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_local_refuses_a_port_in_use(run: Run) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run("local", "--port", str(port))
    assert result.code == 3
    assert result.err.startswith(f"aiodynkv: cannot listen on 127.0.0.1:{port}")


def test_local_reports_a_server_that_cannot_start_as_a_server_failure(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiodynkv.testing import LocalDynamoDB, LocalServerError

    def refuse(_server: LocalDynamoDB) -> LocalDynamoDB:
        raise LocalServerError("moto exited with code 1")

    monkeypatch.setattr(LocalDynamoDB, "__enter__", refuse)
    result = run("local", "--port", str(_free_port()))
    assert result == Result(3, "", "aiodynkv: LocalServerError: moto exited with code 1\n")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_wait_for_interrupt_returns_on_sigterm_and_on_sigint_even_if_it_was_ignored(
    signum: signal.Signals,
) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `&` and CI runners start us
    try:
        # Signalled once the handlers are in place: no race with a timer.
        _cli.wait_for_interrupt(on_ready=lambda: os.kill(os.getpid(), signum))
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # restored
        assert signal.getsignal(signal.SIGTERM) is before[signal.SIGTERM]
    finally:
        signal.signal(signal.SIGINT, before[signal.SIGINT])


def test_without_typer_only_the_demo_is_offered(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import aiodynkv.__main__
    from aiodynkv.__main__ import main

    for name in [m for m in sys.modules if m.startswith("aiodynkv._cli")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "typer", None)
    ran: list[bool] = []
    monkeypatch.setattr(aiodynkv.__main__, "run_demo", lambda: ran.append(True))
    assert main(["demo"]) == 0 and ran == [True]
    capsys.readouterr()
    assert main(["get", "k"]) == 2
    assert "pip install -e '.[cli,local]'" in capsys.readouterr().err
    for flag in ("--help", "-h"):
        assert main([flag]) == 0
        out = capsys.readouterr().out
        assert "usage: python -m aiodynkv demo" in out
        assert "need the cli extra" in out and "pip install -e '.[cli,local]'" in out
    monkeypatch.setitem(sys.modules, "aiodynkv._cli", None)  # any other ImportError is a bug
    monkeypatch.delitem(sys.modules, "typer")
    with pytest.raises(ImportError):
        main(["demo"])


def start_local(*, ignore_sigint: bool = False) -> tuple[subprocess.Popen[str], str]:
    """`python -m aiodynkv local` in its own process group, as in a first terminal.

    With `ignore_sigint`, it starts with SIGINT ignored, as `&` in a shell and CI
    runners start processes.
    """
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIODYNKV_")}
    command = [sys.executable, "-m", "aiodynkv", "local", "--port", str(port)]
    if ignore_sigint:
        command = ["/bin/sh", "-c", 'trap "" INT; exec "$@"', "sh", *command]
    process = subprocess.Popen(  # noqa: S603 (our own module)
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert process.stdout is not None
    banner = process.stdout.readline()
    if f"on http://127.0.0.1:{port}, table 'aiodynkv' ready" not in banner:
        stop_group(process)
        pytest.fail(f"aiodynkv local did not start: {banner}")
    return process, f"http://127.0.0.1:{port}"


def stop_group(process: subprocess.Popen[str]) -> None:
    """SIGTERM to the process group, SIGKILL after 10 s; reap it and close its pipe."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture
def local_server() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`python -m aiodynkv local`, stopped with its whole group whatever the test did."""
    process, endpoint = start_local()
    try:
        yield process, endpoint
    finally:
        stop_group(process)


def _port_is_free(endpoint: str) -> bool:
    port = int(endpoint.rsplit(":", 1)[1])
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_aiodynkv_local_in_one_terminal_set_and_get_in_another(
    local_server: tuple[subprocess.Popen[str], str],
) -> None:
    process, endpoint = local_server
    env = {**os.environ, "AIODYNKV_ENDPOINT": endpoint, "AIODYNKV_TABLE": "aiodynkv"}

    def aiodynkv(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 (our own module)
            [sys.executable, "-m", "aiodynkv", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    assert aiodynkv("set", "greeting", "hello").returncode == 0
    got = aiodynkv("get", "greeting")
    assert (got.returncode, got.stdout) == (0, "hello\n")
    process.send_signal(signal.SIGINT)  # Ctrl-C
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert rest.rstrip().endswith("stopped")
    assert _port_is_free(endpoint)  # the emulator went with it


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_aiodynkv_local_stops_on_a_signal_even_when_started_with_sigint_ignored(
    signum: signal.Signals,
) -> None:
    process, endpoint = start_local(ignore_sigint=True)
    try:
        process.send_signal(signum)
        rest, _ = process.communicate(timeout=30)
        assert process.returncode == 0, rest
        assert rest.rstrip().endswith("stopped")
        assert _port_is_free(endpoint)
    finally:
        stop_group(process)


class _Quiet:
    def phase(self, description: str, total: int | None) -> None: ...
    def advance(self, steps: int) -> None: ...
    def warn(self, message: str) -> None: ...


async def test_import_rewrites_an_item_whose_only_difference_is_its_expiry() -> None:
    from aiodynkv._cli import Record, Summary, encode, import_items
    from aiodynkv.testing import InMemoryKV

    async with InMemoryKV() as kv:
        await kv.set("forever-in-file", "same", ttl=100)  # the file says: never expires
        await kv.set("expiring-in-file", "same")  # the file says: expires in an hour
        await kv.set("counter", "not a counter yet")
        soon = int(time.time()) + 3600
        lines = [
            encode(Record("forever-in-file", "same", None)),
            encode(Record("expiring-in-file", "same", soon)),
            encode(Record("counter", 41, None)),
        ]
        summary = Summary()
        await import_items(kv, lines, _Quiet(), summary)
        assert await kv.ttl("forever-in-file") is None
        left = await kv.ttl("expiring-in-file")
        assert left is not None and 3590 < left <= 3600
        assert await kv.incr("counter") == 42  # written as a counter in one atomic write
        assert summary.written == 3
        again = Summary()
        await import_items(kv, lines[:2], _Quiet(), again)
        assert again.skipped == 2  # identical now, value and expiry


async def test_reimporting_stored_items_reads_them_in_batches_and_writes_nothing(
    moto_endpoint: str,
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from aiodynkv._cli import Record, Summary, encode, import_items

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    later = int(time.time()) + 3600
    records = [Record(f"s:{i:04d}", f"v{i}", later if i % 2 else None) for i in range(300)]
    records += [Record(f"b:{i}", bytes([i]), None) for i in range(10)]
    records += [Record(f"n:{i}", i, later if i % 2 else None) for i in range(10)]
    lines = [encode(record) for record in records]
    name = f"imp-{uuid.uuid4().hex[:10]}"
    async with AsyncDynamoKV(
        table=name, endpoint=moto_endpoint, create_table=True, tracer_provider=provider
    ) as kv:
        await import_items(kv, lines, _Quiet(), Summary(), batch_size=200)
        exporter.clear()
        again = Summary()
        await import_items(kv, lines, _Quiet(), again, batch_size=200)
        await kv.client.delete_table(TableName=name)
    assert (again.read, again.written, again.skipped, again.failed) == (320, 0, 320, 0)
    spans = exporter.get_finished_spans()
    sent = [span.name.split()[0] for span in spans if not span.name.startswith("DynamoDB.")]
    # Two batches of lines: one batched read each (BatchGetItem), no per-key reads, no writes.
    assert sent == ["BatchGetItem", "BatchGetItem"]


async def test_reimport_into_a_namespace_skips_what_it_holds_and_stops_at_a_corrupt_item(
    make_store: StoreFactory,
) -> None:
    from aiodynkv import CorruptItemError
    from aiodynkv._cli import Record, Summary, encode, import_items

    base = await make_store()
    kv = base.namespace("ns")
    later = int(time.time()) + 3600
    lines = [
        encode(Record("a", "1", None)),
        encode(Record("b", b"\x00", later)),
        encode(Record("n", 7, None)),
    ]
    await import_items(kv, lines, _Quiet(), Summary())
    again = Summary()
    await import_items(kv, lines, _Quiet(), again)
    assert (again.written, again.skipped) == (0, 3)
    await put_raw(base, {"pk": {"S": kv._keys.prefix + "bad"}, "value": {"BOOL": True}})
    with pytest.raises(CorruptItemError):
        await import_items(kv, [*lines, encode(Record("bad", "x", None))], _Quiet(), Summary())
    assert await kv.get_many(["a", "b", "n"]) == {"a": "1", "b": b"\x00", "n": 7}


async def test_an_import_whose_batched_read_stays_unprocessed_stops_naming_the_keys(
    moto_endpoint: str,
) -> None:
    from aiodynkv._cli import Record, Summary, encode, import_items
    from tests.integration.test_store import StubbornClient

    lines = [encode(Record(f"k{i}", "v", None)) for i in range(150)]
    name = f"imp-{uuid.uuid4().hex[:10]}"
    async with AsyncDynamoKV(table=name, endpoint=moto_endpoint, create_table=True) as kv:
        stubborn = StubbornClient(kv.client, stuck={"k7", "k120"})
        async with AsyncDynamoKV(
            kv.config, client=stubborn, batch_deadline=0.3, transport="botocore"
        ) as store:
            with pytest.raises(BatchIncompleteError) as read:
                await import_items(store, lines, _Quiet(), Summary())
        assert read.value.unprocessed == {"k7", "k120"}
        assert await kv.keys() == []  # nothing of the batch was written
        await kv.client.delete_table(TableName=name)
