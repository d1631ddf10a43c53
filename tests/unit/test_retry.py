from __future__ import annotations

import time
import types
from typing import Any

import pytest

from aiodynkv import KVValidationError, ThrottledError
from aiodynkv._batch import drive
from aiodynkv._config import KVConfig
from aiodynkv._retry import (
    BACKOFF_CAP,
    backoff,
    longest_backoff,
    poll_delay,
    sleep,
    standard_delay,
)
from aiodynkv._values import read_old_items
from aiodynkv.testing import set_retry_waits


async def test_waits_off_makes_a_retry_wait_zero_and_records_it() -> None:
    started = time.monotonic()
    with set_retry_waits(False) as skipped:
        await sleep(30.0)
        await sleep(0.5)
    assert time.monotonic() - started < 10.0  # not the 30.5 s asked for
    assert skipped == [30.0, 0.5]


async def test_waits_are_on_by_default_and_after_the_switch_is_left() -> None:
    with set_retry_waits(False):
        pass
    started = time.monotonic()
    await sleep(0.05)
    assert time.monotonic() - started >= 0.04


async def test_the_switch_restores_the_state_before_it() -> None:
    outer = set_retry_waits(False)
    try:
        with set_retry_waits(True) as inner:
            started = time.monotonic()
            await sleep(0.05)
            assert time.monotonic() - started >= 0.04
        assert inner == []
        await sleep(10.0)  # off again: no wait
        assert outer.skipped == [10.0]
    finally:
        set_retry_waits(True)


def test_the_switch_takes_only_a_bool() -> None:
    with pytest.raises(KVValidationError, match="enabled must be True or False, not str"):
        set_retry_waits("no")  # type: ignore[arg-type]


def test_longest_backoff_sums_botocores_ceilings() -> None:
    assert longest_backoff("standard", 1) == 0.0
    assert longest_backoff("standard", 8) == 1 + 2 + 4 + 8 + 16 + 20 + 20
    assert longest_backoff("legacy", 4) == pytest.approx(0.05 + 0.1 + 0.2)
    for attempt in range(1, 10):
        assert 0.0 <= standard_delay(attempt) <= min(2.0 ** (attempt - 1), 20.0)


def test_poll_delay_is_equal_jitter_capped_at_the_poll_interval() -> None:
    for attempt in range(40):
        ceiling = min(0.5, 0.02 * 2**attempt)
        assert ceiling / 2 <= poll_delay(attempt, 0.5) <= ceiling


async def test_batch_retries_wait_through_the_policy() -> None:
    calls = 0

    async def send(_request: list[int]) -> list[int] | None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise ThrottledError("slow down")
        return None

    with set_retry_waits(False) as skipped:
        outcome = await drive([[1, 2]], send, concurrency=1, deadline_seconds=60)
    assert outcome.complete and calls == 4
    assert len(skipped) == 3
    assert all(0.0 <= s <= min(BACKOFF_CAP, 0.05 * 2**n) for n, s in enumerate(skipped))


def _fake_core(unprocessed_rounds: int, **fields: Any) -> tuple[Any, list[list[str]]]:
    asked: list[list[str]] = []

    async def send(_op: Any, action: str, request: dict[str, Any], _key: Any) -> Any:
        assert action == "BatchGetItem"
        wanted = request["RequestItems"]["kvt"]
        assert wanted["ConsistentRead"] and wanted["ProjectionExpression"] == "#k, #z"
        keys = [k["pk"]["S"] for k in wanted["Keys"]]
        asked.append(keys)
        if len(asked) <= unprocessed_rounds:
            return {"UnprocessedKeys": {"kvt": {"Keys": wanted["Keys"]}}}
        return {"Responses": {"kvt": [{"pk": {"S": k}} for k in keys]}}

    config = KVConfig(table="kvt", **fields)
    return types.SimpleNamespace(config=config, send=send, abort=None), asked


async def test_old_item_reads_back_off_through_the_policy() -> None:
    core, asked = _fake_core(unprocessed_rounds=2)
    with set_retry_waits(False) as skipped:
        found = await read_old_items(core, None, ["a", "b"])  # type: ignore[arg-type]
    assert sorted(found) == ["a", "b"] and len(asked) == 3
    assert len(skipped) == 2
    assert all(0.0 <= s <= min(BACKOFF_CAP, 0.05 * 2**n) for n, s in enumerate(skipped))


async def test_old_item_reads_give_up_at_the_bound_of_a_single_call() -> None:
    core, asked = _fake_core(unprocessed_rounds=10**6, max_attempts=1, read_timeout=0.3)
    started = time.monotonic()
    found = await read_old_items(core, None, ["a"])  # type: ignore[arg-type]
    assert found == {} and len(asked) >= 2  # retried, then left out: cleanup is best effort
    assert time.monotonic() - started < 10.0  # ~max_attempts x read_timeout, not 30 s


@pytest.mark.parametrize("attempt", [0, 1, 10, 31, 1_100, 10**6])
def test_backoff_stays_within_its_cap_at_any_attempt(attempt: int) -> None:
    # A long batch deadline with retry waits off can count attempts past where
    # 0.05 * 2**attempt still converts to a float.
    wait = backoff(attempt)
    assert 0.0 <= wait <= min(BACKOFF_CAP, 0.05 * 2 ** min(attempt, 30))
