"""A stub DynamoDB endpoint for benchmarks: one process, in-memory tables, HTTP/1.1 keep-alive.

Run it on its own (``python benchmarks/stub.py --port 8765``) or let ``run.py`` start it.
It prints ``READY <port>`` on stdout once it listens on 127.0.0.1.

What it implements (JSON 1.0 protocol, ``X-Amz-Target: DynamoDB_20120810.<Op>``):

- GetItem, PutItem, DeleteItem, UpdateItem, BatchGetItem, BatchWriteItem;
- CreateTable, DescribeTable, UpdateTimeToLive, DescribeTimeToLive (tables are ACTIVE at once);
- consumed capacity as DynamoDB charges it (see `read_units` / `write_units`), counted for
  every request and returned when ``ReturnConsumedCapacity`` asks for it;
- ``ReturnValues`` on PutItem, DeleteItem and UpdateItem;
- every response carries ``x-amzn-RequestId`` and ``x-amz-crc32`` (botocore checks it).

Simplifications, on purpose (this is a load generator's counterpart, not an emulator):

- ``ConditionExpression`` is never evaluated: every condition is treated as true.
- ``UpdateExpression`` handles top-level attributes only: ``SET a = :v``, ``SET a = b + :v``,
  ``SET a = if_not_exists(a, :v) + :w`` (and ``-``), ``REMOVE a, b``, ``ADD a :n`` on numbers
  and sets, ``DELETE a :set``. These are the shapes aiodynkv sends.
- ``ProjectionExpression`` handles top-level attributes only.
- Nothing is ever throttled or unprocessed.
- Expired items are kept (DynamoDB deletes them lazily too); clients filter them.

A non-DynamoDB target ``BenchStub.Stats`` answers ``{"requests": n, "cpu_seconds": s,
"read_units": r, "write_units": w}``: the requests served so far (Stats calls excluded),
this process's CPU time and the capacity units consumed so far, so that the harness can
print the stub's own CPU per request and the capacity each client spends per operation.
``BenchStub.Configure`` with ``{"latency_ms": x}`` makes every later DynamoDB answer leave
x ms after its request arrived (``--latency-ms`` sets it at start), like a same-region
round trip; the request is still served at once, only the answer waits.

Capacity, as DynamoDB bills it (on-demand and provisioned alike):

- a read of an item costs one unit per 4 KB (rounded up, at least one), halved for an
  eventually consistent read; a missing item costs the minimum; BatchGetItem charges
  each key on its own, exactly as a GetItem of it;
- a write costs one unit per 1 KB (rounded up, at least one) of the larger of the old and
  the new item (PutItem, UpdateItem), of the deleted item (DeleteItem); BatchWriteItem
  charges each put or delete on its own;
- an item's size is the UTF-8 length of every attribute name plus its value's size.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import signal
import time
import zlib
from decimal import Decimal
from typing import Any

Item = dict[str, dict[str, Any]]
_TARGET_PREFIX = "DynamoDB_20120810."
_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
_MAX_REQUEST_BYTES = 16 * 1024 * 1024
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads


class DynamoError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def attribute_size(value: dict[str, Any]) -> int:  # noqa: PLR0911 (one return per type)
    """Bytes DynamoDB counts for one attribute value (numbers approximated as it sizes them)."""
    kind, data = next(iter(value.items()))
    if kind == "S":
        return len(data.encode())
    if kind == "B":
        return len(base64.b64decode(data)) if isinstance(data, str) else len(data)
    if kind == "N":
        return (len(data.lstrip("-").replace(".", "").lstrip("0")) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(v.encode()) for v in data)
    if kind == "NS":
        return sum(attribute_size({"N": v}) for v in data)
    if kind == "BS":
        return sum(attribute_size({"B": v}) for v in data)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(v) for k, v in data.items())
    return len(json.dumps(data))


def item_size(item: Item | None) -> int:
    """An item's size as DynamoDB counts it: attribute-name bytes plus value bytes."""
    if not item:
        return 0
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        text = value.get("S")  # most attributes are strings: sized without the dispatch
        if type(text) is str and len(value) == 1:
            size += len(text.encode())
        else:
            size += attribute_size(value)
    return size


def read_units(size: int, consistent: bool) -> float:
    """Read capacity of `size` bytes: 4 KB units, at least one; half for eventual consistency."""
    units = max(1, -(-size // 4096))
    return float(units) if consistent else units / 2


def write_units(*sizes: int) -> float:
    """Write capacity: 1 KB units of the largest of the sizes (old, new), at least one."""
    return float(max(1, -(-max(sizes) // 1024)))


def _not_found(table: str) -> DynamoError:
    return DynamoError(
        "ResourceNotFoundException", f"Requested resource not found: Table: {table} not found"
    )


class Table:
    __slots__ = (
        "created",
        "definitions",
        "encoded",
        "items",
        "key_names",
        "key_schema",
        "name",
        "sizes",
        "ttl",
    )

    def __init__(self, name: str, key_schema: list[dict[str, str]], definitions: list[Any]) -> None:
        self.name = name
        self.key_schema = key_schema
        self.definitions = definitions
        hash_keys = [k["AttributeName"] for k in key_schema if k["KeyType"] == "HASH"]
        ranges = [k["AttributeName"] for k in key_schema if k["KeyType"] == "RANGE"]
        self.key_names: tuple[str, ...] = tuple(hash_keys + ranges)
        self.items: dict[tuple[Any, ...], Item] = {}
        # Each item's JSON text, made on first read and dropped on write: reads then
        # splice stored text instead of encoding the same items again.
        self.encoded: dict[tuple[Any, ...], str] = {}
        # Each item's size as DynamoDB counts it, kept beside the item for the same reason:
        # capacity is charged on every read and write, the size changes only on a write.
        self.sizes: dict[tuple[Any, ...], int] = {}
        self.ttl: dict[str, Any] | None = None
        self.created = time.time()

    def key_of(self, key: Item) -> tuple[Any, ...]:
        try:
            if len(self.key_names) == 1:
                attr = key[self.key_names[0]]
                return (next(iter(attr.values())),)
            return tuple(next(iter(key[n].values())) for n in self.key_names)
        except (KeyError, StopIteration, AttributeError):
            raise DynamoError(
                "ValidationException",
                "The provided key element does not match the schema",
            ) from None

    def put(self, key: tuple[Any, ...], item: Item) -> int:
        """Store `item` under `key`; its size."""
        self.items[key] = item
        self.encoded.pop(key, None)
        size = self.sizes[key] = item_size(item)
        return size

    def pop(self, key: tuple[Any, ...]) -> Item | None:
        self.encoded.pop(key, None)
        self.sizes.pop(key, None)
        return self.items.pop(key, None)

    def size_of(self, key: tuple[Any, ...]) -> int:
        """The stored item's size (0 where there is none)."""
        return self.sizes.get(key, 0)

    def text_of(self, key: tuple[Any, ...], item: Item) -> str:
        text = self.encoded.get(key)
        if text is None:
            text = self.encoded[key] = _dumps(item)
        return text

    def describe(self) -> dict[str, Any]:
        return {
            "TableName": self.name,
            "TableStatus": "ACTIVE",
            "KeySchema": self.key_schema,
            "AttributeDefinitions": self.definitions,
            "CreationDateTime": self.created,
            "ItemCount": len(self.items),
            "TableSizeBytes": 0,
            "TableArn": f"arn:aws:dynamodb:us-east-1:000000000000:table/{self.name}",
            "TableId": "00000000-0000-0000-0000-000000000000",
            "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
            "ProvisionedThroughput": {
                "NumberOfDecreasesToday": 0,
                "ReadCapacityUnits": 0,
                "WriteCapacityUnits": 0,
            },
        }


# -- expressions -------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:([#:]?[A-Za-z_][A-Za-z0-9_\-]*)|([,()=+\-]))")
_CLAUSES = frozenset({"SET", "REMOVE", "ADD", "DELETE"})
_NO_ATTRIBUTE = "The provided expression refers to an attribute that does not exist in the item"


def _tokens(expression: str) -> list[str]:
    out: list[str] = []
    pos = 0
    end = len(expression.rstrip())
    while pos < end:
        match = _TOKEN.match(expression, pos)
        if match is None:
            raise DynamoError("ValidationException", f"Invalid UpdateExpression: {expression!r}")
        out.append(match.group(1) or match.group(2))
        pos = match.end()
    return out


def _name(token: str, names: dict[str, str]) -> str:
    if token.startswith("#"):
        try:
            return names[token]
        except KeyError:
            raise DynamoError(
                "ValidationException", f"An expression attribute name used is not defined: {token}"
            ) from None
    return token


def _value(token: str, values: Item) -> dict[str, Any]:
    try:
        return values[token]
    except KeyError:
        raise DynamoError(
            "ValidationException", f"An expression attribute value used is not defined: {token}"
        ) from None


def _number(attr: dict[str, Any]) -> Decimal:
    if "N" not in attr:
        raise DynamoError(
            "ValidationException",
            "An operand in the update expression has an incorrect data type",
        )
    return Decimal(attr["N"])


def _format(number: Decimal) -> str:
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


class _Parser:
    """A recursive-descent reader of the UpdateExpression shapes listed in the module doc."""

    def __init__(self, tokens: list[str], names: dict[str, str], values: Item, item: Item) -> None:
        self.tokens = tokens
        self.pos = 0
        self.names = names
        self.values = values
        self.item = item
        self.updated: set[str] = set()

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise DynamoError("ValidationException", f"Invalid UpdateExpression near {token!r}")
        self.pos += 1
        return token

    def at_clause_end(self) -> bool:
        token = self.peek()
        return token is None or token.upper() in _CLAUSES

    def run(self) -> set[str]:
        while self.peek() is not None:
            clause = self.take().upper()
            if clause not in _CLAUSES:
                raise DynamoError("ValidationException", f"Invalid UpdateExpression: {clause}")
            while True:
                getattr(self, f"_{clause.lower()}")()
                if self.peek() != ",":
                    break
                self.take(",")
            if not self.at_clause_end():
                raise DynamoError(
                    "ValidationException", f"Invalid UpdateExpression near {self.peek()!r}"
                )
        return self.updated

    def _path(self) -> str:
        return _name(self.take(), self.names)

    def _operand(self) -> dict[str, Any] | None:
        word = self.take()
        if word.startswith(":"):
            return _value(word, self.values)
        if word == "if_not_exists":
            self.take("(")
            current = self.item.get(self._path())
            self.take(",")
            fallback = self._operand()
            self.take(")")
            return current if current is not None else fallback
        if word == "list_append":
            self.take("(")
            first = self._operand()
            self.take(",")
            second = self._operand()
            self.take(")")
            return {"L": [*(first or {}).get("L", []), *(second or {}).get("L", [])]}
        return self.item.get(_name(word, self.names))

    def _set(self) -> None:
        path = self._path()
        self.take("=")
        value = self._operand()
        if self.peek() in ("+", "-"):
            sign = self.take()
            other = self._operand()
            if value is None or other is None:
                raise DynamoError("ValidationException", _NO_ATTRIBUTE)
            left, right = _number(value), _number(other)
            value = {"N": _format(left + right if sign == "+" else left - right)}
        if value is None:
            raise DynamoError("ValidationException", _NO_ATTRIBUTE)
        self.item[path] = value
        self.updated.add(path)

    def _remove(self) -> None:
        path = self._path()
        self.item.pop(path, None)
        self.updated.add(path)

    def _add(self) -> None:
        path = self._path()
        value = _value(self.take(), self.values)
        current = self.item.get(path)
        if "N" in value:
            base = Decimal(0) if current is None else _number(current)
            self.item[path] = {"N": _format(base + Decimal(value["N"]))}
        else:
            kind = next(iter(value))
            if current is not None and kind not in current:
                raise DynamoError(
                    "ValidationException",
                    "An operand in the update expression has an incorrect data type",
                )
            merged = list((current or {}).get(kind, []))
            merged += [v for v in value[kind] if v not in merged]
            self.item[path] = {kind: merged}
        self.updated.add(path)

    def _delete(self) -> None:
        path = self._path()
        value = _value(self.take(), self.values)
        current = self.item.get(path)
        if current is not None:
            kind = next(iter(value))
            remaining = [v for v in current.get(kind, []) if v not in value[kind]]
            if remaining:
                self.item[path] = {kind: remaining}
            else:
                del self.item[path]
        self.updated.add(path)


def _project(item: Item, request: dict[str, Any]) -> Item:
    projection = request.get("ProjectionExpression")
    if not projection:
        return item
    names = request.get("ExpressionAttributeNames") or {}
    wanted = [_name(p.strip(), names) for p in projection.split(",")]
    return {n: item[n] for n in wanted if n in item}


# -- the service ----------------------------------------------------------------------------


class Stub:
    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}
        self.requests = 0
        self.read_units = 0.0
        self.write_units = 0.0
        self.latency = 0.0  # seconds each DynamoDB answer waits before it leaves
        self.request_id = 0
        self.handlers = {
            "GetItem": self.get_item,
            "PutItem": self.put_item,
            "DeleteItem": self.delete_item,
            "UpdateItem": self.update_item,
            "BatchGetItem": self.batch_get_item,
            "BatchWriteItem": self.batch_write_item,
            "CreateTable": self.create_table,
            "DescribeTable": self.describe_table,
            "DeleteTable": self.delete_table,
            "UpdateTimeToLive": self.update_time_to_live,
            "DescribeTimeToLive": self.describe_time_to_live,
        }

    def table(self, name: str) -> Table:
        table = self.tables.get(name)
        if table is None:
            raise _not_found(name)
        return table

    def _capacity(
        self, request: dict[str, Any], table: str, units: float, *, write: bool = False
    ) -> dict[str, Any]:
        if write:
            self.write_units += units
        else:
            self.read_units += units
        if request.get("ReturnConsumedCapacity", "NONE") == "NONE":
            return {}
        return {"ConsumedCapacity": {"TableName": table, "CapacityUnits": units}}

    def get_item(self, request: dict[str, Any]) -> str:
        table = self.table(request["TableName"])
        key = table.key_of(request["Key"])
        item = table.items.get(key)
        units = read_units(table.size_of(key), bool(request.get("ConsistentRead")))
        parts = []
        if item is not None:
            if request.get("ProjectionExpression"):
                parts.append('"Item":' + _dumps(_project(item, request)))
            else:
                parts.append('"Item":' + table.text_of(key, item))
        capacity = self._capacity(request, table.name, units)
        if capacity:
            parts.append('"ConsumedCapacity":' + _dumps(capacity["ConsumedCapacity"]))
        return "{" + ",".join(parts) + "}"

    def put_item(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self.table(request["TableName"])
        item = request["Item"]
        old = table.items.get(key := table.key_of(item))
        old_size = table.size_of(key)
        size = table.put(key, item)
        response = self._capacity(request, table.name, write_units(old_size, size), write=True)
        if old is not None and request.get("ReturnValues") == "ALL_OLD":
            response["Attributes"] = old
        return response

    def delete_item(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self.table(request["TableName"])
        key = table.key_of(request["Key"])
        old_size = table.size_of(key)
        old = table.pop(key)
        response = self._capacity(request, table.name, write_units(old_size), write=True)
        if old is not None and request.get("ReturnValues") == "ALL_OLD":
            response["Attributes"] = old
        return response

    def update_item(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self.table(request["TableName"])
        key_item = request["Key"]
        key = table.key_of(key_item)
        old = table.items.get(key)
        old_size = table.size_of(key)
        item: Item = dict(old) if old is not None else dict(key_item)
        expression = request.get("UpdateExpression", "")
        updated = _Parser(
            _tokens(expression),
            request.get("ExpressionAttributeNames") or {},
            request.get("ExpressionAttributeValues") or {},
            item,
        ).run()
        size = table.put(key, item)
        response = self._capacity(request, table.name, write_units(old_size, size), write=True)
        returns = request.get("ReturnValues", "NONE")
        if returns == "ALL_NEW":
            response["Attributes"] = item
        elif returns == "UPDATED_NEW":
            response["Attributes"] = {n: item[n] for n in updated if n in item}
        elif returns == "ALL_OLD" and old is not None:
            response["Attributes"] = old
        elif returns == "UPDATED_OLD" and old is not None:
            response["Attributes"] = {n: old[n] for n in updated if n in old}
        return response

    def batch_get_item(self, request: dict[str, Any]) -> str:
        tables = []
        capacity = []
        for name, spec in request["RequestItems"].items():
            table = self.table(name)
            items = table.items
            sizes = table.sizes
            project = bool(spec.get("ProjectionExpression"))
            consistent = bool(spec.get("ConsistentRead"))
            units = 0.0
            found = []
            for wanted in spec["Keys"]:
                key = table.key_of(wanted)
                item = items.get(key)
                units += read_units(sizes.get(key, 0), consistent)
                if item is not None:
                    found.append(
                        _dumps(_project(item, spec)) if project else table.text_of(key, item)
                    )
            tables.append(_dumps(name) + ":[" + ",".join(found) + "]")
            self.read_units += units
            capacity.append({"TableName": name, "CapacityUnits": units})
        text = '{"Responses":{' + ",".join(tables) + '},"UnprocessedKeys":{}'
        if request.get("ReturnConsumedCapacity", "NONE") != "NONE":
            text += ',"ConsumedCapacity":' + _dumps(capacity)
        return text + "}"

    def batch_write_item(self, request: dict[str, Any]) -> dict[str, Any]:
        capacity = []
        for name, writes in request["RequestItems"].items():
            table = self.table(name)
            units = 0.0
            for write in writes:
                put = write.get("PutRequest")
                if put is not None:
                    key = table.key_of(put["Item"])
                    old_size = table.size_of(key)
                    units += write_units(old_size, table.put(key, put["Item"]))
                else:
                    key = table.key_of(write["DeleteRequest"]["Key"])
                    units += write_units(table.size_of(key))
                    table.pop(key)
            self.write_units += units
            capacity.append({"TableName": name, "CapacityUnits": units})
        response: dict[str, Any] = {"UnprocessedItems": {}}
        if request.get("ReturnConsumedCapacity", "NONE") != "NONE":
            response["ConsumedCapacity"] = capacity
        return response

    def create_table(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["TableName"]
        if name in self.tables:
            raise DynamoError("ResourceInUseException", f"Table already exists: {name}")
        table = self.tables[name] = Table(
            name, request["KeySchema"], request.get("AttributeDefinitions", [])
        )
        return {"TableDescription": table.describe()}

    def describe_table(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"Table": self.table(request["TableName"]).describe()}

    def delete_table(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self.table(request["TableName"])
        del self.tables[table.name]
        return {"TableDescription": {**table.describe(), "TableStatus": "DELETING"}}

    def update_time_to_live(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self.table(request["TableName"])
        spec = request["TimeToLiveSpecification"]
        table.ttl = spec if spec.get("Enabled") else None
        return {"TimeToLiveSpecification": spec}

    def describe_time_to_live(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self.table(request["TableName"])
        if table.ttl is None:
            return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}
        return {
            "TimeToLiveDescription": {
                "TimeToLiveStatus": "ENABLED",
                "AttributeName": table.ttl["AttributeName"],
            }
        }

    def handle(self, target: str, body: bytes) -> tuple[int, bytes]:
        """Answer one request: (HTTP status, JSON body)."""
        if target == "BenchStub.Stats":
            stats = {
                "requests": self.requests,
                "cpu_seconds": time.process_time(),
                "read_units": self.read_units,
                "write_units": self.write_units,
            }
            return 200, _dumps(stats).encode()
        if target == "BenchStub.Configure":
            self.latency = max(0.0, float(_loads(body).get("latency_ms", 0.0))) / 1e3
            return 200, _dumps({"latency_ms": self.latency * 1e3}).encode()
        self.requests += 1
        operation = target[len(_TARGET_PREFIX) :] if target.startswith(_TARGET_PREFIX) else ""
        handler = self.handlers.get(operation)
        try:
            if handler is None:
                raise DynamoError("UnknownOperationException", f"Unknown operation: {target!r}")
            try:
                request = _loads(body)
            except ValueError:
                raise DynamoError("SerializationException", "Malformed JSON body") from None
            response = handler(request)
            text = response if isinstance(response, str) else _dumps(response)
            return 200, text.encode()
        except DynamoError as exc:
            error = {"__type": _ERROR_PREFIX + exc.code, "message": exc.message}
            return exc.status, _dumps(error).encode()
        except (KeyError, TypeError, AttributeError) as exc:
            error = {
                "__type": _ERROR_PREFIX + "ValidationException",
                "message": f"bad request: {exc!r}",
            }
            return 400, _dumps(error).encode()


_REASONS = {200: b"OK", 400: b"Bad Request", 413: b"Payload Too Large"}


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and pipelining; Content-Length bodies only (what the SDKs send)."""

    def __init__(self, stub: Stub) -> None:
        self.stub = stub
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        del exc
        self.transport = None

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while self.transport is not None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > 65536:
                    self._fail(413)
                return
            head = bytes(buffer[:end])
            lower = head.lower()
            length = int(_header(head, lower, b"content-length") or b"0")
            if length > _MAX_REQUEST_BYTES:
                self._fail(413)
                return
            start = end + 4
            if len(buffer) < start + length:
                return
            body = bytes(buffer[start : start + length])
            del buffer[: start + length]
            target = (_header(head, lower, b"x-amz-target") or b"").decode()
            close = (_header(head, lower, b"connection") or b"").lower() == b"close"
            status, payload = self.stub.handle(target, body)
            delay = self.stub.latency
            if delay and not target.startswith("BenchStub."):
                # The same delay for every answer keeps a connection's answers in order.
                asyncio.get_running_loop().call_later(
                    delay, self.stub_write, status, payload, close
                )
            else:
                self.stub_write(status, payload, close)

    def stub_write(self, status: int, payload: bytes, close: bool) -> None:
        if self.transport is None:  # the client went away while the answer waited
            return
        self.stub.request_id += 1
        head = (
            b"HTTP/1.1 %d %s\r\n"
            b"Content-Type: application/x-amz-json-1.0\r\n"
            b"Content-Length: %d\r\n"
            b"x-amzn-RequestId: STUB%048d\r\n"
            b"x-amz-crc32: %d\r\n"
            b"Connection: %s\r\n\r\n"
        ) % (
            status,
            _REASONS.get(status, b"Error"),
            len(payload),
            self.stub.request_id,
            zlib.crc32(payload),
            b"close" if close else b"keep-alive",
        )
        self.transport.write(head + payload)
        if close:
            self.transport.close()

    def _fail(self, status: int) -> None:
        self.stub_write(status, b'{"__type":"SerializationException","message":"too large"}', True)


def _header(head: bytes, lower: bytes, name: bytes) -> bytes | None:
    """The value of header `name` (lower case) in the raw head, or None."""
    at = lower.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    at += len(name) + 3
    stop = head.find(b"\r\n", at)
    return head[at : stop if stop >= 0 else len(head)].strip()


async def serve(port: int, seconds: float, latency_ms: float = 0.0) -> None:
    loop = asyncio.get_running_loop()
    stub = Stub()
    stub.latency = latency_ms / 1e3
    server = await loop.create_server(lambda: HttpProtocol(stub), "127.0.0.1", port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        print("stub: lifetime limit reached, stopping", flush=True)
    server.close()
    await server.wait_closed()
    cpu = time.process_time()
    per_request = cpu / stub.requests * 1e6 if stub.requests else 0.0
    print(
        f"stub: {stub.requests} requests, {cpu:.2f} s CPU in all "
        f"({per_request:.0f} µs per request, start-up included)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--max-seconds", type=float, default=3600.0, help="stop by itself after this long"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay every answer by this long"
    )
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.max_seconds, args.latency_ms))


if __name__ == "__main__":
    main()
