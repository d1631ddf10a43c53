"""Transactions (``async with kv.transaction() as tx``) and snapshot reads.

A `Transaction` collects ``set``/``delete``/``incr``/``check`` actions, each validated
as it is added (key, value, TTL, conditions, one action per key, at most 100 actions,
4 MB in all), and commits them as one TransactWriteItems, all or nothing, each write
built by the request builders of the single-key write.

The request is built once, with a ``ClientRequestToken``: a retry, or `commit` called
again after `WriteInDoubtError`, re-sends the very same request. Every write also
carries the commit's write token and the condition that this commit has not written
it yet, so a retry that meets its own applied commit (a server that ignores the token,
like moto) is recognised as committed. A commit that may have been applied and cannot
be recognised (only deletes and checks, or an item overwritten since) raises
`WriteInDoubtError`, never "cancelled, nothing applied". An ``incr`` of an expired
counter is cancelled on its condition, then sent again as a restart (as ``kv.incr``).
"""

from __future__ import annotations

import builtins
import re
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiodynkv import _requests as requests
from aiodynkv import _retry
from aiodynkv._cache import writing
from aiodynkv._codec import (
    Item,
    assemble_item,
    build_item,
    decode_many,
    encoded_value,
    expiry_ms_of,
    is_expired,
    item_size,
    new_token,
    new_version,
    now,
    to_json,
    version_of,
    written_by,
)
from aiodynkv._errors import (
    CorruptItemError,
    KVError,
    KVValidationError,
    TransactionFailedError,
    TransactionReason,
    WriteInDoubtError,
)
from aiodynkv._keys import check_conditions, check_delta, check_version, ttl_seconds
from aiodynkv._values import read_old_items

if TYPE_CHECKING:
    from aiodynkv._protocol import TTL, Value
    from aiodynkv._store import AsyncDynamoKV
    from aiodynkv._telemetry import Operation
    from aiodynkv._values import Pointer

__all__ = [
    "MAX_ACTIONS",
    "MAX_TRANSACTION_BYTES",
    "Action",
    "Transaction",
    "code_of",
    "snapshot_get",
]

MAX_ACTIONS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
_RESTARTS = 5
_IN_PROGRESS_RETRIES = 3
_CODES = {
    "None": "none",
    "ConditionalCheckFailed": "condition_failed",
    "TransactionConflict": "conflict",
    "ProvisionedThroughputExceeded": "throttled",
    "ThrottlingError": "throttled",
    "RequestLimitExceeded": "throttled",
    "ValidationError": "validation",
}
_TYPE_MISMATCH = "incorrect data type"


def snake(code: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", code.removesuffix("Exception")).lower()


def code_of(raw: object) -> str:
    text = str(raw or "None")
    return _CODES.get(text) or snake(text)


@dataclass
class Action:
    kind: str  # set, delete, incr, check
    key: str
    stored: str
    value: Any = None  # a set's encoded value: (attribute, record)
    seconds: float | None = None
    if_absent: bool = False
    if_version: int | None = None
    delta: int = 0
    exists: bool | None = None


class Transaction:
    """Writes and checks on up to 100 keys, applied all together or not at all.

    Use ``async with kv.transaction() as tx:`` (committed when the block ends, nothing
    sent if it raises) or call `commit` yourself. Every action is validated when it is
    added, so a bad key, value or TTL raises there, before anything is sent.

    Inside a transaction a failed condition (``if_absent`` finding the key, a version
    mismatch, a failed `check`) cancels the whole transaction with
    `TransactionFailedError`; nothing returns False. `incr` returns nothing: read the
    counter after the commit.
    """

    __slots__ = (
        "_actions",
        "_client_token",
        "_in_doubt",
        "_objects",
        "_pending",
        "_restart",
        "_size",
        "_state",
        "_store",
        "_stored",
    )

    def __init__(self, store: AsyncDynamoKV) -> None:
        self._store = store
        self._actions: list[Action] = []
        self._stored: builtins.set[str] = builtins.set()
        self._size = 0
        self._state = "open"
        self._client_token = uuid.uuid4().hex
        self._objects: builtins.set[Pointer] = builtins.set()  # of offloaded values it deletes
        #: An earlier send of this commit may have been applied.
        self._in_doubt = False
        #: The request being committed, its clock and write token: built once, re-sent as is.
        self._pending: tuple[dict[str, Any], float, str] | None = None
        #: The incr actions to send as counter restarts (their counter had expired).
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

    def _refused(
        self, message: str, cls: type[KVError] = KVValidationError, key: str | None = None
    ) -> KVError:
        """An error of this transaction, before anything is sent (its message never shows `key`)."""
        table = self._store.config.table
        return cls(f"transaction: {message}", operation="transaction", table=table, key=key)

    def _add(self, kind: str, key: object, **fields: Any) -> Action:
        store = self._store
        if kind == "set" and store._core.pipeline.writes:
            raise self._refused(
                "values cannot be encrypted or offloaded to S3 inside a transaction yet; "
                "write them with set() (incr, delete and check work)"
            )
        if self._state != "open":
            raise self._refused(f"already {self._state}; start a new one", KVError)
        stored = store._encode(key, "transaction")
        user = str(key)
        if stored in self._stored:
            raise store._error(
                KVValidationError,
                "one action per key (DynamoDB refuses two on one item)",
                "transaction",
                user,
            )
        if len(self._actions) >= MAX_ACTIONS:
            raise self._refused(f"at most {MAX_ACTIONS} actions (DynamoDB's limit)", key=user)
        return Action(kind, user, stored, **fields)

    def _keep(self, action: Action, size: int) -> None:
        if self._size + size > MAX_TRANSACTION_BYTES:
            raise self._store._error(
                KVValidationError,
                f"the items would total {self._size + size:,} bytes; "
                f"DynamoDB allows {MAX_TRANSACTION_BYTES:,} (4 MB) per transaction",
                "transaction",
                action.key,
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
        action = self._add("set", key, seconds=seconds, if_absent=if_absent, if_version=if_version)
        config = self._store.config
        # Checked once, here: the commit builds the item again from the same value.
        attr, record = action.value = encoded_value(config, value, "transaction", action.key)
        expires_ms = expiry_ms_of(seconds, now())
        token, stored = new_token(), action.stored
        item = build_item(
            config, stored, attr, record, expires_ms, 0, token, "transaction", action.key
        )
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
            raise self._refused("check needs version= or exists=")
        if version is not None and exists is False:
            raise self._refused("check cannot ask for a version of a missing key")
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
            raise self._refused("already committed", KVError)
        if self._state == "discarded":
            raise self._refused("discarded (its block raised); start a new one", KVError)
        if not self._actions:
            self._state = "committed"
            return
        # The near cache (when on) forgets every written key, whatever the outcome.
        written = [a.stored for a in self._actions if a.kind != "check"]
        with writing(store._core.cache, *written):
            await self._note_objects()
            await self._send()
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
        core = self._store._core
        pipeline = core.pipeline
        deleted = [a.stored for a in self._actions if a.kind == "delete"]
        if pipeline.bucket is None or not deleted:
            return
        try:
            with core.operation("transaction", "BatchGetItem", batch_size=len(deleted)) as op:
                items = await read_old_items(core, op, deleted)
        except KVError as exc:  # cleanup only: the commit goes ahead
            pipeline.cleanup_failed("transaction", exc)
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

    # -- the commit's steps -----------------------------------------------------------

    def _request(self, action: Action, at: float, token: str, restart: bool) -> dict[str, Any]:
        config = self._store.config
        base = new_version()
        if action.kind == "set":
            attr, record = action.value
            expires_ms = expiry_ms_of(action.seconds, at)
            item = assemble_item(config, action.stored, attr, record, expires_ms, base, token)
            request = requests.put(
                config,
                item,
                now=at,
                token=token,
                base=base,
                if_absent=action.if_absent,
                if_version=action.if_version,
            )
            return requests.transact_item("Update", request)
        if action.kind == "incr":
            build = requests.incr_restart if restart else requests.incr
            expires_ms = expiry_ms_of(action.seconds, at)
            request = build(
                config, action.stored, action.delta, expires_ms, now=at, token=token, base=base
            )
            return requests.transact_item("Update", request)
        if action.kind == "delete":
            request = requests.delete(config, action.stored, now=at, if_version=action.if_version)
            return requests.transact_item("Delete", request)
        request = requests.condition_check(
            config, action.stored, now=at, version=action.if_version, exists=action.exists
        )
        return requests.transact_item("ConditionCheck", request)

    def _prepared(self) -> tuple[dict[str, Any], float, str]:
        """The request to send: the one already sent if any (a retry must be identical)."""
        if self._pending is None:
            at, token = now(), new_token()
            actions = [
                self._request(action, at, token, index in self._restart)
                for index, action in enumerate(self._actions)
            ]
            self._pending = (requests.transact_write(actions, self._client_token), at, token)
        return self._pending

    async def _send(self) -> None:
        core = self._store._core
        rounds = 0
        while True:
            request, at, token = self._prepared()
            size = len(self._actions)
            with core.operation("transaction", "TransactWriteItems", batch_size=size) as op:
                try:
                    await core.send(op, "TransactWriteItems", request, None)
                except KVError as exc:
                    verdict = await self._verdict(op, exc, at, token, rounds)
                else:
                    return
            if verdict is True:
                return
            if isinstance(verdict, TransactionFailedError):
                raise verdict from verdict.__cause__
            rounds += 1
            await _retry.sleep(_retry.backoff(rounds))

    def _doubtful(self, op: Operation, exc: KVError | None) -> KVError:
        """The `WriteInDoubtError` of this commit (every action's key)."""
        self._in_doubt = True
        if isinstance(exc, WriteInDoubtError):
            exc.keys = tuple(action.key for action in self._actions)
            return exc
        found: KVError = self._store._core.in_doubt(
            op,
            exc,
            None,
            keys=tuple(action.key for action in self._actions),
            why=None if exc is not None else "the retry could not recognise the commit",
        )
        return found

    async def _verdict(
        self, op: Operation, exc: KVError, at: float, token: str, rounds: int
    ) -> TransactionFailedError | bool:
        """After a failed send: True (committed after all), False (send again), or the error.

        A failure that is no outcome is raised (`WriteInDoubtError` if a send may have applied).
        """
        cause = exc.__cause__
        code = getattr(cause, "code", "")
        doubt = self._in_doubt or bool(getattr(cause, "in_doubt", False))
        if isinstance(exc, WriteInDoubtError):
            raise self._doubtful(op, exc) from cause
        if code == "TransactionInProgressException" and rounds < _IN_PROGRESS_RETRIES:
            op.outcome = "retried"  # an earlier attempt with this token is still running
            return False
        if doubt and code != "TransactionCanceledException":
            raise self._doubtful(op, exc) from cause
        if isinstance(exc, KVValidationError) and _TYPE_MISMATCH in str(
            getattr(cause, "message", "")
        ):
            # moto refuses the whole request; DynamoDB cancels it with a reason per action.
            raise self._failed(await self._not_counters(), cause) from cause
        if code != "TransactionCanceledException":
            raise exc
        raw = list(getattr(cause, "body", {}).get("CancellationReasons") or [])
        if doubt:
            op.in_doubt = True  # a failed read below is in doubt too
            if await self._mine(op, raw, token):
                return True  # an earlier attempt of this very request committed
            raise self._doubtful(op, None) from cause
        expired = self._expired_counters(raw, at)
        if expired and rounds < _RESTARTS:
            self._restart |= expired
            self._client_token = uuid.uuid4().hex  # a different request now
            self._pending = None
            op.outcome = "retried"
            return False
        failure = self._failed(self._reasons(raw, at), cause)
        if any(r.code != "condition_failed" for r in failure.failed):
            raise failure from cause
        op.outcome = "condition_failed"
        return failure

    async def _mine(self, op: Operation, raw: list[dict[str, Any]], token: str) -> bool:
        """True if the cancelled request met this commit's own earlier, applied attempt."""
        if any(written_by(reason.get("Item"), token) for reason in raw):
            return True
        if any(reason.get("Item") for reason in raw):
            return False
        written = next((a for a in self._actions if a.kind in ("set", "incr")), None)
        if written is None:  # only deletes and checks: nothing carries the token
            return False
        core = self._store._core
        request = requests.get(core.config, written.stored, consistent=True)
        return written_by((await core.send(op, "GetItem", request, written.key)).get("Item"), token)

    def _expired_counters(self, raw: list[dict[str, Any]], at: float) -> builtins.set[int]:
        """The incr actions cancelled only because their counter had expired."""
        config = self._store.config
        expired: builtins.set[int] = builtins.set()
        for index, (action, reason) in enumerate(zip(self._actions, raw, strict=False)):
            code = code_of(reason.get("Code"))
            if code == "none":
                continue
            item = reason.get("Item")
            if action.kind != "incr" or code != "condition_failed" or not item:
                return builtins.set()
            try:
                if not is_expired(item, config, at):
                    return builtins.set()
            except CorruptItemError:
                return builtins.set()
            expired.add(index)
        return expired

    def _reasons(self, raw: list[dict[str, Any]], at: float) -> list[TransactionReason]:
        config = self._store.config
        out = []
        for index, action in enumerate(self._actions):
            reason = raw[index] if index < len(raw) else {}
            code = code_of(reason.get("Code"))
            current = None
            item = reason.get("Item")
            if item:
                try:
                    if not is_expired(item, config, at):
                        current = version_of(item, config)
                except CorruptItemError:
                    current = None
            message = reason.get("Message") if code != "none" else None
            out.append(
                TransactionReason(index, action.kind, action.key, code, message or None, current)
            )
        return out

    async def _not_counters(self) -> list[TransactionReason]:
        """Which incr actions meet a value that is not a counter (read after the refusal)."""
        keys = [a.key for a in self._actions if a.kind == "incr"]
        try:
            values = await self._store.get_many(keys)
        except KVError:  # pragma: no cover - the read itself failed: blame every incr
            values = dict.fromkeys(keys, "")
        out = []
        for index, action in enumerate(self._actions):
            bad = action.kind == "incr" and not isinstance(values.get(action.key, 0), int)
            why = ("validation", "the value is not a counter") if bad else ("none", None)
            out.append(TransactionReason(index, action.kind, action.key, *why))
        return out

    def _failed(
        self, reasons: list[TransactionReason], cause: BaseException | None
    ) -> TransactionFailedError:
        store = self._store
        failed = [r for r in reasons if r.code != "none"]
        why = ", ".join(sorted({r.code for r in failed})) or "unknown"
        error = store._error(
            TransactionFailedError,
            f"cancelled, nothing applied: {len(failed)} of {len(reasons)} "
            f"actions failed ({why}) in table {store.config.table!r} (see .reasons)",
            "transaction",
            failed[0].key if failed else None,
            reasons=reasons,
            reason=f"TransactionCanceledException: {why}",
        )
        error.__cause__ = cause
        return error


# -- snapshot reads --------------------------------------------------------------


async def snapshot_get(store: AsyncDynamoKV, keys: Any) -> dict[str, Value]:
    """``get_many(keys, snapshot=True)``: up to 100 keys read as one consistent snapshot.

    Raises:
        KVValidationError: More than 100 distinct keys.
        TransactionFailedError: DynamoDB cancelled the read (a conflicting transaction).
        CorruptItemError: Some items cannot be read (``done`` holds the rest).
    """
    config = store.config
    wanted = store._encoded(keys, "get_many")
    if len(wanted) > MAX_ACTIONS:
        raise KVValidationError(
            f"get_many: a snapshot reads at most {MAX_ACTIONS} keys (got {len(wanted)})",
            operation="get_many",
            table=config.table,
        )
    items = await _snapshot_items(store, wanted)
    # Encrypted or offloaded values read by the pipeline.
    opened, unreadable = await store._core.pipeline.open_many(items, wanted, "get_many")
    found, corrupt = decode_many(
        ((wanted[pk], i) for pk, i in items.items()), config, now(), opened
    )
    corrupt.update(unreadable)
    if corrupt:
        raise store._corrupt_many(found, corrupt, len(wanted))
    return found


async def _snapshot_items(store: AsyncDynamoKV, wanted: dict[str, str]) -> dict[str, Item]:
    """TransactGetItems of the wanted stored keys: the items found, by stored key."""
    core = store._core
    if not wanted:
        return {}
    request = requests.transact_get(core.config, list(wanted))
    with core.operation("get_many", "TransactGetItems", batch_size=len(wanted)) as op:
        try:
            response = await core.send(op, "TransactGetItems", request, None)
        except KVError as exc:
            cause = exc.__cause__
            if getattr(cause, "code", "") != "TransactionCanceledException":
                raise
            raw = list(getattr(cause, "body", {}).get("CancellationReasons") or [])
            raw += [{}] * (len(wanted) - len(raw))
            reasons = [
                TransactionReason(index, "get", key, code_of(raw[index].get("Code")))
                for index, key in enumerate(wanted.values())
            ]
            failed = sorted({r.code for r in reasons if r.code != "none"}) or ["unknown"]
            raise store._error(
                TransactionFailedError,
                f"the snapshot read was cancelled ({', '.join(failed)}) in table "
                f"{core.config.table!r}; try again",
                "get_many",
                None,
                reasons=reasons,
                reason=f"TransactionCanceledException: {', '.join(failed)}",
            ) from cause
        responses = response.get("Responses") or []
        items = {
            pk: entry["Item"]
            for pk, entry in zip(wanted, responses, strict=False)
            if entry and entry.get("Item")
        }
        op.outcome = "hit" if items else "miss"
    return items
