"""The ``aiodynkv`` command line (the ``cli`` extra: typer and rich).

Importing this package imports typer and rich; `aiodynkv.__main__` falls back to
the demo alone when they are missing. The app and its shared helpers are in
`_app`; each ``_commands_*`` module registers its commands on it when imported,
in the order ``aiodynkv --help`` lists them.
"""

from aiodynkv._cli._app import app, main

# isort: off
from aiodynkv._cli import _commands_data  # noqa: F401 (registers get ... keys)
from aiodynkv._cli import _commands_table  # noqa: F401 (registers health ... import)
from aiodynkv._cli import _commands_dev  # noqa: F401 (registers demo and local)

# isort: on

__all__ = ["app", "main"]
