from __future__ import annotations

import pytest

from aiodynkv import InvalidKeyError
from aiodynkv._keys import SEPARATOR, KeyCodec, check_namespace


def test_root_keys_are_stored_as_given() -> None:
    codec = KeyCodec(None)
    assert codec.encode("user:1", "get", "t") == "user:1"
    assert codec.decode("user:1") == "user:1"
    assert codec.decode("ns" + SEPARATOR + "k") is None


def test_namespaced_keys_fold_the_namespace_unambiguously() -> None:
    codec = KeyCodec("svc")
    stored = codec.encode("k", "get", "t")
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
        assert codec.encode(key, "set", "t") == key
    else:
        with pytest.raises(InvalidKeyError, match="2049 bytes"):
            codec.encode(key, "set", "t")


def test_invalid_keys_are_named_in_the_error() -> None:
    codec = KeyCodec(None)
    with pytest.raises(InvalidKeyError, match="must be a str, not int"):
        codec.encode(3, "get", "t")
    with pytest.raises(InvalidKeyError, match="must not be empty"):
        codec.encode("", "get", "t")
    with pytest.raises(InvalidKeyError, match="surrogate"):
        codec.encode("\udc80", "get", "t")
    with pytest.raises(InvalidKeyError, match="U\\+001F"):
        codec.encode("a\x1fb", "get", "t")


def test_str_subclasses_are_stored_as_plain_text() -> None:
    class Key(str):
        pass

    stored = KeyCodec(None).encode(Key("k"), "get", "t")
    assert type(stored) is str


def test_check_namespace() -> None:
    assert check_namespace("svc-a") == "svc-a"
    with pytest.raises(TypeError):
        check_namespace(1)
    with pytest.raises(ValueError, match=r"surrogate|UTF-8"):
        check_namespace("\ud800")
