"""Pure parts of the data features: near cache, S3 pointers, envelopes, records, errors, config."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sys
from typing import Any

import botocore.exceptions as bex
import pytest

import aiodynkv
from aiodynkv import (
    AccessDeniedError,
    CorruptItemError,
    DecryptionError,
    KVConfig,
    KVConfigError,
    KVConnectionError,
    KVError,
    KVTimeoutError,
    ServerError,
    ThrottledError,
    _codec,
)
from aiodynkv._cache import NearCache, PendingWrites, writing
from aiodynkv._values import (
    DATA_KEY_MAX_USES,
    Encryptor,
    MemoryBlobs,
    MemoryKms,
    Pipeline,
    Pointer,
    associated_data,
    map_aws_error,
    object_name,
    parse_envelope,
    parse_record,
)

K1, K2 = os.urandom(32), os.urandom(32)


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1_000_000.0
        monkeypatch.setattr(_codec, "now", lambda: self.now)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


# -- near cache ----------------------------------------------------------------------------


def test_cache_serves_until_its_ttl_and_never_past_the_items_expiry(clock: Clock) -> None:
    cache = NearCache(10, 10**6, ttl=1.0, miss_ttl=0.25)
    cache.fill("a", "v", None, cache.ticket())
    cache.fill("b", "v", clock.now + 0.5, cache.ticket())  # expires before the TTL
    cache.fill("gone", None, None, cache.ticket())
    assert cache.lookup("a") == (True, "v")
    assert cache.lookup("gone") == (True, None)
    clock.now += 0.3
    assert cache.lookup("gone") == (False, None)  # misses live miss_ttl only
    clock.now += 0.25
    assert cache.lookup("b") == (False, None)  # exact expiry
    assert cache.lookup("a") == (True, "v")
    clock.now += 0.5
    assert cache.lookup("a") == (False, None)
    assert (cache.hits, cache.misses) == (3, 3)
    cache.fill("old", "v", clock.now - 1, cache.ticket())  # already expired: not kept
    assert len(cache) == 0


@pytest.mark.usefixtures("clock")
def test_cache_is_an_lru_bounded_by_count_and_bytes() -> None:
    cache = NearCache(3, 10**6, ttl=10.0, miss_ttl=1.0)
    for key in "abcd":
        cache.fill(key, key, None, cache.ticket())
    assert cache.lookup("a") == (False, None)  # evicted, oldest
    cache.lookup("b")  # b is now the most recent
    cache.fill("e", "e", None, cache.ticket())
    assert cache.lookup("c") == (False, None)
    assert cache.lookup("b") == (True, "b")
    small = NearCache(100, 2_000, ttl=10.0, miss_ttl=1.0)
    small.fill("big", b"x" * 5_000, None, small.ticket())  # larger than the whole cache
    assert len(small) == 0
    for i in range(20):
        small.fill(f"k{i}", b"x" * 300, None, small.ticket())
    assert 0 < small.size <= 2_000
    assert len(small) < 20
    small.clear()
    assert (len(small), small.size) == (0, 0)


@pytest.mark.usefixtures("clock")
def test_a_read_older_than_a_write_never_fills_the_cache() -> None:
    cache = NearCache(10, 10**6, ttl=10.0, miss_ttl=1.0)
    before = cache.ticket()  # a read starts...
    with writing(cache, "k") as writes:  # ...a write starts and ends while it waits
        during = cache.ticket()
        writes.done("k", "new")
    cache.fill("k", "old", None, before)  # the read's stale answer is refused
    cache.fill("k", "older", None, during)  # so is one that started during the write
    assert cache.lookup("k") == (True, "new")
    # Two overlapping writes: the one that ends first must not leave its value.
    first, second = PendingWrites(cache, ["x"]), PendingWrites(cache, ["x"])
    first.done("x", "1")
    second.done("x", "2")
    second.finish()
    first.finish()
    assert cache.lookup("x") == (False, None)
    failed = PendingWrites(cache, ["y"])
    failed.finish()  # no done(): the outcome is unknown
    assert cache.lookup("y") == (False, None)


@pytest.mark.usefixtures("clock")
def test_cache_remembers_writes_as_get_returns_them() -> None:
    cache = NearCache(10, 10**6, ttl=10.0, miss_ttl=1.0)
    with writing(cache, "a", "b", "c", "d") as writes:
        writes.done("a", bytearray(b"x"))
        writes.done("b", type("S", (str,), {})("text"))
        writes.done("c", 7)
        writes.done("d", object())
    assert cache.lookup("a") == (True, b"x")
    assert type(cache.lookup("b")[1]) is str
    assert cache.lookup("c") == (True, 7)
    assert cache.lookup("d") == (True, None)
    with writing(None, "a") as nothing:
        nothing.done("a", "v")  # no cache: nothing to do


@pytest.mark.usefixtures("clock")
def test_forgotten_write_records_still_refuse_older_reads() -> None:
    cache = NearCache(1, 10**6, ttl=10.0, miss_ttl=1.0)
    before = cache.ticket()
    cache.begin_write("k")
    for i in range(2_000):  # pushes k's write record out of the bounded table
        cache.begin_write(f"other{i}")
    cache.fill("k", "stale", None, before)
    assert cache.lookup("k") == (False, None)


def test_cache_is_off_by_default() -> None:
    assert NearCache.from_config(KVConfig(table="ttt")) is None
    cache = NearCache.from_config(
        KVConfig(table="ttt", local_cache_items=5, local_cache_ttl=0.1, local_cache_miss_ttl=1)
    )
    assert cache is not None
    assert (cache.max_items, cache.ttl, cache.miss_ttl) == (5, 0.1, 0.1)  # misses <= ttl


# -- S3 pointers --------------------------------------------------------------------------


def test_pointer_format_round_trips_and_checks_content() -> None:
    data = b"some object"
    pointer = Pointer.of("my-bucket", "aiodynkv/t/abc:def", data)
    text = str(pointer)
    assert text == f"s3:my-bucket:11:{hashlib.sha256(data).hexdigest()}:aiodynkv/t/abc:def"
    assert Pointer.parse(text) == pointer
    assert pointer.check(data) == data
    for bad in (None, data + b"!", b"Some object"):
        with pytest.raises(CorruptItemError):
            pointer.check(bad)
    for bad_text in (
        "s3:my-bucket:11:abc:name",
        "gs:my-bucket:11:" + "0" * 64 + ":n",
        "s3:My_Bucket:11:" + "0" * 64 + ":n",
        "s3:my-bucket:-1:" + "0" * 64 + ":n",
        "s3:my-bucket:11:" + "0" * 64 + ":",
        "s3:my-bucket",
    ):
        with pytest.raises(CorruptItemError, match="pointer"):
            Pointer.parse(bad_text)
    first, second = object_name("p/", "tbl"), object_name("p/", "tbl")
    assert first.startswith("p/tbl/")
    assert first != second


def test_records_name_kind_steps_and_pointer() -> None:
    pointer = Pointer.of("bkt", "n", b"x")
    assert parse_record("s:e") == ("s", "e", None)
    assert parse_record("b:ze") == ("b", "ze", None)
    assert parse_record(f"b:zeo:{pointer}") == ("b", "zeo", pointer)
    for bad in ("s", "x:e", "s:", "s:z", "s:ez", "s:o", f"s:e:{pointer}", "s:q"):
        with pytest.raises(CorruptItemError, match=r"record|pointer"):
            parse_record(bad)


# -- envelopes ----------------------------------------------------------------------------


def _encryptor(**fields: Any) -> Encryptor:
    fields.setdefault("encryption_keys", {"k1": K1})
    return Encryptor(KVConfig(table="ttt", **fields), MemoryKms())


def test_associated_data_is_unambiguous() -> None:
    assert associated_data("t", "a\x00b", "s:", b"h") != associated_data("t", "a", "\x00bs:", b"h")
    assert associated_data("t1", "k", "s:", b"h") != associated_data("t", "1k", "s:", b"h")


async def test_envelope_layout_and_binding() -> None:
    enc = _encryptor()
    blob = await enc.encrypt(b"plain", "key", "s:")
    version, key_id, wrapped, header, nonce, sealed = parse_envelope(blob)
    assert (version, key_id, wrapped, header) == (1, "k1", b"", b"\x01\x02k1")
    assert len(nonce) == 12
    assert len(sealed) == len(b"plain") + 16
    assert await enc.decrypt(blob, "key", "s:") == b"plain"
    assert await enc.encrypt(b"plain", "key", "s:") != blob  # a fresh nonce each time
    for stored, record in (("other", "s:"), ("key", "b:"), ("key", "s:z")):
        with pytest.raises(DecryptionError):
            await enc.decrypt(blob, stored, record)
    other_table = Encryptor(KVConfig(table="uuu", encryption_keys={"k1": K1}), None)
    with pytest.raises(DecryptionError):
        await other_table.decrypt(blob, "key", "s:")
    for broken in (b"", b"\x01", b"\x03\x02k1" + bytes(40), b"\x01\x02k1" + bytes(20)):
        with pytest.raises(DecryptionError, match="malformed"):
            parse_envelope(broken)
    with pytest.raises(DecryptionError, match="malformed"):
        parse_envelope(b"\x02\x02k1\x00\x09abc")


class _CountingKms(MemoryKms):
    __slots__ = ("generated", "unwrapped")

    def __init__(self) -> None:
        self.generated = 0
        self.unwrapped = 0

    async def generate(self, key_id: str, context: dict[str, str]) -> tuple[bytes, bytes]:
        self.generated += 1
        return await super().generate(key_id, context)

    async def unwrap(self, key_id: str, wrapped: bytes, context: dict[str, str]) -> bytes:
        self.unwrapped += 1
        return await super().unwrap(key_id, wrapped, context)


async def test_kms_data_keys_are_cached_and_rotated(monkeypatch: pytest.MonkeyPatch) -> None:
    kms = _CountingKms()
    config = KVConfig(table="ttt", encryption_kms_key_id="alias/app")
    writer = Encryptor(config, kms)
    blobs = await asyncio.gather(*(writer.encrypt(b"v", f"k{i}", "s:") for i in range(50)))
    assert kms.generated == 1  # one data key for all fifty, even concurrently
    reader = Encryptor(config, kms)
    for i, blob in enumerate(blobs):
        assert await reader.decrypt(blob, f"k{i}", "s:") == b"v"
    assert kms.unwrapped == 1
    assert parse_envelope(blobs[0])[:2] == (2, "alias/app")
    import aiodynkv._values as crypto

    monkeypatch.setattr(crypto, "DATA_KEY_MAX_USES", 50)
    await writer.encrypt(b"v", "k", "s:")
    assert kms.generated == 2  # used up: a new data key
    assert DATA_KEY_MAX_USES == 2**20
    no_kms = Encryptor(KVConfig(table="ttt", encryption_keys={"k1": K1}), None)
    with pytest.raises(DecryptionError, match="no KMS"):
        await no_kms.decrypt(blobs[0], "k0", "s:")
    wrong_key = Encryptor(KVConfig(table="ttt", encryption_kms_key_id="alias/other"), kms)
    forged = blobs[0][:2] + b"alias/oth" + blobs[0][11:]  # same length id, other key
    with pytest.raises(DecryptionError):
        await wrong_key.decrypt(forged, "k0", "s:")


# -- the pipeline with the in-memory doubles ----------------------------------------------------


async def test_pipeline_seals_and_opens_in_order() -> None:
    blobs = MemoryBlobs()
    config = KVConfig(
        table="ttt",
        encryption_keys={"k1": K1},
        large_value_bucket="bkt",
        large_value_threshold=100,
        compress_threshold=10,
    )
    pipeline = Pipeline(config, blobs, None)
    assert pipeline.writes
    attr, record = _codec.encoded_value(config, "a" * 1000, "set", "k")
    assert record == "s"  # compressed by the codec
    attr, record = await pipeline.seal(attr, record, "k", "k", "set")
    assert record is not None and record.startswith("s:ze")  # small once compressed
    item = _codec.build_item(config, "k", attr, record, None, 1, "tok", "set", "k")
    assert await pipeline.open(item, "k", "k", "get") == ("a" * 1000, item)
    attr, record = _codec.encoded_value(config, os.urandom(500), "set", "k")
    attr, record = await pipeline.seal(attr, record, "k", "k", "set")
    big = _codec.build_item(config, "k", attr, record, None, 1, "tok", "set", "k")
    pointer = Pipeline.pointer_of(big)
    assert pointer is not None
    assert big["z"]["S"] == f"b:eo:{pointer}" and big["value"] == {"B": b""}
    assert ("bkt", pointer.name) in blobs.objects
    await pipeline.discard([pointer, None], "delete")
    assert blobs.objects == {}
    assert Pipeline.pointer_of({"z": {"S": "b:eo:junk"}}) is None
    assert Pipeline.pointer_of(None) is None


async def test_cleanup_failures_are_logged_not_raised() -> None:
    class Broken(MemoryBlobs):
        async def delete(self, bucket: str, names: list[str]) -> None:  # noqa: ARG002
            raise OSError("down")

    events: list[tuple[str, dict[str, Any]]] = []
    config = KVConfig(table="ttt", large_value_bucket="bkt")
    pipeline = Pipeline(config, Broken(), None, lambda e, **f: events.append((e, f)))
    await pipeline.discard([Pointer.of("bkt", "n", b"x")], "set")
    assert events == [
        (
            "aiodynkv.offload_cleanup_failed",
            {"table": "ttt", "operation": "set", "objects": 1, "error": "OSError"},
        )
    ]


# -- AWS failures ---------------------------------------------------------------------------------


def _client_error(code: str, status: int = 400) -> bex.ClientError:
    return bex.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (_client_error("AccessDenied", 403), AccessDeniedError),
        (_client_error("403", 403), AccessDeniedError),  # a refusal without a JSON body
        (_client_error("SlowDown", 503), ThrottledError),
        (_client_error("RequestTimeout"), KVTimeoutError),
        (_client_error("InternalError", 500), ServerError),
        (_client_error("Weird", 502), ServerError),
        (_client_error("NoSuchBucket", 404), aiodynkv.BucketNotFoundError),
        (_client_error("NotFoundException"), aiodynkv.EncryptionKeyError),
        (_client_error("DisabledException"), aiodynkv.EncryptionKeyError),
        (_client_error("KMSInvalidStateException"), aiodynkv.EncryptionKeyError),
        (_client_error("KeyUnavailableException", 500), aiodynkv.EncryptionKeyError),
        (_client_error("InvalidKeyUsageException"), aiodynkv.EncryptionKeyError),
        (_client_error("Weird", 400), KVError),
        (bex.NoCredentialsError(), AccessDeniedError),
        (bex.ReadTimeoutError(endpoint_url="http://x"), KVTimeoutError),
        (bex.EndpointConnectionError(endpoint_url="http://x"), KVConnectionError),
        (RuntimeError("x"), KVError),
    ],
)
def test_s3_and_kms_failures_map_to_the_error_tree(exc: Exception, cls: type[KVError]) -> None:
    error = map_aws_error(exc, service="S3", operation="get", table="ttt", key="secret-key")
    assert type(error) is cls
    assert (error.operation, error.table, error.key) == ("get", "ttt", "secret-key")
    assert "secret-key" not in str(error)
    assert map_aws_error(error, service="S3", operation="x", table="y", key=None) is error


# -- config -------------------------------------------------------------------------------------


def test_data_feature_settings_are_validated() -> None:
    bad: list[dict[str, Any]] = [
        {"local_cache_items": -1},
        {"local_cache_items": True},
        {"local_cache_bytes": 0},
        {"local_cache_ttl": 0},
        {"local_cache_miss_ttl": -1},
        {"large_value_bucket": "Bad_Bucket"},
        {"large_value_bucket": "ab"},
        {"large_value_threshold": 0},
        {"large_value_threshold": 400_001},
        {"large_value_prefix": "a\nb"},
        {"encryption_kms_key_id": ""},
    ]
    for fields in bad:
        with pytest.raises(KVConfigError, match=next(iter(fields))):
            KVConfig(table="ttt", **fields)
    ok = KVConfig(
        table="ttt",
        local_cache_items=10,
        large_value_bucket="my.bucket-1",
        large_value_threshold=400_000,
        large_value_prefix="",
    )
    assert ok.large_value_bucket == "my.bucket-1"


def test_config_validates_keys_without_echoing_them() -> None:
    with pytest.raises(KVConfigError, match="32 bytes") as info:
        KVConfig(table="ttt", encryption_keys={"k1": b"short-secret"})
    assert "short-secret" not in str(info.value)
    with pytest.raises(KVConfigError, match="encryption_key_id"):
        KVConfig(table="ttt", encryption_keys={"k1": K1, "k2": K2})
    with pytest.raises(KVConfigError, match="encryption_key_id"):
        KVConfig(table="ttt", encryption_keys={"k1": K1}, encryption_key_id="k3")
    with pytest.raises(KVConfigError, match="encryption_key_id"):
        KVConfig(table="ttt", encryption_key_id="k1")
    with pytest.raises(KVConfigError, match="non-empty mapping"):
        KVConfig(table="ttt", encryption_keys={})
    with pytest.raises(KVConfigError, match="key ids"):
        KVConfig(table="ttt", encryption_keys={"bad id": K1})
    with pytest.raises(KVConfigError, match="base64"):
        KVConfig(table="ttt", encryption_keys="k1:@@@")  # type: ignore[arg-type]
    text = f"k2:{base64.b64encode(K2).decode()}, k1:{base64.b64encode(K1).decode()}"
    env = {
        "AIODYNKV_TABLE": "ttt",
        "AIODYNKV_ENCRYPTION_KEYS": text,
        "AIODYNKV_ENCRYPTION_KEY_ID": "k2",
    }
    config = KVConfig.from_env(env)
    assert dict(config.encryption_keys or {}) == {"k2": K2, "k1": K1}
    assert config.encryption_key_id == "k2"
    assert K1.hex() not in repr(config)
    assert KVConfig(table="ttt", encryption_keys={"only": K1}).encryption_key_id == "only"
    kms_only = KVConfig(table="ttt", encryption_kms_key_id="alias/x")
    assert kms_only.encryption_keys is None


def test_missing_pydantic_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiodynkv.testing import InMemoryKV

    monkeypatch.setitem(sys.modules, "pydantic", None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[typed\]'"):
        InMemoryKV().typed(dict)


def test_missing_cryptography_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(KVConfigError, match=r"pip install -e '\.\[encryption\]'"):
        KVConfig(table="ttt", encryption_keys={"k1": K1})
    with pytest.raises(KVConfigError, match="encryption_kms_key_id"):
        KVConfig(table="ttt", encryption_kms_key_id="alias/x")


def _key_texts(key: bytes) -> list[str]:
    """Every way a key could be echoed: its base64 (and without padding), hex, bytes repr."""
    text = base64.b64encode(key).decode()
    return [text, text.rstrip("="), text[:16], key.hex(), repr(key)[2:20]]


@pytest.mark.parametrize(
    ("entries", "named"),
    [
        # "=" for ":" (a 32-byte key in base64 ends in "="): the id is not separated
        (lambda a, b: f"k1:{a},k2={b}", "entry 2"),
        (lambda a, b: f"k1:{a},{b}", "entry 2"),  # the id left out
        (lambda a, b: f"k1:{a};k2:{b}", "entry 1"),  # the wrong list separator
        (lambda a, b: f"k1:{a[:-4]},k2:{b}", "entry 1 (id 'k1')"),  # cut short: 29 bytes
        (lambda a, b: f"k1:{a}@,k2:{b}", "entry 1 (id 'k1')"),  # not base64
        (lambda a, b: f"k1:{b}:{a}", "entry 1 (id 'k1')"),  # two keys on one id
        (lambda a, b: f"{a}:k1,k2:{b}", "entry 1"),  # id and key swapped
    ],
    ids=["equals-for-colon", "no-id", "semicolons", "short", "not-base64", "two-keys", "swapped"],
)
def test_a_malformed_encryption_keys_entry_is_named_never_echoed(
    entries: Any, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = base64.b64encode(K1).decode(), base64.b64encode(K2).decode()
    text = entries(first, second)
    env = {"AIODYNKV_TABLE": "ttt", "AIODYNKV_ENCRYPTION_KEYS": text}
    with pytest.raises(KVConfigError) as info:
        KVConfig.from_env(env)
    said = f"{info.value!s} {info.value!r} {info.value.__cause__!r} {info.value.__context__!r}"
    assert "AIODYNKV_ENCRYPTION_KEYS" in said or "encryption_keys" in said
    assert named in said
    for key in (K1, K2):
        for echoed in _key_texts(key):
            assert echoed not in said
    from aiodynkv._cli import main as cli_main

    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        code = cli_main(["get", "k"])
    printed = capsys.readouterr()
    assert code != 0
    assert named in printed.err
    for key in (K1, K2):
        for echoed in _key_texts(key):
            assert echoed not in printed.out + printed.err


def test_a_key_given_as_an_id_is_not_echoed() -> None:
    with pytest.raises(KVConfigError, match="key id") as info:
        KVConfig(table="ttt", encryption_keys={base64.b64encode(K1).decode(): K2})
    for echoed in _key_texts(K1) + _key_texts(K2):
        assert echoed not in str(info.value)
    with pytest.raises(KVConfigError, match="encryption_key_id") as wrong_id:
        KVConfig(
            table="ttt", encryption_keys={"k1": K1}, encryption_key_id=base64.b64encode(K2).decode()
        )
    for echoed in _key_texts(K2):
        assert echoed not in str(wrong_id.value)
