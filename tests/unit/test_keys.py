from __future__ import annotations

import pytest

from aiodynkv import InvalidKeyError
from aiodynkv._keys import MAX_KEY_BYTES, SEPARATOR, KeyCodec, check_namespace

TABLE = "kvt"


def test_root_keys_are_stored_as_given() -> None:
    codec = KeyCodec(None)
    assert codec.encode("user:1", "get", TABLE) == "user:1"
    assert codec.decode("user:1") == "user:1"
    assert codec.decode("ns" + SEPARATOR + "k") is None


def test_namespaced_keys_fold_the_namespace_unambiguously() -> None:
    codec = KeyCodec("svc")
    stored = codec.encode("k", "get", TABLE)
    assert stored == "svc\x1fk"
    assert codec.decode(stored) == "k"
    assert codec.decode("other\x1fk") is None
    assert KeyCodec("sv").decode(stored) is None


@pytest.mark.parametrize(
    ("key", "fits"),
    [
        ("x" * 2047, True),
        ("x" * 2048, True),
        ("x" * 2049, False),
        ("é" * 1024, True),
        ("é" * 1024 + "x", False),
    ],
)
def test_key_byte_limit_boundaries(key: str, fits: bool) -> None:
    codec = KeyCodec(None)
    if fits:
        assert codec.encode(key, "set", TABLE) == key
    else:
        with pytest.raises(InvalidKeyError, match="2049 bytes"):
            codec.encode(key, "set", TABLE)


def test_invalid_keys_are_named_in_the_error() -> None:
    codec = KeyCodec(None)
    with pytest.raises(InvalidKeyError, match="must be a str, not int"):
        codec.encode(3, "get", TABLE)
    with pytest.raises(InvalidKeyError, match="must not be empty"):
        codec.encode("", "get", TABLE)
    with pytest.raises(InvalidKeyError, match="surrogate"):
        codec.encode("\udc80", "get", TABLE)
    with pytest.raises(InvalidKeyError, match="U\\+001F"):
        codec.encode("a\x1fb", "get", TABLE)


def test_str_subclasses_are_stored_as_plain_text() -> None:
    class Key(str):
        pass

    stored = KeyCodec(None).encode(Key("k"), "get", TABLE)
    assert type(stored) is str


def test_check_namespace() -> None:
    assert check_namespace("svc-a") == "svc-a"
    assert check_namespace("c" * 1500) == "c" * 1500  # only the key limit bounds a namespace
    longest = "n" * (MAX_KEY_BYTES - 2)  # the separator and a one-byte key still fit
    assert check_namespace(longest) == longest
    with pytest.raises(TypeError):
        check_namespace(1)
    with pytest.raises(ValueError, match=r"surrogate|UTF-8"):
        check_namespace("\ud800")
    with pytest.raises(ValueError, match="empty"):
        check_namespace("")
    with pytest.raises(ValueError, match="2047 bytes") as info:
        check_namespace(longest + "n")
    assert longest not in str(info.value)
    with pytest.raises(ValueError, match="2048 bytes"):  # 1,024 two-byte characters
        check_namespace("é" * 1024)
    with pytest.raises(ValueError, match="U\\+001F"):
        check_namespace("a" + SEPARATOR)


def test_namespace_errors_cut_long_names() -> None:
    with pytest.raises(ValueError, match=r"5000 characters") as info:
        check_namespace("\ud800" + "x" * 4999)
    assert len(str(info.value)) < 200


def test_key_size_error_cuts_a_long_namespace() -> None:
    codec = KeyCodec("c" * 1500)
    codec.encode("k" * 547, "set", TABLE)
    with pytest.raises(InvalidKeyError, match="2049 bytes") as info:
        codec.encode("k" * 548, "set", TABLE)
    message = str(info.value)
    assert "c" * 65 not in message
    assert "1500 characters" in message


def test_the_namespace_counts_against_the_key_limit() -> None:
    codec = KeyCodec("svc")  # 4 bytes with the separator
    assert codec.prefix == "svc" + SEPARATOR
    assert codec.encode("x" * (MAX_KEY_BYTES - 4), "set", TABLE) == "svc\x1f" + "x" * 2044
    with pytest.raises(InvalidKeyError, match="2049 bytes with namespace 'svc'"):
        codec.encode("x" * (MAX_KEY_BYTES - 3), "set", TABLE)


def test_root_prefix_is_empty_and_a_root_codec_sees_no_namespaced_keys() -> None:
    codec = KeyCodec(None)
    assert codec.prefix == ""
    assert codec.decode("a" + SEPARATOR) is None


def test_key_errors_carry_context_and_keep_the_key_off_the_message() -> None:
    secret = "session:s3cr3t"
    with pytest.raises(InvalidKeyError) as info:
        KeyCodec(None).encode(secret + SEPARATOR, "get", TABLE)
    error = info.value
    assert (error.operation, error.table, error.key) == ("get", TABLE, secret + SEPARATOR)
    assert secret not in str(error)
    assert isinstance(error, ValueError)
    error.show_key = True
    assert secret in str(error)


def test_too_long_key_error_keeps_the_key_off_the_message() -> None:
    key = "secret" + "x" * MAX_KEY_BYTES
    with pytest.raises(InvalidKeyError) as info:
        KeyCodec(None).encode(key, "set", TABLE)
    assert "secret" not in str(info.value)
    assert info.value.key is not None and key.startswith(info.value.key)


def test_a_key_that_is_not_utf8_stays_off_the_message() -> None:
    key = "session:s3cr3t\udc80"
    with pytest.raises(InvalidKeyError) as info:
        KeyCodec(None).encode(key, "get", TABLE)
    assert "s3cr3t" not in str(info.value)
    assert info.value.key == key


def _one_by_one(codec: KeyCodec, keys: list[object]) -> dict[str, object] | str:
    """What `encode_many` must give: `encode` key by key, or the first key's error."""
    try:
        return {codec.encode(key, "get_many", TABLE): key for key in keys}
    except InvalidKeyError as exc:
        return f"{exc} {exc.key!r}"


class _Key(str):
    pass


@pytest.mark.parametrize("namespace", [None, "svc", "é" * 1000])
@pytest.mark.parametrize(
    "keys",
    [
        [],
        ["a", "b", "a"],
        ["x" * 2048, "y"],
        ["ok", "x" * 2049],
        ["x" * 1030, "y" * 1020],
        ["ok", ""],
        ["", "x" * 3000],
        ["ok", "a\x1fb", ""],
        ["ok", "é" * 1024],
        ["ok", "é" * 1024 + "x"],
        ["ok", "\udc80"],
        ["ok", 3, ""],
        ["ok", b"bytes"],
        ["ok", _Key("sub"), "x"],
        ["ok", None],
    ],
)
def test_a_batch_is_encoded_as_key_by_key(namespace: str | None, keys: list[object]) -> None:
    codec = KeyCodec(namespace)
    expected = _one_by_one(codec, keys)
    try:
        got: dict[str, str] | str = codec.encode_many(keys, "get_many", TABLE)  # type: ignore[arg-type]
    except InvalidKeyError as exc:
        got = f"{exc} {exc.key!r}"
    assert got == expected
    if isinstance(got, dict):
        assert list(got) == list(expected)
        assert all(type(stored) is str for stored in got)


def test_a_batch_must_not_be_a_single_key() -> None:
    codec = KeyCodec(None)
    for single in ("key", b"key"):
        with pytest.raises(TypeError, match="iterable of str"):
            codec.encode_many(single, "get_many", TABLE)  # type: ignore[arg-type]
    assert codec.encode_many(iter(["a", "b"]), "get_many", TABLE) == {"a": "a", "b": "b"}
