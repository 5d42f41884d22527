"""The fleet's optional cache machine `hx-cache` (`python -m testbed up --cache`): the host of the
inventory's `caches` group, where the deploy runs Redis for the gateways' shared router state.

The fleet has no route out, so Debian's redis-server is put on the machine before it first boots:
its packages are downloaded once on the control machine (same suite as the root filesystem,
cached beside it) and installed into the machine's own overlay with dpkg in a chroot. As the
root filesystem does for haproxy, the service is not enabled: the deploy configures and starts
it (tasks/cache.py), exactly as on a real host where it installs the package with apt.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from testbed import fleet, rootfs

CACHE = ("hx-cache", 12)
# redis-server and what it needs beyond the root filesystem's packages (apt-cache depends).
PACKAGES = ("redis-server", "redis-tools", "libjemalloc2", "liblzf1", "libatomic1")


def debs_dir() -> Path:
    key = hashlib.sha256(f"{rootfs.SUITE}|{','.join(PACKAGES)}".encode()).hexdigest()[:16]
    return rootfs.CACHE_DIR / f"debs-redis-{rootfs.SUITE}-{key}"


def ensure_debs() -> Path:
    """The packages, downloaded once with the control machine's apt (a Debian bookworm host)."""
    target = debs_dir()
    if (target / ".hx-complete").exists():
        return target
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    if _has_user("_apt"):  # apt downloads as _apt when it can write there (else it warns)
        shutil.chown(building, user="_apt")
    result = subprocess.run(["apt-get", "download", *PACKAGES], cwd=building, capture_output=True, text=True)
    if result.returncode != 0:
        raise fleet.FleetError(
            f"apt-get download {' '.join(PACKAGES)} failed (exit {result.returncode}); the control "
            f"machine needs Debian {rootfs.SUITE}'s package lists (apt-get update):\n{result.stderr.strip()}"
        )
    (building / ".hx-complete").write_text("\n".join(PACKAGES) + "\n")
    building.rename(target)
    return target


def _has_user(name: str) -> bool:
    return subprocess.run(["id", name], capture_output=True).returncode == 0


def bake_redis(machine: fleet.Machine) -> None:
    """Install redis-server into a prepared, not yet booted machine root; leave it disabled."""
    debs, root = ensure_debs(), machine.root / "root"
    if (root / "usr/bin/redis-server").exists():
        return
    staging = root / "var/tmp/hx-redis-debs"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(debs, staging)
    names = sorted(p.name for p in staging.glob("*.deb"))
    fleet.run("chroot", str(root), "dpkg", "-i", *(f"/var/tmp/hx-redis-debs/{n}" for n in names))
    shutil.rmtree(staging, ignore_errors=True)
    (root / "etc/systemd/system/multi-user.target.wants/redis-server.service").unlink(missing_ok=True)


def cache_machine() -> fleet.Machine:
    return fleet.Machine(CACHE[0], "cache", CACHE[1])


def add_cache() -> fleet.Machine:
    """Boot hx-cache on a running fleet, unless it is there already (for the tests that use it)."""
    fleet.require_host()
    machines = fleet.load_machines()
    if not machines:
        raise fleet.FleetError("the fleet is not up: run `make testbed-up` first")
    existing = next((m for m in machines if m.role == "cache"), None)
    if existing:
        if not fleet.pid_alive(existing.pid):
            fleet.power_on(existing.name)
        return fleet.find(existing.name)
    machine = cache_machine()
    fleet.attach_namespace(machine)
    fleet.prepare_machine_root(machine, rootfs.ensure_rootfs())
    bake_redis(machine)
    fleet.boot(machine)
    machines.append(machine)
    fleet.save_machines(machines)
    fleet.wait_ready(machine)
    return machine
