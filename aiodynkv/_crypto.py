"""Client-side encryption: AES-256-GCM with local keys, or with KMS envelope data keys.

A sealed value (the *envelope*) is, byte by byte::

    version      1 byte    1: local key, 2: KMS data key
    key id       1 byte length + UTF-8 (``encryption_keys`` id, or the KMS key id)
    wrapped key  2 byte length + KMS CiphertextBlob          (version 2 only)
    nonce        12 random bytes
    ciphertext   the value, then the 16-byte GCM tag

The associated data binds the ciphertext to the table, the stored key (namespace
included), the value's record (its type and whether it was compressed) and the
whole header above (so the key id too). A value copied to another key or table,
a flipped bit anywhere, an edited key id or an unknown one: all fail to decrypt,
as `DecryptionError`. Nothing here ever puts a value in a message.

KMS: one data key (``GenerateDataKey``, AES_256, encryption context
``{"aiodynkv:table": <table>}``) serves writes for up to `DATA_KEY_MAX_AGE` seconds
or `DATA_KEY_MAX_USES` values; unwrapped data keys are cached for reads as long.
`cryptography` is imported on first use (the ``encryption`` extra).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from aiodynkv._errors import DecryptionError, KVConfigError, shown

if TYPE_CHECKING:
    from aiodynkv._aws import Clients
    from aiodynkv._config import KVConfig

__all__ = [
    "DATA_KEY_MAX_AGE",
    "DATA_KEY_MAX_USES",
    "LOCAL",
    "KMS",
    "AwsKms",
    "Encryptor",
    "KeyService",
    "MemoryKms",
    "aesgcm",
    "associated_data",
    "parse_envelope",
]

LOCAL = 1
KMS = 2
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
DATA_KEY_MAX_AGE = 300.0
DATA_KEY_MAX_USES = 2**20  # far below the 2**32 random-nonce bound of one GCM key
_UNWRAPPED_CACHE = 1024
_EXTRA = "pip install -e '.[encryption]' in a clone of aiodynkv (the cryptography package)"


def aesgcm(key: bytes) -> Any:
    """An ``AESGCM`` cipher for `key`; a clear `KVConfigError` without `cryptography`."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # pragma: no cover - checked with the config first
        raise KVConfigError(
            "encryption_keys", f"client-side encryption needs the encryption extra: {_EXTRA}"
        ) from None
    return AESGCM(key)


def check_available(field: str) -> None:
    """Raise `KVConfigError` naming `field` when `cryptography` is not installed."""
    try:
        import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401
    except ImportError:
        raise KVConfigError(
            field, f"client-side encryption needs the encryption extra: {_EXTRA}"
        ) from None


def _framed(*parts: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(part)) + part for part in parts)


def associated_data(table: str, stored: str, record: str, header: bytes) -> bytes:
    """What a ciphertext is bound to: table, stored key, value record and envelope header."""
    return _framed(b"aiodynkv/1", table.encode(), stored.encode(), record.encode(), header)


def _header(version: int, key_id: str, wrapped: bytes = b"") -> bytes:
    kid = key_id.encode()
    head = bytes((version, len(kid))) + kid
    if version == KMS:
        head += struct.pack(">H", len(wrapped)) + wrapped
    return head


def parse_envelope(blob: bytes) -> tuple[int, str, bytes, bytes, bytes, bytes]:
    """Split an envelope: version, key id, wrapped key, header, nonce, ciphertext.

    Raises:
        DecryptionError: The envelope is malformed.
    """
    try:
        version, size = blob[0], blob[1]
        at = 2 + size
        key_id = blob[2:at].decode()
        wrapped = b""
        if version == KMS:
            (length,) = struct.unpack_from(">H", blob, at)
            wrapped = blob[at + 2 : at + 2 + length]
            at += 2 + length
            if len(wrapped) != length:
                raise ValueError("short wrapped key")
        elif version != LOCAL:
            raise ValueError(f"unknown envelope version {version}")
        header, nonce, sealed = blob[:at], blob[at : at + NONCE_BYTES], blob[at + NONCE_BYTES :]
        if not key_id or len(nonce) != NONCE_BYTES or len(sealed) < TAG_BYTES:
            raise ValueError("short envelope")
    except (IndexError, ValueError, struct.error, UnicodeDecodeError) as exc:
        reason = f"malformed encrypted value ({exc})"
        raise DecryptionError(reason, reason=reason) from None
    return version, key_id, wrapped, header, nonce, sealed


class KeyService(Protocol):
    """Where KMS data keys come from: AWS KMS, or `MemoryKms` on the memory transport."""

    async def generate(self, key_id: str, context: dict[str, str]) -> tuple[bytes, bytes]:
        """A new data key: (plaintext, wrapped)."""
        ...

    async def unwrap(self, key_id: str, wrapped: bytes, context: dict[str, str]) -> bytes:
        """The plaintext of a wrapped data key (`DecryptionError` when it does not unwrap)."""
        ...


class AwsKms:
    """KMS through the store's own credentials (`aiodynkv._aws.Clients`)."""

    __slots__ = ("_clients", "_table")

    def __init__(self, clients: Clients, table: str) -> None:
        self._clients = clients
        self._table = table

    async def generate(self, key_id: str, context: dict[str, str]) -> tuple[bytes, bytes]:
        """GenerateDataKey (AES_256) under `key_id`."""
        kms = await self._clients.get("kms")
        reply = await kms.generate_data_key(
            KeyId=key_id, KeySpec="AES_256", EncryptionContext=context
        )
        return bytes(reply["Plaintext"]), bytes(reply["CiphertextBlob"])

    async def unwrap(self, key_id: str, wrapped: bytes, context: dict[str, str]) -> bytes:
        """Decrypt a data key; a blob KMS refuses as ciphertext is a `DecryptionError`."""
        from aiodynkv._aws import error_code

        kms = await self._clients.get("kms")
        try:
            reply = await kms.decrypt(
                CiphertextBlob=wrapped, KeyId=key_id, EncryptionContext=context
            )
        except Exception as exc:
            if error_code(exc) in ("InvalidCiphertextException", "IncorrectKeyException"):
                reason = "KMS refused the wrapped data key"
                raise DecryptionError(reason, reason=reason) from None
            raise
        return bytes(reply["Plaintext"])


class MemoryKms:
    """A KMS stand-in for the memory transport: data keys wrapped under a key from the id."""

    __slots__ = ()

    @staticmethod
    def _master(key_id: str) -> bytes:
        return hashlib.sha256(b"aiodynkv-memory-kms\x00" + key_id.encode()).digest()

    async def generate(self, key_id: str, context: dict[str, str]) -> tuple[bytes, bytes]:
        """A random data key, wrapped with AES-GCM under the id's master key."""
        plain = os.urandom(KEY_BYTES)
        nonce = os.urandom(NONCE_BYTES)
        aad = repr(sorted(context.items())).encode()
        return plain, nonce + aesgcm(self._master(key_id)).encrypt(nonce, plain, aad)

    async def unwrap(self, key_id: str, wrapped: bytes, context: dict[str, str]) -> bytes:
        """Unwrap what `generate` wrapped (same id and context), else `DecryptionError`."""
        from cryptography.exceptions import InvalidTag

        aad = repr(sorted(context.items())).encode()
        try:
            plain: bytes = aesgcm(self._master(key_id)).decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad
            )
        except (InvalidTag, ValueError):
            reason = "KMS refused the wrapped data key"
            raise DecryptionError(reason, reason=reason) from None
        return plain


class _DataKey:
    __slots__ = ("born", "cipher", "header", "uses")

    def __init__(self, cipher: Any, header: bytes) -> None:
        self.cipher = cipher
        self.header = header
        self.born = time.monotonic()
        self.uses = 0


class Encryptor:
    """Seals and opens values for one store (its keys, its table)."""

    __slots__ = (
        "_context",
        "_current",
        "_kms",
        "_kms_key_id",
        "_local",
        "_lock",
        "_opened",
        "_table",
        "_write_key",
    )

    def __init__(self, config: KVConfig, kms: KeyService | None) -> None:
        keys: Mapping[str, bytes] = config.encryption_keys or {}
        self._local = {kid: aesgcm(bytes(key)) for kid, key in keys.items()}
        self._current = config.encryption_key_id
        self._kms = kms
        self._kms_key_id = config.encryption_kms_key_id
        self._table = config.table
        self._context = {"aiodynkv:table": config.table}
        self._write_key: _DataKey | None = None
        self._opened: OrderedDict[bytes, tuple[Any, float]] = OrderedDict()
        self._lock = asyncio.Lock()

    @property
    def writes(self) -> bool:
        """True when new values are encrypted (a current key id or a KMS key is set)."""
        return self._kms_key_id is not None or self._current is not None

    async def _key_for_write(self) -> _DataKey:
        if self._kms_key_id is None:
            assert self._current is not None  # noqa: S101 (checked by `writes`)
            return _DataKey(self._local[self._current], _header(LOCAL, self._current))
        key = self._write_key
        if key is None or not self._fresh(key):
            async with self._lock:
                key = self._write_key
                if key is None or not self._fresh(key):
                    assert self._kms is not None  # noqa: S101 (set with the KMS key id)
                    plain, wrapped = await self._kms.generate(self._kms_key_id, self._context)
                    key = _DataKey(aesgcm(plain), _header(KMS, self._kms_key_id, wrapped))
                    self._write_key = key
        key.uses += 1
        return key

    @staticmethod
    def _fresh(key: _DataKey) -> bool:
        return key.uses < DATA_KEY_MAX_USES and time.monotonic() - key.born < DATA_KEY_MAX_AGE

    async def encrypt(self, plaintext: bytes, stored: str, record: str) -> bytes:
        """The envelope of `plaintext`, bound to this table, `stored` and `record`."""
        key = await self._key_for_write()
        nonce = os.urandom(NONCE_BYTES)
        aad = associated_data(self._table, stored, record, key.header)
        sealed: bytes = key.cipher.encrypt(nonce, plaintext, aad)
        return key.header + nonce + sealed

    async def _key_for_read(self, version: int, key_id: str, wrapped: bytes) -> Any:
        if version == LOCAL:
            cipher = self._local.get(key_id)
            if cipher is None:
                reason = f"encryption key id {shown(key_id)} is not in encryption_keys"
                raise DecryptionError(reason, reason=reason)
            return cipher
        cached = self._opened.get(wrapped)
        if cached is not None and time.monotonic() - cached[1] < DATA_KEY_MAX_AGE:
            self._opened.move_to_end(wrapped)
            return cached[0]
        if self._kms is None:
            reason = "the value is KMS-encrypted and no KMS client is available"
            raise DecryptionError(reason, reason=reason)
        cipher = aesgcm(await self._kms.unwrap(key_id, wrapped, self._context))
        self._opened[wrapped] = (cipher, time.monotonic())
        while len(self._opened) > _UNWRAPPED_CACHE:
            self._opened.popitem(last=False)
        return cipher

    async def decrypt(self, blob: bytes, stored: str, record: str) -> bytes:
        """The plaintext sealed in `blob`.

        Raises:
            DecryptionError: Malformed, tampered, bound elsewhere, or under an unknown key.
        """
        from cryptography.exceptions import InvalidTag

        version, key_id, wrapped, header, nonce, sealed = parse_envelope(blob)
        cipher = await self._key_for_read(version, key_id, wrapped)
        try:
            plain: bytes = cipher.decrypt(
                nonce, sealed, associated_data(self._table, stored, record, header)
            )
        except InvalidTag:
            reason = (
                "the value does not decrypt: tampered, written under another key or table, "
                "or with another key of the same id"
            )
            raise DecryptionError(reason, reason=reason) from None
        return plain
