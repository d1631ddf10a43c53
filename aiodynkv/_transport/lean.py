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
import base64
import http.client
import json
import random
import ssl
import zlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from aiodynkv._transport._sigv4 import Signer, canonical_host
from aiodynkv._transport.base import ServiceError, WireError

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from aiodynkv._transport._sigv4 import FrozenCredentials

__all__ = ["LeanTransport"]

_TARGET_PREFIX: Final = "DynamoDB_20120810."
_CONTENT_TYPE: Final = "application/x-amz-json-1.0"
_KEEPALIVE_SECONDS: Final = 12  # aiobotocore's DEFAULT_KEEPALIVE_TIMEOUT

# botocore.retries.standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES
THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
# TransientRetryableChecker's codes, plus the errors DynamoDB's service model marks
# ``retryable`` (ModeledRetryableChecker): only ReplicatedWriteConflictException today.
TRANSIENT_CODES: Final = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "ReplicatedWriteConflictException",
    }
)
TRANSIENT_STATUSES: Final = frozenset({500, 502, 503, 504})
_STANDARD_CODES: Final = THROTTLING_CODES | TRANSIENT_CODES

# botocore/data/_retry.json: the __default__ policies plus DynamoDB's own.
_LEGACY_STATUSES: Final = frozenset({429, 500, 502, 503, 504, 509})
_LEGACY_CODES: Final = frozenset(
    {
        ("Throttling", 400),
        ("ThrottlingException", 400),
        ("ThrottledException", 400),
        ("RequestThrottledException", 400),
        ("ProvisionedThroughputExceededException", 400),
        ("TransactionInProgressException", 400),
        ("ReplicatedWriteConflictException", 409),
    }
)
_LEGACY_BASE_DELAY: Final = 0.05

QUOTA_CAPACITY: Final = 500
RETRY_COST: Final = 5
TIMEOUT_RETRY_COST: Final = 10
NO_RETRY_INCREMENT: Final = 1
MAX_BACKOFF: Final = 20.0
RETRY_MODES: Final = frozenset({"standard", "adaptive", "legacy"})


class _Credentials(Protocol):
    """What the transport needs from an aiobotocore credentials object."""

    async def get_frozen_credentials(self) -> FrozenCredentials: ...


def _encode_blob(value: object) -> str:
    # json calls this only for what it cannot encode: in DynamoDB JSON that is B/BS bytes.
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_dumps: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":"), default=_encode_blob).encode
_loads = json.loads
_sleep = asyncio.sleep  # the tests replace it to see the backoff without waiting
_b64decode = base64.b64decode


# -- binary values in replies -------------------------------------------------------------


def _decode_value(value: dict[str, Any]) -> None:
    if "B" in value:
        value["B"] = _b64decode(value["B"])
    elif "BS" in value:
        value["BS"] = [_b64decode(v) for v in value["BS"]]
    elif "M" in value:
        _decode_map(value["M"])
    elif "L" in value:
        for element in value["L"]:
            _decode_value(element)


def _decode_map(item: Any) -> None:
    if isinstance(item, dict):
        for value in item.values():
            if isinstance(value, dict):
                _decode_value(value)


def _decode_maps(items: Any) -> None:
    if isinstance(items, list):
        for item in items:
            _decode_map(item)


def _decode_unprocessed(body: dict[str, Any]) -> None:
    unprocessed_keys = body.get("UnprocessedKeys")  # BatchGetItem: table -> {"Keys": [...]}
    if isinstance(unprocessed_keys, dict):
        for keys_and_attributes in unprocessed_keys.values():
            if isinstance(keys_and_attributes, dict):
                _decode_maps(keys_and_attributes.get("Keys"))
    unprocessed_items = body.get("UnprocessedItems")  # BatchWriteItem: table -> requests
    if isinstance(unprocessed_items, dict):
        for requests in unprocessed_items.values():
            for request in requests if isinstance(requests, list) else ():
                put = request.get("PutRequest") if isinstance(request, dict) else None
                delete = request.get("DeleteRequest") if isinstance(request, dict) else None
                if isinstance(put, dict):
                    _decode_map(put.get("Item"))
                if isinstance(delete, dict):
                    _decode_map(delete.get("Key"))


def _decode_metrics(body: dict[str, Any]) -> None:
    metrics = body.get("ItemCollectionMetrics")
    if not isinstance(metrics, dict):
        return
    if "ItemCollectionKey" in metrics:  # PutItem, UpdateItem, DeleteItem
        _decode_map(metrics["ItemCollectionKey"])
        return
    for per_table in metrics.values():  # BatchWriteItem: table -> list
        for entry in per_table if isinstance(per_table, list) else ():
            if isinstance(entry, dict):
                _decode_map(entry.get("ItemCollectionKey"))


def _decode_reply(body: dict[str, Any]) -> None:
    """Decode base64 B/BS values in place, wherever a DynamoDB reply holds items or keys.

    Covers Item, Attributes, LastEvaluatedKey, Items, Responses (BatchGetItem's tables,
    TransactGetItems' and PartiQL's entries), UnprocessedKeys, UnprocessedItems,
    ItemCollectionMetrics, and in error bodies Item, CancellationReasons[].Item and
    BatchExecuteStatement's Error.Item.
    """
    for name in ("Item", "Attributes", "LastEvaluatedKey"):
        if name in body:
            _decode_map(body[name])
    _decode_maps(body.get("Items"))
    responses = body.get("Responses")
    if isinstance(responses, dict):  # BatchGetItem: table -> items
        for items in responses.values():
            _decode_maps(items)
    elif isinstance(responses, list):  # TransactGetItems, PartiQL
        for entry in responses:
            if isinstance(entry, dict):
                _decode_reply(entry)
    _decode_unprocessed(body)
    _decode_metrics(body)
    reasons = body.get("CancellationReasons")  # TransactionCanceledException
    for reason in reasons if isinstance(reasons, list) else ():
        if isinstance(reason, dict):
            _decode_map(reason.get("Item"))
    error = body.get("Error")  # BatchExecuteStatement's per-statement errors
    if isinstance(error, dict):
        _decode_map(error.get("Item"))


def _parse_json(raw: bytes) -> Any:
    value = _loads(raw)
    # Base64 of a binary value never contains '"', so a reply without '"B' has none.
    if b'"B' in raw and isinstance(value, dict):
        _decode_reply(value)
    return value


# -- retry rules --------------------------------------------------------------------------


class _RetryQuota:
    """botocore's ``RetryQuota`` (one per transport, like one per client in botocore)."""

    __slots__ = ("available", "capacity")

    def __init__(self, capacity: int = QUOTA_CAPACITY) -> None:
        self.capacity = capacity
        self.available = capacity

    def acquire(self, amount: int) -> bool:
        if amount > self.available:
            return False
        self.available -= amount
        return True

    def release(self, amount: int) -> None:
        self.available = min(self.capacity, self.available + amount)


def _standard_retryable(code: str, status: int) -> bool:
    return code in _STANDARD_CODES or status in TRANSIENT_STATUSES


def _legacy_retryable(code: str, status: int) -> bool:
    return status in _LEGACY_STATUSES or (code, status) in _LEGACY_CODES


def _standard_delay(attempt: int) -> float:
    return random.random() * min(2.0 ** (attempt - 1), MAX_BACKOFF)  # noqa: S311 - jitter


def _legacy_delay(attempt: int) -> float:
    return _LEGACY_BASE_DELAY * 2.0 ** (attempt - 1)


# -- failures of one attempt --------------------------------------------------------------


class _AttemptError(Exception):
    """One attempt got no usable reply."""

    def __init__(self, message: str, *, timeout: bool, sent: bool) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.sent = sent


def _classify(exc: BaseException) -> _AttemptError:
    """What an exception from aiohttp says about the attempt.

    Nothing was sent when the connection could not be made (refused, DNS, TLS, proxy,
    connect timeout). Anything else happened after the request may have been written:
    a read timeout, a reset, a closed connection, a broken reply.
    """
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _AttemptError(f"could not connect: {exc}", timeout=False, sent=False)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        if _is_connect_timeout(exc):
            return _AttemptError(f"connect timeout: {exc}", timeout=True, sent=False)
        return _AttemptError(f"read timeout: {exc}", timeout=True, sent=True)
    if isinstance(exc, asyncio.TimeoutError):
        return _AttemptError("read timeout", timeout=True, sent=True)
    return _AttemptError(f"connection lost: {type(exc).__name__}: {exc}", timeout=False, sent=True)


def _is_connect_timeout(exc: aiohttp.ServerTimeoutError) -> bool:
    connect_timeout_cls = getattr(aiohttp, "ConnectionTimeoutError", None)  # aiohttp >= 3.10
    if connect_timeout_cls is not None and isinstance(exc, connect_timeout_cls):
        return True
    return str(exc).lower().startswith("connect")  # older aiohttp, as aiobotocore tells


def _error_code(body: dict[str, Any], status: int) -> str:
    # botocore's BaseJSONParser._do_error_parse
    code = body.get("__type") or str(status)
    if not isinstance(code, str):
        code = str(code)
    code = code.split(":", 1)[0]
    return code.rsplit("#", 1)[-1]


def _service_error(status: int, raw: bytes, attempt: int, in_doubt: bool) -> ServiceError:
    body = _error_body(raw, status)
    message = body.get("message", body.get("Message", ""))
    item = body.get("Item")
    return ServiceError(
        _error_code(body, status),
        message if isinstance(message, str) else str(message),
        status=status,
        item=item if isinstance(item, dict) else None,
        body=body,
        attempts=attempt,
        in_doubt=in_doubt,
    )


def _error_body(raw: bytes, status: int) -> dict[str, Any]:
    stripped = raw.strip()
    if status >= 500 and (not stripped or stripped.startswith(b"<html>")):
        # botocore's generic error: a proxy's or load balancer's page, not DynamoDB's JSON
        return {"message": http.client.responses.get(status, "")}
    if not stripped:
        return {}
    try:
        body = _parse_json(raw)
    except ValueError:
        return {"message": raw.decode("utf-8", "replace")}
    return body if isinstance(body, dict) else {"message": str(body)}


# -- the transport ------------------------------------------------------------------------


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
        if retry_mode not in RETRY_MODES:
            raise ValueError(f"retry_mode must be one of {sorted(RETRY_MODES)}: {retry_mode!r}")
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
        self._retryable = _legacy_retryable if self._legacy else _standard_retryable
        self._delay = _legacy_delay if self._legacy else _standard_delay
        self._quota = _RetryQuota()
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
        body = _dumps(request).encode()
        target = self._targets.get(action) or self._target(action)
        attempt = 0
        in_doubt = False  # has any attempt possibly been applied?
        retry_cost = 0  # quota tokens the latest retry took
        while True:
            attempt += 1
            try:
                status, headers, raw = await self._post(session, target, body)
                if 200 <= status < 300:
                    return self._success(status, headers, raw, attempt, retry_cost)
            except _AttemptError as failure:
                in_doubt = in_doubt or failure.sent
                cost = TIMEOUT_RETRY_COST if failure.timeout else RETRY_COST
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
            error = _service_error(status, raw, attempt, in_doubt)
            if (
                self._retryable(error.code, status)
                and attempt < self.max_attempts
                and (cost := self._take_quota(RETRY_COST))
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
            _AttemptError: No reply, a broken one, or one that fails its CRC32 check.
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
            raise _classify(exc) from exc
        response_headers = response.headers
        crc = response_headers.get("x-amz-crc32")
        if crc is not None and zlib.crc32(raw) != int(crc):
            raise _AttemptError("the reply failed its CRC32 check", timeout=False, sent=True)
        return response.status, response_headers, raw

    def _success(
        self, status: int, headers: Mapping[str, str], raw: bytes, attempt: int, retry_cost: int
    ) -> dict[str, Any]:
        try:
            parsed = _parse_json(raw) if raw else {}
        except ValueError as exc:
            raise _AttemptError("the reply is not JSON", timeout=False, sent=True) from exc
        if not isinstance(parsed, dict):
            raise _AttemptError("the reply is not a JSON object", timeout=False, sent=True)
        if not self._legacy:
            self._quota.release(retry_cost or NO_RETRY_INCREMENT)
        metadata: dict[str, Any] = {"HTTPStatusCode": status, "RetryAttempts": attempt - 1}
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
