"""`LocalDynamoDB`: start and stop a DynamoDB-compatible server on 127.0.0.1.

Private so that the command line and the demo need not import the testing package.
Kinds: ``"moto"`` (default; the ``local`` extra), ``"dynalite"`` (npm, found by
`find_dynalite`) and ``"dynamodb-local"`` (Amazon's image, or one serving its API on
port 8000, through testcontainers; `ImageUnavailableError` when it is neither present
nor pullable).

No server outlives its owner: each runs in its own process group under the owner watch
(`aiodynkv.testing._owned`, whose PID `pid` is), which stops it once its owner is gone,
even after SIGKILL; `stop` ends the whole group, and an `atexit` hook stops the rest.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path
from types import FrameType
from typing import IO, Any, Literal

from aiodynkv.testing._owned import watch_command

__all__ = [
    "ImageUnavailableError",
    "Kind",
    "LocalDynamoDB",
    "PullPolicy",
    "LocalServerError",
    "docker_available",
    "find_dynalite",
    "running_servers",
]

Kind = Literal["moto", "dynalite", "dynamodb-local"]
PullPolicy = Literal["missing", "always", "never"]
_HOST = "127.0.0.1"
# The embedded emulator's command line: `serve_moto` in an interpreter of its own.
_SERVE_MOTO = "import sys; from aiodynkv.testing._local import serve_moto; serve_moto(sys.argv[1:])"
# What coverage.py sets so that subprocesses measure themselves.
_COVERAGE_ENV = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")
_DYNAMODB_LOCAL_IMAGE = "amazon/dynamodb-local:latest"
IMAGE_VARIABLE = "AIODYNKV_DYNAMODB_LOCAL_IMAGE"
PULL_VARIABLE = "AIODYNKV_DYNAMODB_LOCAL_PULL"
_PULL_POLICIES: tuple[PullPolicy, ...] = ("missing", "always", "never")
# Tables ready at once, as on DynamoDB Local and moto.
_DYNALITE_ARGS = ("--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
_DYNAMODB_LOCAL_ARGS = "-jar DynamoDBLocal.jar -inMemory -sharedDb"
_CACHE = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "aiodynkv"
_STOP_TIMEOUT = 10.0
# The servers started and not yet stopped, for the exit hook below. A registry is the
# point: it is what lets the process stop servers whose owners forgot to.
_RUNNING: set[LocalDynamoDB] = set()


def running_servers() -> list[LocalDynamoDB]:
    """The servers this process started and has not stopped yet."""
    return list(_RUNNING)


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Send `signum` to the process group `process` leads (or to it alone, off POSIX)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signum)
        else:  # pragma: no cover - Windows has no process groups to signal
            process.send_signal(signum)


class LocalServerError(RuntimeError):
    """The local server could not be found, started or reached."""


class ImageUnavailableError(LocalServerError):
    """A Docker engine answers, but the image is not there and could not be pulled.

    Attributes:
        image: The image that was asked for.
    """

    def __init__(self, message: str, *, image: str) -> None:
        super().__init__(message)
        self.image = image


def _docker() -> Any:
    """The docker-py package (untyped; imported by name so no folder called docker shadows it)."""
    return importlib.import_module("docker")


def _docker_client(timeout: float) -> Any:
    """A docker-py client for the engine ``DOCKER_HOST`` (or the default socket) names."""
    return _docker().from_env(timeout=int(max(1, timeout)))


def _ensure_image(client: Any, image: str, pull: PullPolicy, setting: str) -> None:
    """Make `image` present locally as `pull` allows, or raise `ImageUnavailableError`."""
    if pull != "always":
        with contextlib.suppress(_docker().errors.ImageNotFound):
            client.images.get(image)
            return
    if pull == "never":
        raise ImageUnavailableError(
            f"the Docker image {image!r} is not present and the pull policy is 'never' "
            f"({PULL_VARIABLE}): build or load it, or set {setting}",
            image=image,
        )
    try:
        client.images.pull(image)
    except Exception as exc:  # noqa: BLE001 (any failure means: no image to run)
        reason = " ".join(str(exc).split())[:200]
        raise ImageUnavailableError(
            f"the Docker image {image!r} is not present and could not be pulled ({reason}): "
            f"set {setting}",
            image=image,
        ) from None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def docker_available(timeout: float = 2.0) -> tuple[bool, str]:
    """Whether a Docker engine answers, and if not, why.

    Returns:
        ``(True, "")`` when ``docker.from_env().ping()`` succeeds, else ``(False, reason)``.
    """
    host = os.environ.get("DOCKER_HOST", "")
    if not host and not Path("/var/run/docker.sock").exists():
        return (
            False,
            "no Docker engine: DOCKER_HOST is unset and /var/run/docker.sock does not exist",
        )
    if find_spec("docker") is None:
        return False, "the docker Python package is not installed (pip install testcontainers)"
    # A failed connection attempt inside docker-py leaves its socket to the collector.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = _docker_client(timeout)
            try:
                client.ping()
            finally:
                client.close()
        except Exception as exc:  # noqa: BLE001 (any failure means: no engine to use)
            return False, f"no Docker engine answers ({type(exc).__name__}: {str(exc)[:160]})"
        finally:
            gc.collect()
    return True, ""


def find_dynalite(*, install: bool = False) -> str:
    """Path of the dynalite executable.

    Args:
        install: Run ``npm install dynalite@4`` into ``~/.cache/aiodynkv`` if not found.

    Raises:
        LocalServerError: dynalite is not installed (and could not be).
    """
    candidates = [
        os.environ.get("AIODYNKV_DYNALITE"),
        shutil.which("dynalite"),
        str(Path.cwd() / "node_modules" / ".bin" / "dynalite"),
        str(_CACHE / "node_modules" / ".bin" / "dynalite"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    npm = shutil.which("npm")
    if install and npm:
        _CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603 (fixed arguments)
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(_CACHE), "dynalite@4"],
            check=True,
            capture_output=True,
            timeout=300,
        )
        return find_dynalite(install=False)
    raise LocalServerError(
        "dynalite not found: run `npm install dynalite@4` (Node.js needed) or set AIODYNKV_DYNALITE"
    )


class LocalDynamoDB:
    """A local DynamoDB-compatible server on a free 127.0.0.1 port.

    Use it as a context manager (sync or async) or call `start` / `stop`::

        with LocalDynamoDB() as server:                 # embedded moto server
            async with AsyncDynamoKV(table="t", endpoint=server.endpoint,
                                     create_table=True) as kv: ...

    Args:
        kind: ``"moto"``, ``"dynalite"`` or ``"dynamodb-local"``.
        port: Port to listen on; a free one by default.
        install: For dynalite, install it with npm when it is missing.
        startup_timeout: Seconds to wait for the server to answer.
        env: Extra environment variables for the server process (moto and dynalite),
            such as ``{"INITIAL_NO_AUTH_ACTION_COUNT": "4"}``, which turns on moto's
            IAM enforcement after that many requests.
        image: For ``"dynamodb-local"``, the Docker image to run; default
            ``AIODYNKV_DYNAMODB_LOCAL_IMAGE``, else ``amazon/dynamodb-local:latest``.
        pull: For ``"dynamodb-local"``, when to pull the image: ``"missing"`` (when it
            is not present), ``"always"`` or ``"never"``; default
            ``AIODYNKV_DYNAMODB_LOCAL_PULL``, else ``"missing"``.

    Raises:
        ValueError: An unknown kind or pull policy.
    """

    def __init__(
        self,
        kind: Kind = "moto",
        *,
        port: int | None = None,
        install: bool = False,
        startup_timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        image: str | None = None,
        pull: PullPolicy | None = None,
    ) -> None:
        if kind not in ("moto", "dynalite", "dynamodb-local"):
            raise ValueError(f"kind must be 'moto', 'dynalite' or 'dynamodb-local', not {kind!r}")
        policy = pull or os.environ.get(PULL_VARIABLE) or "missing"
        if policy not in _PULL_POLICIES:
            source = "pull" if pull else PULL_VARIABLE
            raise ValueError(f"{source} must be 'missing', 'always' or 'never', not {policy!r}")
        self.kind: Kind = kind
        self.image: str = image or os.environ.get(IMAGE_VARIABLE) or _DYNAMODB_LOCAL_IMAGE
        self.pull: PullPolicy = policy
        self._image_setting = "image=" if image else IMAGE_VARIABLE
        self.port = port
        self.install = install
        self.startup_timeout = startup_timeout
        self.env = dict(env or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._container: Any = None
        self._endpoint: str | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        if self._endpoint is None:
            raise LocalServerError("the server is not running: call start() first")
        return self._endpoint

    @property
    def pid(self) -> int | None:
        """PID of the owner watch that leads the server's process group.

        The server runs as its child, in the same group: signal the group
        (``os.killpg``) to reach both. None for a container or when stopped.
        """
        return self._process.pid if self._process else None

    def __repr__(self) -> str:
        return f"<LocalDynamoDB kind={self.kind!r} endpoint={self._endpoint!r}>"

    @property
    def container_id(self) -> str | None:
        """ID of the Docker container serving ``"dynamodb-local"``; None otherwise."""
        if self._container is None:
            return None
        return str(self._container.get_wrapped_container().id)  # pragma: no cover - needs Docker

    def start(self) -> str:
        """Start the server and wait until it answers.

        Returns:
            The endpoint URL.

        Raises:
            LocalServerError: It could not be started or did not answer in time.
        """
        if self._endpoint is not None:
            return self._endpoint
        try:
            if self.kind == "dynamodb-local":
                self._start_container()
            else:
                self._start_process()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self.endpoint

    def _command(self, port: int) -> list[str]:
        if self.kind == "moto":
            try:
                import moto.server  # noqa: F401 (only to give a clear error)
            except ImportError as exc:
                raise LocalServerError(
                    "the embedded emulator needs moto's server, the local extra: "
                    "pip install -e '.[local]' in a clone of aiodynkv"
                ) from exc
            return [sys.executable, "-c", _SERVE_MOTO, _HOST, str(port)]
        exe = find_dynalite(install=self.install)
        return [exe, "--host", _HOST, "--port", str(port), *_DYNALITE_ARGS]

    def _start_process(self) -> None:
        port = self.port or _free_port()
        # Under the owner watch: the server ends when this process does, however it ends.
        command = watch_command(os.getpid(), self._command(port))
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        # A test run under coverage would measure the emulator too (coverage's subprocess
        # patch passes its settings on): slower for every request, and none of it is yours.
        for name in _COVERAGE_ENV:
            env.pop(name, None)
        try:
            self._process = subprocess.Popen(  # noqa: S603 (fixed arguments)
                command,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # its own process group: see the module docstring
            )
        except BaseException:
            self._log.close()
            self._log = None
            raise
        _RUNNING.add(self)
        self._endpoint = f"http://{_HOST}:{port}"

    def _start_container(self) -> None:
        ok, reason = docker_available()
        if not ok:
            raise LocalServerError(f"DynamoDB Local needs Docker: {reason}")
        from testcontainers.core.config import testcontainers_config

        client = _docker_client(10.0)
        try:
            setting = f"{self._image_setting} to an image that is present or can be pulled"
            _ensure_image(client, self.image, self.pull, setting)
            if not testcontainers_config.ryuk_disabled:
                ryuk = testcontainers_config.ryuk_image
                _ensure_image(client, ryuk, "missing", "TESTCONTAINERS_RYUK_DISABLED=true")
        finally:
            client.close()
        self._run_container()

    def _run_container(self) -> None:  # pragma: no cover - needs Docker (nox -s docker)
        from testcontainers.core.container import DockerContainer

        container = DockerContainer(self.image)
        container.with_command(_DYNAMODB_LOCAL_ARGS)
        container.with_bind_ports(8000, self.port)
        self._container = container
        _RUNNING.add(self)
        container.start()
        docker_host = os.environ.get("DOCKER_HOST", "")
        if docker_host and not docker_host.startswith("unix://"):  # a remote engine
            host = container.get_container_host_ip()
            self._endpoint = f"http://{host}:{container.get_exposed_port(8000)}"
            return
        # An engine on this machine publishes the port on every interface, loopback
        # included: a loopback endpoint, whatever testcontainers guesses about networks.
        self._endpoint = f"http://{_HOST}:{self._published_port()}"

    def _published_port(self) -> int:  # pragma: no cover - needs Docker (nox -s docker)
        wrapped = self._container.get_wrapped_container()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            wrapped.reload()
            bindings = wrapped.attrs["NetworkSettings"]["Ports"].get("8000/tcp") or []
            if bindings:
                return int(bindings[0]["HostPort"])
            self._check_container()
            if time.monotonic() > deadline:
                raise LocalServerError(f"the container of {self.image!r} published no port 8000")
            time.sleep(0.1)

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-2000:].decode(errors="replace")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        request = urllib.request.Request(  # noqa: S310 (our own loopback endpoint)
            self.endpoint,
            data=b"{}",
            method="POST",
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
                "Authorization": "AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/"
                "aws4_request, SignedHeaders=host, Signature=0",
            },
        )
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise LocalServerError(
                    f"{self.kind} exited with code {self._process.returncode}:\n{self._output()}"
                )
            if self._container is not None:  # pragma: no cover - needs Docker
                self._check_container()
            try:
                with urllib.request.urlopen(request, timeout=2.0):  # noqa: S310
                    return
            except urllib.error.HTTPError:
                return  # it answered, even if it disliked the placeholder signature
            except OSError:
                if time.monotonic() > deadline:
                    raise LocalServerError(
                        f"{self.kind} did not answer on {self.endpoint} within "
                        f"{self.startup_timeout} s:\n{self._output()}"
                    ) from None
                time.sleep(0.1)

    def _check_container(self) -> None:  # pragma: no cover - needs Docker (nox -s docker)
        wrapped = self._container.get_wrapped_container()
        wrapped.reload()
        if wrapped.status in ("exited", "dead"):
            logs = wrapped.logs(tail=40).decode(errors="replace")
            raise LocalServerError(
                f"the container of {self.image!r} exited "
                f"(code {wrapped.attrs['State'].get('ExitCode')}):\n{logs}"
            )

    def stop(self) -> None:
        """Stop the server (only the process group or container this object started)."""
        _RUNNING.discard(self)
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout=_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    _signal_group(process, signal.SIGKILL)
                    process.wait(timeout=_STOP_TIMEOUT)
            # Whatever is left of the group: a server whose watch was killed, say.
            _signal_group(process, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(Exception):
                container.stop()
        self._endpoint = None

    def __enter__(self) -> LocalDynamoDB:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> LocalDynamoDB:
        import asyncio

        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()


# -- the embedded emulator's own process ------------------------------------------------------
# ``python -m moto.server`` serves requests on threads without locking, so concurrent
# UpdateItem calls on one item can lose updates: one thread makes each request atomic.


def _stop_serving(_signum: int, _frame: FrameType | None) -> None:  # pragma: no cover
    raise SystemExit(0)


def serve_moto(argv: list[str]) -> None:  # pragma: no cover - runs in the server's process
    """Serve moto's DynamoDB on ``argv[0]:argv[1]``, on one thread, until SIGTERM or SIGINT.

    Both handlers are set explicitly: an inherited SIG_IGN (``&``, CI runners) would survive.
    """
    host, port = argv[0], int(argv[1])
    signal.signal(signal.SIGTERM, _stop_serving)
    signal.signal(signal.SIGINT, _stop_serving)
    os.environ.setdefault("MOTO_PORT", str(port))
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )
    from werkzeug.serving import WSGIRequestHandler, run_simple

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """Don't log every request."""

        def send_response(self, code: int, message: str | None = None) -> None:
            # The status line and Date only: moto sends its own Server header, and a
            # strict parser (aiohttp in ``python -X dev``) rejects a reply with two.
            self.send_response_only(code, message)
            self.send_header("Date", self.date_time_string())

    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=QuietHandler)
