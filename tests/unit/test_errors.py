from __future__ import annotations

import asyncio
import pickle

import aiohttp
import botocore.exceptions as bex
import pytest

from aiodynkv import (
    AccessDeniedError,
    ConditionFailedError,
    KeyNotFoundError,
    KVConnectionError,
    KVError,
    KVTimeoutError,
    KVValidationError,
    ServerError,
    TableNotFoundError,
    ThrottledError,
    TransientError,
    ValueTooLargeError,
)
from aiodynkv._errors import map_error


def client_error(code: str, message: str = "m", status: int = 400) -> bex.ClientError:
    return bex.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetItem",
    )


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("ResourceNotFoundException", TableNotFoundError),
        ("ConditionalCheckFailedException", ConditionFailedError),
        ("ProvisionedThroughputExceededException", ThrottledError),
        ("ThrottlingException", ThrottledError),
        ("RequestLimitExceeded", ThrottledError),
        ("InternalServerError", ServerError),
        ("AccessDeniedException", AccessDeniedError),
        ("UnrecognizedClientException", AccessDeniedError),
        ("ExpiredTokenException", AccessDeniedError),
        ("ValidationException", KVValidationError),
        ("SomethingNew", KVError),
    ],
)
def test_aws_codes_map_to_classes(code: str, cls: type[KVError]) -> None:
    error = map_error(client_error(code), operation="get", table="t", key="k")
    assert type(error) is cls
    assert "get on table 't' for key 'k' failed" in str(error)
    assert (error.operation, error.table, error.key) == ("get", "t", "k")
    assert error.reason is not None and error.reason.startswith(code)
    assert "'k'" not in error.reason


def test_item_size_validation_maps_to_value_too_large() -> None:
    error = map_error(
        client_error("ValidationException", "Item size has exceeded the maximum allowed size"),
        operation="set",
        table="t",
        key="k",
    )
    assert isinstance(error, ValueTooLargeError)
    assert error.limit == 409_600


def test_unknown_5xx_is_a_server_error() -> None:
    assert isinstance(
        map_error(client_error("Weird", status=503), operation="get", table="t", key=None),
        ServerError,
    )


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (bex.ConnectTimeoutError(endpoint_url="http://x"), KVTimeoutError),
        (bex.ReadTimeoutError(endpoint_url="http://x"), KVTimeoutError),
        (asyncio.TimeoutError(), KVTimeoutError),
        (bex.EndpointConnectionError(endpoint_url="http://x"), KVConnectionError),
        (aiohttp.ClientConnectionError("reset"), KVConnectionError),
        (ConnectionResetError(), KVConnectionError),
        (bex.NoCredentialsError(), AccessDeniedError),
        (bex.ParamValidationError(report="bad"), KVValidationError),
        (RuntimeError("odd"), KVError),
    ],
)
def test_transport_failures_map(exc: BaseException, cls: type[KVError]) -> None:
    assert type(map_error(exc, operation="get", table="t", key=None)) is cls


def test_kv_errors_pass_through() -> None:
    original = KVError("x")
    assert map_error(original, operation="get", table="t", key=None) is original


def test_tree_and_builtin_bases() -> None:
    assert issubclass(KeyNotFoundError, KeyError)
    assert issubclass(KVTimeoutError, (TransientError, TimeoutError))
    assert issubclass(KVConnectionError, (TransientError, ConnectionError))
    assert issubclass(ThrottledError, TransientError) and issubclass(ServerError, TransientError)
    assert not issubclass(TableNotFoundError, TransientError)
    assert str(KeyNotFoundError("get: key 'k' not found")) == "get: key 'k' not found"


def test_errors_pickle_with_their_context() -> None:
    error = ConditionFailedError("failed", current_version=3, operation="set", table="t", key="k")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ConditionFailedError
    assert (copy.current_version, copy.key, str(copy)) == (3, "k", "failed")
