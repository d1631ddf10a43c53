"""Typed, encrypted, cached values, with large ones in S3, on the embedded emulator.

    pip install -e '.[local,typed,encryption]'
    python examples/typed_encrypted.py

The order on write is typed model -> JSON -> compress -> encrypt -> S3 (when still
large); reads undo it in reverse. Keys here are random per run; in production load
them from a secret store and keep old ids in `encryption_keys` for rotation.
"""

from __future__ import annotations

import asyncio
import os

import aioboto3
from pydantic import BaseModel

from aiodynkv import AsyncDynamoKV, KVConfig
from aiodynkv.testing import LocalDynamoDB


class User(BaseModel):
    """What the service stores per user."""

    name: str
    bio: str = ""


async def main(endpoint: str) -> list[str]:
    """Store and read users; return what a reader of the table would see, for the test."""
    session = aioboto3.Session(
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 (the emulator takes any)
        region_name="us-east-1",
    )
    async with session.client("s3", endpoint_url=endpoint) as s3:
        await s3.create_bucket(Bucket="example-large-values")
    config = KVConfig(
        table="example-users",
        endpoint=endpoint,
        create_table=True,
        encryption_keys={"2024-06": os.urandom(32)},  # the one key is the current one
        large_value_bucket="example-large-values",
        local_cache_items=10_000,
        local_cache_ttl=1.0,
    )
    lines: list[str] = []
    async with AsyncDynamoKV(config) as kv:
        users = kv.typed(User)
        await users.set("u1", User(name="ada"), ttl=3600)
        await users.set("u2", User(name="grace", bio=os.urandom(400_000).hex()))  # to S3
        ada = await users.get("u1")  # from the near cache: this store just wrote it
        many = await users.get_many(["u1", "u2", "nobody"])
        lines.append(f"u1: {ada.name}")
        lines.append(f"get_many: {sorted(many)}; u2 bio {len(many['u2'].bio)} chars")
        raw = await kv.client.get_item(TableName=config.table, Key={"pk": {"S": "u2"}})
        lines.append(f"the item holds: {raw['Item']['z']['S'][:12]}... (a record and a pointer)")
    return lines


if __name__ == "__main__":
    with LocalDynamoDB() as server:
        for line in asyncio.run(main(server.endpoint)):
            print(line)
