"""DynamoDB JSON on the wire for the lean transport: binary values, replies, failures.

Bytes travel base64-encoded (``B``/``BS`` values are decoded back in replies). An attempt
without a usable reply becomes an `AttemptError` (did it reach the server?), an error
reply a `ServiceError`.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import json.scanner
import re
import zlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from aiodynkv._errors import KVConfigError
from aiodynkv._requests import BatchGetText, BatchWriteText
from aiodynkv._transport import ServiceError

__all__ = [
    "AttemptError",
    "ScrubbedError",
    "body",
    "classify",
    "crc32_problem",
    "dumps",
    "loads",
    "endpoint_config_error",
    "mask",
    "proxy_for",
    "scrubbed",
    "service_error",
    "split_proxy",
    "success_body",
]


def _encode_blob(value: object) -> str:
    # json calls this only for what it cannot encode: in DynamoDB JSON that is B/BS bytes.
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# Requests are trees of fresh dicts and lists made by aiodynkv (values are str, bytes
# or numbers' text), never cyclic: the encoder's per-container cycle bookkeeping, a
# quarter of its time on a batch body, is left out. CPython's C encoder is made once
# (`JSONEncoder.encode` makes one per call, a sixth of a GetItem body's time).
_c_encoder = getattr(json.encoder, "c_make_encoder", None)
if _c_encoder is None:  # pragma: no cover - not CPython
    dumps: Callable[[Any], str] = json.JSONEncoder(
        separators=(",", ":"), default=_encode_blob, check_circular=False
    ).encode
else:
    _encode = _c_encoder(
        None, _encode_blob, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
    )

    def dumps(obj: Any) -> str:
        """A request as compact JSON text (`bytes` as base64)."""
        return "".join(_encode(obj, 0))


def body(request: Mapping[str, Any]) -> bytes:
    """A request's body: `dumps` of it, or the text a `BatchGetText` or `BatchWriteText` renders."""
    if type(request) is BatchGetText or type(request) is BatchWriteText:
        return request.text().encode()
    return dumps(request).encode()


_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed
_b64decode = base64.b64decode


def loads(raw: bytes) -> Any:
    """`json.loads` of a reply: a UTF-8 document without surrounding blanks read at once."""
    try:
        text = raw.decode()
        value, end = _scan(text, 0)
    except (UnicodeDecodeError, StopIteration):
        return json.loads(raw)  # its encodings, blanks and errors
    return value if end == len(text) else json.loads(text)


def _decode(node: Any) -> None:
    """Decode base64 ``B``/``BS`` attribute values in place, wherever a reply holds them."""
    # Only an attribute value has a "B" key holding a str (or "BS" holding a list).
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "B" and isinstance(value, str):
                node[name] = _b64decode(value)
            elif name == "BS" and isinstance(value, list):
                node[name] = [_b64decode(v) if isinstance(v, str) else v for v in value]
            elif isinstance(value, (dict, list)):
                _decode(value)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, (dict, list)):
                _decode(value)


# Where a reply may hold a binary value: a name ending in B before a string, or in BS
# before a list (the type "B" or "BS" of an attribute value; a DynamoDB reply has no
# other such name). A quote inside a JSON string is escaped, so text such as a value or
# a write token holding "B" does not match; a reply without a match holds no binary
# value. Searching from the letter is twice as fast as from the quote, so common in JSON.
_BINARY = re.compile(rb'B(?:"\s*:\s*"|S"\s*:\s*\[)')


def _parse_json(raw: bytes) -> Any:
    value = loads(raw)
    if isinstance(value, dict) and _BINARY.search(raw) is not None:
        _decode(value)
    return value


def success_body(raw: bytes, parse: Callable[[bytes], Any] = _parse_json) -> dict[str, Any]:
    """The body of a 2xx reply, parsed by `parse` (``{}`` when empty).

    Raises:
        AttemptError: The body is not a JSON object (botocore would return it as data).
    """
    try:
        parsed = parse(raw) if raw else {}
    except ValueError as exc:
        raise AttemptError("the reply is not JSON", timeout=False, sent=True) from exc
    if not isinstance(parsed, dict):
        raise AttemptError("the reply is not a JSON object", timeout=False, sent=True)
    return parsed


def crc32_problem(header: str | None, raw: bytes) -> str:
    """Why a reply fails its ``x-amz-crc32`` check ("" when it passes or has no header)."""
    if header is None:
        return ""
    text = header.strip()
    if not text.isascii() or not text.isdigit() or int(text) > 0xFFFFFFFF:
        return "the reply's x-amz-crc32 header is not a CRC32 value"
    if zlib.crc32(raw) != int(text):
        return "the reply failed its CRC32 check"
    return ""


class AttemptError(Exception):
    """One attempt got no usable reply."""

    def __init__(self, message: str, *, timeout: bool, sent: bool) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.sent = sent


def mask(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret replaced by ``***`` (as botocore masks proxy URLs)."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class ScrubbedError(Exception):
    """Stands in for an exception whose text quoted a secret: its type and masked text."""


def scrubbed(exc: BaseException | None, secrets: tuple[str, ...]) -> BaseException | None:
    """`exc`, or a `ScrubbedError` in its place when its text or its chain reveals a secret."""
    if exc is None or not secrets:
        return exc
    texts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(texts) < 20:
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    if not any(secret in text for text in texts for secret in secrets):
        return exc
    return ScrubbedError(mask(f"{type(exc).__name__}: {exc}", secrets))


def endpoint_config_error(exc: BaseException) -> KVConfigError:
    """The `KVConfigError` for botocore's refusal to resolve an endpoint."""
    return KVConfigError(
        "endpoint",
        f"{exc} (set by account_id_endpoint_mode in the client's Config, "
        "AWS_ACCOUNT_ID_ENDPOINT_MODE or ~/.aws/config; the account id comes from "
        "the credentials, AWS_ACCOUNT_ID or aws_account_id)",
    )


def classify(exc: BaseException) -> AttemptError:
    """What an exception from aiohttp says about the attempt (was the request sent?)."""
    # Nothing was sent without a connection (refused, DNS, TLS, proxy, connect timeout).
    if isinstance(exc, aiohttp.ClientConnectorError):
        return AttemptError(f"could not connect: {exc}", timeout=False, sent=False)
    if isinstance(exc, aiohttp.ClientHttpProxyError):  # the proxy refused the tunnel
        return AttemptError(f"the proxy refused: {exc}", timeout=False, sent=False)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        # aiohttp >= 3.10 has ConnectionTimeoutError; older ones tell only by the message
        connect_timeout = getattr(aiohttp, "ConnectionTimeoutError", ())
        if isinstance(exc, connect_timeout) or str(exc).lower().startswith("connect"):
            return AttemptError(f"connect timeout: {exc}", timeout=True, sent=False)
        return AttemptError(f"read timeout: {exc}", timeout=True, sent=True)
    if isinstance(exc, asyncio.TimeoutError):
        return AttemptError("read timeout", timeout=True, sent=True)
    return AttemptError(f"connection lost: {type(exc).__name__}: {exc}", timeout=False, sent=True)


def service_error(status: int, raw: bytes, attempt: int, in_doubt: bool) -> ServiceError:
    body = _error_body(raw, status)
    message = body.get("message", body.get("Message", ""))
    item = body.get("Item")
    code = str(body.get("__type") or status)  # botocore's BaseJSONParser._do_error_parse
    return ServiceError(
        code.split(":", 1)[0].rsplit("#", 1)[-1],
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


# -- proxies ------------------------------------------------------------------------------


def proxy_for(client: Any, endpoint_url: str) -> str | None:
    """The proxy botocore would use for `endpoint_url`: ``proxies`` config, then environment."""
    from botocore.utils import get_environ_proxies

    scheme = urlsplit(endpoint_url).scheme
    configured = getattr(getattr(client.meta, "config", None), "proxies", None) or {}
    proxy = configured.get(scheme)
    if proxy is None:
        proxy = get_environ_proxies(endpoint_url).get(scheme)
    return str(proxy) if proxy else None


def split_proxy(proxy: str | None) -> tuple[str | None, dict[str, str] | None, tuple[str, ...]]:
    """The proxy URL without credentials, the header carrying them, and their texts.

    In a header, aiohttp's errors (which quote the proxy URL) do not quote them; their
    texts (password as written and decoded, the header's token) are masked where seen.
    """
    if not proxy:
        return None, None, ()
    url = URL(proxy)
    if url.user is None and url.password is None:
        return proxy, None, ()
    pair = f"{url.user or ''}:{url.password or ''}".encode()
    token = base64.b64encode(pair).decode("ascii")
    # without a password, the user name is the credential (a proxy token)
    texts = (url.raw_password, url.password) if url.password else (url.raw_user, url.user)
    secrets = {token, *(text for text in texts if text)}
    return (
        str(url.with_user(None)),
        {"Proxy-Authorization": f"Basic {token}"},
        tuple(sorted(secrets, key=len, reverse=True)),
    )
