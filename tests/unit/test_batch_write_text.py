"""BatchWriteItem rendered as text: the same bytes as the dict's encoding, and who gets which."""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiodynkv import KVConfig
from aiodynkv import _requests as requests
from aiodynkv._batch import write_items
from aiodynkv._codec import AttributeValue, assemble_item
from aiodynkv._errors import ServerError
from aiodynkv._keys import SEPARATOR
from aiodynkv._requests import PutTexts
from aiodynkv._telemetry import _request_attributes
from aiodynkv._transport import WireError, _wire
from aiodynkv.testing import set_retry_waits
from tests.awkward import AWKWARD

CONFIGS = [
    KVConfig(table="kvt"),
    KVConfig(
        table="Tbl.with-dots_9",
        partition_key="p\u00e9k",
        value_attribute="v\u00e4l",
        version_attribute="r\u00e9v",
        ttl_attribute="exp\u00efry",
    ),
    KVConfig(table="ttt", partition_key='we"ird\\key', value_attribute="va\x01l"),
]
BLOBS = [b"", b"\x00\xff" * 3, bytes(range(256)), b"x" * 1000, b"\xfb\xff"]
#: (value attribute, record): text and binary values, with and without a record.
VALUES: list[tuple[AttributeValue, str | None]] = [
    *(({"S": text}, None) for text in AWKWARD),
    *(({"B": blob}, None) for blob in BLOBS),
    ({"B": b"\x78\x9c\x03\x00"}, "s"),
    ({"B": b"\x01\x02"}, "b"),
    ({"S": "payload"}, 'e1:{"k":"\\u00e9"}'),
    ({"B": b"sealed"}, "\u00fcber\x00record"),
]
TOKEN = "tok-en_0123456789"


def _dict_body(
    config: KVConfig,
    parts: Sequence[tuple[str, AttributeValue, str | None, int]],
    token: str,
    expires_ms: int | None,
) -> bytes:
    """What the lean transport sends for the `batch_write` dict of the same items."""
    chunk = [
        requests.put_request(
            assemble_item(config, stored, attr, record, expires_ms, version, token)
        )
        for stored, attr, record, version in parts
    ]
    return _wire.dumps(requests.batch_write(config, chunk)).encode()


def _text_request(
    config: KVConfig,
    parts: Sequence[tuple[str, AttributeValue, str | None, int]],
    token: str,
    expires_ms: int | None,
) -> requests.BatchWriteText:
    render = requests.PutTexts(config, token, expires_ms).render
    return requests.BatchWriteText(config, [render(*part) for part in parts])


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.table)
@pytest.mark.parametrize("expires_ms", [None, 1_700_000_000_001, 1_999], ids=str)
@pytest.mark.parametrize("token", [TOKEN, 'odd"tok\\en\u00e9'], ids=["token", "odd-token"])
def test_text_is_byte_for_byte_the_encoded_dict(
    config: KVConfig, expires_ms: int | None, token: str
) -> None:
    parts = [
        (stored, attr, record, version)
        for stored, (attr, record), version in zip(
            AWKWARD * 2,
            VALUES + VALUES[::-1],
            [1, 2**40, 2**63 - 1, 9_999_999_999_999_999_999] * 6,
            strict=False,
        )
    ]
    request = _text_request(config, parts, token, expires_ms)
    assert _wire.body(request) == _dict_body(config, parts, token, expires_ms)
    assert request.text().isascii()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.table)
@pytest.mark.parametrize("expires_ms", [None, 1_700_000_000_001])
def test_a_chunk_rendered_at_once_is_each_item_rendered_alone(
    config: KVConfig, expires_ms: int | None
) -> None:
    texts = requests.PutTexts(config, TOKEN, expires_ms)
    stored = [f"{i}:{text}" for i, text in enumerate(AWKWARD * 2)]
    values = dict(zip(stored, [attr for attr, _ in VALUES + VALUES], strict=False))
    records = {pk: r for pk, (_, r) in zip(stored, VALUES + VALUES, strict=False) if r is not None}
    versions = iter(range(2**40, 2**40 + 1000))
    many = texts.render_many(stored, values, records, versions)
    assert many == [
        texts.render(pk, values[pk], records.get(pk), version)
        for pk, version in zip(stored, range(2**40, 2**40 + 1000), strict=False)
    ]
    assert next(versions) == 2**40 + len(stored)  # one version per item, none lost
    assert texts.render_many(stored[:3], values, {}, iter([7, 8, 9])) == [
        texts.render(pk, values[pk], None, v) for pk, v in zip(stored[:3], [7, 8, 9], strict=True)
    ]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.table)
def test_an_empty_or_single_chunk_is_the_encoded_dict(config: KVConfig) -> None:
    assert _wire.body(_text_request(config, [], TOKEN, None)) == _dict_body(config, [], TOKEN, None)
    one = [("k", {"S": "v"}, None, 7)]
    assert _wire.body(_text_request(config, one, TOKEN, 5000)) == _dict_body(
        config, one, TOKEN, 5000
    )


_ATTRS = st.one_of(
    st.builds(lambda t: {"S": t}, st.text(st.characters(codec=None), max_size=40)),
    st.builds(lambda b: {"B": b}, st.binary(max_size=40)),
)


@given(
    items=st.lists(
        st.tuples(
            st.text(st.characters(codec=None), min_size=1, max_size=40),
            _ATTRS,
            st.none() | st.text(st.characters(codec=None), max_size=20),
            st.integers(min_value=1, max_value=2**63 - 1),
        ),
        max_size=25,
    ),
    namespace=st.sampled_from(["", f"ns{SEPARATOR}", f"\u00fc{SEPARATOR}x{SEPARATOR}"]),
    expires_ms=st.none() | st.integers(min_value=0, max_value=2**45),
    token=st.text(st.characters(codec=None), min_size=1, max_size=20),
    config=st.sampled_from(CONFIGS),
)
def test_text_of_any_items_is_the_encoded_dict(
    items: list[tuple[str, AttributeValue, str | None, int]],
    namespace: str,
    expires_ms: int | None,
    token: str,
    config: KVConfig,
) -> None:
    parts = [(namespace + stored, attr, record, version) for stored, attr, record, version in items]
    request = _text_request(config, parts, token, expires_ms)
    assert _wire.body(request) == _dict_body(config, parts, token, expires_ms)
    # Read as a mapping it is the dict, binary values as bytes.
    chunk = [
        requests.put_request(assemble_item(config, pk, attr, record, expires_ms, version, token))
        for pk, attr, record, version in parts
    ]
    assert request == requests.batch_write(config, chunk)


def test_read_as_a_mapping_it_is_the_request_dict() -> None:
    config = CONFIGS[1]
    parts: list[tuple[str, AttributeValue, str | None, int]] = [
        ("a", {"S": "x\x00"}, None, 3),
        ("b\u00e9", {"B": b"\x00\xff"}, "b", 4),
    ]
    request = _text_request(config, parts, TOKEN, 1_234_567)
    wanted = requests.batch_write(
        config,
        [
            requests.put_request(assemble_item(config, pk, a, r, 1_234_567, v, TOKEN))
            for pk, a, r, v in parts
        ],
    )
    assert dict(request) == wanted
    assert request == wanted
    assert request["RequestItems"]["Tbl.with-dots_9"][1]["PutRequest"]["Item"]["v\u00e4l"] == {
        "B": b"\x00\xff"
    }
    assert request["RequestItems"] is request["RequestItems"]  # made once
    assert request.get("ReturnConsumedCapacity") == "TOTAL"
    assert "BatchWriteText({'RequestItems'" in repr(request)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.table)
def test_unprocessed_items_sent_again_as_dicts_or_as_the_kept_texts_are_the_same_bytes(
    config: KVConfig,
) -> None:
    """The server hands unprocessed items back as JSON; the lean transport parses them.

    Sending those dicts again, or the texts kept for their stored keys, is the same body.
    """
    parts = [
        (stored, attr, record, version)
        for stored, (attr, record), version in zip(
            AWKWARD, VALUES, range(2**40, 2**40 + 100), strict=False
        )
    ]
    sent = _text_request(config, parts, TOKEN, 1_700_000_000_500)
    back = [sent.texts[i] for i in (5, 0, 3)]
    reply = '{"UnprocessedItems":{' + _wire.dumps(config.table) + ":[" + ",".join(back) + "]}}"
    unprocessed = _wire.success_body(reply.encode())["UnprocessedItems"][config.table]
    as_dicts = _wire.body(requests.batch_write(config, unprocessed))
    as_texts = _wire.body(requests.BatchWriteText(config, back))
    assert as_dicts == as_texts


def _fake_core(
    accepts_text: bool | None, unprocessed_rounds: int, foreign: bool = False
) -> tuple[Any, list[Any]]:
    """A core whose transport says (or does not say) it takes text; the last item of a
    request comes back unprocessed for `unprocessed_rounds` requests (as a transport
    parses it: a dict), or an item the request never held (`foreign`)."""
    seen: list[Any] = []

    async def send(_op: Any, action: str, request: Any, _key: Any) -> Any:
        assert action == "BatchWriteItem"
        seen.append(request)
        entries = request["RequestItems"]["kvt"]
        if len(seen) <= unprocessed_rounds:
            left = entries[-1:]
            if foreign:
                left = [requests.put_request({"pk": {"S": "stranger"}, "v": {"S": "?"}})]
            reply = _wire.dumps({"UnprocessedItems": {"kvt": left}}).encode()
            return _wire.success_body(reply)
        return {"UnprocessedItems": {}}

    transport = types.SimpleNamespace()
    if accepts_text is not None:
        transport.accepts_text_requests = accepts_text
    core = types.SimpleNamespace(
        config=KVConfig(table="kvt"), send=send, abort=None, transport=transport
    )
    return core, seen


def _entries(
    config: KVConfig, count: int
) -> tuple[dict[str, Any], Callable[[list[str]], list[Any]]]:
    """PutRequests by stored key, and a maker of a chunk's (stored key, text) entries."""
    render = requests.PutTexts(config, TOKEN, None).render
    dicts: dict[str, Any] = {}
    texts: dict[str, str] = {}
    for i in range(count):
        pk, attr, version = f"k{i}", {"S": f"value {i}"}, 2**40 + i
        item = assemble_item(config, pk, attr, None, None, version, TOKEN)
        dicts[pk] = requests.put_request(item)
        texts[pk] = render(pk, attr, None, version)
    return dicts, lambda keys: [(pk, texts[pk]) for pk in keys]


@pytest.mark.parametrize(
    ("accepts_text", "kind"),
    [(True, requests.BatchWriteText), (False, dict), (None, dict)],
)
async def test_a_transport_that_takes_text_gets_it_the_others_get_the_dict(
    accepts_text: bool | None, kind: type
) -> None:
    core, seen = _fake_core(accepts_text, unprocessed_rounds=1)
    dicts, make = _entries(core.config, 30)
    with set_retry_waits(False):
        outcome = await write_items(core, None, dicts, make)  # type: ignore[arg-type]
    assert outcome.complete
    # Two chunks, one of which came back with an item unprocessed and was sent again.
    assert [type(r) for r in seen] == [kind, kind, kind]
    assert sorted(len(r["RequestItems"]["kvt"]) for r in seen) == [1, 5, 25]
    first, again, second = seen
    assert _wire.body(again) == _wire.body(requests.batch_write(core.config, [dicts["k24"]]))
    assert again["RequestItems"]["kvt"] == first["RequestItems"]["kvt"][-1:]  # the same item
    assert [_wire.body(r) for r in (first, second)] == [
        _wire.body(requests.batch_write(core.config, [dicts[f"k{i}"] for i in span]))
        for span in (range(25), range(25, 30))
    ]


async def test_without_texts_the_dicts_are_sent_even_to_a_text_transport() -> None:
    core, seen = _fake_core(True, unprocessed_rounds=0)
    dicts, _ = _entries(core.config, 3)
    await write_items(core, None, dicts)  # type: ignore[arg-type]
    assert [type(r) for r in seen] == [dict]


async def test_items_left_unprocessed_or_in_doubt_are_named_by_stored_key() -> None:
    """The first chunk keeps coming back with its last item unprocessed; the second
    meets 5xx replies, the first of which may have been applied."""
    seen: list[Any] = []

    async def send(_op: Any, _action: str, request: Any, _key: Any) -> Any:
        seen.append(request)
        entries = request["RequestItems"]["kvt"]
        if len(entries) == 5 or entries[0]["PutRequest"]["Item"]["pk"]["S"] == "k25":
            raise ServerError("InternalServerError") from WireError(
                "lost", timeout=False, in_doubt=True
            )
        reply = _wire.dumps({"UnprocessedItems": {"kvt": entries[-1:]}}).encode()
        return _wire.success_body(reply)

    core = types.SimpleNamespace(
        config=KVConfig(table="kvt", batch_deadline=0.3),
        send=send,
        abort=None,
        transport=types.SimpleNamespace(accepts_text_requests=True),
    )
    dicts, make = _entries(core.config, 30)
    # With the waits (0.05 s, then 0.1 s at most): two retries at least before the deadline.
    outcome = await write_items(core, None, dicts, make)  # type: ignore[arg-type]
    assert outcome.expired
    assert outcome.unprocessed == ["k24"]
    assert sorted(outcome.in_doubt) == [f"k{i}" for i in range(25, 30)]
    assert {type(r) for r in seen} == {requests.BatchWriteText}
    retries = [r for r in seen if len(r.texts) == 1]
    assert len(retries) >= 2
    assert {r.text() for r in retries} == {  # each time the same item, version and all
        _wire.body(requests.batch_write(core.config, [dicts["k24"]])).decode()
    }


async def test_an_item_the_chunk_never_sent_comes_back_as_the_servers_dict() -> None:
    core, seen = _fake_core(True, unprocessed_rounds=1, foreign=True)
    dicts, make = _entries(core.config, 2)
    with set_retry_waits(False):
        outcome = await write_items(core, None, dicts, make)  # type: ignore[arg-type]
    assert outcome.complete
    assert [type(r) for r in seen] == [requests.BatchWriteText, dict]
    assert seen[1]["RequestItems"]["kvt"][0]["PutRequest"]["Item"]["pk"] == {"S": "stranger"}


@pytest.mark.parametrize("kind", ["get", "write"])
def test_a_span_names_the_table_of_a_text_request_without_parsing_it(kind: str) -> None:
    config = CONFIGS[1]
    text_request: Any
    if kind == "get":
        action = "BatchGetItem"
        text_request = requests.BatchGetText(config, ["a", "b"], consistent=True)
        plain = requests.batch_get(config, ["a", "b"], consistent=True)
    else:
        action = "BatchWriteItem"
        parts: list[tuple[str, AttributeValue, str | None, int]] = [("a", {"B": b"\x00"}, "b", 3)]
        text_request = _text_request(config, parts, TOKEN, None)
        plain = dict(text_request)
        text_request = _text_request(config, parts, TOKEN, None)  # a fresh one, not parsed
    from_text: dict[str, Any] = {}
    from_dict: dict[str, Any] = {}
    _request_attributes(action, text_request, from_text)
    _request_attributes(action, plain, from_dict)
    assert from_text == from_dict == {"aws.dynamodb.table_names": ("Tbl.with-dots_9",)}
    assert text_request._dict is None  # never made


@given(text=st.text(st.characters(codec=None), max_size=60))
def test_a_text_is_bare_exactly_when_json_only_quotes_it(text: str) -> None:
    assert requests._bare(text) == (requests._json_str(text) == f'"{text}"')


@pytest.mark.parametrize("char", [chr(c) for c in range(0x80)] + ["\u00e9", "\ud800"])
def test_each_character_is_bare_exactly_when_json_writes_it_as_it_is(char: str) -> None:
    assert requests._bare(f"a{char}b") == (requests._json_str(char) == f'"{char}"')


_PRINTABLE = st.text(st.characters(min_codepoint=0x1F, max_codepoint=0x7F), max_size=20)


@given(
    chunk=st.lists(
        st.tuples(
            st.text(st.characters(codec=None), min_size=1, max_size=20),
            _ATTRS,
            st.none() | st.text(st.characters(codec=None), max_size=10),
        ),
        max_size=25,
        unique_by=lambda part: part[0],
    ),
    printable=st.none() | st.lists(st.tuples(_PRINTABLE, _PRINTABLE), max_size=25),
    config=st.sampled_from(CONFIGS),
    expires_ms=st.none() | st.integers(min_value=0, max_value=2**45),
)
def test_a_chunk_rendered_at_once_is_each_item_rendered_alone_for_any_items(
    chunk: list[tuple[str, AttributeValue, str | None]],
    printable: list[tuple[str, str]] | None,
    config: KVConfig,
    expires_ms: int | None,
) -> None:
    if printable is not None:  # (nearly) printable ASCII text values, no records: the common case
        chunk = [(f"{i}{pk}", {"S": text}, None) for i, (pk, text) in enumerate(printable)]
    texts = PutTexts(config, TOKEN, expires_ms)
    stored = [pk for pk, _, _ in chunk]
    values = {pk: attr for pk, attr, _ in chunk}
    records = {pk: record for pk, _, record in chunk if record is not None}
    many = texts.render_many(stored, values, records, iter(range(2**40, 2**41)))
    assert many == [
        texts.render(pk, values[pk], records.get(pk), 2**40 + i) for i, pk in enumerate(stored)
    ]
