"""botocore's retry rules, reproduced for the lean transport.

Standard mode is ``botocore.retries.standard``: the throttling and transient codes,
HTTP 500/502/503/504, a retry quota of 500 tokens (5 per retry, 10 after a timeout), and
``random() * min(2 ** (attempt - 1), 20)`` seconds of backoff. Legacy mode is botocore's
``_retry.json`` for DynamoDB, with ``0.05 * 2 ** (attempt - 1)`` seconds and no quota.
"""

from __future__ import annotations

import random
from typing import Final

__all__ = [
    "MAX_BACKOFF",
    "NO_RETRY_INCREMENT",
    "QUOTA_CAPACITY",
    "RETRY_COST",
    "RETRY_MODES",
    "THROTTLING_CODES",
    "TIMEOUT_RETRY_COST",
    "TRANSIENT_CODES",
    "TRANSIENT_STATUSES",
    "RetryQuota",
    "legacy_delay",
    "legacy_retryable",
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


def standard_delay(attempt: int) -> float:
    return random.random() * min(2.0 ** (attempt - 1), MAX_BACKOFF)  # noqa: S311 - jitter


def legacy_delay(attempt: int) -> float:
    return _LEGACY_BASE_DELAY * 2.0 ** (attempt - 1)
