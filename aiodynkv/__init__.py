"""aiodynkv: an asyncio-native key-value store on Amazon DynamoDB."""

from importlib.metadata import PackageNotFoundError, version

from aiodynkv._codec import from_json, to_json
from aiodynkv._config import KVConfig
from aiodynkv._errors import (
    AccessDeniedError,
    BatchIncompleteError,
    ConditionFailedError,
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
from aiodynkv._protocol import MISSING, Health, KVStore
from aiodynkv._store import AsyncDynamoKV

try:
    __version__ = version("aiodynkv")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "AccessDeniedError",
    "AsyncDynamoKV",
    "BatchIncompleteError",
    "ConditionFailedError",
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
    "KeyNotFoundError",
    "MISSING",
    "ServerError",
    "StoreClosedError",
    "TableNotFoundError",
    "ThrottledError",
    "TransientError",
    "ValueTooLargeError",
    "WrongTypeError",
    "__version__",
    "from_json",
    "to_json",
]
