"""The one retry policy: what is retried on the wire, how long to wait, and the waiting.

- The lean transport follows botocore (``max_attempts`` counts every attempt). Standard
  and adaptive mode as ``botocore.retries.standard``: its throttling and transient codes,
  the codes DynamoDB's model marks retryable, HTTP 500/502/503/504 and failed
  connections; ``random() * min(2 ** (attempt - 1), 20)`` s; a quota of 500 tokens, 5 a
  retry (10 after a timeout), refunded on success. Legacy mode as botocore's
  ``_retry.json`` for DynamoDB, ``0.05 * 2 ** (attempt - 1)`` s, no quota.
- Batches, the pipeline's batch reads and a transaction in progress wait `backoff`;
  a lock held by another owner is polled after `poll_delay` (a wait, not a retry).

Every retry awaits `sleep`; `set_retry_waits(False)` makes those waits zero, as
stamina's ``set_testing`` does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import Final

from aiodynkv._errors import KVValidationError

__all__ = [
    "BACKOFF_CAP",
    "NO_RETRY_INCREMENT",
    "QUOTA_CAPACITY",
    "RETRY_COST",
    "RETRY_MODES",
    "TIMEOUT_RETRY_COST",
    "RetryWaits",
    "backoff",
    "legacy_delay",
    "legacy_retryable",
    "longest_backoff",
    "poll_delay",
    "set_retry_waits",
    "sleep",
    "standard_delay",
    "standard_retryable",
]

# botocore.retries.standard: ThrottledRetryableChecker's and TransientRetryableChecker's
# codes, and what DynamoDB's model marks ``retryable`` (ReplicatedWriteConflictException).
_THROTTLING = (
    "Throttling ThrottlingException ThrottledException RequestThrottledException "
    "ProvisionedThroughputExceededException TransactionInProgressException"
)
_STANDARD_CODES: Final = frozenset(
    f"{_THROTTLING} TooManyRequestsException RequestLimitExceeded BandwidthLimitExceeded "
    "LimitExceededException RequestThrottled SlowDown PriorRequestNotComplete "
    "EC2ThrottledException RequestTimeout RequestTimeoutException "
    "ReplicatedWriteConflictException".split()
)
_STANDARD_STATUSES: Final = frozenset({500, 502, 503, 504})
# botocore/data/_retry.json: the __default__ policies plus DynamoDB's own.
_LEGACY_STATUSES: Final = frozenset({429, 500, 502, 503, 504, 509})
_LEGACY_CODES: Final = frozenset(
    {(code, 400) for code in _THROTTLING.split()} | {("ReplicatedWriteConflictException", 409)}
)

QUOTA_CAPACITY: Final = 500
RETRY_COST: Final = 5
TIMEOUT_RETRY_COST: Final = 10
NO_RETRY_INCREMENT: Final = 1
RETRY_MODES: Final = frozenset({"standard", "adaptive", "legacy"})
BACKOFF_CAP: Final = 2.0


def standard_retryable(code: str, status: int) -> bool:
    return code in _STANDARD_CODES or status in _STANDARD_STATUSES


def legacy_retryable(code: str, status: int) -> bool:
    return status in _LEGACY_STATUSES or (code, status) in _LEGACY_CODES


def _longest_delay(mode: str, attempt: int) -> float:
    """The longest wait after failed attempt `attempt` (1-based) in a retry mode."""
    if mode == "legacy":
        return 0.05 * 2.0 ** (attempt - 1)
    return min(2.0 ** (attempt - 1), 20.0)


def longest_backoff(mode: str, attempts: int) -> float:
    """The longest total wait between `attempts` attempts in a retry mode."""
    return sum(_longest_delay(mode, n) for n in range(1, attempts))


def standard_delay(attempt: int) -> float:
    return random.random() * _longest_delay("standard", attempt)  # noqa: S311 - jitter


def legacy_delay(attempt: int) -> float:
    return _longest_delay("legacy", attempt)


def backoff(attempt: int) -> float:
    """Capped exponential backoff with full jitter, in seconds (`attempt` from 0)."""
    return random.uniform(0.0, min(BACKOFF_CAP, 0.05 * (2 ** min(attempt, 30))))  # noqa: S311


def poll_delay(attempt: int, cap: float) -> float:
    """Exponential wait with equal jitter, at most `cap` seconds (`attempt` from 0)."""
    ceiling = min(cap, 0.02 * (2 ** min(attempt, 30)))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter


@dataclasses.dataclass(slots=True)
class _Waits:
    enabled: bool = True
    skipped: list[float] | None = None


_WAITS: Final = _Waits()


async def sleep(seconds: float) -> None:
    """Wait before a retry: `seconds`, or no time at all while retry waits are off."""
    if _WAITS.enabled:
        await asyncio.sleep(seconds)
        return
    if _WAITS.skipped is not None:
        _WAITS.skipped.append(seconds)
    await asyncio.sleep(0)  # still let other tasks run, as a wait would


class RetryWaits:
    """What `set_retry_waits` returns: as a context manager, it restores the previous state.

    Entered, it gives the list of the waits skipped (in seconds) while waits are off.
    """

    __slots__ = ("_previous", "skipped")

    def __init__(self, previous: tuple[bool, list[float] | None], skipped: list[float]) -> None:
        self._previous = previous
        self.skipped = skipped

    def __enter__(self) -> list[float]:
        return self.skipped

    def __exit__(self, *exc_info: object) -> None:
        _WAITS.enabled, _WAITS.skipped = self._previous


def set_retry_waits(enabled: bool) -> RetryWaits:
    """Turn the waits between retries on (the default) or off, for tests.

    Off, every retry of the transport, of batches and of transactions happens at once;
    what is retried, and when a call gives up, do not change (``transport="botocore"``
    keeps botocore's own waits). A plain call, or a context manager that restores the
    previous state::

        with aiodynkv.testing.set_retry_waits(False) as skipped:
            ...  # skipped: the waits (seconds) that were left out

    Raises:
        KVValidationError: `enabled` is not a bool.
    """
    if not isinstance(enabled, bool):
        raise KVValidationError(
            f"set_retry_waits: enabled must be True or False, not {type(enabled).__name__}",
            operation="set_retry_waits",
        )
    previous = (_WAITS.enabled, _WAITS.skipped)
    skipped: list[float] = []
    _WAITS.enabled = enabled
    _WAITS.skipped = None if enabled else skipped
    return RetryWaits(previous, skipped)
