"""Test helpers for code that uses aiodynkv.

- `InMemoryKV`: `AsyncDynamoKV` over its own in-process memory transport (no server).
- `LocalDynamoDB`: a local DynamoDB-compatible server (moto, dynalite or DynamoDB Local);
  `ImageUnavailableError` when DynamoDB Local's image is neither present nor pullable.
- A pytest plugin (loaded automatically) with the fixtures ``aiodynkv_endpoint``,
  ``aiodynkv_kv`` and ``aiodynkv_memory``; see ``aiodynkv.testing._plugin``.
- `set_retry_waits`: turn the waits between retries off (and on again) in tests.
"""

from aiodynkv._retry import set_retry_waits
from aiodynkv.testing._in_memory import InMemoryKV
from aiodynkv.testing._local import (
    ImageUnavailableError,
    LocalDynamoDB,
    LocalServerError,
    docker_available,
    find_dynalite,
)

__all__ = [
    "ImageUnavailableError",
    "InMemoryKV",
    "LocalDynamoDB",
    "LocalServerError",
    "docker_available",
    "find_dynalite",
    "set_retry_waits",
]
