"""Large values in S3: object storage behind a pointer kept in the item.

A value that is still larger than ``large_value_threshold`` after compression and
encryption is written as one S3 object, ``<large_value_prefix><table>/<random hex>``
in ``large_value_bucket``, and the item keeps a pointer (`Pointer`) in its value
record::

    s3:<bucket>:<size in bytes>:<sha256 of the object, hex>:<object key>

Reads fetch the object, refuse one longer than the pointer says (or than
``max_value_bytes`` allows), and check its SHA-256: a different object is a
`CorruptItemError`, never "not found". A missing object is usually a race, not
damage: a writer replaced or deleted the item, then removed its object, between
the reader's read of the item and of the object. So the reader reads the item again
(strongly consistent) and returns what is there now; only a pointer whose object is
missing on both reads is corrupt. Each write makes a new object (a random
name), so an object is never changed once an item points at it; the store deletes
the old object after an overwrite or delete, and the new one when its item write
definitely failed. Crashes in between and items removed by DynamoDB's TTL sweeper
leave orphans: docs/large-values.md shows the bucket lifecycle rule that collects
them.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from aiodynkv._errors import CorruptItemError

if TYPE_CHECKING:
    from aiodynkv._aws import Clients

__all__ = ["MISSING", "BlobStore", "MemoryBlobs", "Pointer", "S3Blobs", "object_name"]

#: The reason of the `CorruptItemError` for a pointer whose object does not exist.
MISSING = "the large value's S3 object is missing"

_SCHEME = "s3"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_DELETE_BATCH = 1000  # keys per DeleteObjects


@dataclass(frozen=True, slots=True)
class Pointer:
    """Where an offloaded value lives and what it must hash to."""

    bucket: str
    name: str
    size: int
    sha256: str

    def __str__(self) -> str:
        return f"{_SCHEME}:{self.bucket}:{self.size}:{self.sha256}:{self.name}"

    @classmethod
    def of(cls, bucket: str, name: str, data: bytes) -> Pointer:
        """The pointer to `data` stored as `bucket`/`name`."""
        return cls(bucket, name, len(data), hashlib.sha256(data).hexdigest())

    @classmethod
    def parse(cls, text: str) -> Pointer:
        """Read a pointer back.

        Raises:
            CorruptItemError: The text is not a pointer aiodynkv writes.
        """
        parts = text.split(":", 4)
        if (
            len(parts) != 5
            or parts[0] != _SCHEME
            or not _BUCKET.fullmatch(parts[1])
            or not parts[2].isdigit()
            or not _DIGEST.fullmatch(parts[3])
            or not parts[4]
        ):
            reason = "malformed large-value pointer"
            raise CorruptItemError(reason, reason=reason)
        return cls(parts[1], parts[4], int(parts[2]), parts[3])

    def check(self, data: bytes | None) -> bytes:
        """`data` if it is the object this pointer names, else `CorruptItemError`."""
        if data is None:
            reason = MISSING
        elif len(data) != self.size:
            reason = "the large value's S3 object has the wrong size"
        elif hashlib.sha256(data).hexdigest() != self.sha256:
            reason = "the large value's S3 object does not match its SHA-256"
        else:
            return data
        raise CorruptItemError(reason, reason=reason)


def object_name(prefix: str, table: str) -> str:
    """A fresh object key for a value of `table` (never reused)."""
    return f"{prefix}{table}/{uuid.uuid4().hex}"


class BlobStore(Protocol):
    """Object storage for large values: S3, or `MemoryBlobs` on the memory transport."""

    async def put(self, bucket: str, name: str, data: bytes) -> None:
        """Store `data` as `bucket`/`name`."""
        ...

    async def get(self, bucket: str, name: str, limit: int) -> bytes | None:
        """The object (at most `limit` + 1 bytes are read), or None when it does not exist."""
        ...

    async def delete(self, bucket: str, names: list[str]) -> None:
        """Delete objects; missing ones are fine."""
        ...


class MemoryBlobs:
    """Objects in a dict: the memory transport's S3 stand-in (shared by its stores)."""

    __slots__ = ("objects",)

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    async def put(self, bucket: str, name: str, data: bytes) -> None:
        """See `BlobStore.put`."""
        await asyncio.sleep(0)
        self.objects[bucket, name] = bytes(data)

    async def get(self, bucket: str, name: str, limit: int) -> bytes | None:
        """See `BlobStore.get`."""
        await asyncio.sleep(0)
        data = self.objects.get((bucket, name))
        return None if data is None else data[: limit + 1]

    async def delete(self, bucket: str, names: list[str]) -> None:
        """See `BlobStore.delete`."""
        await asyncio.sleep(0)
        for name in names:
            self.objects.pop((bucket, name), None)


class S3Blobs:
    """S3 through the store's own credentials (`aiodynkv._aws.Clients`)."""

    __slots__ = ("_clients",)

    def __init__(self, clients: Clients) -> None:
        self._clients = clients

    async def put(self, bucket: str, name: str, data: bytes) -> None:
        """PutObject."""
        s3 = await self._clients.get("s3")
        await s3.put_object(
            Bucket=bucket, Key=name, Body=data, ContentType="application/octet-stream"
        )

    async def get(self, bucket: str, name: str, limit: int) -> bytes | None:
        """GetObject, reading at most `limit` + 1 bytes; None for NoSuchKey."""
        from aiodynkv._aws import error_code

        s3 = await self._clients.get("s3")
        try:
            reply = await s3.get_object(Bucket=bucket, Key=name)
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        body = reply["Body"]
        parts: list[bytes] = []
        size = 0
        async with body:
            while size <= limit:  # read() may return less than asked: loop to the end
                part: bytes = await body.read(limit + 1 - size)
                if not part:
                    break
                parts.append(part)
                size += len(part)
        return b"".join(parts)

    async def delete(self, bucket: str, names: list[str]) -> None:
        """DeleteObject, or DeleteObjects in batches of 1000."""
        s3 = await self._clients.get("s3")
        if len(names) == 1:
            await s3.delete_object(Bucket=bucket, Key=names[0])
            return
        for start in range(0, len(names), _DELETE_BATCH):
            chunk = names[start : start + _DELETE_BATCH]
            await s3.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": name} for name in chunk], "Quiet": True},
            )
