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

import asyncio
import contextvars
import dataclasses
import functools
import os
import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aioboto3
import aiobotocore
import aiohttp
import botocore
import botocore.exceptions as bex
import botocore.loaders
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore import xform_name

from aiodynkv import __version__
from aiodynkv._transport import ServiceError, WireError, _wire

if TYPE_CHECKING:
    from aiodynkv._config import KVConfig

__all__ = ["BotocoreTransport", "new_client"]

_LOCAL_CREDENTIALS = {"aws_access_key_id": "aiodynkv-local", "aws_secret_access_key": "local"}


#: Seconds after the last client was made at which the shared loader lets go of its
#: parse of botocore's ``endpoints.json``.
ENDPOINTS_IDLE = 30.0
_ENDPOINTS = "endpoints"


class _SharedLoader(botocore.loaders.Loader):  # type: ignore[misc]
    """botocore's data loader, keeping ``endpoints.json`` only while clients are being made.

    botocore reads ``endpoints.json`` only while it creates a client (to place the
    region in its partition). Its parse is about 23,000 container objects, which every
    full collection of the cyclic GC walks for as long as they live: a quarter of a
    service's heap. Kept while clients are made (a test suite opens thousands of stores,
    each parse costs 10-20 ms of blocked loop), it goes once no client has been made for
    `ENDPOINTS_IDLE` seconds; the next client made parses it again.
    """

    def __init__(self) -> None:
        super().__init__()
        self.endpoints_parse: tuple[Any, str] | None = None
        self.endpoints_used = 0.0
        self.release_loop: asyncio.AbstractEventLoop | None = None  # where a release is armed

    def load_data_with_path(self, name: str) -> Any:
        if name != _ENDPOINTS:
            return super().load_data_with_path(name)
        self.endpoints_used = time.monotonic()
        if self.endpoints_parse is None:
            fresh = botocore.loaders.Loader(  # parses it; not cached by this loader
                extra_search_paths=list(self.search_paths), include_default_search_paths=False
            )
            self.endpoints_parse = fresh.load_data_with_path(name)
        self._release_later(ENDPOINTS_IDLE)
        return self.endpoints_parse

    def _release_later(self, delay: float) -> None:
        """Arm the release on the running loop (none: kept until a loop makes a client).

        A release armed on a loop that no longer runs (closed, or standing idle) is no
        reason not to arm one on the loop making clients now.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self.release_loop is loop:
            return  # the armed release checks the time of the last use when it fires
        self.release_loop = loop
        loop.call_later(delay, self._release, loop)

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.release_loop is loop:
            self.release_loop = None
        idle = time.monotonic() - self.endpoints_used
        if idle >= ENDPOINTS_IDLE:
            self.endpoints_parse = None
        elif self.endpoints_parse is not None:
            self._release_later(ENDPOINTS_IDLE - idle)


@functools.lru_cache(maxsize=1)
def shared_loader() -> Any:
    """The botocore data loader, which caches what it has parsed (service models, rules)."""
    return _SharedLoader()


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
    botocore_session.register_component("data_loader", shared_loader())
    session = aioboto3.Session(botocore_session=botocore_session, profile_name=config.profile)
    # aioboto3 adds its data folder to the loader's search path on every new session:
    # on the shared loader, once is enough (else the list grows with every store opened).
    paths = botocore_session.get_component("data_loader").search_paths
    paths[:] = dict.fromkeys(paths)
    credentials = _LOCAL_CREDENTIALS if _uses_local_credentials(config) else {}
    return session.client(
        "dynamodb",
        region_name=config.effective_region,
        endpoint_url=config.endpoint,
        config=client_config(config),
        **credentials,
    )


#: The User-Agent of every request, made once. Left to itself, botocore builds its own
#: from a dozen components, each cleaned character by character, twice per request: an
#: eighth of a GetItem's client CPU. Given one, it sends that (with any extra the
#: session or config adds).
_USER_AGENT = (
    f"aiodynkv/{__version__} md/Botocore#{botocore.__version__} "
    f"md/aiobotocore#{aiobotocore.__version__} lang/python#{platform.python_version()}"
)


def client_config(config: KVConfig, **extra: Any) -> Any:
    """The botocore ``Config`` of every client a store opens (DynamoDB, S3, KMS)."""
    return AioConfig(
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        # total_max_attempts counts the first attempt, as KVConfig.max_attempts does
        # (botocore's own max_attempts counts retries only).
        retries={"total_max_attempts": config.max_attempts, "mode": config.retry_mode},
        max_pool_connections=config.max_pool_connections,
        user_agent=_USER_AGENT,
        **extra,
    )


@dataclasses.dataclass(slots=True)
class _Attempts:
    """What the retry hooks saw of one request's attempts."""

    in_doubt: bool = False
    seen: int = 0  # attempts the hooks saw
    unverified: str = ""  # why the latest reply cannot be trusted ("" when it can)


_CURRENT: contextvars.ContextVar[_Attempts | None] = contextvars.ContextVar(
    "aiodynkv_attempts", default=None
)
# Failures after which the server may have applied the request (HTTPClientError covers
# read timeouts and closed connections), and those after which it was never sent.
_AMBIGUOUS = (
    bex.HTTPClientError,
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientPayloadError,
    ConnectionResetError,
)
_NEVER_SENT = (bex.ConnectTimeoutError, bex.EndpointConnectionError, bex.ProxyConnectionError)


def _record_attempt(
    caught_exception: BaseException | None = None, response: Any = None, **_: Any
) -> None:
    """The ``needs-retry`` hook, after every attempt: count it, note if it may have been applied.

    An attempt without a reply clears the doubt about an earlier reply's contents
    (`_verify_reply`): that reply is not the answer.
    """
    attempts = _CURRENT.get()
    if attempts is None:
        return
    attempts.seen += 1
    if caught_exception is not None:
        attempts.unverified = ""
        ambiguous = isinstance(caught_exception, _AMBIGUOUS)
        attempts.in_doubt |= ambiguous and not isinstance(caught_exception, _NEVER_SENT)
    else:
        status = getattr(response[0], "status_code", 0) if isinstance(response, tuple) else 0
        attempts.in_doubt |= isinstance(status, int) and status >= 500


def _verify_reply(response_dict: Any = None, **_: Any) -> None:
    """The ``before-parse`` hook: note a reply that is not verifiably DynamoDB's.

    botocore retries a CRC mismatch but returns the last mismatching reply as data,
    raises a bare ``ValueError`` for a CRC header that is not a number, parses a 2xx
    body that is not JSON as an empty reply and fails on a JSON array.
    """
    attempts = _CURRENT.get()
    if attempts is None or not isinstance(response_dict, dict):
        return
    raw = response_dict.get("body")
    if not isinstance(raw, bytes):
        return  # a streaming body: DynamoDB has none
    headers = response_dict.get("headers") or {}
    problem = _wire.crc32_problem(headers.get("x-amz-crc32"), raw)
    status = response_dict.get("status_code", 0)
    if not problem and isinstance(status, int) and 200 <= status < 300:
        try:
            _wire.success_body(raw, _wire.loads)  # botocore decodes the binary values
        except _wire.AttemptError as exc:
            problem = str(exc)
    attempts.unverified = problem  # of this reply: a later attempt's reply replaces it
    attempts.in_doubt |= bool(problem)


class BotocoreTransport:
    """Sends requests through an open aiobotocore DynamoDB client."""

    __slots__ = ("_client", "_methods", "_secrets")

    def __init__(self, client: Any) -> None:
        self._client = client
        self._methods: dict[str, Any] = {}
        meta = getattr(client, "meta", None)
        endpoint_url = getattr(meta, "endpoint_url", None)
        proxy = _wire.proxy_for(client, endpoint_url) if isinstance(endpoint_url, str) else None
        self._secrets = _wire.split_proxy(proxy)[2]
        events = getattr(meta, "events", None)
        if events is not None:
            # unique ids: a client shared by several stores counts each attempt once.
            # No handler of ours on events botocore has none for (before-send): an event
            # without handlers costs the client nothing.
            events.register_first(
                "needs-retry.dynamodb", _record_attempt, unique_id="aiodynkv-record-attempt"
            )
            events.register_first(
                "before-parse.dynamodb", _verify_reply, unique_id="aiodynkv-verify-reply"
            )

    async def send(self, action: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Call the client method for `action` (``GetItem`` → ``get_item``)."""
        if not self._secrets:
            return await self._send(action, request)
        failure: ServiceError | WireError | None = None
        try:
            return await self._send(action, request)
        except (ServiceError, WireError) as exc:
            failure = exc
        # botocore quotes the proxy URL aiohttp quotes, credentials and all: mask them, and
        # raise outside the except block, so that no implicit context carries them
        failure.args = (_wire.mask(str(failure), self._secrets),)
        if isinstance(failure, ServiceError):
            failure.message = _wire.mask(failure.message, self._secrets)
        failure.__cause__ = _wire.scrubbed(failure.__cause__, self._secrets)
        failure.__context__ = None
        raise failure

    async def _send(self, action: str, request: Mapping[str, Any]) -> dict[str, Any]:
        method = self._methods.get(action)
        if method is None:
            method = self._methods[action] = getattr(self._client, xform_name(action))
        attempts = _Attempts()
        token = _CURRENT.set(attempts)
        try:
            try:
                response: dict[str, Any] = await method(**request)
            except Exception as exc:
                if attempts.unverified:  # botocore's answer to a reply it could not check
                    raise _unverified(action, attempts) from exc
                raise
            if attempts.unverified:
                raise _unverified(action, attempts)
        except WireError:
            raise
        except bex.EndpointResolutionError as exc:  # account_id_endpoint_mode "required"
            raise _wire.endpoint_config_error(exc) from None
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


def _unverified(action: str, attempts: _Attempts) -> WireError:
    """The failure for a request whose last reply could not be verified."""
    why = f"{action}: {attempts.unverified} (attempt {attempts.seen})"
    return WireError(why, timeout=False, in_doubt=True, attempts=attempts.seen)


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
