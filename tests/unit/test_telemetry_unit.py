from __future__ import annotations

from typing import Any

import structlog
from structlog.testing import capture_logs

from aiodynkv import KVConfig
from aiodynkv._telemetry import Telemetry


def test_capacity_and_retries_are_read_from_responses() -> None:
    tel = Telemetry(KVConfig(table="t"))
    with tel.operation("get_many", "BatchGetItem", batch_size=3) as op:
        op.observe(
            {
                "ConsumedCapacity": [{"TableName": "t", "CapacityUnits": 1.5}],
                "ResponseMetadata": {"RetryAttempts": 2},
            }
        )
        op.observe({"ConsumedCapacity": {"CapacityUnits": 2.0, "ReadCapacityUnits": 2.0}})
    assert op.read_units == 3.5 and op.write_units == 0
    assert op.retries == 2


def test_writes_count_write_units() -> None:
    tel = Telemetry(KVConfig(table="t"))
    with tel.operation("set", "UpdateItem", "k") as op:
        op.observe({"ConsumedCapacity": {"CapacityUnits": 1.0}})
    assert (op.read_units, op.write_units) == (0.0, 1.0)


def test_retried_calls_log_a_warning_even_unconfigured() -> None:
    structlog.reset_defaults()
    tel = Telemetry(KVConfig(table="t"))
    with capture_logs() as logs:
        with tel.operation("get", "GetItem", "k") as op:
            op.observe({"ResponseMetadata": {"RetryAttempts": 1}})
        tel.warn("aiodynkv.something", detail=1)
        tel.debug("aiodynkv.detail", n=1)
    structlog.reset_defaults()
    levels = [(e["event"], e["log_level"]) for e in logs]
    assert levels == [
        ("aiodynkv.get", "warning"),
        ("aiodynkv.something", "warning"),
        ("aiodynkv.detail", "debug"),
    ]
    assert logs[0]["retries"] == 1


def test_cancellation_is_logged_as_cancelled_not_as_error() -> None:
    import asyncio

    events: list[tuple[str, str, dict[str, Any]]] = []

    class Recorder:
        def debug(self, event: str, **fields: Any) -> None:
            events.append(("debug", event, fields))

        def error(self, event: str, **fields: Any) -> None:
            events.append(("error", event, fields))

        warning = debug

    tel = Telemetry(KVConfig(table="t", logger=Recorder()))
    try:
        with tel.operation("get", "GetItem", "k"):
            raise asyncio.CancelledError
    except asyncio.CancelledError:
        pass
    assert events[0][0] == "debug" and events[0][2]["outcome"] == "cancelled"
