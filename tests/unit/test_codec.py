from __future__ import annotations

import math
import os
import random
import warnings
import zlib
from datetime import timedelta
from typing import Any

import pytest

from aiodynkv import (
    CorruptItemError,
    KVConfig,
    KVValidationError,
    ValueTooLargeError,
    from_json,
    to_json,
)
from aiodynkv._codec import (
    MAX_ITEM_BYTES,
    build_item,
    check_item_size,
    decode_many,
    decode_value,
    encode_value,
    encoded_value,
    expiry_ms_of,
    is_expired,
    item_room,
    item_size,
    new_token,
    new_version,
    new_versions,
    number_size,
    remaining_seconds,
    version_of,
    was_live,
    written_by,
)
from aiodynkv._keys import check_delta, pair_of, ttl_seconds

CONFIG = KVConfig(table="ttt")


def _build(
    config: KVConfig,
    stored: str,
    value: object,
    expires_ms: int | None,
    version: int,
    token: str,
    operation: str,
    key: str,
    room: int | None = None,
) -> dict[str, Any]:
    """The item of a plain value: encoded (compressed), then built and size-checked."""
    attr, record = encoded_value(config, value, operation, key)
    return build_item(
        config, stored, attr, record, expires_ms, version, token, operation, key, room=room
    )


LIMIT = CONFIG.max_value_bytes


def decode(item: dict[str, Any], config: KVConfig = CONFIG) -> Any:
    return decode_value(item, config)


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
        encode_value("\ud800", 100, LIMIT, "set")  # short text too: every text is checked
    with pytest.raises(KVValidationError, match="surrogate"):
        encode_value("\ud800" * 5000, 100, LIMIT, "set")


def test_values_encode_by_type() -> None:
    assert encode_value("a", 100, LIMIT, "set") == ({"S": "a"}, None)
    assert encode_value(b"a", 100, LIMIT, "set") == ({"B": b"a"}, None)
    assert encode_value(bytearray(b"a"), 100, LIMIT, "set") == ({"B": b"a"}, None)
    assert encode_value(memoryview(b"a"), None, LIMIT, "set") == ({"B": b"a"}, None)

    class Text(str):
        pass

    assert encode_value(Text("a"), 100, LIMIT, "set") == ({"S": "a"}, None)
    with pytest.raises(TypeError, match="not int"):
        encode_value(1, 100, LIMIT, "set")


def test_large_compressible_values_are_compressed_and_flagged() -> None:
    attr, flag = encode_value("ab" * 10_000, 100, LIMIT, "set")
    assert flag == "s" and zlib.decompress(attr["B"]) == b"ab" * 10_000
    attr, flag = encode_value(b"\x00" * 10_000, 100, LIMIT, "set")
    assert flag == "b"
    assert decode({"value": attr, "z": {"S": "b"}}) == b"\x00" * 10_000


def test_incompressible_or_disabled_stays_plain() -> None:
    import os

    noise = os.urandom(5000)
    assert encode_value(noise, 100, LIMIT, "set") == ({"B": noise}, None)
    assert encode_value("x" * 5000, None, LIMIT, "set") == ({"S": "x" * 5000}, None)
    text = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(3000))
    attr, flag = encode_value(text, 100, LIMIT, "set")
    assert decode({"value": attr, **({"z": {"S": flag}} if flag else {})}) == text


def test_decode_reads_every_stored_shape() -> None:
    assert decode({"value": {"S": "a"}}) == "a"
    assert decode({"value": {"B": b"a"}}) == b"a"
    assert decode({"value": {"N": "42"}}) == 42
    packed = zlib.compress("zoë".encode())
    assert decode({"value": {"B": packed}, "z": {"S": "s"}}) == "zoë"


# Items aiodynkv never writes: each must be a CorruptItemError, never KeyError/zlib.error.
CORRUPT: dict[str, dict[str, Any]] = {
    "no value attribute": {"pk": {"S": "k"}},
    "BOOL value": {"value": {"BOOL": True}},
    "NULL value": {"value": {"NULL": True}},
    "map value": {"value": {"M": {"a": {"S": "b"}}}},
    "list value": {"value": {"L": [{"S": "b"}]}},
    "string set": {"value": {"SS": ["a", "b"]}},
    "fractional number": {"value": {"N": "1.5"}},
    "non-numeric number": {"value": {"N": "abc"}},
    "flag on text": {"value": {"S": "abc"}, "z": {"S": "s"}},
    "flag on non-zlib": {"value": {"B": b"not zlib at all"}, "z": {"S": "b"}},
    "unknown flag": {"value": {"B": zlib.compress(b"x")}, "z": {"S": "q"}},
    "flag of wrong type": {"value": {"B": zlib.compress(b"x")}, "z": {"N": "1"}},
    "truncated stream": {"value": {"B": zlib.compress(b"x" * 1000)[:-6]}, "z": {"S": "b"}},
    "bad utf-8 text": {"value": {"B": zlib.compress(b"\xff\xfe")}, "z": {"S": "s"}},
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_foreign_items_are_corrupt_not_key_errors(name: str) -> None:
    with pytest.raises(CorruptItemError) as info:
        decode(CORRUPT[name])
    assert not isinstance(info.value, KeyError)
    assert info.value.reason


@pytest.mark.parametrize(
    "attr", [{"N": "soon"}, {"S": "123"}, {"N": "NaN"}, {"N": "Infinity"}, "x"]
)
def test_non_numeric_expiry_or_version_is_corrupt(attr: Any) -> None:
    with pytest.raises(CorruptItemError, match="expires_at"):
        is_expired({"expires_at": attr}, CONFIG, 100.0)
    with pytest.raises(CorruptItemError, match="ver"):
        version_of({"ver": attr}, CONFIG)
    with pytest.raises(CorruptItemError, match="xm"):
        remaining_seconds({"xm": attr}, CONFIG, 100.0)


def test_a_decompression_bomb_stops_at_max_value_bytes() -> None:
    import tracemalloc

    bomb = zlib.compress(b"\x00" * (64 * 1024 * 1024), 9)  # 64 MiB in about 64 KB
    small = CONFIG.replace(max_value_bytes=1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptItemError, match="max_value_bytes"):
            decode({"value": {"B": bomb}, "z": {"S": "b"}}, small)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024  # bounded by the limit, not by the 64 MiB it would inflate to


def test_writes_refuse_values_over_max_value_bytes() -> None:
    config = CONFIG.replace(max_value_bytes=1000)
    _build(config, "k", "x" * 1000, None, 7, "tok", "set", "k")
    with pytest.raises(ValueTooLargeError, match="max_value_bytes") as info:
        _build(config, "k", "x" * 1001, None, 7, "tok", "set", "k")
    assert info.value.size == 1001 and info.value.limit == 1000
    assert "xxxx" not in str(info.value)


def test_build_item_checks_size_on_what_is_stored() -> None:
    item = _build(CONFIG, "k", "x" * 1_000_000, 123_400, 7, "tok", "set", "k")
    assert item["z"] == {"S": "s"}
    assert item["expires_at"] == {"N": "124"} and item["xm"] == {"N": "123400"}
    assert item["tk"] == {"S": "tok"}
    with pytest.raises(ValueTooLargeError):
        _build(
            CONFIG.replace(compress_threshold=None), "k", "x" * 500_000, None, 7, "t", "set", "k"
        )


def test_expiry_is_exact_to_the_millisecond_and_never_longer_than_asked() -> None:
    assert expiry_ms_of(None, 100.0) is None
    assert expiry_ms_of(1.0, 100.2) == 101_200
    assert expiry_ms_of(1.5, 100.0) == 101_500
    at = 1_700_000_000.123456
    item = {"xm": {"N": str(expiry_ms_of(1.0, at))}, "expires_at": {"N": "1700000002"}}
    left = remaining_seconds(item, CONFIG, at)
    assert left is not None and 0.999 <= left <= 1.0
    assert not is_expired(item, CONFIG, at + 0.998)
    assert is_expired(item, CONFIG, at + 1.0)


def test_items_without_exact_expiry_use_the_ttl_attribute() -> None:
    assert not is_expired({"value": {"S": "a"}}, CONFIG, 100.0)
    assert is_expired({"expires_at": {"N": "100"}}, CONFIG, 100.0)
    assert not is_expired({"expires_at": {"N": "101"}}, CONFIG, 100.0)


def test_ttl_arguments() -> None:
    assert ttl_seconds(None, "set") is None
    assert ttl_seconds(timedelta(minutes=1), "set") == 60.0
    with pytest.raises(KVValidationError, match="persist"):
        ttl_seconds(None, "expire", required=True)


@pytest.mark.parametrize("bad", [0, -5, math.nan, math.inf, timedelta(seconds=-1), 10**10])
def test_bad_ttls(bad: Any) -> None:
    with pytest.raises(KVValidationError, match="ttl"):
        ttl_seconds(bad, "set")


def test_ttl_types() -> None:
    with pytest.raises(TypeError, match="ttl"):
        ttl_seconds("5", "set")
    with pytest.raises(TypeError, match="ttl"):
        ttl_seconds(True, "set")


def test_versions_are_unique_without_trusting_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.0)  # a frozen clock
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000 * 10**9)
    starts = {new_version() for _ in range(10_000)}
    assert len(starts) == 10_000
    assert all(0 < v < 2**63 for v in starts)


def test_versions_drawn_in_blocks_are_like_single_ones() -> None:
    supply = new_versions()
    starts = {next(supply) for _ in range(10_000)}
    assert len(starts) == 10_000
    assert all(2**40 <= v < 2**63 for v in starts)
    assert max(starts) > 2**62  # the top bit of the 63 is drawn too


def test_versions_do_not_follow_a_seed_given_to_random() -> None:
    random.seed(7)
    first = new_version()
    random.seed(7)
    assert new_version() != first


def test_tokens_are_unique_in_a_process_and_in_a_forked_child() -> None:
    tokens = {new_token() for _ in range(10_000)}
    assert len(tokens) == 10_000
    assert {len(token) for token in tokens} == {16}  # the item's size does not vary
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    read, write = os.pipe()
    with warnings.catch_warnings():  # 3.12+: fork of a process with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: its next token and version, to the parent
        os.write(write, f"{new_token()} {new_version()}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        token, version = pipe.read().split()
    os.waitpid(pid, 0)
    assert token not in tokens
    assert token != new_token()
    assert int(version) != new_version()


@pytest.mark.parametrize("value_kind", ["S", "B"])
@pytest.mark.parametrize("given_room", [False, True])
def test_build_item_is_exact_at_the_400_kb_limit(value_kind: str, given_room: bool) -> None:
    config = CONFIG.replace(compress_threshold=None, max_value_bytes=MAX_ITEM_BYTES)
    room_given = item_room(config, "tok") if given_room else None
    empty = _build(config, "k", "", None, 7, "tok", "set", "k")
    room = MAX_ITEM_BYTES - item_size({**empty, config.version_attribute: {"N": "9" * 19}})

    def value(size: int) -> str | bytes:
        return "x" * size if value_kind == "S" else b"x" * size

    _build(config, "k", value(room), None, 7, "tok", "set", "k", room=room_given)
    with pytest.raises(ValueTooLargeError, match=f"{MAX_ITEM_BYTES + 1:,} bytes"):
        _build(config, "k", value(room + 1), None, 7, "tok", "set", "k", room=room_given)


def test_build_item_refuses_a_short_value_with_a_lone_surrogate() -> None:
    with pytest.raises(KVValidationError, match="surrogate"):
        _build(CONFIG, "k", "a\ud800", None, 7, "tok", "set_many", "k", room=10**6)


def test_decode_many_reads_plain_and_other_items_alike() -> None:
    items: dict[str, dict[str, Any]] = {
        "plain": {"pk": {"S": "plain"}, "value": {"S": "v"}},
        "bytes": {"pk": {"S": "bytes"}, "value": {"B": b"b"}},
        "live": {"pk": {"S": "live"}, "value": {"S": "l"}, "xm": {"N": "2000000"}},
        "expired": {"pk": {"S": "expired"}, "value": {"S": "e"}, "xm": {"N": "1000"}},
        "two": {"pk": {"S": "two"}, "value": {"S": "a", "B": b"b"}},
        "none": {"pk": {"S": "none"}},
        "flag": {"pk": {"S": "flag"}, "value": {"S": "f"}, "z": {"S": "s"}},
    }
    found, corrupt = decode_many(items.items(), CONFIG, 1500.0)
    assert found == {"plain": "v", "bytes": b"b", "live": "l"}
    assert sorted(corrupt) == ["flag", "none", "two"]


def test_check_delta() -> None:
    assert check_delta(-3, "incr") == -3
    with pytest.raises(TypeError, match="delta"):
        check_delta(True, "incr")
    with pytest.raises(KVValidationError, match="38 digits"):
        check_delta(10**38, "incr")


def test_set_many_pair_errors_never_quote_the_value() -> None:
    with pytest.raises(TypeError) as info:
        pair_of(["secret-key", "secret-value", "x"])
    assert "secret" not in str(info.value)


def test_json_helpers() -> None:
    assert to_json({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    assert from_json('{"a":[1,"é"]}') == {"a": [1, "é"]}
    assert from_json(b"[1]") == [1]
    with pytest.raises(ValueError, match="JSON"):
        to_json(float("inf"))
    with pytest.raises(ValueError, match="property name"):
        from_json("{not json")


def test_written_by_recognises_only_the_call_whose_token_the_item_holds() -> None:
    item = {"pk": {"S": "k"}, "tk": {"S": "mine"}}
    assert written_by(item, "mine")
    assert not written_by(item, "theirs")
    assert not written_by({"pk": {"S": "k"}}, "mine")
    assert not written_by(None, "mine")


def test_was_live_tells_expired_from_unexpired_and_counts_an_unreadable_expiry_live() -> None:
    assert was_live({"pk": {"S": "k"}}, CONFIG, 100.0)
    assert was_live({"pk": {"S": "k"}, "xm": {"N": "200000"}}, CONFIG, 100.0)
    assert not was_live({"pk": {"S": "k"}, "xm": {"N": "50000"}}, CONFIG, 100.0)
    assert was_live({"pk": {"S": "k"}, "xm": {"S": "soon"}}, CONFIG, 100.0)
