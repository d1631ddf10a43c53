"""Turning a transport's failure into the `KVError` tree: one map of AWS error codes.

Retryability comes from the tree (`TransientError`), not from this map; the map only
says which class a DynamoDB error code is.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from aiodynkv._errors import (
    AccessDeniedError,
    ConditionFailedError,
    KVConnectionError,
    KVError,
    KVTimeoutError,
    KVValidationError,
    ServerError,
    TableNotFoundError,
    ThrottledError,
    ValueTooLargeError,
    WriteInDoubtError,
    _rebuild,
)
from aiodynkv._transport.base import ServiceError, WireError

__all__ = ["botocore_exceptions", "describe", "in_doubt_error", "map_error", "rekey"]

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


def _service_error_class(exc: ServiceError) -> type[KVError]:
    cls = _CODE_TO_CLASS.get(exc.code)
    if cls is KVValidationError and any(m in exc.message.lower() for m in _SIZE_MESSAGES):
        return ValueTooLargeError
    if cls is not None:
        return cls
    if exc.status == 403:  # a refusal whose body names no code (not JSON: a proxy, moto's IAM)
        return AccessDeniedError
    return ServerError if exc.status >= 500 else KVError


def botocore_exceptions() -> ModuleType | None:
    """``botocore.exceptions`` if botocore is loaded, else None.

    Importing botocore takes a third of a second, so the error maps never do: an
    exception can only be one of botocore's classes once botocore has been loaded.
    """
    return sys.modules.get("botocore.exceptions")


def _error_class(exc: BaseException) -> type[KVError]:
    if isinstance(exc, ServiceError):
        return _service_error_class(exc)
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


def rekey(error: KVError, operation: str, key: str) -> KVError:
    """A copy of `error` about one caller's key (each caller of a shared request gets one)."""
    copy = _rebuild(type(error), error.message, dict(error.__dict__))
    copy.message = f"{operation} on table {error.table!r} failed: {error.reason or error.message}"
    if isinstance(copy, TableNotFoundError):
        copy.message += _NO_TABLE_HINT
    Exception.__init__(copy, copy.message)
    copy.operation = operation
    copy.key = key
    if isinstance(copy, WriteInDoubtError):
        copy.keys = (key,)
    copy.__cause__ = error.__cause__
    return copy


def describe(exc: BaseException) -> str:
    """What went wrong, without keys or values (the server's code and message).

    A transport's own failure is described by its message alone: its class is an
    internal name, and the `KVError` subclass already says timeout or connection.
    """
    if isinstance(exc, ServiceError):
        return f"{exc.code}: {exc.message}".rstrip(": ")
    if isinstance(exc, WireError):
        return str(exc) or ("timed out" if exc.timeout else "connection failed")
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def map_error(exc: BaseException, *, operation: str, table: str, key: str | None) -> KVError:
    """Translate a transport failure into the matching `KVError`.

    Args:
        exc: A `ServiceError` or `WireError` from a transport, or a credentials error.
        operation: The store operation (``get``, ``set``, ...).
        table: The table name.
        key: The user's key, if the operation is about one (kept off the message).

    Returns:
        The `KVError` to raise ``from exc``; a `KVError` passes through unchanged.
    """
    if isinstance(exc, KVError):
        return exc
    cls = _error_class(exc)
    reason = describe(exc)
    message = f"{operation} on table {table!r} failed: {reason}"
    if cls is TableNotFoundError:
        message += _NO_TABLE_HINT
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

    Args:
        error: The error the write's last request ended in, if any.
        operation: The store operation (``set``, ``incr``, ``transaction``...).
        table: The table name.
        key: The user's key (kept off the message).
        keys: Every key of a multi-key write (a transaction).
        why: What ended the call, when it is not `error` (the call's deadline).
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
