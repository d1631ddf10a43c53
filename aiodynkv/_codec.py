"""Values to DynamoDB attributes and back, item size as DynamoDB counts it, TTLs, JSON.

str is stored as S, bytes as B, counters as N. A value larger than the
compression threshold is stored zlib-compressed as B with the flag attribute
``z`` saying what it was (``"s"`` text, ``"b"`` bytes); reads undo it, and items
written without compression read as before.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiodynkv._errors import KVValidationError, ValueTooLargeError

__all__ = [
    "COMPRESSION_FLAG",
    "MAX_COUNTER",
    "MAX_ITEM_BYTES",
    "MAX_TTL_SECONDS",
    "AttributeValue",
    "Item",
    "Value",
    "build_item",
    "check_conditions",
    "check_delta",
    "check_item_size",
    "check_version",
    "decode_value",
    "encode_value",
    "expiry_of",
    "from_json",
    "is_expired",
    "item_size",
    "key_list",
    "new_version",
    "pair_of",
    "number_size",
    "to_json",
]

from aiodynkv._protocol import Value

if TYPE_CHECKING:
    from aiodynkv._config import KVConfig
AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

MAX_ITEM_BYTES = 409_600
MAX_TTL_SECONDS = 100 * 365 * 24 * 3600
MAX_COUNTER = 10**38 - 1
COMPRESSION_FLAG = "z"
_COMPRESSION_LEVEL = 6


def encode_value(
    value: object, threshold: int | None, operation: str
) -> tuple[AttributeValue, str | None]:
    """Turn a user value into its attribute value and compression flag.

    Args:
        value: str or bytes (bytearray and memoryview are stored as bytes).
        threshold: Compress values larger than this many bytes; None never compresses.
        operation: The store operation, for the error message.

    Returns:
        The attribute value (``{"S": ...}`` or ``{"B": ...}``) and ``"s"``/``"b"`` when
        the value was compressed, else None.

    Raises:
        TypeError: The value is neither str nor bytes.
        KVValidationError: A str holds lone surrogates and cannot be stored as UTF-8.
    """
    if type(value) is str:
        if threshold is None or len(value) <= threshold // 4:
            # Short text cannot exceed the threshold even at 4 bytes per character.
            return {"S": value}, None
        try:
            raw = value.encode()
        except UnicodeEncodeError:
            raise KVValidationError(
                f"{operation}: value is not valid UTF-8 text (lone surrogate)", operation=operation
            ) from None
        if len(raw) > threshold:
            packed = zlib.compress(raw, _COMPRESSION_LEVEL)
            if len(packed) < len(raw):
                return {"B": packed}, "s"
        return {"S": value}, None
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if threshold is not None and len(raw) > threshold:
            packed = zlib.compress(raw, _COMPRESSION_LEVEL)
            if len(packed) < len(raw):
                return {"B": packed}, "b"
        return {"B": raw}, None
    if isinstance(value, str):
        return encode_value(str(value), threshold, operation)
    raise TypeError(
        f"{operation}: value must be str or bytes, not {type(value).__name__} "
        "(use set_json for other types)"
    )


def decode_value(item: Item, value_attribute: str) -> Value:
    """Return the user value stored in an item (str, bytes or a counter's int)."""
    attr = item[value_attribute]
    flag = item.get(COMPRESSION_FLAG)
    if flag is not None:
        raw = zlib.decompress(attr["B"])
        return raw.decode() if flag["S"] == "s" else raw
    if "S" in attr:
        return str(attr["S"])
    if "B" in attr:
        return bytes(attr["B"])
    return int(Decimal(attr["N"]))


def number_size(text: str) -> int:
    """Bytes DynamoDB counts for a Number: about one per two significant digits, plus one."""
    try:
        sign, digits, exponent = Decimal(text).normalize().as_tuple()
    except InvalidOperation:
        return len(text)
    if digits == (0,):
        return 1
    count = len(digits)
    # Position of the first significant digit decides the digit pairing.
    lead_exponent = count - 1 + int(exponent)
    pad = 0 if (count % 2 or lead_exponent % 2) else 1
    return 1 + math.ceil(count / 2) + pad + sign


def item_size(item: Item) -> int:
    """Size of an item as DynamoDB counts it: UTF-8 attribute names plus value bytes."""
    total = 0
    for name, attr in item.items():
        total += len(name.encode())
        if "S" in attr:
            total += len(attr["S"].encode())
        elif "B" in attr:
            total += len(attr["B"])
        elif "N" in attr:
            total += number_size(attr["N"])
        else:  # pragma: no cover - we write only S, B and N
            total += len(json.dumps(attr))
    return total


def check_item_size(item: Item, operation: str, table: str, key: str) -> None:
    """Raise `ValueTooLargeError` if the item exceeds 400 KB as DynamoDB counts it."""
    try:
        size = item_size(item)
    except UnicodeEncodeError:
        raise KVValidationError(
            f"{operation}: value is not valid UTF-8 text (lone surrogate)",
            operation=operation,
            table=table,
            key=key,
        ) from None
    if size > MAX_ITEM_BYTES:
        raise ValueTooLargeError(
            f"{operation}: item for key {key[:64]!r} is {size:,} bytes; DynamoDB allows at most "
            f"{MAX_ITEM_BYTES:,} (400 KB) per item, names and values included",
            size=size,
            limit=MAX_ITEM_BYTES,
            operation=operation,
            table=table,
            key=key,
        )


def build_item(
    config: KVConfig,
    stored: str,
    value: object,
    expires: int | None,
    version: int,
    operation: str,
    key: str,
) -> Item:
    """The whole item a write stores, size-checked before anything is sent.

    Raises:
        TypeError: The value is not str or bytes.
        ValueTooLargeError: The item would exceed 400 KB.
    """
    attr, flag = encode_value(value, config.compress_threshold, operation)
    item: Item = {
        config.partition_key: {"S": stored},
        config.value_attribute: attr,
        config.version_attribute: {"N": str(version)},
    }
    if expires is not None:
        item[config.ttl_attribute] = {"N": str(expires)}
    if flag is not None:
        item[COMPRESSION_FLAG] = {"S": flag}
    check_item_size(item, operation, config.table, key)
    return item


def expiry_of(ttl: object, operation: str, now: float | None = None) -> int | None:
    """Epoch second at which a value set now with this TTL expires.

    Rounded up, so an item never expires before its TTL has passed.

    Raises:
        TypeError: ttl is not a number, a timedelta or None.
        KVValidationError: ttl is not a positive finite duration of at most 100 years.
    """
    if ttl is None:
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
            f"{operation}: ttl must be > 0 and <= {MAX_TTL_SECONDS} seconds (got {ttl!r})",
            operation=operation,
        )
    return math.ceil((time.time() if now is None else now) + seconds)


def is_expired(item: Item, ttl_attribute: str, now: float) -> bool:
    """True if the item carries an expiry at or before `now`."""
    attr = item.get(ttl_attribute)
    return attr is not None and "N" in attr and float(attr["N"]) <= now


def check_delta(delta: object, operation: str) -> int:
    """Validate a counter increment."""
    if not isinstance(delta, int) or isinstance(delta, bool):
        raise TypeError(f"{operation}: delta must be an int, not {type(delta).__name__}")
    if abs(delta) > MAX_COUNTER:
        raise KVValidationError(
            f"{operation}: delta must fit in DynamoDB's 38 digits (got {delta})",
            operation=operation,
        )
    return delta


def to_json(obj: Any) -> str:
    """Serialise an object to compact JSON text (NaN and infinities refused).

    Raises:
        TypeError: An object is not JSON serialisable.
        ValueError: A float is NaN or infinite.
    """
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def from_json(data: str | bytes) -> Any:
    """Parse JSON text produced by `to_json` (or any JSON).

    Raises:
        ValueError: The text is not valid JSON (``json.JSONDecodeError``).
    """
    return json.loads(data)


def new_version() -> int:
    """Start value of a new item's version: microseconds since the epoch.

    Versions then grow by one per write. Starting each new item from the clock
    (not from 1) means a key deleted and written again never reuses a version,
    so a stale compare-and-set cannot succeed (no ABA). Batch writes, which
    cannot increment, store a fresh start value.
    """
    return time.time_ns() // 1000


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
    """One (key, value) pair of `set_many`."""
    if not isinstance(pair, tuple) or len(pair) != 2:
        raise TypeError(
            f"set_many: items must be a mapping or (key, value) pairs, got {pair!r:.80}"
        )
    return pair[0], pair[1]
