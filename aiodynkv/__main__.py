"""``python -m aiodynkv demo``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the command named in `argv`."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["demo"]:
        from aiodynkv._demo import run_demo

        run_demo()
        return 0
    sys.stderr.write("usage: python -m aiodynkv demo\n")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
