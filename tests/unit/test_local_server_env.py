"""What the emulator's process inherits from the test run that starts it."""

from __future__ import annotations

from typing import Any

import pytest

from aiodynkv.testing import LocalDynamoDB


class StartedError(Exception):
    """Stands in for the server's start: the command and its environment were seen."""


def test_the_emulator_does_not_run_under_the_callers_coverage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """coverage's subprocess patch would measure every request the emulator serves."""
    monkeypatch.setenv("COVERAGE_PROCESS_CONFIG", "{}")
    monkeypatch.setenv("COVERAGE_PROCESS_START", "pyproject.toml")
    monkeypatch.setenv("AIODYNKV_KEPT", "yes")
    seen: dict[str, Any] = {}

    def popen(_command: list[str], **kwargs: Any) -> None:
        seen.update(kwargs)
        raise StartedError

    monkeypatch.setattr("subprocess.Popen", popen)
    server = LocalDynamoDB("moto", env={"EXTRA": "1"})
    with pytest.raises(StartedError):
        server._start_process()
    env = seen["env"]
    assert "COVERAGE_PROCESS_CONFIG" not in env
    assert "COVERAGE_PROCESS_START" not in env
    assert env["AIODYNKV_KEPT"] == "yes"
    assert env["EXTRA"] == "1"
    assert server._log is None  # the server's log file is closed when it cannot start
