"""The memory transport: DynamoDB answered in process, with DynamoDB's semantics.

`MemoryTransport` answers the requests aiodynkv's request builders send (item
reads and writes with condition, update and projection expressions, batches,
transactions, Scan, table and TTL management) the way DynamoDB does: the same
conditions, ``ReturnValues*``, consumed capacity, limits (400 KB items, 2,048-byte
hash keys, 100/25-item batches, 1 MB Scan pages, 16 MB BatchGetItem replies) and
errors, raised as the `ServiceError` the lean transport raises for the same reply.
Items are copied in and out, so no caller shares a dict with the table. Each
request yields to the event loop once, then runs to completion, so concurrent
requests interleave as they would on a server and each is atomic.

It does no I/O and never fails on the wire. Not served: Query, PartiQL, indexes,
streams, and nested document paths in expressions; they are refused with the code
a server gives for an unknown operation or a `ValidationException`.

Stores opened with ``transport="memory"`` share one process-wide instance (as
processes share a server), unless a `MemoryTransport` is passed as ``client=``.
Its ``blobs`` stand in for S3 for large values (as moto serves S3 beside DynamoDB).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import operator
import re
import time
import uuid
from collections.abc import Callable, Mapping
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow
from typing import Any, ClassVar, NamedTuple

from aiodynkv._codec import number_size
from aiodynkv._transport import ServiceError
from aiodynkv._values import MemoryBlobs

__all__ = ["MemoryTransport"]

Item = dict[str, Any]

_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
_MAX_ITEM_BYTES = 409_600
_MAX_HASH_KEY_BYTES = 2_048
_MAX_RANGE_KEY_BYTES = 1_024
_SCAN_PAGE_BYTES = 1024 * 1024
_BATCH_GET_REPLY_BYTES = 16 * 1024 * 1024
_IDEMPOTENCY_SECONDS = 600.0
_CONDITION_FAILED = "The conditional request failed"
_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})
_EXPRESSIONS = tuple(
    f"{part}Expression" for part in ("Condition", "Filter", "Update", "Projection")
)
#: The operations served, by the name of the method that answers each.
_OPERATIONS = {
    name: "_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    for name in (  # noqa: SIM905 (one string reads better than fifteen)
        "GetItem PutItem UpdateItem DeleteItem BatchGetItem BatchWriteItem TransactGetItems "
        "TransactWriteItems Scan CreateTable DeleteTable DescribeTable ListTables "
        "UpdateTimeToLive DescribeTimeToLive"
    ).split()
}
_COMPILED_LIMIT = 4096  # parsed expressions kept (the library sends a few dozen texts)
#: A parsed request: condition (or filter), update, projection, the values it uses.
_Compiled = tuple["Condition | None", "Update | None", "list[str] | None", frozenset[str]]


class _Parsed(NamedTuple):
    """A request's parsed expressions and its checked ``:values``."""

    condition: Condition | None
    update: Update | None
    projection: list[str] | None
    values: dict[str, Any]

    def holds(self, item: Item | None) -> bool:
        """The condition (or filter) on `item` (None: no item); true without one."""
        return self.condition is None or self.condition(item or {}, self.values)


class _Step(NamedTuple):
    """One action of a TransactWriteItems, checked: the item a Put writes, if one."""

    kind: str
    table: _Table
    key: tuple[Any, ...]
    spec: dict[str, Any]
    put: Item | None
    parsed: _Parsed


def _store(table: _Table, key: tuple[Any, ...], item: Item | None) -> None:
    """Write `item` at `key` (None: delete it)."""
    if item is None:
        table.items.pop(key, None)
    else:
        table.items[key] = item


def _error(code: str, message: str, status: int = 400, **extra: Any) -> ServiceError:
    """The `ServiceError` the lean transport makes of this DynamoDB error reply."""
    body: dict[str, Any] = {"__type": _ERROR_PREFIX + code, "message": message, **extra}
    item = extra.get("Item")
    return ServiceError(code, message, status=status, item=item, body=body)


def _invalid(message: str, *, parameter: bool = False) -> ServiceError:
    """A ValidationException (`parameter`: one of "One or more parameter values were invalid")."""
    prefix = "One or more parameter values were invalid: " if parameter else ""
    return _error("ValidationException", prefix + message)


class _Table:
    """One table: its description, TTL setting and items by key."""

    __slots__ = ("created", "definitions", "items", "key_names", "name", "schema", "ttl", "types")

    def __init__(self, name: str, schema: list[dict[str, str]], definitions: list[Any]) -> None:
        self.name = name
        self.schema = schema
        self.definitions = definitions
        self.key_names = [k["AttributeName"] for k in schema]  # HASH first
        self.types = {d["AttributeName"]: str(d["AttributeType"]) for d in definitions}
        self.items: dict[tuple[Any, ...], Item] = {}
        self.ttl: str | None = None
        self.created = time.time()

    def key_of(self, key: Any, *, whole_item: bool = False) -> tuple[Any, ...]:
        """The dict key of an item's key attributes; refuses a key of the wrong shape."""
        if not isinstance(key, dict):
            raise _invalid("The provided key element does not match the schema")
        if not whole_item and set(key) != set(self.key_names):
            raise _invalid("The provided key element does not match the schema")
        parts: list[Any] = []
        for position, name in enumerate(self.key_names):
            value = key.get(name)
            wanted = self.types[name]
            if whole_item and value is None:
                raise _invalid(f"Missing the key {name} in the item", parameter=True)
            if not isinstance(value, dict) or set(value) != {wanted}:
                if whole_item:
                    mismatch = f"Type mismatch for key {name} expected: {wanted} actual: "
                    actual = next(iter(value)) if isinstance(value, dict) and value else "null"
                    raise _invalid(mismatch + actual, parameter=True)
                raise _invalid("The provided key element does not match the schema")
            raw = _checked_value(value)[wanted]
            if raw in ("", b""):
                raise _invalid(
                    "One or more parameter values are not valid. The AttributeValue for a key "
                    f"attribute cannot contain an empty {_TYPE_NAMES[wanted]} value. Key: {name}"
                )
            limit = _MAX_HASH_KEY_BYTES if position == 0 else _MAX_RANGE_KEY_BYTES
            if wanted != "N" and _scalar_size(wanted, raw) > limit:
                part = "hashkey" if position == 0 else "rangekey"
                exceeded = f"Size of {part} has exceeded the maximum size limit of {limit} bytes"
                raise _invalid(exceeded, parameter=True)
            parts.append(Decimal(raw) if wanted == "N" else bytes(raw) if wanted == "B" else raw)
        return tuple(parts)

    def describe(self, status: str = "ACTIVE") -> dict[str, Any]:
        return {
            "TableName": self.name,
            "TableStatus": status,
            "KeySchema": _copy(self.schema),
            "AttributeDefinitions": _copy(self.definitions),
            "CreationDateTime": self.created,
            "ItemCount": len(self.items),
            "TableSizeBytes": sum(_item_size(item) for item in self.items.values()),
            "TableArn": f"arn:aws:dynamodb:local:000000000000:table/{self.name}",
            "TableId": str(uuid.uuid5(uuid.NAMESPACE_URL, self.name)),
            "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
            "ProvisionedThroughput": dict.fromkeys(
                ("NumberOfDecreasesToday", "ReadCapacityUnits", "WriteCapacityUnits"), 0
            ),
        }


_TYPE_NAMES = {"S": "string", "B": "binary", "N": "number"}


# -- sizes, as DynamoDB counts them ---------------------------------------------------


def _scalar_size(kind: str, raw: Any) -> int:
    if kind == "S":
        return len(raw.encode("utf-8", "surrogatepass"))
    if kind == "B":
        return len(raw)
    return number_size(raw)


def _value_size(value: dict[str, Any]) -> int:
    kind, raw = next(iter(value.items()))
    if kind in ("S", "B", "N"):
        return _scalar_size(kind, raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "BS", "NS"):
        return sum(_scalar_size(kind[0], member) for member in raw)
    if kind == "L":
        return 3 + sum(1 + _value_size(member) for member in raw)
    return 3 + sum(1 + len(name.encode()) + _value_size(member) for name, member in raw.items())


def _item_size(item: Item) -> int:
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


# -- attribute values ------------------------------------------------------------------


def _checked_value(value: Any) -> dict[str, Any]:
    """A valid attribute value, numbers canonical; refuses what DynamoDB refuses."""
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in _TYPES:
        raise _invalid(
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one "
            "of the supported datatypes"
        )
    kind, raw = next(iter(value.items()))
    try:
        if kind == "N" and isinstance(raw, str):
            return {"N": canonical_number(raw)}
        if kind in ("NS", "SS", "BS"):
            if not isinstance(raw, list) or not raw:
                empty = f"An {'number' if kind == 'NS' else 'string'} set  may not be empty"
                raise _invalid(empty, parameter=True)
            if not all(isinstance(m, _PYTHON_TYPES[kind[0]]) for m in raw):
                raise _invalid(
                    f"Supplied AttributeValue of type {kind} has a member of the wrong type"
                )
            members = [canonical_number(m) for m in raw] if kind == "NS" else list(raw)
            if len({Decimal(m) if kind == "NS" else m for m in members}) != len(members):
                raise _invalid("Input collection contains duplicates")
            return {kind: members}
    except ExpressionError as exc:
        raise _invalid(str(exc)) from None
    if not isinstance(raw, _PYTHON_TYPES[kind]) or (kind == "NULL" and raw is not True):
        raise _invalid(f"Supplied AttributeValue of type {kind} has a value of the wrong type")
    if kind == "M":
        return {"M": {name: _checked_value(member) for name, member in raw.items()}}
    if kind == "L":
        return {"L": [_checked_value(member) for member in raw]}
    if kind == "B":
        return {"B": bytes(raw)}
    return {kind: raw}


_PYTHON_TYPES: dict[str, Any] = {"N": str, "S": str, "B": (bytes, bytearray, memoryview)}
_PYTHON_TYPES |= {"BOOL": bool, "NULL": bool, "M": dict, "L": list}


def _checked_item(item: Any) -> Item:
    if not isinstance(item, dict):
        raise _invalid("the item is not a map", parameter=True)
    return {name: _checked_value(value) for name, value in item.items()}


def _copy(value: Any) -> Any:
    """A copy of DynamoDB JSON (dicts and lists of immutable leaves; buffers become bytes)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return bytes(value) if isinstance(value, (bytearray, memoryview)) else value


def _fingerprint(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=lambda data: base64.b64encode(data).decode())
    return hashlib.sha256(text.encode()).hexdigest()


class MemoryTransport:
    """A DynamoDB endpoint in process memory (see the module docstring).

    Args:
        clock: Monotonic seconds, for the 10-minute idempotency window of
            ``ClientRequestToken``.
    """

    _shared: ClassVar[MemoryTransport | None] = None

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._tables: dict[str, _Table] = {}
        #: The S3 stand-in of the stores on this transport (large values).
        self.blobs = MemoryBlobs()
        self._tokens: dict[str, tuple[str, float, dict[str, Any]]] = {}
        self._compiled: dict[tuple[Any, ...], _Compiled] = {}
        self._clock = clock

    @classmethod
    def shared(cls) -> MemoryTransport:
        """The process-wide instance that stores opened with ``transport="memory"`` use."""
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    async def send(self, action: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Answer `request` as DynamoDB answers `action`, its errors as `ServiceError`."""
        if action not in _OPERATIONS:
            raise _error("UnknownOperationException", "", status=400)
        handler: Callable[[dict[str, Any]], dict[str, Any]] = getattr(self, _OPERATIONS[action])
        body: dict[str, Any] = _copy(request)
        await asyncio.sleep(0)  # let other requests in, as a server would
        response = handler(body)
        response["ResponseMetadata"] = {
            "HTTPStatusCode": 200,
            "RetryAttempts": 0,
            "RequestId": uuid.uuid4().hex.upper(),
        }
        return response

    async def aclose(self) -> None:
        """Nothing to release: the tables outlive a store, as on a server."""

    def items(self, table: str) -> list[Item]:
        """A copy of every item of `table`, expired or not (none when it does not exist)."""
        found = self._tables.get(table)
        return [] if found is None else [_copy(item) for item in found.items.values()]

    # -- helpers -------------------------------------------------------------------------

    def _table(self, name: Any) -> _Table:
        table = self._tables.get(name) if isinstance(name, str) else None
        if table is None:
            raise _error("ResourceNotFoundException", "Requested resource not found")
        return table

    def _parsed(self, request: dict[str, Any], *, update: bool = False) -> _Parsed:
        """The request's expressions (parsed once per text and names) and checked values."""
        names = request.get("ExpressionAttributeNames")
        raw_values = request.get("ExpressionAttributeValues")
        if names is not None and not names:
            raise _invalid("ExpressionAttributeNames must not be empty")
        if raw_values is not None and not raw_values:
            raise _invalid("ExpressionAttributeValues must not be empty")
        texts = tuple(request.get(part) for part in _EXPRESSIONS)
        key = (update, texts, tuple(sorted((names or {}).items())))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compile(texts, names, update=update)
            if len(self._compiled) >= _COMPILED_LIMIT:
                self._compiled.clear()
            self._compiled[key] = compiled
        condition, parsed_update, projection, used = compiled
        values = {k: _checked_value(v) for k, v in (raw_values or {}).items()}
        try:
            if values and all(text is None for text in texts):
                raise ExpressionError(
                    "ExpressionAttributeValues can only be specified when using expressions"
                )
            check_values(used, values)
        except ExpressionError as exc:
            raise _invalid(str(exc)) from None
        return _Parsed(condition, parsed_update, projection, values)

    @staticmethod
    def _compile(texts: tuple[Any, ...], names: Any, *, update: bool) -> _Compiled:
        condition_text, filter_text, update_text, projection_text = texts
        places = Placeholders(names)
        try:
            condition = None if condition_text is None else parse_condition(condition_text, places)
            if filter_text is not None:  # Scan: a filter, never a condition too
                condition = parse_condition(filter_text, places, "FilterExpression")
            parsed_update = None
            if update and update_text is not None:
                parsed_update = parse_update(update_text, places)
            projection = None
            if projection_text is not None:
                projection = parse_projection(projection_text, places)
            if places.names and all(text is None for text in texts):
                raise ExpressionError(
                    "ExpressionAttributeNames can only be specified when using expressions"
                )
            places.check_names()
        except ExpressionError as exc:
            raise _invalid(str(exc)) from None
        return condition, parsed_update, projection, frozenset(places.used_values)

    # -- single items --------------------------------------------------------------------

    def _get_item(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self._table(request.get("TableName"))
        projection = self._parsed(request).projection
        item = table.items.get(table.key_of(request.get("Key")))
        response = {} if item is None else {"Item": _project(item, projection)}
        size = _item_size(item or {})
        units = _read_units(size, consistent=bool(request.get("ConsistentRead")))
        return response | _capacity(request, {table.name: units}, write=False, one=True)

    def _put_item(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._write(request, "Put")

    def _update_item(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._write(request, "Update")

    def _delete_item(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._write(request, "Delete")

    def _write(self, request: dict[str, Any], kind: str) -> dict[str, Any]:
        """A PutItem, UpdateItem or DeleteItem, checked and applied as DynamoDB does."""
        table = self._table(request.get("TableName"))
        updated = ("ALL_NEW", "UPDATED_OLD", "UPDATED_NEW") if kind == "Update" else ()
        returns = _returns(request, ("NONE", "ALL_OLD", *updated))
        parsed = self._parsed(request, update=kind == "Update")
        put = _checked_item(request.get("Item")) if kind == "Put" else None
        key = table.key_of(request.get("Key") if put is None else put, whole_item=put is not None)
        if put is not None:
            _check_size(put)
        old = table.items.get(key)
        if not parsed.holds(old):
            extra = _old_on_failure(request, old)
            raise _error("ConditionalCheckFailedException", _CONDITION_FAILED, **extra)
        new = self._updated(table, request, parsed, old) if kind == "Update" else put
        _store(table, key, new)
        attributes: Item | None = old if returns == "ALL_OLD" else None
        if returns == "ALL_NEW":
            attributes = new
        elif returns.startswith("UPDATED_"):
            touched = parsed.update.paths if parsed.update is not None else []
            source = old if returns == "UPDATED_OLD" else new
            attributes = {n: source[n] for n in touched if n in source} if source else None
        response = {"Attributes": _copy(attributes)} if attributes else {}
        units = {table.name: _write_units(old, new)}
        return response | _capacity(request, units, write=True, one=True)

    def _updated(
        self, table: _Table, request: dict[str, Any], parsed: _Parsed, old: Item | None
    ) -> Item:
        """The item an UpdateItem (or a transaction's Update) leaves; raises if refused."""
        update = parsed.update
        key_item = _checked_item(request.get("Key"))
        if update is None:
            new = dict(old) if old is not None else dict(key_item)
        else:
            for name in table.key_names:
                if name in update.paths:
                    key_part = f"Cannot update attribute {name}. This attribute is part of the key"
                    raise _invalid(key_part, parameter=True)
            try:
                new = update.apply(old if old is not None else key_item, parsed.values)
            except ExpressionError as exc:
                raise _invalid(str(exc)) from None
        _check_size(new, "Item size to update has exceeded the maximum allowed size")
        return new

    # -- batches ---------------------------------------------------------------------------

    def _batch_get_item(self, request: dict[str, Any]) -> dict[str, Any]:
        wanted = _request_items(request)
        total = sum(len(spec.get("Keys") or ()) for spec in wanted.values())
        if total > 100:
            raise _invalid("Too many items requested for the BatchGetItem call")
        responses: dict[str, list[Item]] = {}
        unprocessed: dict[str, Any] = {}
        units: dict[str, float] = {}
        size = 0
        for name, spec in wanted.items():  # reads change nothing: a refusal may follow them
            table = self._table(name)
            keys = spec.get("Keys") or []
            if not keys:
                raise _invalid(
                    "1 validation error detected: Value at 'requestItems."
                    f"{name}.member.keys' failed to satisfy constraint: Member must have "
                    "length greater than or equal to 1"
                )
            projection = self._parsed(spec).projection
            wanted_keys = [table.key_of(key) for key in keys]
            if len(set(wanted_keys)) != len(wanted_keys):
                raise _invalid("Provided list of item keys contains duplicates")
            found = responses.setdefault(table.name, [])
            units[table.name] = 0.0
            for key, wanted_key in zip(keys, wanted_keys, strict=True):
                item = table.items.get(wanted_key)
                item_bytes = _item_size(item or {})
                if item is not None and size + item_bytes > _BATCH_GET_REPLY_BYTES:
                    rest = unprocessed.setdefault(
                        table.name, {k: v for k, v in spec.items() if k != "Keys"} | {"Keys": []}
                    )
                    rest["Keys"].append(_copy(key))
                    continue
                size += item_bytes
                consistent = bool(spec.get("ConsistentRead"))
                units[table.name] += _read_units(item_bytes, consistent=consistent)
                if item is not None:
                    found.append(_project(item, projection))
        answer = {"Responses": responses, "UnprocessedKeys": unprocessed}
        return answer | _capacity(request, units, write=False)

    def _batch_write_item(self, request: dict[str, Any]) -> dict[str, Any]:
        wanted = _request_items(request)
        total = sum(len(writes or ()) for writes in wanted.values())
        if total > 25:
            raise _invalid(
                "1 validation error detected: Value at 'requestItems' failed to satisfy "
                "constraint: Map value must satisfy constraint: [Member must have length less "
                "than or equal to 25, Member must have length greater than or equal to 1]"
            )
        plan: list[tuple[_Table, tuple[Any, ...], Item | None]] = []
        for name, writes in wanted.items():
            table = self._table(name)
            seen: set[tuple[Any, ...]] = set()
            for write in writes or ():
                if "PutRequest" in write:
                    item = _checked_item(write["PutRequest"].get("Item"))
                    key = table.key_of(item, whole_item=True)
                    _check_size(item)
                    plan.append((table, key, item))
                elif "DeleteRequest" in write:
                    key = table.key_of(write["DeleteRequest"].get("Key"))
                    plan.append((table, key, None))
                else:
                    raise _invalid("A write request must be a PutRequest or a DeleteRequest")
                if key in seen:
                    raise _invalid("Provided list of item keys contains duplicates")
                seen.add(key)
        units: dict[str, float] = {}
        for table, key, written in plan:
            old = table.items.get(key)
            units[table.name] = units.get(table.name, 0.0) + _write_units(old, written)
            _store(table, key, written)
        return {"UnprocessedItems": {}} | _capacity(request, units, write=True)

    # -- transactions ------------------------------------------------------------------------

    def _transact_get_items(self, request: dict[str, Any]) -> dict[str, Any]:
        actions = _transact_items(request)
        plan = []
        for action in actions:
            get = action.get("Get")
            if not isinstance(get, dict):
                raise _invalid("TransactItems can only contain Get actions")
            table = self._table(get.get("TableName"))
            projection = self._parsed(get).projection
            plan.append((table, table.key_of(get.get("Key")), projection))
        if len({(t.name, k) for t, k, _ in plan}) != len(plan):
            raise _invalid("Transaction request cannot include multiple operations on one item")
        responses: list[dict[str, Any]] = []
        units: dict[str, float] = {}
        for table, key, projection in plan:
            item = table.items.get(key)
            read = 2 * _read_units(_item_size(item or {}), consistent=True)
            units[table.name] = units.get(table.name, 0.0) + read
            responses.append({"Item": _project(item, projection)} if item else {})
        return {"Responses": responses} | _capacity(request, units, write=False)

    def _transact_write_items(self, request: dict[str, Any]) -> dict[str, Any]:
        actions = _transact_items(request)
        token = request.get("ClientRequestToken")
        fingerprint = _fingerprint(actions)
        now = self._clock()
        earlier = self._earlier_answer(token, fingerprint, now)
        if earlier is not None:
            return earlier
        plan = [self._transact_action(action) for action in actions]
        if len({(step.table.name, step.key) for step in plan}) != len(plan):
            raise _invalid("Transaction request cannot include multiple operations on one item")
        results = [self._transact_outcome(step) for step in plan]
        reasons = [reason for reason, _ in results]
        if any(reason["Code"] != "None" for reason in reasons):
            codes = ", ".join(reason["Code"] for reason in reasons)
            raise _error(
                "TransactionCanceledException",
                "Transaction cancelled, please refer cancellation reasons for specific "
                f"reasons [{codes}]",
                CancellationReasons=reasons,
            )
        units: dict[str, float] = {}
        for (kind, table, key, *_), (_, new) in zip(plan, results, strict=True):
            old = table.items.get(key)
            units[table.name] = units.get(table.name, 0.0) + 2 * _write_units(old, new)
            if kind != "ConditionCheck":
                _store(table, key, new)
        response = _capacity(request, units, write=True)
        if token is not None:
            self._tokens[token] = (fingerprint, now + _IDEMPOTENCY_SECONDS, _copy(response))
        return response

    def _earlier_answer(self, token: Any, fingerprint: str, now: float) -> dict[str, Any] | None:
        """The answer to an earlier success under `token` (10 minutes), else None."""
        self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
        if token is None:
            return None
        if not isinstance(token, str) or not 1 <= len(token) <= 36:
            raise _invalid("ClientRequestToken must be 1 to 36 characters")
        known = self._tokens.get(token)
        if known is None:
            return None
        if known[0] != fingerprint:
            raise _error(
                "IdempotentParameterMismatchException",
                "The request uses the same client token as a previous, but non-identical request.",
            )
        answer: dict[str, Any] = _copy(known[2])
        return answer

    def _transact_action(self, action: Any) -> _Step:
        """One action, checked as a whole request is (refusals are ValidationExceptions)."""
        if not isinstance(action, dict) or len(action) != 1:
            raise _invalid("Every TransactItem must hold exactly one action")
        kind, spec = next(iter(action.items()))
        if kind not in ("Put", "Update", "Delete", "ConditionCheck"):
            raise _invalid(f"Unknown transaction action: {kind}")
        table = self._table(spec.get("TableName"))
        parsed = self._parsed(spec, update=kind == "Update")
        if kind == "ConditionCheck" and parsed.condition is None:
            raise _invalid("A ConditionCheck needs a ConditionExpression")
        if kind == "Put":
            item = _checked_item(spec.get("Item"))
            return _Step(kind, table, table.key_of(item, whole_item=True), spec, item, parsed)
        return _Step(kind, table, table.key_of(spec.get("Key")), spec, None, parsed)

    def _transact_outcome(self, step: _Step) -> tuple[dict[str, Any], Item | None]:
        """The cancellation reason of one action (Code "None": fine) and the item it leaves."""
        kind, table, key, spec, put, parsed = step
        old = table.items.get(key)
        if not parsed.holds(old):
            reason = {"Code": "ConditionalCheckFailed", "Message": _CONDITION_FAILED}
            return reason | _old_on_failure(spec, old), old
        try:
            if kind == "Put" and put is not None:
                _check_size(put)
                return {"Code": "None"}, put
            if kind == "Update":
                return {"Code": "None"}, self._updated(table, spec, parsed, old)
        except ServiceError as exc:
            return {"Code": "ValidationError", "Message": exc.message}, old
        return {"Code": "None"}, None if kind == "Delete" else old

    # -- Scan --------------------------------------------------------------------------------

    def _scan(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self._table(request.get("TableName"))
        parsed = self._parsed(request)
        limit = request.get("Limit")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise _invalid(
                "1 validation error detected: Value at 'limit' failed to satisfy constraint: "
                "Member must have value greater than or equal to 1"
            )
        keys = sorted(table.items, key=_sort_key)
        start = request.get("ExclusiveStartKey")
        if start is not None:
            after = _sort_key(table.key_of(start))
            keys = [k for k in keys if _sort_key(k) > after]
        items: list[Item] = []
        scanned = size = 0
        last: tuple[Any, ...] | None = None
        for key in keys:
            item = table.items[key]
            scanned += 1
            size += _item_size(item)
            if parsed.holds(item):
                items.append(_project(item, parsed.projection))
            # DynamoDB ends a page at the Limit or at 1 MB read, even when nothing follows.
            if (limit is not None and scanned >= limit) or size >= _SCAN_PAGE_BYTES:
                last = key
                break
        response: dict[str, Any] = {"Items": items, "Count": len(items), "ScannedCount": scanned}
        if last is not None:
            response["LastEvaluatedKey"] = {n: _copy(table.items[last][n]) for n in table.key_names}
        units = _read_units(size, consistent=bool(request.get("ConsistentRead")))
        return response | _capacity(request, {table.name: units}, write=False, one=True)

    # -- tables ------------------------------------------------------------------------------

    def _create_table(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request.get("TableName")
        if not isinstance(name, str) or not 3 <= len(name) <= 255:
            raise _invalid("TableName must be at least 3 characters long and at most 255")
        schema = request.get("KeySchema") or []
        definitions = request.get("AttributeDefinitions") or []
        kinds = [k.get("KeyType") for k in schema]
        if kinds not in (["HASH"], ["HASH", "RANGE"]):
            raise _invalid(
                "Invalid KeySchema: the first key must be HASH, an optional second RANGE"
            )
        defined = {d.get("AttributeName"): d.get("AttributeType") for d in definitions}
        for key in schema:
            if defined.get(key["AttributeName"]) not in ("S", "N", "B"):
                undefined = "Some index key attributes are not defined in AttributeDefinitions"
                raise _invalid(undefined, parameter=True)
        if len(defined) != len(schema):
            raise _invalid(
                "Number of attributes in KeySchema does not exactly match number of attributes "
                "defined in AttributeDefinitions",
                parameter=True,
            )
        if name in self._tables:
            raise _error("ResourceInUseException", f"Table already exists: {name}")
        table = self._tables[name] = _Table(name, list(schema), list(definitions))
        return {"TableDescription": table.describe()}

    def _delete_table(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self._table(request.get("TableName"))
        del self._tables[table.name]
        return {"TableDescription": table.describe("DELETING")}

    def _describe_table(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request.get("TableName")
        if name not in self._tables:
            raise _error(
                "ResourceNotFoundException",
                f"Requested resource not found: Table: {name} not found",
            )
        return {"Table": self._tables[name].describe()}

    def _list_tables(self, _request: dict[str, Any]) -> dict[str, Any]:
        return {"TableNames": sorted(self._tables)}

    def _update_time_to_live(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self._table(request.get("TableName"))
        spec = request.get("TimeToLiveSpecification") or {}
        enabled, attribute = spec.get("Enabled"), spec.get("AttributeName")
        if not isinstance(attribute, str) or not attribute or not isinstance(enabled, bool):
            raise _invalid("TimeToLiveSpecification needs Enabled and AttributeName")
        if enabled and table.ttl is not None:
            raise _invalid("TimeToLive is already enabled")
        if not enabled and table.ttl is None:
            raise _invalid("TimeToLive is already disabled")
        table.ttl = attribute if enabled else None
        return {"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attribute}}

    def _describe_time_to_live(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self._table(request.get("TableName"))
        if table.ttl is None:
            return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}
        return {
            "TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": table.ttl}
        }


def _project(item: Item, projection: list[str] | None) -> Item:
    if projection is None:
        copied: Item = _copy(item)
        return copied
    return {name: _copy(item[name]) for name in projection if name in item}


def _capacity(
    request: dict[str, Any], units: dict[str, float], *, write: bool, one: bool = False
) -> dict[str, Any]:
    """The ConsumedCapacity, if asked: an entry a table (`one`: the single table's entry)."""
    asked = request.get("ReturnConsumedCapacity", "NONE")
    if asked == "NONE":
        return {}
    kind = "WriteCapacityUnits" if write else "ReadCapacityUnits"
    entries = [{"TableName": n, "CapacityUnits": u, kind: u} for n, u in units.items()]
    if not one:
        return {"ConsumedCapacity": entries}
    if asked == "INDEXES":
        entries[0]["Table"] = {"CapacityUnits": entries[0]["CapacityUnits"]}
    return {"ConsumedCapacity": entries[0]}


def _read_units(size: int, *, consistent: bool) -> float:
    units = float(max(1, math.ceil(size / 4096)))
    return units if consistent else units / 2


def _write_units(*items: Item | None) -> float:
    size = max((_item_size(item) for item in items if item), default=0)
    return float(max(1, math.ceil(size / 1024)))


def _check_size(
    item: Item, message: str = "Item size has exceeded the maximum allowed size"
) -> None:
    if _item_size(item) > _MAX_ITEM_BYTES:
        raise _invalid(message)


def _returns(request: dict[str, Any], allowed: tuple[str, ...]) -> str:
    returns = request.get("ReturnValues", "NONE")
    if returns not in allowed:
        raise _invalid(f"Return values set to invalid value: {returns}")
    on_failure = request.get("ReturnValuesOnConditionCheckFailure", "NONE")
    if on_failure not in ("NONE", "ALL_OLD"):
        raise _invalid(f"ReturnValuesOnConditionCheckFailure set to invalid value: {on_failure}")
    return str(returns)


def _old_on_failure(request: dict[str, Any], old: Item | None) -> dict[str, Any]:
    """The old item a failed condition returns, as ``{"Item": ...}`` (if asked for)."""
    if old is not None and request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
        return {"Item": _copy(old)}
    return {}


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """Scan order: by key, strings by their UTF-8 bytes."""
    return tuple(
        part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part for part in key
    )


def _request_items(request: dict[str, Any]) -> dict[str, Any]:
    """The RequestItems of a batch request, by table."""
    wanted = request.get("RequestItems")
    if not isinstance(wanted, dict) or not wanted:
        raise _invalid("1 validation error detected: Value null at 'requestItems' failed")
    return wanted


def _transact_items(request: dict[str, Any]) -> list[Any]:
    """The actions of a transaction request: 1 to 100, as DynamoDB allows."""
    actions: list[Any] = request.get("TransactItems") or []
    if not 1 <= len(actions) <= 100:
        raise _invalid(
            "1 validation error detected: Value at 'transactItems' failed to satisfy "
            "constraint: Member must have length less than or equal to 100"
        )
    return actions


# -- expressions: parse, check placeholders, evaluate --------------------------------------
# Condition, filter, update and projection expressions on top-level attributes, every
# function, comparator and clause of DynamoDB's grammar. Values are attribute values
# (``{"N": "1"}``), an absent one None; a refusal is DynamoDB's message as `ExpressionError`.

AttrValue = dict[str, Any]
#: The ``:value`` placeholders of one request.
Values = Mapping[str, AttrValue]
#: A parsed condition: the item and the request's values in, true or false out.
Condition = Callable[[Item, Values], bool]
_Operand = Callable[[Item, Values], "AttrValue | None"]

# DynamoDB numbers: 38 significant digits, exponents -130..+125.
_NUMBERS = Context(prec=38, Emin=-130, Emax=125)
_TOO_PRECISE = "Attempting to store more than 38 significant digits in a Number"
_RANGE = "Number {}flow. Attempting to store a number with magnitude {} than supported range"
_OVERFLOW, _UNDERFLOW = _RANGE.format("over", "larger"), _RANGE.format("under", "smaller")


class ExpressionError(Exception):
    """A ValidationException DynamoDB gives for this expression or its data."""


_WRONG_OPERAND = "An operand in the update expression has an incorrect data type"


class Placeholders:
    """The ``#name`` map of one request, and the names and values its expressions use.

    Parsing depends on the names only, so a parsed expression serves every request
    with the same text and names; the values are checked per request (`check_values`).
    """

    __slots__ = ("names", "used_names", "used_values")

    def __init__(self, names: Mapping[str, str] | None) -> None:
        self.names = dict(names or {})
        self.used_names: set[str] = set()
        self.used_values: set[str] = set()

    def name(self, token: str) -> str:
        if token not in self.names:
            raise ExpressionError(
                "An expression attribute name used in the document path is not defined; "
                f"attribute name: {token}"
            )
        self.used_names.add(token)
        return self.names[token]

    def value(self, token: str) -> _Operand:
        self.used_values.add(token)
        return lambda _item, values: values[token]

    def check_names(self) -> None:
        """DynamoDB refuses names that no expression of the request uses."""
        _refuse_unused("ExpressionAttributeNames", self.names.keys() - self.used_names)


def check_values(used: set[str] | frozenset[str], values: Values) -> None:
    """Refuse (`ExpressionError`) a value the expressions use but lack, or one unused."""
    missing = sorted(used - values.keys())
    if missing:
        raise ExpressionError(
            "An expression attribute value used in expression is not defined; "
            f"attribute value: {missing[0]}"
        )
    _refuse_unused("ExpressionAttributeValues", values.keys() - used)


def _refuse_unused(field: str, unused: set[str]) -> None:
    if unused:
        keys = ", ".join(sorted(unused))
        raise ExpressionError(f"Value provided in {field} unused in expressions: keys: {{{keys}}}")


# -- tokens ---------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)"
    r"|(?P<op><>|<=|>=|=|<|>|\(|\)|,|\+|-|\.|\[|\])|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<index>[0-9]+))"
)
_KEYWORDS = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE"})


class _Tokens:
    def __init__(self, text: str, kind: str) -> None:
        self.kind = kind
        self.text = text
        self.items: list[tuple[str, str]] = []
        position, end = 0, len(text.rstrip())
        while position < end:
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                rest = text[position:].strip()
                raise self.error(rest[:1] or text)
            group = match.lastgroup or "op"
            self.items.append((group, match.group(group)))
            position = match.end()
        if not self.items:
            raise ExpressionError(f"Invalid {kind}: The expression can not be empty;")
        self.at = 0

    def error(self, token: str) -> ExpressionError:
        return ExpressionError(
            f'Invalid {self.kind}: Syntax error; token: "{token}", near: "{self.text}"'
        )

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def next(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.error("<EOF>")
        self.at += 1
        return token

    def take(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token[1].upper() == text:
            self.at += 1
            return True
        return False

    def expect(self, text: str) -> None:
        _, token = self.next()
        if token.upper() != text:
            raise self.error(token)

    def done(self) -> None:
        token = self.peek()
        if token is not None:
            raise self.error(token[1])


def _path(tokens: _Tokens, places: Placeholders) -> str:
    kind, token = tokens.next()
    if kind == "name":
        name = places.name(token)
    elif kind == "word" and token.upper() not in _KEYWORDS:
        name = token
    else:
        raise tokens.error(token)
    following = tokens.peek()
    if following is not None and following[1] in (".", "["):
        raise ExpressionError(
            f"Invalid {tokens.kind}: nested document paths are not supported by the memory "
            "transport"
        )
    return name


# -- values ---------------------------------------------------------------------------


def canonical_number(text: str) -> str:
    """A Number as DynamoDB returns it (no exponent, no trailing zeros), or `ExpressionError`."""
    try:
        number = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        raise ExpressionError("A value provided cannot be converted into a number") from None
    if not number.is_finite():
        raise ExpressionError("A value provided cannot be converted into a number")
    return _format(number)


def _format(number: Decimal) -> str:
    if number.is_zero():
        return "0"
    digits = number.as_tuple().digits
    if len(digits) > 38:
        raise ExpressionError(_TOO_PRECISE)
    adjusted = number.adjusted()
    if adjusted > 125:
        raise ExpressionError(_OVERFLOW)
    if adjusted < -130:
        raise ExpressionError(_UNDERFLOW)
    return format(number.normalize(_NUMBERS), "f")


def add_numbers(left: str, right: str, *, subtract: bool = False) -> str:
    """`left` ± `right` as DynamoDB computes it (38 digits)."""
    a, b = Decimal(left), Decimal(right)
    context = _NUMBERS.copy()
    context.traps[Inexact] = True  # a sum needing a 39th digit is refused, never rounded
    try:
        result = context.subtract(a, b) if subtract else context.add(a, b)
    except Overflow:  # an Inexact too: caught first
        raise ExpressionError(_OVERFLOW) from None
    except Inexact:
        raise ExpressionError(_TOO_PRECISE) from None
    except (InvalidOperation, ArithmeticError):
        raise ExpressionError(_OVERFLOW) from None
    return _format(result)


def _type(value: AttrValue) -> str:
    return next(iter(value))


def equal(left: AttrValue | None, right: AttrValue | None) -> bool:  # noqa: PLR0911 (one per type)
    """DynamoDB's ``=``: same type and same value (numbers by value, sets unordered)."""
    if left is None or right is None:
        return False
    kind = _type(left)
    if kind != _type(right):
        return False
    a, b = left[kind], right[kind]
    if kind == "N":
        return Decimal(a) == Decimal(b)
    if kind == "NS":
        return {Decimal(x) for x in a} == {Decimal(x) for x in b}
    if kind in ("SS", "BS"):
        return set(a) == set(b)
    if kind == "M":
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if kind == "L":
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _ordered(left: AttrValue | None, right: AttrValue | None) -> tuple[Any, Any] | None:
    """Comparable forms of two scalars of one ordered type (N, S, B), else None."""
    if left is None or right is None:
        return None
    kind = _type(left)
    if kind != _type(right) or kind not in ("N", "S", "B"):
        return None
    if kind == "N":
        return Decimal(left["N"]), Decimal(right["N"])
    if kind == "S":
        return left["S"].encode("utf-8", "surrogatepass"), right["S"].encode(
            "utf-8", "surrogatepass"
        )
    return bytes(left["B"]), bytes(right["B"])


def _by_order(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """`test` on two scalars of one ordered type; false for any other pair."""
    return lambda a, b: (pair := _ordered(a, b)) is not None and test(*pair)


#: The comparators of conditions, on two attribute values (None: absent).
_COMPARE: dict[str, Callable[[AttrValue | None, AttrValue | None], bool]] = {
    "=": equal,
    "<>": lambda a, b: not equal(a, b),
    "<": _by_order(operator.lt),
    "<=": _by_order(operator.le),
    ">": _by_order(operator.gt),
    ">=": _by_order(operator.ge),
}


def _begins_with(value: AttrValue, prefix: AttrValue) -> bool:
    kind = _type(value)
    if kind != _type(prefix) or kind not in ("S", "B"):
        return False
    return bool(value[kind].startswith(prefix[kind]))


def _contains(value: AttrValue, part: AttrValue) -> bool:
    kind, other = _type(value), _type(part)
    if kind == "S" and other == "S":
        return part["S"] in value["S"]
    if kind == "B" and other == "B":
        return bytes(part["B"]) in bytes(value["B"])
    if kind in ("SS", "NS", "BS") and other == kind[0]:
        return any(equal({other: member}, part) for member in value[kind])
    if kind == "L":
        return any(equal(member, part) for member in value["L"])
    return False


# -- conditions -----------------------------------------------------------------------


def parse_condition(
    text: str, places: Placeholders, kind: str = "ConditionExpression"
) -> Condition:
    """Parse a condition or filter expression into a predicate on items."""
    tokens = _Tokens(text, kind)
    condition = _or(tokens, places)
    tokens.done()
    return condition


def _or(tokens: _Tokens, places: Placeholders, word: str = "OR") -> Condition:
    """``a OR b ...`` of ``AND`` terms (`word` AND: ``a AND b ...`` of ``NOT`` terms)."""
    combine, operand = (any, _and) if word == "OR" else (all, _not)
    parts = [operand(tokens, places)]
    while tokens.take(word):
        parts.append(operand(tokens, places))
    if len(parts) == 1:
        return parts[0]
    return lambda item, values: combine(part(item, values) for part in parts)


def _and(tokens: _Tokens, places: Placeholders) -> Condition:
    return _or(tokens, places, "AND")


def _not(tokens: _Tokens, places: Placeholders) -> Condition:
    if tokens.take("NOT"):
        inner = _not(tokens, places)
        return lambda item, values: not inner(item, values)
    return _primary(tokens, places)


def _primary(tokens: _Tokens, places: Placeholders) -> Condition:
    token = tokens.peek()
    if token is None:
        raise tokens.error("<EOF>")
    if token[1] == "(":
        tokens.next()
        inner = _or(tokens, places)
        tokens.expect(")")
        return inner
    if token[0] == "word" and token[1].lower() in _FUNCTIONS:
        after = tokens.items[tokens.at + 1] if tokens.at + 1 < len(tokens.items) else None
        if after is not None and after[1] == "(":
            return _function(tokens, places)
    left = _operand(tokens, places)
    _, op = tokens.next()
    if op in _COMPARE:
        compare, right = _COMPARE[op], _operand(tokens, places)
        return lambda item, values: compare(left(item, values), right(item, values))
    if op.upper() == "BETWEEN":
        low = _operand(tokens, places)
        tokens.expect("AND")
        high = _operand(tokens, places)
        at_least, at_most = _COMPARE[">="], _COMPARE["<="]
        return lambda item, values: (
            at_least(value := left(item, values), low(item, values))
            and at_most(value, high(item, values))
        )
    if op.upper() == "IN":
        tokens.expect("(")
        choices = [_operand(tokens, places)]
        while tokens.take(","):
            choices.append(_operand(tokens, places))
        tokens.expect(")")
        return lambda item, values: any(
            equal(left(item, values), choice(item, values)) for choice in choices
        )
    raise tokens.error(op)


#: The two-argument functions of conditions: (attribute, operand) in, true or false out
#: (false when either is absent).
_TESTS: dict[str, Callable[[AttrValue, AttrValue], bool]] = {
    "begins_with": _begins_with,
    "contains": _contains,
    "attribute_type": lambda value, wanted: _type(value) == wanted.get("S"),
}
_FUNCTIONS = frozenset({"attribute_exists", "attribute_not_exists", *_TESTS})


def _function(tokens: _Tokens, places: Placeholders) -> Condition:
    name = tokens.next()[1].lower()
    tokens.expect("(")
    path = _path(tokens, places)
    if name in ("attribute_exists", "attribute_not_exists"):
        tokens.expect(")")
        exists = name == "attribute_exists"
        return lambda item, _values: (path in item) == exists
    tokens.expect(",")
    operand = _operand(tokens, places)
    tokens.expect(")")
    test = _TESTS[name]

    def holds(item: Item, values: Values) -> bool:
        value, argument = item.get(path), operand(item, values)
        return value is not None and argument is not None and test(value, argument)

    return holds


def _operand(tokens: _Tokens, places: Placeholders) -> _Operand:
    token = tokens.peek()
    if token is not None and token[0] == "value":
        tokens.next()
        return places.value(token[1])
    if token is not None and token[0] == "word" and token[1].lower() == "size":
        tokens.next()
        tokens.expect("(")
        path = _path(tokens, places)
        tokens.expect(")")
        return lambda item, _values: _size(item.get(path))
    path = _path(tokens, places)
    return lambda item, _values: item.get(path)


def _size(value: AttrValue | None) -> AttrValue | None:
    if value is None:
        return None
    kind = _type(value)
    if kind == "S":
        return {"N": str(len(value["S"].encode()))}
    if kind in ("B", "SS", "NS", "BS", "L", "M"):
        return {"N": str(len(value[kind]))}
    return None


# -- projections ----------------------------------------------------------------------


def parse_projection(text: str, places: Placeholders) -> list[str]:
    """The top-level attribute names of a projection expression."""
    tokens = _Tokens(text, "ProjectionExpression")
    names = [_path(tokens, places)]
    while tokens.take(","):
        names.append(_path(tokens, places))
    tokens.done()
    return names


# -- updates --------------------------------------------------------------------------


class Update:
    """A parsed update expression: its actions, and the attributes it touches."""

    __slots__ = ("actions", "paths")

    def __init__(self) -> None:
        # (clause, attribute, operand) with operand None for REMOVE
        self.actions: list[tuple[str, str, _Operand | None]] = []
        self.paths: list[str] = []

    def apply(self, old: Item, values: Values) -> Item:
        """The item after the update, every operand read from `old` (and `values`)."""
        new = dict(old)
        for clause, path, operand in self.actions:
            if clause == "REMOVE":
                new.pop(path, None)
                continue
            assert operand is not None  # noqa: S101 (every other clause has one)
            value = operand(old, values)
            if value is None:
                raise ExpressionError(
                    "The provided expression refers to an attribute that does not exist in the item"
                )
            if clause == "SET":
                new[path] = value
            elif clause == "ADD":
                new[path] = _add(old.get(path), value)
            elif (remaining := _set_minus(old.get(path), value)) is None:  # DELETE
                new.pop(path, None)
            else:
                new[path] = remaining
        return new


_CLAUSES = ("SET", "REMOVE", "ADD", "DELETE")


def parse_update(text: str, places: Placeholders) -> Update:
    """Parse an update expression (`ExpressionError`: a syntax error, a path written twice)."""
    kind = "UpdateExpression"
    tokens = _Tokens(text, kind)
    update = Update()
    seen: set[str] = set()
    while tokens.peek() is not None:
        clause = tokens.next()[1].upper()
        if clause not in _CLAUSES:
            raise tokens.error(clause)
        if clause in seen:
            raise ExpressionError(
                f'Invalid {kind}: The "{clause}" section can only be used once in an update '
                "expression;"
            )
        seen.add(clause)
        while True:
            path = _path(tokens, places)
            if path in update.paths:
                raise ExpressionError(
                    f"Invalid {kind}: Two document paths overlap with each other; must remove or "
                    f"rewrite one of these paths; path one: [{path}], path two: [{path}]"
                )
            update.paths.append(path)
            operand: _Operand | None
            if clause == "SET":
                tokens.expect("=")
                operand = _set_value(tokens, places)
            elif clause == "REMOVE":
                operand = None
            else:  # ADD and DELETE take a :value
                group, token = tokens.next()
                if group != "value":
                    raise tokens.error(token)
                operand = places.value(token)
            update.actions.append((clause, path, operand))
            if not tokens.take(","):
                break
    return update


def _set_value(tokens: _Tokens, places: Placeholders) -> _Operand:
    left = _set_term(tokens, places)
    token = tokens.peek()
    if token is None or token[1] not in ("+", "-"):
        return left
    tokens.next()
    right = _set_term(tokens, places)
    subtract = token[1] == "-"
    return _of_two(left, right, "N", lambda a, b: add_numbers(a, b, subtract=subtract))


def _of_two(
    left: _Operand, right: _Operand, kind: str, combine: Callable[[Any, Any], Any]
) -> _Operand:
    """`combine` of two operands of type `kind`; None when either is absent."""

    def operand(item: Item, values: Values) -> AttrValue | None:
        a, b = left(item, values), right(item, values)
        if a is None or b is None:
            return None
        if _type(a) != kind or _type(b) != kind:
            raise ExpressionError(_WRONG_OPERAND)
        return {kind: combine(a[kind], b[kind])}

    return operand


def _set_term(tokens: _Tokens, places: Placeholders) -> _Operand:
    token = tokens.peek()
    function = token[1].lower() if token is not None and token[0] == "word" else None
    if function not in ("if_not_exists", "list_append"):
        return _operand(tokens, places)
    tokens.next()
    tokens.expect("(")
    if function == "if_not_exists":
        path = _path(tokens, places)
        fallback = _last_argument(tokens, places)

        def if_not_exists(item: Item, values: Values) -> AttrValue | None:
            found = item.get(path)
            return found if found is not None else fallback(item, values)

        return if_not_exists
    first = _set_term(tokens, places)
    return _of_two(first, _last_argument(tokens, places), "L", lambda a, b: [*a, *b])


def _last_argument(tokens: _Tokens, places: Placeholders) -> _Operand:
    """``, <term>)``: the second and last argument of a function in SET."""
    tokens.expect(",")
    term = _set_term(tokens, places)
    tokens.expect(")")
    return term


def _add(current: AttrValue | None, value: AttrValue) -> AttrValue:
    kind = _type(value)
    if kind == "N":
        if current is None:
            return {"N": canonical_number(value["N"])}
        if _type(current) == "N":
            return {"N": add_numbers(current["N"], value["N"])}
    elif kind in ("SS", "NS", "BS"):
        if current is None:
            return value
        if _type(current) == kind:
            members = list(current[kind])
            for member in value[kind]:
                if not any(equal({kind: m}, {kind: member}) for m in members):
                    members.append(member)
            return {kind: members}
    raise ExpressionError(_WRONG_OPERAND)


def _set_minus(current: AttrValue | None, value: AttrValue) -> AttrValue | None:
    kind = _type(value)
    if kind not in ("SS", "NS", "BS"):
        raise ExpressionError(_WRONG_OPERAND)
    if current is None:
        return None
    if _type(current) != kind:
        raise ExpressionError(_WRONG_OPERAND)
    members = [
        m for m in current[kind] if not any(equal({kind: m}, {kind: d}) for d in value[kind])
    ]
    return {kind: members} if members else None
