"""Developer tasks; the README shows the same commands.

python -m nox -s tests       # all backends: memory, moto, dynalite (+ DynamoDB Local with Docker)
python -m nox -s demo        # store and read back values on the embedded emulator
python -m nox -s lint typecheck
python -m nox -s docs        # the reference documentation (mkdocs build --strict)
python -m nox -s package     # build sdist + wheel, check them, run the wheel in a fresh venv
python -m nox -s docker      # testcontainers and docker-compose.yml through real containers
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

ROOT = Path(__file__).parent
DYNALITE_DIR = ROOT / ".nox" / "_dynalite"
TEST_DEPS = [
    "pytest>=8",
    "pytest-asyncio>=0.24",
    "testcontainers>=4.8",
    "opentelemetry-sdk>=1.25",
    "opentelemetry-instrumentation-botocore>=0.46b0",
    "coverage[toml]>=7.5",
    "hypothesis>=6.100",
    "pyyaml>=6",  # tests/unit/test_compose.py reads docker-compose.yml
    "httpx>=0.27",  # tests/integration/test_examples.py talks HTTP to the examples
]
# The extras the tests and the type check need: the emulator, the command line, and
# what examples/ imports (FastAPI, uvicorn, aiohttp, the OpenTelemetry SDK and exporter),
# plus cryptography and pydantic for encryption and typed views.
EXTRAS = ".[local,cli,examples,encryption,typed]"


def install_dynalite(session: nox.Session) -> str:
    """npm-install dynalite@4 once into .nox/_dynalite; return its executable."""
    exe = DYNALITE_DIR / "node_modules" / ".bin" / "dynalite"
    if not exe.exists():
        if shutil.which("npm") is None:
            session.error("dynalite needs Node.js and npm (https://nodejs.org)")
        DYNALITE_DIR.mkdir(parents=True, exist_ok=True)
        session.run(
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(DYNALITE_DIR),
            "dynalite@4",
            external=True,
        )
    return str(exe)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite with branch coverage (>= 95 %), on every backend."""
    session.install("-e", EXTRAS, *TEST_DEPS)
    env = {"AIODYNKV_DYNALITE": install_dynalite(session)}
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs, env=env)
    session.run("coverage", "combine", success_codes=[0, 1])
    session.run("coverage", "report")


@nox.session
def docker(session: nox.Session) -> None:
    """testcontainers, the fixtures, the contract suite and docker-compose.yml, in containers.

    Starts a private Docker engine when none answers (as root; apt-get installs docker.io,
    mmdebstrap and docker-compose when missing), builds the DynamoDB stand-in image from
    Debian's packages and PyPI (cached in .nox/_docker), runs the tests with Ryuk disabled
    and nothing skipped, and stops all it started. docker/README.md has the details.
    """
    session.install("-e", EXTRAS, *TEST_DEPS)
    session.run("python", os.fspath(ROOT / "docker" / "session.py"), *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Start the embedded emulator, store values, read them back."""
    session.install("-e", ".[local]")
    session.run("python", "-m", "aiodynkv", "demo")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and the examples."""
    session.install(
        "-e",
        EXTRAS,
        *TEST_DEPS,
        "mypy>=1.11",
        "types-aiobotocore-dynamodb",
        "types-PyYAML",
        "nox",
    )
    session.run("mypy", *session.posargs, env={"MYPYPATH": os.fspath(ROOT)})


@nox.session
def docs(session: nox.Session) -> None:
    """The reference documentation (mkdocs + mkdocstrings) in strict mode: a warning fails."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "--site-dir", os.fspath(ROOT / "site"))


@nox.session
def package(session: nox.Session) -> None:
    """Build the sdist and the wheel, check their metadata, and run the wheel from a fresh venv.

    The wheel is built from the sdist (what `python -m build` does), so a file missing from
    the sdist fails here. The fresh venv installs the wheel with the cli and local extras,
    then runs `aiodynkv --help`, `aiodynkv demo` and `python -m aiodynkv demo` outside the
    source tree, so nothing is imported from the clone.
    """
    session.install("build>=1.2", "twine>=5")
    with tempfile.TemporaryDirectory(prefix="aiodynkv-package-") as tmp:
        dist = Path(tmp) / "dist"
        session.run("python", "-m", "build", "--outdir", os.fspath(dist), os.fspath(ROOT))
        built = sorted(os.fspath(path) for path in dist.iterdir())
        session.run("twine", "check", "--strict", *built)
        venv = Path(tmp) / "venv"
        session.run("python", "-m", "venv", os.fspath(venv))
        scripts = venv / ("Scripts" if os.name == "nt" else "bin")
        python = os.fspath(scripts / "python")
        (wheel,) = dist.glob("*.whl")
        session.chdir(tmp)
        session.run(python, "-m", "pip", "install", "--quiet", f"{wheel}[cli,local]", external=True)
        session.run(
            python, "-c", "import aiodynkv; print('aiodynkv', aiodynkv.__version__)", external=True
        )
        session.run(os.fspath(scripts / "aiodynkv"), "--help", external=True)
        session.run(os.fspath(scripts / "aiodynkv"), "demo", external=True)
        session.run(python, "-m", "aiodynkv", "demo", external=True)
        session.chdir(ROOT)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks on a stub DynamoDB and on dynalite (`-- --quick` for a short run).

    Rewrites BENCHMARKS.md and the figures between the bench markers in README.md.
    AIODYNKV_DYNALITE names a dynalite executable to use instead of installing one.
    """
    session.install("-e", ".", "-r", "benchmarks/requirements.txt")
    dynalite = os.environ.get("AIODYNKV_DYNALITE") or install_dynalite(session)
    env = {"AIODYNKV_DYNALITE": dynalite}
    session.run("python", "benchmarks/run.py", *session.posargs, env=env)


@nox.session
def reliability(session: nox.Session) -> None:
    """Fault injection and truth tests on dynalite and moto; rewrites RELIABILITY.md."""
    session.install("-e", ".[local]", *TEST_DEPS)
    env = {
        "AIODYNKV_DYNALITE": install_dynalite(session),
        "AIODYNKV_RELIABILITY_OUT": os.fspath(ROOT / "RELIABILITY.md"),
    }
    session.run(
        "pytest",
        "tests/integration/test_reliability.py",
        "tests/integration/test_truth.py",
        "-q",
        *session.posargs,
        env=env,
    )
