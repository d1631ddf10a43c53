"""S3 and KMS clients beside a store's DynamoDB client, and their failures as `KVError`s.

A store that offloads large values or uses KMS envelope encryption needs an S3 or
KMS client. It is built once per store, on first use, with the DynamoDB client's
credentials (so refreshing credentials refresh for all three), region,
endpoint (moto serves S3 and KMS on the same port as DynamoDB), timeouts and
retries, and it closes with the store.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

from aiodynkv._errors import (
    AccessDeniedError,
    BucketNotFoundError,
    EncryptionKeyError,
    KVConnectionError,
    KVError,
    KVTimeoutError,
    ServerError,
    ThrottledError,
    botocore_exceptions,
)

if TYPE_CHECKING:
    from aiodynkv._core import Core

__all__ = ["Clients", "error_code", "map_aws_error", "new_sibling_client"]

_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "IncorrectKeyException",
    }
)
_THROTTLED = frozenset(
    {"SlowDown", "ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequests"}
)
# KMS refusing the key itself (not the caller's permission, not the ciphertext).
_KEY_REFUSED = frozenset(
    {
        "NotFoundException",
        "DisabledException",
        "KMSInvalidStateException",
        "KeyUnavailableException",
        "InvalidKeyUsageException",
    }
)
_SERVER = frozenset(
    {"InternalError", "InternalFailure", "ServiceUnavailable", "KMSInternalException"}
)


def error_code(exc: BaseException) -> str:
    """The service's error code of a botocore ``ClientError`` ("" for anything else)."""
    bex = botocore_exceptions()
    if bex is not None and isinstance(exc, bex.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _transport_error_class(exc: BaseException) -> type[KVError]:
    """The class of a failure that carries no service error code.

    botocore and aiohttp are looked up among the loaded modules rather than imported:
    an exception can only be one of their classes once they have been loaded.
    """
    bex = botocore_exceptions()
    aiohttp = sys.modules.get("aiohttp")
    if bex is not None and isinstance(exc, (bex.NoCredentialsError, bex.PartialCredentialsError)):
        return AccessDeniedError
    timeouts: tuple[type[BaseException], ...] = (asyncio.TimeoutError,)
    connection: tuple[type[BaseException], ...] = (OSError,)
    if bex is not None:
        timeouts += (bex.ReadTimeoutError, bex.ConnectTimeoutError)
        connection += (bex.ConnectionError, bex.HTTPClientError)
    if aiohttp is not None:
        connection += (aiohttp.ClientError,)
    if isinstance(exc, timeouts):
        return KVTimeoutError
    if isinstance(exc, connection):
        return KVConnectionError
    return KVError


def map_aws_error(
    exc: BaseException, *, service: str, operation: str, table: str, key: str | None
) -> KVError:
    """The `KVError` for a failed S3 or KMS call (the message holds no key and no value)."""
    if isinstance(exc, KVError):
        return exc
    code = error_code(exc)
    cls: type[KVError] = KVError
    if code:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)  # type: ignore[attr-defined]
        message = str(exc.response.get("Error", {}).get("Message", ""))  # type: ignore[attr-defined]
        reason = f"{service} {code}: {message}".rstrip(": ")
        if code in _DENIED or status == 403:  # a 403 is a refusal, whatever its body says
            cls = AccessDeniedError
        elif code == "NoSuchBucket":
            cls = BucketNotFoundError
            reason += " (create the bucket, or fix large_value_bucket)"
        elif code in _KEY_REFUSED:
            cls = EncryptionKeyError
            reason += " (KMS refused encryption_kms_key_id: check the key exists and is enabled)"
        elif code in _THROTTLED:
            cls = ThrottledError
        elif code == "RequestTimeout":
            cls = KVTimeoutError
        elif code in _SERVER or (isinstance(status, int) and status >= 500):
            cls = ServerError
    else:
        cls, reason = _transport_error_class(exc), f"{service}: {type(exc).__name__}"
        if cls is AccessDeniedError:
            reason = f"{service}: no credentials"
    return cls(
        f"{operation} on table {table!r} failed: {reason}",
        operation=operation,
        table=table,
        key=key,
        reason=reason,
    )


def new_sibling_client(core: Core, service: str) -> Any:
    """An aiobotocore client for `service` sharing the DynamoDB client's credentials.

    Its session's only credential provider lends the DynamoDB client's current
    credentials (`_Lent`), so refreshing credentials refresh for all clients.
    Returns the client as an async context manager (not entered).
    """
    from aiobotocore.config import AioConfig
    from aiobotocore.credentials import AioCredentialResolver
    from aiobotocore.session import AioSession

    from aiodynkv._transport.botocore import shared_loader
    from aiodynkv._transport.lean import ClientCredentials
    from aiodynkv._version import __version__

    config, client = core.config, core.client
    session = AioSession()
    session.register_component("data_loader", shared_loader())
    lent = _Lent(ClientCredentials(client))
    session.register_component("credential_provider", AioCredentialResolver([lent]))
    region = getattr(getattr(client, "meta", None), "region_name", None)
    extra: dict[str, Any] = {}
    if service == "s3" and config.endpoint is not None:
        extra["s3"] = {"addressing_style": "path"}  # a local endpoint has no bucket subdomains
    botocore_config = AioConfig(
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        retries={"total_max_attempts": config.max_attempts, "mode": config.retry_mode},
        max_pool_connections=config.max_pool_connections,
        user_agent_extra=f"aiodynkv/{__version__}",
        **extra,
    )
    return session.create_client(
        service,
        region_name=region or config.effective_region,
        endpoint_url=config.endpoint,
        config=botocore_config,
    )


class _Lent:
    """A botocore credential provider lending the credentials of another client.

    The lent copy is taken again a minute after each loan (at the latest two
    minutes after): botocore refreshes the source at least ten minutes before it
    expires, so the copy is always valid.
    """

    METHOD = "aiodynkv-dynamodb-client"
    CANONICAL_NAME = None

    def __init__(self, source: Any) -> None:
        self._source = source

    async def load(self) -> Any:
        """The lent credentials; None when the source has none (signing then refuses)."""
        import botocore.exceptions as bex
        from aiobotocore.credentials import AioRefreshableCredentials

        try:
            metadata = await self._fetch()
        except bex.NoCredentialsError:
            return None
        return AioRefreshableCredentials.create_from_metadata(
            metadata,
            refresh_using=self._fetch,
            method=self.METHOD,
            advisory_timeout=_LENT_SECONDS - _RELEND_SECONDS,
            mandatory_timeout=_LENT_SECONDS - 2 * _RELEND_SECONDS,
        )

    async def _fetch(self) -> dict[str, Any]:
        frozen = await self._source.get_frozen_credentials()
        expiry = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=_LENT_SECONDS)
        return {
            "access_key": frozen.access_key,
            "secret_key": frozen.secret_key,
            "token": frozen.token,
            "expiry_time": expiry.isoformat(),
            "account_id": getattr(frozen, "account_id", None),
        }


_LENT_SECONDS = 300  # the expiry each loan is given
_RELEND_SECONDS = 60  # a loan is renewed this long after it was made


class Clients:
    """The S3 and KMS clients of one store, each created on first use and closed with it."""

    __slots__ = ("_clients", "_core", "_lock")

    def __init__(self, core: Core) -> None:
        self._core = core
        self._clients: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def get(self, service: str) -> Any:
        """The open client for `service` (``"s3"`` or ``"kms"``)."""
        client = self._clients.get(service)
        if client is None:
            async with self._lock:
                client = self._clients.get(service)
                if client is None:
                    client = await self._core.enter(new_sibling_client(self._core, service))
                    self._clients[service] = client
        return client
