"""The aioboto3 client: how a store builds it, and the transport that sends through it.

`new_client` builds the aiobotocore DynamoDB client from a `KVConfig` (region,
endpoint, timeouts, retries, pool, credentials). `BotocoreTransport` sends every
request through such a client, so botocore's event hooks and
``AiobotocoreInstrumentor`` see each call, and turns botocore's failures into
`ServiceError` / `WireError`. A botocore ``needs-retry`` hook records whether any
attempt of a request may have been applied (read timeout, dropped connection, 5xx),
which botocore itself does not report.
"""

from __future__ import annotations

import contextvars
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aioboto3
import aiohttp
import botocore.exceptions as bex
import botocore.loaders
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore import xform_name

from aiodynkv._transport.base import ServiceError, WireError
from aiodynkv._version import __version__

if TYPE_CHECKING:
    from aiodynkv._config import KVConfig

__all__ = ["BotocoreTransport", "new_client"]

_LOCAL_CREDENTIALS = {"aws_access_key_id": "aiodynkv-local", "aws_secret_access_key": "local"}


@functools.lru_cache(maxsize=1)
def _shared_loader() -> Any:
    """The botocore data loader, which caches what it has parsed (service models, rules)."""
    return botocore.loaders.create_loader()


def _uses_local_credentials(config: KVConfig) -> bool:
    """A loopback endpoint with no credentials configured gets placeholder ones."""
    if not config.is_local or config.profile:
        return False
    if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"):
        return False
    shared = os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")
    return not Path(shared).expanduser().exists()


def new_client(config: KVConfig) -> Any:
    """The aiobotocore DynamoDB client for `config`, as an async context manager.

    Without a region anywhere (argument, environment, ``~/.aws/config``), botocore
    raises ``NoRegionError`` when it is entered; a loopback endpoint signs for
    ``us-east-1``.
    """
    botocore_session = AioSession()
    # The parsed service model and endpoint rules are the same for every store:
    # share one loader per process instead of parsing them again per store.
    botocore_session.register_component("data_loader", _shared_loader())
    session = aioboto3.Session(botocore_session=botocore_session, profile_name=config.profile)
    credentials = _LOCAL_CREDENTIALS if _uses_local_credentials(config) else {}
    botocore_config = AioConfig(
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        # total_max_attempts counts the first attempt, as KVConfig.max_attempts does
        # (botocore's own max_attempts counts retries only).
        retries={"total_max_attempts": config.max_attempts, "mode": config.retry_mode},
        max_pool_connections=config.max_pool_connections,
        user_agent_extra=f"aiodynkv/{__version__}",
    )
    return session.client(
        "dynamodb",
        region_name=config.effective_region,
        endpoint_url=config.endpoint,
        config=botocore_config,
        **credentials,
    )


class _Attempts:
    """What the retry hook saw of one request's attempts."""

    __slots__ = ("in_doubt",)

    def __init__(self) -> None:
        self.in_doubt = False


_CURRENT: contextvars.ContextVar[_Attempts | None] = contextvars.ContextVar(
    "aiodynkv_attempts", default=None
)
# Failures after which the server may have applied the request.
_AMBIGUOUS = (
    bex.ReadTimeoutError,
    bex.ConnectionClosedError,
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientPayloadError,
    ConnectionResetError,
)
_NEVER_SENT = (bex.ConnectTimeoutError, bex.EndpointConnectionError)


def _is_ambiguous(caught: BaseException | None, response: Any) -> bool:
    if caught is not None:
        if isinstance(caught, _NEVER_SENT):
            return False
        return isinstance(caught, (*_AMBIGUOUS, bex.HTTPClientError))
    if response is not None:
        status = getattr(response[0], "status_code", 0) if isinstance(response, tuple) else 0
        return isinstance(status, int) and status >= 500
    return False


def _record_attempt(
    caught_exception: BaseException | None = None, response: Any = None, **_: Any
) -> None:
    """The ``needs-retry`` hook: note an attempt that may have been applied."""
    attempts = _CURRENT.get()
    if attempts is not None and _is_ambiguous(caught_exception, response):
        attempts.in_doubt = True


class BotocoreTransport:
    """Sends requests through an open aiobotocore DynamoDB client."""

    __slots__ = ("_client", "_methods")

    def __init__(self, client: Any) -> None:
        self._client = client
        self._methods: dict[str, Any] = {}
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:
            events.register_first("needs-retry.dynamodb", _record_attempt)

    async def send(self, action: str, request: dict[str, Any]) -> dict[str, Any]:
        """Call the client method for `action` (``GetItem`` → ``get_item``)."""
        method = self._methods.get(action)
        if method is None:
            method = self._methods[action] = getattr(self._client, xform_name(action))
        attempts = _Attempts()
        token = _CURRENT.set(attempts)
        try:
            response: dict[str, Any] = await method(**request)
        except bex.ClientError as exc:
            raise _service_error(exc, attempts.in_doubt) from exc
        except (bex.ReadTimeoutError, bex.ConnectTimeoutError) as exc:
            in_doubt = attempts.in_doubt or isinstance(exc, bex.ReadTimeoutError)
            raise WireError(str(exc), timeout=True, in_doubt=in_doubt) from exc
        except TimeoutError as exc:
            raise WireError(str(exc) or "timed out", timeout=True, in_doubt=True) from exc
        except (bex.ConnectionError, bex.HTTPClientError, aiohttp.ClientError, OSError) as exc:
            in_doubt = attempts.in_doubt or not isinstance(exc, _NEVER_SENT)
            raise WireError(str(exc), timeout=False, in_doubt=in_doubt) from exc
        finally:
            _CURRENT.reset(token)
        if attempts.in_doubt:
            response.setdefault("ResponseMetadata", {})["InDoubt"] = True
        return response

    async def aclose(self) -> None:
        """The client is closed by whoever entered it (the store, or the user's own)."""


def _service_error(exc: bex.ClientError, in_doubt: bool) -> ServiceError:
    response = exc.response
    error = response.get("Error", {})
    meta = response.get("ResponseMetadata", {})
    status = meta.get("HTTPStatusCode", 0)
    return ServiceError(
        str(error.get("Code", "")),
        str(error.get("Message", "")),
        status=status if isinstance(status, int) else 0,
        item=response.get("Item"),
        body=dict(response),
        attempts=int(meta.get("RetryAttempts", 0) or 0) + 1,
        in_doubt=in_doubt or (isinstance(status, int) and status >= 500),
    )
