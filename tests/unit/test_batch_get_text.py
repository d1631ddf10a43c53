"""BatchGetItem rendered as text: the same bytes as the dict's encoding, and who gets which."""

from __future__ import annotations

import types
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiodynkv import KVConfig
from aiodynkv import _requests as requests
from aiodynkv._batch import read_items
from aiodynkv._keys import SEPARATOR
from aiodynkv._transport import _wire
from aiodynkv.testing import set_retry_waits
from tests.awkward import AWKWARD

CONFIGS = [
    KVConfig(table="kvt"),
    KVConfig(table="Tbl.with-dots_9", partition_key="p\u00e9k"),
    KVConfig(table="ttt", partition_key='we"ird\\key'),
]


def _expected(config: KVConfig, keys: list[str], consistent: bool) -> bytes:
    return _wire.dumps(requests.batch_get(config, keys, consistent=consistent)).encode()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.table)
@pytest.mark.parametrize("consistent", [False, True])
@pytest.mark.parametrize(
    "keys", [AWKWARD, AWKWARD[:1], [], [f"key:{i:06d}" for i in range(100)]], ids=len
)
def test_text_is_byte_for_byte_the_encoded_dict(
    config: KVConfig, consistent: bool, keys: list[str]
) -> None:
    request = requests.BatchGetText(config, keys, consistent=consistent)
    assert _wire.body(request) == _expected(config, keys, consistent)
    assert request.text().isascii()


@given(
    keys=st.lists(st.text(st.characters(codec=None), max_size=40), max_size=100),
    namespace=st.sampled_from(["", f"ns{SEPARATOR}", f"\u00fc{SEPARATOR}x{SEPARATOR}"]),
    consistent=st.booleans(),
    config=st.sampled_from(CONFIGS),
)
def test_text_of_any_keys_is_the_encoded_dict(
    keys: list[str], namespace: str, consistent: bool, config: KVConfig
) -> None:
    stored = [namespace + k for k in keys]
    request = requests.BatchGetText(config, stored, consistent=consistent)
    assert _wire.body(request) == _expected(config, stored, consistent)


def test_read_as_a_mapping_it_is_the_request_dict() -> None:
    config = CONFIGS[1]
    request = requests.BatchGetText(config, ["a", "b\x00"], consistent=True)
    wanted = requests.batch_get(config, ["a", "b\x00"], consistent=True)
    assert dict(request) == wanted
    assert request == wanted
    assert request["RequestItems"] is request["RequestItems"]  # made once
    assert request.get("ReturnConsumedCapacity") == "TOTAL"
    assert "BatchGetText({'RequestItems'" in repr(request)


def _fake_core(accepts_text: bool | None, unprocessed_rounds: int) -> tuple[Any, list[Any]]:
    """A core whose transport says (or does not say) it takes text; replies from the dict."""
    seen: list[Any] = []

    async def send(_op: Any, action: str, request: Any, _key: Any) -> Any:
        assert action == "BatchGetItem"
        seen.append(request)
        wanted = request["RequestItems"]["kvt"]
        keys = [k["pk"]["S"] for k in wanted["Keys"]]
        if len(seen) <= unprocessed_rounds:  # the last key comes back unprocessed
            return {
                "Responses": {"kvt": [{"pk": {"S": k}} for k in keys[:-1]]},
                "UnprocessedKeys": {"kvt": {"Keys": wanted["Keys"][-1:]}},
            }
        return {"Responses": {"kvt": [{"pk": {"S": k}} for k in keys]}}

    transport = types.SimpleNamespace()
    if accepts_text is not None:
        transport.accepts_text_requests = accepts_text
    core = types.SimpleNamespace(
        config=KVConfig(table="kvt"), send=send, abort=None, transport=transport
    )
    return core, seen


@pytest.mark.parametrize(
    ("accepts_text", "kind"),
    [(True, requests.BatchGetText), (False, dict), (None, dict)],
)
async def test_a_transport_that_takes_text_gets_it_the_others_get_the_dict(
    accepts_text: bool | None, kind: type
) -> None:
    core, seen = _fake_core(accepts_text, unprocessed_rounds=1)
    keys = [f"k{i}" for i in range(150)]
    with set_retry_waits(False):
        found, outcome = await read_items(core, None, keys, consistent=True)  # type: ignore[arg-type]
    assert outcome.complete and sorted(found) == sorted(keys)
    # Two chunks, one of which came back with a key unprocessed and was retried.
    assert [type(r) for r in seen] == [kind, kind, kind]
    assert sorted(len(r["RequestItems"]["kvt"]["Keys"]) for r in seen) == [1, 50, 100]
    assert all(r["RequestItems"]["kvt"]["ConsistentRead"] for r in seen)


async def test_a_projection_is_always_sent_as_the_dict() -> None:
    core, seen = _fake_core(True, unprocessed_rounds=0)
    await read_items(core, None, ["a"], projection=("#k", "#z"))  # type: ignore[arg-type]
    (request,) = seen
    assert type(request) is dict
    assert request["RequestItems"]["kvt"]["ProjectionExpression"] == "#k, #z"
