"""pytest plugin of `nox -s docker`: what goes through containers, with nothing skipped.

- Selects the tests under tests/docker and those on the ``dynamodb-local`` backend (the
  contract suite's parameter, or the ``dynamodb_local_endpoint`` fixture); deselects
  the rest.
- Deselects, in one reported line, the ``dynamodb-local`` tests that need a capability
  the stand-in lacks (``STANDIN_LACKS``, or what tests/conftest.py declares DynamoDB
  Local lacks): they would be skipped, and this session skips nothing.
- Fails the run when any test was skipped, or fewer than ``--standin-min-passed``
  passed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

# What moto inside the stand-in lacks that DynamoDB Local has (tests/conftest.py declares
# the same for the moto backend).
STANDIN_LACKS = {
    "exact_size_limit": "moto counts item size its own way (rejects items DynamoDB accepts)",
}
DOCKER_TESTS = Path(__file__).resolve().parent.parent / "tests" / "docker"
_COUNTS = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--standin-min-passed``."""
    parser.addoption(
        "--standin-min-passed",
        type=int,
        default=20,
        help="fail unless at least this many tests passed (nox -s docker)",
    )


def _on_dynamodb_local(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    on_it = callspec is not None and callspec.params.get("backend") == "dynamodb-local"
    return on_it or "dynamodb_local_endpoint" in getattr(item, "fixturenames", ())


def _lacks(item: pytest.Item) -> set[str]:
    marker = item.get_closest_marker("backend_needs")
    if marker is None or not _on_dynamodb_local(item):
        return set()
    declared = set(STANDIN_LACKS)
    conftest = sys.modules.get("tests.conftest")
    if conftest is not None:
        declared |= set(conftest.CAPABILITIES.get("dynamodb-local", {}))
    return set(marker.args) & declared


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep what runs through containers and can pass on the stand-in."""
    keep, other, lacking = [], [], []
    for item in items:
        if DOCKER_TESTS not in item.path.parents and not _on_dynamodb_local(item):
            other.append(item)
        elif _lacks(item):
            lacking.append(item)
        else:
            keep.append(item)
    if other or lacking:
        config.hook.pytest_deselected(items=other + lacking)
    items[:] = keep
    if lacking:
        needs = sorted(set().union(*(_lacks(item) for item in lacking)))
        config.stash[_COUNTS] = [
            f"stand-in: {len(lacking)} dynamodb-local tests deselected, they need "
            f"{', '.join(needs)}, which the stand-in or DynamoDB Local lacks"
        ]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run when anything was skipped or too little passed."""
    config = session.config
    reporter: Any = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = len(reporter.stats.get("skipped", []))
    passed = len(reporter.stats.get("passed", []))
    least = int(config.getoption("--standin-min-passed"))
    lines = config.stash.setdefault(_COUNTS, [])
    if skipped:
        lines.append(f"stand-in: FAILED: {skipped} tests skipped; this session skips nothing")
    if passed < least:
        lines.append(f"stand-in: FAILED: {passed} tests passed, fewer than {least}")
    if (skipped or passed < least) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The lines above, at the end of the summary."""
    for line in config.stash.get(_COUNTS, []):
        terminalreporter.write_line(line, red="FAILED" in line, yellow="FAILED" not in line)
