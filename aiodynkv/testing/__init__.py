"""Test helpers for code that uses aiodynkv.

- `InMemoryKV`: the `KVStore` protocol in memory, with the real store's semantics.
- `LocalDynamoDB`: a local DynamoDB-compatible server (moto, dynalite or DynamoDB Local).
- A pytest plugin (loaded automatically) with the fixtures ``dynamodb_endpoint``,
  ``kv`` and ``memory_kv``; see ``aiodynkv.testing._plugin``.
"""

from aiodynkv.testing._local import LocalDynamoDB, LocalServerError, docker_available, find_dynalite
from aiodynkv.testing._memory import InMemoryKV

__all__ = ["InMemoryKV", "LocalDynamoDB", "LocalServerError", "docker_available", "find_dynalite"]
