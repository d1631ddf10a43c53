"""DynamoDB Local's image and pull policy as settings, and an engine that cannot pull.

A fake docker client stands in for the engine: no Docker needed.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any, cast

import pytest

import aiodynkv.testing._local as local
from aiodynkv.testing import ImageUnavailableError, LocalDynamoDB, LocalServerError
from aiodynkv.testing import _plugin as plugin

errors = importlib.import_module("docker.errors")
MISSING = "example.org/not-here:1"
OFFLINE = (
    "500 Server Error for http+docker://localhost/v1.41/images/create: Internal Server Error "
    '("Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: '
    'no such host")'
)


class FakeImages:
    def __init__(self, present: set[str]) -> None:
        self.present = present
        self.pulled: list[str] = []

    def get(self, name: str) -> object:
        if name not in self.present:
            raise errors.ImageNotFound(f"No such image: {name}")
        return object()

    def pull(self, name: str) -> object:
        self.pulled.append(name)
        raise errors.APIError(OFFLINE)


class FakeClient:
    def __init__(self, present: set[str]) -> None:
        self.images = FakeImages(present)
        self.closed = 0

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    """An engine that answers, holds no image and cannot pull; nothing may start a container."""
    client = FakeClient(set())
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    for name in ("AIODYNKV_DYNAMODB_LOCAL_IMAGE", "AIODYNKV_DYNAMODB_LOCAL_PULL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AIODYNKV_DYNAMODB_LOCAL_FALLBACK", raising=False)
    monkeypatch.setattr(local, "_docker_client", lambda _timeout: client)
    container_module = importlib.import_module("testcontainers.core.container")

    def no_container(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("testcontainers must not be asked to start a container")

    monkeypatch.setattr(container_module, "DockerContainer", no_container)
    config = importlib.import_module("testcontainers.core.config").testcontainers_config
    monkeypatch.setattr(config, "ryuk_disabled", True)
    return client


def test_the_image_and_pull_policy_default_to_amazons_image_pulled_when_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AIODYNKV_DYNAMODB_LOCAL_IMAGE", raising=False)
    monkeypatch.delenv("AIODYNKV_DYNAMODB_LOCAL_PULL", raising=False)
    server = LocalDynamoDB("dynamodb-local")
    assert (server.image, server.pull) == ("amazon/dynamodb-local:latest", "missing")


def test_the_environment_sets_them_and_the_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIODYNKV_DYNAMODB_LOCAL_IMAGE", "mirror.example/dynamodb-local:2")
    monkeypatch.setenv("AIODYNKV_DYNAMODB_LOCAL_PULL", "never")
    server = LocalDynamoDB("dynamodb-local")
    assert (server.image, server.pull) == ("mirror.example/dynamodb-local:2", "never")
    server = LocalDynamoDB("dynamodb-local", image="mine:1", pull="always")
    assert (server.image, server.pull) == ("mine:1", "always")


def test_an_unknown_pull_policy_is_refused_naming_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError, match=r"^pull must be .* not 'sometimes'"):
        LocalDynamoDB("dynamodb-local", pull=cast("Any", "sometimes"))
    monkeypatch.setenv("AIODYNKV_DYNAMODB_LOCAL_PULL", "if-you-like")
    with pytest.raises(ValueError, match=r"^AIODYNKV_DYNAMODB_LOCAL_PULL must be"):
        LocalDynamoDB("dynamodb-local")


def test_an_image_that_cannot_be_pulled_raises_one_line_naming_image_and_variable(
    engine: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIODYNKV_DYNAMODB_LOCAL_IMAGE", MISSING)
    server = LocalDynamoDB("dynamodb-local")
    with pytest.raises(ImageUnavailableError) as caught:
        server.start()
    message = str(caught.value)
    assert isinstance(caught.value, LocalServerError)
    assert caught.value.image == MISSING
    assert f"{MISSING!r} is not present and could not be pulled" in message
    assert "no such host" in message  # the engine's reason, on the same line
    assert "set AIODYNKV_DYNAMODB_LOCAL_IMAGE to an image" in message
    assert "\n" not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert engine.images.pulled == [MISSING]
    assert engine.closed >= 1
    assert server not in local.running_servers()


def test_pull_never_does_not_pull_and_names_the_policy_setting(engine: FakeClient) -> None:
    with pytest.raises(ImageUnavailableError) as caught:
        LocalDynamoDB("dynamodb-local", image=MISSING, pull="never").start()
    assert engine.images.pulled == []
    message = str(caught.value)
    assert "'never' (AIODYNKV_DYNAMODB_LOCAL_PULL)" in message
    assert "set image= to an image" in message


def test_pull_always_pulls_an_image_that_is_present(engine: FakeClient) -> None:
    engine.images.present.add(MISSING)
    with pytest.raises(ImageUnavailableError, match="could not be pulled"):
        LocalDynamoDB("dynamodb-local", image=MISSING, pull="always").start()
    assert engine.images.pulled == [MISSING]


def test_ryuk_whose_image_cannot_be_pulled_names_the_switch_that_disables_it(
    engine: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = importlib.import_module("testcontainers.core.config").testcontainers_config
    monkeypatch.setattr(config, "ryuk_disabled", False)
    engine.images.present.add(MISSING)
    with pytest.raises(ImageUnavailableError, match="TESTCONTAINERS_RYUK_DISABLED=true") as caught:
        LocalDynamoDB("dynamodb-local", image=MISSING).start()
    assert caught.value.image == config.ryuk_image
    assert engine.images.pulled == [config.ryuk_image]


def _config() -> pytest.Config:
    return cast("pytest.Config", SimpleNamespace(stash=pytest.Stash()))


class Reporter:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_line(self, line: str, **_markup: bool) -> None:
        self.lines.append(line)


@pytest.mark.usefixtures("engine")
def test_the_fixture_falls_back_to_the_emulator_with_one_summary_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIODYNKV_DYNAMODB_LOCAL_IMAGE", MISSING)
    config = _config()
    assert plugin._dynamodb_local(config) is None
    reporter = Reporter()
    plugin.pytest_terminal_summary(reporter, config)
    assert len(reporter.lines) == 1
    (line,) = reporter.lines
    assert line.startswith("aiodynkv: the fixtures used the embedded emulator, not DynamoDB Local")
    assert MISSING in line
    assert "AIODYNKV_DYNAMODB_LOCAL_IMAGE" in line


@pytest.mark.usefixtures("engine")
def test_the_fixture_fails_naming_image_and_settings_when_told_not_to_fall_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIODYNKV_DYNAMODB_LOCAL_IMAGE", MISSING)
    monkeypatch.setenv("AIODYNKV_DYNAMODB_LOCAL_FALLBACK", "fail")
    with pytest.raises(pytest.fail.Exception) as caught:
        plugin._dynamodb_local(_config())
    assert caught.value.pytrace is False
    assert caught.value.__context__ is None  # pytest would print it, traceback and all
    message = str(caught.value)
    assert MISSING in message
    assert "AIODYNKV_DYNAMODB_LOCAL_IMAGE" in message
    assert "AIODYNKV_DYNAMODB_LOCAL_FALLBACK=fail" in message


def test_fallback_fail_without_a_docker_engine_fails_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIODYNKV_DYNAMODB_LOCAL_FALLBACK", "fail")
    monkeypatch.setattr(plugin, "docker_available", lambda: (False, "no Docker engine here"))
    with pytest.raises(pytest.fail.Exception, match="needs Docker: no Docker engine here"):
        plugin._dynamodb_local(_config())
    monkeypatch.delenv("AIODYNKV_DYNAMODB_LOCAL_FALLBACK")
    assert plugin._dynamodb_local(_config()) is None  # the default: the emulator, silently


def test_an_unknown_fallback_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIODYNKV_DYNAMODB_LOCAL_FALLBACK", "retry")
    with pytest.raises(pytest.fail.Exception, match="must be 'moto' or 'fail', not 'retry'"):
        plugin._dynamodb_local(_config())
