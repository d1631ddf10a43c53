"""Our SigV4 signer against botocore's own ``SigV4Auth``: the same request, the same signature."""

from __future__ import annotations

import datetime as dt
import time
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodynkv._transport.lean import Credentials, Signer, canonical_host, canonical_path

CONTENT_TYPE = "application/x-amz-json-1.0"
WHEN = dt.datetime(2024, 2, 29, 23, 59, 58)
PLAIN = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
TEMPORARY = Credentials(
    "ASIAEXAMPLE", "secret/with+signs=", "FwoGZXIvYXdzEJr//////////wEaDA+token/value=="
)


def botocore_headers(
    url: str,
    target: str,
    body: bytes,
    credentials: Credentials,
    when: dt.datetime,
    *,
    region: str = "us-east-1",
    service: str = "dynamodb",
) -> dict[str, str]:
    """What botocore's signer adds to the request, with its clock frozen at `when`."""
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": target},
    )
    frozen = ReadOnlyCredentials(credentials.access_key, credentials.secret_key, credentials.token)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        SigV4Auth(frozen, service, region).add_auth(request)
    return dict(request.headers.items())


def our_headers(
    url: str,
    target: str,
    body: bytes,
    credentials: Credentials,
    when: dt.datetime,
    *,
    region: str = "us-east-1",
    service: str = "dynamodb",
    signer: Signer | None = None,
) -> dict[str, str]:
    if signer is None:
        signer = Signer(
            host=canonical_host(url),
            path=urlsplit(url).path or "/",
            region=region,
            service=service,
        )
    return signer.headers(target, body, credentials, when.strftime("%Y%m%dT%H%M%SZ"))


BODIES = [
    b"",
    b"{}",
    b'{"TableName":"users","Key":{"pk":{"S":"user:1"}},"ConsistentRead":true}',
    '{"Item":{"pk":{"S":"ключ — 鍵 🔑"},"v":{"S":"naïve café"}}}'.encode(),
    b'{"Item":{"b":{"B":"AP8="}}}' * 500,
]
URLS = [
    "https://dynamodb.us-east-1.amazonaws.com",
    "https://dynamodb-fips.us-gov-west-1.amazonaws.com/",
    "http://127.0.0.1:8000",
    "http://LocalHost:4566/",
    "https://dynamodb.eu-west-1.api.aws:443/",  # default port: not part of the host
    "http://[::1]:8000/",
    "http://localhost:8000/prefix/./a/../ddb",
    "http://127.0.0.1:8000/team%20a/",  # escaped: signed over the path as sent
    "http://127.0.0.1:8000/a%2Fb/%7Euser/",
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("credentials", [PLAIN, TEMPORARY], ids=["keys", "session-token"])
def test_authorization_equals_botocore_for_each_body(body: bytes, credentials: Credentials) -> None:
    url = "http://localhost:8000/"
    target = "DynamoDB_20120810.PutItem"
    ours = our_headers(url, target, body, credentials, WHEN)
    theirs = botocore_headers(url, target, body, credentials, WHEN)
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"] == "20240229T235958Z"
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token")


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("credentials", [PLAIN, TEMPORARY], ids=["keys", "session-token"])
def test_authorization_equals_botocore_for_each_host_and_path(
    url: str, credentials: Credentials
) -> None:
    body = BODIES[3]
    ours = our_headers(url, "DynamoDB_20120810.GetItem", body, credentials, WHEN, region="eu-1")
    theirs = botocore_headers(
        url, "DynamoDB_20120810.GetItem", body, credentials, WHEN, region="eu-1"
    )
    assert ours["Authorization"] == theirs["Authorization"]


def test_signed_headers_are_the_ones_sent() -> None:
    headers = our_headers("http://127.0.0.1:8000", "T", b"{}", TEMPORARY, WHEN)
    signed = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert signed == "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
    assert headers["Host"] == "127.0.0.1:8000"
    assert headers["Content-Type"] == CONTENT_TYPE
    assert headers["X-Amz-Target"] == "T"
    assert headers["X-Amz-Security-Token"] == TEMPORARY.token
    assert "X-Amz-Security-Token" not in our_headers("http://h", "T", b"{}", PLAIN, WHEN)


def test_cached_signing_key_follows_date_secret_and_token_changes() -> None:
    url = "https://dynamodb.us-west-2.amazonaws.com"
    signer = Signer(host=canonical_host(url), region="us-west-2", service="dynamodb")
    rotated = Credentials("AKID2", "another-secret", "another-token")
    sequence = [
        (PLAIN, WHEN),
        (PLAIN, WHEN + dt.timedelta(seconds=3)),  # next day: a new signing key
        (TEMPORARY, WHEN + dt.timedelta(seconds=3)),  # new secret, same day
        (rotated, WHEN + dt.timedelta(seconds=4)),  # new token
        (PLAIN, WHEN),  # back to an old day and secret
    ]
    for credentials, when in sequence:
        ours = our_headers(url, "T", b"{}", credentials, when, region="us-west-2", signer=signer)
        theirs = botocore_headers(url, "T", b"{}", credentials, when, region="us-west-2")
        assert ours["Authorization"] == theirs["Authorization"], (credentials, when)


def test_other_signing_name_and_region_are_used() -> None:
    url = "https://dynamodb.cn-north-1.amazonaws.com.cn"
    ours = our_headers(url, "T", b"{}", PLAIN, WHEN, region="cn-north-1", service="ddb-test")
    theirs = botocore_headers(url, "T", b"{}", PLAIN, WHEN, region="cn-north-1", service="ddb-test")
    assert ours["Authorization"] == theirs["Authorization"]
    assert "/cn-north-1/ddb-test/aws4_request" in ours["Authorization"]


def test_default_timestamp_is_now_in_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 1709251198.75)  # 2024-02-29T23:59:58.75Z
    signer = Signer(host="h", region="r", service="s")
    assert signer.timestamp() == "20240229T235958Z"
    headers = signer.headers("T", b"{}", PLAIN)
    assert headers["X-Amz-Date"] == "20240229T235958Z"
    assert headers == signer.headers("T", b"{}", PLAIN, "20240229T235958Z")
    monkeypatch.setattr(time, "time", lambda: 1709251200.0)
    assert signer.timestamp() == "20240301T000000Z"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://LOCALHOST:80/", "localhost"),
        ("https://h.example:443", "h.example"),
        ("https://h.example:8443", "h.example:8443"),
        ("http://user:pw@h.example:81", "h.example:81"),
        ("http://[::1]:8000", "[::1]:8000"),
    ],
)
def test_canonical_host(url: str, host: str) -> None:
    assert canonical_host(url) == host


def test_canonical_host_needs_a_host() -> None:
    with pytest.raises(ValueError, match="without a host"):
        canonical_host("http:///path")


@pytest.mark.parametrize(
    ("path", "canonical"),
    [("", "/"), ("/", "/"), ("/a//b/", "/a/b/"), ("/a/./b/../c", "/a/c"), ("/a b~", "/a%20b~")],
)
def test_canonical_path(path: str, canonical: str) -> None:
    assert canonical_path(path) == canonical


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(max_size=300),
    target=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40
    ),
    secret=st.text(min_size=1, max_size=40),
    token=st.none() | st.text(alphabet="abcXYZ019+/= ", min_size=1, max_size=60),
    seconds=st.integers(min_value=0, max_value=4_000_000_000),
)
def test_any_request_signs_like_botocore(
    body: bytes, target: str, secret: str, token: str | None, seconds: int
) -> None:
    when = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)
    credentials = Credentials("AKID", secret, token)
    url = "https://dynamodb.ap-south-1.amazonaws.com"
    ours = our_headers(url, target, body, credentials, when, region="ap-south-1")
    theirs = botocore_headers(url, target, body, credentials, when, region="ap-south-1")
    assert ours["Authorization"] == theirs["Authorization"]
