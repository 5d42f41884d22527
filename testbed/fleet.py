"""A local fleet of real hosts on this one VM, with no route anywhere else.

Gateways (and the optional load balancer) are Debian machines booted with systemd as PID 1
under systemd-nspawn, each in its own network namespace on a private bridge. Ollama backends are
fake_ollama.py processes, each in a namespace of its own. The namespaces have no default route:
nothing inside can reach any network but the fleet's 198.18.N.0/24.

Everything the fleet creates carries the prefix `hxtb{N}` (bridge, namespaces, veths) or lives
under STATE_DIR, so `down` (and the clean-up that starts every `up`) can find what an earlier
run left even when its state file is gone, and touches nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from testbed import rootfs

NET = int(os.environ.get("HX_TESTBED_NET", "0"))
if not 0 <= NET <= 255:
    raise SystemExit(f"HX_TESTBED_NET={NET} is out of range: use 0..255")
PREFIX = f"hxtb{NET}"
BRIDGE = PREFIX
SUBNET = f"198.18.{NET}"
HOST_ADDRESS = f"{SUBNET}.1"
STATE_DIR = Path(os.environ.get("HX_TESTBED_STATE", f"/var/lib/hx-testbed/net{NET}"))
STATE_FILE = STATE_DIR / "state.json"
SSH_KEY = STATE_DIR / "id_ed25519"
OLLAMA_PORT = 11434
FAKE_OLLAMA = Path(__file__).with_name("fake_ollama.py")

# The production fleet's hosts, mirrored by last octet (192.168.10.X -> 198.18.N.X).
# Each model with its capabilities beside completion, per Ollama's model library (fake_ollama.py
# answers 400 "... does not support tools" for the others, as Ollama does).
BACKENDS = {
    "llm-01": (
        29,
        ["llama3.2:3b=tools", "qwen3:1.7b=tools+thinking", "mistral-small3.2:latest=tools+vision"],
    ),
    "llm-02": (28, ["phi3:latest", "gemma2:2b", "cogito:32b=tools", "deepcoder:14b", "dolphin3:8b"]),
    "orc": (31, ["mxbai-embed-large", "nomic-embed-text", "all-minilm"]),
}
# Per-backend Ollama settings as fake_ollama.py flags without the dashes (version, num_parallel,
# max_queue, keep_alive_s, load_ms, ...). Empty means Ollama's defaults (0.12.10 behaviour,
# OLLAMA_NUM_PARALLEL 1, OLLAMA_MAX_QUEUE 512, keep_alive 5m). HX_BACKEND_KNOBS (JSON, e.g.
# '{"llm-01": {"version": "0.9.0"}}') overrides them for one `up`; POST /_fault changes the
# run-time ones on a running backend.
BACKEND_KNOBS: dict[str, dict] = {name: {} for name in BACKENDS}
FIRST_GATEWAY_OCTET = 39
LOADBALANCER = ("hx-lb", 10)


def gateway_name(index: int) -> str:
    return "hx-api-gateway-server" if index == 0 else f"hx-api-gateway-{index + 1:02d}"


@dataclass
class Machine:
    name: str
    role: str  # gateway | loadbalancer | backend
    octet: int
    pid: int | None = None
    models: list[str] = field(default_factory=list)
    knobs: dict = field(default_factory=dict)  # backends: fake_ollama.py settings

    @property
    def address(self) -> str:
        return f"{SUBNET}.{self.octet}"

    @property
    def netns(self) -> str:
        return f"{PREFIX}-{self.octet}"

    @property
    def root(self) -> Path:
        return STATE_DIR / "machines" / self.name

    @property
    def log(self) -> Path:
        return STATE_DIR / "logs" / f"{self.name}.log"


class FleetError(RuntimeError):
    pass


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise FleetError(f"{' '.join(cmd)} failed (exit {result.returncode}): {result.stderr.strip()}")
    return result


def require_host() -> None:
    if os.geteuid() != 0:
        raise FleetError("the local fleet needs root (network namespaces, nspawn): run as root")
    missing = [t for t in ("debootstrap", "systemd-nspawn", "ip", "ssh", "ssh-keygen") if not shutil.which(t)]
    if missing:
        raise FleetError(
            f"missing tools: {', '.join(missing)}; install them with `make deps` "
            "(apt-get install debootstrap systemd-container iproute2 openssh-client)"
        )


# ---------- state ----------


def load_machines() -> list[Machine]:
    if not STATE_FILE.exists():
        return []
    data = json.loads(STATE_FILE.read_text())
    return [Machine(**m) for m in data["machines"]]


def save_machines(machines: list[Machine]) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"net": NET, "ssh_key": str(SSH_KEY), "machines": [asdict(m) for m in machines]}
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(STATE_FILE)


def find(name: str) -> Machine:
    for machine in load_machines():
        if machine.name == name:
            return machine
    raise FleetError(f"no machine named {name!r} in the fleet; see `python -m testbed status`")


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


def boot(machine: Machine) -> None:
    machine.log.parent.mkdir(parents=True, exist_ok=True)
    with open(machine.log, "ab") as log:
        proc = subprocess.Popen(
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
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    machine.pid = proc.pid


def start_backend(machine: Machine) -> None:
    machine.log.parent.mkdir(parents=True, exist_ok=True)
    with open(machine.log, "ab") as log:
        proc = subprocess.Popen(
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
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    machine.pid = proc.pid


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


# ---------- the fleet ----------


def plan(gateways: int, loadbalancer: bool, cache: bool = False) -> list[Machine]:
    if not 1 <= gateways <= 20:
        raise FleetError(f"--gateways {gateways} is out of range: use 1..20")
    knobs = backend_knobs()
    machines = [
        Machine(name, "backend", octet, models=list(models), knobs=knobs[name])
        for name, (octet, models) in BACKENDS.items()
    ]
    machines += [Machine(gateway_name(i), "gateway", FIRST_GATEWAY_OCTET + i) for i in range(gateways)]
    if loadbalancer:
        machines.append(Machine(LOADBALANCER[0], "loadbalancer", LOADBALANCER[1]))
    if cache:
        from testbed.cache import cache_machine

        machines.append(cache_machine())
    return machines


def up(gateways: int = 1, loadbalancer: bool = False, log=print, cache: bool = False) -> list[Machine]:
    """Start a fresh fleet, after clearing whatever an earlier run left behind."""
    require_host()
    down(log=lambda *_: None)
    lower = rootfs.ensure_rootfs(log=log)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{PREFIX}-control", "-f", str(SSH_KEY))
    ensure_bridge()
    machines = plan(gateways, loadbalancer, cache)
    try:
        for machine in machines:
            attach_namespace(machine)
            if machine.role == "backend":
                start_backend(machine)
            else:
                prepare_machine_root(machine, lower)
                if machine.role == "cache":  # Redis baked in before the first boot (testbed/cache.py)
                    from testbed.cache import bake_redis

                    bake_redis(machine)
                boot(machine)
            save_machines(machines)
        for machine in machines:
            wait_ready(machine)
    except Exception:
        save_machines(machines)
        raise
    log(f"fleet up: {len(machines)} machines on {SUBNET}.0/24 (bridge {BRIDGE})")
    return machines


def add_gateways(count: int) -> list[Machine]:
    """Boot `count` more gateways on a running fleet (for tests that need extra machines)."""
    require_host()
    machines = load_machines()
    if not machines:
        raise FleetError("the fleet is not up: run `make testbed-up` first")
    taken = {m.octet for m in machines}
    # The lowest free indices, so a gateway removed earlier leaves no hole and no name clash.
    free = [i for i in range(40) if FIRST_GATEWAY_OCTET + i not in taken][:count]
    new = [Machine(gateway_name(i), "gateway", FIRST_GATEWAY_OCTET + i) for i in free]
    lower = rootfs.ensure_rootfs()
    for machine in new:
        attach_namespace(machine)
        prepare_machine_root(machine, lower)
        boot(machine)
        machines.append(machine)
        save_machines(machines)
    for machine in new:
        wait_ready(machine)
    return new


def add_loadbalancer() -> Machine:
    """Boot the load balancer machine hx-lb (.10) on a running fleet, unless it is there already."""
    require_host()
    machines = load_machines()
    if not machines:
        raise FleetError("the fleet is not up: run `make testbed-up` first")
    existing = next((m for m in machines if m.role == "loadbalancer"), None)
    if existing:
        if not pid_alive(existing.pid):
            power_on(existing.name)
        return find(existing.name)
    machine = Machine(LOADBALANCER[0], "loadbalancer", LOADBALANCER[1])
    attach_namespace(machine)
    prepare_machine_root(machine, rootfs.ensure_rootfs())
    boot(machine)
    machines.append(machine)
    save_machines(machines)
    wait_ready(machine)
    return machine


def _named(machines: list[Machine], name: str) -> Machine:
    """The machine called `name` in a loaded list (which the caller then saves back)."""
    machine = next((m for m in machines if m.name == name), None)
    if machine is None:
        raise FleetError(f"no machine named {name!r}")
    return machine


def remove_machine(name: str) -> None:
    """Take a machine out of the fleet for good: stopped, unmounted, its namespace and disk gone,
    and no longer in the inventory (so later whole-fleet runs do not trip over a dead host)."""
    machines = load_machines()
    machine = _named(machines, name)
    if machine.pid:
        stop_pid(machine.pid)
    merged = machine.root / "root"
    if os.path.ismount(merged):
        run("umount", "-l", str(merged), check=False)
    run("ip", "netns", "del", machine.netns, check=False)
    shutil.rmtree(machine.root, ignore_errors=True)
    save_machines([m for m in machines if m.name != name])


def power_off(name: str) -> None:
    """Stop a machine (or a backend process) the way a power cut would leave it: unreachable."""
    machines = load_machines()
    machine = _named(machines, name)
    if machine.pid:
        stop_pid(machine.pid)
    machine.pid = None
    save_machines(machines)


def power_on(name: str) -> None:
    """Boot a stopped machine again with its disk as it was (or restart a backend process)."""
    machines = load_machines()
    machine = _named(machines, name)
    if pid_alive(machine.pid):
        return
    if machine.role == "backend":
        start_backend(machine)
    else:
        prepare_machine_root(machine, rootfs.ensure_rootfs())
        boot(machine)
    save_machines(machines)
    wait_ready(machine)


def down(log=print) -> None:
    """Stop every process, unmount every overlay, delete namespaces and the bridge."""
    for machine in load_machines():
        if machine.pid:
            stop_pid(machine.pid)
    for pid in leftover_pids():
        stop_pid(pid, timeout=5)
    machines_dir = STATE_DIR / "machines"
    if machines_dir.exists():
        for merged in machines_dir.glob("*/root"):
            if os.path.ismount(merged):
                run("umount", "-l", str(merged), check=False)
    for ns in our_namespaces():
        run("ip", "netns", "del", ns, check=False)
    if run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        run("ip", "link", "del", BRIDGE, check=False)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    log(f"fleet down: nothing of {PREFIX} left")


def status() -> list[dict]:
    rows = []
    for machine in load_machines():
        if not pid_alive(machine.pid):
            health = "stopped"
        elif machine.role == "backend":
            version = backend_version(machine)
            health = f"ollama {version}" if version else "not answering"
        else:
            health = system_state(machine)
        rows.append(
            {
                "name": machine.name,
                "role": machine.role,
                "address": machine.address,
                "pid": machine.pid,
                "health": health,
            }
        )
    return rows
