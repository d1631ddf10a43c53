from __future__ import annotations

import warnings
from typing import Any

import pytest

from aiodynkv import AsyncDynamoKV, InsecureEndpointWarning, KVConfig, KVConfigError
from aiodynkv._codec import RESERVED_ATTRIBUTES
from aiodynkv._config import is_loopback
from aiodynkv._transport.botocore import _uses_local_credentials


@pytest.fixture
def no_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No region, credentials or profile from the environment."""
    for name in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "absent"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent-config"))


def test_defaults_match_gofr_and_dynamodb_conventions() -> None:
    config = KVConfig(table="kvt")
    assert config.partition_key == "pk"
    assert config.value_attribute == "value"
    assert config.ttl_attribute == "expires_at"
    assert config.version_attribute == "ver"
    assert config.consistent_read is True
    assert config.retry_mode == "standard"
    assert config.max_pool_connections > 10


def test_defaults_of_the_new_fields() -> None:
    config = KVConfig(table="kvt")
    assert config.max_value_bytes == 4 * 1024 * 1024
    assert config.close_timeout == 10.0
    assert config.transport in ("lean", "botocore")
    assert config.expose_keys is False


def test_removed_fields_are_gone() -> None:
    for name in ("trace_keys", "log_keys"):
        assert not hasattr(KVConfig(table="kvt"), name)
        fields: dict[str, Any] = {name: True}
        with pytest.raises(TypeError):
            KVConfig(table="kvt", **fields)


@pytest.mark.parametrize("transport", ["botocore", "lean", "memory"])
def test_every_transport_is_accepted(transport: Any) -> None:
    assert KVConfig(table="kvt", transport=transport).transport == transport


@pytest.mark.parametrize("name", ["abc", "a.b", "A_1-x", "x" * 255])
def test_table_names_of_3_to_255_characters_are_accepted(name: str) -> None:
    assert KVConfig(table=name).table == name


def _reported_field(field: str, value: Any) -> str:
    # Attribute-name clashes are reported on value_attribute, whichever field clashed.
    clashes = ("pk", "value", *RESERVED_ATTRIBUTES)
    return "value_attribute" if field.endswith("_attribute") and value in clashes else field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("table", ""),
        ("table", "kv"),
        ("table", "x" * 256),
        ("table", "bad name"),
        ("table", "bad/name"),
        ("table", 5),
        ("endpoint", "localhost:8000"),
        ("endpoint", "ftp://x"),
        ("endpoint", "http://"),
        ("endpoint", "http://127.0.0.1:notaport"),
        ("endpoint", "http://127.0.0.1:99999"),
        ("endpoint", "http://[::1"),
        ("endpoint", 8000),
        ("endpoint", "http://localhost:8000/?a=1"),
        ("endpoint", "http://localhost:8000/#top"),
        ("endpoint", "http://user@localhost:8000"),
        ("region", ""),
        ("region", "  "),
        ("partition_key", ""),
        ("partition_key", "x" * 256),
        ("value_attribute", "pk"),
        ("version_attribute", "value"),
        ("ttl_attribute", "z"),
        ("ttl_attribute", "xm"),
        ("value_attribute", "tk"),
        ("namespace", ""),
        ("namespace", "a\x1fb"),
        ("namespace", 3),
        ("consistent_read", "yes"),
        ("create_table", 1),
        ("coalesce_reads", None),
        ("expose_keys", "yes"),
        ("connect_timeout", 0),
        ("read_timeout", -1),
        ("read_timeout", float("nan")),
        ("read_timeout", float("inf")),
        ("read_timeout", True),
        ("max_attempts", 0),
        ("max_attempts", 51),
        ("max_attempts", 1.5),
        ("retry_mode", "fast"),
        ("max_pool_connections", 0),
        ("compress_threshold", -1),
        ("compress_threshold", 409_601),
        ("batch_concurrency", 0),
        ("batch_deadline", -1),
        ("coalesce_window", 2.0),
        ("coalesce_max_keys", 0),
        ("coalesce_max_keys", 101),
        ("coalesce_max_keys", 1.5),
        ("table_wait_timeout", 0),
        ("profile", ""),
        ("max_value_bytes", 0),
        ("max_value_bytes", 2**40 + 1),
        ("max_value_bytes", 1.5),
        ("max_value_bytes", True),
        ("close_timeout", -1),
        ("close_timeout", float("nan")),
        ("transport", "httpx"),
        ("transport", None),
    ],
)
def test_invalid_values_raise_config_error_naming_the_field(field: str, value: Any) -> None:
    named = _reported_field(field, value)
    with pytest.raises(KVConfigError, match=f"KVConfig.{named}") as info:
        KVConfig(**{"table": "kvt", field: value})
    assert isinstance(info.value, ValueError)
    assert info.value.field == named


_LONG = "\ud800" + "x" * 1499  # invalid everywhere, 1,500 characters


@pytest.mark.parametrize(
    "field",
    [
        "table",
        "namespace",
        "endpoint",
        "partition_key",
        "transport",
        "retry_mode",
        "large_value_bucket",
        "large_value_prefix",
        "consistent_read",
        "max_attempts",
        "read_timeout",
    ],
)
def test_config_errors_cut_long_values(field: str) -> None:
    with pytest.raises(KVConfigError) as info:
        KVConfig(**{"table": "kvt", field: _LONG})  # type: ignore[arg-type]
    message = str(info.value)
    assert "x" * 65 not in message
    assert len(message) < 300
    assert "\\ud800" not in message or "1500 characters" in message


def test_a_1500_character_namespace_is_a_valid_config() -> None:
    assert KVConfig(table="kvt", namespace="c" * 1500).namespace == "c" * 1500


@pytest.mark.parametrize("name", ["kvt\n", "x" * 255 + "\n"])
def test_a_table_name_with_a_trailing_newline_is_refused(name: str) -> None:
    try:
        KVConfig(table=name)
    except KVConfigError:
        return
    raise AssertionError(f"{name!r} was accepted")


def test_zero_close_timeout_and_zero_batch_deadline_are_allowed() -> None:
    config = KVConfig(table="kvt", close_timeout=0, batch_deadline=0)
    assert (config.close_timeout, config.batch_deadline) == (0, 0)


@pytest.mark.parametrize("name", RESERVED_ATTRIBUTES)
@pytest.mark.parametrize(
    "field", ["partition_key", "value_attribute", "ttl_attribute", "version_attribute"]
)
def test_reserved_attribute_names_are_refused_for_every_attribute(field: str, name: str) -> None:
    fields: dict[str, Any] = {field: name}
    with pytest.raises(KVConfigError, match=r"KVConfig\.value_attribute.*'z', 'xm', 'tk'"):
        KVConfig(table="kvt", **fields)


def test_reserved_attributes_are_z_xm_tk() -> None:
    assert set(RESERVED_ATTRIBUTES) == {"z", "xm", "tk"}


def test_config_is_frozen_and_replace_validates() -> None:
    config = KVConfig(table="kvt")
    with pytest.raises(AttributeError):
        config.table = "other"  # type: ignore[misc]
    assert config.replace(table="other").table == "other"
    with pytest.raises(KVConfigError):
        config.replace(read_timeout=0)
    with pytest.raises(KVConfigError):
        config.replace(table="ab")


# -- endpoints ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "local", "insecure"),
    [
        ("http://localhost:8000", True, False),
        ("http://LOCALHOST:8000", True, False),
        ("http://127.0.0.1:8000", True, False),
        ("http://127.1.2.3:8000", True, False),
        ("http://[::1]:8000", True, False),
        ("https://localhost", True, False),
        ("HTTP://example.com", False, True),
        ("http://db.example.com", False, True),
        ("Http://db.example.com:8000/", False, True),
        ("http://127.0.0.1.attacker.example", False, True),
        ("http://localhost.attacker.example:8000", False, True),
        ("http://127.0.0.1.nip.io:8000", False, True),
        ("http://0.0.0.0:8000", False, True),
        ("http://[::2]:8000", False, True),
        ("http://10.0.0.5:8000", False, True),
        ("https://db.example.com", False, False),
        ("HTTPS://db.example.com", False, False),
    ],
)
def test_loopback_and_insecure_endpoints(endpoint: str, local: bool, insecure: bool) -> None:
    config = KVConfig(table="kvt", endpoint=endpoint)
    assert config.is_local is local
    assert config.is_insecure is insecure


def test_no_endpoint_is_aws_itself_neither_local_nor_insecure() -> None:
    config = KVConfig(table="kvt")
    assert (config.is_local, config.is_insecure) == (False, False)


def test_scheme_is_case_insensitive_for_the_server_address() -> None:
    assert KVConfig(table="kvt", endpoint="HTTP://example.com").server_address == (
        "example.com",
        80,
    )
    assert KVConfig(table="kvt", endpoint="HTTPS://example.com").server_address == (
        "example.com",
        443,
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LocalHost", True),
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("[::1]", True),
        ("127.0.0.1.attacker.example", False),
        ("localhost.localdomain", False),
        ("128.0.0.1", False),
        ("", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.usefixtures("no_aws_env")
def test_a_look_alike_loopback_host_gets_no_placeholder_credentials() -> None:
    assert _uses_local_credentials(KVConfig(table="kvt", endpoint="http://127.0.0.1:8000"))
    assert _uses_local_credentials(KVConfig(table="kvt", endpoint="http://[::1]:8000"))
    assert not _uses_local_credentials(
        KVConfig(table="kvt", endpoint="http://127.0.0.1.attacker.example")
    )
    assert not _uses_local_credentials(KVConfig(table="kvt", endpoint="http://db.example.com"))
    assert not _uses_local_credentials(KVConfig(table="kvt"))


@pytest.mark.usefixtures("no_aws_env")
def test_configured_credentials_win_over_placeholders(monkeypatch: pytest.MonkeyPatch) -> None:
    local = KVConfig(table="kvt", endpoint="http://localhost:8000")
    assert not _uses_local_credentials(local.replace(profile="dev"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    assert not _uses_local_credentials(local)


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://admin:hunter2secret@localhost:8000",
        "https://admin:hunter2secret@db.example.com",
        "http://:hunter2secret@localhost:8000",
    ],
)
def test_an_endpoint_with_user_info_is_refused_without_echoing_the_password(
    endpoint: str,
) -> None:
    with pytest.raises(KVConfigError, match=r"KVConfig\.endpoint.*user or password") as info:
        KVConfig(table="kvt", endpoint=endpoint)
    assert "hunter2secret" not in str(info.value)
    assert "hunter2secret" not in repr(info.value)
    assert "hunter2secret" not in str(info.value.args)
    assert info.value.__cause__ is None and info.value.__context__ is None


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://localhost:8000/?token=hunter2secret",
        "http://localhost:8000/#hunter2secret",
        "ftp://hunter2secret.example",
        "hunter2secret",
        "http://localhost:hunter2secret",
    ],
)
def test_endpoint_errors_never_echo_the_value(endpoint: str) -> None:
    with pytest.raises(KVConfigError, match=r"KVConfig\.endpoint") as info:
        KVConfig(table="kvt", endpoint=endpoint)
    assert "hunter2secret" not in str(info.value)


def test_query_and_fragment_are_refused() -> None:
    with pytest.raises(KVConfigError, match="query or fragment"):
        KVConfig(table="kvt", endpoint="https://db.example.com/?x=1")
    with pytest.raises(KVConfigError, match="query or fragment"):
        KVConfig(table="kvt", endpoint="https://db.example.com/#x")
    assert KVConfig(table="kvt", endpoint="https://db.example.com/").endpoint == (
        "https://db.example.com/"
    )


# -- regions ---------------------------------------------------------------------------


@pytest.mark.usefixtures("no_aws_env")
def test_effective_region_prefers_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    config = KVConfig(table="kvt", region="ap-south-1", endpoint="http://localhost:8000")
    assert config.effective_region == "ap-south-1"


@pytest.mark.usefixtures("no_aws_env")
def test_effective_region_then_aws_region_then_aws_default_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = KVConfig(table="kvt", endpoint="http://localhost:8000")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert config.effective_region == "eu-central-1"
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert config.effective_region == "eu-west-1"


@pytest.mark.usefixtures("no_aws_env")
@pytest.mark.parametrize(
    ("endpoint", "region"),
    [
        ("http://localhost:8000", "us-east-1"),
        ("http://127.0.0.1:8000", "us-east-1"),
        ("http://[::1]:8000", "us-east-1"),
        ("http://127.0.0.1.attacker.example", None),
        ("https://db.example.com", None),
        (None, None),
    ],
)
def test_effective_region_falls_back_to_us_east_1_for_loopback_only(
    endpoint: str | None, region: str | None
) -> None:
    assert KVConfig(table="kvt", endpoint=endpoint).effective_region == region


@pytest.mark.usefixtures("no_aws_env")
def test_effective_region_takes_the_profile_region_before_the_loopback_fallback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    config_file = tmp_path / "config"
    config_file.write_text("[default]\nregion = eu-north-1\n[profile dev]\nregion = sa-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    local = KVConfig(table="kvt", endpoint="http://127.0.0.1:8000")
    assert local.effective_region == "eu-north-1"
    assert local.replace(profile="dev").effective_region == "sa-east-1"
    assert local.replace(region="ap-south-1").effective_region == "ap-south-1"
    assert KVConfig(table="kvt").effective_region == "eu-north-1"
    # A profile that does not exist resolves nothing here; opening the store says so.
    assert local.replace(profile="nope").effective_region == "us-east-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    assert local.effective_region == "eu-west-3"


@pytest.mark.usefixtures("no_aws_env")
def test_the_profile_region_follows_the_config_file_and_is_read_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Read once while nothing changes; a file rewritten in place within one clock tick
    (same size, same inode, maybe the same time stamp) is read again."""
    import botocore.session

    built: list[object] = []
    real_init = botocore.session.Session.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "__init__", counting_init)
    config_file = tmp_path / "config"
    config_file.write_text("[default]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    config = KVConfig(table="kvt")
    assert [config.effective_region for _ in range(5)] == ["eu-west-1"] * 5
    assert len(built) == 1
    config_file.write_text("[default]\nregion = eu-west-2\n")
    assert config.effective_region == "eu-west-2"
    monkeypatch.setenv("AWS_PROFILE", "other")  # another variable: looked up again
    config_file.write_text("[profile other]\nregion = eu-west-3\n")
    assert config.effective_region == "eu-west-3"
    assert len(built) == 3


@pytest.mark.usefixtures("no_aws_env")
def test_region_and_server_address() -> None:
    local = KVConfig(table="kvt", endpoint="http://localhost:8000")
    assert local.is_local and local.effective_region == "us-east-1"
    assert local.server_address == ("localhost", 8000)
    remote = KVConfig(table="kvt", region="eu-central-1")
    assert not remote.is_local
    assert remote.server_address == ("dynamodb.eu-central-1.amazonaws.com", 443)
    assert KVConfig(table="kvt", endpoint="https://ddb.example.com").server_address == (
        "ddb.example.com",
        443,
    )
    assert KVConfig(table="kvt", endpoint="http://[::1]:8000").server_address == ("::1", 8000)
    assert KVConfig(table="kvt").server_address == ("dynamodb.us-east-1.amazonaws.com", 443)


# -- from_env --------------------------------------------------------------------------


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
        "AIODYNKV_MAX_VALUE_BYTES": "1024",
        "AIODYNKV_CLOSE_TIMEOUT": "0.5",
        "AIODYNKV_TRANSPORT": "lean",
        "AIODYNKV_EXPOSE_KEYS": "yes",
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
    assert config.max_value_bytes == 1024
    assert config.close_timeout == 0.5
    assert config.transport == "lean"
    assert config.expose_keys is True
    assert config.profile == "dev"
    assert KVConfig.from_env({**env, "AWS_REGION": "us-west-2"}).region == "us-west-2"
    assert KVConfig.from_env(env, table="override").table == "override"


def test_from_env_errors_name_the_variable() -> None:
    with pytest.raises(KVConfigError, match="AIODYNKV_TABLE"):
        KVConfig.from_env({})
    with pytest.raises(KVConfigError, match="AIODYNKV_READ_TIMEOUT"):
        KVConfig.from_env({"AIODYNKV_TABLE": "kvt", "AIODYNKV_READ_TIMEOUT": "soon"})
    with pytest.raises(KVConfigError, match="AIODYNKV_CREATE_TABLE"):
        KVConfig.from_env({"AIODYNKV_TABLE": "kvt", "AIODYNKV_CREATE_TABLE": "maybe"})
    with pytest.raises(KVConfigError, match="AIODYNKV_MAX_VALUE_BYTES"):
        KVConfig.from_env({"AIODYNKV_TABLE": "kvt", "AIODYNKV_MAX_VALUE_BYTES": "4MiB"})
    with pytest.raises(KVConfigError, match=r"KVConfig\.transport"):
        KVConfig.from_env({"AIODYNKV_TABLE": "kvt", "AIODYNKV_TRANSPORT": "carrier-pigeon"})


def test_store_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIODYNKV_TABLE", "envtable")
    monkeypatch.setenv("AIODYNKV_ENDPOINT", "http://127.0.0.1:9")
    store = AsyncDynamoKV.from_env(read_timeout=1.0)
    assert store.config.table == "envtable"
    assert store.config.read_timeout == 1.0


def test_both_spellings_open_the_same_config() -> None:
    by_keywords = AsyncDynamoKV(table="kvt", endpoint="http://127.0.0.1:8000")
    by_config = AsyncDynamoKV(KVConfig(table="kvt", endpoint="http://127.0.0.1:8000"))
    assert by_keywords.config == by_config.config
    assert AsyncDynamoKV(by_config.config, read_timeout=3.0).config.read_timeout == 3.0


def test_repr_shows_no_secrets_or_injected_objects() -> None:
    config = KVConfig(table="kvt", logger=object(), profile="prod")
    text = repr(config)
    assert "logger" not in text and "tracer_provider" not in text
    assert "aws_secret" not in text.lower()


# -- the store warns about plain http ---------------------------------------------------


@pytest.mark.parametrize(
    "endpoint", ["HTTP://db.example.com", "http://127.0.0.1.attacker.example", "http://10.1.2.3"]
)
def test_store_warns_about_plain_http_to_a_host_that_is_not_loopback(endpoint: str) -> None:
    with pytest.warns(InsecureEndpointWarning, match="unencrypted"):
        kv = AsyncDynamoKV(table="kvt", endpoint=endpoint)
    assert endpoint not in repr(kv)
    assert endpoint.lower().split("//")[1] not in repr(kv).lower()


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:8000",
        "http://[::1]:8000",
        "http://localhost:8000",
        "https://db.example.com",
        None,
    ],
)
def test_store_does_not_warn_for_loopback_or_https(endpoint: str | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kv = AsyncDynamoKV(table="kvt", endpoint=endpoint)
        kv_from_config = AsyncDynamoKV(KVConfig(table="kvt", endpoint=endpoint))
    for store in (kv, kv_from_config):
        text = repr(store)
        assert text.startswith("<AsyncDynamoKV table='kvt'")
        if endpoint is not None:
            assert endpoint not in text
            assert "127.0.0.1" not in text and "::1" not in text and "localhost" not in text
            assert "example.com" not in text


def test_the_insecure_warning_points_at_the_callers_line() -> None:
    with pytest.warns(InsecureEndpointWarning) as record:
        AsyncDynamoKV(table="kvt", endpoint="http://db.example.com")
    assert record[0].filename == __file__


def test_the_memory_transport_is_chosen_from_the_environment() -> None:
    env = {"AIODYNKV_TABLE": "kvt", "AIODYNKV_TRANSPORT": "memory"}
    assert KVConfig.from_env(env).transport == "memory"


# -- the whole-call deadline ---------------------------------------------------------------


def test_call_timeout_is_derived_from_the_timeouts_attempts_and_backoff() -> None:
    config = KVConfig(table="tbl")
    assert config.call_timeout is None
    assert config.effective_call_timeout == 3 * (5.0 + 10.0) + (1.0 + 2.0)
    one = KVConfig(table="tbl", max_attempts=1, connect_timeout=1, read_timeout=2)
    assert one.effective_call_timeout == 3.0
    legacy = KVConfig(table="tbl", retry_mode="legacy", connect_timeout=1, read_timeout=1)
    assert legacy.effective_call_timeout == pytest.approx(3 * 2.0 + 0.05 + 0.1)
    assert KVConfig(table="tbl", call_timeout=2.5).effective_call_timeout == 2.5


@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan"), "5", True])
def test_an_invalid_call_timeout_is_refused_naming_the_field(value: Any) -> None:
    with pytest.raises(KVConfigError, match="call_timeout"):
        KVConfig(table="tbl", call_timeout=value)


def test_call_timeout_from_the_environment() -> None:
    env = {"AIODYNKV_TABLE": "tbl", "AIODYNKV_CALL_TIMEOUT": "7.5"}
    assert KVConfig.from_env(env).call_timeout == 7.5
    assert KVConfig.from_env({**env, "AIODYNKV_CALL_TIMEOUT": "none"}).call_timeout is None
    with pytest.raises(KVConfigError, match="AIODYNKV_CALL_TIMEOUT"):
        KVConfig.from_env({**env, "AIODYNKV_CALL_TIMEOUT": "soon"})


@pytest.mark.usefixtures("no_aws_env")
async def test_a_memory_store_reads_no_aws_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.session

    from aiodynkv.testing import InMemoryKV

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a botocore session was built for the memory transport")

    monkeypatch.setattr(botocore.session, "Session", refuse)
    assert KVConfig(table="mem", transport="memory").effective_region == "us-east-1"
    assert KVConfig(table="mem", transport="memory", region="eu-west-3").effective_region == (
        "eu-west-3"
    )
    async with InMemoryKV() as kv:
        await kv.set("k", "v")
        assert await kv.get("k") == "v"
        health = await kv.health()
    assert health.status == "UP" and health.details["region"] == "us-east-1"
