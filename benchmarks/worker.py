"""One benchmark process: one contender, one workload; prints JSON lines.

``run.py`` starts one of these per (contender, workload) so that peak RSS, import state
and garbage belong to that pair alone. The server (stub or dynalite) runs in another
process, so ``time.process_time()`` here is the client's CPU only.

Workloads (timed repetitions; with ``--serve`` one repetition per ``rep`` line on stdin,
so that run.py can interleave the contenders): ``get_seq``/``set_seq`` (one task),
``get_c64`` (64 tasks), ``get_lat64``/``get_lat256``/``set_lat64`` (64 or 256 tasks, for a
stub that answers after ~2 ms), ``get_hot256`` (256 tasks, Zipfian keys), ``get_many``,
``set_many``. One-shot: ``open`` (open-to-first-call), ``paired`` (aiodynkv, its own
client and aiodynamo in one process, interleaved), ``profile`` (cProfile of another
workload's body: top entries by self time) and ``seed`` (create and fill the tables).

    python benchmarks/worker.py --url http://127.0.0.1:PORT --contender aiodynkv \
        --workload get_seq --reps 5 --ops 800
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contenders import CONTENDERS, PKV_COLLECTION, PKV_TABLE, TABLE, Contender

GET_MANY_SIZE = 1_000
#: Tasks of each single-key workload.
TASKS = {
    "get_seq": 1,
    "set_seq": 1,
    "get_c64": 64,
    "get_lat64": 64,
    "get_lat256": 256,
    "set_lat64": 64,
    "get_hot256": 256,
}
ZIPF_THETA = 0.99  # YCSB's Zipfian constant: a few keys take most reads


def key_of(i: int) -> str:
    return f"key:{i:06d}"


def value_of(i: int, size: int) -> str:
    return f"{i:06d}".ljust(size, "x")


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class Rep:
    """What one repetition measured."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.units = 0  # operations (single-key workloads) or keys (batch workloads)
        self.misses = 0
        self.truncated = False

    def summary(self, wall: float, cpu: float) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "units": self.units,
            "calls": len(lat),
            "wall_s": wall,
            "throughput": self.units / wall if wall > 0 else float("nan"),
            "cpu_us": cpu / self.units * 1e6 if self.units else float("nan"),
            "p50_ms": percentile(lat, 0.50) * 1e3,
            "p99_ms": percentile(lat, 0.99) * 1e3,
            "misses": self.misses,
            "truncated": self.truncated,
        }


#: One repetition's calls, timed: given the `Rep` to fill and a `time.perf_counter` deadline.
Run = Callable[[Rep, float], Awaitable[None]]
#: A workload: makes one repetition's inputs (keys, items), untimed, and returns its `Run`.
Body = Callable[[], Run]


class ServerProbe:
    """The server's CPU seconds (and request count, for the stub) between two points.

    The stub answers ``BenchStub.Stats``; for any other server (dynalite) the CPU time of
    its process is read from ``/proc/PID/stat`` (10 ms resolution). Called between
    repetitions only, never inside a timed region.
    """

    def __init__(self, url: str, stub: bool, pid: int | None) -> None:
        host_port = url.split("://", 1)[1].rstrip("/")
        self.host, _, port = host_port.partition(":")
        self.port = int(port or 80)
        self.stub = stub
        self.pid = pid

    def read(self) -> tuple[float, int, float, float] | None:
        """(CPU seconds, requests served or -1, read units, write units), or None.

        Capacity is known for the stub only (-1 for other servers).
        """
        if self.stub:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                conn.request("POST", "/", body=b"{}", headers={"X-Amz-Target": "BenchStub.Stats"})
                stats = json.loads(conn.getresponse().read())
            finally:
                conn.close()
            return (
                float(stats["cpu_seconds"]),
                int(stats["requests"]),
                float(stats["read_units"]),
                float(stats["write_units"]),
            )
        if self.pid is None:
            return None
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        return ticks / os.sysconf("SC_CLK_TCK"), -1, -1.0, -1.0


def zipf_keys(count: int, n: int, rng: random.Random) -> list[str]:
    """`n` keys drawn from `count` with YCSB's Zipfian skew (key 0 the hottest)."""
    weights = [1.0 / (i + 1) ** ZIPF_THETA for i in range(count)]
    return [key_of(i) for i in rng.choices(range(count), weights=weights, k=n)]


#: One timed call on one input: (units done, misses).
Call = Callable[[Any], Awaitable[tuple[int, int]]]


async def _timed(rep: Rep, deadline: float, call: Call, inputs: list[Any]) -> None:
    """`call` on each input in turn, each timed, until the inputs or the time run out."""
    for item in inputs:
        if time.perf_counter() > deadline:
            rep.truncated = True
            return
        start = time.perf_counter()
        units, missed = await call(item)
        rep.latencies.append(time.perf_counter() - start)
        rep.units += units
        rep.misses += missed


def _single(call: Call, args: argparse.Namespace, draw: Callable[[int], list[Any]]) -> Body:
    """Single-key calls: `draw` makes a repetition's inputs, `TASKS` tasks share them.

    `call` makes one call with one input.
    """
    tasks = TASKS[args.workload]
    per_task = max(1, args.ops // tasks)

    def body() -> Run:
        inputs = draw(per_task * tasks)

        async def run(rep: Rep, deadline: float) -> None:
            shares = [inputs[t * per_task : (t + 1) * per_task] for t in range(tasks)]
            if tasks == 1:
                await _timed(rep, deadline, call, shares[0])
            else:
                await asyncio.gather(*(_timed(rep, deadline, call, share) for share in shares))

        return run

    return body


def _reads(contender: Contender, args: argparse.Namespace, rng: random.Random) -> Body | None:
    get = contender.get
    if get is None:
        return None
    hot = args.workload.startswith("get_hot")

    def draw(n: int) -> list[str]:
        if hot:
            return zipf_keys(args.keys, n, rng)
        return [key_of(rng.randrange(args.keys)) for _ in range(n)]

    async def read(key: str) -> tuple[int, int]:
        return 1, await get(key) is None

    return _single(read, args, draw)


def _writes(contender: Contender, args: argparse.Namespace, rng: random.Random) -> Body | None:
    put = contender.set
    if put is None:
        return None

    def draw(n: int) -> list[int]:
        return [rng.randrange(args.keys) for _ in range(n)]

    async def write(i: int) -> tuple[int, int]:
        await put(f"set:{i:06d}", value_of(i, args.value_size))
        return 1, 0

    return _single(write, args, draw)


def _batches(call: Callable[[Any], Awaitable[Any]], inputs: list[Any]) -> Run:
    """A repetition of batch calls, one per input (keys or items), in sequence."""

    async def one(batch: Any) -> tuple[int, int]:
        found = await call(batch)
        if found is None:  # set_many
            return len(batch), 0
        # get_many: a list (None where missing) or a dict of the hits
        got = sum(v is not None for v in found) if isinstance(found, list) else len(found)
        return len(batch), len(batch) - got

    async def run(rep: Rep, deadline: float) -> None:
        await _timed(rep, deadline, one, inputs)

    return run


def _batch_reads(contender: Contender, args: argparse.Namespace, rng: random.Random) -> Body | None:
    get_many = contender.get_many
    if get_many is None:
        return None

    def batch_reads() -> Run:
        keys = [
            [key_of(i) for i in rng.sample(range(args.keys), args.batch)] for _ in range(args.calls)
        ]
        return _batches(get_many, keys)

    return batch_reads


def _batch_writes(
    contender: Contender, args: argparse.Namespace, rng: random.Random
) -> Body | None:
    del rng
    set_many = contender.set_many
    if set_many is None:
        return None

    def batch_writes() -> Run:
        items = {f"setmany:{i:06d}": value_of(i, args.value_size) for i in range(args.batch)}
        return _batches(set_many, [dict(items) for _ in range(args.calls)])

    return batch_writes


BODIES = {
    **{w: _reads for w in TASKS if w.startswith("get_")},
    **{w: _writes for w in TASKS if w.startswith("set_")},
    "get_many": _batch_reads,
    "set_many": _batch_writes,
}


def make_body(contender: Contender, args: argparse.Namespace, rng: random.Random) -> Body | None:
    """The coroutine one repetition runs, or None when the contender lacks the call."""
    return BODIES[args.workload](contender, args, rng)


MEDIAN_KEYS = (
    "throughput",
    "cpu_us",
    "p50_ms",
    "p99_ms",
    "units",
    "calls",
    "server_busy",
    "server_cpu_us_per_request",
    "requests",
    "requests_per_1k",
    "rcu_per_1k",
    "wcu_per_1k",
)
MAX_COMMANDS = 1_000


def summarize(reps: list[dict[str, Any]], wanted: int) -> dict[str, Any]:
    """Medians over the repetitions, the throughput spread, misses and truncation."""
    result: dict[str, Any] = {"reps": reps}
    if reps:
        result["median"] = {
            k: statistics.median(r[k] for r in reps)
            for k in MEDIAN_KEYS
            if all(k in r for r in reps)
        }
        throughputs = [r["throughput"] for r in reps]
        result["spread"] = (max(throughputs) - min(throughputs)) / result["median"]["throughput"]
    result["misses"] = sum(r["misses"] for r in reps)
    result["truncated"] = any(r["truncated"] for r in reps) or len(reps) < wanted
    return result


def _protocol_channel() -> Any:
    """This process's own stdout, for JSON lines only; everything else goes to stderr.

    Libraries may print (an unconfigured structlog writes warnings such as retries to
    stdout), so file descriptor 1 is pointed at stderr and the JSON lines go to a
    duplicate of the original stdout.
    """
    sys.stdout.flush()
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


_CHANNEL: Any = None


def emit(payload: dict[str, Any]) -> None:
    if _CHANNEL is None:
        print(json.dumps(payload), flush=True)
    else:
        _CHANNEL.write(json.dumps(payload) + "\n")
        _CHANNEL.flush()


async def one_rep(body: Body, probe: ServerProbe, max_seconds: float) -> dict[str, Any]:
    """Run one timed repetition; add the server's CPU over it when it can be read."""
    rep = Rep()
    run = body()  # the repetition's keys and items, made before the clocks start
    before = probe.read()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    await run(rep, wall0 + max_seconds)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    summary = rep.summary(wall, cpu)
    after = probe.read()
    if before is not None and after is not None:
        server_cpu = after[0] - before[0]
        summary["server_busy"] = server_cpu / wall
        requests = after[1] - before[1]  # Stats calls are not counted
        if before[1] >= 0 and requests > 0:
            summary["server_cpu_us_per_request"] = server_cpu / requests * 1e6
            summary["requests"] = requests
            if rep.units:
                summary["requests_per_1k"] = requests / rep.units * 1e3
        if before[2] >= 0 and rep.units:
            summary["rcu_per_1k"] = (after[2] - before[2]) / rep.units * 1e3
            summary["wcu_per_1k"] = (after[3] - before[3]) / rep.units * 1e3
    return summary


async def open_first_call(args: argparse.Namespace) -> dict[str, Any]:
    """Import, then time opening the client and its first `get` (first open in this process)."""
    contender = CONTENDERS[args.contender](args.url)
    started = time.perf_counter()
    contender.load()
    import_ms = (time.perf_counter() - started) * 1e3
    wall0, cpu0 = time.perf_counter(), time.process_time()
    await contender.open()
    if contender.get is None:
        raise SystemExit(f"{args.contender} has no get")
    value = await contender.get(key_of(0))
    result = {
        "contender": contender.name,
        "import_ms": import_ms,
        "open_ms": (time.perf_counter() - wall0) * 1e3,
        "open_cpu_ms": (time.process_time() - cpu0) * 1e3,
        "misses": int(value is None),
    }
    await contender.close()
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


async def measure(args: argparse.Namespace) -> dict[str, Any] | None:
    """Open, warm up, then run repetitions.

    Without ``--serve``: all ``--reps`` at once, returning one summary. With ``--serve``:
    print ``{"ready": ...}``, then run one repetition per ``rep`` line read on stdin and
    print its figures, until ``stop`` (so that run.py can interleave contenders).
    """
    contender = CONTENDERS[args.contender](args.url)
    started = time.perf_counter()
    contender.load()
    head: dict[str, Any] = {
        "contender": contender.name,
        "workload": args.workload,
        "import_ms": (time.perf_counter() - started) * 1e3,
    }
    await contender.open()
    try:
        rng = random.Random(args.seed)
        body = make_body(contender, args, rng)
        if body is None:
            return {**head, "skipped": True}
        if args.warmup:
            warm_body = make_body(
                contender, argparse.Namespace(**{**vars(args), **args.warmup}), rng
            )
            if warm_body is not None:
                await warm_body()(Rep(), time.perf_counter() + args.max_seconds)
        probe = ServerProbe(args.url, args.stub_stats, args.server_pid)
        if not args.serve:
            reps = [await one_rep(body, probe, args.max_seconds) for _ in range(args.reps)]
            return {**head, **summarize(reps, args.reps), "peak_rss_mib": peak_rss()}
        emit({**head, "ready": True})
        for _ in range(MAX_COMMANDS):
            command = sys.stdin.readline().strip()  # blocking on purpose: nothing runs between reps
            if command != "rep":
                break
            emit(await one_rep(body, probe, args.max_seconds))
    finally:
        await contender.close()
    emit({"done": True, "peak_rss_mib": peak_rss()})
    return None


async def paired_overhead(args: argparse.Namespace) -> dict[str, Any]:
    """aiodynkv, its own aiobotocore client and aiodynamo in ONE process, interleaved.

    Blocks of ``--batch`` sequential calls (``--op get`` or ``set``) rotate between
    ``kv.get``/``kv.set``, the same store's aiobotocore client (the raw contender's
    request, on the very client aiodynkv opened) and aiodynamo, so that all three see the
    same machine at the same moments. Each repetition reports the client CPU per call of
    each side and the ratios; the figures are medians of the per-repetition ratios.
    """
    contender = CONTENDERS[args.contender](args.url)
    contender.load()
    await contender.open()
    other = CONTENDERS["aiodynamo"](args.url)
    other.load()
    await other.open()
    kv = contender.kv  # type: ignore[attr-defined]
    client = kv.client
    rng = random.Random(args.seed)
    writes = args.op == "set"

    async def via_kv(i: int) -> Any:
        if writes:
            return await kv.set(f"set:{i:06d}", value_of(i, args.value_size))
        return await kv.get(key_of(i), None)

    async def via_client(i: int) -> Any:
        if writes:
            item = {"pk": {"S": f"set:{i:06d}"}, "value": {"S": value_of(i, args.value_size)}}
            return await client.put_item(TableName=TABLE, Item=item)
        response = await client.get_item(
            TableName=TABLE, Key={"pk": {"S": key_of(i)}}, ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else item["value"]["S"]

    async def via_aiodynamo(i: int) -> Any:
        if writes:
            return await other.set(f"set:{i:06d}", value_of(i, args.value_size))  # type: ignore[misc]
        return await other.get(key_of(i))  # type: ignore[misc]

    sides = {"aiodynkv": via_kv, "client": via_client, "aiodynamo": via_aiodynamo}
    block = max(1, args.batch)
    reps = []
    try:
        for side in sides.values():  # warm-up
            for _ in range(block):
                await side(rng.randrange(args.keys))
        for rep in range(args.reps):
            cpu = dict.fromkeys(sides, 0.0)
            calls = dict.fromkeys(sides, 0)
            order = list(sides)[rep % len(sides) :] + list(sides)[: rep % len(sides)]
            for _ in range(max(1, args.ops // (len(sides) * block))):
                for name in order:
                    numbers = [rng.randrange(args.keys) for _ in range(block)]
                    call = sides[name]
                    cpu0 = time.process_time()
                    for i in numbers:
                        await call(i)
                    cpu[name] += time.process_time() - cpu0
                    calls[name] += block
            us = {name: cpu[name] / calls[name] * 1e6 for name in sides}
            reps.append(
                {
                    "aiodynkv_us": us["aiodynkv"],
                    "client_us": us["client"],
                    "aiodynamo_us": us["aiodynamo"],
                    "vs_client": us["aiodynkv"] / us["client"],
                    "vs_aiodynamo": us["aiodynkv"] / us["aiodynamo"],
                }
            )
    finally:
        await other.close()
        await contender.close()
    return {
        "contender": contender.name,
        "op": args.op,
        "reps": reps,
        "median": {k: statistics.median(r[k] for r in reps) for k in reps[0]} if reps else {},
    }


def _where(filename: str, line: int, function: str) -> str:
    """``package/module.py:line(function)``: a path a reader can open, without the venv."""
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            if marker == "/lib/python3":
                filename = "stdlib/" + filename.split("/", 1)[1]
            break
    if filename.startswith("~"):
        return f"{function} (C)"
    return f"{filename}:{line}({function})"


async def profiled(args: argparse.Namespace) -> dict[str, Any]:
    """cProfile (CPU clock) of one repetition of ``--target``: top entries by self time.

    ``--target open`` profiles opening the client and its first `get`. Costs are per unit
    of the workload (operation or key) and are inflated by the profiler itself: read
    them as proportions.
    """
    import cProfile
    import pstats

    contender = CONTENDERS[args.contender](args.url)
    contender.load()
    profiler = cProfile.Profile(time.process_time)
    units = 1
    if args.target == "open":
        cpu0 = time.process_time()
        profiler.enable()
        await contender.open()
        await contender.get(key_of(0))  # type: ignore[misc]
        profiler.disable()
        cpu = time.process_time() - cpu0
    else:
        await contender.open()
        target = argparse.Namespace(**{**vars(args), "workload": args.target})
        rng = random.Random(args.seed)
        body = make_body(contender, target, rng)
        if body is None:
            raise SystemExit(f"{args.contender} has no {args.target}")
        await body()(Rep(), time.perf_counter() + args.max_seconds)  # warm-up
        rep, run = Rep(), body()
        cpu0 = time.process_time()
        profiler.enable()
        await run(rep, time.perf_counter() + args.max_seconds)
        profiler.disable()
        cpu = time.process_time() - cpu0
        units = max(1, rep.units)
    await contender.close()
    stats = pstats.Stats(profiler)
    rows = []
    total = 0.0
    for (filename, line, function), entry in stats.stats.items():  # type: ignore[attr-defined]
        _, ncalls, tottime, cumtime, _ = entry
        total += tottime
        rows.append((tottime, ncalls, cumtime, _where(filename, line, function)))
    rows.sort(reverse=True)
    return {
        "contender": contender.name,
        "target": args.target,
        "units": units,
        "cpu_us_per_unit": cpu / units * 1e6,
        "top": [
            {
                "self_us": tottime / units * 1e6,
                "share": tottime / total if total else 0.0,
                "calls": ncalls / units,
                "cum_us": cumtime / units * 1e6,
                "where": where,
            }
            for tottime, ncalls, cumtime, where in rows[: args.top]
        ],
    }


def peak_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def seed(args: argparse.Namespace) -> dict[str, Any]:
    """Create the tables and write the keys every read workload picks from."""
    items = {key_of(i): value_of(i, args.value_size) for i in range(args.keys)}
    started = time.perf_counter()
    if args.contender == "aiodynkv":
        from aiodynkv import AsyncDynamoKV

        async with AsyncDynamoKV(table=TABLE, endpoint=args.url, create_table=True) as kv:
            await kv.set_many(items)
            check = await kv.get_many(list(items)[:: max(1, len(items) // 100)])
    elif args.contender == "pykv":
        check = await seed_pykv(args.url, items)
    else:
        raise SystemExit(f"cannot seed with {args.contender!r}")
    return {
        "seeded": len(items),
        "seconds": time.perf_counter() - started,
        "check": sum(v is not None for v in check.values()),
    }


async def seed_pykv(url: str, items: dict[str, str]) -> dict[str, Any]:
    """Seed py-key-value-aio's table fast: one item through its own `put` as a template,
    the rest in that exact format with BatchWriteItem; then read some back through it."""
    contender = CONTENDERS["pykv"](url)
    contender.load()
    await contender.open()  # creates its table
    store = contender.store  # type: ignore[attr-defined]
    first_key, first_value = next(iter(items.items()))
    await store.put(first_key, {"value": first_value}, collection=PKV_COLLECTION)
    raw = CONTENDERS["aioboto3"](url)
    raw.load()
    await raw.open()
    client = raw.client  # type: ignore[attr-defined]
    key = {"collection": {"S": PKV_COLLECTION}, "key": {"S": first_key}}
    template = (await client.get_item(TableName=PKV_TABLE, Key=key))["Item"]
    document = json.loads(template["value"]["S"])
    puts = []
    for k, v in items.items():
        document["key"], document["value"] = k, {"value": v}
        item = {**template, "key": {"S": k}, "value": {"S": json.dumps(document)}}
        puts.append({"PutRequest": {"Item": item}})
    for start in range(0, len(puts), 25):
        request = {PKV_TABLE: puts[start : start + 25]}
        for _ in range(50):
            request = (await client.batch_write_item(RequestItems=request))["UnprocessedItems"]
            if not request:
                break
    await raw.close()
    sample = list(items)[:: max(1, len(items) // 100)]
    found = await store.get_many(sample, collection=PKV_COLLECTION)
    await contender.close()
    return dict(zip(sample, found, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--contender", required=True, choices=sorted(CONTENDERS))
    parser.add_argument(
        "--workload",
        required=True,
        choices=[*TASKS, "get_many", "set_many", "open", "seed", "paired", "profile"],
    )
    parser.add_argument("--op", choices=["get", "set"], default="get", help="paired: which call")
    parser.add_argument("--target", help="profile: the workload to profile, or open")
    parser.add_argument("--top", type=int, default=15, help="profile: entries to report")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--ops", type=int, default=2000, help="operations per rep (single-key)")
    parser.add_argument("--calls", type=int, default=1, help="batch calls per rep")
    parser.add_argument("--batch", type=int, default=GET_MANY_SIZE, help="keys per batch call")
    parser.add_argument("--keys", type=int, default=10_000, help="size of the seeded key space")
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--warmup", type=json.loads, default={}, help='e.g. {"ops": 200}')
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time bound of one rep")
    parser.add_argument("--serve", action="store_true", help="run reps on command (run.py)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--stub-stats", action="store_true", help="the server is stub.py")
    parser.add_argument("--server-pid", type=int, help="read the server's CPU from /proc")
    args = parser.parse_args()
    global _CHANNEL  # noqa: PLW0603 (set once, before anything runs)
    _CHANNEL = _protocol_channel()
    runners = {
        "seed": seed,
        "open": open_first_call,
        "paired": paired_overhead,
        "profile": profiled,
    }
    result = asyncio.run(runners.get(args.workload, measure)(args))
    if result is not None:
        emit(result)


if __name__ == "__main__":
    main()
