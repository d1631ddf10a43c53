"""Values to DynamoDB attributes and back, item size as DynamoDB counts it, expiry, versions.

Write order: value → bytes/str → compress (when larger than the threshold and
smaller for it) → item. Read is the reverse, and every step that can meet
foreign or damaged data raises `CorruptItemError`, never a bare Python error.

An item holds, besides the key and the value:

- ``z`` (`COMPRESSION_FLAG`): ``"s"``/``"b"`` when the value is zlib-compressed text/bytes;
- the TTL attribute (``expires_at``): whole epoch seconds, rounded up, which is the
  format DynamoDB's TTL sweeper requires (a Number of epoch seconds);
- ``xm`` (`EXPIRY_MS`): the exact expiry in epoch milliseconds, which every read and
  every condition uses, so ``ttl=1`` means one second, not one to two;
- the version attribute (``ver``): bumped on every write, starting from a random
  63-bit number, so a deleted and re-created key never repeats a version;
- ``tk`` (`TOKEN`): the token of the call that wrote it last, so a retried request
  that meets its own earlier write is recognised (exactly-once writes).
"""

from __future__ import annotations

import binascii
import functools
import json
import math
import os
import random
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeVar

from aiodynkv._errors import CorruptItemError, KVValidationError, ValueTooLargeError
from aiodynkv._protocol import StoredItem, Value

if TYPE_CHECKING:
    from aiodynkv._config import KVConfig

__all__ = [
    "COMPRESSION_FLAG",
    "EXPIRY_MS",
    "MAX_COUNTER",
    "MAX_ITEM_BYTES",
    "RESERVED_ATTRIBUTES",
    "TOKEN",
    "AttributeValue",
    "Item",
    "assemble_item",
    "build_item",
    "check_fits",
    "check_item_size",
    "decode_bytes",
    "decode_many",
    "decode_value",
    "encoded_value",
    "encode_value",
    "expiry_ms_of",
    "expiry_seconds",
    "from_json",
    "is_expired",
    "item_room",
    "item_size",
    "new_token",
    "new_version",
    "new_versions",
    "number_size",
    "plain_values",
    "remaining_seconds",
    "stored_many",
    "to_json",
    "version_of",
    "was_live",
    "written_by",
]

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

MAX_ITEM_BYTES = 409_600
MAX_COUNTER = 10**38 - 1
COMPRESSION_FLAG = "z"
EXPIRY_MS = "xm"
TOKEN = "tk"  # noqa: S105 (the write-token attribute name, not a secret)
#: Attribute names aiodynkv writes besides the configurable ones.
RESERVED_ATTRIBUTES = (COMPRESSION_FLAG, EXPIRY_MS, TOKEN)
_COMPRESSION_LEVEL = 6
_FLAGS = ("s", "b")
_LARGEST_VERSION = {"N": "9" * 19}
_R = TypeVar("_R")


def encode_value(
    value: object, threshold: int | None, max_bytes: int, operation: str
) -> tuple[AttributeValue, str | None]:
    """Turn a user value into its attribute value and compression flag.

    Args:
        value: str or bytes (bytearray and memoryview are stored as bytes).
        threshold: Compress values larger than this many bytes; None never compresses.
        max_bytes: The largest value accepted (``max_value_bytes``), before compression.
        operation: The store operation, for the error message.

    Returns:
        The attribute value (``{"S": ...}`` or ``{"B": ...}``) and ``"s"``/``"b"`` when
        the value was compressed, else None.

    Raises:
        TypeError: The value is neither str nor bytes.
        KVValidationError: A str holds lone surrogates and cannot be stored as UTF-8.
        ValueTooLargeError: The value is larger than `max_bytes`.
    """
    if isinstance(value, str):
        text = str(value)
        bound = max_bytes if threshold is None or threshold > max_bytes else threshold
        if len(text) <= bound and text.isascii():
            return {"S": text}, None  # as many bytes as characters: within both bounds
        try:
            raw = text.encode()
        except UnicodeEncodeError:
            raise KVValidationError(
                f"{operation}: value is not valid UTF-8 text (lone surrogate)", operation=operation
            ) from None
        kind, attr = "s", AttributeValue(S=text)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        kind, attr = "b", AttributeValue(B=raw)
    else:
        raise TypeError(
            f"{operation}: value must be str or bytes, not {type(value).__name__} "
            "(use set_json for other types)"
        )
    if len(raw) > max_bytes:
        raise ValueTooLargeError(
            f"{operation}: value is {len(raw):,} bytes; max_value_bytes allows {max_bytes:,}",
            size=len(raw),
            limit=max_bytes,
            operation=operation,
        )
    if threshold is not None and len(raw) > threshold:
        packed = zlib.compress(raw, _COMPRESSION_LEVEL)
        if len(packed) < len(raw):
            return {"B": packed}, kind
    return attr, None


def _inflate(data: bytes, max_bytes: int) -> bytes:
    """zlib-decompress at most `max_bytes`; more, or damaged data, is a `ValueError`."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise ValueError(f"compressed value does not inflate ({exc})") from None
    if len(raw) > max_bytes or inflater.unconsumed_tail:
        raise ValueError(f"compressed value inflates beyond max_value_bytes ({max_bytes:,})")
    if not inflater.eof:
        raise ValueError("compressed value is truncated")
    return raw


def decode_bytes(kind: str, data: bytes, compressed: bool, max_bytes: int) -> Value:
    """The user value in a value's bytes: text for kind ``"s"``, bytes for ``"b"``.

    Raises:
        CorruptItemError: Larger than `max_bytes` (inflated), a bad zlib stream, text not UTF-8.
    """
    try:
        if compressed:
            data = _inflate(data, max_bytes)
        elif len(data) > max_bytes:
            raise ValueError(f"the value exceeds max_value_bytes ({max_bytes:,})")
        return data.decode() if kind == "s" else data
    except UnicodeDecodeError:
        reason = "a text value is not UTF-8"
        raise CorruptItemError(reason, reason=reason) from None
    except ValueError as exc:
        raise CorruptItemError(str(exc), reason=str(exc)) from None


def decode_value(item: Item, config: KVConfig) -> Value:
    """Return the user value stored in an item without a pipeline record (str, bytes, int).

    Raises:
        CorruptItemError: The item was not written by aiodynkv or is damaged (no value,
            a value of another type, a bad compression flag or stream, a bomb).
    """
    attr = item.get(config.value_attribute)
    if not isinstance(attr, dict) or len(attr) != 1:
        raise CorruptItemError("the item has no value attribute", reason="no value attribute")
    flag = item.get(COMPRESSION_FLAG)
    (kind, raw) = next(iter(attr.items()))
    if flag is not None:
        wanted = flag.get("S") if isinstance(flag, dict) else None
        if wanted not in _FLAGS or kind != "B" or not isinstance(raw, (bytes, bytearray)):
            raise CorruptItemError("bad compression flag", reason="bad compression flag")
        return decode_bytes(wanted, bytes(raw), True, config.max_value_bytes)
    if kind == "S" and isinstance(raw, str):
        return raw
    if kind == "B" and isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    if kind == "N":
        number = _number(raw)
        if number is not None and number == number.to_integral_value():
            return int(number)
    reason = f"value of type {kind} is not a str, bytes or integer counter"
    raise CorruptItemError(reason, reason=reason)


def _number(raw: object) -> Decimal | None:
    if not isinstance(raw, str):
        return None
    try:
        number = Decimal(raw)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _numeric(item: Item, name: str) -> Decimal | None:
    """A Number attribute of an item; absent is None, anything else is corrupt."""
    attr = item.get(name)
    if attr is None:
        return None
    number = _number(attr.get("N")) if isinstance(attr, dict) else None
    if number is None:
        reason = f"attribute {name!r} is not a number"
        raise CorruptItemError(reason, reason=reason)
    return number


def version_of(item: Item, config: KVConfig) -> int:
    """The item's version (0 for an item written without one, by GoFr say).

    Raises:
        CorruptItemError: The version is not an integer.
    """
    number = _numeric(item, config.version_attribute)
    if number is None:
        return 0
    if number != number.to_integral_value():
        raise CorruptItemError("version is not an integer", reason="version is not an integer")
    return int(number)


def expiry_seconds(item: Item, config: KVConfig) -> float | None:
    """When the item expires, in epoch seconds (exact when aiodynkv wrote it), or None.

    Raises:
        CorruptItemError: An expiry attribute is not a number.
    """
    exact = _numeric(item, EXPIRY_MS)
    if exact is not None:
        return float(exact) / 1000.0
    seconds = _numeric(item, config.ttl_attribute)
    return None if seconds is None else float(seconds)


def is_expired(item: Item, config: KVConfig, now: float) -> bool:
    """True if the item's expiry is at or before `now`."""
    expires = expiry_seconds(item, config)
    return expires is not None and expires <= now


def was_live(item: Item, config: KVConfig, now: float) -> bool:
    """Whether an item (a deleted one, say) had not expired; an unreadable expiry counts."""
    try:
        return not is_expired(item, config, now)
    except CorruptItemError:
        return True


def remaining_seconds(item: Item, config: KVConfig, now: float) -> float | None:
    """Seconds the item has left (never negative), or None without an expiry."""
    expires = expiry_seconds(item, config)
    return None if expires is None else max(0.0, expires - now)


def expiry_ms_of(seconds: float | None, now: float) -> int | None:
    """The exact expiry, in epoch milliseconds, of a value written at `now` for `seconds`.

    Rounded down, so `ttl()` never reports more than was set.
    """
    return None if seconds is None else math.floor((now + seconds) * 1000.0)


def decode_many(
    items: Iterable[tuple[str, Item]],
    config: KVConfig,
    at: float,
    opened: Mapping[str, Value] | None = None,
) -> tuple[dict[str, Value], dict[str, str]]:
    """Values of unexpired (user key, item) pairs, and what is wrong with the unreadable ones.

    `opened` holds the values the pipeline already read (`aiodynkv._values.Pipeline`),
    by user key: their items give only the expiry.
    """
    found: dict[str, Value] = {}
    rest = plain_values(items, config, found)
    if not rest:
        return found, {}
    more, corrupt = _read_many(rest, config, at, opened, lambda _key, value, _item: value)
    found.update(more)
    return found, corrupt


def plain_values(
    items: Iterable[tuple[str, Item]], config: KVConfig, found: dict[str, Value]
) -> list[tuple[str, Item]]:
    """Put the value of each plain item in `found`; return the other (key, item) pairs.

    A plain item, the common one, holds a text value and no expiry and no record: its
    value is read directly. The others (and a damaged one) go `decode_many`'s whole way.
    """
    value_name, ttl_name = config.value_attribute, config.ttl_attribute
    rest: list[tuple[str, Item]] = []
    for key, item in items:
        attr = item.get(value_name)
        if (
            type(attr) is dict
            and len(attr) == 1
            and "S" in attr
            and not (EXPIRY_MS in item or ttl_name in item or COMPRESSION_FLAG in item)
        ):
            raw = attr["S"]
            if type(raw) is str:
                found[key] = raw
                continue
        rest.append((key, item))
    return rest


def stored_many(
    items: Iterable[tuple[str, Item]],
    config: KVConfig,
    at: float,
    opened: Mapping[str, Value] | None = None,
) -> tuple[dict[str, StoredItem], dict[str, str]]:
    """Like `decode_many`, with each value's expiry and version (`StoredItem`)."""

    def read(key: str, value: Value, item: Item) -> StoredItem:
        return StoredItem(key, value, expiry_seconds(item, config), version_of(item, config))

    return _read_many(items, config, at, opened, read)


def _read_many(
    items: Iterable[tuple[str, Item]],
    config: KVConfig,
    at: float,
    opened: Mapping[str, Value] | None,
    read: Callable[[str, Value, Item], _R],
) -> tuple[dict[str, _R], dict[str, str]]:
    found: dict[str, _R] = {}
    corrupt: dict[str, str] = {}
    opened = opened or {}
    for key, item in items:
        try:
            if not is_expired(item, config, at):
                value = opened[key] if key in opened else decode_value(item, config)
                found[key] = read(key, value, item)
        except CorruptItemError as exc:  # noqa: PERF203 (one bad item must not hide the rest)
            corrupt[key] = exc.reason or str(exc)
    return found, corrupt


@functools.lru_cache(maxsize=4096)
def number_size(text: str) -> int:
    """Bytes DynamoDB counts for a Number: about one per two significant digits, plus one.

    Cached: a batch repeats the same expiry, and the version is sized at its largest.
    """
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


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def item_size(item: Item) -> int:
    """Size of an item as DynamoDB counts it: UTF-8 attribute names plus value bytes."""
    total = 0
    for name, attr in item.items():
        total += _utf8_size(name)
        if "S" in attr:
            total += _utf8_size(attr["S"])
        elif "B" in attr:
            total += len(attr["B"])
        elif "N" in attr:
            total += number_size(attr["N"])
        else:  # pragma: no cover - we write only S, B and N
            total += len(json.dumps(attr))
    return total


def check_item_size(item: Item, operation: str, table: str, key: str) -> None:
    """Raise `ValueTooLargeError` if the item exceeds 400 KB as DynamoDB counts it."""
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise ValueTooLargeError(
            f"{operation}: item is {size:,} bytes; DynamoDB allows at most "
            f"{MAX_ITEM_BYTES:,} (400 KB) per item, names and values included",
            size=size,
            limit=MAX_ITEM_BYTES,
            operation=operation,
            table=table,
            key=key,
        )


def encoded_value(
    config: KVConfig, value: object, operation: str, key: str
) -> tuple[AttributeValue, str | None]:
    """`encode_value` with the store's limits; its errors name the table and key."""
    try:
        return encode_value(value, config.compress_threshold, config.max_value_bytes, operation)
    except KVValidationError as exc:
        exc.table, exc.key = config.table, key
        raise


def build_item(
    config: KVConfig,
    stored: str,
    attr: AttributeValue,
    record: str | None,
    expires_ms: int | None,
    version: int,
    token: str,
    operation: str,
    key: str,
    *,
    room: int | None = None,
) -> Item:
    """The item a write stores, from the value's final attribute and record, size-checked.

    The value went through the pipeline first (`encoded_value`, then `aiodynkv._values`
    when it encrypts or offloads); its size is checked here, once, before anything is sent.
    """
    check_fits(config, stored, attr, record, expires_ms, token, operation, key, room)
    return assemble_item(config, stored, attr, record, expires_ms, version, token)


def check_fits(
    config: KVConfig,
    stored: str,
    attr: AttributeValue,
    record: str | None,
    expires_ms: int | None,
    token: str,
    operation: str,
    key: str,
    room: int | None = None,
) -> None:
    """`ValueTooLargeError` unless the item of a final value fits (`build_item`'s check).

    `room` is ``item_room(config, token)``, for a batch checking many items with one
    token: it checks every value before it sends anything, and `assemble_item` makes
    each chunk's items only when the chunk is sent.
    """
    if _surely_fits(stored, attr, record, item_room(config, token) if room is None else room):
        return
    # Sized with the largest version a write can leave (19 digits), so that the
    # server's later bumps never push an accepted item over the limit.
    largest = assemble_item(config, stored, attr, record, expires_ms, 0, token)
    largest[config.version_attribute] = _LARGEST_VERSION
    check_item_size(largest, operation, config.table, key)


def assemble_item(
    config: KVConfig,
    stored: str,
    attr: AttributeValue,
    record: str | None,
    expires_ms: int | None,
    version: int,
    token: str,
) -> Item:
    """The item of a final value that `check_fits` accepted (nothing here can fail)."""
    item: Item = {
        config.partition_key: {"S": stored},
        config.value_attribute: attr,
        config.version_attribute: {"N": str(version)},
        TOKEN: {"S": token},
    }
    if expires_ms is not None:
        seconds, millis = _expiry_texts(expires_ms)
        item[config.ttl_attribute] = {"N": seconds}
        item[EXPIRY_MS] = {"N": millis}
    if record is not None:
        item[COMPRESSION_FLAG] = {"S": record}
    return item


@functools.lru_cache(maxsize=64)
def _expiry_texts(expires_ms: int) -> tuple[str, str]:
    """The TTL attribute's text (seconds, rounded up) and the exact one (milliseconds).

    Cached: every item of a batch shares one expiry, formatted once.
    """
    return str(-(-expires_ms // 1000)), str(expires_ms)


#: The most bytes any number attribute can take (38 digits, as DynamoDB counts them).
_NUMBER_BOUND = 22


def item_room(config: KVConfig, token: str) -> int:
    """Bytes surely left for the stored key, value and record of an item `build_item` makes.

    400 KB less an upper bound of everything else: every name and the token at 4
    bytes per character (UTF-8's most), each number at its largest size.
    """
    return _room(
        config.partition_key,
        config.value_attribute,
        config.version_attribute,
        config.ttl_attribute,
        len(token),
    )


@functools.lru_cache(maxsize=64)
def _room(partition_key: str, value: str, version: str, ttl: str, token_chars: int) -> int:
    chars = (
        len(partition_key)
        + len(value)
        + len(version)
        + len(ttl)
        + token_chars
        + len(TOKEN)
        + len(EXPIRY_MS)
        + len(COMPRESSION_FLAG)
    )
    return MAX_ITEM_BYTES - 4 * chars - 3 * _NUMBER_BOUND


def _surely_fits(stored: str, attr: AttributeValue, record: str | None, room: int) -> bool:
    """True when the stored key and the record (4 bytes per character) and the value fit.

    A non-ASCII text value returns False (for the exact count).
    """
    rest = 4 * (len(stored) + (0 if record is None else len(record)))
    text = attr.get("S")
    if text is None:
        return rest + len(attr["B"]) <= room
    return text.isascii() and rest + len(text) <= room


def to_json(obj: Any) -> str:
    """Serialise an object to compact JSON text (NaN and infinities refused).

    This and `from_json` are the GoFr-style ``ToJSON``/``FromJSON`` helpers.

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
    """Start value of a new item's version: a random number below 2**63 (never 0).

    Versions then grow by one per write. A random start, not a clock, means a key
    deleted and written again never repeats a version it had (no ABA), however
    coarse, frozen or backward-stepping the clock is.
    """
    return _random.getrandbits(63) | 1 << 40


def new_versions() -> Iterator[int]:
    """Endless `new_version` values (the same distribution), drawn in blocks."""
    while True:
        block = _random.getrandbits(63 * _VERSION_BLOCK)
        for _ in range(_VERSION_BLOCK):
            yield block & _VERSION_BITS | 1 << 40
            block >>= 63


_VERSION_BITS = (1 << 63) - 1
_VERSION_BLOCK = 64


def new_token() -> str:
    """A fresh per-call write token (96 random bits, 16 characters)."""
    return (
        _b2a(_random.getrandbits(96).to_bytes(12, "big"), newline=False)
        .translate(_URLSAFE)
        .decode()
    )


#: Draws versions and tokens, which must be unique, not secret: seeded from the OS,
#: private (whatever seeds `random`'s own), and seeded again in a forked child.
_random = random.Random()  # noqa: S311
_b2a = binascii.b2a_base64  # made URL-safe below: base64.urlsafe_b64encode, in C calls only
_URLSAFE = bytes.maketrans(b"+/", b"-_")
if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_random.seed)


def written_by(item: Item | None, token: str) -> bool:
    """True if `item` was last written by the call holding `token`."""
    return item is not None and item.get(TOKEN) == {"S": token}


def now() -> float:
    """The wall clock, in epoch seconds (one place, so tests can move it)."""
    return time.time()
