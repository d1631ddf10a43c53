"""AWS Signature Version 4 for DynamoDB's JSON POSTs, computed cheaply.

`Signer` signs requests to one endpoint (one host, path, region and signing name) that
carry a fixed set of headers: ``Content-Type``, ``Host``, ``X-Amz-Date``,
``X-Amz-Security-Token`` (with temporary credentials) and ``X-Amz-Target``. It produces
exactly what ``botocore.auth.SigV4Auth`` produces for the same request (the unit tests
compare the two), at a fraction of the cost:

- the derived signing key is cached per (secret key, date): one HMAC per request
  instead of five;
- everything about the canonical request that does not change (method, path, host,
  header names, signed-header list) is joined once, at construction;
- the ``X-Amz-Date`` string is reused within the same second.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import NamedTuple, Protocol
from urllib.parse import quote, urlsplit

__all__ = ["Credentials", "FrozenCredentials", "Signer", "canonical_host", "canonical_path"]

_ALGORITHM = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_sha256 = hashlib.sha256
_hmac_digest = hmac.digest


class FrozenCredentials(Protocol):
    """Credentials as botocore's ``ReadOnlyCredentials`` holds them."""

    @property
    def access_key(self) -> str: ...
    @property
    def secret_key(self) -> str: ...
    @property
    def token(self) -> str | None: ...


class Credentials(NamedTuple):
    """Frozen credentials, as ``get_frozen_credentials()`` returns them."""

    access_key: str
    secret_key: str
    token: str | None = None


def canonical_host(endpoint_url: str) -> str:
    """The ``Host`` header botocore signs for `endpoint_url`.

    Lower case, IPv6 addresses in brackets, the port only when it is not the scheme's
    default, no user info (botocore's ``auth._host_from_url``).

    Raises:
        ValueError: The URL has no host.
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
    """Signs JSON POST requests to one endpoint with SigV4.

    Args:
        host: The ``Host`` header (see `canonical_host`).
        path: The request path (``"/"`` for DynamoDB).
        region: The signing region.
        service: The signing name (``"dynamodb"``).
        content_type: The ``Content-Type`` header every request carries.
    """

    __slots__ = (
        "_content_type",
        "_key_cache",
        "_last_second",
        "_last_stamp",
        "_prefix",
        "_region",
        "_scope_tail",
        "_service",
        "_target_lines",
        "_token_cache",
        "host",
    )

    def __init__(
        self,
        *,
        host: str,
        path: str = "/",
        region: str,
        service: str,
        content_type: str = "application/x-amz-json-1.0",
    ) -> None:
        self.host = host
        self._region = region
        self._service = service
        self._content_type = content_type
        self._scope_tail = f"/{region}/{service}/aws4_request"
        self._prefix = (
            f"POST\n{canonical_path(path)}\n\n"
            f"content-type:{_trim(content_type)}\nhost:{_trim(host)}\nx-amz-date:"
        )
        # (secret, date) -> signing key; only the newest is kept (dates only move forward).
        self._key_cache: tuple[str, str, bytes] = ("", "", b"")
        self._token_cache: tuple[str, str] = ("", "")
        self._target_lines: dict[str, str] = {}
        self._last_second = -1
        self._last_stamp = ""

    def _signing_key(self, secret_key: str, date: str) -> bytes:
        cached_secret, cached_date, key = self._key_cache
        if cached_secret == secret_key and cached_date == date:
            return key
        key = _hmac_digest(f"AWS4{secret_key}".encode(), date.encode(), "sha256")
        for part in (self._region, self._service, "aws4_request"):
            key = _hmac_digest(key, part.encode(), "sha256")
        self._key_cache = (secret_key, date, key)
        return key

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
        self,
        target: str,
        body: bytes,
        credentials: FrozenCredentials,
        amz_date: str | None = None,
    ) -> dict[str, str]:
        """The signed headers of a POST of `body` with ``X-Amz-Target: target``.

        Args:
            target: The ``X-Amz-Target`` value (``DynamoDB_20120810.GetItem``).
            body: The exact bytes that will be sent.
            credentials: The credentials to sign with.
            amz_date: The signing time (``YYYYMMDDTHHMMSSZ``); now when None.

        Returns:
            ``Content-Type``, ``Host``, ``X-Amz-Date``, ``X-Amz-Target``, the security
            token when there is one, and ``Authorization``.
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
        signature = _hmac_digest(
            self._signing_key(credentials.secret_key, date), to_sign.encode(), "sha256"
        ).hex()
        headers = {
            "Content-Type": self._content_type,
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
