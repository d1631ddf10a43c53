"""An order placed in one transaction: ``python examples/order_flow.py``.

Paying for an order changes four keys: the order's status (only if nobody changed it
since we read it), the stock counter, the cart (deleted) and a daily statistic. In
one transaction they all change or none does. A second payment with the stale
version is cancelled, and `TransactionFailedError.reasons` says which key and why.
A snapshot read (``get_many(snapshot=True)``) then sees all four consistently.

Starts the embedded emulator (``pip install -e '.[local]'`` in the clone) unless
``AIODYNKV_ENDPOINT`` points at a server already running.
"""

from __future__ import annotations

import asyncio
import os

from aiodynkv import AsyncDynamoKV, TransactionFailedError


async def pay(kv: AsyncDynamoKV, order: str, version: int) -> None:
    """Mark `order` paid if it is still at `version`, with everything that goes with it."""
    async with kv.transaction() as tx:
        tx.set(f"order:{order}", "paid", if_version=version)
        tx.incr("stock:widget", -1)
        tx.delete(f"cart:{order}")
        tx.incr("stats:paid", 1, ttl=86_400)


async def run(endpoint: str) -> None:
    """Place an order, pay it, try to pay it again with a stale version."""
    table = os.environ.get("AIODYNKV_TABLE", "orders")
    async with AsyncDynamoKV(
        table=table, region="us-east-1", endpoint=endpoint, create_table=True
    ) as kv:
        await kv.set_counter("stock:widget", 10)
        await kv.set("order:1", "new")
        await kv.set("cart:1", "widget x1")
        _, version = await kv.get_with_version("order:1")
        await pay(kv, "1", version)
        print("paid:", await kv.get_many(["order:1", "stock:widget", "cart:1"], snapshot=True))
        try:
            await pay(kv, "1", version)  # stale: the first payment bumped the version
        except TransactionFailedError as exc:
            for reason in exc.failed:
                print(f"cancelled: {reason.key} {reason.code} (now at {reason.current_version})")
        snapshot = await kv.get_many(["order:1", "stock:widget", "stats:paid"], snapshot=True)
        print("unchanged:", snapshot)


def main() -> None:
    """Run against AIODYNKV_ENDPOINT or a fresh embedded emulator."""
    endpoint = os.environ.get("AIODYNKV_ENDPOINT")
    if endpoint:
        asyncio.run(run(endpoint))
        return
    from aiodynkv.testing import LocalDynamoDB

    with LocalDynamoDB("moto") as server:
        asyncio.run(run(server.endpoint))


if __name__ == "__main__":
    main()
