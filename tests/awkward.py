"""Strings that JSON encoders get wrong: escapes, non-ASCII, lone surrogates, length."""

from __future__ import annotations

from aiodynkv._keys import SEPARATOR

AWKWARD = [
    "plain",
    "",
    'quote"inside',
    "back\\slash",
    "control\x00\x01\x1f\x7f\n\t\r\b\f",
    "caf\u00e9 \u65e5\u672c \U0001f600",
    "lone \ud800 surrogate \udfff",
    "\u2028\u2029",
    "k" * 2048,
    f"svc{SEPARATOR}key",
    f"a{SEPARATOR}b{SEPARATOR}\u00fcml\u00e4ut",
    "</script>&<>'",
]
