"""A job that must run on one worker at a time, under a lease: ``python examples/job_runner.py``.

Three workers start the nightly job at once; the lease lets exactly one run it. The
job outlasts its lease (2.5 s against 1 s): the lease renews itself in the background.
The winner writes its result together with its fencing token, in a transaction that
also checks no later holder has written already, so a worker that paused past its
lease (and lost it) can never overwrite a newer result.

Starts the embedded emulator (``pip install -e '.[local]'`` in the clone) unless
``AIODYNKV_ENDPOINT`` points at a server already running.
"""

from __future__ import annotations

import asyncio
import os

from aiodynkv import AsyncDynamoKV, LeaseLostError, LockNotAcquiredError
from aiodynkv.testing import LocalDynamoDB

JOB = "jobs:nightly"


async def nightly_job(kv: AsyncDynamoKV, worker: str) -> str:
    """Try to run the job; say what happened."""
    try:
        async with kv.lock(JOB, lease=1.0, wait=0) as held:
            await asyncio.sleep(2.5)  # the work: longer than the lease, renewed meanwhile
            held.check()  # raises LeaseLostError if the lease was lost meanwhile
            last = await kv.get_json(f"{JOB}:result", None)
            async with kv.transaction() as tx:
                result = {"worker": worker, "token": held.token}
                if last is None:
                    tx.set_json(f"{JOB}:result", result, if_absent=True)
                elif last["token"] < (held.token or 0):  # fencing: only newer holders write
                    _, version = await kv.get_with_version(f"{JOB}:result")
                    tx.set_json(f"{JOB}:result", result, if_version=version)
                else:
                    return f"{worker}: a newer holder already wrote; nothing written"
            return f"{worker}: ran the job with fencing token {held.token}"
    except LockNotAcquiredError:
        return f"{worker}: another worker holds the lease; skipped"
    except LeaseLostError:
        return f"{worker}: lost the lease during the job; its result was not written"


async def run(endpoint: str) -> None:
    """Start three workers against one table and print what each did."""
    table = os.environ.get("AIODYNKV_TABLE", "jobs")
    async with AsyncDynamoKV(
        table=table, region="us-east-1", endpoint=endpoint, create_table=True
    ) as kv:
        outcomes = await asyncio.gather(*(nightly_job(kv, f"worker-{n}") for n in (1, 2, 3)))
        for line in sorted(outcomes):
            print(line)
        print("result:", await kv.get_json(f"{JOB}:result"))
        again = await nightly_job(kv, "worker-4")  # the next night: a higher token
        print(again)
        print("result:", await kv.get_json(f"{JOB}:result"))


def main() -> None:
    """Run against AIODYNKV_ENDPOINT or a fresh embedded emulator."""
    endpoint = os.environ.get("AIODYNKV_ENDPOINT")
    if endpoint:
        asyncio.run(run(endpoint))
        return
    with LocalDynamoDB("moto") as server:
        asyncio.run(run(server.endpoint))


if __name__ == "__main__":
    main()
