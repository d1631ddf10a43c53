"""`InMemoryKV`'s own surface: its client check, repr, `dump`, and listing of damaged items."""

from __future__ import annotations

from typing import Any

import pytest

from aiodynkv import CorruptItemError
from aiodynkv._codec import EXPIRY_MS
from aiodynkv.testing import InMemoryKV

pytestmark = pytest.mark.asyncio


async def _damage(kv: InMemoryKV, key: str, attribute: str, value: dict[str, Any]) -> None:
    """Overwrite one attribute of `key`'s stored item, as foreign data would."""
    await kv.set(key, "v")
    config = kv.config
    for item in kv.transport.items(config.table):
        if item[config.partition_key]["S"].endswith(key):
            await kv.transport.send(
                "UpdateItem",
                {
                    "TableName": config.table,
                    "Key": {config.partition_key: item[config.partition_key]},
                    "UpdateExpression": "SET #a = :v",
                    "ExpressionAttributeNames": {"#a": attribute},
                    "ExpressionAttributeValues": {":v": value},
                },
            )
            return
    raise AssertionError(f"{key} not stored")


async def test_a_client_that_is_not_a_memory_transport_is_refused() -> None:
    with pytest.raises(TypeError, match="client must be a MemoryTransport, not object"):
        InMemoryKV(client=object())  # type: ignore[arg-type]


async def test_dump_and_repr_show_one_namespace_of_a_shared_table() -> None:
    async with InMemoryKV() as kv:
        view = kv.namespace("tenant")
        await kv.set("root", "r")
        await view.set("a", b"\x00")
        assert view.dump() == {"a": b"\x00"}
        assert kv.dump() == {"root": "r"}
        assert "namespace=" in repr(view)
        assert "tenant" in repr(view)
        assert "namespace=" not in repr(kv)
        assert "items=2" in repr(kv)


async def test_an_expired_item_is_left_out_of_dump_items_and_keys() -> None:
    async with InMemoryKV() as kv:
        await kv.set("live", "v")
        await _damage(kv, "old", kv.config.ttl_attribute, {"N": "1"})  # expired in 1970
        assert kv.dump() == {"live": "v"}
        assert [k async for k in kv.keys()] == ["live"]
        assert [i.key async for i in kv.items()] == ["live"]


async def test_a_damaged_expiry_is_a_corrupt_item_in_dump_keys_and_items() -> None:
    async with InMemoryKV() as kv:
        # Without a ttl attribute the Scan's filter keeps it; reading the expiry fails.
        await _damage(kv, "bad", EXPIRY_MS, {"S": "soon"})
        with pytest.raises(CorruptItemError) as dumped:
            kv.dump()
        assert dumped.value.key == "bad"
        with pytest.raises(CorruptItemError) as listed:
            _ = [k async for k in kv.keys()]
        assert listed.value.key == "bad"
        with pytest.raises(CorruptItemError) as iterated:
            _ = [i async for i in kv.items()]
        assert iterated.value.key == "bad"


async def test_items_refuses_a_prefix_that_is_not_a_string() -> None:
    async with InMemoryKV() as kv:
        with pytest.raises(TypeError, match="prefix must be a str, not int"):
            _ = [i async for i in kv.items(1)]  # type: ignore[arg-type]


async def test_items_lists_values_expiry_and_version_under_a_prefix() -> None:
    async with InMemoryKV() as kv:
        await kv.set("user:1", "one", ttl=3600)
        await kv.set("user:2", "two")
        await kv.set("other", "x")
        listed = {i.key: i async for i in kv.items("user:")}
        assert set(listed) == {"user:1", "user:2"}
        assert listed["user:1"].value == "one"
        assert listed["user:1"].expires_at is not None
        assert listed["user:2"].expires_at is None


async def test_items_skips_an_offloaded_item_deleted_while_it_was_listed() -> None:
    async with InMemoryKV(large_value_bucket="blobs", large_value_threshold=10) as kv:
        await kv.set("a", "x" * 100)
        await kv.set("b", "y" * 100)
        seen = []
        async for item in kv.items():
            seen.append((item.key, item.value))
            if len(seen) == 1:
                # The other item goes (with its object) after the Scan page listed it.
                other = "b" if item.key == "a" else "a"
                kv.transport.blobs.objects.clear()
                await kv.delete(other)
        assert len(seen) == 1
        assert seen[0][1] in ("x" * 100, "y" * 100)
