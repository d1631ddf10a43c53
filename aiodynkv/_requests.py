"""One pure function per DynamoDB request: config and arguments in, the request dict out.

Nothing here does I/O, reads the clock or draws random numbers: the caller passes
`now`, the write token and the version base, so every request can be unit-tested
(and snapshot-tested) without a server: the single-key requests, batches, scans,
transactions and the lease item's writes. Expression names are fixed:

``#k`` partition key, ``#v`` value, ``#t`` TTL attribute (whole seconds, for
DynamoDB's sweeper), ``#m`` exact expiry in ms, ``#r`` version, ``#z`` compression
flag, ``#tk`` write token.
"""

from __future__ import annotations

import binascii
import functools
import json
import json.encoder
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from aiodynkv._codec import COMPRESSION_FLAG, EXPIRY_MS, TOKEN, AttributeValue, Item, assemble_item

if TYPE_CHECKING:
    from aiodynkv._config import KVConfig

__all__ = [
    "ABSENT",
    "BUMP",
    "RECORD",
    "LOCK_FENCE",
    "LOCK_LEASE",
    "LOCK_OWNER",
    "NOT_MINE",
    "UNEXPIRED",
    "BatchGetText",
    "BatchWriteText",
    "PutTexts",
    "batch_get",
    "batch_write",
    "condition_check",
    "delete",
    "delete_request",
    "get",
    "incr",
    "incr_restart",
    "lock_acquire",
    "lock_release",
    "lock_renew",
    "put",
    "put_request",
    "scan_page",
    "set_counter",
    "transact_get",
    "transact_item",
    "transact_write",
    "update_existing",
    "version_matches",
]

# -- expressions, named once --------------------------------------------------

#: Unexpired: no expiry, or an exact expiry still ahead, or (an item written by
#: another program, with whole seconds only) a TTL attribute still ahead.
UNEXPIRED = "(attribute_not_exists(#t) OR #m > :nowms OR (attribute_not_exists(#m) AND #t > :now))"
#: Missing or expired: what `if_absent` and a counter restart need.
ABSENT = f"(attribute_not_exists(#k) OR NOT {UNEXPIRED})"
#: The item was not last written by this call: a retried request that meets its own
#: earlier write fails this condition and the caller reads the old item's token.
NOT_MINE = "(attribute_not_exists(#tk) OR #tk <> :tok)"
#: Every write bumps the version; a new item starts from a random base.
BUMP = "#r = if_not_exists(#r, :base) + :one"
#: What cleanup reads of an old item: its key and its value record (an S3 pointer).
RECORD = ("#k", "#z")


def version_matches(expected: int) -> str:
    """Compare-and-set on an unexpired item; version 0 also matches an unversioned item."""
    match = "(#r = :expected OR attribute_not_exists(#r))" if expected == 0 else "#r = :expected"
    return f"attribute_exists(#k) AND {match} AND {UNEXPIRED}"


def _names(config: KVConfig) -> dict[str, str]:
    return _names_of(
        config.partition_key, config.value_attribute, config.ttl_attribute, config.version_attribute
    )


def _names_of(partition_key: str, value: str, ttl: str, version: str) -> dict[str, str]:
    return {
        "#k": partition_key,
        "#v": value,
        "#t": ttl,
        "#m": EXPIRY_MS,
        "#r": version,
        "#z": COMPRESSION_FLAG,
        "#tk": TOKEN,
    }


def _clock(now: float) -> dict[str, Any]:
    return {":now": {"N": repr(now)}, ":nowms": {"N": str(int(now * 1000.0))}}


def _key(config: KVConfig, stored: str) -> dict[str, Any]:
    return {config.partition_key: {"S": stored}}


def _used(request: dict[str, Any]) -> dict[str, Any]:
    """Drop the names and values an expression does not use (DynamoDB refuses unused ones)."""
    get = request.get
    used = _placeholders(
        get("UpdateExpression"),
        get("ConditionExpression"),
        get("ProjectionExpression"),
        get("FilterExpression"),
    )
    names = {k: v for k, v in request["ExpressionAttributeNames"].items() if k in used}
    if names:
        request["ExpressionAttributeNames"] = names
    else:
        del request["ExpressionAttributeNames"]
    values = get("ExpressionAttributeValues")
    if values is not None:
        for unused in [k for k in values if k not in used]:
            del values[unused]
        if not values:
            del request["ExpressionAttributeValues"]
    return request


_PLACEHOLDER = re.compile(r"[#:][A-Za-z0-9_]+")


@functools.lru_cache(maxsize=4096)  # the builders make few texts; bounded anyway
def _placeholders(*texts: str | None) -> frozenset[str]:
    """The placeholders (``#name``, ``:value``) of expressions, found once per text."""
    return frozenset(_PLACEHOLDER.findall(" ".join(filter(None, texts))))


# -- reads ----------------------------------------------------------------------


def get(
    config: KVConfig, stored: str, *, consistent: bool, projection: Sequence[str] = ()
) -> dict[str, Any]:
    """GetItem of one stored key; `projection` lists expression names (``#t``, ``#m``...)."""
    request: dict[str, Any] = {
        "TableName": config.table,
        "Key": _key(config, stored),
        "ConsistentRead": consistent,
        "ReturnConsumedCapacity": "TOTAL",
    }
    if projection:
        names = _names(config)
        request["ProjectionExpression"] = ", ".join(projection)
        request["ExpressionAttributeNames"] = {n: names[n] for n in projection}
    return request


def batch_get(
    config: KVConfig, stored: Sequence[str], *, consistent: bool, projection: Sequence[str] = ()
) -> dict[str, Any]:
    """BatchGetItem of up to 100 stored keys (only the `projection` names, if given)."""
    pk_name = config.partition_key
    wanted: dict[str, Any] = {
        "Keys": [{pk_name: {"S": pk}} for pk in stored],
        "ConsistentRead": consistent,
    }
    if projection:
        names = _names(config)
        wanted["ProjectionExpression"] = ", ".join(projection)
        wanted["ExpressionAttributeNames"] = {n: names[n] for n in projection}
    return {"RequestItems": {config.table: wanted}, "ReturnConsumedCapacity": "TOTAL"}


# What `json.dumps` (and the lean transport's encoder) writes for a str: ASCII JSON.
_json_str = json.encoder.encode_basestring_ascii


@functools.lru_cache(maxsize=64)  # one entry per (table, key attribute, consistency)
def _batch_get_frame(table: str, partition_key: str, consistent: bool) -> tuple[str, str, str]:
    """The constant text around a BatchGetItem's keys: head, between two keys, tail."""
    key = "{" + _json_str(partition_key) + ':{"S":'
    head = '{"RequestItems":{' + _json_str(table) + ':{"Keys":[' + key
    tail = '}}],"ConsistentRead":' + ("true" if consistent else "false")
    return head, "}}," + key, tail + '}},"ReturnConsumedCapacity":"TOTAL"}'


class TextRequest(Mapping[str, Any]):
    """A request that renders its own compact JSON (`text`) for the lean transport.

    Read as a mapping (a span's attributes, a test's fault wrapper), it is the request
    dict its text encodes, made on first use by `as_dict`. Only a transport that says
    so (``accepts_text_requests``) is handed one; the others get the dict.
    """

    __slots__ = ()

    def text(self) -> str:
        """The request as compact ASCII JSON text."""
        raise NotImplementedError

    def as_dict(self) -> dict[str, Any]:
        """The request dict (made once)."""
        raise NotImplementedError

    def __getitem__(self, name: str) -> Any:
        return self.as_dict()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.as_dict()!r})"


class BatchGetText(TextRequest):
    """The `batch_get` request of stored keys (no projection) that renders its own JSON.

    `text` is the request's compact JSON, the same characters as the lean transport's
    encoding of the `batch_get` dict, written straight from the keys: no tree of two
    dicts per key is built, dumped and held while the request is in flight. Read as a
    mapping (a test's wrapper), it is the `batch_get` dict, made on first use; `tables`
    names its table (for a span) without it. Only a transport that says so
    (``accepts_text_requests``) is handed one; the others get the dict.
    """

    __slots__ = ("_config", "_dict", "consistent", "stored")

    def __init__(self, config: KVConfig, stored: Sequence[str], *, consistent: bool) -> None:
        self._config = config
        self.stored = stored
        self.consistent = consistent
        self._dict: dict[str, Any] | None = None

    @property
    def tables(self) -> tuple[str]:
        """The table the request reads (the keys of its ``RequestItems``)."""
        return (self._config.table,)

    def text(self) -> str:
        """The request as compact ASCII JSON text."""
        config = self._config
        head, between, tail = _batch_get_frame(config.table, config.partition_key, self.consistent)
        if not self.stored:
            return head[: -len(between) + 3] + tail[2:]
        return head + between.join(map(_json_str, self.stored)) + tail

    def as_dict(self) -> dict[str, Any]:
        """The `batch_get` request dict (made once)."""
        if self._dict is None:
            self._dict = batch_get(self._config, self.stored, consistent=self.consistent)
        return self._dict


def scan_page(
    config: KVConfig,
    *,
    now: float,
    prefix: str,
    root: bool,
    separator: str,
    with_values: bool,
    expired: bool = False,
    start: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One Scan page of unexpired keys (and values) under a stored-key prefix.

    Args:
        config: The store's settings.
        now: The clock, epoch seconds.
        prefix: Stored keys must begin with this ("" for all).
        root: Leave out namespaced keys (those holding `separator`).
        separator: The namespace separator.
        with_values: Read whole items, not only keys and expiry.
        expired: Include expired items (for `clear`).
        start: ``LastEvaluatedKey`` of the previous page.
    """
    filters = [] if expired else [UNEXPIRED]
    values: dict[str, Any] = _clock(now)
    if prefix:
        filters.append("begins_with(#k, :p)")
        values[":p"] = {"S": prefix}
    if root:
        filters.append("NOT contains(#k, :sep)")
        values[":sep"] = {"S": separator}
    request: dict[str, Any] = {
        "TableName": config.table,
        "ExpressionAttributeNames": _names(config),
        "ExpressionAttributeValues": values,
        "ConsistentRead": config.consistent_read,
        "ReturnConsumedCapacity": "TOTAL",
    }
    if filters:
        request["FilterExpression"] = " AND ".join(filters)
    if not with_values:
        request["ProjectionExpression"] = "#k, #t, #m"
    if start:
        request["ExclusiveStartKey"] = start
    return _used(request)


# -- writes ---------------------------------------------------------------------


def _write(
    config: KVConfig,
    stored: str,
    update: str,
    condition: str,
    values: dict[str, Any],
    *,
    now: float | None,
    token: str,
    base: int,
    returns: str | None = None,
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An UpdateItem that bumps the version and stores the write token.

    `values` (a fresh dict: it becomes the request's) gets the clock values
    ``:now``/``:nowms`` from `now` when the expressions use them, the token and the
    version's; `names` adds expression names beyond the standard ones.
    """
    used = _placeholders(update, condition, None, None)
    if now is not None and ":nowms" in used:
        values.update(_clock(now))
    values[":tok"], values[":base"], values[":one"] = {"S": token}, {"N": str(base)}, {"N": "1"}
    for unused in [k for k in values if k not in used]:
        del values[unused]
    # `_used` on a request whose expressions are known: the names come from a cache
    used_names = _names_used(
        config.partition_key,
        config.value_attribute,
        config.ttl_attribute,
        config.version_attribute,
        used,
    )
    if names:
        used_names = used_names | {k: v for k, v in names.items() if k in used}
    request: dict[str, Any] = {
        "TableName": config.table,
        "Key": {config.partition_key: {"S": stored}},
        "UpdateExpression": update,
        "ConditionExpression": condition,
    }
    if used_names:
        request["ExpressionAttributeNames"] = dict(used_names)
    if values:
        request["ExpressionAttributeValues"] = values
    request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    request["ReturnConsumedCapacity"] = "TOTAL"
    if returns:
        request["ReturnValues"] = returns
    return request


@functools.lru_cache(maxsize=256)
def _names_used(
    partition_key: str, value: str, ttl: str, version: str, used: frozenset[str]
) -> dict[str, str]:
    """The standard expression names that `used` holds (cached: copy before handing out)."""
    names = _names_of(partition_key, value, ttl, version)
    return {k: v for k, v in names.items() if k in used}


def _expiry_parts(expires_ms: int | None) -> tuple[list[str], list[str]]:
    """SET and REMOVE clauses for the expiry attributes."""
    if expires_ms is None:
        return [], ["#t", "#m"]
    return ["#t = :t", "#m = :m"], []


def _expiry_values(expires_ms: int | None) -> dict[str, Any]:
    if expires_ms is None:
        return {}
    return {":t": {"N": str(-(-expires_ms // 1000))}, ":m": {"N": str(expires_ms)}}


def _put_update(expiry: bool, flag: bool) -> str:
    sets = ["#v = :v", BUMP, "#tk = :tok", *(["#t = :t", "#m = :m"] if expiry else [])]
    removes = [] if expiry else ["#t", "#m"]
    (sets if flag else removes).append("#z = :z" if flag else "#z")
    return f"SET {', '.join(sets)}" + (f" REMOVE {', '.join(removes)}" if removes else "")


#: `put`'s UpdateExpression, by (has an expiry, has a compression flag).
_PUT_UPDATES = {(e, f): _put_update(e, f) for e in (False, True) for f in (False, True)}


def put(
    config: KVConfig,
    item: Item,
    *,
    now: float,
    token: str,
    base: int,
    if_absent: bool = False,
    if_version: int | None = None,
    old: bool = False,
) -> dict[str, Any]:
    """UpdateItem writing a whole value (a `set`): value, expiry, flag, version, token.

    An UpdateItem, not a PutItem, so that the version can be bumped atomically.
    With `old`, the reply holds the old item (``ReturnValues=ALL_OLD``), whose S3
    object the store then deletes.
    """
    values: dict[str, Any] = {":v": item[config.value_attribute]}
    expiry, flag = EXPIRY_MS in item, COMPRESSION_FLAG in item
    if expiry:
        values[":t"], values[":m"] = item[config.ttl_attribute], item[EXPIRY_MS]
    if flag:
        values[":z"] = item[COMPRESSION_FLAG]
    update = _PUT_UPDATES[expiry, flag]
    if if_absent:
        condition = ABSENT
    elif if_version is not None:
        condition = version_matches(if_version)
        values[":expected"] = {"N": str(if_version)}
    else:
        condition = NOT_MINE
    return _write(
        config,
        item[config.partition_key]["S"],
        update,
        condition,
        values,
        now=now,
        token=token,
        base=base,
        returns="ALL_OLD" if old else None,
    )


def delete(
    config: KVConfig,
    stored: str,
    *,
    now: float,
    if_version: int | None = None,
    absent_ok: bool = False,
) -> dict[str, Any]:
    """DeleteItem returning the old item (to tell whether the key existed).

    With `if_version` and `absent_ok`, a missing key passes the condition (the reply
    then has no old item), so that a retry meeting its own earlier delete succeeds.
    """
    request: dict[str, Any] = {
        "TableName": config.table,
        "Key": _key(config, stored),
        "ReturnValues": "ALL_OLD",
        "ReturnConsumedCapacity": "TOTAL",
    }
    if if_version is not None:
        condition = version_matches(if_version)
        if absent_ok:
            condition = f"attribute_not_exists(#k) OR ({condition})"
        request["ConditionExpression"] = condition
        request["ExpressionAttributeNames"] = _names(config)
        request["ExpressionAttributeValues"] = {
            ":expected": {"N": str(if_version)},
            **_clock(now),
        }
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        _used(request)
    return request


def update_existing(
    config: KVConfig,
    stored: str,
    expires_ms: int | None,
    *,
    now: float,
    token: str,
    base: int,
) -> dict[str, Any]:
    """UpdateItem giving a present, unexpired key a new expiry (`expire`) or none (`persist`)."""
    sets, removes = _expiry_parts(expires_ms)
    update = f"SET {', '.join([BUMP, '#tk = :tok', *sets])}" + (
        f" REMOVE {', '.join(removes)}" if removes else ""
    )
    condition = f"attribute_exists(#k) AND {UNEXPIRED} AND {NOT_MINE}"
    return _write(
        config,
        stored,
        update,
        condition,
        _expiry_values(expires_ms),
        now=now,
        token=token,
        base=base,
    )


def incr(
    config: KVConfig,
    stored: str,
    delta: int,
    expires_ms: int | None,
    *,
    now: float,
    token: str,
    base: int,
) -> dict[str, Any]:
    """UpdateItem adding `delta` to an unexpired (or missing) counter; returns the new value."""
    sets = [BUMP, "#tk = :tok"] + (["#t = :t", "#m = :m"] if expires_ms is not None else [])
    return _write(
        config,
        stored,
        f"ADD #v :d SET {', '.join(sets)}",
        f"{UNEXPIRED} AND {NOT_MINE}",
        {":d": {"N": str(delta)}, **_expiry_values(expires_ms)},
        now=now,
        token=token,
        base=base,
        returns="UPDATED_NEW",
    )


def incr_restart(
    config: KVConfig,
    stored: str,
    delta: int,
    expires_ms: int | None,
    *,
    now: float,
    token: str,
    base: int,
) -> dict[str, Any]:
    """UpdateItem restarting an expired counter at `delta` (its old expiry dropped)."""
    return set_counter(
        config, stored, delta, expires_ms, now=now, token=token, base=base, expired_only=True
    )


def set_counter(
    config: KVConfig,
    stored: str,
    number: int,
    expires_ms: int | None,
    *,
    now: float,
    token: str,
    base: int,
    expired_only: bool = False,
) -> dict[str, Any]:
    """UpdateItem making `stored` a counter holding `number`, atomically."""
    sets, removes = _expiry_parts(expires_ms)
    update = f"SET {', '.join(['#v = :d', BUMP, '#tk = :tok', *sets])} REMOVE " + ", ".join(
        [*removes, "#z"]
    )
    condition = f"attribute_exists(#k) AND NOT {UNEXPIRED}" if expired_only else NOT_MINE
    if expired_only:
        condition += f" AND {NOT_MINE}"
    return _write(
        config,
        stored,
        update,
        condition,
        {":d": {"N": str(number)}, **_expiry_values(expires_ms)},
        now=now,
        token=token,
        base=base,
    )


def batch_write(config: KVConfig, chunk: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """BatchWriteItem of up to 25 put/delete requests."""
    return {"RequestItems": {config.table: list(chunk)}, "ReturnConsumedCapacity": "TOTAL"}


@functools.lru_cache(maxsize=64)  # one entry per table
def _batch_write_head(table: str) -> str:
    return '{"RequestItems":{' + _json_str(table) + ":["


_BATCH_WRITE_TAIL = ']},"ReturnConsumedCapacity":"TOTAL"}'
_b2a = binascii.b2a_base64
_a2b = binascii.a2b_base64


class BatchWriteText(TextRequest):
    """The `batch_write` request of PutRequests given as their texts (`PutTexts`).

    `text` is the request's compact JSON, the same characters as the lean transport's
    encoding of the `batch_write` dict of the same items, joined from the entries'
    texts: no tree of dicts per item is built and dumped. Read as a mapping (a test's
    wrapper), it is that `batch_write` dict, parsed from the text on first use (binary
    values as bytes); `tables` names its table (for a span) without it. Only a
    transport that says so (``accepts_text_requests``) is handed one; the others get
    the dict.
    """

    __slots__ = ("_dict", "table", "texts")

    def __init__(self, config: KVConfig, texts: Sequence[str]) -> None:
        self.table = config.table
        self.texts = texts
        self._dict: dict[str, Any] | None = None

    @property
    def tables(self) -> tuple[str]:
        """The table the request writes (the keys of its ``RequestItems``)."""
        return (self.table,)

    def text(self) -> str:
        """The request as compact ASCII JSON text."""
        return _batch_write_head(self.table) + ",".join(self.texts) + _BATCH_WRITE_TAIL

    def as_dict(self) -> dict[str, Any]:
        """The `batch_write` request dict (made once)."""
        if self._dict is None:
            request = json.loads(self.text())
            for entry in request["RequestItems"][self.table]:
                for attr in entry["PutRequest"]["Item"].values():
                    if "B" in attr:
                        attr["B"] = _a2b(attr["B"])
            self._dict = request
        return self._dict


#: What JSON writes as it is inside a string: printable ASCII but the quote and backslash.
_BARE = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')


def _bare(text: str) -> bool:
    """True when `text` needs no escaping in JSON (`_json_str` only quotes it)."""
    return text.isascii() and not text.encode("ascii").translate(None, _BARE)


class PutTexts:
    """The PutRequests of one batch of puts (one config, token and expiry) as JSON texts.

    `render` writes the text of ``put_request(assemble_item(...))`` as the lean
    transport encodes it (compact ASCII JSON, bytes as base64) straight from the
    stored key, the value's attribute, its record and version: the text around them
    is made once per batch, from an item `assemble_item` makes, so both agree on the
    attributes and their order.
    """

    __slots__ = ("_b", "_end", "_head", "_record", "_s", "_version")

    def __init__(self, config: KVConfig, token: str, expires_ms: int | None) -> None:
        template = assemble_item(config, "", {"S": ""}, None, expires_ms, 0, token)
        names = list(template)
        fixed = (config.partition_key, config.value_attribute, config.version_attribute)
        if tuple(names[:3]) != fixed:  # pragma: no cover - assemble_item's order
            raise AssertionError(f"unexpected item layout {names}")
        rest = "".join(
            f",{_json_str(name)}:{{{_json_str(kind)}:{_json_str(text)}}}"
            for name in names[3:]
            for kind, text in template[name].items()
        )
        self._head = '{"PutRequest":{"Item":{' + _json_str(config.partition_key) + ':{"S":'
        value = "}," + _json_str(config.value_attribute)
        self._s = value + ':{"S":'
        self._b = value + ':{"B":"'
        self._version = "}," + _json_str(config.version_attribute) + ':{"N":"'
        self._end = '"}' + rest + "}}}"
        self._record = '"}' + rest + "," + _json_str(COMPRESSION_FLAG) + ':{"S":'

    def render_many(
        self,
        stored: Sequence[str],
        values: Mapping[str, AttributeValue],
        records: Mapping[str, str],
        versions: Iterator[int],
    ) -> list[str]:
        """`render` of each stored key's value and record, with the next of `versions`."""
        texts = [values[pk].get("S") for pk in stored]
        # `versions` is endless: zip ends with `stored`, taking one version per key.
        if records or None in texts:
            render = self.render
            return [
                render(pk, values[pk], records.get(pk), version)
                for pk, version in zip(stored, versions, strict=False)
            ]
        head, s, version_at, end = self._head, self._s, self._version, self._end
        strings = cast("list[str]", texts)  # none is None
        pairs = zip(stored, strings, versions, strict=False)
        if _bare("".join(stored) + "".join(strings)):
            return [f'{head}"{pk}"{s}"{text}"{version_at}{v}{end}' for pk, text, v in pairs]
        js = _json_str
        return [f"{head}{js(pk)}{s}{js(text)}{version_at}{v}{end}" for pk, text, v in pairs]

    def render(self, stored: str, attr: AttributeValue, record: str | None, version: int) -> str:
        """The text of the PutRequest of the item `assemble_item` makes of the same parts."""
        text = attr.get("S")
        if text is None:
            value = self._b + _b2a(attr["B"], newline=False).decode() + '"'
        else:
            value = self._s + _json_str(text)
        if record is None:
            return f"{self._head}{_json_str(stored)}{value}{self._version}{version}{self._end}"
        return (
            f"{self._head}{_json_str(stored)}{value}{self._version}{version}"
            f"{self._record}{_json_str(record)}}}}}}}}}"
        )


def put_request(item: Item) -> dict[str, Any]:
    """One PutRequest of a BatchWriteItem."""
    return {"PutRequest": {"Item": item}}


def delete_request(config: KVConfig, stored: str) -> dict[str, Any]:
    """One DeleteRequest of a BatchWriteItem."""
    return {"DeleteRequest": {"Key": _key(config, stored)}}


# -- transactions -----------------------------------------------------------------

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


# -- the lease (lock) item --------------------------------------------------------

#: Attributes of a lock item (which lives in the reserved key space, see `_keys`):
#: the holder's owner token, the fencing counter, and the holder's lease in ms. The
#: item's version (``#r``) is the record version number waiters watch.
LOCK_OWNER = "lock_owner"
LOCK_FENCE = "lock_fence"
LOCK_LEASE = "lock_lease_ms"


_LOCK_NAMES = {"#o": LOCK_OWNER, "#f": LOCK_FENCE, "#l": LOCK_LEASE}


def _lock_write(
    config: KVConfig,
    stored: str,
    update: str,
    condition: str,
    values: dict[str, Any],
    *,
    token: str,
    base: int,
    returns: str | None = None,
) -> dict[str, Any]:
    """An UpdateItem of a lock item (the lock attributes named as well)."""
    return _write(
        config,
        stored,
        update,
        condition,
        values,
        now=None,
        token=token,
        base=base,
        returns=returns,
        names=_LOCK_NAMES,
    )


def lock_acquire(
    config: KVConfig,
    stored: str,
    *,
    owner: str,
    lease_ms: int,
    seen: int | None,
    token: str,
    base: int,
) -> dict[str, Any]:
    """UpdateItem taking a lock that is free, or (`seen`) still at a version watched for a lease.

    The fencing counter is incremented in the same write, so every acquisition of a
    name gets a larger token than the one before, across takeovers.
    """
    condition = "attribute_not_exists(#k) OR attribute_not_exists(#o)"
    values: dict[str, Any] = {":o": {"S": owner}, ":l": {"N": str(lease_ms)}}
    if seen is not None:
        condition += " OR #r = :seen"
        values[":seen"] = {"N": str(seen)}
    return _lock_write(
        config,
        stored,
        f"SET #o = :o, #l = :l, #tk = :tok, {BUMP} ADD #f :one",
        condition,
        values,
        token=token,
        base=base,
        returns="ALL_NEW",
    )


def lock_renew(
    config: KVConfig, stored: str, *, owner: str, lease_ms: int, token: str, base: int
) -> dict[str, Any]:
    """UpdateItem renewing a held lock: a new version (waiters see progress), same owner."""
    return _lock_write(
        config,
        stored,
        f"SET #l = :l, #tk = :tok, {BUMP}",
        "#o = :o",
        {":o": {"S": owner}, ":l": {"N": str(lease_ms)}},
        token=token,
        base=base,
    )


def lock_release(
    config: KVConfig, stored: str, *, owner: str, token: str, base: int
) -> dict[str, Any]:
    """UpdateItem freeing a held lock; the item (and its fencing counter) stays."""
    return _lock_write(
        config,
        stored,
        f"SET #tk = :tok, {BUMP} REMOVE #o, #l",
        "#o = :o",
        {":o": {"S": owner}},
        token=token,
        base=base,
    )
