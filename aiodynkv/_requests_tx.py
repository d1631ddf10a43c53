"""Request builders of transactions: TransactWriteItems actions and TransactGetItems.

Pure like `aiodynkv._requests`: each write action is cut from the single-key request
built there, so a transaction writes items exactly as the single-key calls do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiodynkv._requests import ABSENT, UNEXPIRED, _clock, _key, _names, _used, version_matches

if TYPE_CHECKING:
    from aiodynkv._config import KVConfig

__all__ = ["condition_check", "transact_get", "transact_item", "transact_write"]

#: The request members a keyed, conditional action of TransactWriteItems takes.
_CONDITIONAL = (
    "TableName",
    "Key",
    "ConditionExpression",
    "ExpressionAttributeNames",
    "ExpressionAttributeValues",
    "ReturnValuesOnConditionCheckFailure",
)
#: Actions of TransactWriteItems and the request members each one takes.
_TX_MEMBERS = {
    "Update": (*_CONDITIONAL[:2], "UpdateExpression", *_CONDITIONAL[2:]),
    "Delete": _CONDITIONAL,
    "ConditionCheck": _CONDITIONAL,
}


def transact_item(kind: str, request: dict[str, Any]) -> dict[str, Any]:
    """One action of a TransactWriteItems from a single-item request of `_requests`.

    Args:
        kind: ``Update``, ``Delete`` or ``ConditionCheck``.
        request: An UpdateItem/DeleteItem request (`put`, `incr`, `delete`...) or a
            condition check (`condition_check`).
    """
    members = _TX_MEMBERS[kind]
    return {kind: {name: request[name] for name in members if name in request}}


def condition_check(
    config: KVConfig,
    stored: str,
    *,
    now: float,
    version: int | None = None,
    exists: bool | None = None,
) -> dict[str, Any]:
    """The parts of a ConditionCheck: a version match and/or presence (unexpired) or absence."""
    parts: list[str] = []
    values: dict[str, Any] = dict(_clock(now))
    if version is not None:
        parts.append(version_matches(version))
        values[":expected"] = {"N": str(version)}
    if exists is True and version is None:
        parts.append(f"attribute_exists(#k) AND {UNEXPIRED}")
    elif exists is False:
        parts.append(ABSENT)
    request: dict[str, Any] = {
        "TableName": config.table,
        "Key": _key(config, stored),
        "ConditionExpression": " AND ".join(parts),
        "ExpressionAttributeNames": _names(config),
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    return _used(request)


def transact_write(actions: Sequence[dict[str, Any]], token: str) -> dict[str, Any]:
    """TransactWriteItems of up to 100 actions; `token` makes SDK retries idempotent."""
    return {
        "TransactItems": list(actions),
        "ClientRequestToken": token,
        "ReturnConsumedCapacity": "TOTAL",
    }


def transact_get(config: KVConfig, stored: Sequence[str]) -> dict[str, Any]:
    """TransactGetItems of up to 100 stored keys: one consistent snapshot."""
    return {
        "TransactItems": [
            {"Get": {"TableName": config.table, "Key": _key(config, pk)}} for pk in stored
        ],
        "ReturnConsumedCapacity": "TOTAL",
    }
