"""A private Docker engine for one `nox -s docker` run, and everything it needs.

`private_engine(tmp)` yields the environment (``DOCKER_HOST``) of a Docker engine:
the one that already answers, or, when none does, a ``dockerd`` started here with its
data root, exec root, socket and pid file in ``tmp``. On the way out, even after a
failure or a signal, it removes the containers and networks the run created, stops the
daemon it started (and the containerd that daemon started), and deletes the bridge
interfaces that appeared while it ran. An engine it did not start is left running, with
only what this run created removed.

``dockerd`` runs with ``--iptables=false``: it adds no firewall rule to the host. Ports
are published by docker-proxy on the host's side, so a published 127.0.0.1 port still
answers; containers reach the network only with ``--network host``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

PACKAGES = {"dockerd": "docker.io", "mmdebstrap": "mmdebstrap", "docker-compose": "docker-compose"}
# A label on everything this run creates, so that the cleanup removes only that.
LABEL = "org.aiodynkv.nox-docker"
# The compose project name the session's compose tests use (see tests/docker/).
COMPOSE_PROJECT = "aiodynkv-nox"
COMPOSE_LABEL = f"com.docker.compose.project={COMPOSE_PROJECT}"


def log(message: str) -> None:
    """One line of progress on stderr."""
    print(f"docker: {message}", file=sys.stderr, flush=True)  # noqa: T201


def ensure_tools(commands: tuple[str, ...]) -> None:
    """apt-get install the Debian packages of the commands that are missing (needs root)."""
    missing = sorted({PACKAGES[name] for name in commands if shutil.which(name) is None})
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        sys.exit(f"docker: install {' '.join(missing)} (Debian packages) first")
    log(f"apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)  # noqa: S607
    subprocess.run(  # noqa: S603
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],  # noqa: S607
        check=True,
        env=env,
    )


def docker_cli() -> str:
    """The docker client: the engine's own (Debian's) when there is one, else any on PATH."""
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).is_file():
            return candidate
    sys.exit("docker: no docker client (apt-get install docker.io)")


def answers(env: dict[str, str]) -> bool:
    """Whether the engine that `env` names answers."""
    result = subprocess.run(  # noqa: S603
        [docker_cli(), "version", "--format", "{{.Server.Version}}"],
        env=env,
        capture_output=True,
        timeout=20,
        check=False,
    )
    return result.returncode == 0


def _links() -> set[str]:
    net = Path("/sys/class/net")
    return {link.name for link in net.iterdir()} if net.is_dir() else set()


def _cleanup_objects(env: dict[str, str]) -> None:
    """Remove the containers and networks of this run (those carrying LABEL or its project)."""
    docker = docker_cli()

    def ids(*args: str) -> list[str]:
        out = subprocess.run(  # noqa: S603
            [docker, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        ).stdout
        return out.split()

    containers = ids("ps", "-aq", "--filter", f"label={LABEL}")
    containers += ids("ps", "-aq", "--filter", "label=org.testcontainers=true")
    containers += ids("ps", "-aq", "--filter", f"label={COMPOSE_LABEL}")
    if containers:
        remove = [docker, "rm", "-f", "-v", *sorted(set(containers))]
        subprocess.run(remove, env=env, check=False)  # noqa: S603
    networks = ids("network", "ls", "-q", "--filter", f"label={COMPOSE_LABEL}")
    if networks:
        subprocess.run([docker, "network", "rm", *networks], env=env, check=False)  # noqa: S603


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        log(f"dockerd (pid {process.pid}) did not stop in 30 s: SIGKILL")
        process.kill()
        process.wait(timeout=30)


def _descendants(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of every process whose parent chain leads to `pid`."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append((int(entry.name), fields[19]))
    stack, found = [pid], set()
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child[0])
    return found


def _end_leftovers(processes: set[tuple[int, str]]) -> None:
    """SIGKILL those of `processes` still running (same pid and start time)."""
    for pid, started in processes:
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            if fields[19] == started:
                log(f"left behind by dockerd: pid {pid}: SIGKILL")
                os.kill(pid, signal.SIGKILL)


def _unmount_under(folder: Path) -> None:
    """Unmount what the daemon left mounted in `folder` (its netns/default), deepest first."""
    prefix = f"{folder}/"
    with Path("/proc/self/mounts").open() as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False)  # noqa: S603, S607


@contextlib.contextmanager
def private_engine(tmp: Path) -> Iterator[dict[str, str]]:
    """The environment of a Docker engine that answers; see the module docstring."""
    env = dict(os.environ)
    if os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists():
        ensure_tools(("mmdebstrap", "docker-compose"))
        if answers(env):
            log("using the Docker engine that answers already")
            try:
                yield env
            finally:
                _cleanup_objects(env)
            return
    ensure_tools(("dockerd", "mmdebstrap", "docker-compose"))
    socket = tmp / "docker.sock"
    env["DOCKER_HOST"] = f"unix://{socket}"
    links_before = _links()
    log_file = (tmp / "dockerd.log").open("wb")
    command = [
        "dockerd",
        "--data-root", str(tmp / "data"),
        "--exec-root", str(tmp / "exec"),
        "--pidfile", str(tmp / "dockerd.pid"),
        "--host", env["DOCKER_HOST"],
        "--iptables=false",
        "--ip6tables=false",
        "--ip-masq=false",
    ]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603
        command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    log(f"started dockerd (pid {process.pid}) on {env['DOCKER_HOST']}")
    # The Python libraries (testcontainers' docker-py) should not look for a desktop socket.
    env.pop("DOCKER_CONTEXT", None)
    try:
        deadline = time.monotonic() + 60
        while not answers(env):
            if process.poll() is not None or time.monotonic() > deadline:
                log_file.flush()
                tail = (tmp / "dockerd.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"dockerd did not start:\n{tail}")
            time.sleep(0.5)
        yield env
    finally:
        with contextlib.suppress(Exception):
            _cleanup_objects(env)
        started = _descendants(process.pid)
        _stop(process)
        _end_leftovers(started)
        log_file.close()
        _unmount_under(tmp)
        for link in sorted(_links() - links_before):
            subprocess.run(["ip", "link", "delete", link], check=False)  # noqa: S603, S607
        log(f"stopped dockerd (pid {process.pid})")
