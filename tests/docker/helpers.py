"""Helpers of the Docker tests: run a command, find the docker client."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def docker_cli() -> str:
    """Debian's docker client when present (it matches Debian's engine), else docker."""
    return "/usr/bin/docker" if Path("/usr/bin/docker").is_file() else "docker"


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        args,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
