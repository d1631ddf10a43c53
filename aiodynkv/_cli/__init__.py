"""The ``aiodynkv`` command line (the ``cli`` extra: typer and rich).

Importing this package imports typer and rich; `aiodynkv.__main__` falls back to
the demo alone when they are missing.
"""

from aiodynkv._cli._app import app, main

__all__ = ["app", "main"]
