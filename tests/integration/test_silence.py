"""The library prints nothing until the application configures logging.

Each check runs in a fresh interpreter (``sys.executable -c``), so that neither
pytest's log capture nor another test's structlog or logging setup can hide or
add output: failing calls against the embedded emulator, caught by the program,
must leave stdout and stderr empty; after ``logging.basicConfig(level=DEBUG)``
the same events reach stderr through the standard library's ``aiodynkv`` logger.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid

import pytest

_FAILING_CALLS = textwrap.dedent(
    """
    import asyncio
    import sys

    from aiodynkv import (
        AsyncDynamoKV,
        ConditionFailedError,
        StoreClosedError,
        WrongTypeError,
    )


    async def failing_calls(endpoint: str) -> None:
        kv = AsyncDynamoKV(table=TABLE, endpoint=endpoint, create_table=True, transport=TRANSPORT)
        async with kv:
            await kv.set("name", "alice")
            try:
                await kv.incr("name")
            except WrongTypeError:
                pass
            else:
                sys.exit("incr on a string did not raise WrongTypeError")
            _, version = await kv.get_with_version("name")
            try:
                await kv.set("name", "bob", if_version=version + 1)
            except ConditionFailedError:
                pass
            else:
                sys.exit("a stale if_version did not raise ConditionFailedError")
            assert await kv.get("missing", None) is None
        try:
            await kv.get("name")
        except StoreClosedError:
            pass
        else:
            sys.exit("a closed store did not raise StoreClosedError")


    SETUP

    asyncio.run(failing_calls(ENDPOINT))
    """
)


def _run(setup: str, transport: str, endpoint: str) -> subprocess.CompletedProcess[str]:
    """The script in a fresh interpreter, against the session's moto server."""
    script = _FAILING_CALLS.replace("SETUP", setup).replace("TRANSPORT", repr(transport))
    script = script.replace("ENDPOINT", repr(endpoint))
    script = script.replace("TABLE", repr(f"silence-{uuid.uuid4().hex[:8]}"))
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "AIODYNKV_", "PYTHONWARNINGS"))
    }
    return subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("transport", ["botocore", "lean"])
def test_failing_calls_print_nothing_without_logging_configured(
    transport: str, moto_endpoint: str
) -> None:
    result = _run("", transport, moto_endpoint)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


@pytest.mark.parametrize("transport", ["botocore", "lean"])
def test_events_reach_the_stdlib_logger_once_logging_is_configured(
    transport: str, moto_endpoint: str
) -> None:
    setup = "import logging\nlogging.basicConfig(level=logging.DEBUG)"
    result = _run(setup, transport, moto_endpoint)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if ":aiodynkv:" in line]
    incr = [line for line in lines if "aiodynkv.incr" in line]
    # The failure raised to the caller is INFO, with its type and no key.
    assert any(
        line.startswith("INFO:aiodynkv:") and "error_type='WrongTypeError'" in line for line in incr
    ), lines
    conditional = [line for line in lines if "aiodynkv.set" in line]
    assert any("outcome='condition_failed'" in line for line in conditional), lines
    assert all(line.startswith("DEBUG:") for line in conditional if "condition_failed" in line)
    assert not any("'name'" in line or "alice" in line or "bob" in line for line in lines)
