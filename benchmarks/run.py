"""Run every benchmark and rewrite BENCHMARKS.md.

    python -m nox -s bench                 # the reproducible way (pinned contenders)
    python benchmarks/run.py [--quick]     # in an environment that has them installed

Starts the stub (``benchmarks/stub.py``) and, when it can be found, dynalite, each in
its own process on 127.0.0.1; then one worker process per (server, workload, contender)
so that client CPU, peak RSS and import state belong to that pair alone. Every process
started here is stopped here, by PID. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import functools
import importlib.metadata
import importlib.util
import json
import os
import platform
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
WORKER = HERE / "worker.py"
STUB = HERE / "stub.py"
RUN_BUDGET_SECONDS = 15 * 60  # hard stop for the whole run; normal runs take far less
QUIET_LOAD = 0.5
NOISY_LOAD = 1.0
WORKER_TIMEOUT = 150.0  # one worker step: start-up + warm-up, or one repetition

sys.path.insert(0, str(HERE))
from worker import summarize  # noqa: E402

PACKAGES = [
    "aiodynkv",
    "aioboto3",
    "aiobotocore",
    "botocore",
    "aiohttp",
    "aiodynamo",
    "py-key-value-aio",
    "opentelemetry-api",
    "structlog",
]

LABELS = {
    "aiodynkv": "aiodynkv (default config)",
    "aiodynkv-coalesce-on": "aiodynkv, coalesce_reads=True",
    "aiodynkv-coalesce-off": "aiodynkv, coalesce_reads=False",
    "aioboto3": "aioboto3 raw client",
    "batch_writer": "aioboto3 Table.batch_writer",
    "aiodynamo": "aiodynamo (aiohttp)",
    "pykv": "py-key-value-aio",
}

WORKLOAD_TITLES = {
    "get_seq": "`get`, sequential (one task)",
    "get_c64": "`get`, 64 concurrent tasks, random keys",
    "set_seq": "`set`, sequential",
    "get_many": "`get_many` of 1,000 keys",
    "set_many": "`set_many` of 10,000 items",
}
BATCH_WORKLOADS = ("get_many", "set_many")


@functools.cache
def coalesce_default() -> bool | None:
    """`KVConfig`'s default for ``coalesce_reads``, or None when it has no such field."""
    try:
        from aiodynkv import KVConfig
    except ImportError:
        return None
    field = KVConfig.__dataclass_fields__.get("coalesce_reads")
    return None if field is None else bool(field.default)


def other_coalescing() -> str | None:
    """The aiodynkv variant with ``coalesce_reads`` flipped from the default, if it exists."""
    default = coalesce_default()
    if default is None:
        return None
    return "aiodynkv-coalesce-off" if default else "aiodynkv-coalesce-on"


def coalescing_off() -> str:
    """The aiodynkv variant that reads without coalescing."""
    return "aiodynkv-coalesce-off" if coalesce_default() else "aiodynkv"


@dataclasses.dataclass
class Job:
    workload: str
    contender: str
    args: dict[str, Any]
    note: str = ""


def plan(server: str, quick: bool, reps: int) -> list[Job]:
    """What to run on one server. Dynalite gets lighter workloads and fewer contenders."""
    scale = 0.5 if quick else 1.0
    dyn = server == "dynalite"

    def ops(n: int) -> int:
        return max(64, int(n * scale * (0.5 if dyn else 1.0)))

    base = {"reps": reps}
    variants = ["aiodynkv", other] if (other := other_coalescing()) else ["aiodynkv"]
    reads = [*variants, "aioboto3", "aiodynamo"] + ([] if dyn else ["pykv"])
    jobs = [Job("get_seq", c, {**base, "ops": ops(800), "warmup": {"ops": 100}}) for c in reads]
    jobs += [Job("get_c64", c, {**base, "ops": ops(1024), "warmup": {"ops": 128}}) for c in reads]
    if not dyn:
        writers = ["aiodynkv", "aioboto3", "aiodynamo", "pykv"]
        jobs += [
            Job("set_seq", c, {**base, "ops": ops(400), "warmup": {"ops": 50}}) for c in writers
        ]
    many = ["aiodynkv", "aioboto3", "aiodynamo"] + ([] if dyn else ["pykv"])
    for contender in many:
        calls = 1 if contender == "pykv" or dyn else max(1, int(4 * scale))
        jobs.append(
            Job(
                "get_many",
                contender,
                {**base, "calls": calls, "batch": 1000, "warmup": {"batch": 100}},
            )
        )
    writers = ["aiodynkv", "aioboto3", "batch_writer", "aiodynamo"] + ([] if dyn else ["pykv"])
    for contender in writers:
        batch, note = 10_000, ""
        if contender == "pykv":
            # One PutItem per key, in sequence: items/s does not depend on the batch size.
            batch, note = 1_000, "put_many of 1,000 items: one PutItem per key, in sequence"
        elif dyn:
            batch, note = 2_000, "2,000 items on dynalite"
        jobs.append(
            Job(
                "set_many",
                contender,
                {**base, "calls": 1, "batch": batch, "warmup": {"batch": 250}},
                note,
            )
        )
    return jobs


# -- processes ---------------------------------------------------------------------------


class Server:
    """A server process started here; stopped (by its PID) in `stop`."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], port: int) -> None:
        self.name = name
        self.proc = proc
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> str:
        """Stop the process; return what it printed after starting (if piped)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is None:
            return ""
        return self.proc.stdout.read().decode(errors="replace").strip()


def start_stub(lifetime: float) -> Server:
    proc = subprocess.Popen(
        [PYTHON, str(STUB), "--port", "0", "--max-seconds", str(lifetime)],
        stdout=subprocess.PIPE,
    )
    if proc.stdout is None:
        raise SystemExit("no pipe to the stub")
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=20):
            proc.kill()
            raise SystemExit("the stub did not start within 20 s")
    line = proc.stdout.readline().decode().split()
    if len(line) != 2 or line[0] != "READY":
        proc.kill()
        raise SystemExit(f"the stub said {line!r} instead of READY <port>")
    return Server("stub", proc, int(line[1]))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_dynalite(explicit: str | None) -> str | None:
    candidates = [
        explicit,
        os.environ.get("AIODYNKV_DYNALITE"),
        str(ROOT / ".nox" / "_dynalite" / "node_modules" / ".bin" / "dynalite"),
        shutil.which("dynalite"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    return None


def start_dynalite(exe: str) -> Server:
    port = free_port()
    flags = ["--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"]
    proc = subprocess.Popen(
        [exe, "--host", "127.0.0.1", "--port", str(port), *flags], stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return Server("dynalite", proc, port)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    Server("dynalite", proc, port).stop()
    raise SystemExit("dynalite did not start within 30 s")


def dynalite_version(exe: str) -> str:
    package = Path(exe).resolve().parent / "package.json"
    try:
        return str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "?"


def worker_command(
    server: Server, workload: str, contender: str, args: dict[str, Any]
) -> list[str]:
    cmd = [PYTHON, str(WORKER), "--url", server.url, "--contender", contender]
    cmd += ["--workload", workload]
    if server.name == "stub":
        cmd.append("--stub-stats")
    else:
        cmd += ["--server-pid", str(server.proc.pid)]
    for name, value in args.items():
        flag = "--" + name.replace("_", "-")
        cmd += [flag, json.dumps(value) if isinstance(value, dict) else str(value)]
    return cmd


def run_worker(server: Server, workload: str, contender: str, args: dict[str, Any]) -> dict:
    """Run a one-shot worker (seed, open) to completion; its last stdout line is the result."""
    timeout = WORKER_TIMEOUT
    cmd = worker_command(server, workload, contender, args)
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        return {"error": f"exit {done.returncode}: {' | '.join(tail)}"}
    try:
        return dict(json.loads(done.stdout.decode().strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {"error": f"unreadable answer {done.stdout[-120:]!r}"}


class Worker:
    """A serving worker (``--serve``): runs one repetition per ``rep`` command."""

    def __init__(self, cmd: list[str]) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in `stop`)
        self.proc = subprocess.Popen(
            [*cmd, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr
        )

    def read(self, timeout: float) -> dict[str, Any]:
        """The next JSON line, or ``{"error": ...}`` on exit, time-out or garbage."""
        stdout = self.proc.stdout
        if stdout is None:
            return {"error": "no pipe"}
        with selectors.DefaultSelector() as sel:
            sel.register(stdout, selectors.EVENT_READ)
            if not sel.select(timeout=timeout):
                return {"error": f"no answer within {timeout:.0f} s"}
        line = stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            self.stderr.seek(0)
            tail = self.stderr.read().decode(errors="replace").strip().splitlines()[-3:]
            return {"error": f"exit {self.proc.returncode}: {' | '.join(tail)}"}
        try:
            return dict(json.loads(line))
        except ValueError:
            return {"error": f"unreadable answer {line[:120]!r}"}

    def command(self, text: str, timeout: float) -> dict[str, Any]:
        if self.proc.stdin is None or self.proc.poll() is not None:
            return {"error": "worker is gone"}
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()
        return self.read(timeout)

    def stop(self) -> dict[str, Any]:
        final = self.command("stop", 30) if self.proc.poll() is None else {}
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.stderr.close()
        return final


# -- the run -------------------------------------------------------------------------------


class Runner:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.started = time.monotonic()
        self.results: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self.notes: dict[str, dict[tuple[str, str], str]] = {}
        self.seeds: dict[str, list[dict[str, Any]]] = {}
        self.opens: dict[str, dict[str, Any]] = {}
        self.paired: dict[str, dict[str, Any]] = {}
        self.skipped: list[str] = []
        self.load = os.getloadavg()

    def out_of_time(self) -> bool:
        return time.monotonic() - self.started > RUN_BUDGET_SECONDS

    def log(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.1f} s] {message}", flush=True)

    def seed(self, server: Server, keys: int, contenders: list[str]) -> None:
        self.seeds[server.name] = []
        for contender in contenders:
            result = run_worker(server, "seed", contender, {"keys": keys})
            if "error" in result or result.get("check") == 0:
                raise SystemExit(f"seeding {server.name} with {contender} failed: {result}")
            self.log(f"{server.name}: seeded {result['seeded']} keys via {contender}")
            self.seeds[server.name].append({"contender": contender, **result})

    def run_jobs(self, server: Server, jobs: list[Job], keys: int) -> None:
        """Run the jobs workload by workload, interleaving the contenders' repetitions."""
        workloads = list(dict.fromkeys(job.workload for job in jobs))
        for workload in workloads:
            self.run_workload(server, [j for j in jobs if j.workload == workload], keys)

    def run_workload(self, server: Server, jobs: list[Job], keys: int) -> None:
        results = self.results.setdefault(server.name, {})
        notes = self.notes.setdefault(server.name, {})
        live: list[tuple[Job, Worker, dict[str, Any]]] = []
        reps: dict[str, list[dict[str, Any]]] = {}
        try:
            for job in jobs:  # one at a time, so that warm-ups do not overlap
                cmd = worker_command(
                    server, job.workload, job.contender, {"keys": keys, **job.args}
                )
                worker = Worker(cmd)
                head = worker.read(WORKER_TIMEOUT)
                if "error" in head or head.get("skipped"):
                    results[(job.workload, job.contender)] = head
                    worker.stop()
                    continue
                live.append((job, worker, head))
                reps[job.contender] = []
                if job.note:
                    notes[(job.workload, job.contender)] = job.note
            rounds = max((job.args["reps"] for job in jobs), default=0)
            for round_ in range(rounds):
                if self.out_of_time():
                    self.skipped.append(f"{server.name} {jobs[0].workload}: rounds after {round_}")
                    break
                shift = round_ % max(1, len(live))  # rotate the order every round
                for job, worker, _ in live[shift:] + live[:shift]:
                    if job.contender not in reps:
                        continue
                    rep = worker.command("rep", WORKER_TIMEOUT)
                    if "error" in rep:
                        results[(job.workload, job.contender)] = rep
                        del reps[job.contender]
                    else:
                        reps[job.contender].append(rep)
        finally:
            finals = {job.contender: worker.stop() for job, worker, _ in live}
        for job, _, head in live:
            if job.contender not in reps:
                continue
            result = {**head, **summarize(reps[job.contender], job.args["reps"])}
            result["peak_rss_mib"] = finals[job.contender].get("peak_rss_mib")
            results[(job.workload, job.contender)] = result
            self.log(f"{server.name} {job.workload:9} {job.contender:18} {brief(result)}")

    def paired_overhead(self, server: Server, reps: int, quick: bool) -> None:
        """aiodynkv's `get` vs `get_item` on its own client, interleaved in one process."""
        variants = ["aiodynkv", other] if (other := other_coalescing()) else ["aiodynkv"]
        for contender in variants:
            if self.out_of_time():
                self.skipped.append(f"{server.name} paired {contender}: run budget")
                continue
            args = {"keys": 10_000, "reps": reps, "ops": 750 if quick else 1500, "batch": 50}
            result = run_worker(server, "paired", contender, args)
            self.paired[contender] = result
            ratio_ = result.get("median", {}).get("ratio")
            self.log(f"paired {contender:18} aiodynkv / get_item = {fmt(ratio_, 3)}")

    def open_times(self, server: Server, reps: int) -> None:
        """Open-to-first-call, one process per repetition, contenders interleaved."""
        contenders = ["aiodynkv", "aioboto3", "aiodynamo", "pykv"]
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
        for _ in range(reps):
            if self.out_of_time():
                self.skipped.append(f"{server.name} open: some repetitions")
                break
            for contender in contenders:
                runs[contender].append(run_worker(server, "open", contender, {"keys": 1}))
        for contender in contenders:
            good = [r for r in runs[contender] if "error" not in r]
            for r in good:
                r["total_ms"] = r["import_ms"] + r["open_ms"]
            if not good:
                errors = [r["error"] for r in runs[contender]]
                self.opens[contender] = {"error": errors[0] if errors else "not run"}
                continue
            self.opens[contender] = {
                k: statistics.median(r[k] for r in good)
                for k in ("import_ms", "open_ms", "total_ms", "open_cpu_ms", "peak_rss_mib")
            }
            self.opens[contender]["runs"] = len(good)
            self.log(f"open {contender:18} {self.opens[contender]['open_ms']:.1f} ms")


def brief(result: dict[str, Any]) -> str:
    if "error" in result:
        return "ERROR " + result["error"]
    if result.get("skipped"):
        return "skipped"
    m = result["median"]
    return f"{m['throughput']:10.1f}/s  {m['cpu_us']:8.1f} us/op  p99 {m['p99_ms']:.2f} ms"


# -- the report ----------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:  # noqa: PLR0124 (NaN check)
        return "-"
    return f"{value:,.{digits}f}"


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


def median_of(result: dict[str, Any] | None, key: str) -> float | None:
    if not result or "median" not in result:
        return None
    value = result["median"].get(key)
    return None if value is None else float(value)


def result_table(runner: Runner, server: str) -> list[str]:
    results = runner.results.get(server, {})
    notes = runner.notes.get(server, {})
    lines = []
    for workload, title in WORKLOAD_TITLES.items():
        rows = [(c, r) for (w, c), r in results.items() if w == workload]
        if not rows:
            continue
        batch = workload in BATCH_WORKLOADS
        unit = "keys/s" if batch else "ops/s"
        per = "key" if batch else "op"
        reference = results.get((workload, "aioboto3"))
        lines += [
            f"#### {title}",
            "",
            f"| contender | {unit} | x raw | CPU µs/{per} | x raw | p50 ms | p99 ms "
            "| p99 x raw | spread | peak RSS MiB | server busy | stub CPU µs/request |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for contender, result in rows:
            label = LABELS[contender]
            if "error" in result:
                lines.append(f"| {label} | error: {result['error']} |" + " |" * 11)
                continue
            if result.get("skipped"):
                continue
            tp = median_of(result, "throughput")
            cpu = median_of(result, "cpu_us")
            p99 = median_of(result, "p99_ms")
            busy = median_of(result, "server_busy")
            stub_cpu = median_of(result, "server_cpu_us_per_request")
            flags = []
            if result.get("misses"):
                flags.append(f"{result['misses']} misses")
            if result.get("truncated"):
                flags.append("cut short by the time bound")
            note = notes.get((workload, contender))
            if note:
                flags.append(note)
            if flags:
                label += f" ({'; '.join(flags)})"
            tp_ratio = ratio(tp, median_of(reference, "throughput"))
            lines.append(
                f"| {label} | {fmt(tp, 0)} | {fmt(tp_ratio, 2)} "
                f"| {fmt(cpu, 0)} | {fmt(ratio(cpu, median_of(reference, 'cpu_us')), 2)} "
                f"| {fmt(median_of(result, 'p50_ms'), 2)} | {fmt(p99, 2)} "
                f"| {fmt(ratio(p99, median_of(reference, 'p99_ms')), 2)} "
                f"| {fmt(result.get('spread', float('nan')) * 100, 0)} % "
                f"| {fmt(result.get('peak_rss_mib'), 0)} "
                f"| {fmt(None if busy is None else busy * 100, 0)} % | {fmt(stub_cpu, 0)} |"
            )
        lines.append("")
    return lines


def paired_table(runner: Runner) -> list[str]:
    if not runner.paired:
        return []
    lines = [
        "#### aiodynkv's own cost per `get`, paired on one client",
        "",
        "One process, one aiodynkv store: blocks of 50 calls rotate between `kv.get`, the",
        "same client's `get_item` (the raw contender's request) and that request with",
        "`ReturnConsumedCapacity=TOTAL` (which aiodynkv adds), so that all three share the",
        "machine's state at each moment. Medians over the repetitions (the ratios are",
        "medians of per-repetition ratios). This isolates aiodynkv's layer from noise",
        "between processes; the target above is judged on the separate-process figures.",
        "",
        "| config | aiodynkv µs/get | client `get_item` µs | + capacity µs "
        "| aiodynkv / get_item | capacity / get_item |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for contender, result in runner.paired.items():
        if "error" in result or not result.get("median"):
            lines.append(f"| {LABELS[contender]} | error: {result.get('error')} | | | | |")
            continue
        med = result["median"]
        lines.append(
            f"| {LABELS[contender]} | {fmt(med['aiodynkv_us'], 0)} | {fmt(med['client_us'], 0)} "
            f"| {fmt(med['client_capacity_us'], 0)} | {fmt(med['ratio'], 3)} "
            f"| {fmt(med['capacity_ratio'], 3)} |"
        )
    return [*lines, ""]


@dataclasses.dataclass
class Target:
    text: str
    value: float | None
    bound: float
    at_least: bool
    detail: str

    def verdict(self) -> str:
        if self.value is None:
            return "not measured"
        if self.at_least:
            if self.value >= self.bound:
                return "**met**"
            short = self.bound / self.value
            by = f"{(short - 1) * 100:.0f} %" if short < 1.5 else f"a factor of {short:.1f}"
            return f"**missed** by {by} ({fmt(self.value, 2)}x of the {self.bound:g}x needed)"
        if self.value <= self.bound:
            return "**met**"
        over = (self.value / self.bound - 1) * 100
        return f"**missed** by {over:.0f} % ({fmt(self.value, 2)}x vs <= {self.bound:g}x)"


def targets(runner: Runner) -> list[Target]:
    stub = runner.results.get("stub", {})

    def m(workload: str, contender: str, key: str) -> float | None:
        return median_of(stub.get((workload, contender)), key)

    off = coalescing_off()
    out = [
        Target(
            "sequential `get` client CPU per call <= 1.10 x raw aioboto3 `get_item` "
            f"(telemetry as shipped, coalescing off: {LABELS[off]})",
            ratio(m("get_seq", off, "cpu_us"), m("get_seq", "aioboto3", "cpu_us")),
            1.10,
            False,
            f"{fmt(m('get_seq', off, 'cpu_us'), 0)} vs "
            f"{fmt(m('get_seq', 'aioboto3', 'cpu_us'), 0)} µs (separate processes); "
            "paired on one client: "
            f"{fmt(runner.paired.get(off, {}).get('median', {}).get('ratio'), 2)}x",
        )
    ]
    for contender in filter(None, ("aiodynkv", other_coalescing())):
        label = LABELS[contender]
        tp = m("get_c64", contender, "throughput")
        out += [
            Target(
                f"64-concurrent `get` throughput >= 10 x raw aioboto3 ({label})",
                ratio(tp, m("get_c64", "aioboto3", "throughput")),
                10.0,
                True,
                f"{fmt(tp, 0)} vs {fmt(m('get_c64', 'aioboto3', 'throughput'), 0)} ops/s",
            ),
            Target(
                f"64-concurrent `get` throughput >= 3 x aiodynamo ({label})",
                ratio(tp, m("get_c64", "aiodynamo", "throughput")),
                3.0,
                True,
                f"{fmt(tp, 0)} vs {fmt(m('get_c64', 'aiodynamo', 'throughput'), 0)} ops/s",
            ),
            Target(
                f"64-concurrent `get` p99 <= raw aioboto3's ({label})",
                ratio(m("get_c64", contender, "p99_ms"), m("get_c64", "aioboto3", "p99_ms")),
                1.0,
                False,
                f"{fmt(m('get_c64', contender, 'p99_ms'), 2)} vs "
                f"{fmt(m('get_c64', 'aioboto3', 'p99_ms'), 2)} ms",
            ),
        ]
    tp_many = m("set_many", "aiodynkv", "throughput")
    out.append(
        Target(
            "`set_many` of 10,000 >= 3 x aioboto3 `Table.batch_writer`",
            ratio(tp_many, m("set_many", "batch_writer", "throughput")),
            3.0,
            True,
            f"{fmt(tp_many, 0)} vs {fmt(m('set_many', 'batch_writer', 'throughput'), 0)} items/s",
        )
    )
    tp_get = m("get_many", "aiodynkv", "throughput")
    out += [
        Target(
            "`get_many` of 1,000 >= 2 x aiodynamo's batch read",
            ratio(tp_get, m("get_many", "aiodynamo", "throughput")),
            2.0,
            True,
            f"{fmt(tp_get, 0)} vs {fmt(m('get_many', 'aiodynamo', 'throughput'), 0)} keys/s",
        ),
        Target(
            "`get_many` of 1,000 >= 20 x py-key-value-aio's `get_many`",
            ratio(tp_get, m("get_many", "pykv", "throughput")),
            20.0,
            True,
            f"{fmt(tp_get, 0)} vs {fmt(m('get_many', 'pykv', 'throughput'), 0)} keys/s",
        ),
    ]
    mine, raw = runner.opens.get("aiodynkv", {}), runner.opens.get("aioboto3", {})
    out.append(
        Target(
            "open-to-first-call <= 1.1 x raw aioboto3 client creation + first call",
            ratio(mine.get("open_ms"), raw.get("open_ms")),
            1.1,
            False,
            f"{fmt(mine.get('open_ms'), 1)} vs {fmt(raw.get('open_ms'), 1)} ms "
            f"(import + open: {fmt(mine.get('total_ms'), 0)} vs {fmt(raw.get('total_ms'), 0)} ms)",
        )
    )
    return out


def versions() -> list[tuple[str, str]]:
    return [(name, _version(name)) for name in PACKAGES]


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def aiodynkv_source(label: str | None) -> str:
    """Where the benchmarked aiodynkv came from: its directory and git commit, if any."""
    if label:
        return label
    spec = importlib.util.find_spec("aiodynkv")
    if spec is None or spec.origin is None:
        return "not installed"
    where = Path(spec.origin).parent
    git = shutil.which("git")
    if git is None:
        return str(where)
    head = subprocess.run(
        [git, "-C", str(where), "rev-parse", "--short", "HEAD"], capture_output=True, check=False
    )
    if head.returncode != 0:
        return f"{where} (not a git checkout)"
    dirty = subprocess.run(
        [git, "-C", str(where), "status", "--porcelain", "--", "."],
        capture_output=True,
        check=False,
    ).stdout.strip()
    commit = head.stdout.decode().strip()
    return f"git {commit}" + (" with uncommitted changes" if dirty else "") + f" ({where})"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def write_report(runner: Runner, path: Path, dyn: str | None, elapsed: float) -> None:
    o = runner.options
    lines = [
        "# Benchmarks",
        "",
        "<!-- Written by benchmarks/run.py; do not edit by hand: rerun it. -->",
        "",
        "Reproduce with `python -m nox -s bench` (add `-- --quick` for fewer repetitions).",
        f"This run: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{o.reps} repetitions per figure{' (--quick)' if o.quick else ''}, "
        f"{elapsed / 60:.1f} minutes in all.",
        "",
        "## Machine and versions",
        "",
        f"- {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu_model()}, "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- aiodynkv source: {aiodynkv_source(o.aiodynkv_label)}",
        f"- dynalite {dynalite_version(dyn) if dyn else 'not found (its section is skipped)'}",
        f"- load average (1 min) at start / end: {runner.load[0]:.2f} / {os.getloadavg()[0]:.2f}"
        " (anything above ~0 means other processes shared the 2 cores with this run)",
        *(
            [
                "",
                "**This run shared the machine with other work**: the figures are noisier than",
                "on an idle machine (see each row's *spread*; a ratio closer to 1 than the",
                "spread is a tie, and a verdict near its bound can flip between runs).",
            ]
            if max(runner.load[0], os.getloadavg()[0]) > NOISY_LOAD
            else []
        ),
        "",
        "| package | version |",
        "|---|---|",
        *[f"| {name} | {version} |" for name, version in versions()],
        "",
        "No OpenTelemetry SDK is configured and structlog is left unconfigured in the client",
        "processes: aiodynkv runs with its telemetry as shipped (API calls that are no-ops",
        "without an SDK; no log events for successful calls).",
        "",
        "## Targets (one run, on the stub)",
        "",
        "| target | measured | ratio | verdict |",
        "|---|---|--:|---|",
    ]
    lines += [
        f"| {t.text} | {t.detail} | {fmt(t.value, 2)}x | {t.verdict()} |" for t in targets(runner)
    ]
    lines += [
        "",
        f"aiodynkv's default config has `coalesce_reads={coalesce_default()}`; a row labelled",
        "with an explicit `coalesce_reads` runs the store with only that field changed.",
        "",
        "## Results on the stub",
        "",
        *result_table(runner, "stub"),
        *paired_table(runner),
        "#### Open to first call",
        "",
        "Each figure is the median over separate processes (one per repetition), so every",
        "open is the first in its process. *import* is importing the library (for aiodynkv:",
        "`import aiodynkv`); *open → first call* is from creating the session/store to the end",
        "of the first `get`, imports done; *CPU* is the client CPU of that span; *total* is both.",
        "",
        "| contender | import ms | open → first call ms | x raw | CPU ms | total ms | x raw "
        "| peak RSS MiB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    raw = runner.opens.get("aioboto3", {})
    raw_open, raw_total = raw.get("open_ms"), raw.get("total_ms")
    for contender, result in runner.opens.items():
        if "error" in result:
            lines.append(f"| {LABELS[contender]} | error: {result['error']} |" + " |" * 7)
            continue
        lines.append(
            f"| {LABELS[contender]} | {fmt(result['import_ms'], 0)} | {fmt(result['open_ms'], 1)} "
            f"| {fmt(ratio(result['open_ms'], raw_open), 2)} | {fmt(result['open_cpu_ms'], 1)} "
            f"| {fmt(result['total_ms'], 0)} | {fmt(ratio(result['total_ms'], raw_total), 2)} "
            f"| {fmt(result['peak_rss_mib'], 0)} |"
        )
    lines += ["", "## Results on dynalite (a real server, end to end)", ""]
    if "dynalite" in runner.results:
        lines += [
            "Lighter: half the operations per repetition, 5,000 seeded keys, 2,000-item",
            "`set_many`, no `set` workload and no py-key-value-aio (it calls DescribeTimeToLive,",
            "which dynalite lacks). dynalite is a Node.js process doing real work per item: where",
            "its *server busy* nears 100 % (one core), it and not the client set the pace.",
            "",
            *result_table(runner, "dynalite"),
        ]
    else:
        lines += ["Not run: dynalite was not found (`--dynalite PATH` or AIODYNKV_DYNALITE).", ""]
    if runner.skipped:
        lines += ["## Skipped for the time budget", "", *[f"- {s}" for s in runner.skipped], ""]
    analysis = HERE / "analysis.md"
    if analysis.exists():  # the hand-written reading of the misses, kept beside the harness
        lines += ["", *analysis.read_text(encoding="utf-8").splitlines()]
    lines += METHOD.splitlines()
    path.write_text("\n".join(lines).rstrip() + "\n")


METHOD = """
## What each number means

- **ops/s, keys/s**: operations (or keys, for batch calls) completed per second of wall
  time in one repetition; the figure is the median of the repetitions. *x raw* divides by
  the raw aioboto3 row of the same workload (for `set_many` also compare the
  `Table.batch_writer` row, which is what the target names).
- **CPU µs/op, µs/key**: `time.process_time()` of the client process over the repetition,
  divided by the operations (keys). The server runs in another process, so this is the
  client's own cost: the library, the SDK, aiohttp and the event loop.
- **p50, p99 ms**: latency percentiles of single calls within a repetition (one `get`, or
  one whole `get_many`/`set_many` call); median over the repetitions. With one batch call
  per repetition p50 and p99 are the same number.
- **spread**: (max - min) / median of the repetitions' throughput: the run-to-run noise.
  Ratios closer to 1 than the spread are ties.
- **peak RSS**: `ru_maxrss` of the worker process after the workload (imports, client,
  all repetitions). One process per (contender, workload).
- **server busy**: CPU seconds the server process used per wall second during the
  repetitions (100 % = one core). Well under 100 % means the server was not the limit.
- **stub CPU µs/request**: the stub's own CPU per HTTP request it answered (it counts them).
- **Open to first call**: see that table.

## How it runs

- `benchmarks/stub.py`: a stub DynamoDB endpoint on a raw asyncio Protocol (HTTP/1.1
  keep-alive, JSON 1.0, `x-amz-crc32` and `x-amzn-RequestId` on every response), serving
  GetItem, PutItem, DeleteItem, UpdateItem, BatchGetItem, BatchWriteItem, CreateTable,
  DescribeTable, UpdateTimeToLive and DescribeTimeToLive from an in-memory dict.
  **Conditions are treated as always true**; UpdateExpression supports the shapes
  aiodynkv sends (SET with `if_not_exists` and `+`/`-`, REMOVE, ADD, DELETE) on top-level
  attributes; capacity is one unit per item; nothing is ever throttled or unprocessed.
- `benchmarks/contenders.py`: the contenders behind one interface. All read the same
  10,000 items (100-byte string values) of table `bench`, seeded through aiodynkv;
  py-key-value-aio uses its own table `pkv` (its schema is `collection` + `key` with a
  JSON document) holding the same keys and values.
  - *aioboto3 raw client*: `get_item(Key, ConsistentRead=True)`, `put_item`,
    `batch_get_item`/`batch_write_item` chunks (100/25) sent 8 at a time; pool of 64
    connections, the same as aiodynkv's default (botocore's own default is 10).
  - *aioboto3 Table.batch_writer*: the resource layer's buffered writer (bulk writes only).
  - *aiodynamo (aiohttp)*: its `Client` on `AIOHTTP(aiohttp.ClientSession())`; batches
    chunked like the raw client (aiodynamo's batch calls take one request's worth).
  - *py-key-value-aio*: `DynamoDBStore` as shipped (its own aiobotocore client with
    botocore's default pool of 10; `get_many`/`put_many` issue one request per key).
  - *aiodynkv*: `AsyncDynamoKV(table=..., endpoint=...)` with its defaults (consistent
    reads, `ReturnConsumedCapacity=TOTAL`, batch concurrency 8, pool 64).
- `benchmarks/worker.py`: one process per (server, workload, contender): import, open,
  warm up, then the repetitions; prints JSON. `benchmarks/run.py` runs them all and
  writes this file. Sequential workloads run on one task; the concurrent one on 64 tasks
  that each `get` their share of random keys.
- The harness, the stub (and dynalite) run on one 2-core machine: the client process and
  the server each get about one core.
"""


def raw_results(runner: Runner) -> dict[str, Any]:
    return {
        "servers": {
            server: [{"workload": w, "contender": c, **r} for (w, c), r in results.items()]
            for server, results in runner.results.items()
        },
        "open": runner.opens,
        "paired": runner.paired,
        "seeds": runner.seeds,
        "skipped": runner.skipped,
    }


def wait_for_quiet(seconds: float) -> None:
    """Wait (bounded) for other work on the machine to finish: it skews every figure."""
    deadline = time.monotonic() + seconds
    while os.getloadavg()[0] >= QUIET_LOAD and time.monotonic() < deadline:
        time.sleep(5)
    if seconds:
        print(f"load average {os.getloadavg()[0]:.2f} at start", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the benchmarks and rewrite BENCHMARKS.md.")
    parser.add_argument("--quick", action="store_true", help="3 repetitions, half the operations")
    parser.add_argument("--reps", type=int, help="repetitions per figure (default 5, quick 3)")
    parser.add_argument("--dynalite", help="path to the dynalite executable")
    parser.add_argument("--no-dynalite", action="store_true", help="skip the dynalite section")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for the 1-minute load average to fall below 0.5",
    )
    parser.add_argument("--json", type=Path, help="also write every raw figure to this file")
    parser.add_argument("--aiodynkv-label", help="say where aiodynkv came from, in the report")
    options = parser.parse_args()
    options.reps = options.reps or (3 if options.quick else 5)
    wait_for_quiet(options.wait_quiet)
    runner = Runner(options)
    keys = 10_000
    stub = start_stub(RUN_BUDGET_SECONDS + 120)
    try:
        runner.log(f"stub listening on {stub.url} (pid {stub.proc.pid})")
        runner.seed(stub, keys, ["aiodynkv", "pykv"])
        runner.run_jobs(stub, plan("stub", options.quick, options.reps), keys)
        runner.paired_overhead(stub, options.reps, options.quick)
        runner.open_times(stub, options.reps)
    finally:
        runner.log(stub.stop() or "stub stopped")
    dyn = None if options.no_dynalite else find_dynalite(options.dynalite)
    if dyn and not runner.out_of_time():
        server = start_dynalite(dyn)
        try:
            runner.log(f"dynalite listening on {server.url} (pid {server.proc.pid})")
            runner.seed(server, keys // 2, ["aiodynkv"])
            runner.run_jobs(server, plan("dynalite", options.quick, options.reps), keys // 2)
        except SystemExit as exc:  # a failed seed: report the stub figures all the same
            runner.skipped.append(f"dynalite: {exc}")
            runner.log(f"dynalite section abandoned: {exc}")
        finally:
            server.stop()
    elif not options.no_dynalite:
        runner.log("dynalite not found: skipping its section (--dynalite PATH)")
    elapsed = time.monotonic() - runner.started
    write_report(runner, options.output, dyn, elapsed)
    if options.json:
        options.json.write_text(json.dumps(raw_results(runner), indent=1))
    runner.log(f"wrote {options.output}")
    for target in targets(runner):
        print(f"  {target.verdict():>40}  {target.text}")


if __name__ == "__main__":
    main()
