"""The lean transport: DynamoDB JSON signed by us (`Signer`) and posted over aiohttp.

From botocore, by public interfaces only (`LeanTransport.from_client`,
`ClientCredentials`): the endpoint URL its rules resolve (FIPS, dual-stack, account
ID), region, signing name, refreshing credentials, CA bundle and proxy (proxy
credentials go in a ``Proxy-Authorization`` header and are masked in every error);
with a user's client, `client_settings` gives its timeouts and retries. Retries follow
botocore's modes as `aiodynkv._retry` describes.

Differences from botocore on purpose: a reply that cannot be verified (CRC mismatch, an
``x-amz-crc32`` that is not a 32-bit number, a 2xx body that is not a JSON object) is
retried like a lost reply and in the end raises an in-doubt `WireError`, never returned
as data; ``adaptive`` mode is standard mode without the client-side rate limiter;
``ResponseMetadata`` has no ``HTTPHeaders``; a ``{"B": str}`` in a request is sent as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple
from urllib.parse import quote, urlsplit

import aiohttp
from yarl import URL

from aiodynkv import _retry
from aiodynkv._transport import WireError, _wire

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from aiodynkv._telemetry import HttpSpans

__all__ = [
    "ClientCredentials",
    "Credentials",
    "LeanTransport",
    "Signer",
    "ca_bundle",
    "canonical_host",
    "canonical_path",
    "client_settings",
]

_TARGET_PREFIX: Final = "DynamoDB_20120810."
_CONTENT_TYPE: Final = "application/x-amz-json-1.0"
_KEEPALIVE_SECONDS: Final = 12  # aiobotocore's DEFAULT_KEEPALIVE_TIMEOUT


# -- SigV4 ------------------------------------------------------------------------------------

_ALGORITHM = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_sha256 = hashlib.sha256
_hmac_digest = hmac.digest


class Credentials(NamedTuple):
    """Frozen credentials, as botocore's ``get_frozen_credentials()`` returns them."""

    access_key: str
    secret_key: str
    token: str | None = None


def canonical_host(endpoint_url: str) -> str:
    """The ``Host`` header botocore signs for `endpoint_url` (``auth._host_from_url``).

    Lower case, IPv6 in brackets, the port unless the scheme's default, no user info.
    Raises `ValueError` when the URL has no host.
    """
    parts = urlsplit(endpoint_url)
    host = parts.hostname
    if not host:
        raise ValueError(f"endpoint URL without a host: {endpoint_url!r}")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    return host


def canonical_path(path: str) -> str:
    """The canonical URI of `path`: dot segments and empty segments removed, then quoted.

    The same as botocore's ``normalize_url_path`` followed by ``quote(..., safe="/~")``.
    """
    if not path:
        return "/"
    output: list[str] = []
    for segment in path.split("/"):
        if segment and segment != ".":
            if segment == "..":
                if output:
                    output.pop()
            else:
                output.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and output else ""
    return quote(first + "/".join(output) + last, safe="/~")


def _trim(value: str) -> str:
    # SigV4's Trimall: no leading/trailing blanks, inner runs of blanks become one space.
    return " ".join(value.split())


class Signer:
    """Signs JSON POST requests to one endpoint with SigV4, exactly as botocore's ``SigV4Auth``.

    The headers signed are ``Content-Type``, ``Host``, ``X-Amz-Date``, ``X-Amz-Target`` and
    ``X-Amz-Security-Token`` (with temporary credentials); a unit test compares the result
    with botocore's. Cheaper than botocore: the signing key is cached per (secret, date),
    as a keyed HMAC that each signature copies; the fixed part of the canonical request
    is joined once; the date string is reused within a second.

    Args:
        host: The ``Host`` header (see `canonical_host`).
        path: The request path (``"/"`` for DynamoDB).
        region: The signing region.
        service: The signing name (``"dynamodb"``).
    """

    def __init__(self, *, host: str, path: str = "/", region: str, service: str) -> None:
        self.host = host
        self._region = region
        self._service = service
        self._scope_tail = f"/{region}/{service}/aws4_request"
        self._prefix = (
            f"POST\n{canonical_path(path)}\n\n"
            f"content-type:{_CONTENT_TYPE}\nhost:{_trim(host)}\nx-amz-date:"
        )
        # (secret, date) -> signing key; only the newest is kept (dates only move forward).
        self._key_cache: tuple[str, str, hmac.HMAC | None] = ("", "", None)
        self._token_cache: tuple[str, str] = ("", "")
        self._target_lines: dict[str, str] = {}
        self._last_second = -1
        self._last_stamp = ""

    def _signing_key(self, secret_key: str, date: str) -> hmac.HMAC:
        """An HMAC keyed with the signing key, fed nothing yet: copied for each signature."""
        cached_secret, cached_date, keyed = self._key_cache
        if keyed is not None and cached_secret == secret_key and cached_date == date:
            return keyed
        key = _hmac_digest(f"AWS4{secret_key}".encode(), date.encode(), "sha256")
        for part in (self._region, self._service, "aws4_request"):
            key = _hmac_digest(key, part.encode(), "sha256")
        keyed = hmac.new(key, digestmod="sha256")
        self._key_cache = (secret_key, date, keyed)
        return keyed

    def _target_line(self, target: str) -> str:
        line = self._target_lines.get(target)
        if line is None:
            line = self._target_lines[target] = f"\nx-amz-target:{_trim(target)}\n\n"
        return line

    def timestamp(self) -> str:
        """The current UTC time as SigV4's ``YYYYMMDDTHHMMSSZ``."""
        second = int(time.time())
        if second != self._last_second:
            self._last_stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            self._last_second = second
        return self._last_stamp

    def headers(
        self, target: str, body: bytes, credentials: Credentials, amz_date: str | None = None
    ) -> dict[str, str]:
        """The signed headers (with ``Authorization``) of a POST of exactly `body`.

        `target` is the ``X-Amz-Target`` value; `amz_date` the signing time as
        ``YYYYMMDDTHHMMSSZ``, now when None.
        """
        if amz_date is None:
            amz_date = self.timestamp()
        token = credentials.token
        if token:
            cached_token, token_line = self._token_cache
            if cached_token != token:
                token_line = f"\nx-amz-security-token:{_trim(token)}"
                self._token_cache = (token, token_line)
            signed = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        else:
            token_line = ""
            signed = "content-type;host;x-amz-date;x-amz-target"
        canonical = (
            f"{self._prefix}{amz_date}{token_line}{self._target_line(target)}"
            f"{signed}\n{_sha256(body).hexdigest()}"
        )
        date = amz_date[:8]
        scope = f"{date}{self._scope_tail}"
        to_sign = f"{_ALGORITHM}\n{amz_date}\n{scope}\n{_sha256(canonical.encode()).hexdigest()}"
        mac = self._signing_key(credentials.secret_key, date).copy()
        mac.update(to_sign.encode())
        signature = mac.hexdigest()
        headers = {
            "Content-Type": _CONTENT_TYPE,
            "Host": self.host,
            "X-Amz-Date": amz_date,
            "X-Amz-Target": target,
            "Authorization": (
                f"{_ALGORITHM} Credential={credentials.access_key}/{scope}, "
                f"SignedHeaders={signed}, Signature={signature}"
            ),
        }
        if token:
            headers["X-Amz-Security-Token"] = token
        return headers


# -- the transport ------------------------------------------------------------------------------


class LeanTransport:
    """Signs and posts DynamoDB JSON over one aiohttp session, retrying like botocore.

    Args:
        credentials: Has ``get_frozen_credentials()``, awaited for every attempt (so
            refreshable credentials stay fresh).
        connect_timeout: Seconds to connect, per attempt; `read_timeout`: per read.
        max_attempts: Attempts in all, the first included (at least 1).
        retry_mode: ``"standard"``, ``"adaptive"`` (as standard) or ``"legacy"``.
        max_pool_connections: Most connections open at once; more requests wait.
        verify: TLS verification: True (botocore's CA bundle), False, or a CA bundle path.
        endpoint_resolver: Awaited before the first request: the endpoint URL and proxy
            to use instead of `endpoint_url` and `proxy`.

    Raises:
        ValueError: An argument is out of range.
    """

    #: `send` takes a request that renders its own JSON (`aiodynkv._requests.BatchGetText`...).
    accepts_text_requests: Final = True

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
        endpoint_resolver: Callable[[], Awaitable[tuple[str, str | None]]] | None = None,
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
        self.region = region
        self.max_attempts = max_attempts
        self.max_pool_connections = max_pool_connections
        self._credentials = credentials
        self._signing_name = signing_name
        self._user_agent = user_agent
        self._use_endpoint(endpoint_url, proxy)
        self._resolve_endpoint = endpoint_resolver
        self._legacy = retry_mode == "legacy"
        self._retryable = _retry.legacy_retryable if self._legacy else _retry.standard_retryable
        self._delay = _retry.legacy_delay if self._legacy else _retry.standard_delay
        self._quota = _retry.QUOTA_CAPACITY  # botocore's RetryQuota, one per transport
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._verify = verify
        #: The per-attempt HTTP spans (`aiodynkv._telemetry.HttpSpans`); None: no spans.
        self.spans: HttpSpans | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _use_endpoint(self, endpoint_url: str, proxy: str | None) -> None:
        """Post to `endpoint_url` (through `proxy`) from now on."""
        self.endpoint_url = endpoint_url
        # The path as it goes on the wire (escapes kept, not escaped again) is the one signed.
        url = URL(endpoint_url)
        path = url.raw_path or "/"
        self._url = url.with_path(path, encoded=True)
        self._signer = Signer(
            host=canonical_host(endpoint_url),
            path=path,
            region=self.region,
            service=self._signing_name,
        )
        self._extra_headers = {"User-Agent": self._user_agent, "Accept-Encoding": "identity"}
        self._proxy, self._proxy_headers, self._secrets = _wire.split_proxy(proxy)
        if self._proxy_headers and self._url.scheme == "http":
            # a forwarding proxy reads it from the request (aiohttp sends proxy_headers
            # only with CONNECT); it is not signed, and the proxy removes it
            self._extra_headers.update(self._proxy_headers)
            self._proxy_headers = None

    @classmethod
    def from_client(
        cls,
        client: DynamoDBClient,
        *,
        verify: bool | str | None = None,
        profile: str | None = None,
        **settings: Any,
    ) -> LeanTransport:
        """A transport to the endpoint an open aiobotocore DynamoDB client talks to.

        The endpoint URL (resolved by botocore's rules before the first request, with the
        credentials' account id unless ``account_id_endpoint_mode`` is ``disabled``), region,
        signing name, credentials (refreshing as the client's do), CA bundle and proxy are
        the client's. The client is not closed by us.

        Args:
            client: An open aiobotocore/aioboto3 DynamoDB client.
            verify: TLS verification; by default what botocore sets without ``verify=``
                (`ca_bundle` of `profile`). A client's own ``verify=`` is not visible
                through botocore's public interfaces.
            profile: The profile whose ``ca_bundle`` applies (default: ``AWS_PROFILE``).
            **settings: The other `LeanTransport` arguments.
        """
        endpoint_url: str = client.meta.endpoint_url
        credentials = ClientCredentials(client)

        async def resolve() -> tuple[str, str | None]:
            resolved = await credentials.resolve()
            return resolved, _wire.proxy_for(client, resolved)

        return cls(
            endpoint_url=endpoint_url,
            region=client.meta.region_name,
            credentials=credentials,
            signing_name=str(client.meta.service_model.signing_name or "dynamodb"),
            verify=ca_bundle(profile) if verify is None else verify,
            proxy=_wire.proxy_for(client, endpoint_url),
            endpoint_resolver=resolve,
            **settings,
        )

    @property
    def quota_available(self) -> int:
        """Tokens left in the retry quota (standard mode)."""
        return self._quota

    def _open_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("LeanTransport is closed")
        ssl_option: ssl.SSLContext | bool = False
        if self._url.scheme == "https" and self._verify is not False:
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
            cookie_jar=aiohttp.DummyCookieJar(),  # no skip_auto_headers: Content-Type is set
            auto_decompress=False,
            trust_env=False,  # the proxy, if any, was resolved once from the environment
        )
        return self._session

    async def send(  # noqa: PLR0912, PLR0915 (one loop posts each attempt and decides its retry)
        self, action: str, request: Mapping[str, Any]
    ) -> dict[str, Any]:
        """`aiodynkv._transport.Transport.send` (``RuntimeError`` once closed).

        The reply's ``ResponseMetadata`` also holds ``HTTPStatusCode`` and ``RequestId``.
        """
        if self._resolve_endpoint is not None:
            self._use_endpoint(*await self._resolve_endpoint())
            self._resolve_endpoint = None
        session = self._session or self._open_session()
        body = _wire.body(request)
        traced = None
        if self.spans is not None:
            traced = self.spans.request(action, request, self.endpoint_url, self.region)
        target = _TARGET_PREFIX + action
        attempt = 0
        in_doubt = False  # has any attempt possibly been applied?
        retry_cost = 0  # quota tokens the latest retry took
        while True:
            attempt += 1
            failure: _wire.AttemptError | None = None
            started = 0 if traced is None else traced.start()
            try:
                # One attempt: sign, post, read (`_wire.AttemptError`: no reply, or it
                # fails its CRC), here rather than in a coroutine of its own.
                frozen = await self._credentials.get_frozen_credentials()
                signed = self._signer.headers(target, body, frozen)
                signed.update(self._extra_headers)
                try:
                    response = await session.post(
                        self._url,
                        data=body,
                        headers=signed,
                        proxy=self._proxy,
                        proxy_headers=self._proxy_headers,
                        allow_redirects=False,  # a redirect is an error reply, as on urllib3
                    )
                    try:
                        raw = await response.read()
                    except BaseException:
                        response.close()  # a half-read reply spoils the connection
                        raise
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                    raise _wire.classify(exc) from exc
                headers = response.headers
                problem = _wire.crc32_problem(headers.get("x-amz-crc32"), raw)
                if problem:
                    raise _wire.AttemptError(problem, timeout=False, sent=True)
                status = response.status
                if 200 <= status < 300:
                    reply = _reply(status, headers, raw, attempt - 1, in_doubt)
                    self._refund(retry_cost)
                    if traced is not None:
                        traced.reply(started, reply)
                    return reply
            except _wire.AttemptError as exc:
                failure = exc
            except BaseException as exc:  # cancelled (the call's deadline): the attempt ends
                if traced is not None:
                    traced.failed(started, type(exc).__name__, "the attempt was abandoned")
                raise
            if failure is not None:
                if traced is not None:
                    traced.failed(started, "WireError", _wire.mask(str(failure), self._secrets))
                in_doubt = in_doubt or failure.sent
                retryable = True
                cost = _retry.TIMEOUT_RETRY_COST if failure.timeout else _retry.RETRY_COST
            else:
                in_doubt = in_doubt or status >= 500  # DynamoDB: a 5xx may have been applied
                error = _wire.service_error(status, raw, attempt, in_doubt)
                if traced is not None:
                    traced.error(
                        started,
                        status=status,
                        code=error.code,
                        message=error.message,
                        request_id=headers.get("x-amzn-RequestId"),
                        attempt=attempt,
                    )
                retryable = self._retryable(error.code, status)
                cost = _retry.RETRY_COST
            if retryable and attempt < self.max_attempts and (cost := self._take_quota(cost)):
                retry_cost = cost
                await _retry.sleep(self._delay(attempt))
                continue
            if failure is None:
                raise error
            # raised outside the except block: no implicit context to carry secrets
            raise WireError(
                _wire.mask(
                    f"{action}: {failure} (attempt {attempt} of {self.max_attempts})", self._secrets
                ),
                timeout=failure.timeout,
                in_doubt=in_doubt,
                attempts=attempt,
            ) from _wire.scrubbed(failure.__cause__, self._secrets)

    def _refund(self, cost: int) -> None:
        """A success gives back what its last retry took (1 token when it needed none)."""
        if not self._legacy:  # legacy mode has no quota
            self._quota = min(
                _retry.QUOTA_CAPACITY, self._quota + (cost or _retry.NO_RETRY_INCREMENT)
            )

    def _take_quota(self, amount: int) -> int:
        """Take `amount` tokens for a retry: `amount` if taken, 0 when there are too few."""
        if self._legacy:
            return amount  # legacy mode has no quota (and gives nothing back on success)
        if amount > self._quota:
            return 0
        self._quota -= amount
        return amount

    async def aclose(self) -> None:
        """Close the HTTP session and its connections. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _reply(
    status: int, headers: Mapping[str, str], raw: bytes, retries: int, in_doubt: bool
) -> dict[str, Any]:
    parsed = _wire.success_body(raw)
    metadata: dict[str, Any] = {"HTTPStatusCode": status, "RetryAttempts": retries}
    if in_doubt:
        metadata["InDoubt"] = True
    request_id = headers.get("x-amzn-RequestId")
    if request_id is not None:
        metadata["RequestId"] = request_id
    parsed["ResponseMetadata"] = metadata
    return parsed


# -- what botocore resolves for the client, through its public interfaces ----------------


class ClientCredentials:
    """The endpoint and credentials a DynamoDB request of an aiobotocore client gets.

    Learned through botocore's public interfaces only. One ``GetItem`` through the
    client, answered by a ``before-call`` handler before anything is signed or sent
    (as botocore's ``Stubber`` answers), shows the URL botocore's endpoint rules chose
    for it (account-ID endpoints and ``account_id_endpoint_mode``, FIPS, dual-stack,
    custom endpoints) and hands over the client's request signer; the signer's public
    ``get_auth_instance`` then gives the client's current credentials for every request,
    refreshed as the client's own are.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._signer: Any = None
        self._signing_name = str(client.meta.service_model.signing_name or "dynamodb")
        self._region: str | None = client.meta.region_name  # a client's region is fixed
        self._lock = asyncio.Lock()
        self.endpoint_url: str | None = None

    async def resolve(self) -> str:
        """The endpoint URL botocore's rules give a request of the client (asked once).

        Raises:
            KVConfigError: The rules refuse the configuration (``account_id_endpoint_mode``
                ``required`` without an account id, or with FIPS or dual-stack).
        """
        async with self._lock:
            if self.endpoint_url is None:
                self.endpoint_url, self._signer = await _probe(self._client)
        return self.endpoint_url

    async def get_frozen_credentials(self) -> Credentials:
        """The client's credentials as of now (botocore's ``NoCredentialsError`` if none)."""
        if self._signer is None:
            await self.resolve()
        auth = await self._signer.get_auth_instance(self._signing_name, self._region, "v4")
        if auth.credentials is None:
            import botocore.exceptions as bex

            raise bex.NoCredentialsError
        frozen: Credentials = auth.credentials
        return frozen


async def _probe(client: Any) -> tuple[str, Any]:
    """The URL and request signer of a ``GetItem`` of `client`, stopped before signing.

    The handler answers only this call (its table name is unique), so other calls on
    a shared client go on as usual; OpenTelemetry instrumentation is suppressed for it.
    """
    import secrets

    import botocore.exceptions as bex
    from botocore.awsrequest import AWSResponse

    marker = f"aiodynkv-endpoint-{secrets.token_hex(8)}"
    seen: dict[str, Any] = {}

    def answer(params: dict[str, Any], request_signer: Any, **_: Any) -> Any:
        body = params.get("body") or b""
        if marker.encode() not in (body.encode() if isinstance(body, str) else body):
            return None
        seen["url"], seen["signer"] = params["url"], request_signer
        return AWSResponse(params["url"], 200, {}, None), {}

    service_id = client.meta.service_model.service_id.hyphenize()
    event = f"before-call.{service_id}.GetItem"
    client.meta.events.register_first(event, answer, unique_id=marker)
    try:
        with _uninstrumented():
            await client.get_item(TableName=marker, Key={})
    except bex.EndpointResolutionError as exc:
        raise _wire.endpoint_config_error(exc) from None
    finally:
        client.meta.events.unregister(event, unique_id=marker)
    url = str(seen["url"])
    if urlsplit(url).path == "/" and url.endswith("/"):
        url = url[:-1]  # botocore joined the operation's path "/" to the endpoint
    return url, seen["signer"]


def _uninstrumented() -> contextlib.AbstractContextManager[object]:
    """Suppress OpenTelemetry instrumentation (when installed): the probe is no request."""
    try:
        from opentelemetry.instrumentation.utils import suppress_instrumentation
    except ImportError:
        return contextlib.nullcontext()
    return suppress_instrumentation()


def ca_bundle(profile: str | None = None) -> bool | str:
    """TLS verification as botocore sets it without ``verify=``.

    ``AWS_CA_BUNDLE`` or the ``ca_bundle`` of `profile` (``AWS_PROFILE`` by default),
    else botocore's own CA bundle (True).
    """
    import botocore.exceptions as bex

    from aiodynkv._config import aws_config_variable

    try:
        bundle = aws_config_variable("ca_bundle", profile)
    except bex.BotoCoreError:  # a missing or unreadable profile: the environment only
        bundle = os.environ.get("AWS_CA_BUNDLE")
    return str(bundle) if bundle else True


# Options of a client's Config that change what goes on the wire, which this transport
# does not reproduce: refused rather than ignored.
_UNSUPPORTED_OPTIONS: Final = ("tcp_keepalive", "client_cert", "proxies_config")


def client_settings(client: Any) -> dict[str, Any]:
    """The timeouts and retries of a user's client's ``Config``, as `LeanTransport` arguments.

    As on the botocore transport: ``total_max_attempts``, or ``max_attempts`` retries, or
    the mode's default (3 in standard mode, DynamoDB's 10 in legacy mode).

    Raises:
        KVConfigError: The client's Config sets something the lean transport cannot
            honour (TCP keepalive, a client certificate, proxy TLS settings, a signature
            version other than SigV4).
    """
    from aiodynkv._errors import KVConfigError

    config = client.meta.config
    refused = [name for name in _UNSUPPORTED_OPTIONS if getattr(config, name, None)]
    if getattr(config, "signature_version", None) not in (None, "v4"):
        refused.append(f"signature_version={config.signature_version!r}")
    if refused:
        raise KVConfigError(
            "transport",
            f"the client's Config sets {', '.join(refused)}, which the lean transport "
            "cannot honour: use transport='botocore' with this client, or leave them out",
        )
    retries = dict(getattr(config, "retries", None) or {})
    mode = str(retries.get("mode") or "legacy")
    attempts = retries.get("total_max_attempts")
    if attempts is None and retries.get("max_attempts") is not None:
        attempts = int(retries["max_attempts"]) + 1
    if attempts is None:
        attempts = _LEGACY_DEFAULT_ATTEMPTS if mode == "legacy" else _STANDARD_DEFAULT_ATTEMPTS
    settings: dict[str, Any] = {"max_attempts": int(attempts), "retry_mode": mode}
    for name in ("connect_timeout", "read_timeout"):
        seconds = getattr(config, name, None)
        if isinstance(seconds, (int, float)) and seconds > 0:
            settings[name] = float(seconds)
    return settings


_STANDARD_DEFAULT_ATTEMPTS: Final = 3  # botocore.retries.standard.DEFAULT_MAX_ATTEMPTS
_LEGACY_DEFAULT_ATTEMPTS: Final = 10  # botocore/data/_retry.json, dynamodb.__default__
