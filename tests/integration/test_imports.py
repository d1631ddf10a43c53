"""What importing aiodynkv and starting its command line load, each in a fresh interpreter.

botocore, aiobotocore and aioboto3 take most of a second to import; they load when a
store opens, not with the package, so ``aiodynkv --help`` and a store's construction
stay fast. The test servers (``aiodynkv.testing``) are tools for tests, the demo and
``aiodynkv local``: the runtime path never loads them.
"""

from __future__ import annotations

import json
import subprocess
import sys

_HEAVY = ("botocore", "aiobotocore", "aioboto3")
_TESTING = ("aiodynkv.testing", "aiodynkv.testing._local", "aiodynkv.testing._owned")


def _loaded_after(code: str, *, watch: tuple[str, ...] = _HEAVY) -> list[str]:
    """Run `code` in a fresh interpreter; the modules of `watch` it left loaded."""
    report = f"import json, sys\nprint(json.dumps([m for m in {watch!r} if m in sys.modules]))"
    probe = f"{code}\n{report}"
    result = subprocess.run(  # noqa: S603 (our own package)
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


def test_import_aiodynkv_loads_no_aws_sdk() -> None:
    assert _loaded_after("import aiodynkv") == []


def test_import_aiodynkv_and_its_command_line_load_no_test_server() -> None:
    assert _loaded_after("import aiodynkv, aiodynkv.__main__, aiodynkv._cli", watch=_TESTING) == []


def test_constructing_a_store_loads_no_aws_sdk() -> None:
    code = (
        "import aiodynkv\n"
        "aiodynkv.AsyncDynamoKV(table='t-imports', endpoint='http://127.0.0.1:9', "
        "region='us-east-1', large_value_bucket='b-imports')"
    )
    assert _loaded_after(code, watch=_HEAVY + _TESTING) == []


def test_cli_help_loads_no_aws_sdk_and_no_test_server() -> None:
    code = (
        "import contextlib, io\n"
        "from aiodynkv.__main__ import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out, "
        "contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "assert 'create-table' in out.getvalue(), out.getvalue()"
    )
    assert _loaded_after(code, watch=_HEAVY + _TESTING) == []


def test_opening_a_store_loads_the_aws_sdk_and_no_test_server(aiodynkv_endpoint: str) -> None:
    code = (
        "import asyncio, aiodynkv\n"
        "async def main():\n"
        f"    async with aiodynkv.AsyncDynamoKV(table='t-imports', endpoint={aiodynkv_endpoint!r},"
        " create_table=True) as kv:\n"
        "        await kv.set('k', 'v')\n"
        "        assert await kv.get('k') == 'v'\n"
        "asyncio.run(main())"
    )
    assert _loaded_after(code, watch=("botocore", *_TESTING)) == ["botocore"]
