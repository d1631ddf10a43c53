"""Client-side encryption (AES-256-GCM, local keys and KMS envelope) on every backend."""

from __future__ import annotations

import os
import zlib
from typing import Any

import pytest
from structlog.testing import capture_logs

from aiodynkv import (
    CorruptItemError,
    DecryptionError,
    KVConfig,
    KVError,
    KVValidationError,
    ValueTooLargeError,
    WrongTypeError,
)
from aiodynkv._codec import MAX_ITEM_BYTES, item_size
from aiodynkv._values import associated_data, parse_envelope
from aiodynkv.testing import InMemoryKV
from tests.conftest import Backend, StoreFactory, put_raw, raw_item
from tests.faults import Intercepted
from tests.integration.data_helpers import make_kms_key

pytestmark = pytest.mark.asyncio

K1, K2 = os.urandom(32), os.urandom(32)
SECRET = "my secret value 4711"


async def _store(make_store: StoreFactory, **fields: Any) -> Any:
    fields.setdefault("encryption_keys", {"k1": K1})
    return await make_store(**fields)


def _record(item: Any) -> str:
    return str(item["z"]["S"])


async def test_values_round_trip_and_are_stored_encrypted(make_store: StoreFactory) -> None:
    store = await _store(make_store, compress_threshold=100)
    await store.set("text", SECRET)
    await store.set("blob", SECRET.encode())
    await store.set("long", SECRET * 100)  # compressed, then encrypted
    assert await store.get("text") == SECRET
    assert await store.get("blob") == SECRET.encode()
    assert await store.get("long") == SECRET * 100
    assert await store.get_many(["text", "blob", "x"]) == {"text": SECRET, "blob": SECRET.encode()}
    assert await store.get_with_version("text") == (SECRET, pytest.approx(0, abs=2**64))
    items = {item.key: item.value async for item in store.items()}
    assert items["long"] == SECRET * 100
    for key, record in (("text", "s:e"), ("blob", "b:e"), ("long", "s:ze")):
        item = await raw_item(store, key)
        assert item is not None
        assert _record(item) == record
        assert SECRET.encode() not in bytes(item["value"]["B"])
        assert parse_envelope(bytes(item["value"]["B"]))[1] == "k1"


async def test_a_value_copied_to_another_key_does_not_decrypt(make_store: StoreFactory) -> None:
    store = await _store(make_store)
    await store.set("a", SECRET)
    await store.set("b", "other")
    a, b = await raw_item(store, "a"), await raw_item(store, "b")
    assert a is not None
    assert b is not None
    await put_raw(store, {**a, "pk": {"S": "copy"}})
    with pytest.raises(DecryptionError) as info:
        await store.get("copy")
    assert isinstance(info.value, CorruptItemError)
    assert isinstance(info.value, KVError)
    assert SECRET not in str(info.value)
    # Swapped: each key holds the other's ciphertext.
    await put_raw(store, {**a, "pk": {"S": "b"}})
    await put_raw(store, {**b, "pk": {"S": "a"}})
    for key in ("a", "b"):
        with pytest.raises(DecryptionError):
            await store.get(key)
    with pytest.raises(CorruptItemError) as many:
        await store.get_many(["a", "b"])
    assert set(many.value.corrupt) == {"a", "b"}


async def test_a_value_copied_to_another_namespace_does_not_decrypt(
    make_store: StoreFactory,
) -> None:
    store = await _store(make_store)
    tenant = store.namespace("t1")
    await tenant.set("k", SECRET)
    item = await raw_item(store, tenant._keys.prefix + "k")
    assert item is not None
    await put_raw(store, {**item, "pk": {"S": store.namespace("t2")._keys.prefix + "k"}})
    with pytest.raises(DecryptionError):
        await store.namespace("t2").get("k")


async def test_a_value_copied_to_another_table_does_not_decrypt(make_store: StoreFactory) -> None:
    store = await _store(make_store)
    await store.set("k", SECRET)
    item = await raw_item(store, "k")
    assert item is not None
    other_table = KVConfig(table="other-table", encryption_keys={"k1": K1})
    # The other table's store reads the same bytes; only the table name differs.
    other = InMemoryKV(other_table)
    async with other:
        await put_raw(other, item)
        with pytest.raises(DecryptionError):
            await other.get("k")


async def test_tampering_is_detected(make_store: StoreFactory) -> None:
    store = await _store(make_store, encryption_keys={"k1": K1, "k2": K2}, encryption_key_id="k1")
    await store.set("k", SECRET)
    item = await raw_item(store, "k")
    assert item is not None
    blob = bytes(item["value"]["B"])
    for at in (0, 5, len(blob) // 2, len(blob) - 1):  # header, nonce, body, tag
        flipped = blob[:at] + bytes([blob[at] ^ 0x01]) + blob[at + 1 :]
        await put_raw(store, {**item, "value": {"B": flipped}})
        with pytest.raises(DecryptionError):
            await store.get("k")
    # The key id says k2 (also configured): the header is bound, so it still fails.
    swapped = blob[:2] + b"k2" + blob[4:]
    await put_raw(store, {**item, "value": {"B": swapped}})
    with pytest.raises(DecryptionError):
        await store.get("k")
    # An unknown key id, a truncated envelope, the type flipped from text to bytes.
    for value, record in (
        (blob[:2] + b"k9" + blob[4:], "s:e"),
        (blob[:10], "s:e"),
        (blob, "b:e"),
        (blob, "s:ze"),
    ):
        await put_raw(store, {**item, "value": {"B": value}, "z": {"S": record}})
        with pytest.raises(DecryptionError):
            await store.get("k")


async def test_old_key_ids_still_decrypt_and_writes_use_the_current(
    make_store: StoreFactory,
) -> None:
    old = await _store(make_store)
    await old.set("k", SECRET)
    new = await _store(make_store, encryption_keys={"k2": K2, "k1": K1}, encryption_key_id="k2")
    assert await new.get("k") == SECRET
    await new.set("k", SECRET + "!")
    item = await raw_item(new, "k")
    assert item is not None
    assert parse_envelope(bytes(item["value"]["B"]))[1] == "k2"
    with pytest.raises(DecryptionError, match="'k2' is not in encryption_keys"):
        await old.get("k")


async def test_a_store_without_keys_refuses_encrypted_values(make_store: StoreFactory) -> None:
    store = await _store(make_store)
    await store.set("k", SECRET)
    plain = await make_store()
    with pytest.raises(DecryptionError, match="no encryption keys"):
        await plain.get("k")


async def test_counters_stay_plaintext_numbers(make_store: StoreFactory) -> None:
    store = await _store(make_store)
    assert await store.incr("n", 5) == 5
    item = await raw_item(store, "n")
    assert item is not None
    assert item["value"] == {"N": "5"}
    await store.set("s", SECRET)
    with pytest.raises(WrongTypeError):
        await store.incr("s")


@pytest.mark.backend_needs("s3_kms")
async def test_kms_envelope_round_trips(backend: Backend, make_store: StoreFactory) -> None:
    kms_key = await make_kms_key(backend)
    store = await make_store(encryption_kms_key_id=kms_key, compress_threshold=10)
    await store.set_many({"a": SECRET, "b": SECRET * 10})
    assert await store.get_many(["a", "b"]) == {"a": SECRET, "b": SECRET * 10}
    first, second = await raw_item(store, "a"), await raw_item(store, "b")
    assert first is not None
    assert second is not None
    version, key_id, wrapped, *_ = parse_envelope(bytes(first["value"]["B"]))
    assert (version, key_id) == (2, kms_key)
    assert parse_envelope(bytes(second["value"]["B"]))[2] == wrapped  # the data key is cached
    # Another store (no cache yet) unwraps through KMS; local keys still decrypt too.
    other = await make_store(encryption_kms_key_id=kms_key, encryption_keys={"k1": K1})
    assert await other.get("a") == SECRET
    await put_raw(store, {**first, "pk": {"S": "moved"}})
    with pytest.raises(DecryptionError):
        await other.get("moved")


async def test_values_stay_out_of_errors_logs_and_repr(make_store: StoreFactory) -> None:
    store = await _store(make_store)
    assert K1.hex() not in repr(store.config)
    assert "encryption_keys" not in repr(store.config)
    with capture_logs() as logs:
        await store.set("k", SECRET)
        item = await raw_item(store, "k")
        assert item is not None
        await put_raw(store, {**item, "value": {"B": b"\x01" + bytes(item["value"]["B"])[1:-1]}})
        with pytest.raises(DecryptionError) as info:
            await store.get("k")
    assert SECRET not in str(info.value)
    assert SECRET not in repr(logs)


@pytest.mark.backend_needs("server", "endpoint", "s3_kms")
async def test_a_kms_key_that_kms_refuses_raises_encryption_key_error(
    make_store: StoreFactory,
) -> None:
    from aiodynkv import EncryptionKeyError

    store = await make_store(encryption_kms_key_id="0b6b1a4e-0000-4000-8000-000000000000")
    with pytest.raises(EncryptionKeyError, match="KMS NotFoundException") as info:
        await store.set("k", SECRET)
    assert "encryption_kms_key_id" in str(info.value)  # says which setting to fix
    assert info.value.key == "k"
    assert SECRET not in str(info.value)
    assert not await store.exists("k")


@pytest.mark.backend_needs("s3_kms")
async def test_the_order_is_typed_json_compress_encrypt_offload(
    backend: Backend, make_store: StoreFactory
) -> None:
    """Undo each step by hand, in reverse, from the bytes in S3 to the model."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from pydantic import BaseModel

    from tests.integration.data_helpers import make_bucket, objects

    class Doc(BaseModel):
        name: str
        body: str

    bucket = await make_bucket(backend)
    store = await _store(
        make_store,
        compress_threshold=100,
        large_value_bucket=bucket,
        large_value_threshold=500,
    )
    doc = Doc(name="ada", body=os.urandom(3_000).hex())
    await store.typed(Doc).set("doc", doc)
    item = await raw_item(store, "doc")
    assert item is not None
    record = _record(item)
    assert record.startswith("s:zeo:s3:")  # compressed, encrypted, offloaded: in that order
    (blob,) = (await objects(store, bucket)).values()
    _, _, _, header, nonce, sealed = parse_envelope(blob)
    aad = associated_data(store.config.table, "doc", "s:z", header)
    compressed = AESGCM(K1).decrypt(nonce, sealed, aad)  # 4. encrypted last before S3
    text = zlib.decompress(compressed).decode()  # 3. compressed before that
    assert Doc.model_validate_json(text) == doc  # 2./1. JSON of the model
    assert await store.typed(Doc).get("doc") == doc


async def test_the_item_is_size_checked_once_on_its_final_bytes(make_store: StoreFactory) -> None:
    """The envelope and the record count: checked on what is stored, before any request."""
    store = await _store(make_store, compress_threshold=None)
    sent: list[str] = []

    async def counting(action: str, request: dict[str, Any], send: Any) -> dict[str, Any]:
        sent.append(action)
        response: dict[str, Any] = await send(action, request)
        return response

    store._core.transport = Intercepted(store._core.transport, counting)
    # A value that would just fit unencrypted (see the contract's exact-400-KB test).
    overhead = item_size(
        {"pk": {"S": "big"}, "value": {"B": b""}, "ver": {"N": "9" * 19}, "tk": {"S": "t" * 16}}
    )
    fits_plain = b"\x01" * (MAX_ITEM_BYTES - overhead)
    envelope = 2 + len("k1") + 12 + 16  # version, key id, nonce, GCM tag
    final = MAX_ITEM_BYTES + envelope + len("z") + len("b:e")  # the record counts too
    with pytest.raises(ValueTooLargeError, match=f"{final:,} bytes") as info:
        await store.set("big", fits_plain)
    assert info.value.size == final
    with pytest.raises(ValueTooLargeError, match=f"{final:,} bytes"):
        await store.set_many({"small": "v", "big": fits_plain})
    assert sent == []  # refused before any request
    # A value accepted only because compression shrank it, then encrypted.
    squeezed = await _store(make_store, compress_threshold=1000, max_value_bytes=1_000_000)
    await squeezed.set("big", "x" * 900_000)
    await squeezed.set_many({"many": b"y" * 900_000})
    assert await squeezed.get("big") == "x" * 900_000
    assert await squeezed.get_many(["many"]) == {"many": b"y" * 900_000}
    item = await raw_item(squeezed, "big")
    assert item is not None and _record(item) == "s:ze"


async def test_a_short_text_with_a_lone_surrogate_is_refused_before_encryption(
    make_store: StoreFactory,
) -> None:
    store = await _store(make_store)
    with pytest.raises(KVValidationError, match="surrogate") as info:
        await store.set("k", "a\ud800")
    assert info.value.key == "k"
    with pytest.raises(KVValidationError, match="surrogate"):
        await store.set_many({"k": "a\ud800"})
    assert not await store.exists("k")
