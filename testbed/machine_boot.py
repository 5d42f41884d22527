"""Booting one fleet machine on this VM: its namespace on the bridge, its overlay root, its
process (systemd-nspawn, or fake_ollama.py for a backend), SSH into it and waiting until it is ready.

testbed/fleet.py composes these into up/down/add/remove/power; bench/run.py reuses them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from testbed.fleet_layout import (
    BACKEND_KNOBS,
    BACKENDS,
    BRIDGE,
    FAKE_OLLAMA,
    HOST_ADDRESS,
    OLLAMA_PORT,
    PREFIX,
    SSH_KEY,
    FleetError,
    Machine,
    run,
)

# ---------- network ----------


def ensure_bridge() -> None:
    if run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        return
    run("ip", "link", "add", BRIDGE, "type", "bridge")
    run("ip", "addr", "add", f"{HOST_ADDRESS}/24", "dev", BRIDGE)
    run("ip", "link", "set", BRIDGE, "up")


def attach_namespace(machine: Machine) -> None:
    """A namespace with one veth on the bridge and deliberately no default route."""
    ns, host_end = machine.netns, f"{machine.netns}h"
    # A namespace deleted while a process of the machine was still exiting lives on until it does,
    # and keeps its veth pair: an `up` right after `down` then found the name taken ("File exists").
    # Deleting the host end takes the whole pair away.
    if run("ip", "link", "show", host_end, check=False).returncode == 0:
        run("ip", "link", "del", host_end, check=False)
    run("ip", "netns", "add", ns)
    run("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
    run("ip", "link", "set", host_end, "master", BRIDGE, "up")
    run("ip", "-n", ns, "addr", "add", f"{machine.address}/24", "dev", "eth0")
    run("ip", "-n", ns, "link", "set", "eth0", "up")
    run("ip", "-n", ns, "link", "set", "lo", "up")


def our_namespaces() -> list[str]:
    out = run("ip", "netns", "list", check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(f"{PREFIX}-")]


# ---------- processes ----------


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def stop_pid(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM (nspawn powers the machine off cleanly), then SIGKILL after the timeout."""
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def leftover_pids() -> list[int]:
    """Processes this fleet started: nspawn bound to our namespaces, and anything inside them."""
    pids: set[int] = set()
    marker = f"--network-namespace-path=/run/netns/{PREFIX}-".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "cmdline").read_bytes():
                pids.add(int(proc.name))
        except OSError:
            continue
    for ns in our_namespaces():
        out = run("ip", "netns", "pids", ns, check=False).stdout
        pids.update(int(p) for p in out.split() if p.isdigit())
    return sorted(pids)


# ---------- machines ----------


def prepare_machine_root(machine: Machine, lower: Path) -> None:
    """An overlay on the shared root filesystem, with this machine's identity and keys."""
    upper, work, merged = machine.root / "upper", machine.root / "work", machine.root / "root"
    fresh = not upper.exists()
    for d in (upper, work, merged):
        d.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(merged):
        run(
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={lower},upperdir={upper},workdir={work}",
            str(merged),
        )
    if not fresh:
        return
    (merged / "etc/hostname").write_text(machine.name + "\n")
    # debootstrap leaves no /etc/hosts, and software (LiteLLM among it) resolves "localhost".
    (merged / "etc/hosts").write_text(
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{machine.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    )
    ssh_dir = merged / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(SSH_KEY.with_suffix(".pub").read_text())
    keys.chmod(0o600)
    run("ssh-keygen", "-A", "-f", str(merged))


def _spawn(machine: Machine, argv: list[str]) -> None:
    """Start the machine's process in a session of its own, its output appended to its log."""
    machine.log.parent.mkdir(parents=True, exist_ok=True)
    with open(machine.log, "ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    machine.pid = proc.pid


spawn = _spawn  # for the fleet's other processes (testbed/monitoring.py's pager)


def boot(machine: Machine) -> None:
    _spawn(
        machine,
        [
            "systemd-nspawn",
            "-D",
            str(machine.root / "root"),
            "-M",
            machine.netns,
            f"--hostname={machine.name}",
            "--boot",
            "--register=no",
            "--keep-unit",
            f"--network-namespace-path=/run/netns/{machine.netns}",
        ],
    )


def start_backend(machine: Machine) -> None:
    _spawn(
        machine,
        [
            "ip",
            "netns",
            "exec",
            machine.netns,
            sys.executable,
            str(FAKE_OLLAMA),
            "--host",
            machine.address,
            "--port",
            str(OLLAMA_PORT),
            "--name",
            machine.name,
            "--models",
            ",".join(machine.models),
            *knob_flags(machine.knobs),
        ],
    )


def knob_flags(knobs: dict) -> list[str]:
    """{"num_parallel": 2} -> ["--num-parallel", "2"] for fake_ollama.py."""
    return [arg for key, value in knobs.items() for arg in (f"--{key.replace('_', '-')}", str(value))]


def backend_knobs() -> dict[str, dict]:
    extra = json.loads(os.environ.get("HX_BACKEND_KNOBS") or "{}")
    unknown = set(extra) - set(BACKENDS)
    if unknown:
        raise FleetError(f"HX_BACKEND_KNOBS names unknown backends {sorted(unknown)}; use {sorted(BACKENDS)}")
    return {name: {**BACKEND_KNOBS.get(name, {}), **extra.get(name, {})} for name in BACKENDS}


def ssh_command(machine: Machine, command: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "ssh",
            "-i",
            str(SSH_KEY),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=2",
            "-o",
            "BatchMode=yes",
            f"root@{machine.address}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def system_state(machine: Machine) -> str:
    try:
        result = ssh_command(machine, "systemctl is-system-running", timeout=5)
    except subprocess.TimeoutExpired:
        return "unreachable"
    return result.stdout.strip() or "unreachable"


def backend_version(machine: Machine) -> str | None:
    try:
        url = f"http://{machine.address}:{OLLAMA_PORT}/api/version"
        with urllib.request.urlopen(url, timeout=1) as response:
            return json.loads(response.read())["version"]
    except (OSError, ValueError, KeyError):
        return None


def wait_ready(machine: Machine, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    state = "unknown"
    while time.monotonic() < deadline:
        if not pid_alive(machine.pid):
            raise FleetError(f"{machine.name} exited while starting; see {machine.log}")
        if machine.role == "backend":
            if backend_version(machine):
                return
        elif machine.role == "pager":
            from testbed.monitoring import pager_ready

            return pager_ready(machine, timeout)
        else:
            state = system_state(machine)
            if state == "running":
                return
            if state == "degraded":
                failed = ssh_command(machine, "systemctl --failed --no-legend").stdout.strip()
                raise FleetError(f"{machine.name} booted degraded; failed units:\n{failed}")
        time.sleep(0.3)
    raise FleetError(
        f"{machine.name} not ready after {timeout:.0f}s (last state: {state}); see {machine.log}"
    )
