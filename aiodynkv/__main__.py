"""``python -m aiodynkv`` and the ``aiodynkv`` console script.

The full command line needs the ``cli`` extra (typer and rich). Without it, only
``python -m aiodynkv demo`` works, so the README's quick start needs nothing but
the ``local`` extra; ``--help`` then says what to install (exit 0), and any other
command prints the same and exits 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

_CLI_PACKAGES = frozenset({"typer", "rich", "click"})
# aiodynkv is not on PyPI yet: the extras are installed from a clone of the repository.
INSTALL_HINT = "pip install -e '.[cli,local]' (in a clone of the aiodynkv repository)"
DEMO_ONLY_HELP = f"""\
usage: python -m aiodynkv demo

Only the demo is available: the other commands (get, set, keys, export, import,
local, ...) need the cli extra (typer and rich). Install it with:

    {INSTALL_HINT}
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named in `argv` (default: ``sys.argv[1:]``); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        from aiodynkv._cli import main as cli_main
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in _CLI_PACKAGES:
            raise
        return _demo_only(args)
    return cli_main(args)


def _demo_only(args: list[str]) -> int:
    if args == ["demo"]:
        from aiodynkv._demo import run_demo

        run_demo()
        return 0
    if args in (["--help"], ["-h"]):
        sys.stdout.write(DEMO_ONLY_HELP)
        return 0
    sys.stderr.write(DEMO_ONLY_HELP)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
