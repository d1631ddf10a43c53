"""aiodynkv: an asyncio-native key-value store on Amazon DynamoDB."""

from aiodynkv._base import KeyListing, StoredItem
from aiodynkv._codec import from_json, to_json
from aiodynkv._config import KVConfig
from aiodynkv._counter import ShardedCounter
from aiodynkv._errors import (
    AccessDeniedError,
    BatchIncompleteError,
    ConditionFailedError,
    CorruptItemError,
    DecryptionError,
    InsecureEndpointWarning,
    InvalidKeyError,
    KeyNotFoundError,
    KVConfigError,
    KVConnectionError,
    KVError,
    KVTimeoutError,
    KVValidationError,
    LeaseLostError,
    LockNotAcquiredError,
    ServerError,
    StoreClosedError,
    TableNotFoundError,
    ThrottledError,
    TransactionFailedError,
    TransactionReason,
    TransientError,
    ValueTooLargeError,
    WriteInDoubtError,
    WrongTypeError,
)
from aiodynkv._lock import Lock
from aiodynkv._protocol import MISSING, TTL, Health, KVStore, Value
from aiodynkv._store import AsyncDynamoKV
from aiodynkv._transaction import Transaction
from aiodynkv._typed import TypedView
from aiodynkv._version import __version__

__all__ = [
    "AccessDeniedError",
    "AsyncDynamoKV",
    "BatchIncompleteError",
    "ConditionFailedError",
    "CorruptItemError",
    "DecryptionError",
    "Health",
    "InsecureEndpointWarning",
    "InvalidKeyError",
    "KVConfig",
    "KVConfigError",
    "KVConnectionError",
    "KVError",
    "KVStore",
    "KVTimeoutError",
    "KVValidationError",
    "KeyListing",
    "KeyNotFoundError",
    "LeaseLostError",
    "Lock",
    "LockNotAcquiredError",
    "MISSING",
    "ServerError",
    "ShardedCounter",
    "StoreClosedError",
    "StoredItem",
    "TTL",
    "TableNotFoundError",
    "ThrottledError",
    "Transaction",
    "TransactionFailedError",
    "TransactionReason",
    "TransientError",
    "TypedView",
    "Value",
    "ValueTooLargeError",
    "WriteInDoubtError",
    "WrongTypeError",
    "__version__",
    "from_json",
    "to_json",
]
