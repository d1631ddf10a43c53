"""Tests that need a Docker engine: deselected, reported in one line, when none answers.

``python -m nox -s docker`` runs them against a private engine and the stand-in image
(docker/README.md). Elsewhere they run with whatever image the settings name
(``AIODYNKV_DYNAMODB_LOCAL_IMAGE``, ``AIODYNKV_AWS_CLI_IMAGE``), Amazon's by default.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiodynkv.testing import docker_available

HERE = Path(__file__).resolve().parent
_NOT_RUN = pytest.StashKey[tuple[str, int]]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    group = [item for item in items if HERE in item.path.parents]
    if not group:
        return
    ok, reason = docker_available()
    if ok:
        return
    config.stash[_NOT_RUN] = (reason, len(group))
    config.hook.pytest_deselected(items=group)
    items[:] = [item for item in items if HERE not in item.path.parents]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if _NOT_RUN in config.stash:
        reason, count = config.stash[_NOT_RUN]
        terminalreporter.write_line(f"Docker tests: {count} not run: {reason}", yellow=True)


@pytest.fixture
def docker_client() -> Iterator[Any]:
    """A docker-py client of the engine the tests use."""
    client = importlib.import_module("docker").from_env()
    try:
        yield client
    finally:
        client.close()
