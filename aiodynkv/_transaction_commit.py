"""How a `Transaction`'s collected actions are committed, and why a commit failed.

The actions go out as one TransactWriteItems, each write built by the same request
builders as the single-key write (so TTL, namespaces, versions, compression and
write tokens are the same).

Retries: the commit carries a ``ClientRequestToken``, so the SDK's retries are
idempotent on DynamoDB. Every write also carries the commit's write token and a
condition that it was not written by this commit already, so that a retried
request that meets its own applied transaction (a server that ignores the token,
like moto) is recognised as committed instead of cancelled. The request is built
once and kept: calling `commit` again after `WriteInDoubtError` re-sends the very
same request (token, items, write tokens). A commit that may have been applied and
cannot be recognised (only deletes and checks, or an item overwritten since) raises
`WriteInDoubtError`, never "cancelled, nothing applied".

An ``incr`` of an expired counter restarts it, as the single-key ``incr`` does: the
first attempt is cancelled on that counter's condition and the transaction is sent
again with a restart for it (nothing was applied by the first attempt).
"""

from __future__ import annotations

import builtins
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiodynkv import _requests as requests
from aiodynkv import _retry
from aiodynkv._codec import (
    TOKEN,
    Item,
    build_item,
    expiry_ms_of,
    is_expired,
    new_token,
    new_version,
    now,
    version_of,
)
from aiodynkv._errors import (
    CorruptItemError,
    KVError,
    KVValidationError,
    TransactionFailedError,
    TransactionReason,
    WriteInDoubtError,
)
from aiodynkv._requests_tx import condition_check, transact_item, transact_write

if TYPE_CHECKING:
    from aiodynkv._base import BaseStore

__all__ = ["Action", "TransactionCommit", "code_of", "snake"]

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
    value: object = None
    seconds: float | None = None
    if_absent: bool = False
    if_version: int | None = None
    delta: int = 0
    exists: bool | None = None


class TransactionCommit:
    """The commit's steps; `Transaction` holds the actions they send."""

    __slots__ = ("_client_token", "_in_doubt", "_pending", "_restart")

    _store: BaseStore
    _actions: list[Action]
    _client_token: str
    #: An earlier send of this commit may have been applied.
    _in_doubt: bool
    #: The request being committed, its clock and write token: built once, re-sent as is.
    _pending: tuple[dict[str, Any], float, str] | None
    #: The incr actions to send as counter restarts (their counter had expired).
    _restart: builtins.set[int]

    def _item(self, action: Action, at: float, token: str, base: int = 0) -> Item:
        return build_item(
            self._store.config,
            action.stored,
            action.value,
            expiry_ms_of(action.seconds, at or now()),
            base,
            token,
            "transaction",
            action.key,
        )

    # -- DynamoDB ------------------------------------------------------------------

    def _request(self, action: Action, at: float, token: str, restart: bool) -> dict[str, Any]:
        config = self._store.config
        base = new_version()
        if action.kind == "set":
            item = self._item(action, at, token, base)
            request = requests.put(
                config,
                item,
                now=at,
                token=token,
                base=base,
                if_absent=action.if_absent,
                if_version=action.if_version,
            )
            return transact_item("Update", request)
        if action.kind == "incr":
            build = requests.incr_restart if restart else requests.incr
            expires_ms = expiry_ms_of(action.seconds, at)
            request = build(
                config, action.stored, action.delta, expires_ms, now=at, token=token, base=base
            )
            return transact_item("Update", request)
        if action.kind == "delete":
            request = requests.delete(config, action.stored, now=at, if_version=action.if_version)
            return transact_item("Delete", request)
        request = condition_check(
            config, action.stored, now=at, version=action.if_version, exists=action.exists
        )
        return transact_item("ConditionCheck", request)

    def _prepared(self) -> tuple[dict[str, Any], float, str]:
        """The request to send: the one already sent if any (a retry must be identical)."""
        if self._pending is None:
            at, token = now(), new_token()
            actions = [
                self._request(action, at, token, index in self._restart)
                for index, action in enumerate(self._actions)
            ]
            self._pending = (transact_write(actions, self._client_token), at, token)
        return self._pending

    async def _commit_dynamo(self) -> None:
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

    def _doubtful(self, op: Any, exc: KVError | None) -> KVError:
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
        self, op: Any, exc: KVError, at: float, token: str, rounds: int
    ) -> TransactionFailedError | bool:
        """After a failed send: True (committed after all), False (send again), or the error.

        Raises:
            KVError: A failure that is an error, not an outcome (inside the operation);
                `WriteInDoubtError` when an earlier send may have been applied.
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

    async def _mine(self, op: Any, raw: list[dict[str, Any]], token: str) -> bool:
        """True if the cancelled request met this commit's own earlier, applied attempt."""
        mine = {"S": token}
        if any((reason.get("Item") or {}).get(TOKEN) == mine for reason in raw):
            return True
        if any(reason.get("Item") for reason in raw):
            return False
        written = next((a for a in self._actions if a.kind in ("set", "incr")), None)
        if written is None:  # only deletes and checks: nothing carries the token
            return False
        core = self._store._core
        request = requests.get(core.config, written.stored, consistent=True)
        item = (await core.send(op, "GetItem", request, written.key)).get("Item") or {}
        return bool(item.get(TOKEN) == mine)

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
            store: Any = self._store
            values = await store.get_many(keys)
        except KVError:  # pragma: no cover - the read itself failed: blame every incr
            values = dict.fromkeys(keys, "")
        out = []
        for index, action in enumerate(self._actions):
            bad = action.kind == "incr" and not isinstance(values.get(action.key, 0), int)
            out.append(
                TransactionReason(
                    index,
                    action.kind,
                    action.key,
                    "validation" if bad else "none",
                    "the value is not a counter" if bad else None,
                )
            )
        return out

    def _failed(
        self, reasons: list[TransactionReason], cause: BaseException | None
    ) -> TransactionFailedError:
        store = self._store
        failed = [r for r in reasons if r.code != "none"]
        why = ", ".join(sorted({r.code for r in failed})) or "unknown"
        error = store._shown(
            TransactionFailedError(
                f"transaction: cancelled, nothing applied: {len(failed)} of {len(reasons)} "
                f"actions failed ({why}) in table {store.config.table!r} (see .reasons)",
                reasons=reasons,
                operation="transaction",
                table=store.config.table,
                key=failed[0].key if failed else None,
                reason=f"TransactionCanceledException: {why}",
            )
        )
        error.__cause__ = cause
        return error
