"""Developer tasks; the README shows the same commands.

Every session installs from constraints.txt, the versions the suite was last proven with;
`python -m nox -s upgrade` refreshes that file from the newest releases and runs the suite.

python -m nox -s tests       # all backends: memory, moto, dynalite (+ DynamoDB Local with Docker)
python -m nox -s full        # the slow tests: stress, soak, processes, the whole fault matrix
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
LOCK = ROOT / "constraints.txt"
DYNALITE_DIR = ROOT / ".nox" / "_dynalite"
DYNALITE = "dynalite@4.0.0"  # the npm release the suite was proven with
# Two pytest workers per core (4 to 8): a test spends much of its time waiting on a
# timeout, a lease or a server, and one worker per core left the cores half idle.
WORKERS = str(min(8, max(4, 2 * (os.cpu_count() or 2))))
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
    "httpx2>=2.16",  # what Starlette's TestClient uses (the README's FastAPI tests)
    "pytest-xdist>=3.6",  # WORKERS processes: much of the suite waits on timeouts and leases
]
# Everything any session installs, for `upgrade` to resolve in one environment.
ALL_DEPS = [
    "-e",
    ".[local,cli,examples,encryption,typed,docs]",
    *TEST_DEPS,
    "mypy>=1.11",
    "types-aiobotocore-dynamodb",
    "types-PyYAML",
    "nox",
    "ruff>=0.6",
    "build>=1.2",
    "twine>=5",
    "-r",
    "benchmarks/requirements.txt",
]
# The extras the tests and the type check need: the emulator, the command line, and
# what examples/ imports (FastAPI, uvicorn, aiohttp, the OpenTelemetry SDK and exporter),
# plus cryptography and pydantic for encryption and typed views.
EXTRAS = ".[local,cli,examples,encryption,typed]"


def install(session: nox.Session, *args: str) -> None:
    """pip install under the lock: the exact versions in constraints.txt."""
    session.install("-c", os.fspath(LOCK), *args)


def install_dynalite(session: nox.Session) -> str:
    """npm-install dynalite once into .nox/_dynalite; return its executable."""
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
            DYNALITE,
            external=True,
        )
    return str(exe)


def run_pytest(session: nox.Session, *args: str) -> None:
    """pytest under branch coverage on WORKERS workers; the 95 % gate applies to whole runs."""
    env = {"AIODYNKV_DYNALITE": install_dynalite(session)}
    session.run("coverage", "erase")
    # worksteal: idle workers take queued tests from busy ones (the default hands out
    # large batches up front, and the workers of a run ended 50 s apart)
    session.run(
        "coverage", "run", "-m", "pytest", "-n", WORKERS, "--dist", "worksteal", *args, env=env
    )
    session.run("coverage", "combine", "--quiet")
    # A subset (arguments after --) reports its coverage but cannot fail the gate.
    gate = [] if not session.posargs else ["--fail-under=0"]
    session.run("coverage", "report", *gate)


@nox.session
def tests(session: nox.Session) -> None:
    """The suite with branch coverage (>= 95 %) on every backend; the slow tests are in `full`."""
    install(session, "-e", EXTRAS, *TEST_DEPS)
    run_pytest(session, "-m", "not slow", *session.posargs)


@nox.session
def full(session: nox.Session) -> None:
    """The slow tests: stress, soak, several processes, the owner watch, the whole fault matrix."""
    install(session, "-e", EXTRAS, *TEST_DEPS)
    env = {
        "AIODYNKV_DYNALITE": install_dynalite(session),
        # Every sequence of one to three faults (a trickle too), both transports; the
        # cases of one operation and transport run concurrently (tests/faultseq.py).
        "AIODYNKV_FULL_MATRIX": "1",
        "AIODYNKV_MATRIX_DEPTH": os.environ.get("AIODYNKV_MATRIX_DEPTH", "3"),
        "AIODYNKV_MATRIX_ALONE": os.environ.get("AIODYNKV_MATRIX_ALONE", ""),
    }
    session.run("pytest", "-n", "2", "-m", "slow", *session.posargs, env=env)


@nox.session
def upgrade(session: nox.Session) -> None:
    """Refresh constraints.txt from the newest releases, then run the suite on them.

    Run it when you want new upstream releases (monthly, or for a fix you need); commit
    constraints.txt only when the suite passes on it.
    """
    session.install("--upgrade", "--upgrade-strategy", "eager", *ALL_DEPS)
    frozen = session.run("python", "-m", "pip", "freeze", "--exclude-editable", silent=True)
    header = "# The versions the test suite was last proven with; `nox -s upgrade` writes it.\n"
    LOCK.write_text(header + str(frozen))
    run_pytest(session, "-m", "not slow")


@nox.session
def docker(session: nox.Session) -> None:
    """testcontainers, the fixtures, the contract suite and docker-compose.yml, in containers.

    Starts a private Docker engine when none answers (as root; apt-get installs docker.io,
    mmdebstrap and docker-compose when missing), builds the DynamoDB stand-in image from
    Debian's packages and PyPI (cached in .nox/_docker), runs the tests with Ryuk disabled
    and nothing skipped, and stops all it started. docker/README.md has the details.
    """
    install(session, "-e", EXTRAS, *TEST_DEPS)
    session.run("python", os.fspath(ROOT / "docker" / "session.py"), *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Start the embedded emulator, store values, read them back."""
    install(session, "-e", ".[local]")
    session.run("python", "-m", "aiodynkv", "demo")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    install(session, "ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and the examples."""
    install(
        session,
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
    install(session, "-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "--site-dir", os.fspath(ROOT / "site"))


@nox.session
def package(session: nox.Session) -> None:
    """Build the sdist and the wheel, check their metadata, and run the wheel from a fresh venv.

    The wheel is built from the sdist (what `python -m build` does), so a file missing from
    the sdist fails here. The fresh venv installs the wheel with the cli and local extras,
    then runs `aiodynkv --help`, `aiodynkv demo` and `python -m aiodynkv demo` outside the
    source tree, so nothing is imported from the clone.
    """
    install(session, "build>=1.2", "twine>=5")
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
        session.run(
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "-c",
            os.fspath(LOCK),
            f"{wheel}[cli,local]",
            external=True,
        )
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
    install(session, "-e", ".", "-r", "benchmarks/requirements.txt")
    dynalite = os.environ.get("AIODYNKV_DYNALITE") or install_dynalite(session)
    env = {"AIODYNKV_DYNALITE": dynalite}
    session.run("python", "benchmarks/run.py", *session.posargs, env=env)


@nox.session
def reliability(session: nox.Session) -> None:
    """Fault injection, truth tests and the fault matrix; rewrites RELIABILITY.md."""
    install(session, "-e", ".[local]", *TEST_DEPS)
    results = ROOT / ".nox" / "matrix-results.jsonl"
    results.unlink(missing_ok=True)
    env = {
        "AIODYNKV_DYNALITE": install_dynalite(session),
        "AIODYNKV_RELIABILITY_OUT": os.fspath(ROOT / "RELIABILITY.md"),
        "AIODYNKV_FULL_MATRIX": "1",
        "AIODYNKV_MATRIX_DEPTH": os.environ.get("AIODYNKV_MATRIX_DEPTH", "3"),
        "AIODYNKV_MATRIX_RESULTS": os.fspath(results),
    }
    session.run(
        "pytest",
        "tests/integration/test_reliability.py",
        "tests/integration/test_truth.py",
        "-q",
        *session.posargs,
        env=env,
    )
    session.run("pytest", "tests/integration/test_fault_matrix.py", "-n", "2", "-q", env=env)
    into = ["--into", os.fspath(ROOT / "RELIABILITY.md")]
    session.run("python", "-m", "tests.fault_matrix_report", os.fspath(results), *into)
