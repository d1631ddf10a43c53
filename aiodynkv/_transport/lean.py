"""The lean transport: DynamoDB JSON signed by us and posted over one aiohttp session.

What still comes from botocore (through `LeanTransport.from_client`): the endpoint URL
(FIPS, dual-stack and custom endpoints resolved by its rules), the region, the signing
name, the credentials object (with its own refresh: environment, profiles, SSO,
assume-role, container and instance roles), the CA bundle and the proxy settings.

What this module does itself, because botocore's generic machinery costs more than
DynamoDB needs: the request body is ``json`` of the request dict (binary values
base64-encoded); the reply is ``json.loads`` with binary values decoded back to
``bytes``; the signature is `aiodynkv._transport._sigv4`; the retries are botocore's.

Retries (``retry_mode``):

- ``"standard"`` (and ``"adaptive"``, handled as standard: the client-side rate limiter of
  adaptive mode is not reproduced) follows ``botocore.retries.standard``: retry the
  throttling codes, the transient codes, the codes DynamoDB's model marks retryable,
  HTTP 500/502/503/504, connection errors, timeouts and replies whose ``x-amz-crc32``
  does not match, up to ``max_attempts`` attempts in all, sleeping
  ``random() * min(2 ** (attempt - 1), 20)`` seconds before retry ``attempt``; every retry
  takes 5 tokens (10 after a timeout) from a quota of 500 per transport, and stops being
  made when the quota is empty; a success gives back what its last retry took (1 token
  when it needed none).
- ``"legacy"`` follows botocore's ``_retry.json`` for DynamoDB: HTTP 429/500/502/503/504/509,
  throttling and ``ProvisionedThroughputExceededException``, ``TransactionInProgressException``
  and ``ReplicatedWriteConflictException`` with their status, connection errors, timeouts
  and CRC mismatches; delay ``0.05 * 2 ** (attempt - 1)`` seconds without jitter; no quota.
  ``max_attempts`` counts all attempts here too (botocore's legacy ``max_attempts``
  option counts retries only).

Differences from botocore on purpose: a 2xx reply whose body is not JSON is retried like
a CRC mismatch (botocore raises a parser error); ``ResponseMetadata`` has no
``HTTPHeaders``; a ``{"B": str}`` in a request is sent as is (botocore would base64 the
UTF-8 of the string; our callers always pass bytes).
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from aiodynkv._transport import _retry, _wire
from aiodynkv._transport._sigv4 import Signer, canonical_host
from aiodynkv._transport.base import WireError

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from aiodynkv._transport._sigv4 import FrozenCredentials

__all__ = ["LeanTransport"]

_sleep = asyncio.sleep  # the tests replace it to see the backoff without waiting

_TARGET_PREFIX: Final = "DynamoDB_20120810."
_CONTENT_TYPE: Final = "application/x-amz-json-1.0"
_KEEPALIVE_SECONDS: Final = 12  # aiobotocore's DEFAULT_KEEPALIVE_TIMEOUT


class _Credentials(Protocol):
    """What the transport needs from an aiobotocore credentials object."""

    async def get_frozen_credentials(self) -> FrozenCredentials: ...


class LeanTransport:
    """Signs and posts DynamoDB JSON over one aiohttp session, retrying like botocore.

    Args:
        endpoint_url: The endpoint (``https://dynamodb.us-east-1.amazonaws.com``).
        region: The signing region.
        credentials: An aiobotocore credentials object; its ``get_frozen_credentials()``
            is awaited for every attempt, so refreshable credentials stay fresh.
        connect_timeout: Seconds to establish a connection, per attempt.
        read_timeout: Seconds to wait for each read of the reply, per attempt.
        max_attempts: Attempts in all, the first included (at least 1).
        retry_mode: ``"standard"``, ``"adaptive"`` (handled as standard) or ``"legacy"``.
        max_pool_connections: Most connections open at once; requests beyond wait
            for a free one.
        user_agent: The ``User-Agent`` header.
        signing_name: The SigV4 service name.
        verify: TLS verification: True (botocore's CA bundle), False, or a CA bundle path.
        proxy: A proxy URL for every request, or None.

    Raises:
        ValueError: An argument is out of range.
    """

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        credentials: Any,
        connect_timeout: float,
        read_timeout: float,
        max_attempts: int,
        retry_mode: str,
        max_pool_connections: int,
        user_agent: str,
        signing_name: str = "dynamodb",
        verify: bool | str = True,
        proxy: str | None = None,
    ) -> None:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"endpoint_url must be an http(s) URL: {endpoint_url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"endpoint_url must not have a query or fragment: {endpoint_url!r}")
        if credentials is None:
            raise ValueError("no AWS credentials: DynamoDB requests must be signed")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        if retry_mode not in _retry.RETRY_MODES:
            modes = sorted(_retry.RETRY_MODES)
            raise ValueError(f"retry_mode must be one of {modes}: {retry_mode!r}")
        if max_pool_connections < 1:
            raise ValueError(f"max_pool_connections must be at least 1: {max_pool_connections}")
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("connect_timeout and read_timeout must be positive")
        path = parts.path or "/"
        self.endpoint_url = endpoint_url
        self.region = region
        self.max_attempts = max_attempts
        self.retry_mode = retry_mode
        self.max_pool_connections = max_pool_connections
        self._credentials: _Credentials = credentials
        self._url = URL(endpoint_url).with_path(path)
        self._signer = Signer(
            host=canonical_host(endpoint_url),
            path=path,
            region=region,
            service=signing_name,
            content_type=_CONTENT_TYPE,
        )
        self._extra_headers = {"User-Agent": user_agent, "Accept-Encoding": "identity"}
        self._targets: dict[str, str] = {}
        self._legacy = retry_mode == "legacy"
        self._retryable = _retry.legacy_retryable if self._legacy else _retry.standard_retryable
        self._delay = _retry.legacy_delay if self._legacy else _retry.standard_delay
        self._quota = _retry.RetryQuota()
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._verify = verify
        self._proxy = proxy
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @classmethod
    def from_client(
        cls,
        client: DynamoDBClient,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_attempts: int,
        retry_mode: str,
        max_pool_connections: int,
        user_agent: str,
    ) -> LeanTransport:
        """A transport to the endpoint an open aiobotocore DynamoDB client talks to.

        The endpoint URL and region are the client's (``client.meta``), resolved by
        botocore's endpoint rules; the signing name, credentials (refreshing as the
        client's do), CA bundle and proxy are the client's too.

        Args:
            client: An open aiobotocore/aioboto3 DynamoDB client (not closed by us).
            connect_timeout: See `LeanTransport`.
            read_timeout: See `LeanTransport`.
            max_attempts: See `LeanTransport`.
            retry_mode: See `LeanTransport`.
            max_pool_connections: See `LeanTransport`.
            user_agent: See `LeanTransport`.

        Returns:
            The transport (its HTTP session is opened on first use).

        Raises:
            ValueError: The client has no credentials, or an argument is out of range.
        """
        endpoint_url: str = client.meta.endpoint_url
        credentials, signing_name, verify = _client_internals(client)
        return cls(
            endpoint_url=endpoint_url,
            region=client.meta.region_name,
            credentials=credentials,
            signing_name=signing_name,
            verify=verify,
            proxy=_proxy_for(client, endpoint_url),
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_attempts=max_attempts,
            retry_mode=retry_mode,
            max_pool_connections=max_pool_connections,
            user_agent=user_agent,
        )

    @property
    def quota_available(self) -> int:
        """Tokens left in the retry quota (standard mode)."""
        return self._quota.available

    def _open_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("LeanTransport is closed")
        ssl_option: ssl.SSLContext | bool = False
        if self._url.scheme == "https":
            if self._verify is False:
                ssl_option = False
            else:
                from botocore.httpsession import get_cert_path

                ssl_option = ssl.create_default_context(cafile=get_cert_path(self._verify))
        connector = aiohttp.TCPConnector(
            limit=self.max_pool_connections,
            limit_per_host=0,
            keepalive_timeout=_KEEPALIVE_SECONDS,
            ssl=ssl_option,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("Content-Type",),
            auto_decompress=False,
            trust_env=False,  # the proxy, if any, was resolved once from the environment
        )
        return self._session

    def _target(self, action: str) -> str:
        target = self._targets[action] = _TARGET_PREFIX + action
        return target

    async def send(self, action: str, request: dict[str, Any]) -> dict[str, Any]:
        """Send `request` as DynamoDB action `action`, retrying; return the parsed reply.

        Args:
            action: The DynamoDB action (``"GetItem"``).
            request: The request as botocore's client methods take it (bytes for B).

        Returns:
            The reply with B/BS values as bytes and ``ResponseMetadata`` holding
            ``HTTPStatusCode``, ``RetryAttempts`` and ``RequestId``.

        Raises:
            ServiceError: DynamoDB answered with an error, after retries.
            WireError: No usable answer, after retries.
            RuntimeError: The transport is closed.
        """
        session = self._session or self._open_session()
        body = _wire.dumps(request).encode()
        target = self._targets.get(action) or self._target(action)
        attempt = 0
        in_doubt = False  # has any attempt possibly been applied?
        retry_cost = 0  # quota tokens the latest retry took
        while True:
            attempt += 1
            try:
                status, headers, raw = await self._post(session, target, body)
                if 200 <= status < 300:
                    return self._success(status, headers, raw, attempt, retry_cost, in_doubt)
            except _wire.AttemptError as failure:
                in_doubt = in_doubt or failure.sent
                cost = _retry.TIMEOUT_RETRY_COST if failure.timeout else _retry.RETRY_COST
                if attempt < self.max_attempts and (cost := self._take_quota(cost)):
                    retry_cost = cost
                    await _sleep(self._delay(attempt))
                    continue
                raise WireError(
                    f"{action}: {failure} (attempt {attempt} of {self.max_attempts})",
                    timeout=failure.timeout,
                    in_doubt=in_doubt,
                    attempts=attempt,
                ) from failure.__cause__
            in_doubt = in_doubt or status >= 500  # DynamoDB: a 5xx request may have succeeded
            error = _wire.service_error(status, raw, attempt, in_doubt)
            if (
                self._retryable(error.code, status)
                and attempt < self.max_attempts
                and (cost := self._take_quota(_retry.RETRY_COST))
            ):
                retry_cost = cost
                await _sleep(self._delay(attempt))
                continue
            raise error

    async def _post(
        self, session: aiohttp.ClientSession, target: str, body: bytes
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One attempt: sign, post, read; the status, headers and body of the reply.

        Raises:
            _wire.AttemptError: No reply, a broken one, or one that fails its CRC32 check.
        """
        frozen = await self._credentials.get_frozen_credentials()
        headers = self._signer.headers(target, body, frozen)
        headers.update(self._extra_headers)
        try:
            response = await session.post(self._url, data=body, headers=headers, proxy=self._proxy)
            try:
                raw = await response.read()
            except BaseException:
                response.close()  # a half-read reply spoils the connection
                raise
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise _wire.classify(exc) from exc
        response_headers = response.headers
        crc = response_headers.get("x-amz-crc32")
        if crc is not None and zlib.crc32(raw) != int(crc):
            raise _wire.AttemptError("the reply failed its CRC32 check", timeout=False, sent=True)
        return response.status, response_headers, raw

    def _success(
        self,
        status: int,
        headers: Mapping[str, str],
        raw: bytes,
        attempt: int,
        retry_cost: int,
        in_doubt: bool,
    ) -> dict[str, Any]:
        try:
            parsed = _wire.parse_json(raw) if raw else {}
        except ValueError as exc:
            raise _wire.AttemptError("the reply is not JSON", timeout=False, sent=True) from exc
        if not isinstance(parsed, dict):
            raise _wire.AttemptError("the reply is not a JSON object", timeout=False, sent=True)
        if not self._legacy:
            self._quota.release(retry_cost or _retry.NO_RETRY_INCREMENT)
        metadata: dict[str, Any] = {"HTTPStatusCode": status, "RetryAttempts": attempt - 1}
        if in_doubt:
            metadata["InDoubt"] = True
        request_id = headers.get("x-amzn-RequestId")
        if request_id is not None:
            metadata["RequestId"] = request_id
        parsed["ResponseMetadata"] = metadata
        return parsed

    def _take_quota(self, amount: int) -> int:
        """Take `amount` tokens for a retry: `amount` if taken, 0 when there are too few."""
        if self._legacy:
            return amount  # legacy mode has no quota (and gives nothing back on success)
        return amount if self._quota.acquire(amount) else 0

    async def aclose(self) -> None:
        """Close the HTTP session and its connections. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


# -- what only botocore's internals know --------------------------------------------------


def _client_internals(client: Any) -> tuple[Any, str, bool | str]:
    """The credentials object, signing name and TLS verification of an aiobotocore client.

    botocore has no public accessor for these. ``_get_credentials()`` is botocore's own
    (private) accessor, ``_request_signer`` its request signer; ``_endpoint.http_session``
    holds the ``verify`` setting (``AWS_CA_BUNDLE``, ``ca_bundle``, ``verify=``). If a
    botocore release moves them, this is the one place to change.
    """
    get_credentials = getattr(client, "_get_credentials", None)
    if get_credentials is not None:
        credentials = get_credentials()
    else:
        credentials = client._request_signer._credentials
    signer = client._request_signer
    signing_name = str(getattr(signer, "signing_name", None) or "dynamodb")
    http_session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    verify = getattr(http_session, "_verify", True)
    if verify is None:
        verify = True
    return credentials, signing_name, verify


def _proxy_for(client: Any, endpoint_url: str) -> str | None:
    """The proxy botocore would use for `endpoint_url`: ``proxies`` config, then environment."""
    from botocore.utils import get_environ_proxies

    scheme = urlsplit(endpoint_url).scheme
    configured = getattr(client.meta.config, "proxies", None) or {}
    proxy = configured.get(scheme)
    if proxy is None:
        proxy = get_environ_proxies(endpoint_url).get(scheme)
    return str(proxy) if proxy else None
