"""The memory transport checked against real servers: the same random programs, compared.

Each program is a seeded random sequence of store operations on a few keys (writes,
conditional writes, counters, expiry with a frozen clock, batches and, where the
server has them, transactions). It runs on `AsyncDynamoKV` over the memory
transport, over moto and over dynalite, each on a fresh table, with the version
bases drawn from one seeded generator, so that a correct memory transport gives
exactly the same results and leaves exactly the same items (read back with a raw
Scan). ``AIODYNKV_DIFF_SEEDS`` runs more seeds (default 3).
"""

from __future__ import annotations

import os
import random
import secrets
import uuid
from typing import Any

import pytest

from aiodynkv import AsyncDynamoKV, KVError
from aiodynkv._codec import TOKEN
from tests.conftest import Clock, raw_call

pytestmark = pytest.mark.asyncio

SEEDS = range(int(os.environ.get("AIODYNKV_DIFF_SEEDS", "3")))
STEPS = 45
KEYS = ("a", "b", "c", "d", "ns:e")

Op = tuple[Any, ...]


class _Randomness:
    """Stands in for the codec's random source: version bases from a seed, tokens unique."""

    def __init__(self) -> None:
        self._bases = random.Random(0)

    def reset(self, seed: int) -> None:
        self._bases = random.Random(seed)

    def getrandbits(self, bits: int) -> int:
        if bits == TOKEN_BITS:
            # Unique per run: a server refuses a transaction token reused on another payload.
            return secrets.randbits(bits)
        return self._bases.getrandbits(bits)


TOKEN_BITS = 96  # a write token's (`_codec.new_token`); versions draw 63 bits at a time


@pytest.fixture
def randomness(monkeypatch: pytest.MonkeyPatch) -> _Randomness:
    fake = _Randomness()
    monkeypatch.setattr("aiodynkv._codec._random", fake)
    return fake


def _value(rng: random.Random) -> str | bytes:
    size = rng.choice((0, 1, 5, 40, 20_000))  # 20 kB: compressed (a B value and its flag)
    if rng.random() < 0.5:
        return "".join(rng.choice("xyzé✓ ") for _ in range(size))
    return rng.randbytes(size)


def _ttl(rng: random.Random) -> float | None:
    return rng.choice((None, None, 1, 5, 30, 2.5))


def _program(seed: int, *, transactions: bool) -> list[Op]:
    rng = random.Random(seed)

    def step() -> Op:  # noqa: PLR0911 (one return per kind of operation)
        key = rng.choice(KEYS)
        kind = rng.choice(
            ("set", "set", "get", "version", "delete", "incr", "incr", "counter", "expire",
             "persist", "ttl", "set_many", "get_many", "delete_many", "advance", "listing",
             "items", "exists", "clear")
            + (("tx", "tx", "snapshot") if transactions else ())
        )  # fmt: skip
        if kind == "set":
            mode = rng.choice(("plain", "plain", "if_absent", "current", "stale"))
            return ("set", key, _value(rng), _ttl(rng), mode)
        if kind == "delete":
            return ("delete", key, rng.choice(("plain", "plain", "current", "stale")))
        if kind == "incr":
            # Not 0: moto leaves an unchanged attribute out of UPDATED_NEW (dynalite and the
            # memory transport return it); test_memory_transport.py covers that case.
            return ("incr", key, rng.choice((-3, -1, 1, 2, 5)), _ttl(rng))
        if kind == "counter":
            return ("counter", key, rng.randint(-100, 100), _ttl(rng))
        if kind == "expire":
            return ("expire", key, rng.choice((1, 10, 100)))
        if kind == "set_many":
            chosen = rng.sample(KEYS, rng.randint(1, 3))
            return ("set_many", {k: _value(rng) for k in chosen}, _ttl(rng))
        if kind in ("get_many", "delete_many", "snapshot"):
            return (kind, rng.sample(KEYS, rng.randint(1, 4)))
        if kind == "advance":
            return ("advance", rng.choice((0.5, 1.5, 4, 20)))
        if kind == "tx":
            actions: list[tuple[str, str, str | bytes, int]] = []
            for target in rng.sample(KEYS, rng.randint(1, 3)):
                action = rng.choice(("set", "delete", "incr", "exists", "absent", "version"))
                actions.append((action, target, _value(rng), rng.randint(1, 4)))
            return ("tx", actions)
        if kind == "clear" and rng.random() < 0.7:  # keep clearing rare
            return ("exists", key)
        return (kind, key)  # get, version, persist, ttl, listing, items, exists, clear

    return [step() for _ in range(STEPS)]


async def _apply(kv: AsyncDynamoKV, op: Op, versions: dict[str, int], clock: Clock) -> Any:  # noqa: PLR0911, PLR0912 (one branch per operation)
    kind = op[0]
    if kind == "set":
        _, key, value, ttl, mode = op
        if mode == "if_absent":
            return await kv.set(key, value, ttl=ttl, if_absent=True)
        if mode in ("current", "stale"):
            version = versions.get(key, 0) - (mode == "stale")
            return await kv.set(key, value, ttl=ttl, if_version=version)
        return await kv.set(key, value, ttl=ttl)
    if kind == "get":
        return await kv.get(op[1], None)
    if kind == "version":
        value, version = await kv.get_with_version(op[1])
        versions[op[1]] = version
        return value, version
    if kind == "delete":
        _, key, mode = op
        if mode == "plain":
            return await kv.delete(key)
        return await kv.delete(key, if_version=versions.get(key, 0) - (mode == "stale"))
    if kind == "incr":
        return await kv.incr(op[1], op[2], ttl=op[3])
    if kind == "counter":
        return await kv.set_counter(op[1], op[2], ttl=op[3])
    if kind == "expire":
        return await kv.expire(op[1], op[2])
    if kind == "persist":
        return await kv.persist(op[1])
    if kind == "ttl":
        return await kv.ttl(op[1])
    if kind == "set_many":
        return await kv.set_many(op[1], ttl=op[2])
    if kind == "get_many":
        return await kv.get_many(op[1])
    if kind == "snapshot":
        return await kv.get_many(op[1], snapshot=True)
    if kind == "delete_many":
        return await kv.delete_many(op[1])
    if kind == "advance":
        clock.advance(op[1])
        return None
    if kind == "listing":
        return sorted([key async for key in kv.keys()])
    if kind == "items":
        found = [(i.key, i.value, i.expires_at, i.version) async for i in kv.items()]
        return sorted(found, key=lambda entry: entry[0])
    if kind == "exists":
        return await kv.exists(op[1])
    if kind == "clear":
        return await kv.clear()
    async with kv.transaction() as tx:  # "tx"
        for action, key, value, number in op[1]:
            if action == "set":
                tx.set(key, value)
            elif action == "delete":
                tx.delete(key)
            elif action == "incr":
                tx.incr(key, number)
            elif action == "version":
                tx.check(key, version=versions.get(key, 0))
            else:
                tx.check(key, exists=action == "exists")
    return "committed"


async def _outcome(kv: AsyncDynamoKV, op: Op, versions: dict[str, int], clock: Clock) -> Any:
    """What `op` returned, or the name of the error it raised."""
    try:
        return await _apply(kv, op, versions, clock)
    except KVError as exc:
        return type(exc).__name__
    except TypeError as exc:  # incr of a string value
        return f"TypeError: {exc}"


async def _run(
    program: list[Op], seed: int, randomness: _Randomness, clock: Clock, **where: Any
) -> tuple[list[Any], dict[str, Any]]:
    """The results of `program` on a fresh table, and the items it leaves (tokens masked)."""
    randomness.reset(seed)
    clock.offset = 0.0
    table = f"diff-{uuid.uuid4().hex[:12]}"
    versions: dict[str, int] = {}
    async with AsyncDynamoKV(table=table, create_table=True, **where) as kv:
        try:
            results = [await _outcome(kv, op, versions, clock) for op in program]
            items = await _raw_items(kv)
        finally:
            await raw_call(kv, "DeleteTable", {"TableName": table})
    return results, items


async def _raw_items(kv: AsyncDynamoKV) -> dict[str, Any]:
    items: dict[str, Any] = {}
    request: dict[str, Any] = {"TableName": kv.config.table, "ConsistentRead": True}
    while True:
        page = await raw_call(kv, "Scan", request)
        for item in page.get("Items", []):
            # Tokens are unique per run; that an item carries one is what must agree.
            item[TOKEN] = {"S": "<token>"} if TOKEN in item else None
            items[item[kv.config.partition_key]["S"]] = item
        if not page.get("LastEvaluatedKey"):
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _first_difference(
    program: list[Op], memory: list[Any], server: list[Any], name: str
) -> str | None:
    for position, (op, ours, theirs) in enumerate(zip(program, memory, server, strict=True)):
        if ours != theirs:
            shown = tuple(x if not isinstance(x, (str, bytes)) or len(x) < 50 else "…" for x in op)
            return f"step {position} {shown}: memory gave {ours!r}, {name} gave {theirs!r}"
    return None


@pytest.mark.parametrize("seed", SEEDS)
async def test_memory_transport_matches_moto(
    seed: int, moto_endpoint: str, randomness: _Randomness, clock: Clock
) -> None:
    program = _program(seed, transactions=True)
    memory = await _run(program, seed, randomness, clock, transport="memory")
    moto = await _run(program, seed, randomness, clock, endpoint=moto_endpoint)
    assert _first_difference(program, memory[0], moto[0], "moto") is None
    assert memory[1] == moto[1]


@pytest.mark.parametrize("seed", SEEDS)
async def test_memory_transport_matches_dynalite(
    seed: int, dynalite_endpoint: str, randomness: _Randomness, clock: Clock
) -> None:
    program = _program(seed, transactions=False)  # dynalite has no transactions
    memory = await _run(program, seed, randomness, clock, transport="memory")
    dynalite = await _run(program, seed, randomness, clock, endpoint=dynalite_endpoint)
    assert _first_difference(program, memory[0], dynalite[0], "dynalite") is None
    assert memory[1] == dynalite[1]


async def test_the_programs_exercise_every_outcome(randomness: _Randomness, clock: Clock) -> None:
    """The programs are not vacuous: they meet failed conditions, expiry and errors."""
    outcomes: set[str] = set()
    for seed in SEEDS:
        results, items = await _run(
            _program(seed, transactions=True), seed, randomness, clock, transport="memory"
        )
        outcomes.update(type(r).__name__ if not isinstance(r, str) else r for r in results)
        outcomes.update("item" for _ in items)
    assert {"bool", "item", "ConditionFailedError"} <= outcomes, outcomes
