"""The exception tree, and the one place that turns SDK failures into it.

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
├── BatchIncompleteError                  keys still unprocessed at the batch deadline
├── TableNotFoundError                    the table does not exist
├── AccessDeniedError                     bad, missing or insufficient credentials
└── TransientError                        worth retrying later
    ├── ThrottledError                    DynamoDB throttled the request
    ├── ServerError                       DynamoDB answered 5xx
    ├── KVTimeoutError (TimeoutError)     connect or read timeout
    └── KVConnectionError (ConnectionError)  refused, reset or closed connection
```

Every error carries `operation`, `table` and `key` (the user's key, never the
stored one) and is raised `from` the SDK exception it replaces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import aiohttp
import botocore.exceptions as bex

__all__ = [
    "AccessDeniedError",
    "BatchIncompleteError",
    "ConditionFailedError",
    "InsecureEndpointWarning",
    "InvalidKeyError",
    "KVConfigError",
    "KVConnectionError",
    "KVError",
    "KVTimeoutError",
    "KVValidationError",
    "KeyNotFoundError",
    "ServerError",
    "StoreClosedError",
    "TableNotFoundError",
    "ThrottledError",
    "TransientError",
    "ValueTooLargeError",
    "WrongTypeError",
    "map_error",
    "rekey",
]


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

    def __str__(self) -> str:
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
        return self.message


class ConditionFailedError(KVError):
    """A conditional write did not apply.

    Attributes:
        current_version: The item's version when the condition failed, or None if absent.
    """

    def __init__(self, message: str, *, current_version: int | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.current_version = current_version


class BatchIncompleteError(KVError):
    """Some keys of a batch were still unprocessed when the batch deadline passed.

    Attributes:
        unprocessed: Exactly the user keys that were not read or written.
        done: For ``get_many``, the values that were read; empty for writes.
    """

    def __init__(
        self,
        message: str,
        *,
        unprocessed: Iterable[str],
        done: dict[str, Any] | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.unprocessed: frozenset[str] = frozenset(unprocessed)
        self.done: dict[str, Any] = dict(done or {})


class TableNotFoundError(KVError):
    """The table does not exist (create it with ``ensure_table()`` or ``create_table=True``)."""


class AccessDeniedError(KVError):
    """Credentials are missing, invalid, expired or lack a permission."""


class TransientError(KVError):
    """A failure worth retrying later: throttling, 5xx, timeouts, broken connections."""


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


# DynamoDB error codes, as botocore reports them in Error.Code.
_CODE_TO_CLASS: dict[str, type[KVError]] = {
    "ResourceNotFoundException": TableNotFoundError,
    "ConditionalCheckFailedException": ConditionFailedError,
    "ProvisionedThroughputExceededException": ThrottledError,
    "ThrottlingException": ThrottledError,
    "RequestLimitExceeded": ThrottledError,
    "LimitExceededException": ThrottledError,
    "TransactionConflictException": ThrottledError,
    "InternalServerError": ServerError,
    "InternalFailure": ServerError,
    "ServiceUnavailable": ServerError,
    "ServiceUnavailableException": ServerError,
    "AccessDeniedException": AccessDeniedError,
    "UnrecognizedClientException": AccessDeniedError,
    "InvalidSignatureException": AccessDeniedError,
    "MissingAuthenticationTokenException": AccessDeniedError,
    "IncompleteSignatureException": AccessDeniedError,
    "ExpiredTokenException": AccessDeniedError,
    "InvalidClientTokenId": AccessDeniedError,
    "SignatureDoesNotMatch": AccessDeniedError,
    "ValidationException": KVValidationError,
    "SerializationException": KVValidationError,
}

_SIZE_MESSAGES = ("item size", "size of the item", "maximum allowed size")


def _client_error_class(exc: bex.ClientError) -> type[KVError]:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    cls = _CODE_TO_CLASS.get(code)
    if cls is KVValidationError and any(
        m in str(error.get("Message", "")).lower() for m in _SIZE_MESSAGES
    ):
        return ValueTooLargeError
    if cls is not None:
        return cls
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if isinstance(status, int) and status >= 500:
        return ServerError
    return KVError


def _error_class(exc: BaseException) -> type[KVError]:
    if isinstance(exc, bex.ClientError):
        return _client_error_class(exc)
    if isinstance(exc, (bex.ConnectTimeoutError, bex.ReadTimeoutError, asyncio.TimeoutError)):
        return KVTimeoutError
    if isinstance(
        exc,
        (
            bex.EndpointConnectionError,
            bex.ConnectionClosedError,
            bex.HTTPClientError,
            aiohttp.ClientError,
            ConnectionError,
        ),
    ):
        return KVConnectionError
    if isinstance(exc, (bex.NoCredentialsError, bex.PartialCredentialsError)):
        return AccessDeniedError
    if isinstance(exc, bex.ParamValidationError):
        return KVValidationError
    return KVError


def rekey(error: KVError, operation: str, key: str) -> KVError:
    """A copy of `error` about one caller's key (each caller of a shared request gets one)."""
    copy = _rebuild(type(error), error.message, dict(error.__dict__))
    where = f"{operation} on table {error.table!r} for key {key!r}"
    copy.message = f"{where} failed: {error.reason or error.message}"
    Exception.__init__(copy, copy.message)
    copy.operation = operation
    copy.key = key
    copy.__cause__ = error.__cause__
    return copy


def _describe(exc: BaseException) -> str:
    if isinstance(exc, bex.ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def map_error(exc: BaseException, *, operation: str, table: str, key: str | None) -> KVError:
    """Translate an SDK or transport exception into the matching `KVError`.

    Args:
        exc: The exception botocore, aiobotocore or aiohttp raised.
        operation: The store operation (``get``, ``set``, ...).
        table: The table name.
        key: The user's key, if the operation is about one.

    Returns:
        The `KVError` to raise ``from exc``; a `KVError` passes through unchanged.
    """
    if isinstance(exc, KVError):
        return exc
    cls = _error_class(exc)
    where = f"{operation} on table {table!r}" + (f" for key {key!r}" if key is not None else "")
    reason = _describe(exc)
    message = f"{where} failed: {reason}"
    context: dict[str, Any] = {"operation": operation, "table": table, "key": key, "reason": reason}
    if cls is ValueTooLargeError:
        return ValueTooLargeError(message, size=None, limit=409_600, **context)
    return cls(message, **context)
