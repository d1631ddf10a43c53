"""Where `get_many` of 1,000 keys and `set_many` of 10,000 items spend their time, per key.

    python benchmarks/profile_batch.py [--quick] [--rounds 5] [--top 0] [--json FILE]

Starts the stub and seeds it, then holds aiodynkv (default config) and aiodynamo (set up
as in `contenders.py`) in this one process. First, paired: rounds in which both sides
run the same batch calls in turn (the order alternating every round), each measured
without the profiler: wall time, this process's CPU and the stub's own CPU (its
``BenchStub.Stats``), so that the keys/s ratio is the median of per-round ratios taken at
nearly the same moment. Then each side runs the calls again under cProfile (CPU clock)
and its self time is grouped by phase: key validation, item build, size accounting,
versions and tokens, request build, JSON, signing, HTTP, decode, telemetry, the batch
driver, task scheduling. A C builtin's time (``dict.get``, ``isinstance``...) goes to the
phase of the Python function that called it, except JSON, hashing and socket calls, which
are phases of their own. cProfile inflates cheap, frequent calls: each side's phases are
scaled to add up to its CPU per key measured without the profiler (the shares are
cProfile's, the total is real).

Below each table, the floor: the stub serves one side's requests on the other core, so a
side cannot go faster than the stub's CPU per key for its requests allows, nor faster than
its own CPU per key; the floor of aiodynkv's CPU is what it must do per key that aiodynamo
does not (its version, token and size check per item, its telemetry), above what both do.
The floor of the keys/s ratio is aiodynamo's wall time per key over aiodynkv's least
wall time per key, a pipeline bound from this run's figures per key: C, aiodynkv's shared
client CPU (what it would spend if its own work cost nothing); S, the stub's CPU for its
requests; B and D, the client's build (items, request, signing) and decode; n, the chunks
per call (keys / 100 for reads, / 25 for writes). The client does all of C; the stub
serves every chunk but not the first before it is built, and the last reply is decoded
only after it is served; nothing is decoded before the first reply:
wall >= max(C, S + (B + D) / n, D + (B + S) / n). It is the best ratio reachable on this
stub with two free cores if aiodynkv's own work cost nothing (on one shared core, wall >=
C + S, printed beside it). ``--json FILE`` writes these figures per workload.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import http.client
import json
import os
import pstats
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from contenders import CONTENDERS, Contender  # noqa: E402
from run import Server, run_worker, start_stub  # noqa: E402
from worker import key_of, value_of  # noqa: E402

SIDES = ("aiodynkv", "aiodynamo")
KEYSPACE = 10_000
GET_BATCH = 1_000
SET_BATCH = 10_000
VALUE_SIZE = 100
TARGET = 1.5  # keys/s of aiodynkv over aiodynamo's, for both workloads

#: Phases by function, for the functions that decide it on their own.
_FUNCTIONS = {
    # aiodynkv's codec module
    "encode_value": "item build (value, attribute dicts)",
    "build_item": "item build (value, attribute dicts)",
    "encoded_value": "item build (value, attribute dicts)",
    "assemble_item": "item build (value, attribute dicts)",
    "check_fits": "size accounting",
    "_surely_fits": "size accounting",
    "item_room": "size accounting",
    "check_item_size": "size accounting",
    "item_size": "size accounting",
    "number_size": "size accounting",
    "_utf8_size": "size accounting",
    "new_versions": "versions and tokens",
    "new_version": "versions and tokens",
    "new_token": "versions and tokens",
    "_expiry_texts": "versions and tokens",
    "expiry_ms_of": "versions and tokens",
    "decode_many": "decode (items to values)",
    "plain_values": "decode (items to values)",
    "stored_many": "decode (items to values)",
    "_read_many": "decode (items to values)",
    "decode_value": "decode (items to values)",
    "is_expired": "decode (items to values)",
    "expiry_seconds": "decode (items to values)",
    "_numeric": "decode (items to values)",
    "_number": "decode (items to values)",
    # aiodynamo's utils module
    "py2dy": "item build (value, attribute dicts)",
    "serialize": "item build (value, attribute dicts)",
    "low_level_serialize": "item build (value, attribute dicts)",
    "serialize_dict": "item build (value, attribute dicts)",
    "dy2py": "decode (items to values)",
    "deserialize": "decode (items to values)",
    "deserialize_simple_types": "decode (items to values)",
    "deserialize_map": "decode (items to values)",
    "deserialize_number": "decode (items to values)",
}

#: Phases by file (the first marker found in the path wins).
_FILES = [
    ("/aiodynkv/_keys.py", "key validation and encoding"),
    ("/aiodynkv/_store.py", "store call (the per-key loop, checks)"),
    ("/aiodynkv/_requests.py", "request build"),
    ("/aiodynkv/_codec.py", "item build (value, attribute dicts)"),
    ("/aiodynkv/_batch.py", "batch driver (chunks, workers, retries)"),
    ("/aiodynkv/_core.py", "send: admission, deadline, error mapping"),
    ("/aiodynkv/_telemetry.py", "telemetry (spans, metrics, logs)"),
    ("/aiodynkv/_cache.py", "near cache bookkeeping"),
    ("/aiodynkv/_values.py", "values pipeline hooks"),
    ("/aiodynkv/_retry.py", "batch driver (chunks, workers, retries)"),
    ("/aiodynkv/_transport/_wire.py", "JSON dumps/loads"),
    ("/aiodynkv/_transport/_sigv4.py", "signing"),
    ("/aiodynkv/_transport/lean.py", "HTTP (transport, aiohttp, socket)"),
    ("/aiodynkv/", "other aiodynkv"),
    ("/aiodynamo/sign.py", "signing"),
    ("/aiodynamo/credentials.py", "signing"),
    ("/aiodynamo/http/", "HTTP (transport, aiohttp, socket)"),
    ("/aiodynamo/models.py", "request build"),
    ("/aiodynamo/utils.py", "item build (value, attribute dicts)"),
    ("/aiodynamo/client.py", "send: admission, deadline, error mapping"),
    ("/aiodynamo/", "other aiodynamo"),
    ("/opentelemetry/", "telemetry (spans, metrics, logs)"),
    ("/structlog/", "telemetry (spans, metrics, logs)"),
    ("/logging/", "telemetry (spans, metrics, logs)"),
    ("/aiohttp/", "HTTP (transport, aiohttp, socket)"),
    ("/yarl/", "HTTP (transport, aiohttp, socket)"),
    ("/multidict/", "HTTP (transport, aiohttp, socket)"),
    ("/json/", "JSON dumps/loads"),
    ("/hmac.py", "signing"),
    ("/asyncio/", "task scheduling (asyncio)"),
    ("/benchmarks/", "benchmark harness (contender glue)"),
]

#: C functions that are a phase of their own, by a word of their name.
_C_PHASES = [
    (("json", "encode", "decode", "scanner", "scanstring"), "JSON dumps/loads"),
    (("hmac", "sha256", "openssl", "_hashlib", "digest"), "signing"),
    (("socket", "send", "recv", "poll", "select", "epoll"), "HTTP (transport, aiohttp, socket)"),
    (("b64encode", "b64decode", "a2b_base64", "b2a_base64"), "JSON dumps/loads"),
    (("randbits", "token_bytes", "urandom", "token_urlsafe"), "versions and tokens"),
    (("crc32",), "HTTP (transport, aiohttp, socket)"),
]

Func = tuple[str, int, str]


#: Functions whose phase is not their module's, by (module, function).
_SPECIAL = {
    ("/aiodynkv/_store.py", "__getitem__"): "item build (value, attribute dicts)",
    ("/aiodynkv/_batch.py", "<listcomp>"): "item build (value, attribute dicts)",
    ("/aiodynkv/_batch.py", "__iter__"): "item build (value, attribute dicts)",
}


def phase_of(func: Func) -> str | None:
    """The phase of a Python function, or of a C function that is a phase of its own."""
    filename, _, name = func
    for (module, function), phase in _SPECIAL.items():
        if name == function and module in filename:
            return phase
    if filename == "~":
        for words, phase in _C_PHASES:
            if any(w in name for w in words):
                return phase
        return None  # a builtin: its caller's phase
    if name in _FUNCTIONS and ("/aiodynkv/_codec.py" in filename or "/aiodynamo/" in filename):
        return _FUNCTIONS[name]
    for marker, phase in _FILES:
        if marker in filename:
            return phase
    return f"other ({Path(filename).name})"


def calibrate() -> tuple[float, float]:
    """The profiler's own seconds per call of a Python function and of a C builtin.

    Measured as the difference between the same loop with and without cProfile; every
    function's self time is reduced by its calls times this, so that the shares are
    not skewed toward cheap functions called once per key.
    """

    def empty() -> None:
        return None

    data = [1]
    count = 200_000

    def py_loop() -> None:
        for _ in range(count):
            empty()

    def c_loop() -> None:
        for _ in range(count):
            len(data)

    def bare() -> None:
        for _ in range(count):
            pass

    costs = []
    for loop in (py_loop, c_loop, bare):
        best_plain, best_profiled = float("inf"), float("inf")
        for _ in range(3):
            began = time.process_time()
            loop()
            best_plain = min(best_plain, time.process_time() - began)
            profiler = cProfile.Profile(time.process_time)
            began = time.process_time()
            profiler.runcall(loop)
            best_profiled = min(best_profiled, time.process_time() - began)
        costs.append((best_profiled - best_plain) / count)
    py, c, _ = costs
    return max(0.0, py), max(0.0, c)


_OVERHEAD = (0.0, 0.0)


def phases(stats: pstats.Stats) -> dict[str, float]:
    """Self seconds by phase, less the profiler's own cost per call; a builtin's time is
    split over its callers' phases."""
    table: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    py_cost, c_cost = _OVERHEAD
    found: dict[str, float] = defaultdict(float)

    def owner(func: Func, depth: int = 0) -> dict[str, float]:
        """The phases that `func`'s self time goes to, as shares adding up to 1."""
        phase = phase_of(func)
        if phase is not None:
            return {phase: 1.0}
        callers = table.get(func, (0, 0, 0.0, 0.0, {}))[4]
        calls = {c: v[1] for c, v in callers.items()}  # calls from each caller
        total = sum(calls.values())
        if not total or depth > 3:
            return {"other builtins (C)": 1.0}
        shares: dict[str, float] = defaultdict(float)
        for caller, n in calls.items():
            for p, share in owner(caller, depth + 1).items():
                shares[p] += share * n / total
        return shares

    for func, (_, ncalls, tottime, _, _) in table.items():
        own = max(0.0, tottime - ncalls * (c_cost if func[0] == "~" else py_cost))
        for phase, share in owner(func).items():
            found[phase] += own * share
    return found


def top(stats: pstats.Stats, keys: int, n: int) -> list[str]:
    rows = []
    for (filename, line, function), (_, ncalls, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(filename).name}:{line}({function})"
        rows.append((tottime / keys * 1e6, ncalls / keys, where))
    return [f"    {t:7.2f}  {c:6.2f}  {w}" for t, c, w in sorted(rows, reverse=True)[:n]]


class StubStats:
    """The stub's own CPU seconds and requests served (``BenchStub.Stats``)."""

    def __init__(self, stub: Server) -> None:
        self.port = stub.port

    def read(self) -> tuple[float, int]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("POST", "/", body=b"{}", headers={"X-Amz-Target": "BenchStub.Stats"})
            stats = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        return float(stats["cpu_seconds"]), int(stats["requests"])


Batch = Callable[[], Awaitable[int]]


def batches(contender: Contender, workload: str, rng: random.Random) -> Batch:
    """One batch call of the workload on `contender`; returns how many keys it did."""
    if workload == "get_many":
        get_many = contender.get_many
        assert get_many is not None  # noqa: S101

        # Drawn before anything is timed: each call reads the next sample.
        samples = [[key_of(i) for i in rng.sample(range(KEYSPACE), GET_BATCH)] for _ in range(32)]
        turn = iter(range(1 << 30))

        async def read() -> int:
            keys = samples[next(turn) % len(samples)]
            found = await get_many(keys)
            if len(found) != len(keys):
                raise SystemExit(f"{contender.name}: read {len(found)} of {len(keys)} keys")
            return len(keys)

        return read
    set_many = contender.set_many
    assert set_many is not None  # noqa: S101
    items = {f"setmany:{i:06d}": value_of(i, VALUE_SIZE) for i in range(SET_BATCH)}

    async def write() -> int:
        await set_many(items)
        return len(items)

    return write


async def measure(
    calls: dict[str, Batch], per_round: int, rounds: int, stub: StubStats
) -> dict[str, list[dict[str, float]]]:
    """Paired rounds without the profiler: per side and round, keys/s and CPU µs per key."""
    results: dict[str, list[dict[str, float]]] = {side: [] for side in calls}
    order = list(calls)
    for r in range(rounds):
        for side in order if r % 2 == 0 else order[::-1]:
            stub_cpu0, _ = stub.read()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            keys = 0
            for _ in range(per_round):
                keys += await calls[side]()
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            stub_cpu = stub.read()[0] - stub_cpu0
            results[side].append(
                {
                    "keys_per_s": keys / wall,
                    "cpu_us": cpu / keys * 1e6,
                    "stub_us": stub_cpu / keys * 1e6,
                    "wall_us": wall / keys * 1e6,
                }
            )
    return results


async def profiled(call: Batch, per_round: int) -> tuple[pstats.Stats, int]:
    profiler = cProfile.Profile(time.process_time)
    keys = 0
    profiler.enable()
    for _ in range(per_round):
        keys += await call()
    profiler.disable()
    return pstats.Stats(profiler), keys


async def run_workload(
    url: str, workload: str, rounds: int, per_round: int, stub: StubStats, n: int
) -> dict[str, Any]:
    contenders = {side: CONTENDERS[side](url) for side in SIDES}
    rng = random.Random(1234)
    calls: dict[str, Batch] = {}
    for side, contender in contenders.items():
        contender.load()
        await contender.open()
        calls[side] = batches(contender, workload, rng)
    try:
        for call in calls.values():  # warm up: connections, caches, code paths
            await call()
        measured = await measure(calls, per_round, rounds, stub)
        results = {side: await profiled(call, per_round) for side, call in calls.items()}
    finally:
        for contender in contenders.values():
            await contender.close()
    return print_table(workload, measured, results, n)


def _median(rows: list[dict[str, float]], name: str) -> float:
    return statistics.median(row[name] for row in rows)


#: What aiodynkv does per key that aiodynamo does not, by phase.
_OWN = {
    "versions and tokens": "a fresh version and the call's write token in every item",
    "size accounting": "the 400 KB check of every item (from lengths)",
    "key validation and encoding": "every key validated and namespaced before any request",
    "telemetry (spans, metrics, logs)": "one span, metrics and log event per call",
    "near cache bookkeeping": "the near cache's read/write bookkeeping",
    "values pipeline hooks": "the encryption/offload hooks (none configured)",
    "store call (the per-key loop, checks)": "the per-key loop: duplicates, TTL, results",
}


#: Keys per call and per request, by workload: a call is n = keys / chunk requests.
_KEYS = {"get_many": GET_BATCH, "set_many": SET_BATCH}
_CHUNK = {"get_many": 100, "set_many": 25}
#: The phases of the client's work before a chunk can go, and after its reply came.
_BUILD = ("item build (value, attribute dicts)", "request build", "signing")
_DECODE = "decode (items to values)"


def print_table(
    workload: str,
    measured: dict[str, list[dict[str, float]]],
    results: dict[str, tuple[pstats.Stats, int]],
    n: int,
) -> dict[str, Any]:
    """Print one workload's phase table and floors; return its figures."""
    grouped = {
        s: {p: t / keys * 1e6 for p, t in phases(st).items()} for s, (st, keys) in results.items()
    }
    cpu = {s: _median(rows, "cpu_us") for s, rows in measured.items()}
    scale = {s: cpu[s] / (sum(grouped[s].values()) or 1.0) for s in grouped}
    real = {s: {p: us * scale[s] for p, us in g.items()} for s, g in grouped.items()}
    mine, other = SIDES
    names = sorted(
        {p for g in real.values() for p in g},
        key=lambda p: -max(g.get(p, 0) for g in real.values()),
    )
    title = {"get_many": "`get_many` of 1,000 keys", "set_many": "`set_many` of 10,000 items"}
    print(
        f"#### {title[workload]}: µs per key by phase "
        "(client CPU, scaled to the unprofiled total)\n"
    )
    print(f"| phase | {mine} | {other} | difference |")
    print("|---|--:|--:|--:|")
    for p in names:
        a, b = real[mine].get(p, 0.0), real[other].get(p, 0.0)
        if max(a, b) >= 0.05:
            print(f"| {p} | {a:.2f} | {b:.2f} | {a - b:+.2f} |")
    print(
        f"| **client CPU per key, without the profiler** | **{cpu[mine]:.2f}** | "
        f"**{cpu[other]:.2f}** | {cpu[mine] - cpu[other]:+.2f} |"
    )
    stub_us = {s: _median(rows, "stub_us") for s, rows in measured.items()}
    print(
        f"| the stub's CPU per key (its own process) | {stub_us[mine]:.2f} | "
        f"{stub_us[other]:.2f} | {stub_us[mine] - stub_us[other]:+.2f} |"
    )
    wall = {s: _median(rows, "wall_us") for s, rows in measured.items()}
    print(
        f"| wall time per key | {wall[mine]:.2f} | {wall[other]:.2f} | "
        f"{wall[mine] - wall[other]:+.2f} |"
    )
    kps = {s: _median(rows, "keys_per_s") for s, rows in measured.items()}
    ratios = [
        a["keys_per_s"] / b["keys_per_s"]
        for a, b in zip(measured[mine], measured[other], strict=True)
    ]
    print(
        f"| keys/s (median of rounds) | {kps[mine]:,.0f} | {kps[other]:,.0f} | "
        f"**{statistics.median(ratios):.2f}x** (rounds {min(ratios):.2f}-{max(ratios):.2f}) |"
    )
    print()
    own = {p: real[mine].get(p, 0.0) for p in _OWN}
    own_total = sum(own.values())
    parts = "; ".join(f"{_OWN[p]}: {v:.2f}" for p, v in own.items() if v >= 0.05)
    shared = {s: cpu[s] - sum(real[s].get(p, 0.0) for p in _OWN) for s in SIDES}
    # Client-bound (wall close to CPU): the target needs the CPU ratio. The stub serves
    # every request on its own core: no client makes a key take less wall time than
    # the stub's CPU for it.
    cpu_need = cpu[other] / TARGET
    wall_need = wall[other] / TARGET
    ceiling = wall[other] / max(stub_us[mine], 1e-9)
    print(f"Floors of `{workload}` against the {TARGET:g}x target, µs per key:\n")
    print(
        f"- aiodynkv's own work, which aiodynamo does not do: **{own_total:.2f}** by cProfile "
        f"({parts or 'nothing measurable'}); cProfile's time stays inflated for "
        "functions called once per key: the same steps timed without it are below."
    )
    print(
        f"- the work both do (request build, JSON, signing, HTTP, send, scheduling, item "
        f"build/decode): aiodynkv **{shared[mine]:.2f}**, aiodynamo {shared[other]:.2f}."
    )
    print(
        f"- client CPU: {TARGET:g}x needs at most {cpu_need:.2f} (aiodynamo's "
        f"{cpu[other]:.2f} / {TARGET:g}); aiodynkv spends **{cpu[mine]:.2f}**, "
        + (
            f"{cpu[mine] - cpu_need:.2f} over; its shared work alone is "
            + ("over" if shared[mine] > cpu_need else "within")
            + " that budget."
            if cpu[mine] > cpu_need
            else "within it."
        )
    )
    print(
        f"- the stub: {TARGET:g}x needs at most {wall_need:.2f} of wall time per key "
        f"(aiodynamo's {wall[other]:.2f} / {TARGET:g}); the stub alone spends "
        f"**{stub_us[mine]:.2f}** of CPU per key on aiodynkv's requests ({stub_us[other]:.2f} "
        "on aiodynamo's), so a client costing nothing would reach at most "
        f"{ceiling:.2f}x here." + (" Met in this run." if wall[mine] <= wall_need else "")
    )
    # The pipeline: the stub cannot serve a chunk before the client has built it, nor the
    # client decode a reply before the stub has served it. With n chunks per call, per key:
    # C the shared client CPU, S the stub's CPU, B the client's build (items, request,
    # signing) and D its decode, wall >= max(C, S + (B + D) / n, D + (B + S) / n).
    chunks = _KEYS[workload] / _CHUNK[workload]
    build = sum(real[mine].get(p, 0.0) for p in _BUILD)
    decode = real[mine].get(_DECODE, 0.0)
    terms = (
        shared[mine],
        stub_us[mine] + (build + decode) / chunks,
        decode + (build + stub_us[mine]) / chunks,
    )
    floor = wall[other] / max(*terms, 1e-9)
    one_core = wall[other] / max(shared[mine] + stub_us[mine], 1e-9)
    print(
        "- the floor of the keys/s ratio, if aiodynkv's own work cost nothing: aiodynamo's "
        f"{wall[other]:.2f} µs of wall time per key over aiodynkv's least wall time per key, "
        "max(C, S + (B + D) / n, D + (B + S) / n) = "
        f"max({terms[0]:.2f}, {terms[1]:.2f}, {terms[2]:.2f}): the client does its shared "
        f"work C = {shared[mine]:.2f}; the stub serves every chunk (S = {stub_us[mine]:.2f}, "
        "its CPU for aiodynkv's requests) but not the first before the client has built it "
        f"(B = {build:.2f}: item and request build, signing), and the client decodes the last "
        f"reply (D = {decode:.2f}) only after it is served; the client decodes nothing "
        f"before the first reply; n = {chunks:g} chunks per call: **{floor:.2f}x**. That "
        "takes two free cores; where the client and the stub share one (a loaded machine), "
        f"the wall time is at least C + S and the floor {one_core:.2f}x."
    )
    print()
    for side, (stats, keys) in results.items() if n else ():
        print(f"\n{side}: top {n} functions (self µs per key under the profiler, calls per key)")
        print("\n".join(top(stats, keys, n)))
        print()
    return {
        "ratio": statistics.median(ratios),
        "keys_per_s": kps,
        "cpu_us": cpu,
        "stub_us": stub_us,
        "wall_us": wall,
        "shared_us": shared,
        "own_us": own_total,
        "cpu_need_us": cpu_need,
        "stub_ceiling": ceiling,
        "floor": floor,
        "floor_terms_us": terms,
        "floor_one_core": one_core,
        "build_us": build,
        "decode_us": decode,
        "chunks": chunks,
        "target": TARGET,
    }


def direct_steps(workload: str) -> str:
    """aiodynkv's own per-key steps timed without the profiler (best of 7), in µs.

    cProfile's time for a function called once per key stays inflated after the
    correction; these say what the steps cost.
    """
    import timeit

    from aiodynkv import AsyncDynamoKV, _codec

    kv = AsyncDynamoKV(table="bench", endpoint="http://127.0.0.1:1")
    config, keys = kv.config, kv._keys
    token = _codec.new_token()
    room = _codec.item_room(config, token)
    stored, value = "setmany:000001", value_of(1, VALUE_SIZE)
    attr: dict[str, Any] = {"S": value}
    names = {
        "f": _codec._surely_fits,
        "ev": _codec.encoded_value,
        "cf": _codec.check_fits,
        "asm": _codec.assemble_item,
        "enc": keys.encode,
        "c": config,
        "t": token,
        "r": room,
        "s": stored,
        "v": value,
        "a": attr,
        "pk": config.partition_key,
        "va": config.value_attribute,
    }
    steps = {
        "key validation": "enc(s, 'set_many', 'bench')",
        "400 KB bound": "f(s, a, None, r)",
        "value check (type, size, UTF-8, compression)": "ev(c, v, 'set_many', s)",
        "item size check": "cf(c, s, a, None, None, t, 'set_many', s, r)",
        "item with version and token": "asm(c, s, a, None, None, 1234567890123456789, t)",
        "item without them (as aiodynamo's)": "{pk: {'S': s}, va: a}",
    }
    number, per = 20_000, 1
    if workload == "get_many":
        # get_many checks its keys as one batch (`KeyCodec.encode_many`): per key of 1,000.
        names["many"] = keys.encode_many
        names["batch"] = [key_of(i) for i in range(GET_BATCH)]
        steps = {"key validation (a batch of 1,000)": "many(batch, 'get_many', 'bench')"}
        number, per = 20, GET_BATCH
    cost = {
        name: min(timeit.repeat(stmt, globals=names, number=number, repeat=7)) / number / per * 1e6
        for name, stmt in steps.items()
    }
    return "; ".join(f"{name} {us:.2f}" for name, us in cost.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--rounds", type=int, help="paired rounds (default 7, quick 3)")
    parser.add_argument("--top", type=int, default=0, help="also list the top functions")
    parser.add_argument("--workloads", default="get_many,set_many")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()
    rounds = options.rounds or (3 if options.quick else 7)
    stub = start_stub(900)
    try:
        seeded = run_worker(stub, "seed", "aiodynkv", {"keys": KEYSPACE})
        if "error" in seeded:
            raise SystemExit(f"seeding failed: {seeded['error']}")
        stats = StubStats(stub)
        global _OVERHEAD  # noqa: PLW0603 (measured once, before any profile)
        _OVERHEAD = calibrate()
        figures: dict[str, Any] = {}
        for workload in options.workloads.split(","):
            load = os.getloadavg()[0]
            # Rounds long enough (>= ~0.2 s a side) that a scheduler hiccup cannot swing one.
            per_round = 24 if workload == "get_many" else 2
            figures[workload] = asyncio.run(
                run_workload(stub.url, workload, rounds, per_round, stats, options.top)
            )
            print(
                "aiodynkv's own steps per key, timed without the profiler (µs): "
                f"{direct_steps(workload)}.\n"
            )
            print(
                f"Load average (1 min) {load:.2f} before, {os.getloadavg()[0]:.2f} after, "
                f"on {os.cpu_count()} cores; {rounds} paired rounds"
                + (" (noisy: load above 1.0)" if max(load, os.getloadavg()[0]) > 1.0 else "")
                + ".\n"
            )
    finally:
        stub.stop()
    if options.json:
        options.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
