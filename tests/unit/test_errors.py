from __future__ import annotations

import pickle

import botocore.exceptions as bex
import pytest

from aiodynkv import (
    AccessDeniedError,
    BatchIncompleteError,
    ConditionFailedError,
    CorruptItemError,
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
from aiodynkv._errors import _CODE_TO_CLASS, map_error, rekey
from aiodynkv._transport import ServiceError, WireError

SECRET_KEY = "session:s3cr3t"


def service_error(code: str, message: str = "m", status: int = 400) -> ServiceError:
    return ServiceError(code, message, status=status)


@pytest.mark.parametrize(("code", "cls"), sorted(_CODE_TO_CLASS.items()))
def test_every_dynamodb_code_maps_to_its_class(code: str, cls: type[KVError]) -> None:
    error = map_error(service_error(code), operation="get", table="kvt", key=SECRET_KEY)
    assert type(error) is cls
    assert str(error).startswith(f"get on table 'kvt' failed: {code}: m")
    assert (error.operation, error.table, error.key) == ("get", "kvt", SECRET_KEY)
    assert error.reason == f"{code}: m"


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
    ],
)
def test_the_usual_codes_are_in_the_table(code: str, cls: type[KVError]) -> None:
    assert _CODE_TO_CLASS[code] is cls


def test_messages_hold_no_key_unless_show_key_is_set() -> None:
    error = map_error(
        service_error("ThrottlingException"), operation="set", table="kvt", key=SECRET_KEY
    )
    assert SECRET_KEY not in str(error)
    assert SECRET_KEY not in repr(error)
    assert error.reason is not None and SECRET_KEY not in error.reason
    error.show_key = True
    assert str(error) == f"{error.message} [key {SECRET_KEY!r}]"
    missing = KeyNotFoundError("get: not found", key=SECRET_KEY)
    assert str(missing) == "get: not found"
    missing.show_key = True
    assert str(missing) == f"get: not found [key {SECRET_KEY!r}]"


def test_a_shown_long_key_is_cut_to_64_characters_and_its_length() -> None:
    key = "k" * 1500
    error = KeyNotFoundError("get: not found", key=key)
    error.show_key = True
    assert str(error) == f"get: not found [key {'k' * 64!r}... (1500 characters)]"
    assert error.key == key  # code still gets the whole key


def test_a_store_repr_cuts_a_long_namespace() -> None:
    from aiodynkv import AsyncDynamoKV

    text = repr(AsyncDynamoKV(table="kvt", namespace="c" * 1500))
    assert "c" * 65 not in text
    assert "1500 characters" in text


def test_show_key_without_a_key_shows_the_message_only() -> None:
    error = KVError("boom")
    error.show_key = True
    assert str(error) == "boom"


def test_table_not_found_says_how_to_create_the_table() -> None:
    error = map_error(
        service_error("ResourceNotFoundException", "Requested resource not found"),
        operation="get",
        table="kvt",
        key=None,
    )
    assert isinstance(error, TableNotFoundError)
    text = str(error)
    assert "create_table=True" in text
    assert "ensure_table" in text
    assert "aiodynkv create-table" in text
    # The hint is not part of the reason (what spans and logs carry).
    assert error.reason == "ResourceNotFoundException: Requested resource not found"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_an_unknown_5xx_code_is_a_server_error(status: int) -> None:
    error = map_error(service_error("Weird", status=status), operation="get", table="kvt", key=None)
    assert type(error) is ServerError
    assert isinstance(error, TransientError)


@pytest.mark.parametrize("status", [0, 400, 418, 499])
def test_an_unknown_code_below_500_is_a_plain_kv_error(status: int) -> None:
    error = map_error(service_error("Weird", status=status), operation="get", table="kvt", key=None)
    assert type(error) is KVError


def test_a_403_without_a_known_code_is_access_denied() -> None:
    # What botocore and the lean transport make of a 403 whose body is not JSON (moto's
    # IAM refusals are XML): the status is the code, and it is a refusal all the same.
    refusal = service_error("403", "<ErrorResponse>...</ErrorResponse>", status=403)
    error = map_error(refusal, operation="get", table="kvt", key=None)
    assert type(error) is AccessDeniedError


def test_a_known_code_wins_over_the_status() -> None:
    error = map_error(
        service_error("ThrottlingException", status=500), operation="get", table="kvt", key=None
    )
    assert type(error) is ThrottledError


@pytest.mark.parametrize(
    "message",
    [
        "Item size has exceeded the maximum allowed size",
        "Item size to update has exceeded the maximum allowed size",
        "ITEM SIZE too big",
        "the size of the item is over",
    ],
)
def test_size_validation_messages_map_to_value_too_large(message: str) -> None:
    error = map_error(
        service_error("ValidationException", message), operation="set", table="kvt", key="k"
    )
    assert type(error) is ValueTooLargeError
    assert isinstance(error, KVValidationError)
    assert (error.size, error.limit) == (None, 409_600)
    assert error.key == "k"


def test_other_validation_messages_stay_validation_errors() -> None:
    error = map_error(
        service_error(
            "ValidationException", "An operand in the update expression has an incorrect data type"
        ),
        operation="incr",
        table="kvt",
        key="k",
    )
    assert type(error) is KVValidationError


def test_a_size_message_on_another_code_is_not_value_too_large() -> None:
    error = map_error(
        service_error("InternalServerError", "item size whatever", status=500),
        operation="set",
        table="kvt",
        key=None,
    )
    assert type(error) is ServerError


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (WireError("read timeout", timeout=True, in_doubt=True), KVTimeoutError),
        (WireError("connect timeout", timeout=True, in_doubt=False), KVTimeoutError),
        (WireError("refused", timeout=False, in_doubt=False), KVConnectionError),
        (WireError("reset", timeout=False, in_doubt=True), KVConnectionError),
        (bex.NoCredentialsError(), AccessDeniedError),
        (
            bex.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
            AccessDeniedError,
        ),
        (bex.ParamValidationError(report="bad"), KVValidationError),
        (RuntimeError("odd"), KVError),
    ],
)
def test_neutral_and_sdk_failures_map(exc: BaseException, cls: type[KVError]) -> None:
    error = map_error(exc, operation="get", table="kvt", key=None)
    assert type(error) is cls
    assert error.reason is not None
    assert str(error).startswith("get on table 'kvt' failed: ")


def test_wire_errors_are_transient_with_builtin_bases() -> None:
    timeout = map_error(
        WireError("x", timeout=True, in_doubt=True), operation="get", table="kvt", key=None
    )
    broken = map_error(
        WireError("x", timeout=False, in_doubt=True), operation="get", table="kvt", key=None
    )
    assert isinstance(timeout, KVTimeoutError)
    assert isinstance(broken, KVConnectionError)
    with pytest.raises(TimeoutError):
        raise timeout
    with pytest.raises(ConnectionError):
        raise broken


def test_reason_of_a_wire_error_is_its_message_without_the_class_name() -> None:
    error = map_error(
        WireError("", timeout=True, in_doubt=True), operation="get", table="kvt", key=None
    )
    assert error.reason == "timed out"
    error = map_error(
        WireError("", timeout=False, in_doubt=True), operation="get", table="kvt", key=None
    )
    assert error.reason == "connection failed"
    error = map_error(
        WireError("late", timeout=True, in_doubt=True), operation="get", table="kvt", key=None
    )
    assert error.reason == "late"
    assert str(error) == "get on table 'kvt' failed: late"


def test_kv_errors_pass_through() -> None:
    original = KVError("x")
    assert map_error(original, operation="get", table="kvt", key=None) is original


def test_tree_and_builtin_bases() -> None:
    assert issubclass(KeyNotFoundError, KeyError)
    assert issubclass(KVTimeoutError, (TransientError, TimeoutError))
    assert issubclass(KVConnectionError, (TransientError, ConnectionError))
    assert issubclass(ThrottledError, TransientError) and issubclass(ServerError, TransientError)
    assert issubclass(ValueTooLargeError, KVValidationError)
    for cls in (TableNotFoundError, AccessDeniedError, ConditionFailedError, KVValidationError):
        assert not issubclass(cls, TransientError)
    assert str(KeyNotFoundError("get: key not found")) == "get: key not found"


def test_corrupt_item_error_is_not_a_key_error() -> None:
    assert not issubclass(CorruptItemError, KeyError)
    error = CorruptItemError(
        "bad", done={"a": "1"}, corrupt={"b": "no value attribute"}, operation="get_many"
    )
    assert (error.done, error.corrupt) == ({"a": "1"}, {"b": "no value attribute"})
    try:
        raise error
    except KeyError:  # pragma: no cover - the point of the test
        pytest.fail("CorruptItemError was caught as a KeyError")
    except CorruptItemError:
        pass
    assert (CorruptItemError("x").done, CorruptItemError("x").corrupt) == ({}, {})


def test_batch_incomplete_error_holds_three_disjoint_sets() -> None:
    error = BatchIncompleteError(
        "set_many: 3 of 6 keys not written",
        done={"a": None, "b": None, "c": None},
        unprocessed=["d", "e"],
        in_doubt=["f"],
        operation="set_many",
        table="kvt",
    )
    assert error.done == {"a": None, "b": None, "c": None}
    assert error.unprocessed == frozenset({"d", "e"})
    assert error.in_doubt == frozenset({"f"})
    bare = BatchIncompleteError("x", unprocessed=())
    assert (bare.done, bare.unprocessed, bare.in_doubt) == ({}, frozenset(), frozenset())


def test_rekey_gives_each_caller_a_copy_about_its_own_key() -> None:
    cause = service_error("ThrottlingException", "slow down")
    shared = map_error(cause, operation="get_many", table="kvt", key=None)
    shared.__cause__ = cause
    mine = rekey(shared, "get", "k1")
    theirs = rekey(shared, "get", "k2")
    assert type(mine) is ThrottledError and mine is not shared
    assert (mine.operation, mine.key, theirs.key) == ("get", "k1", "k2")
    assert mine.table == "kvt"
    assert str(mine) == "get on table 'kvt' failed: ThrottlingException: slow down"
    assert "k1" not in str(mine)
    assert mine.__cause__ is cause
    assert mine.reason == shared.reason
    # The original is untouched.
    assert (shared.operation, shared.key) == ("get_many", None)
    mine.show_key = True
    assert str(mine).endswith("[key 'k1']")


def test_rekey_without_a_reason_reuses_the_message() -> None:
    shared = KVError("boom", table="kvt")
    copy = rekey(shared, "get", "k")
    assert str(copy) == "get on table 'kvt' failed: boom"


def test_errors_pickle_with_their_context() -> None:
    error = ConditionFailedError(
        "set failed", current_version=3, operation="set", table="kvt", key="k", reason="cond"
    )
    error.show_key = True
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ConditionFailedError
    assert (copy.current_version, copy.key, copy.operation, copy.table, copy.reason) == (
        3,
        "k",
        "set",
        "kvt",
        "cond",
    )
    assert copy.show_key is True
    assert str(copy) == "set failed [key 'k']"


@pytest.mark.parametrize(
    "error",
    [
        ValueTooLargeError("big", size=500_000, limit=409_600, key="k"),
        BatchIncompleteError("part", done={"a": 1}, unprocessed=["b"], in_doubt=["c"]),
        CorruptItemError("bad", done={"a": "x"}, corrupt={"b": "why"}),
        KeyNotFoundError("missing", key="k"),
        TableNotFoundError("no table", table="kvt"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_kind_of_error_survives_pickling(error: KVError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.__dict__ == error.__dict__
    assert str(copy) == str(error)
    assert copy.args == error.args


def test_a_mapped_error_pickles() -> None:
    error = map_error(
        service_error("ValidationException", "Item size has exceeded"),
        operation="set",
        table="kvt",
        key="k",
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ValueTooLargeError
    assert (copy.limit, copy.key, copy.reason) == (409_600, "k", error.reason)
