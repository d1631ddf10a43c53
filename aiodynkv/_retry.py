"""The one retry policy: what is retried on the wire, how long to wait, and the waiting.

- The lean transport follows botocore. Standard mode is ``botocore.retries.standard``:
  the throttling and transient codes, HTTP 500/502/503/504, a retry quota of 500 tokens
  (5 per retry, 10 after a timeout), and ``random() * min(2 ** (attempt - 1), 20)`` seconds
  of backoff. Legacy mode is botocore's ``_retry.json`` for DynamoDB, with
  ``0.05 * 2 ** (attempt - 1)`` seconds and no quota.
- Batches (unprocessed items), the value pipeline's batch reads and a transaction that
  meets one in progress wait `backoff`: capped exponential with full jitter.
- A lock held by another owner is polled after `poll_delay` (equal jitter, capped at the
  lock's poll interval). That is a wait for someone else, not a retry: it keeps its
  timing in tests.

Every retry awaits `sleep`. `set_retry_waits(False)` makes those waits zero (the retries
themselves, and when a call gives up, stay the same), as stamina's ``set_testing`` does.
"""

from __future__ import annotations

import asyncio
import random
from types import TracebackType
from typing import Final, Literal

from aiodynkv._errors import KVValidationError

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "MAX_BACKOFF",
    "NO_RETRY_INCREMENT",
    "POLL_BASE",
    "QUOTA_CAPACITY",
    "RETRY_COST",
    "RETRY_MODES",
    "THROTTLING_CODES",
    "TIMEOUT_RETRY_COST",
    "TRANSIENT_CODES",
    "TRANSIENT_STATUSES",
    "RetryQuota",
    "RetryWaits",
    "backoff",
    "legacy_delay",
    "legacy_retryable",
    "longest_backoff",
    "longest_delay",
    "poll_delay",
    "set_retry_waits",
    "sleep",
    "standard_delay",
    "standard_retryable",
]

# botocore.retries.standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES
THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
# TransientRetryableChecker's codes, plus the errors DynamoDB's service model marks
# ``retryable`` (ModeledRetryableChecker): only ReplicatedWriteConflictException today.
TRANSIENT_CODES: Final = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "ReplicatedWriteConflictException",
    }
)
TRANSIENT_STATUSES: Final = frozenset({500, 502, 503, 504})
_STANDARD_CODES: Final = THROTTLING_CODES | TRANSIENT_CODES

# botocore/data/_retry.json: the __default__ policies plus DynamoDB's own.
_LEGACY_STATUSES: Final = frozenset({429, 500, 502, 503, 504, 509})
_LEGACY_CODES: Final = frozenset(
    {
        ("Throttling", 400),
        ("ThrottlingException", 400),
        ("ThrottledException", 400),
        ("RequestThrottledException", 400),
        ("ProvisionedThroughputExceededException", 400),
        ("TransactionInProgressException", 400),
        ("ReplicatedWriteConflictException", 409),
    }
)
_LEGACY_BASE_DELAY: Final = 0.05

QUOTA_CAPACITY: Final = 500
RETRY_COST: Final = 5
TIMEOUT_RETRY_COST: Final = 10
NO_RETRY_INCREMENT: Final = 1
MAX_BACKOFF: Final = 20.0
RETRY_MODES: Final = frozenset({"standard", "adaptive", "legacy"})

BACKOFF_BASE: Final = 0.05
BACKOFF_CAP: Final = 2.0
POLL_BASE: Final = 0.02


class RetryQuota:
    """botocore's ``RetryQuota`` (one per transport, like one per client in botocore)."""

    __slots__ = ("available", "capacity")

    def __init__(self, capacity: int = QUOTA_CAPACITY) -> None:
        self.capacity = capacity
        self.available = capacity

    def acquire(self, amount: int) -> bool:
        if amount > self.available:
            return False
        self.available -= amount
        return True

    def release(self, amount: int) -> None:
        self.available = min(self.capacity, self.available + amount)


def standard_retryable(code: str, status: int) -> bool:
    return code in _STANDARD_CODES or status in TRANSIENT_STATUSES


def legacy_retryable(code: str, status: int) -> bool:
    return status in _LEGACY_STATUSES or (code, status) in _LEGACY_CODES


def longest_delay(mode: str, attempt: int) -> float:
    """The longest wait after failed attempt `attempt` (1-based) in a retry mode."""
    if mode == "legacy":
        return _LEGACY_BASE_DELAY * 2.0 ** (attempt - 1)
    return min(2.0 ** (attempt - 1), MAX_BACKOFF)


def longest_backoff(mode: str, attempts: int) -> float:
    """The longest total wait between `attempts` attempts in a retry mode."""
    return sum(longest_delay(mode, n) for n in range(1, attempts))


def standard_delay(attempt: int) -> float:
    return random.random() * longest_delay("standard", attempt)  # noqa: S311 - jitter


def legacy_delay(attempt: int) -> float:
    return longest_delay("legacy", attempt)


def backoff(attempt: int) -> float:
    """Capped exponential backoff with full jitter, in seconds (`attempt` from 0)."""
    return random.uniform(0.0, min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt)))  # noqa: S311


def poll_delay(attempt: int, cap: float) -> float:
    """Exponential wait with equal jitter, at most `cap` seconds (`attempt` from 0)."""
    ceiling = min(cap, POLL_BASE * (2 ** min(attempt, 30)))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter


class _Waits:
    __slots__ = ("enabled", "skipped")

    def __init__(self) -> None:
        self.enabled = True
        self.skipped: list[float] | None = None


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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        _WAITS.enabled, _WAITS.skipped = self._previous
        return False


def set_retry_waits(enabled: bool) -> RetryWaits:
    """Turn the waits between retries on (the default) or off, for tests.

    Off, every retry of the transport, of batches and of transactions happens at once;
    what is retried, and when a call gives up, do not change. Botocore's own waits
    (``transport="botocore"``) are botocore's and stay. Usable as a plain call or as a
    context manager that restores the previous state on exit::

        with aiodynkv.testing.set_retry_waits(False) as skipped:
            ...  # skipped: the waits (seconds) that were left out

    Args:
        enabled: False to make every retry wait zero.

    Returns:
        A context manager restoring the state from before this call.

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
