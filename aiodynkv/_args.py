"""Argument checks of the public operations, done before anything is built or sent.

Each raises `TypeError` for a wrong type and `KVValidationError` for a wrong value,
naming the operation and the argument, never the value of a stored item.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from aiodynkv._codec import MAX_COUNTER
from aiodynkv._errors import KVValidationError, shown

__all__ = [
    "MAX_TTL_SECONDS",
    "check_conditions",
    "check_delta",
    "check_version",
    "key_list",
    "pair_of",
    "ttl_seconds",
]

MAX_TTL_SECONDS = 100 * 365 * 24 * 3600


def ttl_seconds(ttl: object, operation: str, *, required: bool = False) -> float | None:
    """A TTL argument as seconds (None means no expiry).

    Raises:
        TypeError: ttl is not a number, a timedelta or None.
        KVValidationError: ttl is not a positive finite duration of at most 100 years,
            or is None where an expiry is required (`expire`).
    """
    if ttl is None:
        if required:
            raise KVValidationError(
                f"{operation}: ttl must not be None (use persist)", operation=operation
            )
        return None
    if isinstance(ttl, timedelta):
        seconds = ttl.total_seconds()
    elif isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
        seconds = float(ttl)
    else:
        raise TypeError(
            f"{operation}: ttl must be seconds (int or float) or a timedelta, "
            f"not {type(ttl).__name__}"
        )
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TTL_SECONDS):
        raise KVValidationError(
            f"{operation}: ttl must be > 0 and <= {MAX_TTL_SECONDS} seconds (got {shown(ttl)})",
            operation=operation,
        )
    return seconds


def check_delta(delta: object, operation: str, name: str = "delta") -> int:
    """Validate a counter increment (or, with `name`, a counter's new value)."""
    if not isinstance(delta, int) or isinstance(delta, bool):
        raise TypeError(f"{operation}: {name} must be an int, not {type(delta).__name__}")
    if abs(delta) > MAX_COUNTER:
        raise KVValidationError(
            f"{operation}: {name} must fit in DynamoDB's 38 digits", operation=operation
        )
    return delta


def check_version(version: object, operation: str) -> int:
    """Validate an ``if_version`` argument."""
    if not isinstance(version, int) or isinstance(version, bool):
        raise TypeError(f"{operation}: if_version must be an int, not {type(version).__name__}")
    return version


def check_conditions(if_absent: object, if_version: object, operation: str) -> None:
    """Validate the conditions of a write."""
    if not isinstance(if_absent, bool):
        raise TypeError(f"{operation}: if_absent must be a bool, not {type(if_absent).__name__}")
    if if_version is not None:
        check_version(if_version, operation)
        if if_absent:
            raise KVValidationError(
                f"{operation}: pass if_absent or if_version, not both", operation=operation
            )


def key_list(keys: Iterable[str], operation: str) -> list[str]:
    """The keys of a batch call as a list (a lone str is refused, not iterated)."""
    if isinstance(keys, (str, bytes)):
        raise TypeError(
            f"{operation}: keys must be an iterable of str, not a single {type(keys).__name__}"
        )
    return list(keys)


def pair_of(pair: object) -> tuple[str, Any]:
    """One (key, value) pair of `set_many` (the message never quotes the value)."""
    if not isinstance(pair, tuple) or len(pair) != 2:
        raise TypeError(
            f"set_many: items must be a mapping or (key, value) pairs, got a {type(pair).__name__}"
        )
    return pair[0], pair[1]
