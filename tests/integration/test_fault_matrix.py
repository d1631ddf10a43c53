"""Every public write under generated fault sequences, on both transports, judged by a model.

`tests.faultseq` holds the scripted proxy, the model, the judge and the runner, which
runs many cases at once (`run_cases`: each case its own proxy, store and keys; a case
the load kept from running as scripted runs again, alone at last). The default run
takes a fixed sample (`sampled_cases`: every operation on both transports, every event
on every operation); ``AIODYNKV_FULL_MATRIX=1`` runs the whole matrix (every sequence of
one to three events, ``AIODYNKV_MATRIX_DEPTH`` to cut it) in
``test_full_fault_matrix``. With ``AIODYNKV_MATRIX_RESULTS=<file>`` each case appends
its result as a JSON line; ``python -m tests.fault_matrix_report <file>`` turns them
into the RELIABILITY.md table.

A case passes when its outcome is exact, in doubt (the package's in-doubt error, the
state applied once or not at all) or a definite failure with nothing applied; any
violation (doubled, lost, false outcome, corrupt data, wrong error class, unbounded)
fails it, with the requests the proxy saw, and so does a case that never ran as
scripted (disturbed).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

import aiodynkv
import tests.faultseq
from aiodynkv import AsyncDynamoKV, KVError
from tests.faultseq import (
    EVENTS,
    OPERATIONS,
    STRETCH,
    TRANSPORTS,
    Case,
    Ctx,
    LoopLag,
    Result,
    Run,
    ScriptedFaultProxy,
    all_cases,
    by_pair,
    classify,
    ended_within,
    faulty_store,
    matrix_setup,
    matrix_table,
    no_retry_waits,
    run_cases,
    sampled_cases,
    violation_groups,
)

FULL = os.environ.get("AIODYNKV_FULL_MATRIX") == "1"
DEPTH = int(os.environ.get("AIODYNKV_MATRIX_DEPTH", "3"))
SAMPLE = sampled_cases()


@pytest.fixture(autouse=True)
def _no_waits() -> Iterator[None]:
    with no_retry_waits():
        yield


@pytest_asyncio.fixture
async def seam(moto_endpoint: str) -> AsyncIterator[tuple[AsyncDynamoKV, ScriptedFaultProxy]]:
    async with matrix_setup(moto_endpoint) as found:
        yield found


def _record(results: list[Result]) -> None:
    path = os.environ.get("AIODYNKV_MATRIX_RESULTS")
    if path:
        with Path(path).open("a", encoding="utf-8") as out:
            out.writelines(result.as_json() + "\n" for result in results)


def _explain(result: Result) -> str:
    steps = ", ".join(f"{action}:{event}" for action, event in result.log)
    return (
        f"{result.outcome}: {result.detail} | returned {result.returned} | state "
        f"{result.state} | requests {steps}"
    )


def _failures(results: list[Result]) -> str:
    return "\n".join(
        f"{r.op} [{r.transport}] {'+'.join(r.sequence)}: {_explain(r)}"
        for r in results
        if r.violation
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sampled_fault_sequences(moto_endpoint: str, transport: str) -> None:
    """The sample's cases on one transport (every operation), all at once."""
    cases = [case for case in SAMPLE if case.transport == transport]
    results = await run_cases(cases, moto_endpoint, concurrency=len(cases))
    _record(results)
    assert [(r.op, r.transport, r.sequence) for r in results] == [
        (c.op, c.transport, c.sequence) for c in cases
    ]
    assert not any(r.violation for r in results), _failures(results)


# AIODYNKV_MATRIX_ALONE=trickle plays a trickle only on its own (CI: it lasts a deadline).
ALONE = frozenset(filter(None, os.environ.get("AIODYNKV_MATRIX_ALONE", "").split(",")))
GROUPS = sorted(by_pair(all_cases(DEPTH, alone=ALONE)).items()) if FULL else []


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="the whole matrix runs with AIODYNKV_FULL_MATRIX=1")
@pytest.mark.parametrize(
    "group", [cases for _, cases in GROUPS], ids=[f"{op}|{t}" for (op, t), _ in GROUPS]
)
async def test_full_fault_matrix(moto_endpoint: str, group: list[Case]) -> None:
    """Every sequence of up to `DEPTH` events, for one operation on one transport."""
    results = await run_cases(group, moto_endpoint)
    _record(results)
    assert len(results) == len(group)
    groups = violation_groups(results)
    listing = "\n".join(
        f"{op} [{transport}] {outcome}: {len(found)} sequences, e.g. "
        f"{'+'.join(found[0].sequence)} -> {found[0].detail}"
        for (op, transport, outcome), found in sorted(groups.items())
    )
    assert not groups, matrix_table(results) + "\n" + listing


# -- the harness itself --------------------------------------------------------------


def test_the_sample_is_fixed_and_covers_every_operation_transport_and_event() -> None:
    assert sampled_cases() == SAMPLE  # the same seed gives the same cases
    pairs = {(case.op, case.transport) for case in SAMPLE}
    assert pairs == {(op, t) for op in OPERATIONS for t in TRANSPORTS}
    for op in OPERATIONS:
        met = {event for case in SAMPLE if case.op == op for event in case.sequence}
        assert met == set(EVENTS), op
    assert len(all_cases()) == len(OPERATIONS) * len(TRANSPORTS) * (11 + 11**2 + 11**3)


async def test_the_judge_catches_a_blind_retry_that_adds_twice(
    seam: tuple[AsyncDynamoKV, ScriptedFaultProxy],
) -> None:
    # A caller that retries whatever the first call said: its first incr was applied
    # (the reply lost, the retries throttled), so the second one adds again.
    direct, proxy = seam
    op = OPERATIONS["incr"]
    async with faulty_store(direct, proxy, "lean") as kv:
        ctx = Ctx(direct=direct, kv=kv, key=f"j-{uuid.uuid4().hex[:10]}")
        await op.setup(ctx)
        proxy.play(["applied_lost", "throttle", "throttle"])
        with contextlib.suppress(KVError):
            await kv.incr(ctx.key, 5)
        run = Run(value=await kv.incr(ctx.key, 5), log=list(proxy.log))
        proxy.stop()
        outcome, _, state = await classify(op, run, ctx)
    assert run.value == 20
    assert (outcome, state) == ("doubled", "doubled")


async def test_the_proxy_applies_forwarded_events_only(
    seam: tuple[AsyncDynamoKV, ScriptedFaultProxy],
) -> None:
    direct, proxy = seam
    async with faulty_store(direct, proxy, "lean", max_attempts=1) as kv:
        for event, applied in [("reset", False), ("503", False), ("applied_lost", True)]:
            key = f"p-{uuid.uuid4().hex[:10]}"
            proxy.play([event])
            with contextlib.suppress(KVError):  # only the server's state matters here
                await kv.set(key, "v")
            proxy.stop()
            assert (await direct.get(key, None) == "v") is applied, event


async def test_the_judge_takes_the_in_doubt_error_only_with_a_state_applied_at_most_once(
    seam: tuple[AsyncDynamoKV, ScriptedFaultProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    class WriteInDoubtError(KVError):
        """Stands for the package's in-doubt error (which may not exist yet)."""

    monkeypatch.setattr(aiodynkv, "WriteInDoubtError", WriteInDoubtError, raising=False)
    direct, _ = seam
    op = OPERATIONS["incr"]
    ctx = Ctx(direct=direct, kv=direct, key=f"d-{uuid.uuid4().hex[:10]}")
    await op.setup(ctx)
    run = Run(error=WriteInDoubtError("incr: in doubt"))
    seen = [(await classify(op, run, ctx))[:3:2]]
    await direct.incr(ctx.key, 5)
    seen.append((await classify(op, run, ctx))[:3:2])
    await direct.incr(ctx.key, 5)
    seen.append((await classify(op, run, ctx))[:3:2])
    assert seen == [("in_doubt", "not_applied"), ("in_doubt", "applied"), ("doubled", "doubled")]


async def test_a_case_that_never_runs_as_scripted_is_disturbed_never_a_pass(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every forwarded reply counts as late: the case cannot run as scripted, not even
    # alone, so it ends "disturbed" (a failing outcome) whatever the store returned.
    monkeypatch.setattr(tests.faultseq, "LATE", -1.0)
    monkeypatch.setattr(tests.faultseq, "RERUN_WIDTHS", (1,))
    cases = [Case("incr", "lean", ("bad_crc",)), Case("incr", "lean", ("503",))]
    forwarded, retried = await run_cases(cases, moto_endpoint)
    assert (forwarded.outcome, forwarded.reruns) == ("disturbed", 1)
    assert forwarded.violation
    assert "the server answered after" in forwarded.late
    # the proxy answers a 503 itself; the retry it forwards is late too
    steps = [("UpdateItem", "503"), ("UpdateItem", "pass")]
    assert (retried.outcome, retried.log) == ("disturbed", steps)


async def test_the_proxy_notes_a_held_request_the_client_never_gave_up_on(
    seam: tuple[AsyncDynamoKV, ScriptedFaultProxy],
) -> None:
    direct, proxy = seam
    proxy.hold = 0.3  # shorter than the client's read timeout: no timeout happens
    async with faulty_store(
        direct, proxy, "lean", max_attempts=1, read_timeout=5, connect_timeout=5
    ) as kv:
        proxy.play(["timeout_before_send"])
        start = time.monotonic()
        with contextlib.suppress(KVError):
            await kv.set(f"h-{uuid.uuid4().hex[:10]}", "v")
        assert time.monotonic() - start < 4.5  # no 5 s read timeout fired
        assert proxy.late == ["timeout_before_send: no timeout within 0.3 s"]


async def test_a_late_loop_stretches_a_call_bound_by_its_lag_and_a_hang_still_fails() -> None:
    # The loop is blocked 0.05 s of every 0.06 s: its timers, a deadline among them, fire
    # late, and a call ends late by as much; one that never ends fails all the same.
    async def hog() -> None:
        while True:
            time.sleep(0.05)  # noqa: ASYNC251 - the point: a loop that is behind
            await asyncio.sleep(0.01)

    bound = 0.5
    async with LoopLag(tick=0.01) as lag:
        hogging = asyncio.ensure_future(hog())
        try:
            start = time.monotonic()
            late = asyncio.ensure_future(asyncio.sleep(bound + 0.1))
            assert await ended_within(late, start, bound, lag)
            start = time.monotonic()
            never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            assert not await ended_within(never, start, bound, lag)
            took = time.monotonic() - start
        finally:
            hogging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hogging
    assert bound < took < (1 + STRETCH) * bound + 0.1
    async with LoopLag(tick=0.01) as lag:  # an idle loop: the bound as it is
        start = time.monotonic()
        never = asyncio.get_running_loop().create_future()
        assert not await ended_within(never, start, bound, lag)
        assert time.monotonic() - start < bound + 0.1
