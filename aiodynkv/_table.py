"""Table management: `ensure_table` (create, wait for ACTIVE, enable TTL) and the health probe."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiodynkv._errors import KVConfigError, KVError, KVTimeoutError, TableNotFoundError, map_error
from aiodynkv._protocol import Health
from aiodynkv._transport import ServiceError

if TYPE_CHECKING:
    from aiodynkv._config import KVConfig
    from aiodynkv._telemetry import Telemetry

#: A transport's `send`: DynamoDB action and request in, response out.
Send = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]

__all__ = ["describe_table", "ensure_table", "probe_health"]

_POLL_SECONDS = 0.2
# What a server answers when it lacks the TTL API (dynalite).
_NO_TTL_API = frozenset({"UnknownOperationException"})


def _code(exc: BaseException) -> str:
    return exc.code if isinstance(exc, ServiceError) else ""


async def describe_table(
    send: Send, config: KVConfig, tel: Telemetry, operation: str, *, missing_ok: bool = False
) -> Any:
    """DescribeTable, traced; raises the mapped `KVError`.

    With `missing_ok`, a missing table is an outcome (None), not an error.
    """
    with tel.operation(operation, "DescribeTable") as op:
        try:
            response = await send("DescribeTable", {"TableName": config.table})
        except Exception as exc:
            error = map_error(exc, operation=operation, table=config.table, key=None)
            if missing_ok and isinstance(error, TableNotFoundError):
                op.outcome = "miss"
                return None
            raise error from exc
        op.observe(response)
        return response["Table"]


async def ensure_table(send: Send, config: KVConfig, tel: Telemetry) -> None:
    """Create the table if it is missing, wait until ACTIVE, and enable TTL.

    Safe to call twice and from several processes at once: a concurrent
    creation is waited for, not reported.

    Raises:
        KVConfigError: The table exists with a different partition key.
        KVTimeoutError: The table did not become ACTIVE within ``table_wait_timeout``.
        KVError: Any other failure, mapped.
    """
    table = await describe_table(send, config, tel, "ensure_table", missing_ok=True)
    if table is None:
        table = await _create(send, config, tel)
    _check_schema(table, config)
    if table.get("TableStatus") != "ACTIVE":
        await _wait_active(send, config, tel)
    await _enable_ttl(send, config, tel)


async def _create(send: Send, config: KVConfig, tel: Telemetry) -> Any:
    with tel.operation("ensure_table", "CreateTable") as op:
        try:
            response = await send(
                "CreateTable",
                {
                    "TableName": config.table,
                    "AttributeDefinitions": [
                        {"AttributeName": config.partition_key, "AttributeType": "S"}
                    ],
                    "KeySchema": [{"AttributeName": config.partition_key, "KeyType": "HASH"}],
                    "BillingMode": "PAY_PER_REQUEST",
                },
            )
        except Exception as exc:
            if _code(exc) == "ResourceInUseException":  # another process created it first
                op.outcome = "exists"
                return await describe_table(send, config, tel, "ensure_table")
            raise map_error(exc, operation="ensure_table", table=config.table, key=None) from exc
        op.observe(response)
        return response["TableDescription"]


def _check_schema(table: Any, config: KVConfig) -> None:
    hash_keys = [k["AttributeName"] for k in table.get("KeySchema", []) if k["KeyType"] == "HASH"]
    ranges = [k["AttributeName"] for k in table.get("KeySchema", []) if k["KeyType"] == "RANGE"]
    if hash_keys and (hash_keys != [config.partition_key] or ranges):
        raise KVConfigError(
            "partition_key",
            f"table {config.table!r} is keyed on {hash_keys + ranges}, "
            f"expected the single string key {config.partition_key!r}",
        )


async def _wait_active(send: Send, config: KVConfig, tel: Telemetry) -> None:
    deadline = time.monotonic() + config.table_wait_timeout
    while True:
        table = await describe_table(send, config, tel, "ensure_table")
        if table.get("TableStatus") == "ACTIVE":
            return
        if time.monotonic() >= deadline:
            raise KVTimeoutError(
                f"ensure_table: table {config.table!r} is {table.get('TableStatus')} after "
                f"{config.table_wait_timeout} s (table_wait_timeout)",
                operation="ensure_table",
                table=config.table,
            )
        await asyncio.sleep(_POLL_SECONDS)


async def _enable_ttl(send: Send, config: KVConfig, tel: Telemetry) -> None:
    with tel.operation("ensure_table", "UpdateTimeToLive") as op:
        try:
            response = await send(
                "UpdateTimeToLive",
                {
                    "TableName": config.table,
                    "TimeToLiveSpecification": {
                        "Enabled": True,
                        "AttributeName": config.ttl_attribute,
                    },
                },
            )
        except Exception as exc:
            code = _code(exc)
            message = str(exc).lower()
            if code == "ValidationException" and "already enabled" in message:
                op.outcome = "exists"
                return
            if code in _NO_TTL_API or (code == "ValidationException" and "not support" in message):
                # Expired items are still hidden by every read; only server-side deletion is lost.
                op.outcome = "unsupported"
                tel.debug("aiodynkv.ttl_unsupported", table=config.table, error_code=code)
                return
            raise map_error(exc, operation="ensure_table", table=config.table, key=None) from exc
        op.observe(response)


async def probe_health(send: Send | None, config: KVConfig, tel: Telemetry) -> Health:
    """DescribeTable within ``connect_timeout + read_timeout``; UP only when ACTIVE.

    Never raises: any failure is a DOWN report naming the error. The details name
    the table, region, status, latency and item count, never the endpoint or
    credentials. ``item_count`` is DynamoDB's figure, refreshed about every six hours.
    """
    details: dict[str, Any] = {
        "table": config.table,
        "region": config.effective_region,
        "table_status": None,
    }
    start = time.perf_counter()
    try:
        if send is None:
            raise KVError("health: the store is not open", operation="health", table=config.table)
        table = await asyncio.wait_for(
            describe_table(send, config, tel, "health"),
            timeout=config.connect_timeout + config.read_timeout,
        )
    except Exception as exc:  # noqa: BLE001 (health reports every failure instead of raising)
        error = map_error(exc, operation="health", table=config.table, key=None)
        details["latency_ms"] = round((time.perf_counter() - start) * 1000.0, 3)
        details["error"] = type(error).__name__
        details["message"] = error.message
        return Health("DOWN", details)
    details["latency_ms"] = round((time.perf_counter() - start) * 1000.0, 3)
    details["table_status"] = table.get("TableStatus")
    details["item_count"] = table.get("ItemCount")
    return Health("UP" if details["table_status"] == "ACTIVE" else "DOWN", details)
