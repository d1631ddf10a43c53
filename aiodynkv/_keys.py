r"""Key validation and namespace folding, done before any request is built.

A stored key is the user's key, or ``<namespace>\\x1f<key>`` inside a namespace.
The unit separator (U+001F) is refused in keys and namespaces, so the encoding
is unambiguous: a root key never contains it, a namespaced key contains it once.

The only length limit is DynamoDB's on the partition key: namespace, separator
and key together at most 2,048 UTF-8 bytes. A namespace may therefore be up to
2,046 bytes (room for the separator and a one-byte key); a longer namespace
leaves less room for its keys.
"""

from __future__ import annotations

from aiodynkv._errors import InvalidKeyError, shown

__all__ = ["MAX_KEY_BYTES", "MAX_NAMESPACE_BYTES", "SEPARATOR", "KeyCodec", "check_namespace"]

MAX_KEY_BYTES = 2048
SEPARATOR = "\x1f"
#: The longest namespace, in UTF-8 bytes: the separator and a one-byte key still fit.
MAX_NAMESPACE_BYTES = MAX_KEY_BYTES - 2


def check_namespace(namespace: object) -> str:
    """Validate a namespace name.

    Args:
        namespace: The candidate name.

    Returns:
        The name, unchanged.

    Raises:
        TypeError: It is not a str.
        ValueError: It is empty, holds U+001F, is not UTF-8 encodable, or is over
            2,046 UTF-8 bytes (namespace, separator and key share DynamoDB's 2,048).
    """
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a str, not {type(namespace).__name__}")
    if not namespace:
        raise ValueError("namespace must not be empty")
    if SEPARATOR in namespace:
        raise ValueError("namespace must not contain U+001F (the namespace separator)")
    try:
        size = len(namespace.encode())
    except UnicodeEncodeError:
        raise ValueError(f"namespace is not valid UTF-8 text: {shown(namespace)}") from None
    if size > MAX_NAMESPACE_BYTES:
        raise ValueError(
            f"namespace is {size} bytes ({shown(namespace)}); namespace, separator and key "
            f"share DynamoDB's {MAX_KEY_BYTES}-byte key limit, so at most "
            f"{MAX_NAMESPACE_BYTES} bytes"
        )
    return namespace


class KeyCodec:
    """Turns user keys into stored partition-key values and back, for one namespace."""

    __slots__ = ("_prefix", "_prefix_bytes", "namespace")

    def __init__(self, namespace: str | None) -> None:
        self.namespace = namespace
        self._prefix = "" if namespace is None else check_namespace(namespace) + SEPARATOR
        self._prefix_bytes = len(self._prefix.encode())

    @property
    def prefix(self) -> str:
        """What every stored key of this namespace starts with ("" at the root)."""
        return self._prefix

    def encode(self, key: object, operation: str, table: str) -> str:
        """Validate a user key and return the stored key.

        Raises:
            InvalidKeyError: The key is not a non-empty str of at most 2048 UTF-8 bytes
                (namespace included), or holds U+001F.
        """
        if type(key) is not str:
            if not isinstance(key, str):
                raise InvalidKeyError(
                    f"{operation}: key must be a str, not {type(key).__name__}",
                    operation=operation,
                    table=table,
                )
            key = str(key)  # a str subclass is stored as plain text
        if not key:
            raise InvalidKeyError(
                f"{operation}: key must not be empty", operation=operation, table=table
            )
        try:
            size = len(key.encode()) + self._prefix_bytes
        except UnicodeEncodeError:
            raise InvalidKeyError(
                f"{operation}: key is not valid UTF-8 text (lone surrogate)",
                operation=operation,
                table=table,
                key=key,
            ) from None
        if size > MAX_KEY_BYTES:
            ns = f" with namespace {shown(self.namespace)}" if self.namespace else ""
            raise InvalidKeyError(
                f"{operation}: key is {size} bytes{ns}; DynamoDB allows at most {MAX_KEY_BYTES}",
                operation=operation,
                table=table,
                key=key[:64],
            )
        if SEPARATOR in key:
            raise InvalidKeyError(
                f"{operation}: key must not contain U+001F (the namespace separator)",
                operation=operation,
                table=table,
                key=key,
            )
        return self._prefix + key if self._prefix else key

    def decode(self, stored: str) -> str | None:
        """Return the user key of a stored key, or None if it is not in this namespace."""
        if self._prefix:
            return stored[len(self._prefix) :] if stored.startswith(self._prefix) else None
        return None if SEPARATOR in stored else stored
