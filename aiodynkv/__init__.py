"""aiodynkv: an asyncio-native key-value store on Amazon DynamoDB."""

from aiodynkv._base import KeyListing, StoredItem
from aiodynkv._codec import from_json, to_json
from aiodynkv._config import KVConfig
from aiodynkv._errors import (
    AccessDeniedError,
    BatchIncompleteError,
    ConditionFailedError,
    CorruptItemError,
    InsecureEndpointWarning,
    InvalidKeyError,
    KeyNotFoundError,
    KVConfigError,
    KVConnectionError,
    KVError,
    KVTimeoutError,
    KVValidationError,
    ServerError,
    StoreClosedError,
    TableNotFoundError,
    ThrottledError,
    TransientError,
    ValueTooLargeError,
    WrongTypeError,
)
from aiodynkv._protocol import MISSING, TTL, Health, KVStore, Value
from aiodynkv._store import AsyncDynamoKV
from aiodynkv._version import __version__

__all__ = [
    "AccessDeniedError",
    "AsyncDynamoKV",
    "BatchIncompleteError",
    "ConditionFailedError",
    "CorruptItemError",
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
    "MISSING",
    "ServerError",
    "StoreClosedError",
    "StoredItem",
    "TTL",
    "TableNotFoundError",
    "ThrottledError",
    "TransientError",
    "Value",
    "ValueTooLargeError",
    "WrongTypeError",
    "__version__",
    "from_json",
    "to_json",
]
