r"""Key validation and namespace folding, done before any request is built.

A stored key is the user's key, or ``<namespace>\\x1f<key>`` inside a namespace.
The unit separator (U+001F) is refused in keys and namespaces, so the encoding
is unambiguous: a root key never contains it, a namespaced key contains it once.
"""

from __future__ import annotations

from aiodynkv._errors import InvalidKeyError

__all__ = ["MAX_KEY_BYTES", "MAX_NAMESPACE_CHARS", "SEPARATOR", "KeyCodec", "check_namespace"]

MAX_KEY_BYTES = 2048
MAX_NAMESPACE_CHARS = 256
SEPARATOR = "\x1f"


def check_namespace(namespace: object) -> str:
    """Validate a namespace name.

    Args:
        namespace: The candidate name.

    Returns:
        The name, unchanged.

    Raises:
        TypeError: It is not a str.
        ValueError: It is empty, too long, holds U+001F, or is not UTF-8 encodable.
    """
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a str, not {type(namespace).__name__}")
    if not namespace or len(namespace) > MAX_NAMESPACE_CHARS:
        raise ValueError(
            f"namespace must be 1-{MAX_NAMESPACE_CHARS} characters (got {namespace!r})"
        )
    if SEPARATOR in namespace:
        raise ValueError("namespace must not contain U+001F (the namespace separator)")
    try:
        namespace.encode()
    except UnicodeEncodeError:
        raise ValueError(f"namespace is not valid UTF-8 text: {namespace!r}") from None
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
            ns = f" with namespace {self.namespace!r}" if self.namespace else ""
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
