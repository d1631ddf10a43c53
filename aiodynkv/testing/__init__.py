"""Test helpers for code that uses aiodynkv.

- `InMemoryKV`: the `KVStore` protocol in memory, with the real store's semantics.
- `LocalDynamoDB`: a local DynamoDB-compatible server (moto, dynalite or DynamoDB Local);
  `ImageUnavailableError` when DynamoDB Local's image is neither present nor pullable.
- A pytest plugin (loaded automatically) with the fixtures ``aiodynkv_endpoint``,
  ``aiodynkv_kv`` and ``aiodynkv_memory``; see ``aiodynkv.testing._plugin``.
"""

from aiodynkv._local import (
    ImageUnavailableError,
    LocalDynamoDB,
    LocalServerError,
    docker_available,
    find_dynalite,
)
from aiodynkv.testing._memory import InMemoryKV

__all__ = [
    "ImageUnavailableError",
    "InMemoryKV",
    "LocalDynamoDB",
    "LocalServerError",
    "docker_available",
    "find_dynalite",
]
