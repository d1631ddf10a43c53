"""examples/job_runner.py and examples/order_flow.py run and do what their docstrings say."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_example(name: str, endpoint: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIODYNKV_", "OTEL_"))}
    env.update(AIODYNKV_ENDPOINT=endpoint, AIODYNKV_TABLE=f"ex-{uuid.uuid4().hex[:10]}")
    result = subprocess.run(  # noqa: S603 (our own example)
        [sys.executable, f"examples/{name}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"python examples/{name}" in (ROOT / "examples" / name).read_text()
    return result.stdout.splitlines()


def test_job_runner_runs_the_job_once_per_lease(moto_endpoint: str) -> None:
    lines = run_example("job_runner.py", moto_endpoint)
    ran = [line for line in lines if "ran the job with fencing token 1" in line]
    skipped = [line for line in lines if "another worker holds the lease; skipped" in line]
    assert len(ran) == 1 and len(skipped) == 2, lines
    winner = ran[0].split(":")[0]
    assert f"result: {{'worker': '{winner}', 'token': 1}}" in lines
    assert "worker-4: ran the job with fencing token 2" in lines
    assert lines[-1] == "result: {'worker': 'worker-4', 'token': 2}"


def test_order_flow_is_all_or_nothing(moto_endpoint: str) -> None:
    lines = run_example("order_flow.py", moto_endpoint)
    assert lines[0] == "paid: {'order:1': 'paid', 'stock:widget': 9}"
    assert lines[1].startswith("cancelled: order:1 condition_failed (now at ")
    assert lines[2] == "unchanged: {'order:1': 'paid', 'stock:widget': 9, 'stats:paid': 1}"
    assert len(lines) == 3
