"""`AsyncDynamoKV`'s batches: BatchGetItem and BatchWriteItem in chunks (``_batch``)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from aiodynkv import _requests as requests
from aiodynkv._args import key_list, pair_of, ttl_seconds
from aiodynkv._batch import (
    MAX_WRITE_BATCH,
    Chunk,
    Outcome,
    chunked,
    drive,
    read_items,
    write_items,
)
from aiodynkv._cache import fill_many, read_many_through, writing
from aiodynkv._codec import (
    Item,
    build_item,
    decode_many,
    expiry_ms_of,
    is_expired,
    new_token,
    new_version,
    now,
    stored_many,
)
from aiodynkv._config import KVConfig
from aiodynkv._errors import BatchIncompleteError, CorruptItemError
from aiodynkv._pipeline import BatchWrites, read_old_items
from aiodynkv._protocol import TTL, StoredItem, Value
from aiodynkv._store_base import StoreParts

__all__ = ["Batches"]

_DELETE_WINDOW = 1000  # keys of one delete_many driven at once (bounds the tasks created)


class Batches(StoreParts):
    """`AsyncDynamoKV`'s batch operations: get_many, set_many, delete_many."""

    __slots__ = ()

    async def get_many(
        self, keys: Iterable[str], *, snapshot: bool = False, consistent: bool = False
    ) -> dict[str, Value]:
        """Read many keys (BatchGetItem, 100 keys per request, chunks concurrently).

        Missing and expired keys are absent from the result; duplicates are read once.
        With ``snapshot=True``, up to 100 keys are read as one consistent snapshot
        (TransactGetItems; see `aiodynkv._transaction.snapshot_get`).
        With ``consistent=True`` the near cache is bypassed and the read is strongly
        consistent whatever ``consistent_read`` says.

        Raises:
            BatchIncompleteError: Keys still unprocessed at ``batch_deadline``; its
                ``unprocessed`` names exactly them and ``done`` holds what was read.
            CorruptItemError: Some items cannot be read; its ``corrupt`` says why per
                key, and ``done`` holds every value that was read fine.
        """
        if snapshot:
            from aiodynkv._transaction import snapshot_get

            return await snapshot_get(self, keys)
        core = self._core
        config = core.config
        wanted = {self._encode(key, "get_many"): key for key in key_list(keys, "get_many")}
        if not wanted:
            return {}
        with core.operation("get_many", "BatchGetItem", batch_size=len(wanted)) as op:
            held, ask, ticket = read_many_through(core.cache, op, wanted, consistent)
            items, outcome = (
                await read_items(core, op, ask, consistent=consistent) if ask else ({}, Outcome())
            )
            nothing = not (items or held) and len(outcome.unprocessed) == len(ask)
            if outcome.fatal is not None and nothing:
                raise outcome.fatal  # nothing read at all: the plain error says it all
            items, unreadable = await core.pipeline.open_many(
                items,
                wanted,
                "get_many",
                lambda pk: self._read_again(op, pk, wanted[pk]),
            )
            found, corrupt = decode_many(
                ((wanted[pk], i) for pk, i in items.items()), config, now()
            )
            corrupt.update(unreadable)
            fill_many(
                core.cache, ticket, ask, outcome.unprocessed, wanted, items, found, corrupt, config
            )
            found.update({wanted[pk]: value for pk, value in held.items() if value is not None})
            if not outcome.complete:
                missing = [wanted[pk] for pk in outcome.unprocessed]
                raise BatchIncompleteError(
                    f"get_many: {len(missing)} of {len(wanted)} keys still unprocessed after "
                    f"{config.batch_deadline} s (batch_deadline)",
                    unprocessed=missing,
                    done=found,
                    operation="get_many",
                    table=config.table,
                ) from outcome.error
            if corrupt:
                raise self._corrupt_many(found, corrupt, len(wanted))
            op.outcome = "hit" if found else "miss"
        return found

    async def _stored_many(self, keys: Iterable[str]) -> dict[str, StoredItem]:
        """Items with value, expiry and version: BatchGetItem, strongly consistent, no cache.

        What an import compares a file against. Missing and expired keys are absent.

        Raises:
            BatchIncompleteError: As `get_many`.
            CorruptItemError: As `get_many`.
        """
        core = self._core
        wanted = {self._encode(key, "get_many"): key for key in key_list(keys, "get_many")}
        if not wanted:
            return {}
        with core.operation("get_many", "BatchGetItem", batch_size=len(wanted)) as op:
            items, outcome = await read_items(core, op, list(wanted), consistent=True)
            if outcome.fatal is not None and not items and len(outcome.unprocessed) == len(wanted):
                raise outcome.fatal  # nothing read at all: the plain error says it all
            items, unreadable = await core.pipeline.open_many(items, wanted, "get_many")
            found, corrupt = stored_many(
                ((wanted[pk], item) for pk, item in items.items()), core.config, now()
            )
            corrupt.update(unreadable)
            values = {key: stored.value for key, stored in found.items()}
            if not outcome.complete:
                missing = [wanted[pk] for pk in outcome.unprocessed]
                raise BatchIncompleteError(
                    f"get_many: {len(missing)} of {len(wanted)} keys still unprocessed after "
                    f"{core.config.batch_deadline} s (batch_deadline)",
                    unprocessed=missing,
                    done=values,
                    operation="get_many",
                    table=core.config.table,
                ) from outcome.error
            if corrupt:
                raise self._corrupt_many(values, corrupt, len(wanted))
            op.outcome = "hit" if found else "miss"
        return found

    async def _write_many(
        self,
        operation: str,
        entries: dict[str, dict[str, Any]],
        users: dict[str, Any],
        expires_at: float | None = None,
    ) -> None:
        """BatchWriteItem in chunks of 25; `users` maps stored keys to (user key, value)."""
        core = self._core
        config = core.config
        with (
            core.operation(operation, "BatchWriteItem", batch_size=len(entries)) as op,
            writing(core.cache, *entries) as cache,
        ):
            hooks = BatchWrites(
                core.pipeline,
                cache,
                operation,
                users,
                expires_at,
                functools.partial(read_old_items, core),
            )
            await hooks.before(op, entries)
            outcome = await write_items(core, op, list(entries.values()))
            await hooks.after(entries, outcome.unprocessed, outcome.in_doubt)
            if outcome.complete:
                return
            unprocessed = [users[pk][0] for pk in outcome.unprocessed]
            doubtful = [users[pk][0] for pk in outcome.in_doubt]
            left = set(outcome.unprocessed) | set(outcome.in_doubt)
            if outcome.fatal is not None and len(outcome.unprocessed) == len(entries):
                raise outcome.fatal  # nothing written: the plain error says it all
            done = {user: value for pk, (user, value) in users.items() if pk not in left}
            raise BatchIncompleteError(
                f"{operation}: of {len(entries)} items, {len(done)} done, {len(unprocessed)} "
                f"not written, {len(doubtful)} in doubt (see .done, .unprocessed, .in_doubt)",
                unprocessed=unprocessed,
                in_doubt=doubtful,
                done=done,
                operation=operation,
                table=config.table,
            ) from outcome.error

    async def set_many(
        self,
        items: Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]],
        *,
        ttl: TTL | None = None,
    ) -> None:
        """Write many values (BatchWriteItem, 25 per request, chunks concurrently).

        Every key and value is validated before anything is sent; for a key given
        twice the last value wins. Each item gets a fresh version. A retried chunk
        is idempotent (the same items are put again).

        Raises:
            BatchIncompleteError: The batch did not finish; ``done``, ``unprocessed``
                and ``in_doubt`` say what happened to each key.
        """
        config = self._core.config
        seconds = ttl_seconds(ttl, "set_many")
        at, token = now(), new_token()
        expires_ms = expiry_ms_of(seconds, at)
        pairs = items.items() if isinstance(items, Mapping) else items
        entries: dict[str, dict[str, Any]] = {}
        users: dict[str, Any] = {}
        for pair in pairs:
            key, value = pair_of(pair)
            stored = self._encode(key, "set_many")
            item = build_item(
                config,
                stored,
                value,
                expires_ms,
                new_version(),
                token,
                "set_many",
                key,
                check_size=not self._core.pipeline.writes,
            )
            entries[stored] = requests.put_request(item)
            users[stored] = (key, value)
        if entries:
            expires_at = None if expires_ms is None else expires_ms / 1000.0
            await self._write_many("set_many", entries, users, expires_at)

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete many keys; return how many existed (and had not expired) before the call.

        Each key is one DeleteItem returning the item it removed (``ReturnValues=ALL_OLD``),
        up to ``batch_concurrency`` x 25 in flight, since BatchWriteItem returns no old
        items. Reading first and then deleting in batches would miscount under races (a
        key written or deleted by another caller between the read and the delete); a
        DeleteItem removes and returns its item atomically, so concurrent callers count
        every key exactly once between them. Expired items not yet swept are deleted
        too, and not counted. Missing keys and duplicates count nothing. A key whose
        request was sent again after a lost reply, and whose retry found nothing, may
        have been deleted by the lost attempt: it is reported in doubt, never uncounted.

        Returns:
            How many of the keys existed unexpired and were deleted by this call.

        Raises:
            BatchIncompleteError: The batch did not finish; ``done`` (None per key),
                ``unprocessed`` and ``in_doubt`` say what happened to each key.
        """
        core = self._core
        config = core.config
        users: dict[str, str] = {}
        for key in key_list(keys, "delete_many"):
            users[self._encode(key, "delete_many")] = key
        if not users:
            return 0
        old: dict[str, Item | None] = {}
        existed: set[str] = set()

        async def send(chunk: Chunk) -> None:
            pk = chunk[0]
            request = requests.delete(config, pk, now=now())
            response = await core.send(op, "DeleteItem", request, users[pk])
            item = old[pk] = response.get("Attributes")
            if item is None and response.get("ResponseMetadata", {}).get("InDoubt"):
                # An earlier attempt may have deleted it: the retry cannot say.
                raise core.in_doubt(op, None, users[pk], why="the retry found the key missing")
            if item is not None and _was_live(item, config):
                existed.add(pk)

        with (
            core.operation("delete_many", "DeleteItem", batch_size=len(users)) as op,
            writing(core.cache, *users) as cache,
        ):
            outcome = Outcome()
            for window in chunked(list(users), _DELETE_WINDOW):
                if outcome.fatal is not None:
                    outcome.unprocessed.extend(window)
                    continue
                part = await drive(
                    [[pk] for pk in window],
                    send,
                    concurrency=config.batch_concurrency * MAX_WRITE_BATCH,
                    deadline_seconds=config.batch_deadline,
                    abort=core.abort,
                )
                outcome.unprocessed += part.unprocessed
                outcome.in_doubt += part.in_doubt
                outcome.error = part.error or outcome.error
                outcome.fatal = part.fatal or outcome.fatal
            for pk in old:
                cache.done(pk, None)
            pointers = [core.pipeline.pointer_of(item) for item in old.values()]
            if any(pointers):
                await core.pipeline.discard(pointers, "delete_many")
            op.outcome = "hit" if existed else "miss"
            if outcome.complete:
                return len(existed)
            if outcome.fatal is not None and len(outcome.unprocessed) == len(users):
                raise outcome.fatal  # nothing deleted: the plain error says it all
            left = set(outcome.unprocessed) | set(outcome.in_doubt)
            raise BatchIncompleteError(
                f"delete_many: of {len(users)} keys, {len(users) - len(left)} done, "
                f"{len(outcome.unprocessed)} not deleted, {len(outcome.in_doubt)} in doubt "
                "(see .done, .unprocessed, .in_doubt)",
                unprocessed=[users[pk] for pk in outcome.unprocessed],
                in_doubt=[users[pk] for pk in outcome.in_doubt],
                done={user: None for pk, user in users.items() if pk not in left},
                operation="delete_many",
                table=config.table,
            ) from outcome.error

    async def _delete_batch(self, keys: Iterable[str]) -> None:
        """Delete keys with BatchWriteItem (25 per request), counting nothing (for `clear`)."""
        config = self._core.config
        entries: dict[str, dict[str, Any]] = {}
        users: dict[str, Any] = {}
        for key in key_list(keys, "delete_many"):
            stored = self._encode(key, "delete_many")
            entries[stored] = requests.delete_request(config, stored)
            users[stored] = (key, None)
        if entries:
            await self._write_many("delete_many", entries, users)


def _was_live(item: Item, config: KVConfig) -> bool:
    """Whether a deleted item had not expired (one with an unreadable expiry counts)."""
    try:
        return not is_expired(item, config, now())
    except CorruptItemError:
        return True
