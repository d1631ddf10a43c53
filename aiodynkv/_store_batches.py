"""`AsyncDynamoKV`'s batches: BatchGetItem and BatchWriteItem in chunks (``_batch``)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from aiodynkv import _requests as requests
from aiodynkv._args import key_list, pair_of, ttl_seconds
from aiodynkv._batch import Outcome, read_items, write_items
from aiodynkv._cache import fill_many, read_many_through, writing
from aiodynkv._codec import build_item, decode_many, expiry_ms_of, new_token, new_version, now
from aiodynkv._errors import BatchIncompleteError
from aiodynkv._pipeline import BatchWrites, read_old_items
from aiodynkv._protocol import TTL, Value
from aiodynkv._store_base import StoreParts

__all__ = ["Batches"]


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

    async def delete_many(self, keys: Iterable[str]) -> None:
        """Delete many keys (BatchWriteItem, 25 per request); missing keys are fine.

        Raises:
            BatchIncompleteError: The batch did not finish (see `set_many`).
        """
        config = self._core.config
        entries: dict[str, dict[str, Any]] = {}
        users: dict[str, Any] = {}
        for key in key_list(keys, "delete_many"):
            stored = self._encode(key, "delete_many")
            entries[stored] = requests.delete_request(config, stored)
            users[stored] = (key, None)
        if entries:
            await self._write_many("delete_many", entries, users)
