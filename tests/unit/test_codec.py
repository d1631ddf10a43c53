from __future__ import annotations

import math
import zlib
from datetime import timedelta
from typing import Any

import pytest

from aiodynkv import KVConfig, KVValidationError, ValueTooLargeError, from_json, to_json
from aiodynkv._codec import (
    MAX_ITEM_BYTES,
    build_item,
    check_delta,
    check_item_size,
    decode_value,
    encode_value,
    expiry_of,
    is_expired,
    item_size,
    number_size,
)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 1),
        ("1", 2),
        ("12", 2),
        ("123", 3),
        ("1795628826224302", 9),
        ("-5", 3),
        ("100", 2),
        ("1.5", 3),
    ],
)
def test_number_size_follows_dynamodb(text: str, size: int) -> None:
    assert number_size(text) == size


def test_item_size_counts_names_and_values_in_utf8() -> None:
    item: dict[str, dict[str, Any]] = {
        "pk": {"S": "ké"},
        "value": {"B": b"\x00" * 10},
        "n": {"N": "12"},
    }
    assert item_size(item) == (2 + 3) + (5 + 10) + (1 + 2)


def test_item_of_exactly_409600_bytes_passes_and_one_more_fails() -> None:
    base = {"pk": {"S": "k"}, "value": {"S": ""}}
    room = MAX_ITEM_BYTES - item_size(base)
    check_item_size({"pk": {"S": "k"}, "value": {"S": "x" * room}}, "set", "t", "k")
    with pytest.raises(ValueTooLargeError, match="409,601 bytes") as info:
        check_item_size({"pk": {"S": "k"}, "value": {"S": "x" * (room + 1)}}, "set", "t", "k")
    assert (info.value.size, info.value.limit) == (MAX_ITEM_BYTES + 1, MAX_ITEM_BYTES)


def test_lone_surrogates_are_a_validation_error() -> None:
    with pytest.raises(KVValidationError, match="surrogate"):
        check_item_size({"pk": {"S": "k"}, "value": {"S": "\ud800"}}, "set", "t", "k")
    with pytest.raises(KVValidationError, match="surrogate"):
        encode_value("\ud800" * 5000, 100, "set")


def test_values_encode_by_type() -> None:
    assert encode_value("a", 100, "set") == ({"S": "a"}, None)
    assert encode_value(b"a", 100, "set") == ({"B": b"a"}, None)
    assert encode_value(bytearray(b"a"), 100, "set") == ({"B": b"a"}, None)
    assert encode_value(memoryview(b"a"), None, "set") == ({"B": b"a"}, None)

    class Text(str):
        pass

    assert encode_value(Text("a"), 100, "set") == ({"S": "a"}, None)
    with pytest.raises(TypeError, match="not int"):
        encode_value(1, 100, "set")


def test_large_compressible_values_are_compressed_and_flagged() -> None:
    attr, flag = encode_value("ab" * 10_000, 100, "set")
    assert flag == "s" and zlib.decompress(attr["B"]) == b"ab" * 10_000
    attr, flag = encode_value(b"\x00" * 10_000, 100, "set")
    assert flag == "b"
    assert decode_value({"value": attr, "z": {"S": "b"}}, "value") == b"\x00" * 10_000


def test_incompressible_or_disabled_stays_plain() -> None:
    import os

    noise = os.urandom(5000)
    assert encode_value(noise, 100, "set") == ({"B": noise}, None)
    assert encode_value("x" * 5000, None, "set") == ({"S": "x" * 5000}, None)
    text = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(3000))
    attr, flag = encode_value(text, 100, "set")
    assert decode_value({"value": attr, **({"z": {"S": flag}} if flag else {})}, "value") == text


def test_decode_reads_every_stored_shape() -> None:
    assert decode_value({"value": {"S": "a"}}, "value") == "a"
    assert decode_value({"value": {"B": b"a"}}, "value") == b"a"
    assert decode_value({"value": {"N": "42"}}, "value") == 42
    packed = zlib.compress("zoë".encode())
    assert decode_value({"value": {"B": packed}, "z": {"S": "s"}}, "value") == "zoë"


def test_build_item_checks_size_on_what_is_stored() -> None:
    config = KVConfig(table="t")
    item = build_item(config, "k", "x" * 1_000_000, 123, 7, "set", "k")
    assert item["z"] == {"S": "s"} and item["expires_at"] == {"N": "123"}
    with pytest.raises(ValueTooLargeError):
        build_item(config.replace(compress_threshold=None), "k", "x" * 500_000, None, 7, "set", "k")


def test_expiry_rounds_up_and_accepts_timedelta() -> None:
    assert expiry_of(None, "set") is None
    assert expiry_of(1, "set", now=100.2) == 102
    assert expiry_of(1.5, "set", now=100.0) == 102
    assert expiry_of(timedelta(minutes=1), "set", now=100.0) == 160


@pytest.mark.parametrize("bad", [0, -5, math.nan, math.inf, timedelta(seconds=-1), 10**10])
def test_bad_ttls(bad: Any) -> None:
    with pytest.raises(KVValidationError, match="ttl"):
        expiry_of(bad, "set")


def test_ttl_types() -> None:
    with pytest.raises(TypeError, match="ttl"):
        expiry_of("5", "set")
    with pytest.raises(TypeError, match="ttl"):
        expiry_of(True, "set")


def test_is_expired() -> None:
    assert not is_expired({"v": {"S": "a"}}, "exp", 100.0)
    assert is_expired({"exp": {"N": "100"}}, "exp", 100.0)
    assert not is_expired({"exp": {"N": "101"}}, "exp", 100.0)


def test_check_delta() -> None:
    assert check_delta(-3, "incr") == -3
    with pytest.raises(TypeError):
        check_delta(True, "incr")
    with pytest.raises(KVValidationError, match="38 digits"):
        check_delta(10**38, "incr")


def test_json_helpers() -> None:
    assert to_json({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    assert from_json('{"a":[1,"é"]}') == {"a": [1, "é"]}
    assert from_json(b"[1]") == [1]
    with pytest.raises(ValueError, match="JSON"):
        to_json(float("inf"))
    with pytest.raises(ValueError, match="property name"):
        from_json("{not json")
