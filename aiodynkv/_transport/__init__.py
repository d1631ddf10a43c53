"""The transport seam: a DynamoDB action name and its request in, the parsed response out.

`botocore.BotocoreTransport` sends through an aioboto3 client, `lean.LeanTransport`
signs and posts DynamoDB JSON itself, `memory.MemoryTransport` answers in process; none
knows about keys, values or TTLs. Each retries as botocore's retry mode does; what still
fails is a `ServiceError` (an error reply) or a `WireError` (no reply), both saying
whether an earlier attempt may have been applied (``in_doubt``), which
`aiodynkv._errors.map_error` turns into the `KVError` tree.

A transport whose ``accepts_text_requests`` attribute is true is also handed requests
that render their own JSON text (`aiodynkv._requests.BatchGetText`, `BatchWriteText`:
read-only mappings); the others are handed plain dicts only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["ServiceError", "Transport", "WireError"]


class ServiceError(Exception):
    """DynamoDB answered with an error.

    Attributes:
        code: The error code without its namespace (``ConditionalCheckFailedException``).
        message: The server's message.
        status: The HTTP status.
        item: The old item a failed condition returned (``ALL_OLD``), else None.
        body: The whole parsed error body (``CancellationReasons`` and the like).
        attempts: How many times the request was sent.
        in_doubt: An earlier attempt of this request may have been applied.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int,
        item: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        attempts: int = 1,
        in_doubt: bool = False,
    ) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status
        self.item = item
        self.body = body or {}
        self.attempts = attempts
        self.in_doubt = in_doubt


class WireError(Exception):
    """No answer: a timeout, or a refused, reset or closed connection.

    Attributes:
        timeout: True for a connect or read timeout.
        in_doubt: The request (this attempt or an earlier one) may have reached the
            server and been applied; False only when no attempt was ever sent (refused
            or connect timeout every time).
        attempts: How many times the request was sent or tried.
    """

    def __init__(self, message: str, *, timeout: bool, in_doubt: bool, attempts: int = 1) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.in_doubt = in_doubt
        self.attempts = attempts


class Transport(Protocol):
    """Sends DynamoDB requests; knows nothing about keys, values or TTLs."""

    async def send(self, action: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Send `request` as DynamoDB action `action`; return the parsed response.

        The response carries ``ResponseMetadata.RetryAttempts`` (retries made) like
        botocore's, and ``ResponseMetadata.InDoubt`` (True) when an earlier attempt
        may have been applied before the one that answered.

        Raises:
            ServiceError: The server answered with an error, after retries.
            WireError: No answer, after retries.
        """
        ...

    async def aclose(self) -> None:
        """Release connections this transport owns. Idempotent."""
        ...
