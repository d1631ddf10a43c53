"""`python -m nox -s docker`: the Docker path for real (docker/README.md).

Run by the nox session with its virtual environment's Python, from the repository root:
starts a private Docker engine when none answers, builds (or loads) the stand-in image,
runs pytest through real containers with Ryuk disabled and nothing skipped, checks that
no container is left, and stops everything it started, even on failure or a signal.
Arguments are passed to pytest.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from engine import LABEL, docker_cli, log, private_engine
from standin import IMAGE, build

ROOT = Path(__file__).resolve().parent.parent
TESTS = ("tests/docker", "tests/integration/test_contract.py")


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _leftovers(env: dict[str, str]) -> list[str]:
    """Containers the tests left behind (testcontainers', compose's, the build's)."""
    found = []
    for label in ("org.testcontainers=true", "com.docker.compose.project=aiodynkv-nox", LABEL):
        out = subprocess.run(  # noqa: S603
            [docker_cli(), "ps", "-aq", "--filter", f"label={label}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        found += out.split()
    return found


def main(pytest_args: list[str]) -> int:
    """Run the session; its exit code."""
    started = time.monotonic()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupted)
    tmp = Path(tempfile.mkdtemp(prefix="aiodynkv-docker-"))
    code = 1
    try:
        with private_engine(tmp) as env:
            build(env)
            env.update(
                {
                    "TESTCONTAINERS_RYUK_DISABLED": "true",
                    "AIODYNKV_DYNAMODB_LOCAL_IMAGE": IMAGE,
                    "AIODYNKV_DYNAMODB_LOCAL_PULL": "never",
                    "AIODYNKV_DYNAMODB_LOCAL_FALLBACK": "fail",
                    "AIODYNKV_AWS_CLI_IMAGE": IMAGE,
                    "PYTHONPATH": os.pathsep.join(
                        filter(None, [str(ROOT / "docker"), env.get("PYTHONPATH")])
                    ),
                }
            )
            env.pop("AIODYNKV_TEST_ENDPOINT", None)
            command = [
                sys.executable, "-m", "pytest", "-p", "pytest_standin", "-p", "no:cacheprovider",
                *TESTS, *pytest_args,
            ]  # fmt: skip
            code = subprocess.run(command, env=env, cwd=ROOT, check=False).returncode  # noqa: S603
            left = _leftovers(env)
            if left:
                log(f"FAILED: the tests left {len(left)} containers behind: {' '.join(left)}")
                code = code or 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if tmp.exists():
            log(f"could not remove all of {tmp}")
        log(f"done in {time.monotonic() - started:.0f} s (pytest exit code {code})")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
