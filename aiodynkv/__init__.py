"""aiodynkv: an asyncio-native key-value store on Amazon DynamoDB."""

from importlib.metadata import PackageNotFoundError, version

from aiodynkv._codec import from_json, to_json
from aiodynkv._config import KVConfig
from aiodynkv._counter import ShardedCounter
from aiodynkv._errors import (
    AccessDeniedError,
    BatchIncompleteError,
    BucketNotFoundError,
    ConditionFailedError,
    CorruptItemError,
    DecryptionError,
    EncryptionKeyError,
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
from aiodynkv._protocol import MISSING, TTL, Health, KeyListing, KVStore, StoredItem, Value
from aiodynkv._store import AsyncDynamoKV
from aiodynkv._transaction import Transaction
from aiodynkv._typed import TypedView

try:  # read once from the installed package's metadata
    __version__ = version("aiodynkv")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"
del PackageNotFoundError, version

__all__ = [
    "AccessDeniedError",
    "AsyncDynamoKV",
    "BatchIncompleteError",
    "BucketNotFoundError",
    "ConditionFailedError",
    "CorruptItemError",
    "DecryptionError",
    "EncryptionKeyError",
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

# Tracebacks and reprs name the public path (aiodynkv.KVError), not the private module.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and issubclass(_obj, BaseException):
        _obj.__module__ = __name__
del _name, _obj
