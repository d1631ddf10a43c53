from __future__ import annotations

from typing import Any

import pytest

from aiodynkv import AsyncDynamoKV, KVConfig, KVConfigError


def test_defaults_match_gofr_and_dynamodb_conventions() -> None:
    config = KVConfig(table="kv")
    assert config.partition_key == "pk"
    assert config.value_attribute == "value"
    assert config.ttl_attribute == "expires_at"
    assert config.consistent_read is True
    assert config.retry_mode == "standard"
    assert config.max_pool_connections > 10


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("table", ""),
        ("table", "bad name"),
        ("table", 5),
        ("endpoint", "localhost:8000"),
        ("endpoint", "ftp://x"),
        ("endpoint", "http://127.0.0.1:notaport"),
        ("region", ""),
        ("partition_key", ""),
        ("value_attribute", "pk"),
        ("ttl_attribute", "z"),
        ("namespace", ""),
        ("namespace", "a\x1fb"),
        ("namespace", 3),
        ("consistent_read", "yes"),
        ("connect_timeout", 0),
        ("read_timeout", -1),
        ("read_timeout", float("nan")),
        ("read_timeout", True),
        ("max_attempts", 0),
        ("max_attempts", 1.5),
        ("retry_mode", "fast"),
        ("max_pool_connections", 0),
        ("compress_threshold", -1),
        ("batch_concurrency", 0),
        ("batch_deadline", -1),
        ("coalesce_window", 2.0),
        ("table_wait_timeout", 0),
        ("profile", ""),
    ],
)
def test_invalid_values_raise_config_error_naming_the_field(field: str, value: Any) -> None:
    fields: dict[str, Any] = {"table": "kv", field: value}
    with pytest.raises(
        KVConfigError, match=f"KVConfig.{field}" if field != "ttl_attribute" else "KVConfig"
    ) as info:
        KVConfig(**fields)
    assert isinstance(info.value, ValueError)


def test_config_is_frozen_and_replace_validates() -> None:
    config = KVConfig(table="kv")
    with pytest.raises(AttributeError):
        config.table = "other"  # type: ignore[misc]
    assert config.replace(table="other").table == "other"
    with pytest.raises(KVConfigError):
        config.replace(read_timeout=0)


def test_from_env_reads_every_field_and_aws_fallbacks() -> None:
    env = {
        "AIODYNKV_TABLE": "sessions",
        "AIODYNKV_ENDPOINT": "http://127.0.0.1:8000",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AIODYNKV_READ_TIMEOUT": "2.5",
        "AIODYNKV_MAX_ATTEMPTS": "5",
        "AIODYNKV_CONSISTENT_READ": "false",
        "AIODYNKV_COMPRESS_THRESHOLD": "none",
        "AIODYNKV_NAMESPACE": "svc",
        "AWS_PROFILE": "dev",
    }
    config = KVConfig.from_env(env)
    assert config.table == "sessions"
    assert config.endpoint == "http://127.0.0.1:8000"
    assert config.region == "eu-west-1"
    assert config.read_timeout == 2.5
    assert config.max_attempts == 5
    assert config.consistent_read is False
    assert config.compress_threshold is None
    assert config.namespace == "svc"
    assert config.profile == "dev"
    assert KVConfig.from_env({**env, "AWS_REGION": "us-west-2"}).region == "us-west-2"
    assert KVConfig.from_env(env, table="override").table == "override"


def test_from_env_errors_name_the_variable() -> None:
    with pytest.raises(KVConfigError, match="AIODYNKV_TABLE"):
        KVConfig.from_env({})
    with pytest.raises(KVConfigError, match="AIODYNKV_READ_TIMEOUT"):
        KVConfig.from_env({"AIODYNKV_TABLE": "t", "AIODYNKV_READ_TIMEOUT": "soon"})
    with pytest.raises(KVConfigError, match="AIODYNKV_CREATE_TABLE"):
        KVConfig.from_env({"AIODYNKV_TABLE": "t", "AIODYNKV_CREATE_TABLE": "maybe"})


def test_store_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIODYNKV_TABLE", "envtable")
    monkeypatch.setenv("AIODYNKV_ENDPOINT", "http://127.0.0.1:9")
    store = AsyncDynamoKV.from_env(read_timeout=1.0)
    assert store.config.table == "envtable"
    assert store.config.read_timeout == 1.0


def test_both_spellings_open_the_same_config() -> None:
    by_keywords = AsyncDynamoKV(table="kv", endpoint="http://127.0.0.1:8000")
    by_config = AsyncDynamoKV(KVConfig(table="kv", endpoint="http://127.0.0.1:8000"))
    assert by_keywords.config == by_config.config
    assert AsyncDynamoKV(by_config.config, read_timeout=3.0).config.read_timeout == 3.0


def test_repr_shows_no_secrets_or_injected_objects() -> None:
    config = KVConfig(table="kv", logger=object(), profile="prod")
    text = repr(config)
    assert "logger" not in text and "tracer_provider" not in text
    assert "aws_secret" not in text.lower()


def test_region_and_server_address() -> None:
    local = KVConfig(table="kv", endpoint="http://localhost:8000")
    assert local.is_local and local.effective_region == "us-east-1"
    assert local.server_address == ("localhost", 8000)
    remote = KVConfig(table="kv", region="eu-central-1")
    assert not remote.is_local
    assert remote.server_address == ("dynamodb.eu-central-1.amazonaws.com", 443)
    assert KVConfig(table="kv", endpoint="https://ddb.example.com").server_address == (
        "ddb.example.com",
        443,
    )
