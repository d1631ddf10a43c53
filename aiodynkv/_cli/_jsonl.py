"""The JSON Lines format of ``aiodynkv export`` and ``aiodynkv import``: one item per line.

::

    {"key": "user:1", "value": "alice"}
    {"key": "avatar:1", "value_b64": "iVBORw0KGgo=", "expires_at": 1767225600}
    {"key": "hits", "value": 42}

- ``key``: the key (inside the namespace, if one is set), a non-empty string.
- ``value``: a str value as a JSON string, or a counter as a JSON integer.
- ``value_b64``: instead of ``value``, a bytes value in standard base64 (RFC 4648 §4).
- ``expires_at``: only for an item with a TTL: epoch seconds (an integer).

No other fields are accepted, so a typo such as ``"ttl"`` is reported, not ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass

from aiodynkv._protocol import Value

__all__ = ["FIELDS", "Record", "RecordError", "decode", "encode"]

FIELDS = ("key", "value", "value_b64", "expires_at")


class RecordError(ValueError):
    """A line is not a valid record; the message says why."""


@dataclass(frozen=True, slots=True)
class Record:
    """One item: its key, its value (str, bytes or a counter's int) and its expiry.

    Attributes:
        key: The key, as the store sees it (inside its namespace).
        value: str, bytes, or int for a counter.
        expires_at: Epoch second at which the item expires; None when it never does.
    """

    key: str
    value: Value
    expires_at: int | None = None


def encode(record: Record) -> str:
    """The record as one line of JSON (without the newline)."""
    obj: dict[str, object] = {"key": record.key}
    if isinstance(record.value, bytes):
        obj["value_b64"] = base64.b64encode(record.value).decode("ascii")
    else:
        obj["value"] = record.value
    if record.expires_at is not None:
        obj["expires_at"] = record.expires_at
    return json.dumps(obj, ensure_ascii=False)


def decode(line: str) -> Record:
    """Parse one line.

    Raises:
        RecordError: The line is not a JSON object with the fields above.
    """
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise RecordError(f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise RecordError(f"unknown field {unknown[0]!r} (allowed: {', '.join(FIELDS)})")
    key = obj.get("key")
    if not isinstance(key, str) or not key:
        raise RecordError('"key" must be a non-empty string')
    return Record(key, _value_of(obj), _expiry_of(obj.get("expires_at")))


def _value_of(obj: dict[str, object]) -> Value:
    if ("value" in obj) == ("value_b64" in obj):
        raise RecordError('give exactly one of "value" and "value_b64"')
    if "value_b64" in obj:
        encoded = obj["value_b64"]
        if not isinstance(encoded, str):
            raise RecordError('"value_b64" must be a base64 string')
        try:
            return base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise RecordError(f'"value_b64" is not valid base64 ({exc})') from None
    value = obj["value"]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(
            '"value" must be a string, or an integer for a counter '
            '(bytes go in "value_b64"; encode other JSON as a string)'
        )
    return value


def _expiry_of(raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise RecordError('"expires_at" must be epoch seconds (a number)')
    return math.ceil(raw)
