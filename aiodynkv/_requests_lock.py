"""Request builders of the lease (lock) item: acquire, renew and release.

Pure like `aiodynkv._requests` (whose names and helpers they share): the caller
passes the owner, the lease, the write token and the version base.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiodynkv._requests import BUMP, _write

if TYPE_CHECKING:
    from aiodynkv._config import KVConfig

__all__ = ["LOCK_FENCE", "LOCK_LEASE", "LOCK_OWNER", "lock_acquire", "lock_release", "lock_renew"]

#: Attributes of a lock item (which lives in the reserved key space, see `_reserved`):
#: the holder's owner token, the fencing counter, and the holder's lease in ms. The
#: item's version (``#r``) is the record version number waiters watch.
LOCK_OWNER = "lock_owner"
LOCK_FENCE = "lock_fence"
LOCK_LEASE = "lock_lease_ms"


_LOCK_NAMES = {"#o": LOCK_OWNER, "#f": LOCK_FENCE, "#l": LOCK_LEASE}


def _lock_write(
    config: KVConfig,
    stored: str,
    update: str,
    condition: str,
    values: dict[str, Any],
    *,
    token: str,
    base: int,
    returns: str | None = None,
) -> dict[str, Any]:
    """An UpdateItem of a lock item (the lock attributes named as well)."""
    return _write(
        config,
        stored,
        update,
        condition,
        values,
        now=None,
        token=token,
        base=base,
        returns=returns,
        names=_LOCK_NAMES,
    )


def lock_acquire(
    config: KVConfig,
    stored: str,
    *,
    owner: str,
    lease_ms: int,
    seen: int | None,
    token: str,
    base: int,
) -> dict[str, Any]:
    """UpdateItem taking a lock that is free, or (`seen`) still at a version watched for a lease.

    The fencing counter is incremented in the same write, so every acquisition of a
    name gets a larger token than the one before, across takeovers.
    """
    condition = "attribute_not_exists(#k) OR attribute_not_exists(#o)"
    values: dict[str, Any] = {":o": {"S": owner}, ":l": {"N": str(lease_ms)}}
    if seen is not None:
        condition += " OR #r = :seen"
        values[":seen"] = {"N": str(seen)}
    return _lock_write(
        config,
        stored,
        f"SET #o = :o, #l = :l, #tk = :tok, {BUMP} ADD #f :one",
        condition,
        values,
        token=token,
        base=base,
        returns="ALL_NEW",
    )


def lock_renew(
    config: KVConfig, stored: str, *, owner: str, lease_ms: int, token: str, base: int
) -> dict[str, Any]:
    """UpdateItem renewing a held lock: a new version (waiters see progress), same owner."""
    return _lock_write(
        config,
        stored,
        f"SET #l = :l, #tk = :tok, {BUMP}",
        "#o = :o",
        {":o": {"S": owner}, ":l": {"N": str(lease_ms)}},
        token=token,
        base=base,
    )


def lock_release(
    config: KVConfig, stored: str, *, owner: str, token: str, base: int
) -> dict[str, Any]:
    """UpdateItem freeing a held lock; the item (and its fencing counter) stays."""
    return _lock_write(
        config,
        stored,
        f"SET #tk = :tok, {BUMP} REMOVE #o, #l",
        "#o = :o",
        {":o": {"S": owner}},
        token=token,
        base=base,
    )
