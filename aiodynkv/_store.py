"""`AsyncDynamoKV`: the store's lifecycle and operations.

Every operation strings the same steps together: validate (``_keys``,
``_codec``), build the request, open one telemetry operation, send it through
the shared client (`_Core.send`, which maps errors), and decode the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import os
import time
import warnings
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aioboto3
import botocore.exceptions as bex
import botocore.loaders
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from aiodynkv import _table
from aiodynkv._batch import MAX_GET_BATCH, MAX_WRITE_BATCH, ReadCoalescer, chunked, drive
from aiodynkv._codec import (
    COMPRESSION_FLAG,
    Item,
    build_item,
    check_conditions,
    check_delta,
    check_version,
    decode_value,
    expiry_of,
    is_expired,
    key_list,
    new_version,
    pair_of,
)
from aiodynkv._config import KVConfig
from aiodynkv._derived import DerivedOps
from aiodynkv._errors import (
    BatchIncompleteError,
    ConditionFailedError,
    InsecureEndpointWarning,
    KeyNotFoundError,
    KVConfigError,
    KVError,
    KVValidationError,
    StoreClosedError,
    TransientError,
    WrongTypeError,
    map_error,
)
from aiodynkv._keys import SEPARATOR, KeyCodec
from aiodynkv._protocol import MISSING, TTL, Health, Value
from aiodynkv._telemetry import Telemetry

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from aiodynkv._telemetry import Operation

__all__ = ["AsyncDynamoKV"]

_LOCAL_CREDENTIALS = {"aws_access_key_id": "aiodynkv-local", "aws_secret_access_key": "local"}
_INCR_RESETS = 5


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@functools.lru_cache(maxsize=1)
def _shared_loader() -> Any:
    """The botocore data loader, which caches what it has parsed (service models, rules)."""
    return botocore.loaders.create_loader()


def _uses_local_credentials(config: KVConfig) -> bool:
    """A loopback endpoint with no credentials configured gets placeholder ones."""
    if not config.is_local or config.profile:
        return False
    if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"):
        return False
    shared = os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")
    return not Path(shared).expanduser().exists()


class _Core:
    """What a store and its namespace views share: config, client, telemetry, lifecycle."""

    def __init__(self, config: KVConfig, client: Any) -> None:
        self.config = config
        self.tel = Telemetry(config)
        self.state = _State.UNOPENED
        self.client: Any = client
        self.owns_client = client is None
        self.stack = contextlib.AsyncExitStack()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.inflight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.coalescer = ReadCoalescer(self) if config.coalesce_reads else None
        # Requests wait here for a pooled connection, not inside aiohttp's pool, where
        # the wait would count against connect_timeout and fail calls under load.
        self.slots = asyncio.Semaphore(config.max_pool_connections)
        # Constant request parts, built once.
        self.expiry_projection: dict[str, Any] = {
            "ProjectionExpression": "#k, #t",
            "ExpressionAttributeNames": {"#k": config.partition_key, "#t": config.ttl_attribute},
        }

    async def open(self) -> None:
        if self.state is not _State.UNOPENED:
            raise StoreClosedError(
                f"store for table {self.config.table!r} was already "
                f"{'opened' if self.state is _State.OPEN else 'closed'}; create a new one",
                table=self.config.table,
            )
        self.loop = asyncio.get_running_loop()
        try:
            if self.client is None:
                try:
                    self.client = await self.stack.enter_async_context(self._new_client())
                except bex.NoRegionError:
                    raise KVConfigError(
                        "region",
                        "no region configured: pass region=, set AWS_REGION or AIODYNKV_REGION, "
                        "or set one in ~/.aws/config",
                    ) from None
            self._adopt_region()
            self.state = _State.OPEN
            if self.config.create_table:
                await _table.ensure_table(self.client, self.config, self.tel)
        except BaseException:
            await self.close()
            raise

    def _adopt_region(self) -> None:
        """Take the region the SDK resolved (from ~/.aws/config, say) into the config."""
        region = getattr(getattr(self.client, "meta", None), "region_name", None)
        if isinstance(region, str) and region and region != self.config.region:
            self.config = self.config.replace(region=region)
            self.tel = Telemetry(self.config)

    def _new_client(self) -> Any:
        config = self.config
        botocore_session = AioSession()
        # The parsed service model and endpoint rules are the same for every store:
        # share one loader per process instead of parsing them again per store.
        botocore_session.register_component("data_loader", _shared_loader())
        session = aioboto3.Session(botocore_session=botocore_session, profile_name=config.profile)
        credentials = _LOCAL_CREDENTIALS if _uses_local_credentials(config) else {}
        from aiodynkv import __version__

        botocore_config = AioConfig(
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            retries={"max_attempts": config.max_attempts, "mode": config.retry_mode},
            max_pool_connections=config.max_pool_connections,
            user_agent_extra=f"aiodynkv/{__version__}",
        )
        # None lets the SDK resolve the region itself (AWS_REGION, ~/.aws/config).
        region = config.region or ("us-east-1" if config.is_local else None)
        return session.client(
            "dynamodb",
            region_name=region,
            endpoint_url=config.endpoint,
            config=botocore_config,
            **credentials,
        )

    async def close(self) -> None:
        if self.state is _State.CLOSED:
            return
        if self.state is _State.OPEN:
            # New calls are refused from here on; those in flight (and coalesced
            # reads not yet sent) finish, up to read_timeout.
            self.state = _State.CLOSING
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.idle.wait(), timeout=self.config.read_timeout)
        self.state = _State.CLOSED
        await self.stack.aclose()
        if self.owns_client:
            self.client = None

    def begin(self) -> None:
        """Count a call in flight (`aclose` waits for them)."""
        self.inflight += 1
        self.idle.clear()

    def end(self, *_: object) -> None:
        """A call in flight has finished."""
        self.inflight -= 1
        if not self.inflight:
            self.idle.set()

    def check(self, operation: str, *, internal: bool = False) -> Any:
        """The client, if the store is open and used from its own event loop.

        `internal` requests (coalesced reads already accepted) may still run while closing.
        """
        if self.state is not _State.OPEN and not (internal and self.state is _State.CLOSING):
            raise StoreClosedError(
                f"{operation}: the store is {self.state.value}; "
                "use `async with AsyncDynamoKV(...)` or `await kv.open()`",
                operation=operation,
                table=self.config.table,
            )
        if asyncio.get_running_loop() is not self.loop:
            raise KVError(
                f"{operation}: the store was opened on another event loop; "
                "open one store per event loop",
                operation=operation,
                table=self.config.table,
            )
        return self.client

    async def send(
        self,
        op: Operation,
        method: str,
        request: dict[str, Any],
        key: str | None,
        *,
        internal: bool = False,
    ) -> Any:
        """Send one request through the shared client; map any failure to a `KVError`."""
        client = self.check(op.name, internal=internal)
        self.begin()
        try:
            async with self.slots:
                response = await getattr(client, method)(**request)
        except Exception as exc:
            if isinstance(exc, bex.ClientError):
                op.observe(exc.response)
            raise map_error(exc, operation=op.name, table=self.config.table, key=key) from exc
        finally:
            self.end()
        op.observe(response)
        return response

    async def batch_get(
        self, op: Operation, stored: list[str], *, coalesced: bool = False
    ) -> tuple[dict[str, Item], list[str], TransientError | None]:
        """BatchGetItem in chunks of 100, retrying unprocessed keys until ``batch_deadline``.

        For coalesced `get` calls the bound is a single call's (``max_attempts x
        read_timeout``) and a failed request is not retried beyond the SDK's own
        retries, so a coalesced get fails as fast as a plain GetItem would.

        Returns:
            The items found by stored key (expired ones included), the stored keys
            still unprocessed at the deadline, and the last transient error seen.
        """
        config = self.config
        pk_name = config.partition_key
        found: dict[str, Item] = {}

        async def send(keys: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            response = await self.send(
                op,
                "batch_get_item",
                {
                    "RequestItems": {
                        config.table: {"Keys": keys, "ConsistentRead": config.consistent_read}
                    },
                    "ReturnConsumedCapacity": "TOTAL",
                },
                None,
                internal=coalesced,
            )
            for item in response.get("Responses", {}).get(config.table, ()):
                found[item[pk_name]["S"]] = item
            rest = response.get("UnprocessedKeys", {}).get(config.table)
            return rest["Keys"] if rest else None

        requests = [
            [{pk_name: {"S": pk}} for pk in chunk] for chunk in chunked(stored, MAX_GET_BATCH)
        ]
        leftovers, cause = await drive(
            requests,
            send,
            concurrency=config.batch_concurrency,
            deadline_seconds=(
                config.max_attempts * config.read_timeout if coalesced else config.batch_deadline
            ),
            retry_errors=not coalesced,
        )
        return found, [k[pk_name]["S"] for rest in leftovers for k in rest], cause


class AsyncDynamoKV(DerivedOps):
    """An asyncio key-value store on one DynamoDB table.

    Open it once for the life of the service and share it::

        async with AsyncDynamoKV(table="kv", endpoint="http://127.0.0.1:8000",
                                 create_table=True) as kv:
            await kv.set("user:1", "alice", ttl=3600)
            name = await kv.get("user:1")

    Args:
        config: A `KVConfig`; keyword fields may be given instead, or on top of it.
        client: An open aiobotocore DynamoDB client to use as-is (never closed by us).
        **fields: `KVConfig` fields (``table=``, ``endpoint=``, ``create_table=``...).

    Raises:
        KVConfigError: A field is invalid; the message names it.
    """

    __slots__ = ("_core", "_keys", "_view")

    def __init__(
        self,
        config: KVConfig | None = None,
        /,
        *,
        client: DynamoDBClient | Any | None = None,
        **fields: Any,
    ) -> None:
        if config is None:
            config = KVConfig(**fields)
        elif fields:
            config = config.replace(**fields)
        if config.endpoint and config.endpoint.startswith("http://") and not config.is_local:
            warnings.warn(
                f"endpoint {config.endpoint!r} is plain http on a host that is not loopback: "
                "requests and their (signed) credentials travel unencrypted; use https",
                InsecureEndpointWarning,
                stacklevel=2,
            )
        self._core = _Core(config, client)
        self._keys = KeyCodec(config.namespace)
        self._view = False

    @classmethod
    def from_env(cls, *, client: Any | None = None, **overrides: Any) -> AsyncDynamoKV:
        """A store configured from ``AIODYNKV_*`` variables (see `KVConfig.from_env`)."""
        return cls(KVConfig.from_env(**overrides), client=client)

    @property
    def config(self) -> KVConfig:
        """The store's configuration."""
        return self._core.config

    @property
    def client(self) -> DynamoDBClient | Any:
        """The underlying aiobotocore client (None until opened)."""
        return self._core.client

    @property
    def is_open(self) -> bool:
        """True between a successful `open` and `aclose`."""
        return self._core.state is _State.OPEN

    def __repr__(self) -> str:
        ns = f", namespace={self._keys.namespace!r}" if self._keys.namespace else ""
        return (
            f"<AsyncDynamoKV table={self.config.table!r} endpoint={self.config.endpoint!r}"
            f"{ns} {self._core.state.value}>"
        )

    # -- lifecycle ---------------------------------------------------------

    async def open(self) -> AsyncDynamoKV:
        """Create the client (and the table with ``create_table=True``).

        A namespace view does not open anything: it checks its parent is open.

        Raises:
            StoreClosedError: The store was opened or closed before (for a view:
                its parent is not open).
        """
        if self._view:
            self._core.check("open")
        else:
            await self._core.open()
        return self

    async def aclose(self) -> None:
        """Wait for calls in flight (up to ``read_timeout``), then close the client. Idempotent.

        Closing a namespace view does nothing: the view closes with its parent.
        """
        if not self._view:
            await self._core.close()

    def namespace(self, name: str) -> AsyncDynamoKV:
        """A view whose keys live in namespace `name`, sharing this store's client.

        Namespaces do not nest: ``kv.namespace("a").namespace("b")`` is namespace
        ``"b"``. The view opens and closes with its parent; its own `aclose` does nothing.
        """
        view = object.__new__(AsyncDynamoKV)
        view._core = self._core
        view._view = True
        try:
            view._keys = KeyCodec(name)
        except ValueError as exc:
            raise KVValidationError(f"namespace: {exc}") from None
        return view

    async def ensure_table(self) -> None:
        """Create the table if missing (on-demand billing), wait for ACTIVE, enable TTL.

        Safe to call twice and from several processes at once.
        """
        core = self._core
        await _table.ensure_table(core.check("ensure_table"), core.config, core.tel)

    async def health(self) -> Health:
        """DescribeTable: UP when the table is ACTIVE. Never raises for server trouble."""
        core = self._core
        client = core.client if core.state is _State.OPEN else None
        return await _table.probe_health(client, core.config, core.tel)

    # -- reads ---------------------------------------------------------------

    def _key(self, key: object, operation: str) -> dict[str, Any]:
        return {
            self._core.config.partition_key: {
                "S": self._keys.encode(key, operation, self._core.config.table)
            }
        }

    async def _get_item(
        self, op: Operation, key: str, stored: dict[str, Any], **extra: Any
    ) -> Item | None:
        config = self._core.config
        response = await self._core.send(
            op,
            "get_item",
            {
                "TableName": config.table,
                "Key": stored,
                "ConsistentRead": config.consistent_read,
                "ReturnConsumedCapacity": "TOTAL",
                **extra,
            },
            key,
        )
        return _live(op, response.get("Item"), config.ttl_attribute)

    def _not_found(self, key: str, operation: str) -> KeyNotFoundError:
        return KeyNotFoundError(
            f"{operation}: key {key!r} not found in table {self._core.config.table!r}",
            operation=operation,
            table=self._core.config.table,
            key=key,
        )

    async def get(self, key: str, default: Any = MISSING) -> Any:
        """Return the value stored at `key`: str, bytes, or int for a counter.

        Args:
            key: The key.
            default: Returned when the key is missing or expired.

        Raises:
            KeyNotFoundError: The key is missing or expired and no default was given.
            InvalidKeyError: The key is invalid.
        """
        core = self._core
        stored = self._keys.encode(key, "get", core.config.table)
        with core.tel.operation("get", "GetItem", key) as op:
            if core.coalescer is not None:
                raw = await core.coalescer.get(stored, key, op)
                item = _live(op, raw, core.config.ttl_attribute)
            else:
                item = await self._get_item(op, key, {core.config.partition_key: {"S": stored}})
            if item is None:
                if default is MISSING:
                    raise self._not_found(key, "get")
                return default
            return decode_value(item, self._core.config.value_attribute)

    async def get_with_version(self, key: str) -> tuple[Value, int]:
        """Return the value at `key` and its version, for `set(..., if_version=)`.

        Raises:
            KeyNotFoundError: The key is missing or expired.
        """
        stored = self._key(key, "get_with_version")
        config = self._core.config
        with self._core.tel.operation("get_with_version", "GetItem", key) as op:
            item = await self._get_item(op, key, stored)
            if item is None:
                raise self._not_found(key, "get_with_version")
            version = item.get(config.version_attribute)
            return decode_value(item, config.value_attribute), int(version["N"]) if version else 0

    async def exists(self, key: str) -> bool:
        """True if `key` exists and has not expired (reads only the key and its expiry)."""
        stored = self._key(key, "exists")
        with self._core.tel.operation("exists", "GetItem", key) as op:
            return await self._get_item(op, key, stored, **self._core.expiry_projection) is not None

    async def ttl(self, key: str) -> float | None:
        """Seconds until `key` expires, or None when it never expires.

        Raises:
            KeyNotFoundError: The key is missing or expired.
        """
        stored = self._key(key, "ttl")
        config = self._core.config
        with self._core.tel.operation("ttl", "GetItem", key) as op:
            item = await self._get_item(op, key, stored, **self._core.expiry_projection)
            if item is None:
                raise self._not_found(key, "ttl")
            expires = item.get(config.ttl_attribute)
            return None if expires is None else max(0.0, float(expires["N"]) - time.time())

    # -- writes --------------------------------------------------------------

    async def set(
        self,
        key: str,
        value: str | bytes,
        *,
        ttl: TTL | None = None,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> bool:
        """Store `value` at `key` (one UpdateItem, one write unit per KB).

        Args:
            key: The key.
            value: str or bytes; other types raise TypeError (use `set_json`).
            ttl: Seconds or a timedelta after which the key reads as missing; None
                stores it without expiry (removing an earlier one).
            if_absent: Write only if the key is missing or expired.
            if_version: Write only if the key's current version is this one.

        Returns:
            True if written; False only when `if_absent` found the key present.

        Raises:
            ConditionFailedError: `if_version` did not match (carries ``current_version``).
            ValueTooLargeError: The item would exceed 400 KB.
            TypeError: The value is not str or bytes.
        """
        config = self._core.config
        stored = self._keys.encode(key, "set", config.table)
        check_conditions(if_absent, if_version, "set")
        now = time.time()
        expires = expiry_of(ttl, "set", now)
        base = new_version()
        item = build_item(config, stored, value, expires, base, "set", key)
        names = {"#v": config.value_attribute, "#r": config.version_attribute}
        values: dict[str, Any] = {
            ":v": item[config.value_attribute],
            ":base": {"N": str(base)},
            ":one": {"N": "1"},
        }
        sets = ["#v = :v", _BUMP]
        removes = []
        names["#t"] = config.ttl_attribute
        if expires is not None:
            sets.append("#t = :t")
            values[":t"] = item[config.ttl_attribute]
        else:
            removes.append("#t")
        names["#z"] = COMPRESSION_FLAG
        if COMPRESSION_FLAG in item:
            sets.append("#z = :z")
            values[":z"] = item[COMPRESSION_FLAG]
        else:
            removes.append("#z")
        request: dict[str, Any] = {
            "TableName": config.table,
            "Key": {config.partition_key: item[config.partition_key]},
            "UpdateExpression": f"SET {', '.join(sets)}"
            + (f" REMOVE {', '.join(removes)}" if removes else ""),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnConsumedCapacity": "TOTAL",
        }
        if if_absent:
            names["#k"] = config.partition_key
            request["ConditionExpression"] = "attribute_not_exists(#k) OR #t <= :now"
            values[":now"] = {"N": str(int(now))}
        elif if_version is not None:
            names["#k"] = config.partition_key
            request["ConditionExpression"] = _VERSION_CONDITION[if_version == 0]
            values[":expected"] = {"N": str(if_version)}
            values[":now"] = {"N": str(int(now))}
        with self._core.tel.operation("set", "UpdateItem", key) as op:
            try:
                await self._core.send(op, "update_item", request, key)
            except ConditionFailedError as exc:
                if if_absent:
                    op.outcome = "condition_failed"
                    return False
                raise await self._version_conflict(exc, stored, key, "set") from exc.__cause__
            return True

    async def _version_conflict(
        self, exc: ConditionFailedError, stored: str, key: str, operation: str
    ) -> ConditionFailedError:
        """The condition error, with the item's current version read back."""
        config = self._core.config
        current: int | None = None
        with self._core.tel.operation(operation, "GetItem", key) as op:
            item = await self._get_item(
                op,
                key,
                {config.partition_key: {"S": stored}},
                ProjectionExpression="#r, #t",
                ExpressionAttributeNames={
                    "#r": config.version_attribute,
                    "#t": config.ttl_attribute,
                },
            )
        if item is not None:
            version = item.get(config.version_attribute)
            current = int(version["N"]) if version else 0
        return ConditionFailedError(
            f"{operation}: version condition failed for key {key!r} in table {config.table!r} "
            f"(current version: {current})",
            current_version=current,
            operation=operation,
            table=config.table,
            key=key,
            reason=exc.reason,
        )

    async def delete(self, key: str, *, if_version: int | None = None) -> bool:
        """Delete `key`; True if it existed (and had not expired). Never raises for a missing key.

        Args:
            key: The key.
            if_version: Delete only if the key's current version is this one.

        Raises:
            ConditionFailedError: `if_version` did not match (carries ``current_version``).
        """
        config = self._core.config
        stored = self._key(key, "delete")
        request: dict[str, Any] = {
            "TableName": config.table,
            "Key": stored,
            "ReturnValues": "ALL_OLD",
            "ReturnConsumedCapacity": "TOTAL",
        }
        if if_version is not None:
            check_version(if_version, "delete")
            request["ConditionExpression"] = _VERSION_CONDITION[if_version == 0]
            request["ExpressionAttributeNames"] = {
                "#k": config.partition_key,
                "#r": config.version_attribute,
                "#t": config.ttl_attribute,
            }
            request["ExpressionAttributeValues"] = {
                ":expected": {"N": str(if_version)},
                ":now": {"N": str(int(time.time()))},
            }
        with self._core.tel.operation("delete", "DeleteItem", key) as op:
            try:
                response = await self._core.send(op, "delete_item", request, key)
            except ConditionFailedError as exc:
                pk = stored[config.partition_key]["S"]
                raise await self._version_conflict(exc, pk, key, "delete") from exc.__cause__
            old = response.get("Attributes")
            existed = bool(old) and not is_expired(old, config.ttl_attribute, time.time())
            op.outcome = "hit" if existed else "miss"
            return existed

    async def _update_existing(
        self, key: str, operation: str, clause: str, values: dict[str, Any]
    ) -> bool:
        """An UpdateItem applied only to a present, unexpired key; False when absent.

        `clause` is the SET part (after the version bump) or a REMOVE clause.
        """
        config = self._core.config
        stored = self._key(key, operation)
        expression = (
            f"SET {_BUMP}, {clause[4:]}" if clause.startswith("SET ") else f"SET {_BUMP} {clause}"
        )
        request = {
            "TableName": config.table,
            "Key": stored,
            "UpdateExpression": expression,
            "ConditionExpression": f"attribute_exists(#k) AND {_UNEXPIRED}",
            "ExpressionAttributeNames": {
                "#k": config.partition_key,
                "#t": config.ttl_attribute,
                "#r": config.version_attribute,
            },
            "ExpressionAttributeValues": {
                **values,
                ":now": {"N": str(int(time.time()))},
                ":one": {"N": "1"},
                ":base": {"N": str(new_version())},
            },
            "ReturnConsumedCapacity": "TOTAL",
        }
        with self._core.tel.operation(operation, "UpdateItem", key) as op:
            try:
                await self._core.send(op, "update_item", request, key)
            except ConditionFailedError:
                op.outcome = "miss"
                return False
            return True

    async def expire(self, key: str, ttl: TTL) -> bool:
        """Give an existing key a new expiry; False if it is missing or expired."""
        expires = expiry_of(ttl, "expire")
        if expires is None:
            raise KVValidationError(
                "expire: ttl must not be None (use persist)", operation="expire"
            )
        return await self._update_existing(
            key, "expire", "SET #t = :t", {":t": {"N": str(expires)}}
        )

    async def persist(self, key: str) -> bool:
        """Remove the expiry of an existing key; False if it is missing or expired."""
        return await self._update_existing(key, "persist", "REMOVE #t", {})

    async def incr(self, key: str, delta: int = 1, *, ttl: TTL | None = None) -> int:
        """Atomically add `delta` to the counter at `key` and return the new value.

        A missing or expired key starts from 0. Without `ttl` an existing expiry is kept.
        One UpdateItem (two when resetting an expired counter).

        Raises:
            WrongTypeError: The stored value is not a counter; nothing is changed.
            TypeError: `delta` is not an int.
        """
        config = self._core.config
        stored = self._key(key, "incr")
        check_delta(delta, "incr")
        expires = expiry_of(ttl, "incr")
        names = {
            "#v": config.value_attribute,
            "#r": config.version_attribute,
            "#t": config.ttl_attribute,
        }
        values: dict[str, Any] = {
            ":d": {"N": str(delta)},
            ":one": {"N": "1"},
        }
        ttl_set = ", #t = :t" if expires is not None else ""
        if expires is not None:
            values[":t"] = {"N": str(expires)}
        with self._core.tel.operation("incr", "UpdateItem", key) as op:
            for _ in range(_INCR_RESETS):
                now = {"N": str(int(time.time()))}
                base = {"N": str(new_version())}
                try:
                    response = await self._core.send(
                        op,
                        "update_item",
                        {
                            "TableName": config.table,
                            "Key": stored,
                            "UpdateExpression": f"ADD #v :d SET {_BUMP}{ttl_set}",
                            "ConditionExpression": "attribute_not_exists(#t) OR #t > :now",
                            "ExpressionAttributeNames": names,
                            "ExpressionAttributeValues": {**values, ":now": now, ":base": base},
                            "ReturnValues": "UPDATED_NEW",
                            "ReturnConsumedCapacity": "TOTAL",
                        },
                        key,
                    )
                    return int(response["Attributes"][config.value_attribute]["N"])
                except ConditionFailedError:
                    pass  # expired: restart the counter below, unless someone else did
                except KVValidationError as exc:
                    raise self._wrong_type(exc, key) from exc.__cause__
                try:
                    await self._core.send(
                        op,
                        "update_item",
                        {
                            "TableName": config.table,
                            "Key": stored,
                            "UpdateExpression": (
                                f"SET #v = :d, {_BUMP}"
                                + (
                                    ", #t = :t REMOVE #z"
                                    if expires is not None
                                    else " REMOVE #t, #z"
                                )
                            ),
                            "ConditionExpression": "#t <= :now",
                            "ExpressionAttributeNames": {**names, "#z": COMPRESSION_FLAG},
                            "ExpressionAttributeValues": {**values, ":now": now, ":base": base},
                            "ReturnConsumedCapacity": "TOTAL",
                        },
                        key,
                    )
                except ConditionFailedError:
                    continue  # someone else restarted it: add to theirs
                return delta
            raise KVError(  # pragma: no cover - needs five lost races in a row
                f"incr: key {key!r} kept expiring under contention",
                operation="incr",
                table=config.table,
                key=key,
            )

    def _wrong_type(self, exc: KVValidationError, key: str) -> KVValidationError:
        reason = (exc.reason or "").lower()
        if "type" in reason or "operand" in reason:
            return WrongTypeError(
                f"incr: the value at key {key!r} is not a counter",
                operation="incr",
                table=self._core.config.table,
                key=key,
                reason=exc.reason,
            )
        return exc

    # -- batches -------------------------------------------------------------

    async def get_many(self, keys: Iterable[str]) -> dict[str, Value]:
        """Read many keys (BatchGetItem, 100 keys per request, chunks concurrently).

        Missing and expired keys are absent from the result; duplicates are read once.

        Raises:
            BatchIncompleteError: Keys still unprocessed at ``batch_deadline``; its
                ``unprocessed`` names exactly them and ``done`` holds what was read.
        """
        config = self._core.config
        wanted: dict[str, str] = {}
        for key in key_list(keys, "get_many"):
            wanted[self._keys.encode(key, "get_many", config.table)] = key
        if not wanted:
            return {}
        with self._core.tel.operation("get_many", "BatchGetItem", batch_size=len(wanted)) as op:
            items, leftovers, cause = await self._core.batch_get(op, list(wanted))
            now = time.time()
            found: dict[str, Value] = {
                wanted[pk]: decode_value(item, config.value_attribute)
                for pk, item in items.items()
                if not is_expired(item, config.ttl_attribute, now)
            }
            if leftovers:
                missing = [wanted[pk] for pk in leftovers]
                raise BatchIncompleteError(
                    f"get_many: {len(missing)} of {len(wanted)} keys still unprocessed after "
                    f"{config.batch_deadline} s (batch_deadline)",
                    unprocessed=missing,
                    done=found,
                    operation="get_many",
                    table=config.table,
                ) from cause
            op.outcome = "hit" if found else "miss"
        return found

    async def _write_many(
        self, operation: str, requests: dict[str, dict[str, Any]], users: dict[str, str]
    ) -> None:
        """BatchWriteItem in chunks of 25, retrying unprocessed items until the deadline."""
        config = self._core.config
        pk_name = config.partition_key
        with self._core.tel.operation(operation, "BatchWriteItem", batch_size=len(requests)) as op:

            async def send(chunk: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
                response = await self._core.send(
                    op,
                    "batch_write_item",
                    {"RequestItems": {config.table: chunk}, "ReturnConsumedCapacity": "TOTAL"},
                    None,
                )
                rest = response.get("UnprocessedItems", {}).get(config.table)
                return rest or None

            leftovers, cause = await drive(
                list(chunked(list(requests.values()), MAX_WRITE_BATCH)),
                send,
                concurrency=config.batch_concurrency,
                deadline_seconds=config.batch_deadline,
            )
            if leftovers:
                missing = [users[_request_pk(r, pk_name)] for rest in leftovers for r in rest]
                raise BatchIncompleteError(
                    f"{operation}: {len(missing)} of {len(requests)} items still unprocessed "
                    f"after {config.batch_deadline} s (batch_deadline)",
                    unprocessed=missing,
                    operation=operation,
                    table=config.table,
                ) from cause

    async def set_many(
        self,
        items: Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]],
        *,
        ttl: TTL | None = None,
    ) -> None:
        """Write many values (BatchWriteItem, 25 per request, chunks concurrently).

        Every key and value is validated before anything is sent; for a key given
        twice the last value wins. Each item gets a fresh version.

        Raises:
            BatchIncompleteError: Items still unprocessed at ``batch_deadline``; its
                ``unprocessed`` names exactly them (the others were written).
        """
        config = self._core.config
        expires = expiry_of(ttl, "set_many")
        version = new_version()
        pairs = items.items() if isinstance(items, Mapping) else items
        requests: dict[str, dict[str, Any]] = {}
        users: dict[str, str] = {}
        for pair in pairs:
            key, value = pair_of(pair)
            stored = self._keys.encode(key, "set_many", config.table)
            item = build_item(config, stored, value, expires, version, "set_many", key)
            requests[stored] = {"PutRequest": {"Item": item}}
            users[stored] = key
        if requests:
            await self._write_many("set_many", requests, users)

    async def delete_many(self, keys: Iterable[str]) -> None:
        """Delete many keys (BatchWriteItem, 25 per request); missing keys are fine.

        Raises:
            BatchIncompleteError: Keys still unprocessed at ``batch_deadline``.
        """
        config = self._core.config
        requests: dict[str, dict[str, Any]] = {}
        users: dict[str, str] = {}
        for key in key_list(keys, "delete_many"):
            stored = self._keys.encode(key, "delete_many", config.table)
            requests[stored] = {"DeleteRequest": {"Key": {config.partition_key: {"S": stored}}}}
            users[stored] = key
        if requests:
            await self._write_many("delete_many", requests, users)

    # -- listing -------------------------------------------------------------

    async def keys(self, prefix: str | None = None) -> AsyncIterator[str]:
        """Iterate the unexpired keys of this namespace, optionally starting with `prefix`.

        A paginated Scan: it reads the whole table (every namespace) and costs
        read units for all of it; for admin tools and tests, not request paths.
        """
        config = self._core.config
        if prefix is not None and not isinstance(prefix, str):
            raise TypeError(f"keys: prefix must be a str, not {type(prefix).__name__}")
        start = self._keys.prefix + (prefix or "")
        names = {"#k": config.partition_key, "#t": config.ttl_attribute}
        filters = ["(attribute_not_exists(#t) OR #t > :now)"]
        values: dict[str, Any] = {":now": {"N": str(int(time.time()))}}
        if start:
            filters.append("begins_with(#k, :p)")
            values[":p"] = {"S": start}
        if not self._keys.prefix:
            filters.append("NOT contains(#k, :sep)")
            values[":sep"] = {"S": SEPARATOR}
        request: dict[str, Any] = {
            "TableName": config.table,
            "ProjectionExpression": "#k, #t",
            "FilterExpression": " AND ".join(filters),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ConsistentRead": config.consistent_read,
            "ReturnConsumedCapacity": "TOTAL",
        }
        while True:
            with self._core.tel.operation("keys", "Scan") as op:
                response = await self._core.send(op, "scan", request, None)
            now = time.time()
            for item in response.get("Items", ()):
                user_key = self._keys.decode(item[config.partition_key]["S"])
                if user_key is not None and not is_expired(item, config.ttl_attribute, now):
                    yield user_key
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last


def _live(op: Operation, item: Item | None, ttl_attribute: str) -> Item | None:
    """The item unless missing or expired; records the outcome."""
    if item is None or is_expired(item, ttl_attribute, time.time()):
        op.outcome = "miss"
        return None
    op.outcome = "hit"
    return item


# Every write bumps the version; a new item starts from the clock (see new_version).
_BUMP = "#r = if_not_exists(#r, :base) + :one"
# Compare-and-set on an unexpired item; version 0 is an item written without one (by GoFr).
_UNEXPIRED = "(attribute_not_exists(#t) OR #t > :now)"
_VERSION_CONDITION = {
    False: f"attribute_exists(#k) AND #r = :expected AND {_UNEXPIRED}",
    True: f"attribute_exists(#k) AND (#r = :expected OR attribute_not_exists(#r)) AND {_UNEXPIRED}",
}


def _request_pk(request: dict[str, Any], pk_name: str) -> str:
    if "PutRequest" in request:
        return str(request["PutRequest"]["Item"][pk_name]["S"])
    return str(request["DeleteRequest"]["Key"][pk_name]["S"])
