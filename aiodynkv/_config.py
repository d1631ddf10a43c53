"""`KVConfig`: every setting of a store, validated once, readable from the environment."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import math
import os
import re
import sys
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from aiodynkv._codec import RESERVED_ATTRIBUTES
from aiodynkv._errors import KVConfigError, shown
from aiodynkv._retry import longest_backoff

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["ENV_PREFIX", "LOCAL_REGION", "KVConfig", "is_loopback"]

ENV_PREFIX = "AIODYNKV_"

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_RETRY_MODES = ("standard", "adaptive", "legacy")
_TRANSPORTS = ("lean", "botocore", "memory")
_OPTIONAL = ("call_timeout", "compress_threshold")  # the numbers None turns off
#: The region a loopback endpoint (a local emulator) signs for when none is set.
LOCAL_REGION = "us-east-1"


# What decides a value botocore reads from the AWS configuration: these variables and the
# contents of the two files they name. A lookup is reused while all of them stay the same.
_AWS_CONFIG_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CA_BUNDLE",
    "HOME",
)


def _file_contents(path: str) -> bytes | None:
    """The file's bytes (a few hundred, as a rule): file times are too coarse to trust."""
    try:
        return Path(path).expanduser().read_bytes()
    except OSError:
        return None


@functools.lru_cache(maxsize=64)
def _lookup(name: str, profile: str | None, _stamp: Hashable) -> Any:
    from botocore.session import Session

    return Session(profile=profile).get_config_variable(name)


def aws_config_variable(name: str, profile: str | None) -> Any:
    """What botocore reads for the setting `name` of `profile` (None: the default one).

    A botocore session costs tens of milliseconds: the answer is kept while the variables
    and files that decide it are unchanged. Raises botocore's `ProfileNotFound` and
    `ConfigParseError`.
    """
    env = tuple(os.environ.get(variable) for variable in _AWS_CONFIG_VARIABLES)
    files = (
        _file_contents(os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")),
        _file_contents(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")),
    )
    return _lookup(name, profile, (env, files))


def _profile_region(profile: str | None) -> str | None:
    """The ``region`` botocore reads for `profile` from the AWS config file, if any."""
    import botocore.exceptions

    try:
        region = aws_config_variable("region", profile)
    except botocore.exceptions.ProfileNotFound:
        return None  # opening the store reports the missing profile
    except botocore.exceptions.ConfigParseError as exc:
        raise KVConfigError("region", f"cannot read the AWS config file: {exc}") from None
    return region if isinstance(region, str) and region else None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` exactly, or an IP literal in 127.0.0.0/8 or ``::1``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _utf8_size(text: str) -> int:
    """The UTF-8 size of `text`; text that cannot be encoded counts as too long."""
    try:
        return len(text.encode())
    except UnicodeEncodeError:
        return sys.maxsize


@dataclass(frozen=True, slots=True, kw_only=True)
class KVConfig:
    """Settings of an `AsyncDynamoKV`, validated when created.

    Attributes:
        table: DynamoDB table name (3-255 characters of ``A-Za-z0-9_.-``).
        region: AWS region. When None: ``AWS_REGION``, then ``AWS_DEFAULT_REGION``,
            then the profile's ``region`` in ``~/.aws/config`` (as botocore reads
            it), then ``us-east-1`` for a loopback endpoint only; otherwise opening
            the store raises `KVConfigError`. `effective_region` tells the result.
        endpoint: Endpoint URL for a DynamoDB-compatible server (DynamoDB Local,
            moto, dynalite); None means AWS itself. It may not carry a user or
            password (credentials belong in the credential chain), a query or a fragment.
        partition_key: Name of the table's string partition key.
        value_attribute: Attribute holding the value.
        ttl_attribute: Attribute holding the expiry in whole epoch seconds (rounded up), as
            DynamoDB's TTL sweeper wants it; reads use the exact expiry in ``xm``.
        version_attribute: Attribute holding the item version used for compare-and-set.
        namespace: Optional namespace folded into every stored key. Any non-empty text
            without U+001F; namespace, separator and key share DynamoDB's 2,048-byte key
            limit (so at most 2,046 UTF-8 bytes).
        consistent_read: Use strongly consistent reads.
        connect_timeout: Seconds to wait for a connection.
        read_timeout: Seconds to wait for a response.
        max_attempts: Total attempts per request, first one included (botocore retries).
        call_timeout: Seconds a whole call may take, every request, retry and backoff
            of it included, however the server behaves (a reply trickling in one byte at
            a time too); past it a read raises `KVTimeoutError` and a write whose request
            was sent `WriteInDoubtError`. It starts when the call's first request gets a
            pooled connection (as for `connect_timeout`, waiting for a free one does not
            count). For batches it bounds each request (the batch as a whole is bounded
            by `batch_deadline`). None (the default) derives it:
            ``max_attempts * (connect_timeout + read_timeout)`` plus the longest backoff
            between the attempts (see `effective_call_timeout`).
        retry_mode: botocore retry mode: ``standard``, ``adaptive`` or ``legacy``.
        max_pool_connections: Size of the HTTP connection pool.
        profile: Named AWS profile for the credential chain.
        create_table: Create the table (and enable TTL) when the store opens.
        table_wait_timeout: Seconds `ensure_table` waits for the table to become ACTIVE.
        compress_threshold: Values larger than this many bytes are zlib-compressed when
            that makes them smaller; None turns compression off.
        batch_concurrency: Batch chunks in flight at once per batch call.
        batch_deadline: Seconds a batch call keeps retrying unprocessed keys.
        coalesce_reads: Merge concurrent `get` calls into BatchGetItem requests.
        coalesce_window: Seconds to wait for more reads before sending (0 = same loop turn).
        coalesce_max_keys: Send the coalesced reads as soon as this many distinct keys
            wait (1-100), without waiting for the rest of the window.
        max_value_bytes: Largest value accepted by writes (before compression), and the
            most a compressed value may inflate to on reads (a bound against planted bombs).
        close_timeout: Seconds `aclose` waits for operations in flight to finish whole.
        transport: ``"lean"`` (signed DynamoDB JSON over aiohttp, the cheapest per call)
            or ``"botocore"`` (every call through the aioboto3 client, for botocore
            event hooks and ``AiobotocoreInstrumentor``), or ``"memory"`` (DynamoDB
            answered in process, for tests; stores share its tables, an in-process object
            store stands in for S3 and a local key wrap for KMS).
        expose_keys: Put keys in exception messages, span attributes and log events.
            Off by default: keys are often secrets (session ids) or personal data.
            ``error.key`` always carries the key for code.
        logger: A structlog logger to use instead of ``structlog.get_logger("aiodynkv")``.
        tracer_provider: OpenTelemetry tracer provider; None means the global one.
        meter_provider: OpenTelemetry meter provider; None means the global one.
        local_cache_items: Entries of the near cache (0, the default, turns it off): `get`
            and `get_many` answers kept in process memory (see `local_cache_ttl`).
        local_cache_bytes: Memory the near cache may hold (values, keys, bookkeeping).
        local_cache_ttl: Seconds a cached value is served; writes by other processes stay
            invisible this long. Never past the item's own expiry.
        local_cache_miss_ttl: Seconds a "missing" answer is served (at most `local_cache_ttl`;
            0 does not cache misses).
        large_value_bucket: S3 bucket for values still larger than `large_value_threshold`
            after compression and encryption; None keeps every value in its item.
        large_value_threshold: Bytes above which a value goes to S3 (1 to 400,000).
        large_value_prefix: Object key prefix in the bucket (the table name and a random
            name follow); the lifecycle rule for orphans is scoped to it.
        encryption_keys: Key id → 32-byte AES-256 key, for client-side AES-256-GCM (the
            ``encryption`` extra). Old ids keep decrypting; never shown in ``repr``. A
            string ``"id:base64,id:base64"`` (as ``AIODYNKV_ENCRYPTION_KEYS``) is accepted.
        encryption_key_id: The id in `encryption_keys` that new values are encrypted with
            (may be left out when there is only one key).
        encryption_kms_key_id: A KMS key (id, ARN or alias) for envelope encryption: new
            values are encrypted with KMS data keys (cached); `encryption_keys` still decrypt.
    """

    table: str
    region: str | None = None
    endpoint: str | None = None
    partition_key: str = "pk"
    value_attribute: str = "value"
    ttl_attribute: str = "expires_at"
    version_attribute: str = "ver"
    namespace: str | None = None
    consistent_read: bool = True
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_attempts: int = 3
    call_timeout: float | None = None
    retry_mode: Literal["standard", "adaptive", "legacy"] = "standard"
    max_pool_connections: int = 64
    profile: str | None = None
    create_table: bool = False
    table_wait_timeout: float = 60.0
    compress_threshold: int | None = 16_384
    batch_concurrency: int = 8
    batch_deadline: float = 30.0
    coalesce_reads: bool = True
    coalesce_window: float = 0.0
    coalesce_max_keys: int = 100
    max_value_bytes: int = 4 * 1024 * 1024
    close_timeout: float = 10.0
    transport: Literal["lean", "botocore", "memory"] = "lean"
    expose_keys: bool = False
    logger: Any = field(default=None, repr=False, compare=False)
    tracer_provider: TracerProvider | None = field(default=None, repr=False, compare=False)
    meter_provider: MeterProvider | None = field(default=None, repr=False, compare=False)
    local_cache_items: int = 0
    local_cache_bytes: int = 64 * 1024 * 1024
    local_cache_ttl: float = 1.0
    local_cache_miss_ttl: float = 0.25
    large_value_bucket: str | None = None
    large_value_threshold: int = 350_000
    large_value_prefix: str = "aiodynkv/"
    encryption_keys: Mapping[str, bytes] | None = field(default=None, repr=False, hash=False)
    encryption_key_id: str | None = None
    encryption_kms_key_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.table, str) or not _TABLE_NAME.fullmatch(self.table):
            raise KVConfigError(
                "table", f"must be 3-255 characters of A-Za-z0-9_.- (got {shown(self.table)})"
            )
        self._check_optional_str("region", "profile")
        self._check_endpoint()
        names = ("partition_key", "value_attribute", "ttl_attribute", "version_attribute")
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, str) or not value or _utf8_size(value) > 255:
                raise KVConfigError(
                    name, f"must be a non-empty name of <= 255 UTF-8 bytes (got {shown(value)})"
                )
        used = [getattr(self, n) for n in names]
        if len(set(used)) != len(used) or set(used) & set(RESERVED_ATTRIBUTES):
            given = dict(zip(names, used, strict=True))
            raise KVConfigError(
                "value_attribute",
                f"attribute names must be distinct and none of {RESERVED_ATTRIBUTES} (got {given})",
            )
        if self.namespace is not None:
            from aiodynkv._keys import check_namespace

            try:
                check_namespace(self.namespace)
            except (TypeError, ValueError) as exc:
                raise KVConfigError("namespace", str(exc)) from None
        for name in ("consistent_read", "create_table", "coalesce_reads", "expose_keys"):
            if not isinstance(getattr(self, name), bool):
                raise KVConfigError(name, f"must be a bool (got {shown(getattr(self, name))})")
        for name in ("connect_timeout", "read_timeout", "call_timeout", "table_wait_timeout"):
            self._check_number(name, strict=True)
        self._check_number("batch_deadline")
        self._check_number("coalesce_window", maximum=1.0)
        self._check_int("coalesce_max_keys", 1, 100)
        self._check_number("close_timeout")
        self._check_int("max_value_bytes", 1, 2**40)
        self._check_int("max_attempts", 1, 50)
        self._check_int("max_pool_connections", 1, 10_000)
        self._check_int("batch_concurrency", 1, 1_000)
        self._check_int("compress_threshold", 0, 409_600)
        for name, choices in (("transport", _TRANSPORTS), ("retry_mode", _RETRY_MODES)):
            if getattr(self, name) not in choices:
                got = shown(getattr(self, name))
                raise KVConfigError(name, f"must be one of {', '.join(choices)} (got {got})")
        self._check_data_features()

    def _check_data_features(self) -> None:
        """Near cache, large values in S3 and encryption."""
        self._check_int("local_cache_items", 0, 100_000_000)
        self._check_int("local_cache_bytes", 1, 2**40)
        self._check_number("local_cache_ttl", strict=True, maximum=86_400.0)
        self._check_number("local_cache_miss_ttl", maximum=86_400.0)
        bucket = self.large_value_bucket
        if bucket is not None and (
            not isinstance(bucket, str) or not _BUCKET_NAME.fullmatch(bucket)
        ):
            raise KVConfigError(
                "large_value_bucket",
                f"must be an S3 bucket name (3-63 of a-z0-9.-; got {shown(bucket)})",
            )
        self._check_int("large_value_threshold", 1, 400_000)
        prefix = self.large_value_prefix
        if not isinstance(prefix, str) or _utf8_size(prefix) > 512 or not prefix.isprintable():
            raise KVConfigError(
                "large_value_prefix",
                f"must be printable text of <= 512 UTF-8 bytes (got {shown(prefix)})",
            )
        self._check_optional_str("encryption_key_id", "encryption_kms_key_id")
        keys = self.encryption_keys
        if keys is not None:
            keys = _encryption_keys(keys)
            object.__setattr__(self, "encryption_keys", keys)
            if self.encryption_key_id is None and len(keys) == 1:
                object.__setattr__(self, "encryption_key_id", next(iter(keys)))
        current = self.encryption_key_id
        if current is not None and (keys is None or current not in keys):
            named = repr(current) if _KEY_ID.fullmatch(current) else "the value (not shown)"
            raise KVConfigError("encryption_key_id", f"{named} is not a key id of encryption_keys")
        if keys is not None and current is None and self.encryption_kms_key_id is None:
            raise KVConfigError(
                "encryption_key_id", "name the key in encryption_keys that new values use"
            )
        if keys is not None or self.encryption_kms_key_id is not None:
            from aiodynkv._values import check_available

            check_available("encryption_keys" if keys is not None else "encryption_kms_key_id")

    def _check_optional_str(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise KVConfigError(
                    name, f"must be a non-empty string or None (got {shown(value)})"
                )

    def _check_endpoint(self) -> None:
        if self.endpoint is None:
            return
        try:
            parts = urlsplit(self.endpoint) if isinstance(self.endpoint, str) else None
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            # The value is not echoed: it may hold a password.
            raise KVConfigError("endpoint", "must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise KVConfigError(
                "endpoint",
                "must not carry a user or password: credentials belong in the AWS credential "
                "chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile=, an IAM role)",
            )
        if parts.query or parts.fragment:
            raise KVConfigError("endpoint", "must not carry a query or fragment")
        try:
            parts.port  # noqa: B018 (raises ValueError for a bad port)
        except ValueError:
            raise KVConfigError("endpoint", "has an invalid port") from None

    def _check_number(self, name: str, *, strict: bool = False, maximum: float = math.inf) -> None:
        """A number of seconds (> 0 if `strict`, else >= 0) up to `maximum`."""
        value = getattr(self, name)
        ok = (value is None and name in _OPTIONAL) or (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and (value > 0 if strict else value >= 0)
            and value <= maximum
        )
        if not ok:
            bound = "> 0" if strict else ">= 0"
            if maximum != math.inf:
                bound += f" and <= {maximum}"
            raise KVConfigError(name, f"must be a finite number {bound} (got {shown(value)})")

    def _check_int(self, name: str, minimum: int, maximum: int) -> None:
        """An integer from `minimum` to `maximum`."""
        value = getattr(self, name)
        if value is None and name in _OPTIONAL:
            return
        if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
            raise KVConfigError(
                name, f"must be an integer from {minimum} to {maximum} (got {shown(value)})"
            )

    @property
    def effective_call_timeout(self) -> float:
        """The whole-call deadline in seconds: `call_timeout`, or derived as it says."""
        if self.call_timeout is not None:
            return float(self.call_timeout)
        attempts = self.max_attempts
        backoff = longest_backoff(self.retry_mode, attempts)
        return attempts * (self.connect_timeout + self.read_timeout) + backoff

    @property
    def is_local(self) -> bool:
        """True when the endpoint is a loopback address (a local emulator)."""
        return self.endpoint is not None and is_loopback(urlsplit(self.endpoint).hostname or "")

    @property
    def is_insecure(self) -> bool:
        """True for plain http to a host that is not loopback (credentials travel in clear)."""
        return (
            self.endpoint is not None
            and urlsplit(self.endpoint).scheme == "http"
            and not self.is_local
        )

    @property
    def server_address(self) -> tuple[str, int]:
        """Host and port requests go to, as OpenTelemetry's server.* attributes want them."""
        if self.endpoint is None:
            return f"dynamodb.{self.effective_region or 'us-east-1'}.amazonaws.com", 443
        parts = urlsplit(self.endpoint)
        default_port = 443 if parts.scheme == "https" else 80
        return parts.hostname or "", parts.port or default_port

    @property
    def effective_region(self) -> str | None:
        """The region the store signs for, found as `region` says (None: none found).

        The memory transport reads no AWS configuration: ``region``, else ``us-east-1``.
        """
        if self.region:
            return self.region
        if self.transport == "memory":
            return LOCAL_REGION
        env = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if env:
            return env
        return _profile_region(self.profile) or (LOCAL_REGION if self.is_local else None)

    def replace(self, **changes: Any) -> KVConfig:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> KVConfig:
        """Build a config from ``AIODYNKV_*`` environment variables.

        Every field `f` is read from ``AIODYNKV_<F>`` (``AIODYNKV_TABLE``,
        ``AIODYNKV_ENDPOINT``, ``AIODYNKV_READ_TIMEOUT``...). The region falls back to
        ``AWS_REGION`` then ``AWS_DEFAULT_REGION``, the profile to ``AWS_PROFILE``.

        Args:
            env: The mapping to read instead of ``os.environ``.
            **overrides: Field values that win over the environment.

        Returns:
            The validated config.

        Raises:
            KVConfigError: A variable is missing or does not parse; the message names it.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in ("logger", "tracer_provider", "meter_provider"):
                continue
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, str(f.type), raw)
        values.setdefault("region", env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None)
        values.setdefault("profile", env.get("AWS_PROFILE") or None)
        values.update(overrides)
        if "table" not in values:
            raise KVConfigError("table", f"is required: set {ENV_PREFIX}TABLE")
        return cls(**values)


_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _encryption_keys(keys: object) -> Mapping[str, bytes]:
    """Validated, frozen ``encryption_keys``.

    An error names the entry, never text that may hold a key (a malformed entry, a bad id).
    """
    if isinstance(keys, str):  # AIODYNKV_ENCRYPTION_KEYS="k2:<base64>,k1:<base64>"
        keys = _parse_encryption_keys(keys)
    if not isinstance(keys, Mapping) or not keys:
        raise _bad_keys("must be a non-empty mapping of key id to key")
    frozen: dict[str, bytes] = {}
    for kid, key in keys.items():
        if not isinstance(kid, str) or not _KEY_ID.fullmatch(kid):
            raise _bad_keys(
                "key ids are 1-64 of A-Za-z0-9._- (one is not; not shown, as it may be a key)"
            )
        if not isinstance(key, (bytes, bytearray, memoryview)) or len(bytes(key)) != 32:
            raise _bad_keys(f"key {shown(kid)} must be 32 bytes (AES-256), e.g. os.urandom(32)")
        frozen[kid] = bytes(key)
    return MappingProxyType(frozen)


def _parse_encryption_keys(text: str) -> dict[str, bytes]:
    """The ``id:base64,id:base64`` form, each entry checked and named by its position."""
    import base64
    import binascii

    parsed: dict[str, bytes] = {}
    for index, part in enumerate(filter(None, (p.strip() for p in text.split(","))), 1):
        entry = f"entry {index} of {ENV_PREFIX}ENCRYPTION_KEYS (id:base64,id:base64)"
        kid, colon, encoded = part.partition(":")
        kid = kid.strip()
        if not colon or not _KEY_ID.fullmatch(kid):
            raise _bad_keys(
                f"{entry} does not start with a key id and ':' (key ids are 1-64 of "
                "A-Za-z0-9._-); the entry is not shown, as it may hold a key"
            )
        entry = f"entry {index} (id {kid!r}) of {ENV_PREFIX}ENCRYPTION_KEYS"
        if kid in parsed:
            raise _bad_keys(f"{entry}: the id is given twice")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise _bad_keys(f"{entry}: the key is not valid base64") from None
        if len(key) != 32:
            raise _bad_keys(
                f"{entry}: the key is {len(key)} bytes; AES-256 needs 32 bytes "
                "(base64 of os.urandom(32))"
            )
        parsed[kid] = key
    return parsed


def _bad_keys(why: str) -> KVConfigError:
    return KVConfigError("encryption_keys", why)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse(name: str, annotation: str, raw: str) -> Any:
    variable = ENV_PREFIX + name.upper()
    try:
        if annotation == "bool":
            lowered = raw.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError(raw)
            return lowered in _TRUE
        if annotation.startswith("int"):
            return None if raw.strip().lower() == "none" else int(raw)
        if annotation.startswith("float"):
            return None if raw.strip().lower() == "none" else float(raw)
    except ValueError:
        raise KVConfigError(name, f"cannot parse {variable}={shown(raw)} as {annotation}") from None
    return raw
