"""The fleet's Debian root filesystem: built once with debootstrap, cached, shared read-only.

Every machine boots from an overlay whose lower layer is this tree, so a new machine costs
an empty directory, not a 340 MB copy. The cache key covers everything that shapes the tree,
so changing the package list (or the post-build tweaks) builds a new one automatically.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

SUITE = "bookworm"
# python3-venv: the deploy's venv; iproute2: its identity guard; haproxy: the load balancer role;
# the prometheus packages: the monitoring role and its exporters (tasks/monitoring.py, the fleet has
# no route to a mirror, so they are in the tree like haproxy).
PACKAGES = (
    "systemd,systemd-sysv,dbus,openssh-server,python3,python3-venv,iproute2,"
    "curl,jq,sudo,ca-certificates,haproxy,"
    "prometheus,prometheus-alertmanager,prometheus-node-exporter,prometheus-redis-exporter"
)
# Services Debian's packages enable at install: the deploy enables each where it belongs.
SHIPPED_ENABLED = (
    "haproxy.service",
    "prometheus.service",
    "prometheus-alertmanager.service",
    "prometheus-node-exporter.service",
    "prometheus-redis-exporter.service",
)
# Bump when finalize() changes what it writes, so old caches are not reused.
LAYOUT_VERSION = "3"

CACHE_DIR = Path(os.environ.get("HX_TESTBED_CACHE", "/var/cache/hx-testbed"))


def cache_key() -> str:
    material = f"{SUITE}|{PACKAGES}|{LAYOUT_VERSION}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def rootfs_path() -> Path:
    return CACHE_DIR / f"rootfs-{SUITE}-{cache_key()}"


def ensure_rootfs(log=print) -> Path:
    """Return the cached tree, building it first when it is missing (about 80 s).

    Several processes may ask at once (make test's two workers on a fresh cache key): the first
    builds under an exclusive lock on the cache, the others wait on it and then find the tree.
    Without it both ran debootstrap in the same .building directory ("mknod ... File exists")."""
    target = rootfs_path()
    if (target / ".hx-complete").exists():
        return target
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".hx-complete").exists():  # built by the process we waited for
            return target
        return _build(target, log)


def _build(target: Path, log) -> Path:
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    log(f"building the {SUITE} root filesystem with debootstrap (cached afterwards) ...")
    cmd = ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", SUITE, str(building)]
    # Default mirror unless the operator points elsewhere (the control machine's own apt setup).
    if os.environ.get("HX_TESTBED_MIRROR"):
        cmd.append(os.environ["HX_TESTBED_MIRROR"])
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise RuntimeError(
            f"debootstrap failed (exit {result.returncode}); check the network to the Debian "
            f"mirror or set HX_TESTBED_MIRROR.\n{tail}"
        )
    finalize(building)
    (building / ".hx-complete").write_text(cache_key() + "\n")
    building.rename(target)
    for stale in CACHE_DIR.glob(f"rootfs-{SUITE}-*"):
        if stale != target and not stale.name.endswith(".building"):
            shutil.rmtree(stale, ignore_errors=True)
    return target


def finalize(root: Path) -> None:
    """Make the generic tree fit to boot many times under systemd-nspawn."""
    # A fresh machine-id per boot: an empty file makes systemd generate one.
    (root / "etc/machine-id").write_text("")
    # HAProxy, Prometheus and the exporters are configured and started by the deploy, each only
    # on the hosts of its role; a machine that boots must not run them.
    for unit in SHIPPED_ENABLED:
        (root / "etc/systemd/system/multi-user.target.wants" / unit).unlink(missing_ok=True)
    sshd = root / "etc/ssh/sshd_config.d/hx-testbed.conf"
    sshd.write_text("PermitRootLogin prohibit-password\nUseDNS no\nPasswordAuthentication no\n")
    # Host keys are made per machine when it is created (fleet.py), never shared.
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
