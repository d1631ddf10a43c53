r"""Argument checks, done before any request is built: keys and namespaces first.

A stored key is the user's key, or ``<namespace>\x1f<key>`` inside a namespace. The
unit separator (U+001F) is refused in keys and namespaces, so the encoding is
unambiguous. The only length limit is DynamoDB's: the whole stored key at most 2,048
UTF-8 bytes (so a namespace at most 2,046, leaving room for the separator and a key).

Stored keys that *begin* with U+001F are the reserved key space: never a user's key,
never in any namespace's ``keys()``, ``items()`` or ``clear()``. aiodynkv keeps there
``\x1fl\x1f<stored name>`` (the lock item of ``kv.lock(name)``) and
``\x1fc\x1f<stored name>\x1f<i>`` (shard `i` of ``kv.counter(name)``), where
``<stored name>`` is the name as a key of the store's namespace (`reserved_key`,
`hidden_view`).

The other arguments (TTLs, counter deltas, versions, write conditions, batch keys) are
checked here too: `TypeError` for a wrong type, `KVValidationError` for a wrong value,
naming the operation and the argument, never the value of a stored item.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from aiodynkv._codec import MAX_COUNTER
from aiodynkv._errors import InvalidKeyError, KVValidationError, shown

if TYPE_CHECKING:
    from aiodynkv._store import AsyncDynamoKV

__all__ = [
    "COUNTER",
    "LOCK",
    "MAX_KEY_BYTES",
    "SEPARATOR",
    "KeyCodec",
    "check_conditions",
    "check_delta",
    "check_namespace",
    "check_version",
    "hidden_view",
    "invalid_value",
    "key_list",
    "pair_of",
    "reserved_key",
    "ttl_seconds",
]

MAX_KEY_BYTES = 2048
SEPARATOR = "\x1f"
#: The longest namespace, in UTF-8 bytes: the separator and a one-byte key still fit.
MAX_NAMESPACE_BYTES = MAX_KEY_BYTES - 2


def check_namespace(namespace: object) -> str:
    """Validate a namespace name and return it.

    Raises:
        TypeError: It is not a str.
        ValueError: It is empty, holds U+001F, is not UTF-8 encodable, or is over
            2,046 UTF-8 bytes (namespace, separator and key share DynamoDB's 2,048).
    """
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a str, not {type(namespace).__name__}")
    if not namespace:
        raise ValueError("namespace must not be empty")
    if SEPARATOR in namespace:
        raise ValueError("namespace must not contain U+001F (the namespace separator)")
    try:
        size = len(namespace.encode())
    except UnicodeEncodeError:
        raise ValueError(f"namespace is not valid UTF-8 text: {shown(namespace)}") from None
    if size > MAX_NAMESPACE_BYTES:
        raise ValueError(
            f"namespace is {size} bytes ({shown(namespace)}); namespace, separator and key "
            f"share DynamoDB's {MAX_KEY_BYTES}-byte key limit, so at most "
            f"{MAX_NAMESPACE_BYTES} bytes"
        )
    return namespace


class KeyCodec:
    """Turns user keys into stored partition-key values and back, for one namespace."""

    __slots__ = ("_prefix_bytes", "namespace", "prefix")

    def __init__(self, namespace: str | None, *, prefix: str | None = None) -> None:
        self.namespace = namespace
        if prefix is None:  # else a prefix in the reserved key space, `namespace` its label
            prefix = "" if namespace is None else check_namespace(namespace) + SEPARATOR
        self.prefix = prefix  # what every stored key of this namespace starts with
        self._prefix_bytes = len(prefix.encode())

    def encode(self, key: object, operation: str, table: str) -> str:
        """Validate a user key and return the stored key.

        Raises:
            InvalidKeyError: The key is not a non-empty str of at most 2048 UTF-8 bytes
                (namespace included), or holds U+001F.
        """
        if type(key) is not str:
            if not isinstance(key, str):
                raise _invalid(operation, table, f"key must be a str, not {type(key).__name__}")
            key = str(key)  # a str subclass is stored as plain text
        if not key:
            raise _invalid(operation, table, "key must not be empty")
        try:
            # An ASCII key is as long in UTF-8 as in characters (and holds no surrogate).
            size = (len(key) if key.isascii() else len(key.encode())) + self._prefix_bytes
        except UnicodeEncodeError:
            raise _invalid(
                operation, table, "key is not valid UTF-8 text (lone surrogate)", key
            ) from None
        if size > MAX_KEY_BYTES:
            ns = f" with namespace {shown(self.namespace)}" if self.namespace else ""
            why = f"key is {size} bytes{ns}; DynamoDB allows at most {MAX_KEY_BYTES}"
            raise _invalid(operation, table, why, key[:64])
        if SEPARATOR in key:
            raise _invalid(
                operation, table, "key must not contain U+001F (the namespace separator)", key
            )
        return self.prefix + key if self.prefix else key

    def encode_many(self, keys: Iterable[str], operation: str, table: str) -> dict[str, str]:
        """Stored key -> user key of a batch, in order, duplicates once, every key validated.

        Raises:
            TypeError: `keys` is a single str or bytes (`key_list`).
            InvalidKeyError: As `encode`, for the first bad key.
        """
        listed = key_list(keys, operation)
        if not listed:
            return {}
        stored = self.plain_many(listed)
        if stored is not None:
            return dict(zip(stored, listed, strict=True))
        encode = self.encode
        return {encode(key, operation, table): key for key in listed}

    def plain_many(self, keys: list[Any]) -> list[str] | None:
        """The stored keys of a common batch, checked with a few passes in C, or None.

        The common batch: non-empty ASCII str keys, none holding U+001F, none too long
        (what `encode` accepts of them, in order). Any other batch gives None: it is
        then checked key by key, so that the error is `encode`'s for the first bad key.
        """
        if not keys or set(map(type, keys)) != {str}:
            return None
        joined = "".join(keys)
        if (
            not joined.isascii()
            or SEPARATOR in joined
            or max(map(len, keys)) + self._prefix_bytes > MAX_KEY_BYTES
            or not all(keys)
        ):
            return None
        prefix = self.prefix
        return [prefix + key for key in keys] if prefix else keys

    def decode(self, stored: str) -> str | None:
        """Return the user key of a stored key, or None if it is not in this namespace."""
        if self.prefix:
            return stored[len(self.prefix) :] if stored.startswith(self.prefix) else None
        return None if SEPARATOR in stored else stored


def _invalid(operation: str, table: str, why: str, key: str | None = None) -> InvalidKeyError:
    return InvalidKeyError(f"{operation}: {why}", operation=operation, table=table, key=key)


def invalid_value(operation: str, why: str) -> KVValidationError:
    """The `KVValidationError` of an argument of `operation`."""
    return KVValidationError(f"{operation}: {why}", operation=operation)


LOCK = "l"
COUNTER = "c"
_S = TypeVar("_S", bound="AsyncDynamoKV")


def reserved_key(store: AsyncDynamoKV, kind: str, name: object, operation: str) -> str:
    """The stored key of `store`'s reserved item `kind` called `name` (validated).

    Raises:
        InvalidKeyError: `name` is not a valid key, or too long once reserved.
    """
    table = store.config.table
    stored = store._keys.encode(name, operation, table)
    full = f"{SEPARATOR}{kind}{SEPARATOR}{stored}"
    size = len(full.encode())
    if size > MAX_KEY_BYTES:
        why = f"name is {size} bytes as a reserved key; DynamoDB allows at most {MAX_KEY_BYTES}"
        raise _invalid(operation, table, why, str(name)[:64])
    return full


def hidden_view(store: _S, kind: str, name: object, operation: str) -> _S:
    """A view of `store` whose keys live under the reserved item `kind`/`name`.

    Every store operation works on it with its usual semantics (TTL, versions,
    exactly-once writes); its keys appear in no namespace's listing.
    """
    prefix = reserved_key(store, kind, name, operation) + SEPARATOR
    view = store.namespace("reserved")  # whatever a view shares, it shares
    view._keys = KeyCodec(f"{kind}:{name}", prefix=prefix)
    return view


# -- the other arguments --------------------------------------------------------------------

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
            raise invalid_value(operation, "ttl must not be None (use persist)")
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
        why = f"ttl must be > 0 and <= {MAX_TTL_SECONDS} seconds (got {shown(ttl)})"
        raise invalid_value(operation, why)
    return seconds


def check_delta(delta: object, operation: str, name: str = "delta") -> int:
    """Validate a counter increment (or, with `name`, a counter's new value)."""
    if not isinstance(delta, int) or isinstance(delta, bool):
        raise TypeError(f"{operation}: {name} must be an int, not {type(delta).__name__}")
    if abs(delta) > MAX_COUNTER:
        raise invalid_value(operation, f"{name} must fit in DynamoDB's 38 digits")
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
            raise invalid_value(operation, "pass if_absent or if_version, not both")


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
