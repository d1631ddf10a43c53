"""Every ```python block of README.md and docs/*.md runs, against the embedded emulator.

A block is run the way a reader would use it:

- a block whose first line is ``# file: NAME.py`` is a module the reader saves: it
  must import, and later blocks of the same page find it next to them;
- a program (it calls ``asyncio.run``) runs as a script, exactly as written, and
  what it prints must agree with its ``print(...)  # ...`` comments;
- a block that defines ``test_*`` functions runs under pytest as a new project
  would run it: no configuration, so pytest-asyncio in its default strict mode,
  with the plugin's fixtures on the session's moto server (``AIODYNKV_TEST_ENDPOINT``);
- any other block continues the first program: it runs with top-level ``await``
  and an open store ``kv`` on a fresh table of the session's moto server.

Blocks that name ``http://127.0.0.1:8000`` (``aiodynkv local`` or docker-compose's
DynamoDB Local) get the session's moto server there instead, with the ``aiodynkv``
table those two create. Each block runs in its own interpreter. An HTML comment
``<!-- test: skip reason -->`` right above a block skips it with that reason.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from aiodynkv import AsyncDynamoKV, KVConfig, _cli

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = (README, *sorted((ROOT / "docs").glob("*.md")))
_FILE = re.compile(r"\A# file: (?P<name>\w+\.py)\n")
LOCAL_ENDPOINT = "http://127.0.0.1:8000"
_BLOCK = re.compile(
    r"(?:<!--\s*test:\s*skip\s+(?P<skip>.*?)\s*-->\s*\n)?^```python\n(?P<code>.*?)^```",
    re.DOTALL | re.MULTILINE,
)
_PRINT_COMMENT = re.compile(r"^\s*print\(.*\)\s*#\s*(?P<says>.+)$")

_FRAGMENT_RUNNER = """
import ast, asyncio, os, sys
from aiodynkv import AsyncDynamoKV

async def main() -> None:
    code = open(sys.argv[1], encoding="utf-8").read()
    compiled = compile(code, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    async with AsyncDynamoKV(
        table=os.environ["README_TABLE"], endpoint=os.environ["README_ENDPOINT"],
        create_table=True,
    ) as kv:
        names = {"__name__": "__readme__", "kv": kv, "AsyncDynamoKV": AsyncDynamoKV}
        result = eval(compiled, names)
        if asyncio.iscoroutine(result):
            await result

asyncio.run(main())
"""


@dataclass(frozen=True)
class Block:
    """A ```python block of a page, and the modules saved by the page's blocks before it."""

    page: str
    line: int
    code: str
    skip: str | None
    before: tuple[tuple[str, str], ...] = ()

    @property
    def file(self) -> str | None:
        match = _FILE.match(self.code)
        return match["name"] if match else None

    @property
    def kind(self) -> str:
        if self.file is not None and not self.file.startswith("test_"):
            return "module"
        if "asyncio.run(" in self.code:
            return "program"
        if re.search(r"^(async )?def test_", self.code, re.MULTILINE):
            return "tests"
        return "fragment"


def readme_blocks(page: Path = README) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    blocks: list[Block] = []
    saved: list[tuple[str, str]] = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code")) + 1
        block = Block(page.name, line, match["code"], match["skip"], tuple(saved))
        blocks.append(block)
        if block.file is not None:
            saved.append((block.file, block.code))
    return blocks


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in readme_blocks(page)]


def test_the_readme_is_short_and_leads_with_a_service_and_its_tests() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 400
    first = "\n".join(lines[:200])
    assert "lifespan" in first and "FastAPI(" in first and "TestClient(" in first
    kinds = [block.kind for block in readme_blocks()]
    assert kinds[0] == "module" and "tests" in kinds


def test_the_docs_start_with_a_program_that_needs_no_docker() -> None:
    (first, *_) = readme_blocks(ROOT / "docs" / "guide.md")
    assert first.kind == "program" and "LocalDynamoDB" in first.code


@pytest.fixture(scope="module")
def local_table(moto_endpoint: str) -> str:
    """The ``aiodynkv`` table that ``aiodynkv local`` and docker-compose create."""

    async def create() -> None:
        async with AsyncDynamoKV(table="aiodynkv", endpoint=moto_endpoint, create_table=True):
            pass

    asyncio.run(create())
    return moto_endpoint


def _env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIODYNKV_")}
    return {
        **env,
        "PYTHONUNBUFFERED": "1",
        "AIODYNKV_TABLE": "readme-from-env",  # for AsyncDynamoKV.from_env()
        "AIODYNKV_TEST_ENDPOINT": endpoint,
        "README_ENDPOINT": endpoint,
        "README_TABLE": f"readme-{uuid.uuid4().hex[:10]}",
    }


def _run(block: Block, endpoint: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    for name, saved in block.before:
        (tmp_path / name).write_text(saved.replace(LOCAL_ENDPOINT, endpoint), encoding="utf-8")
    code = block.code.replace(LOCAL_ENDPOINT, endpoint)
    script = tmp_path / (block.file or "test_block.py")
    script.write_text(code, encoding="utf-8")
    if block.kind == "module":
        command = [sys.executable, "-W", "error", "-c", f"import {script.stem}"]
    elif block.kind == "program":
        command = [sys.executable, str(script)]
    elif block.kind == "tests":
        # No -o options and no ini file: the defaults a new project has (strict mode).
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
        command += ["--rootdir", str(tmp_path), "-W", "error"]
        # ...where pytest-asyncio only warns that its loop-scope option is unset.
        command += ["-W", "ignore::pytest.PytestDeprecationWarning", str(script)]
    else:
        runner = tmp_path / "runner.py"
        runner.write_text(textwrap.dedent(_FRAGMENT_RUNNER), encoding="utf-8")
        command = [sys.executable, str(runner), str(script)]
    return subprocess.run(  # noqa: S603 (the README's own code)
        command,
        cwd=tmp_path,
        env=_env(endpoint),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.parametrize(
    "block", all_blocks(), ids=lambda block: f"{block.page.removesuffix('.md')}-{block.line}"
)
def test_readme_block_runs(block: Block, local_table: str, tmp_path: Path) -> None:
    where = f"{block.page} line {block.line}"
    if block.skip:
        pytest.skip(f"{where}: {block.skip}")
    result = _run(block, local_table, tmp_path)
    assert result.returncode == 0, f"{where}:\n{result.stdout}{result.stderr}"
    if block.kind == "tests":
        assert " passed" in result.stdout and "failed" not in result.stdout, result.stdout
    if block.kind == "program":
        said = [m["says"] for line in block.code.splitlines() if (m := _PRINT_COMMENT.match(line))]
        printed = result.stdout.splitlines()
        assert len(printed) == len(said), (printed, said)
        for output, comment in zip(printed, said, strict=True):
            assert comment.startswith(output), (output, comment)


# -- one story about the region ---------------------------------------------------------

REGION_FACTS = (
    "`region=` (or `AIODYNKV_REGION`)",
    "`AWS_REGION`",
    "`AWS_DEFAULT_REGION`",
    "botocore's own resolution",
    "`~/.aws/config`",
    "(`127.0.0.0/8`, `::1`, `localhost`)",
    "`us-east-1`",
    "`KVConfigError`",
    "`config.effective_region`",
)
FALSE_REGION_CLAIMS = ("is **not** used", "If none is set, it is `us-east-1`", "then `us-east-1`")


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_readme_cli_help_and_docs_tell_one_region_story(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    readme = _flat((ROOT / "docs" / "guide.md").read_text(encoding="utf-8"))
    section = readme.split("**The region**", 1)[1].split("The table needs", 1)[0]
    at = 0
    for fact in REGION_FACTS:  # all there, in the order of the rules
        found = section.find(fact, at)
        assert found != -1, fact
        at = found
    for claim in FALSE_REGION_CLAIMS:
        assert claim not in readme, claim
    cli_docs = _flat((ROOT / "docs" / "cli.md").read_text(encoding="utf-8"))
    for words in ("AWS_DEFAULT_REGION", "~/.aws/config", "loopback", "us-east-1", "exit"):
        assert words in cli_docs, words
        assert words in _cli.REGION_HELP, words
    # ...and the code behaves as they say.
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AIODYNKV_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    assert KVConfig(table="tbl", region="eu-west-1").effective_region == "eu-west-1"
    assert KVConfig(table="tbl", endpoint="http://127.0.0.1:8000").effective_region == "us-east-1"
    assert KVConfig(table="tbl", endpoint="http://localhost:8000").effective_region == "us-east-1"
    assert KVConfig(table="tbl").effective_region is None
    (tmp_path / "config").write_text("[default]\nregion = eu-north-1\n")  # the profile's first
    assert KVConfig(table="tbl", endpoint="http://127.0.0.1:8000").effective_region == "eu-north-1"
    assert KVConfig(table="tbl").effective_region == "eu-north-1"
