"""Run every benchmark, rewrite BENCHMARKS.md and README's Performance block.

    python -m nox -s bench                 # the reproducible way (pinned contenders)
    python benchmarks/run.py [--quick]     # in an environment that has them installed

Starts the stub (``benchmarks/stub.py``) and, when it can be found, dynalite, each in
its own process on 127.0.0.1; then one worker process per (server, workload, contender)
so that client CPU, peak RSS and import state belong to that pair alone. The workers of
one workload run their repetitions in turns (round-robin, the order rotating every
round), so a target's ratio is the median of per-round ratios: both sides of a ratio
saw the machine at nearly the same moment. Every target is judged on aiodynkv's default
configuration; every missed target is profiled (cProfile) and the top entries printed
beside it. Every process started here is stopped here, by PID. Every loop is bounded
in count and time.

Then the feature scripts (service, tracing, the botocore pairing, the per-component and
per-phase profiles, near cache, sharded counters) run in turn; their Markdown becomes
sections of the report and the figures they write with ``--json`` feed the targets
table: the tracing, botocore and service ratios, and every target's floor (the best
ratio reachable on this stub and machine if aiodynkv's own work cost nothing; see
`FLOORS`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
WORKER = HERE / "worker.py"
STUB = HERE / "stub.py"
README = ROOT / "README.md"
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"
RUN_BUDGET_SECONDS = 30 * 60  # hard stop for the whole run; a full run takes about 15 min
QUIET_LOAD = 1.0
NOISY_LOAD = 1.0
WORKER_TIMEOUT = 150.0  # one worker step: start-up + warm-up, or one repetition
LATENCY_MS = 2.0  # the realistic-latency phase: a same-region round trip

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
    "opentelemetry-sdk",
    "structlog",
]

LABELS = {
    "aiodynkv": "aiodynkv (default config)",
    "aiodynkv-coalesce-off": "aiodynkv, coalesce_reads=False",
    "aiodynkv-botocore": 'aiodynkv, transport="botocore"',
    "aiodynkv-sdk": "aiodynkv + OpenTelemetry SDK",
    "aioboto3": "aioboto3 raw client",
    "batch_writer": "aioboto3 Table.batch_writer",
    "aiodynamo": "aiodynamo (aiohttp)",
    "pykv": "py-key-value-aio",
}

#: What each contender was given: the configuration a competent user would give it.
CONFIGS = {
    "aiodynkv": "`AsyncDynamoKV(table=, endpoint=)` and nothing else: lean transport, "
    "`coalesce_reads=True`, strongly consistent reads, pool of 64, batch concurrency 8, "
    "telemetry on with no OpenTelemetry SDK installed (the API's no-op providers), "
    "structlog unconfigured",
    "aiodynkv-coalesce-off": "the default config with `coalesce_reads=False`",
    "aiodynkv-botocore": 'the default config with `transport="botocore"` (every call '
    "through the aioboto3 client)",
    "aiodynkv-sdk": "the default config plus an OpenTelemetry SDK, as an application "
    "installs it: `TracerProvider` + `BatchSpanProcessor` (an exporter that drops the "
    "spans) and `MeterProvider` + `InMemoryMetricReader`, passed as "
    "`tracer_provider=`/`meter_provider=`",
    "aioboto3": "`aioboto3.Session().client('dynamodb', config=AioConfig("
    "max_pool_connections=64))`; `get_item(..., ConsistentRead=True)`, `put_item`; "
    "batches chunked 100/25 and sent 8 at a time with unprocessed-key retry",
    "batch_writer": "aioboto3's resource `Table.batch_writer()` on the same pool of 64 "
    "(bulk writes only)",
    "aiodynamo": "`Client(AIOHTTP(ClientSession(connector=TCPConnector(limit=100))), "
    "StaticCredentials, region, endpoint=, numeric_type=float)`: aiohttp's default pool "
    "of 100 (more than the others' 64), its cheapest number type, default throttling "
    "retries; `consistent_read=True`; batches chunked 100/25, 8 at a time",
    "pykv": "`DynamoDBStore(client=<aiobotocore client with max_pool_connections=64>, "
    "table_name=, default_collection=)`: the same pool as the raw client; its own table "
    "schema; its reads are eventually consistent (it sends no ConsistentRead), "
    "`get_many`/`put_many` send one request per key",
}

WORKLOAD_TITLES = {
    "get_seq": "`get`, sequential (one task)",
    "set_seq": "`set`, sequential (one task)",
    "get_c64": "`get`, 64 concurrent tasks, uniform random keys",
    "get_many": "`get_many` of 1,000 keys",
    "set_many": "`set_many` of 10,000 items",
    "get_lat64": "`get`, 64 concurrent tasks, server answers after 2 ms",
    "get_lat256": "`get`, 256 concurrent tasks, server answers after 2 ms",
    "get_hot256": "`get`, 256 concurrent tasks, 2 ms, Zipfian hot keys (θ = 0.99)",
    "set_lat64": "`set`, 64 concurrent tasks, server answers after 2 ms",
}
BATCH_WORKLOADS = ("get_many", "set_many")
LATENCY_WORKLOADS = ("get_lat64", "get_lat256", "get_hot256", "set_lat64")
SHORT = {
    "get_lat64": "`get`, 64 tasks",
    "get_lat256": "`get`, 256 tasks",
    "get_hot256": "`get`, 256 tasks, hot keys",
    "set_lat64": "`set`, 64 tasks",
}


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

    def job(workload: str, contender: str, reps_: int, **args: Any) -> Job:
        return Job(workload, contender, {"reps": reps_, **args})

    more = reps + 4  # the cheap figures whose ratios are targets get more rounds
    jobs: list[Job] = []
    if dyn:
        readers = ["aiodynkv", "aiodynkv-botocore", "aioboto3", "aiodynamo"]
        jobs += [job("get_seq", c, reps, ops=ops(800), warmup={"ops": 100}) for c in readers]
        jobs += [
            job("get_c64", c, reps, ops=ops(2048), warmup={"ops": 256})
            for c in ["aiodynkv", "aiodynkv-coalesce-off", "aioboto3", "aiodynamo"]
        ]
        many = ["aiodynkv", "aioboto3", "aiodynamo"]
        jobs += [job("get_many", c, reps, calls=1, batch=1000, warmup={"batch": 100}) for c in many]
        jobs += [
            Job(
                "set_many",
                c,
                {"reps": reps, "calls": 1, "batch": 2000, "warmup": {"batch": 250}},
                "2,000 items on dynalite",
            )
            for c in [*many[:2], "batch_writer", "aiodynamo"]
        ]
        return jobs
    seq = ["aiodynkv", "aiodynkv-botocore", "aiodynkv-sdk", "aioboto3", "aiodynamo", "pykv"]
    jobs += [job("get_seq", c, more, ops=ops(600), warmup={"ops": 150}) for c in seq]
    jobs += [job("set_seq", c, more, ops=ops(400), warmup={"ops": 100}) for c in seq]
    c64 = ["aiodynkv", "aiodynkv-coalesce-off", "aiodynkv-botocore", "aioboto3", "aiodynamo"]
    jobs += [job("get_c64", c, reps, ops=ops(2048), warmup={"ops": 256}) for c in [*c64, "pykv"]]
    # A repetition lasts long enough (>= ~0.2 s on the fast clients) that a scheduler
    # hiccup cannot swing it; py-key-value-aio, one GetItem per key, stays at one call.
    calls = max(1, int(24 * scale))
    for c in ["aiodynkv", "aioboto3", "aiodynamo", "pykv"]:
        jobs.append(
            job(
                "get_many",
                c,
                more,
                calls=1 if c == "pykv" else calls,
                batch=1000,
                warmup={"batch": 100},
            )
        )
    for c in ["aiodynkv", "aioboto3", "batch_writer", "aiodynamo", "pykv"]:
        if c == "pykv":  # one PutItem per key, in sequence: items/s does not depend on size
            note = "put_many of 1,000 items: one PutItem per key, in sequence"
            jobs.append(
                Job(
                    "set_many",
                    c,
                    {"reps": more, "calls": 1, "batch": 1000, "warmup": {"batch": 250}},
                    note,
                )
            )
        else:
            jobs.append(job("set_many", c, more, calls=2, batch=10_000, warmup={"batch": 500}))
    # The realistic-latency phase (the stub answers after LATENCY_MS).
    lat = ["aiodynkv", "aiodynkv-coalesce-off", "aioboto3", "aiodynamo", "pykv"]
    for workload in ("get_lat64", "get_lat256"):
        jobs += [job(workload, c, reps, ops=ops(2048), warmup={"ops": 256}) for c in lat]
    jobs += [
        job("get_hot256", c, reps, ops=ops(2048), warmup={"ops": 256})
        for c in ["aiodynkv", "aiodynkv-coalesce-off", "aioboto3", "aiodynamo"]
    ]
    jobs += [
        job("set_lat64", c, reps, ops=ops(1024), warmup={"ops": 128})
        for c in ["aiodynkv", "aioboto3", "aiodynamo", "pykv"]
    ]
    return jobs


def configure_stub(server: Server, latency_ms: float) -> None:
    """Set how long the stub holds every answer (``BenchStub.Configure``)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        body = json.dumps({"latency_ms": latency_ms}).encode()
        conn.request("POST", "/", body=body, headers={"X-Amz-Target": "BenchStub.Configure"})
        conn.getresponse().read()
    finally:
        conn.close()


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


#: The sides most targets pair: run back to back in every round, whichever goes first
#: alternating, so that a slow spell of the machine falls on both or on neither.
PAIR = ("aiodynkv", "aiodynamo")


Live = tuple[Job, Worker, dict[str, Any]]  # a job, its serving worker, its first answer


def round_order(live: list[Live], round_: int) -> list[Live]:
    """One round's order: the pair first (its order alternating), then the rest rotated."""
    pair = [entry for entry in live if entry[0].contender in PAIR]
    rest = [entry for entry in live if entry[0].contender not in PAIR]
    if round_ % 2:
        pair.reverse()
    shift = round_ % max(1, len(rest))
    return pair + rest[shift:] + rest[:shift]


class Runner:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.started = time.monotonic()
        self.results: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self.notes: dict[str, dict[tuple[str, str], str]] = {}
        self.args: dict[tuple[str, str], dict[str, Any]] = {}
        self.seeds: dict[str, list[dict[str, Any]]] = {}
        self.opens: dict[str, dict[str, Any]] = {}
        self.open_runs: dict[str, list[dict[str, Any]]] = {}
        self.paired: dict[str, dict[str, Any]] = {}
        self.profiles: dict[str, list[dict[str, Any]]] = {}
        #: The feature scripts' figures (their ``--json``), by section key.
        self.features: dict[str, dict[str, Any]] = {}
        self.skipped: list[str] = []
        self.load = os.getloadavg()
        self.source = aiodynkv_source(options.aiodynkv_label)
        self.tree = package_tree()
        self.loads: list[tuple[str, float]] = [("start", self.load[0])]

    def out_of_time(self) -> bool:
        return time.monotonic() - self.started > RUN_BUDGET_SECONDS

    def log(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.1f} s] {message}", flush=True)

    def sample_load(self, what: str) -> None:
        self.loads.append((what, os.getloadavg()[0]))

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
        latency = 0.0
        try:
            for workload in workloads:
                wanted = LATENCY_MS if workload in LATENCY_WORKLOADS else 0.0
                if server.name == "stub" and wanted != latency:
                    configure_stub(server, wanted)
                    latency = wanted
                    self.log(f"stub now answers after {wanted:g} ms")
                self.sample_load(f"{server.name} {workload}")
                self.run_workload(server, [j for j in jobs if j.workload == workload], keys)
        finally:
            if latency:
                configure_stub(server, 0.0)

    def run_workload(self, server: Server, jobs: list[Job], keys: int) -> None:
        results = self.results.setdefault(server.name, {})
        notes = self.notes.setdefault(server.name, {})
        live: list[Live] = []
        reps: dict[str, list[dict[str, Any]]] = {}
        try:
            for job in jobs:  # one at a time, so that warm-ups do not overlap
                args = {"keys": keys, **job.args}
                self.args[(job.workload, job.contender)] = args
                worker = Worker(worker_command(server, job.workload, job.contender, args))
                head = worker.read(WORKER_TIMEOUT)
                if "error" in head or head.get("skipped"):
                    results[(job.workload, job.contender)] = head
                    worker.stop()
                    self.log(f"{server.name} {job.workload:10} {job.contender:21} {brief(head)}")
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
                for job, worker, _ in round_order(live, round_):
                    if job.contender not in reps:
                        continue
                    rep = worker.command("rep", WORKER_TIMEOUT)
                    if "error" in rep:
                        results[(job.workload, job.contender)] = rep
                        del reps[job.contender]
                        self.log(f"{server.name} {job.workload:10} {job.contender:21} {brief(rep)}")
                    else:
                        rep["round"] = round_
                        reps[job.contender].append(rep)
        finally:
            finals = {job.contender: worker.stop() for job, worker, _ in live}
        for job, _, head in live:
            if job.contender not in reps:
                continue
            result = {**head, **summarize(reps[job.contender], job.args["reps"])}
            result["peak_rss_mib"] = finals[job.contender].get("peak_rss_mib")
            results[(job.workload, job.contender)] = result
            self.log(f"{server.name} {job.workload:10} {job.contender:21} {brief(result)}")

    def paired_overhead(self, server: Server, reps: int, quick: bool) -> None:
        """aiodynkv vs its own client and aiodynamo, interleaved in one process."""
        for name, contender, op in PAIRED:
            if self.out_of_time():
                self.skipped.append(f"{server.name} paired {name}: run budget")
                continue
            args = {
                "keys": 10_000,
                "reps": reps + 2,
                "ops": 900 if quick else 1800,
                "batch": 50,
                "op": op,
            }
            result = run_worker(server, "paired", contender, args)
            self.paired[name] = result
            med = result.get("median", {})
            self.log(
                f"paired {name:22} vs client {fmt(med.get('vs_client'), 3)}  "
                f"vs aiodynamo {fmt(med.get('vs_aiodynamo'), 3)}"
            )

    def open_times(self, server: Server, reps: int) -> None:
        """Open-to-first-call, one process per repetition, contenders interleaved."""
        contenders = ["aiodynkv", "aioboto3", "aiodynamo", "pykv"]
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
        self.sample_load("open")
        for round_ in range(reps):
            if self.out_of_time():
                self.skipped.append(f"{server.name} open: some repetitions")
                break
            shift = round_ % len(contenders)
            for contender in contenders[shift:] + contenders[:shift]:
                runs[contender].append(run_worker(server, "open", contender, {"keys": 1}))
        self.open_runs = runs
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

    def profile_misses(self, server: Server) -> None:
        """cProfile each missed target's workload, for aiodynkv and the contender it lost to."""
        for target in all_targets(self):
            if target.early_miss() is not True or not target.profile:
                continue
            workload, contenders = target.profile
            runs = []
            for contender in contenders:
                if self.out_of_time():
                    self.skipped.append(f"profile of {target.key}: run budget")
                    break
                args = dict(self.args.get((workload, contender), {"keys": 10_000, "ops": 600}))
                args.pop("warmup", None)
                args.pop("reps", None)
                args |= {"target": workload, "top": 14 if contender.startswith("aiodynkv") else 8}
                if workload in LATENCY_WORKLOADS:
                    configure_stub(server, LATENCY_MS)
                try:
                    runs.append(run_worker(server, "profile", contender, args))
                finally:
                    if workload in LATENCY_WORKLOADS:
                        configure_stub(server, 0.0)
            self.profiles[target.key] = runs
            self.log(f"profiled the miss {target.key}: {', '.join(contenders)}")


#: The in-process paired measurements: (name, aiodynkv variant, call).
PAIRED = [
    ("get, default config", "aiodynkv", "get"),
    ("set, default config", "aiodynkv", "set"),
    ('get, transport="botocore"', "aiodynkv-botocore", "get"),
]


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


def round_ratio(
    runner: Runner, workload: str, mine: str, other: str, key: str, server: str = "stub"
) -> float | None:
    """Median over the rounds of mine/other, each round's pair measured back to back."""
    results = runner.results.get(server, {})
    a = {r["round"]: r.get(key) for r in results.get((workload, mine), {}).get("reps", [])}
    b = {r["round"]: r.get(key) for r in results.get((workload, other), {}).get("reps", [])}
    ratios = [a[k] / b[k] for k in a.keys() & b.keys() if a[k] and b[k]]
    return statistics.median(ratios) if ratios else None


COLUMNS = (
    "| contender | {unit} | x raw | CPU µs/{per} | x raw | p50 ms | p99 ms | spread "
    "| requests /1k {per}s | RCU /1k {per}s | WCU /1k {per}s | server busy | peak RSS MiB |"
)


def result_table(runner: Runner, server: str) -> list[str]:
    results = runner.results.get(server, {})
    notes = runner.notes.get(server, {})
    lines = []
    for workload, title in WORKLOAD_TITLES.items():
        rows = [(c, r) for (w, c), r in results.items() if w == workload]
        if not rows:
            continue
        batch = workload in BATCH_WORKLOADS
        unit, per = ("keys/s", "key") if batch else ("ops/s", "op")
        reference = results.get((workload, "aioboto3"))
        lines += [
            f"#### {title}",
            "",
            COLUMNS.format(unit=unit, per=per),
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
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
            busy = median_of(result, "server_busy")
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
            lines.append(
                f"| {label} | {fmt(tp, 0)} "
                f"| {fmt(ratio(tp, median_of(reference, 'throughput')), 2)} "
                f"| {fmt(cpu, 0)} | {fmt(ratio(cpu, median_of(reference, 'cpu_us')), 2)} "
                f"| {fmt(median_of(result, 'p50_ms'), 2)} | {fmt(median_of(result, 'p99_ms'), 2)} "
                f"| {fmt(result.get('spread', float('nan')) * 100, 0)} % "
                f"| {fmt(median_of(result, 'requests_per_1k'), 0)} "
                f"| {fmt(median_of(result, 'rcu_per_1k'), 0)} "
                f"| {fmt(median_of(result, 'wcu_per_1k'), 0)} "
                f"| {fmt(None if busy is None else busy * 100, 0)} % "
                f"| {fmt(result.get('peak_rss_mib'), 0)} |"
            )
        lines.append("")
    return lines


def paired_table(runner: Runner) -> list[str]:
    if not runner.paired:
        return []
    lines = [
        "#### In one process: aiodynkv, its own aiobotocore client and aiodynamo, interleaved",
        "",
        "One process holds an aiodynkv store and an aiodynamo client; blocks of 50 sequential",
        "calls rotate between `kv.get`/`kv.set`, the same request sent through the store's own",
        "aiobotocore client (what the raw aioboto3 contender sends) and aiodynamo, so all",
        "three share the machine's state at each moment. Medians of per-repetition figures.",
        "A cross-check of the separate-process ratios in the targets table.",
        "",
        "| call, aiodynkv config | aiodynkv µs | aiobotocore client µs | aiodynamo µs "
        "| aiodynkv / client | aiodynkv / aiodynamo |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name, result in runner.paired.items():
        if "error" in result or not result.get("median"):
            lines.append(f"| {name} | error: {result.get('error')} | | | | |")
            continue
        med = result["median"]
        lines.append(
            f"| {name} | {fmt(med['aiodynkv_us'], 0)} | {fmt(med['client_us'], 0)} "
            f"| {fmt(med['aiodynamo_us'], 0)} | {fmt(med['vs_client'], 3)} "
            f"| {fmt(med['vs_aiodynamo'], 3)} |"
        )
    return [*lines, ""]


_AT_FLOOR = "the code is at its floor (past it by this run's noise)"


def times(value: float | None) -> str:
    """A ratio as ``1.23x``, or ``-``."""
    return "-" if value is None else f"{fmt(value, 2)}x"


@dataclasses.dataclass
class Target:
    key: str
    text: str
    value: float | None  # the judged ratio: median of per-round ratios
    bound: float
    at_least: bool
    detail: str
    aim: float | None = None
    profile: tuple[str, list[str]] | None = None  # (workload, contenders) to profile a miss
    #: The best ratio reachable on this stub and machine if aiodynkv's own work cost
    #: nothing (see FLOORS), from the same run.
    floor: float | None = None
    floor_note: str = ""  # said instead of, or beside, the floor
    also: bool | None = None  # a second condition of the target (None: none)
    also_text: str = ""  # what the second condition is, when it fails
    section: str = ""  # the BENCHMARKS.md section with this target's profile
    early: float | None = None  # a separate-process ratio known before `value` (profiles)

    @property
    def threshold(self) -> str:
        sign = ">=" if self.at_least else "<="
        aim = f" (aim {self.aim:g}x)" if self.aim else ""
        return f"{sign} {self.bound:g}x{aim}"

    def _meets(self, value: float) -> bool:
        return value >= self.bound if self.at_least else value <= self.bound

    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self._meets(self.value) and self.also is not False

    def early_miss(self) -> bool | None:
        """Missed, judged on `value`, or on `early` while `value` is not known yet."""
        value = self.value if self.value is not None else self.early
        return None if value is None else not self._meets(value)

    def verdict(self) -> str:
        met = self.met()
        if met is None:
            return "**not measured** (an error: see its result table)"
        if met:
            if self.aim and self.value is not None and self.value < self.aim:
                return f"**met** (aim of {self.aim:g}x not reached)"
            return "**met**" + (f", aim of {self.aim:g}x reached" if self.aim else "")
        assert self.value is not None  # noqa: S101 (met() is not None)
        if self._meets(self.value):
            return f"**missed**: {self.also_text}"
        short = self.bound / self.value if self.at_least else self.value / self.bound
        percent = (short - 1) * 100
        return f"**missed** by {percent:.{1 if percent < 1 else 0}f} %"

    def floor_cell(self) -> str:
        if self.floor is None:
            return self.floor_note or "-"
        return f"{fmt(self.floor, 2)}x" + (f" ({self.floor_note})" if self.floor_note else "")

    def distance(self) -> str:
        """How far the code is from its floor, and whether the floor allows the target."""
        if self.floor is None or self.value is None:
            return "no floor derived" + (f" ({self.floor_note})" if self.floor_note else "")
        if not self._meets(self.floor):
            reach = "the floor itself misses the target: out of reach on this stub and machine"
        else:
            reach = "the floor allows the target"
        if self.at_least:
            gap = (1 - self.value / self.floor) * 100
            where = f"the code is {gap:.0f} % below its floor" if gap > 0 else _AT_FLOOR
        else:
            gap = (self.value / self.floor - 1) * 100
            where = f"the code is {gap:.0f} % above its floor" if gap > 0 else _AT_FLOOR
        return f"{where}; {reach}"


#: Section titles of the feature scripts' output (their anchors link the profiles).
SERVICE_TITLE = "## A service: FastAPI + uvicorn per client, 64 connections, 2 ms stub"
TRACING_TITLE = "## What tracing costs, paired in one process"
BOTOCORE_TITLE = '## `transport="botocore"` vs the raw aioboto3 client, paired in one process'
SEQ_TITLE = "## Where a sequential `get`/`set` spends its CPU: aiodynkv and aiodynamo, by component"
BATCH_TITLE = "## Where a batch spends its time: `get_many` and `set_many` per key, by phase"

#: How each floor is computed, by the kind of target (printed under the targets table).
FLOORS = {
    "sequential": "sequential `get`/`set` CPU: from the side-by-side profile of aiodynkv and "
    "aiodynamo in one process (`profile_tracing.py`), the CPU per call of the components both "
    "pay on the same library code (aiohttp/yarl/multidict, asyncio, the socket and selector "
    "calls) in aiodynkv's column, over aiodynamo's CPU per call: the ratio if everything of "
    "aiodynkv's own (request build, validation, signing, JSON, decode, telemetry) cost nothing",
    "batch": "batches: from `profile_batch.py`'s paired rounds, aiodynamo's wall time per key "
    "over aiodynkv's least wall time per key, max(C, S + (B + D) / n, D + (B + S) / n): C its "
    "shared client CPU per key (its CPU less its own phases: key validation, size accounting, "
    "versions and tokens, the per-key loop, telemetry), S the stub's CPU per key for its "
    "requests (served on the other core), B and D its build (items, request, signing) "
    "and decode per key, n the requests per call (keys / 100 for reads, / 25 for writes): the "
    "stub cannot serve the first request before it is built, nor the client decode the "
    "last reply before it is served, nor any reply before the first is served (two free "
    "cores; beside it, the floor where the client and the stub share one: wall >= C + S)",
    "tracing": "tracing: from `tracing.py`'s paired rounds, the untraced call followed by the "
    "SDK's own work for the telemetry a traced call promises (the call's span and attributes, "
    "one attempt span, one histogram point, made directly on the same providers), over the "
    "untraced call",
    "botocore": "the botocore transport: from `tracing.py --botocore`'s paired rounds, the raw "
    "client's `get_item` followed by what aiodynkv must add to it (key validation and "
    "namespacing, the request dict, the call's telemetry with no SDK, the expiry check and "
    "value decode, with aiodynkv's own functions), over the raw client alone; the raw "
    "client lets botocore build its User-Agent for each request, where aiodynkv's clients "
    "send one made once, so the transport can go below this floor",
    "service": "the service, traced/untraced: from `service.py`'s paired rounds, the req/s "
    "of a fifth app, the untraced store with the SDK's own work for the same telemetry made "
    "around each real call and backend request (the call's span with its links and "
    "attributes, one attempt span per backend request, the histogram points, on the traced "
    "app's SDK setup), over the untraced app's req/s in the same round",
    "p99": "the service p99: no floor is derived; the cell shows the lowest aiodynkv p99 / "
    "aiodynamo p99 among the coalescing settings of the trade-off table that keep the p50 "
    "lead (100 % GET, uniform keys only)",
}


def anchor(title: str) -> str:
    """The GitHub anchor of a Markdown heading."""
    return "#" + re.sub(r"[^\w\- ]", "", title.lstrip("#").strip().lower()).replace(" ", "-")


def _feature(runner: Runner, name: str, *path: str) -> Any:
    """A figure of a feature script's JSON, or None."""
    value: Any = runner.features.get(name)
    for step in path:
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def _traced(runner: Runner, name: str, what: str, side: str, base: str) -> dict[str, Any]:
    """A paired row of tracing.py's JSON (`name` "tracing" or "botocore")."""
    for row in _feature(runner, name, "results") or []:
        if row.get("what") == what and row.get("side") == side and row.get("base") == base:
            return dict(row)
    return {}


def targets(runner: Runner) -> list[Target]:
    """The targets of this round, each judged on a paired ratio of this run, with its floor."""
    stub = runner.results.get("stub", {})

    def m(workload: str, contender: str, key: str) -> float | None:
        return median_of(stub.get((workload, contender)), key)

    def paired(name: str, key: str) -> str:
        value = runner.paired.get(name, {}).get("median", {}).get(key)
        return f"; in one process {fmt(value, 2)}x" if value is not None else ""

    goals: list[Target] = []
    for workload, what in (("get_seq", "get"), ("set_seq", "set")):
        floor = _feature(runner, "profile_seq", "floors", what) or {}
        goals.append(
            Target(
                f"{what}_cpu",
                f"sequential `{what}`, client CPU per call vs aiodynamo",
                round_ratio(runner, workload, "aiodynkv", "aiodynamo", "cpu_us"),
                0.90,
                False,
                f"{fmt(m(workload, 'aiodynkv', 'cpu_us'), 0)} vs "
                f"{fmt(m(workload, 'aiodynamo', 'cpu_us'), 0)} µs"
                + paired(f"{what}, default config", "vs_aiodynamo"),
                profile=(workload, ["aiodynkv", "aiodynamo"]),
                floor=floor.get("floor"),
                floor_note="shared components "
                f"{fmt(floor.get('aiodynkv_shared_us'), 0)} of aiodynamo's "
                f"{fmt(floor.get('aiodynamo_us'), 0)} µs"
                if floor
                else "",
                section=SEQ_TITLE,
            )
        )
    for workload, text, key in (
        ("get_many", "`get_many` of 1,000, keys/s vs aiodynamo", "get_many"),
        ("set_many", "`set_many` of 10,000, keys/s vs aiodynamo", "set_many_aiodynamo"),
    ):
        batch = _feature(runner, "batch", workload) or {}
        goals.append(
            Target(
                key,
                text,
                round_ratio(runner, workload, "aiodynkv", "aiodynamo", "throughput"),
                1.5,
                True,
                f"{fmt(m(workload, 'aiodynkv', 'throughput'), 0)} vs "
                f"{fmt(m(workload, 'aiodynamo', 'throughput'), 0)} keys/s"
                + (f"; in one process {fmt(batch.get('ratio'), 2)}x" if batch else ""),
                profile=(workload, ["aiodynkv", "aiodynamo"]),
                floor=batch.get("floor"),
                floor_note=f"{fmt(batch.get('floor_one_core'), 2)}x on one shared core"
                if batch.get("floor_one_core")
                else "",
                section=BATCH_TITLE,
            )
        )
    for what in ("get", "set"):
        row = _traced(runner, "tracing", what, "traced", "untraced")
        floor = _traced(runner, "tracing", what, "floor", "untraced")
        goals.append(
            Target(
                f"tracing_{what}",
                f"`{what}` CPU per call, OpenTelemetry SDK configured vs none",
                row.get("ratio"),
                1.20,
                False,
                f"{fmt(row.get('side_us'), 0)} vs {fmt(row.get('base_us'), 0)} µs, in one process"
                if row
                else "not measured",
                floor=floor.get("ratio"),
                section=SEQ_TITLE,
            )
        )
    row = _traced(runner, "botocore", "get", "botocore", "raw")
    floor = _traced(runner, "botocore", "get", "floor", "raw")
    apart = round_ratio(runner, "get_seq", "aiodynkv-botocore", "aioboto3", "cpu_us")
    goals.append(
        Target(
            "botocore_get",
            '`transport="botocore"`, `get` CPU vs raw aioboto3 `get_item`',
            row.get("ratio"),
            1.10,
            False,
            f"{fmt(row.get('side_us'), 0)} vs {fmt(row.get('base_us'), 0)} µs in one process; "
            f"separate processes {fmt(apart, 2)}x",
            profile=("get_seq", ["aiodynkv-botocore", "aioboto3"]),
            floor=floor.get("ratio"),
            section=BOTOCORE_TITLE,
            early=apart,
        )
    )
    workloads = _feature(runner, "service", "summary") or {}
    titles = {
        "get_uniform": "100 % GET, uniform keys",
        "get_hot50": "100 % GET, 50 hot keys",
        "mixed_90_10": "90 % GET / 10 % PUT",
    }
    for workload, title in titles.items():
        summary = workloads.get(workload) or {}
        rows = summary.get("rows") or {}
        goals.append(
            Target(
                f"service_traced_{workload}",
                f"service, {title}: traced / untraced req/s",
                summary.get("traced_rps"),
                0.90,
                True,
                f"{fmt((rows.get('aiodynkv-sdk') or {}).get('rps'), 0)} vs "
                f"{fmt((rows.get('aiodynkv') or {}).get('rps'), 0)} req/s"
                if rows
                else "not measured",
                floor=summary.get("traced_floor"),
                section=SERVICE_TITLE,
            )
        )
    tradeoff = (_feature(runner, "service", "tradeoff", "get_uniform") or {}).get("rows") or {}
    labels = _feature(runner, "service", "labels") or {}
    dynamo = tradeoff.get("aiodynamo") or {}
    best: tuple[float, str] | None = None
    for name, row in tradeoff.items():
        if name == "aiodynamo" or not dynamo.get("p99_ms") or not dynamo.get("p50_ms"):
            continue
        if row["p50_ms"] < dynamo["p50_ms"]:
            candidate = (row["p99_ms"] / dynamo["p99_ms"], name)
            best = candidate if best is None or candidate < best else best
    for workload, title in titles.items():
        summary = workloads.get(workload) or {}
        rows = summary.get("rows") or {}
        p50 = summary.get("p50_vs_aiodynamo")
        mine, theirs = rows.get("aiodynkv") or {}, rows.get("aiodynamo") or {}
        goals.append(
            Target(
                f"service_p99_{workload}",
                f"service, {title}: aiodynkv p99 vs aiodynamo's, p50 lead kept",
                summary.get("p99_vs_aiodynamo"),
                1.0,
                False,
                f"p99 {fmt(mine.get('p99_ms'), 1)} vs {fmt(theirs.get('p99_ms'), 1)} ms; "
                f"p50 {fmt(mine.get('p50_ms'), 1)} vs {fmt(theirs.get('p50_ms'), 1)} ms "
                f"({fmt(p50, 2)}x)"
                if rows
                else "not measured",
                floor_note=(
                    f"best bound tried: {fmt(best[0], 2)}x, {labels.get(best[1], best[1])}"
                    if best and workload == "get_uniform"
                    else ""
                ),
                also=None if p50 is None else p50 < 1.0,
                also_text=f"the p50 lead is lost ({fmt(p50, 2)}x aiodynamo's p50)",
                section=SERVICE_TITLE,
            )
        )
    return goals


def earlier_targets(runner: Runner) -> list[Target]:
    """Targets of earlier rounds, still judged: concurrency, bulk writes, opening."""
    stub = runner.results.get("stub", {})

    def m(workload: str, contender: str, key: str) -> float | None:
        return median_of(stub.get((workload, contender)), key)

    def tput(workload: str, other: str, bound: float, text: str, key: str, unit: str) -> Target:
        return Target(
            key,
            text,
            round_ratio(runner, workload, "aiodynkv", other, "throughput"),
            bound,
            True,
            f"{fmt(m(workload, 'aiodynkv', 'throughput'), 0)} vs "
            f"{fmt(m(workload, other, 'throughput'), 0)} {unit}",
            profile=(workload, ["aiodynkv", other]),
        )

    opens = [
        a["open_ms"] / b["open_ms"]
        for a, b in zip(
            runner.open_runs.get("aiodynkv", []),
            runner.open_runs.get("aioboto3", []),
            strict=False,
        )
        if "error" not in a and "error" not in b
    ]
    mine, raw = runner.opens.get("aiodynkv", {}), runner.opens.get("aioboto3", {})
    return [
        tput(
            "get_c64",
            "aiodynamo",
            5.0,
            "64-concurrent `get`, ops/s vs aiodynamo",
            "get_c64",
            "ops/s",
        ),
        tput(
            "set_many",
            "aioboto3",
            1.0,
            "`set_many` of 10,000, keys/s vs the raw aioboto3 client",
            "set_many_raw",
            "keys/s",
        ),
        tput(
            "set_many",
            "batch_writer",
            1.0,
            "`set_many` of 10,000, keys/s vs aioboto3 `Table.batch_writer`",
            "set_many_batch_writer",
            "keys/s",
        ),
        Target(
            "open",
            "open to first call vs raw aioboto3",
            statistics.median(opens) if opens else None,
            1.0,
            False,
            f"{fmt(mine.get('open_ms'), 1)} vs {fmt(raw.get('open_ms'), 1)} ms",
            profile=("open", ["aiodynkv", "aioboto3"]),
        ),
    ]


def all_targets(runner: Runner) -> list[Target]:
    return [*targets(runner), *earlier_targets(runner)]


def target_tables(runner: Runner) -> list[str]:
    """The targets with their floors, a sentence per miss, then the earlier targets."""
    goals = targets(runner)
    lines = [
        "| target | threshold | measured | ratio | floor | verdict |",
        "|---|--:|---|--:|---|---|",
        *[
            f"| {t.text} | {t.threshold} | {t.detail} | {times(t.value)} | {t.floor_cell()} "
            f"| {t.verdict()} |"
            for t in goals
        ],
        "",
        "*floor*: the best ratio reachable on this stub and machine if aiodynkv's own work "
        "cost nothing, computed from this run:",
        "",
        *[f"- {text}." for text in FLOORS.values()],
        "",
    ]
    missed = [t for t in goals if t.met() is False]
    if missed:
        lines += ["Missed targets, each with its floor and its profile:", ""]
        for t in missed:
            title = t.section.lstrip("# ")
            link = f" Profile: [{title}]({anchor(t.section)})." if t.section else ""
            floor = f"floor {t.floor_cell()}: " if t.floor is not None else ""
            lines.append(
                f"- **{t.text}**: {times(t.value)}, {t.threshold} wanted "
                f"({t.verdict().replace('**', '')}); {floor}{t.distance()}.{link}"
            )
        lines.append("")
    unmeasured = [t.text for t in goals if t.met() is None]
    if unmeasured:
        lines += [f"Not measured in this run: {'; '.join(unmeasured)}.", ""]
    lines += [
        "### Earlier targets",
        "",
        "| target | threshold | measured | ratio | verdict |",
        "|---|--:|---|--:|---|",
        *[
            f"| {t.text} | {t.threshold} | {t.detail} | {times(t.value)} | {t.verdict()} |"
            for t in earlier_targets(runner)
        ],
        "",
    ]
    return lines


def tracing_rows(runner: Runner) -> list[str]:
    """What an installed OpenTelemetry SDK costs per call (no threshold: information)."""
    stub = runner.results.get("stub", {})
    lines = []
    for workload in ("get_seq", "set_seq"):
        sdk = median_of(stub.get((workload, "aiodynkv-sdk")), "cpu_us")
        base = median_of(stub.get((workload, "aiodynkv")), "cpu_us")
        if sdk is None or base is None:
            continue
        lines.append(
            f"| {WORKLOAD_TITLES[workload]}: client CPU per call, OpenTelemetry SDK installed "
            f"vs the default config (no SDK) | {fmt(sdk, 0)} vs {fmt(base, 0)} µs "
            f"(+{fmt(sdk - base, 0)} µs per call) "
            f"| {fmt(round_ratio(runner, workload, 'aiodynkv-sdk', 'aiodynkv', 'cpu_us'), 2)}x "
            f"| the cost of tracing; no target |"
        )
    return lines


def profile_section(runner: Runner, goals: list[Target]) -> list[str]:
    if not runner.profiles:
        return []
    lines = [
        "## Profiles of the misses",
        "",
        "Each missed target's workload was run once more under cProfile (CPU clock) for",
        "aiodynkv and for the contender it is measured against, in their own processes, on",
        "the same server. *self µs* is the time spent in the function itself per operation",
        "(per key for batches); *calls* counts coroutine resumptions as calls. The profiler",
        "inflates every entry: read the entries as proportions of the *CPU µs* given.",
        "",
    ]
    for target in goals:
        runs = runner.profiles.get(target.key)
        if not runs:
            continue
        lines += [f"### {target.text}: {fmt(target.value, 2)}x, {target.threshold} wanted", ""]
        for run in runs:
            if "error" in run:
                lines += [f"Profile failed: {run['error']}", ""]
                continue
            lines += [
                f"**{run['contender']}**: {fmt(run['cpu_us_per_unit'], 0)} µs CPU per "
                f"{'unit' if run['target'] == 'open' else 'operation'} under the profiler"
                + (" (the whole open and first call)" if run["target"] == "open" else ""),
                "",
                "| self µs | share | calls | cumulative µs | function |",
                "|--:|--:|--:|--:|---|",
                *[
                    f"| {fmt(r['self_us'], 1)} | {fmt(r['share'] * 100, 1)} % "
                    f"| {fmt(r['calls'], 1)} | {fmt(r['cum_us'], 0)} | `{r['where']}` |"
                    for r in run["top"]
                ],
                "",
            ]
    return lines


def capacity_table(runner: Runner) -> list[str]:
    """Capacity units per 1,000 operations, next to speed, for every stub workload."""
    stub = runner.results.get("stub", {})
    lines = [
        "## Consumed capacity next to speed",
        "",
        "Capacity units the stub charged per 1,000 operations (keys, for batches), counted",
        "by the stub as DynamoDB bills them whatever the client asked to see: a strongly",
        "consistent read of an item up to 4 KB is 1 RCU (0.5 eventually consistent, a missing",
        "item costs the same minimum), a write is 1 WCU per KB of the larger of the old and",
        "new item, BatchGetItem and BatchWriteItem charge per item. Coalesced reads that ask",
        "for the same key in the same batch are fetched, and charged, once.",
        "",
        "| workload | contender | ops/s (keys/s) | requests /1k | RCU /1k | WCU /1k |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for workload, title in WORKLOAD_TITLES.items():
        for (w, contender), result in stub.items():
            if w != workload or "median" not in result:
                continue
            lines.append(
                f"| {title} | {LABELS[contender]} | {fmt(median_of(result, 'throughput'), 0)} "
                f"| {fmt(median_of(result, 'requests_per_1k'), 0)} "
                f"| {fmt(median_of(result, 'rcu_per_1k'), 0)} "
                f"| {fmt(median_of(result, 'wcu_per_1k'), 0)} |"
            )
    return [*lines, ""]


def latency_table(runner: Runner) -> list[str]:
    """Throughput and p99 at 64 and 256 tasks with a 2 ms server: what users feel."""
    stub = runner.results.get("stub", {})
    workloads = [w for w in LATENCY_WORKLOADS if any(k[0] == w for k in stub)]
    if not workloads:
        return []
    contenders = list(dict.fromkeys(c for (w, c) in stub if w in LATENCY_WORKLOADS))
    head = "| contender | " + " | ".join(f"{SHORT[w]}: ops/s, p99 ms" for w in workloads) + " |"
    lines = [
        f"## Realistic latency: the server answers after {LATENCY_MS:g} ms",
        "",
        f"The stub holds every answer for {LATENCY_MS:g} ms (a same-region round trip) and",
        "serves the request at once; each cell is throughput and the p99 latency of single",
        "calls (medians over the repetitions). Details per workload in the result tables.",
        "",
        head,
        "|---|" + "--:|" * len(workloads),
    ]
    for contender in contenders:
        cells = []
        for w in workloads:
            result = stub.get((w, contender))
            if not result or "median" not in result:
                cells.append("-" if not result else f"error: {result.get('error', '?')}")
                continue
            cells.append(
                f"{fmt(median_of(result, 'throughput'), 0)} ops/s, "
                f"p99 {fmt(median_of(result, 'p99_ms'), 1)}"
            )
        lines.append(f"| {LABELS[contender]} | " + " | ".join(cells) + " |")
    return [*lines, ""]


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


def package_tree() -> str | None:
    """The git tree of the aiodynkv package's files (with any uncommitted change), or None."""
    spec = importlib.util.find_spec("aiodynkv")
    git = shutil.which("git")
    if spec is None or spec.origin is None or git is None:
        return None
    where = str(Path(spec.origin).parent)
    tree = subprocess.run(
        [git, "-C", where, "rev-parse", "HEAD:./"], capture_output=True, check=False
    )
    if tree.returncode != 0:
        return None
    dirty = subprocess.run(
        [git, "-C", where, "diff", "HEAD", "--", "."], capture_output=True, check=False
    ).stdout
    return tree.stdout.decode().strip() + dirty.decode(errors="replace")


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def load_summary(runner: Runner) -> str:
    values = [v for _, v in runner.loads]
    return (
        f"1-minute load average sampled at the start of every workload: min {min(values):.2f}, "
        f"median {statistics.median(values):.2f}, max {max(values):.2f} "
        f"(start {runner.loads[0][1]:.2f}, end {runner.loads[-1][1]:.2f}; the machine has "
        f"{os.cpu_count()} cores)"
    )


def write_report(runner: Runner, path: Path, dyn: str | None, elapsed: float) -> None:
    o = runner.options
    goals = all_targets(runner)
    noisy = max(v for _, v in runner.loads) > NOISY_LOAD
    lines = [
        "# Benchmarks",
        "",
        "<!-- Written by benchmarks/run.py; do not edit by hand: rerun it. -->",
        "",
        "Reproduce with `python -m nox -s bench` (add `-- --quick` for fewer repetitions).",
        f"This run: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{o.reps} repetitions per figure ({o.reps + 4} for the sequential and batch ones)"
        f"{' (--quick)' if o.quick else ''}, {elapsed / 60:.1f} minutes in all. Every figure",
        "below, the targets included, comes from this one run.",
        "",
        "## Machine, load and versions",
        "",
        f"- {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu_model()}, "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- aiodynkv source: {runner.source} at the start"
        + (
            ""
            if (end := aiodynkv_source(o.aiodynkv_label)) == runner.source
            else f"; **{end} at the end** (the code changed during the run)"
            if package_tree() != runner.tree
            else f"; {end} at the end (other files changed; the package's did not)"
        ),
        f"- dynalite {dynalite_version(dyn) if dyn else 'not found (its section is skipped)'}",
        f"- {load_summary(runner)}",
        *(
            [
                "",
                "**Other work shared the machine during this run** (load above 1 on 2 cores):",
                "absolute figures are noisier than on an idle machine. The ratios are medians",
                "of per-round ratios, each round running both sides back to back, which cancels",
                "most of a slow-moving load; see each row's *spread*.",
            ]
            if noisy
            else []
        ),
        "",
        "| package | version |",
        "|---|---|",
        *[f"| {name} | {version} |" for name, version in versions()],
        "",
        "## Targets, one run, on the stub",
        "",
        "aiodynkv in its **default configuration** in every row (lean transport, read",
        "coalescing on, telemetry as shipped with no OpenTelemetry SDK), except the",
        '`transport="botocore"` row and the traced sides. *ratio* is the median over the',
        "repetition rounds of aiodynkv's figure divided by the other's, both measured back",
        "to back in the same round: in separate worker processes for the sequential and",
        "batch rows (*measured* adds the same ratio inside one process), inside one process",
        "for the tracing and botocore rows (`tracing.py`; for botocore *measured* adds the",
        "separate-process ratio), and per service workload for the service rows",
        "(`service.py`).",
        "",
        *target_tables(runner),
        "The cost of tracing, for information:",
        "",
        "| figure | measured | ratio | note |",
        "|---|---|--:|---|",
        *tracing_rows(runner),
        "",
        "## What each contender was given",
        "",
        *[f"- **{LABELS[c]}**: {text}." for c, text in CONFIGS.items()],
        "",
        "All read the same 10,000 items (100-byte string values) of table `bench`, seeded",
        "through aiodynkv; py-key-value-aio uses its own table `pkv` (its schema is",
        "`collection` + `key` with a JSON document) holding the same keys and values.",
        "",
        *latency_table(runner),
        *capacity_table(runner),
        "## Results on the stub (server answers at once)",
        "",
        "*x raw* divides by the raw aioboto3 row of the same workload.",
        "",
        *result_table(runner, "stub"),
        *paired_table(runner),
        "#### Open to first call",
        "",
        "Each figure is the median over separate processes (one per repetition, contenders",
        "interleaved), so every open is the first in its process. *import* is importing the",
        "library (for aiodynkv: `import aiodynkv`); *open → first call* is from creating the",
        "session/store to the end of the first `get`, imports done; *CPU* is the client CPU of",
        "that span; *total* is both.",
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
    lines += ["", *profile_section(runner, goals)]
    lines += ["## Results on dynalite (a real server, end to end)", ""]
    if "dynalite" in runner.results:
        lines += [
            "Lighter: fewer operations, 5,000 seeded keys, 2,000-item `set_many`, no `set`",
            "workloads and no py-key-value-aio (it calls DescribeTimeToLive, which dynalite",
            "lacks); no capacity (dynalite does not count it). dynalite is a Node.js process",
            "doing real work per item: where its *server busy* nears 100 % (one core), it and",
            "not the client sets the pace.",
            "",
            *result_table(runner, "dynalite"),
        ]
    else:
        lines += ["Not run: dynalite was not found (`--dynalite PATH` or AIODYNKV_DYNALITE).", ""]
    if runner.skipped:
        lines += ["## Skipped for the time budget", "", *[f"- {s}" for s in runner.skipped], ""]
    lines += METHOD.splitlines()
    path.write_text("\n".join(lines).rstrip() + "\n")


METHOD = """
## What each number means

- **ops/s, keys/s**: operations (or keys, for batch calls) completed per second of wall
  time in one repetition; the figure is the median of the repetitions. A repetition's
  keys and items are drawn before its clocks start: the figures are the clients' alone.
- **CPU µs/op, µs/key**: `time.process_time()` of the client process over the repetition,
  divided by the operations (keys). The server runs in another process, so this is the
  client's own cost: the library, the SDK, aiohttp and the event loop.
- **p50, p99 ms**: latency percentiles of single calls within a repetition (one `get`, or
  one whole `get_many`/`set_many` call); median over the repetitions. A repetition holds 24
  `get_many` calls (12 with `--quick`) or 2 `set_many` calls (py-key-value-aio and dynalite:
  one), so a batch's p99 is close to its largest call.
- **spread**: (max - min) / median of the repetitions' throughput: the run-to-run noise.
- **requests, RCU, WCU /1k**: HTTP requests the stub answered, and read and write
  capacity units it charged, per 1,000 operations (keys), over the timed repetitions.
- **server busy**: CPU seconds the server process used per wall second during the
  repetitions (100 % = one core). Well under 100 % means the server was not the limit.
- **peak RSS**: `ru_maxrss` of the worker process after the workload (imports, client,
  all repetitions). One process per (contender, workload).
- **ratio** (targets): for each round, aiodynkv's figure over the other contender's from
  the same round; the median of those. Rounds run every contender of a workload once:
  aiodynkv and aiodynamo first, back to back (which of them goes first alternates),
  then the others in an order that rotates every round.

## How it runs

- `benchmarks/stub.py`: a stub DynamoDB endpoint on a raw asyncio Protocol (HTTP/1.1
  keep-alive, JSON 1.0, `x-amz-crc32` and `x-amzn-RequestId` on every response), serving
  GetItem, PutItem, DeleteItem, UpdateItem, BatchGetItem, BatchWriteItem, CreateTable,
  DescribeTable, UpdateTimeToLive and DescribeTimeToLive from an in-memory dict.
  **Conditions are treated as always true**; UpdateExpression supports the shapes
  aiodynkv sends on top-level attributes; capacity is counted as DynamoDB bills it;
  nothing is ever throttled or unprocessed. It keeps each item's size (made on a write)
  and JSON text (made on the first read) beside the item, so a read splices stored text
  and charges capacity without sizing the item again: the server's work per key is kept
  small so that it caps no client's figure before the client's own work does. For the
  realistic-latency workloads it holds every answer for 2 ms.
- `benchmarks/contenders.py`: the contenders behind one interface (see *What each
  contender was given*).
- `benchmarks/worker.py`: one process per (server, workload, contender): import, open,
  warm up, then one repetition per command from `run.py`; prints JSON. Sequential
  workloads run on one task; the concurrent ones on 64 or 256 tasks that each call with
  their share of random keys (uniform, or Zipfian for *hot keys*).
- `benchmarks/run.py` runs them all, profiles every missed target, and writes this file
  and the block between `<!-- bench:start -->` and `<!-- bench:end -->` in README.md.
  The feature scripts below print their sections and write their key figures as JSON
  (`--json FILE`), from which the targets table takes the tracing, botocore and service
  ratios and every floor.
- `benchmarks/service.py`: the FastAPI service per client, the SDK's own work per
  request (the traced floor) and the coalescing trade-off table.
- `benchmarks/tracing.py`: traced vs untraced (and the SDK-work floor), or with
  `--botocore` the botocore transport vs the raw client (and its floor), in one process.
- `benchmarks/profile_tracing.py`: sequential calls of aiodynkv (untraced, traced) and
  aiodynamo in one process, by component, and the floor from the components both pay.
- `benchmarks/profile_get.py`: a standalone profile of one `get` per contender.
- `benchmarks/profile_batch.py`: `get_many`/`set_many` of aiodynkv and aiodynamo paired in
  one process, with the time per key of each phase and the floors that the stub and the
  shared work set.
- The harness, the stub (and dynalite) run on one 2-core machine: the client process and
  the server each get about one core.
"""


def readme_block(runner: Runner) -> list[str]:
    """The README's Performance figures, from this run."""
    stub = runner.results.get("stub", {})
    goals = targets(runner)

    def m(workload: str, contender: str, key: str, digits: int = 0) -> str:
        return fmt(median_of(stub.get((workload, contender)), key), digits)

    def cell(workload: str, contender: str) -> str:
        return (
            f"{m(workload, contender, 'throughput')} (p99 {m(workload, contender, 'p99_ms', 1)} ms)"
        )

    met = [t for t in goals if t.met()]
    rows = [
        ("sequential `get`, client CPU µs per call", "get_seq", "cpu_us"),
        ("sequential `set`, client CPU µs per call", "set_seq", "cpu_us"),
        ("64 concurrent `get`, ops/s", "get_c64", "throughput"),
        ("`get_many` of 1,000, keys/s", "get_many", "throughput"),
        ("`set_many` of 10,000, keys/s", "set_many", "throughput"),
    ]
    intro = (
        f"Generated by `python -m nox -s bench` ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d}, "
        "one run, stub DynamoDB endpoint on the same 2-core machine; "
        f"{load_summary(runner).split(' (', 1)[0].lower()}). aiodynkv runs in its default "
        "configuration (lean transport, read coalescing, telemetry as shipped, no SDK). "
        "[BENCHMARKS.md](BENCHMARKS.md) has every table, what each contender was given, the "
        "method, and a profile for every missed target."
        + (
            " Other work shared the 2 cores during the run: absolute figures are inflated;"
            " the ratios are medians of per-round ratios."
            if max(v for _, v in runner.loads) > NOISY_LOAD
            else ""
        )
    )
    lines = [
        *textwrap.wrap(intro, 88, break_on_hyphens=False),
        "",
        "| | aiodynkv | aiodynamo | raw aioboto3 |",
        "|---|--:|--:|--:|",
        *[
            f"| {text} | {m(w, 'aiodynkv', k)} | {m(w, 'aiodynamo', k)} | {m(w, 'aioboto3', k)} |"
            for text, w, k in rows
        ],
        f"| 64 concurrent `get`, {LATENCY_MS:g} ms server, ops/s | {cell('get_lat64', 'aiodynkv')} "
        f"| {cell('get_lat64', 'aiodynamo')} | {cell('get_lat64', 'aioboto3')} |",
        f"| 256 concurrent `get`, {LATENCY_MS:g} ms server, ops/s "
        f"| {cell('get_lat256', 'aiodynkv')} | {cell('get_lat256', 'aiodynamo')} "
        f"| {cell('get_lat256', 'aioboto3')} |",
        "| RCU per 1,000 `get`, 256 tasks on hot keys "
        f"| {m('get_hot256', 'aiodynkv', 'rcu_per_1k')} "
        f"| {m('get_hot256', 'aiodynamo', 'rcu_per_1k')} "
        f"| {m('get_hot256', 'aioboto3', 'rcu_per_1k')} |",
        "",
    ]
    lines += [
        *textwrap.wrap(
            f"Targets of this run: {len(met)} of {len(goals)} met. *floor*: the best ratio "
            "this stub and machine allow if aiodynkv's own work cost nothing (how each is "
            "computed: [BENCHMARKS.md](BENCHMARKS.md#targets-one-run-on-the-stub)).",
            88,
            break_on_hyphens=False,
        ),
        "",
        "| target | wanted | this run | floor | verdict |",
        "|---|--:|--:|---|---|",
        *[
            f"| {t.text} | {t.threshold} | {times(t.value)} | {t.floor_cell()} "
            f"| {t.verdict()}"
            + ("" if t.met() is not False or t.floor is None else f"; {t.distance()}")
            + " |"
            for t in goals
        ],
        "",
    ]
    earlier = earlier_targets(runner)
    earlier_missed = [t for t in earlier if t.met() is False]
    verdict = f"Earlier targets: {sum(1 for t in earlier if t.met())} of {len(earlier)} met" + (
        "; missed: "
        + "; ".join(f"{t.text} ({fmt(t.value, 2)}x, {t.threshold})" for t in earlier_missed)
        if earlier_missed
        else ""
    )
    lines += textwrap.wrap(verdict + ".", 88, break_on_hyphens=False)
    sdk = [median_of(stub.get(("get_seq", c)), "cpu_us") for c in ("aiodynkv-sdk", "aiodynkv")]
    if None not in sdk:
        lines.append(
            f"With an OpenTelemetry SDK installed, a sequential `get` costs {fmt(sdk[0], 0)} µs "
            f"of client CPU instead of {fmt(sdk[1], 0)} µs."
        )
        lines[-1:] = textwrap.wrap(lines[-1], 88, break_on_hyphens=False)
    return lines


def rewrite_readme(runner: Runner, path: Path) -> bool:
    """Replace what lies between the bench markers in README.md; False when they are missing."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        return False
    block = "\n".join([README_START, *readme_block(runner), README_END])
    path.write_text(pattern.sub(lambda _: block, text, count=1), encoding="utf-8")
    return True


def raw_results(runner: Runner) -> dict[str, Any]:
    return {
        "servers": {
            server: [{**r, "workload": w, "contender": c} for (w, c), r in results.items()]
            for server, results in runner.results.items()
        },
        "open": runner.opens,
        "open_runs": runner.open_runs,
        "paired": runner.paired,
        "profiles": runner.profiles,
        "features": runner.features,
        "seeds": runner.seeds,
        "loads": runner.loads,
        "skipped": runner.skipped,
    }


def wait_for_quiet(seconds: float) -> None:
    """Wait (bounded) for other work on the machine to finish: it skews every figure."""
    deadline = time.monotonic() + seconds
    while os.getloadavg()[0] >= QUIET_LOAD and time.monotonic() < deadline:
        time.sleep(5)
    if seconds:
        print(f"load average {os.getloadavg()[0]:.2f} at start", flush=True)


def feature_sections(runner: Runner, quick: bool, dyn: str | None) -> list[str]:
    """The service, tracing, profile, near-cache and sharded-counter figures, from their scripts.

    The scripts that feed the targets write their key figures with ``--json``; they land
    in ``runner.features`` under the section's key.
    """
    sections = [
        (
            SERVICE_TITLE,
            "benchmarks/service.py",
            "service",
            "What a user's service gets per request from each client: one FastAPI app per "
            "client (one uvicorn worker), loaded over HTTP at concurrency 64, against the "
            "stub answering after 2 ms; aiodynkv with and without an OpenTelemetry SDK; then "
            "the coalescing trade-off: aiodynkv's batching bounds against aiodynamo.",
        ),
        (
            TRACING_TITLE,
            "benchmarks/tracing.py",
            "tracing",
            "One process holds two aiodynkv stores on the stub (answering at once), one with "
            "an OpenTelemetry SDK configured as applications do and one without; a third side "
            "makes the same telemetry directly on the SDK after each untraced call (the floor "
            "any code emitting it pays); blocks of sequential calls rotate between them. CPU µs "
            "per call of each side and the median of the per-round ratios (target for "
            "`get`/`set`: at most 1.20x).",
        ),
        (
            BOTOCORE_TITLE,
            "benchmarks/tracing.py --botocore",
            "botocore",
            'A store with `transport="botocore"` and the raw aioboto3 contender (its own '
            "client) in one process, blocks of sequential `get`s alternating over 36 rounds "
            "(a block's ratio spreads about 10 % either way) (target: at most 1.10x); a third "
            "side is the raw client's `get_item` followed by what aiodynkv must add to it "
            "(the floor; the raw client's User-Agent is built by botocore for each request, "
            "aiodynkv's is made once).",
        ),
        (
            SEQ_TITLE,
            "benchmarks/profile_tracing.py --top 0",
            "profile_seq",
            "Sequential calls on the stub under cProfile (CPU clock), aiodynkv (untraced and "
            "traced) and aiodynamo in one process, self time grouped by component and scaled "
            "to each side's CPU per call measured without the profiler; the garbage "
            "collector's time measured apart (cProfile charges it to whatever function was "
            "allocating). The SDK is configured as in the tracing figures above. Below the "
            "table: the floor of aiodynkv's CPU against aiodynamo's, from the components "
            "both pay.",
        ),
        (
            BATCH_TITLE,
            "benchmarks/profile_batch.py",
            "batch",
            "aiodynkv and aiodynamo in one process on the stub (answering at once): paired "
            "rounds of `get_many` of 1,000 keys and of `set_many` of 10,000 items, the order "
            "alternating, timed without the profiler (wall time, client CPU, and the stub's own "
            "CPU per key); then each side under cProfile (CPU clock), its self time less the "
            "profiler's own cost per call grouped by phase (a C builtin's time goes to its "
            "caller's phase) and scaled to the client CPU per key measured without it. Below "
            "each table: what aiodynkv does per key that aiodynamo does not, and the floors "
            "that the stub's CPU and the shared work set on the ratio of keys/s (target: 1.5x).",
        ),
        (
            "## Near cache: a Zipf read workload",
            "benchmarks/near_cache.py",
            "",
            "Requests sent and read units charged by the stub for the same reads, with and "
            "without `local_cache_items` (the stub answers after 2 ms).",
        ),
        (
            "## Sharded counters: one hot counter over partition keys",
            "benchmarks/shards.py",
            "",
            "The hottest partition key's share of the requests bounds a counter's "
            "throughput on DynamoDB (about 1,000 writes/s per partition).",
        ),
    ]
    lines: list[str] = []
    env = {**os.environ, **({"AIODYNKV_DYNALITE": dyn} if dyn else {})}
    with tempfile.TemporaryDirectory(prefix="aiodynkv-bench-") as tmp:
        for title, script, key, intro in sections:
            path, *args = script.split()
            out = Path(tmp) / f"{key}.json"
            command = [
                sys.executable,
                str(ROOT / path),
                *args,
                *(["--quick"] if quick else []),
                *(["--json", str(out)] if key else []),
            ]
            runner.log(f"running {script}")
            try:
                done = subprocess.run(
                    command, capture_output=True, text=True, env=env, timeout=1800, check=False
                )
            except subprocess.TimeoutExpired:
                lines += [title, "", intro, "", f"Not finished within 1,800 s: `{script}`.", ""]
                continue
            ok = done.returncode == 0
            body = done.stdout.strip() if ok else f"Failed: {done.stderr[-500:]}"
            if ok and key:
                try:
                    runner.features[key] = json.loads(out.read_text())
                except (OSError, ValueError) as exc:
                    runner.skipped.append(f"{script}: no figures ({exc})")
            lines += [title, "", intro, f"From `python {script}` in this run.", "", body, ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repetitions, half the operations")
    parser.add_argument("--reps", type=int, help="repetitions per figure (default 5, quick 3)")
    parser.add_argument("--dynalite", help="path to the dynalite executable")
    parser.add_argument("--no-dynalite", action="store_true", help="skip the dynalite section")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument(
        "--readme", type=Path, default=README, help="README whose bench block to rewrite"
    )
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help=f"first wait up to this long for the 1-minute load average to fall below "
        f"{QUIET_LOAD:g} (default 60)",
    )
    parser.add_argument("--json", type=Path, help="also write every raw figure to this file")
    parser.add_argument("--aiodynkv-label", help="say where aiodynkv came from, in the report")
    options = parser.parse_args()
    options.reps = options.reps or (3 if options.quick else 5)
    wait_for_quiet(options.wait_quiet)
    runner = Runner(options)
    keys = 10_000
    stub = start_stub(RUN_BUDGET_SECONDS + 300)
    try:
        runner.log(f"stub listening on {stub.url} (pid {stub.proc.pid})")
        runner.seed(stub, keys, ["aiodynkv", "pykv"])
        runner.run_jobs(stub, plan("stub", options.quick, options.reps), keys)
        runner.paired_overhead(stub, options.reps, options.quick)
        runner.open_times(stub, options.reps + 2)
        runner.profile_misses(stub)
    finally:
        runner.log(stub.stop() or "stub stopped")
    dyn = None if options.no_dynalite else find_dynalite(options.dynalite)
    if dyn and not runner.out_of_time():
        server = start_dynalite(dyn)
        try:
            runner.log(f"dynalite listening on {server.url} (pid {server.proc.pid})")
            runner.seed(server, keys // 2, ["aiodynkv"])
            reps = max(3, options.reps - 2)
            runner.run_jobs(server, plan("dynalite", options.quick, reps), keys // 2)
        except SystemExit as exc:  # a failed seed: report the stub figures all the same
            runner.skipped.append(f"dynalite: {exc}")
            runner.log(f"dynalite section abandoned: {exc}")
        finally:
            server.stop()
    elif not options.no_dynalite:
        runner.log("dynalite not found: skipping its section (--dynalite PATH)")
    extras = feature_sections(runner, options.quick, dyn)
    runner.sample_load("end")
    elapsed = time.monotonic() - runner.started
    write_report(runner, options.output, dyn, elapsed)
    if extras:
        with options.output.open("a") as report:
            report.write("\n" + "\n".join(extras).rstrip() + "\n")
    if options.json:
        options.json.write_text(json.dumps(raw_results(runner), indent=1))
    runner.log(f"wrote {options.output}")
    if not options.no_readme:
        if rewrite_readme(runner, options.readme):
            runner.log(f"rewrote the bench block of {options.readme}")
        else:
            runner.log(f"no {README_START} ... {README_END} block in {options.readme}")
    for target in all_targets(runner):
        print(
            f"  {fmt(target.value, 2):>6}x {target.threshold:>16}  {target.verdict():>36}  "
            f"{target.text}"
        )


if __name__ == "__main__":
    main()
