"""LeanTransport against real servers (moto, dynalite): the same replies as an aioboto3 client.

Every request is sent twice, once through `LeanTransport` and once through the aioboto3
client it was built from, and the two replies (minus ``ResponseMetadata``) must be equal,
binary values included.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aioboto3
import pytest
from botocore.exceptions import ClientError

from aiodynkv import KVConfig
from aiodynkv._codec import assemble_item, new_token
from aiodynkv._requests import BatchWriteText, PutTexts
from aiodynkv._transport import ServiceError
from aiodynkv._transport.lean import LeanTransport

SERVERS = ("moto", "dynalite")


class Pair:
    """One table, reachable through the lean transport and through the aioboto3 client."""

    def __init__(self, kind: str, client: Any, lean: LeanTransport, table: str) -> None:
        self.kind = kind
        self.client = client
        self.lean = lean
        self.table = table

    async def both(self, action: str, request: dict[str, Any]) -> tuple[Any, Any]:
        """The replies of `lean` and of the client to the same request, metadata dropped."""
        ours = await self.lean.send(action, request)
        theirs = await getattr(self.client, _snake(action))(**request)
        ours.pop("ResponseMetadata")
        theirs.pop("ResponseMetadata")
        return ours, theirs


def _snake(action: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in action).lstrip("_")


@pytest.fixture(params=SERVERS)
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    endpoint: str = request.getfixturevalue(f"{request.param}_endpoint")
    session = aioboto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    table = f"lean-{uuid.uuid4().hex[:10]}"
    async with session.client("dynamodb", endpoint_url=endpoint) as client:
        await client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for _ in range(100):
            described = await client.describe_table(TableName=table)
            if described["Table"]["TableStatus"] == "ACTIVE":
                break
            await asyncio.sleep(0.05)
        lean = LeanTransport.from_client(
            client,
            connect_timeout=5,
            read_timeout=10,
            max_attempts=3,
            retry_mode="standard",
            max_pool_connections=8,
            user_agent="aiodynkv-test",
        )
        try:
            yield Pair(request.param, client, lean, table)
        finally:
            await lean.aclose()
            await client.delete_table(TableName=table)


def item(key: str) -> dict[str, Any]:
    return {
        "pk": {"S": key},
        "text": {"S": "naïve ключ 🔑"},
        "number": {"N": "12.5"},
        "blob": {"B": b"\x00\xff\x80binary"},
        "blobs": {"BS": [b"\x01", b"\x02\x03"]},
        "nested": {"M": {"b": {"B": b"\x10"}, "l": {"L": [{"B": b"\x11"}, {"N": "1"}]}}},
        "strings": {"SS": ["a", "b"]},
        "flag": {"BOOL": True},
        "nothing": {"NULL": True},
        "ver": {"N": "1"},
    }


async def test_put_then_get_match_the_client(pair: Pair) -> None:
    for old in ({}, {"ReturnValues": "ALL_OLD"}):  # the second put returns the first's item
        ours = await pair.lean.send("PutItem", {"TableName": pair.table, "Item": item("a")} | old)
        theirs = await pair.client.put_item(TableName=pair.table, Item=item("b"), **old)
        ours.pop("ResponseMetadata")
        theirs.pop("ResponseMetadata")
        if "Attributes" in ours:
            assert ours["Attributes"] == item("a")
            assert theirs["Attributes"] == item("b")
        else:
            assert ours == theirs == {}
    for key in ("a", "b", "missing"):
        ours, theirs = await pair.both(
            "GetItem", {"TableName": pair.table, "Key": {"pk": {"S": key}}, "ConsistentRead": True}
        )
        assert ours == theirs
        assert ours.get("Item") == (None if key == "missing" else item(key))
    ours, theirs = await pair.both("GetItem", {"TableName": pair.table, "Key": {"pk": {"S": "a"}}})
    assert isinstance(ours["Item"]["blob"]["B"], bytes)


async def test_failed_condition_returns_the_old_item_like_the_client(pair: Pair) -> None:
    await pair.lean.send("PutItem", {"TableName": pair.table, "Item": item("cond")})
    request = {
        "TableName": pair.table,
        "Key": {"pk": {"S": "cond"}},
        "UpdateExpression": "SET ver = ver + :one",
        "ConditionExpression": "ver = :expected",
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":expected": {"N": "7"}},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    with pytest.raises(ServiceError) as ours:
        await pair.lean.send("UpdateItem", request)
    with pytest.raises(ClientError) as theirs:
        await pair.client.update_item(**request)
    assert ours.value.code == theirs.value.response["Error"]["Code"]
    assert ours.value.code == "ConditionalCheckFailedException"
    assert ours.value.message == theirs.value.response["Error"]["Message"]
    assert ours.value.status == theirs.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert ours.value.item == theirs.value.response.get("Item")
    # dynalite predates ReturnValuesOnConditionCheckFailure; moto implements it
    assert ours.value.item == (item("cond") if pair.kind == "moto" else None)
    assert ours.value.attempts == 1
    assert not ours.value.in_doubt


async def test_successful_update_returns_the_same_attributes(pair: Pair) -> None:
    replies = []
    for key, send in (("a", pair.lean.send), ("b", None)):
        await pair.lean.send("PutItem", {"TableName": pair.table, "Item": item(key)})
        request = {
            "TableName": pair.table,
            "Key": {"pk": {"S": key}},
            "UpdateExpression": "SET ver = ver + :one, extra = :b",
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":b": {"B": b"\x00new"}},
            "ReturnValues": "ALL_NEW",
        }
        reply = await (send("UpdateItem", request) if send else pair.client.update_item(**request))
        reply.pop("ResponseMetadata")
        reply["Attributes"].pop("pk")
        replies.append(reply)
    ours, theirs = replies
    assert ours == theirs
    assert ours["Attributes"]["extra"] == {"B": b"\x00new"}
    assert ours["Attributes"]["ver"] == {"N": "2"}


async def test_batch_write_and_scan_match_the_client(pair: Pair) -> None:
    def puts(prefix: str) -> list[dict[str, Any]]:
        return [{"PutRequest": {"Item": item(f"{prefix}-{n:02d}")}} for n in range(10)]

    ours = await pair.lean.send("BatchWriteItem", {"RequestItems": {pair.table: puts("a")}})
    theirs = await pair.client.batch_write_item(RequestItems={pair.table: puts("b")})
    ours.pop("ResponseMetadata")
    theirs.pop("ResponseMetadata")
    assert ours == theirs
    assert ours["UnprocessedItems"] == {}
    ours, theirs = await pair.both("Scan", {"TableName": pair.table, "ConsistentRead": True})
    assert ours["Count"] == theirs["Count"] == 20
    by_key = sorted(ours.pop("Items"), key=lambda i: i["pk"]["S"])
    assert by_key == sorted(theirs.pop("Items"), key=lambda i: i["pk"]["S"])
    assert by_key == [item(f"{p}-{n:02d}") for p in "ab" for n in range(10)]
    assert ours == theirs
    keys = [{"pk": {"S": key}} for key in ("a-03", "b-05", "c-00")]
    ours, theirs = await pair.both(
        "BatchGetItem", {"RequestItems": {pair.table: {"Keys": keys, "ConsistentRead": True}}}
    )
    found = sorted(ours["Responses"][pair.table], key=lambda i: i["pk"]["S"])
    assert found == sorted(theirs["Responses"][pair.table], key=lambda i: i["pk"]["S"])
    assert found == [item("a-03"), item("b-05")]
    assert ours["UnprocessedKeys"] == theirs["UnprocessedKeys"] == {}


async def test_paginated_scan_key_round_trips(pair: Pair) -> None:
    for n in range(3):
        await pair.lean.send("PutItem", {"TableName": pair.table, "Item": item(f"page-{n}")})
    first = await pair.lean.send("Scan", {"TableName": pair.table, "Limit": 1})
    start = first["LastEvaluatedKey"]
    ours, theirs = await pair.both(
        "Scan", {"TableName": pair.table, "Limit": 1, "ExclusiveStartKey": start}
    )
    assert ours == theirs


async def test_missing_table_is_the_same_error(pair: Pair) -> None:
    request = {"TableName": f"{pair.table}-missing", "Key": {"pk": {"S": "x"}}}
    with pytest.raises(ServiceError) as ours:
        await pair.lean.send("GetItem", request)
    with pytest.raises(ClientError) as theirs:
        await pair.client.get_item(**request)
    assert ours.value.code == theirs.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert ours.value.message == theirs.value.response["Error"]["Message"]
    assert not ours.value.in_doubt


async def test_a_batch_write_rendered_as_text_stores_what_the_client_stores(pair: Pair) -> None:
    config = KVConfig(table=pair.table)
    token = new_token()
    texts = PutTexts(config, token, 1_900_000_000_123)
    parts: list[tuple[str, dict[str, Any], str | None, int]] = [
        ("text-ascii", {"S": "plain"}, None, 2**40 + 1),
        ('text-odd \u00e9\x01"\\ \U0001f511', {"S": 'na\u00efve "q" \\ \x00 \U0001f511'}, None, 7),
        ("blob", {"B": b"\x00\xff\x80binary"}, "b", 2**63 - 1),
        ("record", {"S": "sealed"}, 'e1:{"k":1}', 3),
    ]
    request = BatchWriteText(config, [texts.render(*part) for part in parts])
    ours = await pair.lean.send("BatchWriteItem", request)
    assert ours["UnprocessedItems"] == {}
    items = [
        assemble_item(config, f"client-{stored}", attr, record, 1_900_000_000_123, version, token)
        for stored, attr, record, version in parts
    ]
    await pair.client.batch_write_item(
        RequestItems={pair.table: [{"PutRequest": {"Item": i}} for i in items]}
    )
    scanned = await pair.client.scan(TableName=pair.table, ConsistentRead=True)
    stored = {i["pk"]["S"]: i for i in scanned["Items"]}
    assert len(stored) == 2 * len(parts)
    for stored_key, attr, record, version in parts:
        mine = stored[stored_key]
        theirs = stored[f"client-{stored_key}"]
        theirs["pk"] = mine["pk"]
        assert mine == theirs
        assert mine == assemble_item(
            config, stored_key, attr, record, 1_900_000_000_123, version, token
        )
