"""Helpers of the data-feature tests: S3 buckets and KMS keys on moto, a store's bucket objects."""

from __future__ import annotations

import uuid
from typing import Any

import aioboto3

from tests.conftest import Backend

_CREDENTIALS = {
    "aws_access_key_id": "aiodynkv-local",
    "aws_secret_access_key": "local",
    "region_name": "us-east-1",
}


def _session() -> Any:
    return aioboto3.Session(**_CREDENTIALS)


async def make_bucket(backend: Backend) -> str:
    """A new, empty bucket (created on moto; any name does in memory)."""
    name = f"b-{uuid.uuid4().hex[:16]}"
    if backend.endpoint is not None:
        async with _session().client("s3", endpoint_url=backend.endpoint) as s3:
            await s3.create_bucket(Bucket=name)
    return name


async def make_kms_key(backend: Backend) -> str:
    """A KMS key id (created on moto; any id does for InMemoryKV's stand-in)."""
    if backend.endpoint is None:
        return f"memory-key-{uuid.uuid4().hex[:8]}"
    async with _session().client("kms", endpoint_url=backend.endpoint) as kms:
        reply = await kms.create_key(Description="aiodynkv tests")
    return str(reply["KeyMetadata"]["KeyId"])


def _memory_objects(store: Any) -> dict[tuple[str, str], bytes] | None:
    """The object dict of the memory transport (None: a real S3)."""
    if store.config.transport == "memory":
        held: dict[tuple[str, str], bytes] = store._core.transport.blobs.objects
        return held
    return None


async def objects(store: Any, bucket: str) -> dict[str, bytes]:
    """Every object of `bucket` with its bytes."""
    memory = _memory_objects(store)
    if memory is not None:
        return {name: data for (b, name), data in memory.items() if b == bucket}
    found: dict[str, bytes] = {}
    async with _session().client("s3", endpoint_url=store.config.endpoint) as s3:
        listing = await s3.list_objects_v2(Bucket=bucket)
        for entry in listing.get("Contents", []):
            reply = await s3.get_object(Bucket=bucket, Key=entry["Key"])
            async with reply["Body"] as body:
                found[entry["Key"]] = await body.read()
    return found


async def put_object(store: Any, bucket: str, name: str, data: bytes | None) -> None:
    """Replace (or with None delete) one object behind the store's back."""
    memory = _memory_objects(store)
    if memory is not None:
        if data is None:
            memory.pop((bucket, name), None)
        else:
            memory[bucket, name] = data
        return
    async with _session().client("s3", endpoint_url=store.config.endpoint) as s3:
        if data is None:
            await s3.delete_object(Bucket=bucket, Key=name)
        else:
            await s3.put_object(Bucket=bucket, Key=name, Body=data)
