"""Transactions (``async with kv.transaction() as tx``) and snapshot reads.

A `Transaction` collects ``set``/``delete``/``incr``/``check`` actions, validating
each as it is added (key, value, TTL, conditions, one action per key, at most 100
actions, 4 MB in all), and commits them as one TransactWriteItems: all applied or
none. Each write is built by the same request builders as the single-key write, so
TTL, namespaces, versions (bumped, random base), compression and write tokens are
the same. The commit itself (sending, retries, counter restarts, the reasons of a
cancellation) is in `aiodynkv._transaction_commit`.
"""

from __future__ import annotations

import builtins
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiodynkv._args import check_conditions, check_delta, check_version, key_list, ttl_seconds
from aiodynkv._cache import writing
from aiodynkv._codec import Item, decode_many, item_size, new_token, now, to_json
from aiodynkv._errors import KVError, KVValidationError, TransactionFailedError, TransactionReason
from aiodynkv._pipeline import read_old_items
from aiodynkv._requests_tx import transact_get
from aiodynkv._transaction_commit import Action, TransactionCommit, code_of

if TYPE_CHECKING:
    from aiodynkv._base import BaseStore
    from aiodynkv._offload import Pointer
    from aiodynkv._protocol import TTL, Value

__all__ = ["MAX_ACTIONS", "MAX_TRANSACTION_BYTES", "Transaction", "snapshot_get"]

MAX_ACTIONS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024


class Transaction(TransactionCommit):
    """Writes and checks on up to 100 keys, applied all together or not at all.

    Use ``async with kv.transaction() as tx:`` (committed when the block ends, nothing
    sent if it raises) or call `commit` yourself. Every action is validated when it is
    added, so a bad key, value or TTL raises there, before anything is sent.

    Inside a transaction a failed condition (``if_absent`` finding the key, a version
    mismatch, a failed `check`) cancels the whole transaction with
    `TransactionFailedError`; nothing returns False. `incr` returns nothing: read the
    counter after the commit.
    """

    __slots__ = ("_actions", "_objects", "_size", "_state", "_store", "_stored")

    def __init__(self, store: BaseStore) -> None:
        self._store = store
        self._actions: list[Action] = []
        self._stored: builtins.set[str] = builtins.set()
        self._size = 0
        self._state = "open"
        self._client_token = uuid.uuid4().hex
        self._objects: builtins.set[Pointer] = builtins.set()  # of offloaded values it deletes
        self._in_doubt = False
        self._pending: tuple[dict[str, Any], float, str] | None = None
        self._restart: builtins.set[int] = builtins.set()

    def __len__(self) -> int:
        return len(self._actions)

    def __repr__(self) -> str:
        return f"<Transaction actions={len(self._actions)} {self._state}>"

    @property
    def state(self) -> str:
        """``open``, ``committed`` or ``discarded``."""
        return self._state

    # -- collecting ----------------------------------------------------------------

    def _add(self, kind: str, key: object, **fields: Any) -> Action:
        store = self._store
        table = store.config.table
        pipeline = getattr(store._core, "pipeline", None)
        if kind == "set" and getattr(pipeline, "writes", False):
            raise KVValidationError(
                "transaction: values cannot be encrypted or offloaded to S3 inside a "
                "transaction yet; write them with set() (incr, delete and check work)",
                operation="transaction",
                table=table,
            )
        if self._state != "open":
            raise KVError(
                f"transaction: already {self._state}; start a new one",
                operation="transaction",
                table=table,
            )
        stored = store._keys.encode(key, "transaction", table)
        user = str(key)
        if stored in self._stored:
            raise store._shown(
                KVValidationError(
                    "transaction: one action per key (DynamoDB refuses two on one item)",
                    operation="transaction",
                    table=table,
                    key=user,
                )
            )
        if len(self._actions) >= MAX_ACTIONS:
            raise KVValidationError(
                f"transaction: at most {MAX_ACTIONS} actions (DynamoDB's limit)",
                operation="transaction",
                table=table,
                key=user,
            )
        return Action(kind, user, stored, **fields)

    def _keep(self, action: Action, size: int) -> None:
        if self._size + size > MAX_TRANSACTION_BYTES:
            store = self._store
            raise store._shown(
                KVValidationError(
                    f"transaction: the items would total {self._size + size:,} bytes; "
                    f"DynamoDB allows {MAX_TRANSACTION_BYTES:,} (4 MB) per transaction",
                    operation="transaction",
                    table=store.config.table,
                    key=action.key,
                )
            )
        self._size += size
        self._stored.add(action.stored)
        self._actions.append(action)

    def set(
        self,
        key: str,
        value: str | bytes,
        *,
        ttl: TTL | None = None,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> None:
        """Store `value` at `key` on commit; the arguments are those of ``kv.set``.

        Raises:
            InvalidKeyError: The key is invalid.
            TypeError: The value is not str or bytes.
            ValueTooLargeError: The value or item is too large.
            KVValidationError: The key already has an action, or 100 actions exist.
        """
        check_conditions(if_absent, if_version, "transaction")
        seconds = ttl_seconds(ttl, "transaction")
        action = self._add(
            "set", key, value=value, seconds=seconds, if_absent=if_absent, if_version=if_version
        )
        item = self._item(action, 0.0, new_token())
        self._keep(action, item_size(item))

    def set_json(
        self,
        key: str,
        obj: Any,
        *,
        ttl: TTL | None = None,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> None:
        """Store `obj` as compact JSON text on commit (see `set`)."""
        self.set(key, to_json(obj), ttl=ttl, if_absent=if_absent, if_version=if_version)

    def delete(self, key: str, *, if_version: int | None = None) -> None:
        """Delete `key` on commit (a missing key is fine unless `if_version` is given)."""
        if if_version is not None:
            check_version(if_version, "transaction")
        self._keep(self._add("delete", key, if_version=if_version), 0)

    def incr(self, key: str, delta: int = 1, *, ttl: TTL | None = None) -> None:
        """Add `delta` to the counter at `key` on commit (a missing or expired one starts at 0).

        Raises:
            TypeError: `delta` is not an int.
        """
        check_delta(delta, "transaction")
        seconds = ttl_seconds(ttl, "transaction")
        self._keep(self._add("incr", key, delta=delta, seconds=seconds), 0)

    def check(self, key: str, *, version: int | None = None, exists: bool | None = None) -> None:
        """A condition on `key` that writes nothing: its version, or its presence or absence.

        Args:
            key: The key.
            version: The key must exist (unexpired) with this version.
            exists: True: the key must exist (unexpired); False: it must be missing or expired.

        Raises:
            KVValidationError: Neither condition given, or ``exists=False`` with a version.
        """
        if version is not None:
            check_version(version, "transaction")
        if exists is not None and not isinstance(exists, bool):
            raise TypeError(f"transaction: exists must be a bool, not {type(exists).__name__}")
        if version is None and exists is None:
            raise KVValidationError(
                "transaction: check needs version= or exists=", operation="transaction"
            )
        if version is not None and exists is False:
            raise KVValidationError(
                "transaction: check cannot ask for a version of a missing key",
                operation="transaction",
            )
        self._keep(self._add("check", key, if_version=version, exists=exists), 0)

    # -- committing ----------------------------------------------------------------

    async def commit(self) -> None:
        """Send the actions as one TransactWriteItems (nothing is sent for none).

        Raises:
            TransactionFailedError: Cancelled (a condition failed, a conflict, throttling,
                a value that is not a counter...): nothing was applied; ``.reasons``
                says why, per action.
            WriteInDoubtError: The commit may or may not have been applied (a reply was
                lost, then the retries failed). Calling `commit` again re-sends the very
                same request (``ClientRequestToken``, items, write tokens), which is
                applied at most once; or read the keys to find out.
            KVError: The store failed otherwise; a `TransientError` means nothing was
                applied (calling `commit` again is safe).
        """
        store = self._store
        if self._state == "committed":
            raise KVError(
                "transaction: already committed", operation="transaction", table=store.config.table
            )
        if self._state == "discarded":
            raise KVError(
                "transaction: discarded (its block raised); start a new one",
                operation="transaction",
                table=store.config.table,
            )
        if not self._actions:
            self._state = "committed"
            return
        # The near cache (when on) forgets every written key, whatever the outcome.
        written = [a.stored for a in self._actions if a.kind != "check"]
        with writing(getattr(store._core, "cache", None), *written):
            await self._note_objects()
            await self._commit_dynamo()
        self._state = "committed"
        if self._objects:  # the commit is known: the deleted values' objects go too
            await store._core.pipeline.discard(list(self._objects), "transaction")

    async def _note_objects(self) -> None:
        """Note the S3 objects of the offloaded values this commit deletes (best effort).

        A transaction returns no old items, so they are read (strongly consistent) just
        before the commit and removed once it is known to have succeeded. An overwrite
        between the read and the commit leaves its own object behind for the bucket's
        lifecycle rule (docs/large-values.md); no item ever points at a removed object.
        """
        store = self._store
        pipeline = getattr(store._core, "pipeline", None)
        deleted = [a.stored for a in self._actions if a.kind == "delete"]
        if pipeline is None or pipeline.bucket is None or not deleted:
            return
        core = store._core
        try:
            with core.operation("transaction", "BatchGetItem", batch_size=len(deleted)) as op:
                items = await read_old_items(core, op, deleted)
        except KVError as exc:  # cleanup only: the commit goes ahead
            if pipeline.warn is not None:
                pipeline.warn(
                    "aiodynkv.offload_cleanup_failed",
                    table=store.config.table,
                    operation="transaction",
                    error=type(exc).__name__,
                )
            return
        for item in items.values():
            pointer = pipeline.pointer_of(item)
            if pointer is not None:
                self._objects.add(pointer)

    def discard(self) -> None:
        """Drop every action; nothing is sent."""
        if self._state == "open":
            self._state = "discarded"
            self._actions.clear()
            self._stored.clear()

    async def __aenter__(self) -> Transaction:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.discard()
            return
        await self.commit()


# -- snapshot reads --------------------------------------------------------------


async def snapshot_get(store: BaseStore, keys: Any) -> dict[str, Value]:
    """``get_many(keys, snapshot=True)``: up to 100 keys read as one consistent snapshot.

    Raises:
        KVValidationError: More than 100 distinct keys.
        TransactionFailedError: DynamoDB cancelled the read (a conflicting transaction).
        CorruptItemError: Some items cannot be read (``done`` holds the rest).
    """
    config = store.config
    wanted = {
        store._keys.encode(key, "get_many", config.table): key for key in key_list(keys, "get_many")
    }
    if len(wanted) > MAX_ACTIONS:
        raise KVValidationError(
            f"get_many: a snapshot reads at most {MAX_ACTIONS} keys (got {len(wanted)})",
            operation="get_many",
            table=config.table,
        )
    pairs = await _snapshot_dynamo(store, wanted)
    pipeline = getattr(store._core, "pipeline", None)
    unreadable: dict[str, str] = {}
    if pipeline is not None:  # encrypted, compressed or offloaded values made readable
        stored_of = {key: pk for pk, key in wanted.items()}
        items = {stored_of[key]: item for key, item in pairs}
        opened, unreadable = await pipeline.open_many(items, wanted, "get_many")
        pairs = [(wanted[pk], item) for pk, item in opened.items()]
    found, corrupt = decode_many(pairs, config, now())
    corrupt.update(unreadable)
    if corrupt:
        raise store._corrupt_many(found, corrupt, len(wanted))
    return found


async def _snapshot_dynamo(store: BaseStore, wanted: dict[str, str]) -> list[tuple[str, Item]]:
    core = store._core
    if not wanted:
        return []
    request = transact_get(core.config, list(wanted))
    with core.operation("get_many", "TransactGetItems", batch_size=len(wanted)) as op:
        try:
            response = await core.send(op, "TransactGetItems", request, None)
        except KVError as exc:
            cause = exc.__cause__
            if getattr(cause, "code", "") != "TransactionCanceledException":
                raise
            raw = list(getattr(cause, "body", {}).get("CancellationReasons") or [])
            reasons = [
                TransactionReason(
                    index,
                    "get",
                    key,
                    code_of((raw[index] if index < len(raw) else {}).get("Code")),
                )
                for index, key in enumerate(wanted.values())
            ]
            failed = sorted({r.code for r in reasons if r.code != "none"}) or ["unknown"]
            raise store._shown(
                TransactionFailedError(
                    f"get_many: the snapshot read was cancelled ({', '.join(failed)}) in table "
                    f"{core.config.table!r}; try again",
                    reasons=reasons,
                    operation="get_many",
                    table=core.config.table,
                    reason=f"TransactionCanceledException: {', '.join(failed)}",
                )
            ) from cause
        responses = response.get("Responses") or []
        pairs = [
            (key, entry["Item"])
            for key, entry in zip(wanted.values(), responses, strict=False)
            if entry and entry.get("Item")
        ]
        op.outcome = "hit" if pairs else "miss"
    return pairs
