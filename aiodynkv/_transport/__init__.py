"""The transport seam: how a built DynamoDB request reaches the server.

`Transport` (in `base`) is the whole interface. `botocore.BotocoreTransport` sends
through an aioboto3 client; `lean.LeanTransport` signs and posts DynamoDB JSON itself;
`memory.MemoryTransport` answers in process with DynamoDB's semantics. None knows
about keys, values or TTLs; failures come out as `ServiceError` or
`WireError`, which `aiodynkv._errors.map_error` turns into the `KVError` tree.
"""
