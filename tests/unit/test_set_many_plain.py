"""`set_many`'s batch check in a few passes: the same values, or the pair-by-pair check."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiodynkv import InvalidKeyError, KVConfig, KVValidationError, ValueTooLargeError
from aiodynkv._codec import AttributeValue, check_fits, encoded_value, item_room
from aiodynkv._keys import SEPARATOR, KeyCodec
from aiodynkv._store import _plain_puts
from aiodynkv.testing import InMemoryKV

TOKEN = "0123456789abcdef"
CODECS = [KeyCodec(None), KeyCodec("svc"), KeyCodec("\u00fcml\u00e4ut")]
CONFIGS = [
    KVConfig(table="tbl"),
    KVConfig(table="tbl", compress_threshold=50, max_value_bytes=80),
    KVConfig(table="tbl", compress_threshold=None, max_value_bytes=300_000),
]


def _pair_by_pair(
    codec: KeyCodec, items: dict[Any, Any], config: KVConfig
) -> tuple[dict[str, AttributeValue], dict[str, Any], dict[str, str]] | type[Exception]:
    """What `set_many`'s pair-by-pair check makes of `items`, or the error it raises."""
    room = item_room(config, TOKEN)
    values: dict[str, AttributeValue] = {}
    users: dict[str, Any] = {}
    records: dict[str, str] = {}
    try:
        for key, value in items.items():
            stored = codec.encode(key, "set_many", config.table)
            attr, record = encoded_value(config, value, "set_many", key)
            check_fits(config, stored, attr, record, None, TOKEN, "set_many", key, room)
            values[stored] = attr
            if record is not None:
                records[stored] = record
            users[stored] = (key, value)
    except (KVValidationError, TypeError) as exc:
        return type(exc)
    return values, users, records


_KEYS = st.one_of(
    st.text(st.characters(codec="ascii"), max_size=12),
    st.text(st.characters(codec=None), max_size=6),
    st.sampled_from(["", f"a{SEPARATOR}b", "k" * 2047, "k" * 2048, "\ud800"]),
)
_VALUES = st.one_of(
    st.text(st.characters(codec="ascii"), max_size=90),
    st.text(st.characters(codec=None), max_size=6),
    st.sampled_from(["x" * 51, "x" * 81, "\udfff", b"bytes", 7, None]),
)


@given(
    items=st.dictionaries(_KEYS, _VALUES, max_size=30),
    codec=st.sampled_from(CODECS),
    config=st.sampled_from(CONFIGS),
)
def test_a_batch_checked_in_passes_is_the_one_checked_pair_by_pair(
    items: dict[Any, Any], codec: KeyCodec, config: KVConfig
) -> None:
    plain = _plain_puts(codec, items, config, item_room(config, TOKEN))
    if plain is None:
        return  # checked pair by pair, as always
    wanted = _pair_by_pair(codec, items, config)
    assert not isinstance(wanted, type), f"{wanted} not raised"
    values, users, records = wanted
    assert plain == (values, users)
    assert list(plain[0]) == list(values)  # in the same order
    assert not records


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: str(c.namespace))
def test_a_common_batch_is_checked_in_passes(codec: KeyCodec) -> None:
    items = {f"key:{i}": f"value {i}" * 10 for i in range(1000)}
    plain = _plain_puts(codec, items, CONFIGS[0], item_room(CONFIGS[0], TOKEN))
    assert plain is not None
    assert plain == _pair_by_pair(codec, items, CONFIGS[0])[:2]  # type: ignore[index]


@pytest.mark.parametrize(
    ("odd", "why"),
    [
        ({"": "v"}, "empty key"),
        ({f"a{SEPARATOR}b": "v"}, "separator"),
        ({"k" * 2049: "v"}, "key too long"),
        ({"caf\u00e9": "v"}, "non-ASCII key"),
        ({7: "v"}, "key not a str"),
        ({"k": "caf\u00e9"}, "non-ASCII value"),
        ({"k": b"v"}, "bytes value"),
        ({"k": None}, "value not str or bytes"),
        ({"k": "x" * 51}, "value to compress"),
        ({"k": "x" * 81}, "value too large"),
    ],
)
def test_any_other_batch_is_left_to_the_pair_by_pair_check(odd: dict[Any, Any], why: str) -> None:
    config = CONFIGS[1]
    items = {**{f"k{i}": "v" for i in range(50)}, **odd}
    assert _plain_puts(KeyCodec(None), items, config, item_room(config, TOKEN)) is None, why


def test_a_value_that_may_not_fit_beside_its_key_is_left_to_the_exact_check() -> None:
    config = KVConfig(table="tbl", compress_threshold=None, max_value_bytes=409_600)
    room = item_room(config, TOKEN)
    items = {"k" * 2048: "v", "short": "x" * (room - 4 * 2048 + 1)}
    assert _plain_puts(KeyCodec(None), items, config, room) is None
    assert _pair_by_pair(KeyCodec(None), items, config) != ValueTooLargeError  # it fits


@pytest.mark.parametrize(
    ("odd", "error"),
    [
        ({"": "v"}, InvalidKeyError),
        ({f"a{SEPARATOR}b": "v"}, InvalidKeyError),
        ({"k" * 2049: "v"}, InvalidKeyError),
        ({"k": None}, TypeError),
        ({"k": "\udfff"}, KVValidationError),
        ({"k": "x" * 500_000}, ValueTooLargeError),
    ],
)
async def test_one_bad_pair_among_many_fails_the_call_before_anything_is_written(
    odd: dict[Any, Any], error: type[Exception]
) -> None:
    async with InMemoryKV(KVConfig(table="memory", compress_threshold=None)) as kv:
        with pytest.raises(error):
            await kv.set_many({**{f"k{i}": "v" for i in range(100)}, **odd})
        assert await kv.get_many([f"k{i}" for i in range(100)]) == {}
        await kv.set_many({f"k{i}": f"v{i}" for i in range(100)})
        assert await kv.get_many([f"k{i}" for i in range(100)]) == {
            f"k{i}": f"v{i}" for i in range(100)
        }
