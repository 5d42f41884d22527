"""The wheelhouse: every wheel a gateway's venv needs, built on the control machine.

Gateway hosts may have no route to a package index (the local fleet has none), so the control
machine downloads the hash-locked wheels for the target's Python and platform once, packs them
with the lock file and uv's wheel into one tar, and the deploy ships that tar only when the host
lacks the release. A release is named by what shapes it (lock files, Python, machine), so the
same release is never built or installed twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from hxops.gateway_locks import GATEWAY_LOCK, REPO

INSTALLER_LOCK = REPO / "requirements" / "installer.lock"
CACHE = Path(os.environ.get("HX_WHEELHOUSE_CACHE", Path.home() / ".cache" / "hx-gateway" / "wheelhouse"))
# Oldest glibc first: pip only takes wheels whose platform tag is listed, so list every
# manylinux level up to the target's glibc.
MANYLINUX_MINORS = (5, 12, 17, 24, 27, 28, 31, 34, 35, 36, 38, 39, 40, 41)


@dataclass(frozen=True)
class Release:
    id: str
    python: str  # "3.11"
    machine: str  # "x86_64"
    glibc: str  # "2.36"
    lock: Path = GATEWAY_LOCK  # the gateway lock it installs (hxops.gateway_locks)

    @property
    def tar_path(self) -> Path:
        return CACHE / f"wheelhouse-{self.id}.tar"


def release_for(python: tuple[int, ...], machine: str, glibc: str, lock: Path = GATEWAY_LOCK) -> Release:
    digest = hashlib.sha256()
    for path in (lock, INSTALLER_LOCK):
        digest.update(path.read_bytes())
    py = f"{python[0]}.{python[1]}"
    digest.update(f"|{py}|{machine}|{glibc}".encode())
    return Release(digest.hexdigest()[:16], py, machine, glibc, lock)


def platform_tags(machine: str, glibc: str) -> list[str]:
    major, _, minor = glibc.partition(".")
    if major != "2" or not minor.isdigit():
        raise RuntimeError(f"cannot build wheels for glibc {glibc!r}: only glibc 2.x hosts are supported")
    tags = [f"manylinux_2_{m}_{machine}" for m in MANYLINUX_MINORS if m <= int(minor)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += [f"{name}_{machine}" for m, name in legacy.items() if m <= int(minor)]
    return tags + [f"linux_{machine}"]


# pyinfra plans its hosts in parallel greenlets of one process (gevent, monkey-patched): the hosts
# of one run wait on this lock (a cooperative one under gevent), and only the first one builds.
_BUILD_LOCK = threading.Lock()


def _flock(lock_file, poll: float = 0.2) -> None:
    """Take the cache's cross-process lock without blocking the process: under gevent a blocking
    flock() would freeze every greenlet, including the one that is building."""
    while True:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(poll)  # gevent's sleep under pyinfra: the other greenlets run meanwhile


def ensure_built(release: Release, log=print) -> Path:
    """Build the release's tar once: the hosts of one run share the build (in-process lock) and
    concurrent pyinfra processes wait on the cache's lock file instead of racing."""
    if release.tar_path.exists():
        return release.tar_path
    with _BUILD_LOCK:
        return _build_locked(release, log)


def _build_locked(release: Release, log) -> Path:
    if release.tar_path.exists():
        return release.tar_path
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        _flock(lock)
        if release.tar_path.exists():
            return release.tar_path
        log(f"building wheelhouse {release.id} for Python {release.python} on {release.machine} ...")
        work = CACHE / f"build-{release.id}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(work),
            "--python-version",
            release.python,
            "--implementation",
            "cp",
            "-r",
            str(release.lock),
            "-r",
            str(INSTALLER_LOCK),
        ]
        for tag in platform_tags(release.machine, release.glibc):
            cmd += ["--platform", tag]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
            raise RuntimeError(
                "could not download the gateway's wheels (needs PyPI from the control machine, "
                "or set install_source='index' to install on the hosts):\n" + "\n".join(errors[-5:])
            )
        shutil.copy(release.lock, work / "gateway.lock")
        partial = release.tar_path.with_suffix(".partial")
        # Uncompressed: wheels are zip files already, and tar -x of a plain tar is fastest.
        with tarfile.open(partial, "w") as tar:
            for path in sorted(work.iterdir()):
                tar.add(path, arcname=path.name)
        partial.replace(release.tar_path)
        shutil.rmtree(work, ignore_errors=True)
        return release.tar_path
