r"""The reserved key space: where lock items and counter shards live, out of sight.

A user's stored key is ``<key>`` at the root or ``<namespace>\x1f<key>`` in a
namespace, and neither a key nor a namespace may hold U+001F. Stored keys that
*begin* with U+001F can therefore never be a user's key, nor appear in any
namespace's ``keys()``, ``items()`` or ``clear()`` (the root lists only keys without
U+001F; a namespace lists only keys beginning with its own name). aiodynkv keeps its
own items there:

- ``\x1fl\x1f<stored name>``: the lock item of ``kv.lock(name)``;
- ``\x1fc\x1f<stored name>\x1f<i>``: shard `i` of ``kv.counter(name)``,

where ``<stored name>`` is the name as a key of the store's namespace, so each
namespace has its own locks and counters. The whole stored key obeys DynamoDB's
2048-byte limit; a name that would exceed it is an `InvalidKeyError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from aiodynkv._errors import InvalidKeyError
from aiodynkv._keys import MAX_KEY_BYTES, SEPARATOR, KeyCodec

if TYPE_CHECKING:
    from aiodynkv._store import AsyncDynamoKV

__all__ = ["COUNTER", "LOCK", "hidden_view", "reserved_key"]

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
        raise InvalidKeyError(
            f"{operation}: name is {size} bytes as a reserved key; DynamoDB allows at most "
            f"{MAX_KEY_BYTES}",
            operation=operation,
            table=table,
            key=str(name)[:64],
        )
    return full


class _ReservedCodec(KeyCodec):
    """A `KeyCodec` whose prefix lies in the reserved key space."""

    __slots__ = ()

    def __init__(self, prefix: str, label: str) -> None:
        self.namespace = label
        self._prefix = prefix
        self._prefix_bytes = len(prefix.encode())


def hidden_view(store: _S, kind: str, name: object, operation: str) -> _S:
    """A view of `store` whose keys live under the reserved item `kind`/`name`.

    Every store operation works on it with its usual semantics (TTL, versions,
    exactly-once writes); its keys appear in no namespace's listing.
    """
    prefix = reserved_key(store, kind, name, operation) + SEPARATOR
    view = store.namespace("reserved")  # whatever a view shares, it shares
    view._keys = _ReservedCodec(prefix, f"{kind}:{name}")
    return view
