"""Typed views (pydantic TypeAdapter) on every backend, and the example that uses them."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from aiodynkv import (
    ConditionFailedError,
    CorruptItemError,
    KeyNotFoundError,
    KVValidationError,
    TypedView,
)
from tests.conftest import Backend, StoreFactory

pytestmark = pytest.mark.asyncio


class User(BaseModel):
    name: str
    age: int = 0


@dataclasses.dataclass
class Point:
    x: int
    y: int


async def test_models_round_trip_as_json_text(make_store: StoreFactory) -> None:
    kv = await make_store()
    users = kv.typed(User)
    assert isinstance(users, TypedView)
    assert "User" in repr(users)
    assert id(users.store) == id(kv)
    assert await users.set("u1", User(name="ada", age=36)) is True
    assert await users.get("u1") == User(name="ada", age=36)
    assert await kv.get("u1") == '{"name":"ada","age":36}'  # plain JSON underneath
    assert await kv.get_json("u1") == {"name": "ada", "age": 36}
    points = kv.typed(Point)
    await points.set("p", Point(1, 2))
    assert await points.get("p") == Point(1, 2)
    lists = kv.typed(list[int])
    await lists.set("l", [1, 2, 3])
    assert await lists.get("l") == [1, 2, 3]
    await kv.incr("n", 5)
    assert await kv.typed(int).get("n") == 5  # a counter validates as its number


async def test_missing_keys_and_defaults(make_store: StoreFactory) -> None:
    users = (await make_store()).typed(User)
    with pytest.raises(KeyNotFoundError):
        await users.get("nobody")
    assert await users.get("nobody", None) is None
    assert not await users.exists("nobody")


async def test_invalid_stored_values_are_corrupt_with_the_validation_error_as_cause(
    make_store: StoreFactory,
) -> None:
    kv = await make_store()
    users = kv.typed(User)
    await kv.set("bad", '{"name": 5}')
    await kv.set("text", "not json")
    for key in ("bad", "text"):
        with pytest.raises(CorruptItemError) as info:
            await users.get(key)
        assert isinstance(info.value.__cause__, ValidationError)
        assert info.value.key == key
        assert "not json" not in str(info.value)
    with pytest.raises(CorruptItemError):
        await users.get_many(["bad"])


async def test_batches_ttl_and_conditions(make_store: StoreFactory) -> None:
    users = (await make_store()).typed(User)
    await users.set_many({"a": User(name="a"), "b": User(name="b")}, ttl=timedelta(hours=1))
    await users.set_many([("c", User(name="c"))])
    assert await users.get_many(["a", "b", "c", "z"]) == {
        "a": User(name="a"),
        "b": User(name="b"),
        "c": User(name="c"),
    }
    remaining = await users.ttl("a")
    assert remaining is not None
    assert 3500 < remaining <= 3600
    assert await users.set("a", User(name="again"), if_absent=True) is False
    value, version = await users.get_with_version("a")
    assert value == User(name="a")
    assert await users.set("a", User(name="v2"), if_version=version) is True
    with pytest.raises(ConditionFailedError):
        await users.set("a", User(name="v3"), if_version=version)
    assert await users.delete("a") is True
    await users.delete_many(["b", "c"])
    assert await users.get_many(["a", "b", "c"]) == {}


async def test_namespaces(make_store: StoreFactory) -> None:
    kv = await make_store()
    users = kv.typed(User)
    await users.namespace("t1").set("u", User(name="one"))
    await kv.namespace("t2").typed(User).set("u", User(name="two"))
    assert await users.namespace("t1").get("u") == User(name="one")
    assert await users.namespace("t2").get("u") == User(name="two")
    assert await users.get("u", None) is None


async def test_unserialisable_values_raise_before_anything_is_written(
    make_store: StoreFactory,
) -> None:
    kv = await make_store()
    users = kv.typed(User)
    with pytest.raises(KVValidationError):
        await users.set("u", object())
    with pytest.raises(KVValidationError):
        await users.set_many({"ok": User(name="x"), "bad": object()})
    assert await kv.get_many(["u", "ok", "bad"]) == {}


@pytest.mark.backend_needs("server", "s3_kms", "endpoint")
async def test_the_example_runs(backend: Backend) -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "examples" / "typed_encrypted.py"
    spec = importlib.util.spec_from_file_location("typed_encrypted_example", path)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert backend.endpoint is not None
    lines: list[Any] = await example.main(backend.endpoint)
    assert lines[0] == "u1: ada"
    assert lines[1] == "get_many: ['u1', 'u2']; u2 bio 800000 chars"
    assert "s:zeo:s3:" in lines[2]  # compressed, encrypted, then offloaded


class Reading(BaseModel):
    value: float
    spare: float | None = None
    series: list[dict[str, float]] = []


@pytest.mark.parametrize(
    "bad",
    [
        Reading(value=float("nan")),
        Reading(value=1.0, spare=float("inf")),
        Reading(value=1.0, series=[{"a": 1.0}, {"b": float("-inf")}]),  # nested
    ],
)
async def test_nan_and_infinity_are_refused_before_anything_is_written(
    make_store: StoreFactory, bad: Reading
) -> None:
    kv = await make_store()
    readings = kv.typed(Reading)
    with pytest.raises(ValueError, match="Out of range"):  # as set_json refuses
        await kv.set_json("plain", bad.model_dump())
    with pytest.raises(KVValidationError) as info:
        await readings.set("r", bad)
    assert info.value.operation == "set"
    assert "NaN or an infinity" in str(info.value)
    with pytest.raises(KVValidationError):
        await readings.set_many({"ok": Reading(value=2.0), "bad": bad})
    with pytest.raises(KVValidationError):
        await kv.typed(float).set("f", float("nan"))
    assert await kv.get_many(["plain", "r", "ok", "bad", "f"]) == {}
    await readings.set("r", Reading(value=1.5, spare=None, series=[{"a": 2.5}]))
    assert await readings.get("r") == Reading(value=1.5, spare=None, series=[{"a": 2.5}])
