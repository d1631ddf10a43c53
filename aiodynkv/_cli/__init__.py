"""The ``aiodynkv`` command line (the ``cli`` extra: typer and rich).

Importing this package imports typer and rich; `aiodynkv.__main__` falls back to
the demo alone when they are missing. The app and its commands are in `_app`;
export and import, with their JSON Lines format, in `_transfer`.
"""

from aiodynkv._cli._app import app, main

__all__ = ["app", "main"]
