"""`AsyncDynamoKV`'s listing: paginated Scans of one namespace (`keys`, `items`, `clear`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiodynkv import _requests as requests
from aiodynkv._base import StoredItem
from aiodynkv._codec import Item, decode_value, expiry_seconds, is_expired, now, version_of
from aiodynkv._errors import CorruptItemError
from aiodynkv._keys import SEPARATOR
from aiodynkv._store_base import StoreParts

__all__ = ["Listing"]


class Listing(StoreParts):
    """`AsyncDynamoKV`'s paginated Scans: the `keys` source and `items`."""

    __slots__ = ()

    async def _pages(
        self, operation: str, prefix: str, *, with_values: bool, expired: bool
    ) -> AsyncIterator[tuple[str, Item]]:
        """Scan pages of this namespace's (user key, item) pairs under `prefix`."""
        config = self._core.config
        start: dict[str, Any] | None = None
        while True:
            request = requests.scan_page(
                config,
                now=now(),
                prefix=self._keys.prefix + prefix,
                root=not self._keys.prefix,
                separator=SEPARATOR,
                with_values=with_values,
                expired=expired,
                start=start,
            )
            with self._core.operation(operation, "Scan") as op:
                response = await self._core.send(op, "Scan", request, None)
            for item in response.get("Items", ()):
                user = self._keys.decode(item[config.partition_key]["S"])
                if user is not None:
                    yield user, item
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    async def _scan(self, prefix: str, *, expired: bool) -> AsyncIterator[str]:
        at = now()
        async for user, item in self._pages("keys", prefix, with_values=False, expired=expired):
            if expired or not self._is_expired(item, user, at):
                yield user

    def _is_expired(self, item: Item, key: str, at: float) -> bool:
        try:
            return is_expired(item, self.config, at)
        except CorruptItemError as exc:
            raise self._corrupt("keys", key, exc.reason or "") from None

    def _again(self, operation: str, user: str) -> Callable[[], Awaitable[Item | None]]:
        """Reads `user`'s item again (its own traced GetItem), for `_opened`."""

        async def again() -> Item | None:
            with self._core.operation(operation, "GetItem", user) as op:
                return await self._read_again(op, self._keys.prefix + user, user)

        return again

    async def items(self, prefix: str | None = None) -> AsyncIterator[StoredItem]:
        """Iterate the unexpired items of this namespace with values, expiry and version.

        A paginated Scan like `keys`, for exports and admin tools.

        Raises:
            CorruptItemError: An item cannot be read (the iteration stops there).
        """
        if prefix is not None and not isinstance(prefix, str):
            raise TypeError(f"items: prefix must be a str, not {type(prefix).__name__}")
        config, at = self.config, now()
        async for user, raw in self._pages("items", prefix or "", with_values=True, expired=False):
            try:
                if is_expired(raw, config, at):
                    continue
                item = await self._opened(
                    raw, self._keys.prefix + user, user, "items", self._again("items", user)
                )
                if item is None:  # deleted while it was listed
                    continue
                yield StoredItem(
                    user,
                    decode_value(item, config),
                    expiry_seconds(item, config),
                    version_of(item, config),
                )
            except CorruptItemError as exc:
                raise self._corrupt("items", user, exc.reason or "") from None
