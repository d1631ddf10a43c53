"""Build the DynamoDB stand-in image, ``aiodynkv/dynamodb-standin:local``, with no registry.

Steps (docker/README.md says why):

1. ``mmdebstrap --variant=apt --include=python3,python3-venv,ca-certificates bookworm``
   makes a Debian root file system from Debian's packages (cached in ``CACHE``).
2. ``docker import`` turns it into a base image.
3. A container of that base (host network, the host's CA bundle mounted for pip) creates
   two virtual environments from PyPI: moto's server (requirements-server.txt) and the
   AWS CLI v1 (requirements-awscli.txt, for docker-compose.yml's create-table service),
   and copies standin_server.py in.
4. ``docker commit`` makes it the image: entry point standin_server.py, which takes
   DynamoDB Local's arguments, and port 8000.
5. ``docker save`` caches the image in ``CACHE``, keyed by a hash of these files, so a
   later run only loads it.

Run as ``python docker/standin.py`` with ``DOCKER_HOST`` naming the engine.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from engine import LABEL, docker_cli, log

IMAGE = "aiodynkv/dynamodb-standin:local"
BASE = "aiodynkv/standin-base:bookworm"
HERE = Path(__file__).resolve().parent
CACHE = HERE.parent / ".nox" / "_docker"
INPUTS = ("standin.py", "standin_server.py", "requirements-server.txt", "requirements-awscli.txt")
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
SETUP = """
python3 -m venv /opt/server
/opt/server/bin/pip install --no-cache-dir --quiet -r /src/requirements-server.txt
python3 -m venv /opt/awscli
/opt/awscli/bin/pip install --no-cache-dir --quiet -r /src/requirements-awscli.txt
ln -s /opt/awscli/bin/aws /usr/local/bin/aws
cp /src/standin_server.py /opt/standin_server.py
/opt/server/bin/python -c 'import moto.moto_server.werkzeug_app'
aws --version
apt-get clean
rm -rf /var/lib/apt/lists/* /root/.cache
"""


def fingerprint() -> str:
    """A hash of everything the image is built from."""
    digest = hashlib.sha256()
    for name in INPUTS:
        digest.update(name.encode() + b"\0" + (HERE / name).read_bytes())
    return digest.hexdigest()[:16]


def _run(*args: str, env: dict[str, str]) -> None:
    subprocess.run(args, env=env, check=True)  # noqa: S603


def rootfs(cache: Path) -> Path:
    """Debian bookworm's root file system as a tarball, made once and kept in `cache`."""
    tarball = cache / "rootfs-bookworm.tar"
    if tarball.exists():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".partial")
    started = time.monotonic()
    command = [
        "mmdebstrap", "--quiet", "--variant=apt", "--format=tar",
        "--include=python3,python3-venv,ca-certificates", "bookworm", str(partial),
    ]  # fmt: skip
    subprocess.run(command, check=True)  # noqa: S603
    partial.rename(tarball)
    log(f"made {tarball.name} in {time.monotonic() - started:.0f} s")
    return tarball


def build(env: dict[str, str], cache: Path = CACHE, tag: str = IMAGE) -> None:
    """Make `tag` present on the engine `env` names: load it from `cache`, or build it."""
    docker = docker_cli()
    saved = cache / f"standin-{fingerprint()}.tar"
    if saved.exists():
        _run(docker, "load", "--quiet", "--input", str(saved), env=env)
        log(f"loaded {tag} from {saved.relative_to(cache.parent.parent)}")
        return
    started = time.monotonic()
    _run(docker, "import", str(rootfs(cache)), BASE, env=env)
    name = f"aiodynkv-standin-build-{os.getpid()}"
    mounts = ["--volume", f"{HERE}:/src:ro"]
    if HOST_CA.is_file():  # a proxy's CA, where there is one, for pip inside
        mounts += ["--volume", f"{HOST_CA}:/host-ca.crt:ro", "--env", "PIP_CERT=/host-ca.crt"]
    try:
        _run(
            docker, "run", "--name", name, "--label", LABEL, "--network", "host", *mounts,
            BASE, "/bin/sh", "-ec", SETUP,
            env=env,
        )  # fmt: skip
        _run(
            docker, "commit",
            "--change", 'ENTRYPOINT ["/opt/server/bin/python", "/opt/standin_server.py"]',
            "--change", 'CMD ["-jar", "DynamoDBLocal.jar", "-inMemory"]',
            "--change", "EXPOSE 8000",
            "--change", "WORKDIR /",
            name, tag,
            env=env,
        )  # fmt: skip
    finally:
        subprocess.run([docker, "rm", "-f", name], env=env, capture_output=True, check=False)  # noqa: S603
    _run(docker, "rmi", BASE, env=env)
    log(f"built {tag} in {time.monotonic() - started:.0f} s")
    for stale in cache.glob("standin-*.tar"):
        stale.unlink()
    partial = saved.with_suffix(".partial")
    _run(docker, "save", "--output", str(partial), tag, env=env)
    partial.rename(saved)


if __name__ == "__main__":
    build(dict(os.environ))
    sys.exit(0)
