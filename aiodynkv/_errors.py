"""The exception tree, and `map_error`: a transport's failure turned into it.

```
KVError                                   every error aiodynkv raises
├── KVConfigError (ValueError)            a KVConfig field is invalid
├── StoreClosedError                      used before open() or after aclose()
├── KVValidationError (ValueError)        the request is invalid (ours or DynamoDB's check)
│   ├── InvalidKeyError                   empty, not UTF-8 encodable, or > 2048 bytes
│   ├── ValueTooLargeError                the item would exceed 400 KB
│   └── WrongTypeError (TypeError)        incr on a value that is not a counter
├── KeyNotFoundError (KeyError)           get of a missing or expired key
├── ConditionFailedError                  if_version / if_absent condition failed
├── CorruptItemError                      an item aiodynkv cannot read (foreign or damaged)
│   └── DecryptionError                   a value does not decrypt (copied, tampered, unknown key)
├── BatchIncompleteError                  a batch did not finish: done / unprocessed / in doubt
├── TableNotFoundError                    the table does not exist
├── AccessDeniedError                     bad, missing or insufficient credentials
├── BucketNotFoundError                   the large-value S3 bucket does not exist
├── EncryptionKeyError                    KMS refused the key (unknown, disabled, wrong use)
├── LockNotAcquiredError                  a lease was not acquired within `wait`
├── LeaseLostError                        a held lease lapsed or was taken over
├── TransactionFailedError                a transaction was cancelled; nothing applied
├── WriteInDoubtError                     a write may or may not have been applied: read first
└── TransientError                        worth retrying (reads; writes known not applied)
    ├── ThrottledError                    DynamoDB throttled the request
    ├── ServerError                       DynamoDB answered 5xx
    ├── KVTimeoutError (TimeoutError)     connect or read timeout
    └── KVConnectionError (ConnectionError)  refused, reset or closed connection
```

Every error carries `operation`, `table` and `key` (the user's key, never the
stored one) and is raised `from` the SDK exception it replaces. Messages never
hold values, and hold the key only when the store's ``expose_keys`` is on
(keys are often secrets, like session ids); ``.key`` always carries it for code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from aiodynkv._transport import ServiceError, WireError

__all__ = [
    "AccessDeniedError",
    "BatchIncompleteError",
    "BucketNotFoundError",
    "ConditionFailedError",
    "CorruptItemError",
    "DecryptionError",
    "EncryptionKeyError",
    "InsecureEndpointWarning",
    "InvalidKeyError",
    "KVConfigError",
    "KVConnectionError",
    "KVError",
    "KVTimeoutError",
    "KVValidationError",
    "KeyNotFoundError",
    "LeaseLostError",
    "LockNotAcquiredError",
    "ServerError",
    "StoreClosedError",
    "TableNotFoundError",
    "ThrottledError",
    "TransactionFailedError",
    "TransactionReason",
    "TransientError",
    "ValueTooLargeError",
    "WriteInDoubtError",
    "WrongTypeError",
]


#: How much of a name or key a message quotes; the rest is replaced by its length.
SHOWN_CHARS = 64


def shown(value: object) -> str:
    """`value` as a message quotes it: repr() of at most 64 characters, then its length."""
    if isinstance(value, (str, bytes)) and len(value) > SHOWN_CHARS:
        unit = "bytes" if isinstance(value, bytes) else "characters"
        return f"{value[:SHOWN_CHARS]!r}... ({len(value)} {unit})"
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} characters)"


class KVError(Exception):
    """Base class of every error raised by aiodynkv.

    Attributes:
        operation: The store operation that failed (``get``, ``set``, ...), if any.
        table: The DynamoDB table, if known.
        key: The user's key the operation was about, if any.
        reason: What went wrong without the key (safe for spans and logs), if known.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str | None = None,
        table: str | None = None,
        key: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.table = table
        self.key = key
        self.reason = reason
        self.show_key = False

    def __str__(self) -> str:
        if self.show_key and self.key is not None:
            return f"{self.message} [key {shown(self.key)}]"
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.message, self.__dict__)


def _rebuild(cls: type[KVError], message: str, state: dict[str, Any]) -> KVError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class KVConfigError(KVError, ValueError):
    """A configuration value is invalid; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"KVConfig.{field}: {message}")
        self.field = field


class StoreClosedError(KVError):
    """The store is not open: used before ``open()`` or after ``aclose()``."""


class KVValidationError(KVError, ValueError):
    """The request is invalid, by our own checks or by DynamoDB's."""


class InvalidKeyError(KVValidationError):
    """The key is empty, not a str, not encodable as UTF-8, or longer than 2048 bytes."""


class ValueTooLargeError(KVValidationError):
    """The item would exceed DynamoDB's 400 KB item limit.

    Attributes:
        size: The item size in bytes as DynamoDB counts it (None when the server said so).
        limit: The limit in bytes (409,600).
    """

    def __init__(self, message: str, *, size: int | None, limit: int, **context: Any) -> None:
        super().__init__(message, **context)
        self.size = size
        self.limit = limit


class WrongTypeError(KVValidationError, TypeError):
    """The stored value has the wrong type for the operation (``incr`` on a string)."""


class KeyNotFoundError(KVError, KeyError):
    """The key does not exist or has expired."""

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message; keep it readable.
        return KVError.__str__(self)


class CorruptItemError(KVError):
    """An item aiodynkv cannot read: written by another program, or damaged.

    A missing value attribute, a value of a type aiodynkv never writes, a
    non-numeric version or expiry, a compression flag on data that does not
    inflate, or a value inflating beyond ``max_value_bytes``. Never a `KeyError`:
    the key exists, it just cannot be read.

    Attributes:
        done: For ``get_many``, the values that were read fine.
        corrupt: For ``get_many``, what is wrong with each unreadable key.
    """

    def __init__(
        self,
        message: str,
        *,
        done: dict[str, Any] | None = None,
        corrupt: dict[str, str] | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.done: dict[str, Any] = dict(done or {})
        self.corrupt: dict[str, str] = dict(corrupt or {})


class DecryptionError(CorruptItemError):
    """An encrypted value does not decrypt: wrong table or key, tampered, or an unknown key id.

    AES-256-GCM binds each value to its table, stored key and key id, so a value
    copied to another key or table, a flipped bit, or a key id that is not in
    ``encryption_keys`` all end here. The message never holds the value.
    """


class ConditionFailedError(KVError):
    """A conditional write did not apply.

    Attributes:
        current_version: The item's version when the condition failed, or None if absent.
    """

    def __init__(self, message: str, *, current_version: int | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.current_version = current_version


class BatchIncompleteError(KVError):
    """A batch did not finish; every key is in exactly one of three sets.

    Attributes:
        done: Keys definitely read or written: for ``get_many`` the values read, for
            ``set_many`` the values written, for ``delete_many`` None per key.
        unprocessed: Keys definitely not written (or not read): safe to send again.
        in_doubt: Keys whose write may or may not have been applied (the request
            timed out, lost its connection or met a 5xx): read them to find out.
    """

    def __init__(
        self,
        message: str,
        *,
        unprocessed: Iterable[str],
        in_doubt: Iterable[str] = (),
        done: dict[str, Any] | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.unprocessed: frozenset[str] = frozenset(unprocessed)
        self.in_doubt: frozenset[str] = frozenset(in_doubt)
        self.done: dict[str, Any] = dict(done or {})


class TableNotFoundError(KVError):
    """The table does not exist.

    Create it with ``AsyncDynamoKV(..., create_table=True)``, ``await kv.ensure_table()``
    or ``aiodynkv create-table``.
    """


class AccessDeniedError(KVError):
    """Credentials are missing, invalid, expired or lack a permission."""


class BucketNotFoundError(KVError):
    """The S3 bucket for large values (``large_value_bucket``) does not exist."""


class EncryptionKeyError(KVError):
    """KMS refused the key ``encryption_kms_key_id`` names.

    The key does not exist, is disabled or pending deletion, or is not for
    encryption. A missing permission on the key is an `AccessDeniedError` instead.
    """


class TransientError(KVError):
    """A failure worth retrying later: throttling, 5xx, timeouts, broken connections.

    Raised by reads, and by writes only when no attempt can have been applied (a write
    whose earlier attempt may have been applied raises `WriteInDoubtError` instead).
    """


class WriteInDoubtError(KVError):
    """A write may or may not have been applied; do not retry it blindly.

    An attempt reached (or may have reached) the server and no result came back, and
    what came after (a lost reply, throttling, a 5xx, a timeout, the call's deadline)
    did not tell. Not a `TransientError`: sending the write again may apply it twice
    (a counter adds twice, ``if_absent`` meets its own write). Read the key(s) to find
    out, then decide.

    Attributes:
        keys: The user's keys the write was about (one for a single-key write, every
            key of a transaction).
    """

    def __init__(self, message: str, *, keys: Iterable[str] = (), **context: Any) -> None:
        super().__init__(message, **context)
        self.keys: tuple[str, ...] = tuple(keys) or (
            (context["key"],) if context.get("key") is not None else ()
        )


class ThrottledError(TransientError):
    """DynamoDB throttled the request even after the SDK's retries."""


class ServerError(TransientError):
    """DynamoDB answered with a server-side (5xx) error."""


class KVTimeoutError(TransientError, TimeoutError):
    """Connecting or reading timed out (see ``connect_timeout`` / ``read_timeout``)."""


class KVConnectionError(TransientError, ConnectionError):
    """The connection was refused, reset or closed before a response arrived."""


class InsecureEndpointWarning(UserWarning):
    """The endpoint is plain http on a host that is not loopback: requests travel unencrypted."""


class LockNotAcquiredError(KVError):
    """A lease (``kv.lock(name)``) was not acquired before its ``wait`` ran out.

    Attributes:
        waited: Seconds spent trying.
    """

    def __init__(self, message: str, *, waited: float = 0.0, **context: Any) -> None:
        super().__init__(message, **context)
        self.waited = waited


class LeaseLostError(KVError):
    """A held lease lapsed (renewals failed for a whole lease) or was taken over.

    Work done under it may have overlapped another holder's: check its fencing token.
    """


@dataclass(frozen=True)
class TransactionReason:
    """Why one action of a cancelled transaction failed (or ``"none"`` if it did not).

    Attributes:
        index: The action's position in the transaction.
        action: ``set``, ``delete``, ``incr`` or ``check`` (``get`` for a snapshot read).
        key: The user's key.
        code: ``none``, ``condition_failed``, ``conflict``, ``throttled``, ``validation``,
            or the server's code in snake case.
        message: The server's message, if any (never holds values).
        current_version: For a failed condition, the item's version then (None if absent).
    """

    index: int
    action: str
    key: str
    code: str
    message: str | None = None
    current_version: int | None = None


class TransactionFailedError(KVError):
    """A transaction (``kv.transaction()`` or ``get_many(snapshot=True)``) was cancelled.

    Nothing was applied. ``reasons`` has one entry per action, in order; ``failed``
    keeps the ones that caused the cancellation.

    Attributes:
        reasons: A `TransactionReason` per action.
    """

    def __init__(
        self, message: str, *, reasons: Iterable[TransactionReason] = (), **context: Any
    ) -> None:
        super().__init__(message, **context)
        self.reasons: tuple[TransactionReason, ...] = tuple(reasons)

    @property
    def failed(self) -> tuple[TransactionReason, ...]:
        """The reasons of the actions that caused the cancellation."""
        return tuple(reason for reason in self.reasons if reason.code != "none")

    @property
    def retryable(self) -> bool:
        """True when every failure was a conflict or throttling (worth trying again)."""
        failed = self.failed
        return bool(failed) and all(r.code in ("conflict", "throttled") for r in failed)


# -- the map: a transport failure to its class of the tree ------------------------
# (retryability comes from the tree, `TransientError`, not from this map)

# DynamoDB error codes, as botocore reports them in Error.Code.
_CODES: dict[type[KVError], str] = {
    TableNotFoundError: "ResourceNotFoundException",
    ConditionFailedError: "ConditionalCheckFailedException",
    ThrottledError: "ProvisionedThroughputExceededException ThrottlingException "
    "RequestLimitExceeded LimitExceededException TransactionConflictException",
    ServerError: "InternalServerError InternalFailure ServiceUnavailable "
    "ServiceUnavailableException",
    AccessDeniedError: "AccessDeniedException UnrecognizedClientException "
    "InvalidSignatureException MissingAuthenticationTokenException IncompleteSignatureException "
    "ExpiredTokenException InvalidClientTokenId SignatureDoesNotMatch",
    KVValidationError: "ValidationException SerializationException",
}
_CODE_TO_CLASS = {code: cls for cls, codes in _CODES.items() for code in codes.split()}

_SIZE_MESSAGES = ("item size", "size of the item", "maximum allowed size")


def botocore_exceptions() -> ModuleType | None:
    """``botocore.exceptions`` if botocore is loaded, else None (no error needs importing it)."""
    return sys.modules.get("botocore.exceptions")


def _error_class(exc: BaseException) -> type[KVError]:  # noqa: PLR0911 (one per kind)
    if isinstance(exc, ServiceError):
        cls = _CODE_TO_CLASS.get(exc.code)
        if cls is KVValidationError and any(m in exc.message.lower() for m in _SIZE_MESSAGES):
            return ValueTooLargeError
        if cls is not None:
            return cls
        if exc.status == 403:  # a refusal naming no code (not JSON: a proxy, moto's IAM)
            return AccessDeniedError
        return ServerError if exc.status >= 500 else KVError
    if isinstance(exc, WireError):
        return KVTimeoutError if exc.timeout else KVConnectionError
    bex = botocore_exceptions()
    if bex is None:
        return KVError
    if isinstance(exc, (bex.NoCredentialsError, bex.PartialCredentialsError)):
        return AccessDeniedError
    if isinstance(exc, bex.ParamValidationError):
        return KVValidationError
    return KVError


_NO_TABLE_HINT = (
    " (create it with create_table=True, `await kv.ensure_table()` or `aiodynkv create-table`)"
)


def _failed(cls: type[KVError], operation: str, table: str | None, reason: str) -> str:
    """The message of a failed request: operation, table, what went wrong (and a hint)."""
    hint = _NO_TABLE_HINT if issubclass(cls, TableNotFoundError) else ""
    return f"{operation} on table {table!r} failed: {reason}{hint}"


def rekey(error: KVError, operation: str, key: str) -> KVError:
    """A copy of `error` about one caller's key (each caller of a shared request gets one)."""
    copy = _rebuild(type(error), error.message, dict(error.__dict__))
    copy.message = _failed(type(copy), operation, error.table, error.reason or error.message)
    Exception.__init__(copy, copy.message)
    copy.operation = operation
    copy.key = key
    if isinstance(copy, WriteInDoubtError):
        copy.keys = (key,)
    copy.__cause__ = error.__cause__
    return copy


def describe(exc: BaseException) -> str:
    """What went wrong, without keys or values: the server's code and message, or the wire's."""
    if isinstance(exc, ServiceError):
        return f"{exc.code}: {exc.message}".rstrip(": ")
    if isinstance(exc, WireError):
        return str(exc) or ("timed out" if exc.timeout else "connection failed")
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def map_error(exc: BaseException, *, operation: str, table: str, key: str | None) -> KVError:
    """The `KVError` to raise ``from exc`` (a transport's failure); a `KVError` passes as is."""
    if isinstance(exc, KVError):
        return exc
    cls = _error_class(exc)
    reason = describe(exc)
    message = _failed(cls, operation, table, reason)
    context: dict[str, Any] = {"operation": operation, "table": table, "key": key, "reason": reason}
    if cls is ValueTooLargeError:
        return ValueTooLargeError(message, size=None, limit=409_600, **context)
    return cls(message, **context)


def in_doubt_error(
    error: KVError | None,
    *,
    operation: str,
    table: str,
    key: str | None,
    keys: tuple[str, ...] = (),
    why: str | None = None,
) -> WriteInDoubtError:
    """The `WriteInDoubtError` of a write that may have been applied, then ended in `error`.

    `why`: what ended the call when not `error` (its deadline); `keys`: a transaction's.
    """
    what = why or (error.reason or error.message if error is not None else "no reply")
    reason = (
        f"the write may or may not have been applied (an attempt may have reached the "
        f"server, then: {what}); do not retry it blindly: read to find out"
    )
    found = WriteInDoubtError(
        f"{operation} on table {table!r}: {reason}",
        operation=operation,
        table=table,
        key=key,
        keys=keys,
        reason=reason,
    )
    if error is not None:
        found.show_key = error.show_key
    return found
