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
import urllib.request

from testbed import rootfs
from testbed.fleet_layout import (  # noqa: F401 - callers use them as fleet.X
    BACKEND_KNOBS,
    BACKENDS,
    BRIDGE,
    FAKE_OLLAMA,
    FIRST_GATEWAY_OCTET,
    HOST_ADDRESS,
    LOADBALANCER,
    NET,
    OLLAMA_PORT,
    PREFIX,
    SSH_KEY,
    STATE_DIR,
    STATE_FILE,
    SUBNET,
    FleetError,
    Machine,
    find,
    gateway_name,
    load_machines,
    require_host,
    run,
    save_machines,
)
from testbed.machine_boot import (  # noqa: F401
    attach_namespace,
    backend_knobs,
    backend_version,
    boot,
    ensure_bridge,
    knob_flags,
    leftover_pids,
    our_namespaces,
    pid_alive,
    prepare_machine_root,
    spawn,
    ssh_command,
    start_backend,
    stop_pid,
    system_state,
    wait_ready,
)


def plan(gateways: int, loadbalancer: bool, cache: bool = False, monitoring: bool = False) -> list[Machine]:
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
    if monitoring:
        from testbed.monitoring import monitoring_machines

        machines += monitoring_machines()
    return machines


def up(
    gateways: int = 1, loadbalancer: bool = False, log=print, cache: bool = False, monitoring: bool = False
) -> list[Machine]:
    """Start a fresh fleet, after clearing whatever an earlier run left behind."""
    require_host()
    down(log=lambda *_: None)
    lower = rootfs.ensure_rootfs(log=log)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{PREFIX}-control", "-f", str(SSH_KEY))
    ensure_bridge()
    machines = plan(gateways, loadbalancer, cache, monitoring)
    try:
        for machine in machines:
            attach_namespace(machine)
            if machine.role == "backend":
                start_backend(machine)
            elif machine.role == "pager":
                _start_pager(machine)
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
    elif machine.role == "pager":
        _start_pager(machine)
    else:
        prepare_machine_root(machine, rootfs.ensure_rootfs())
        boot(machine)
    save_machines(machines)
    wait_ready(machine)


def _start_pager(machine: Machine) -> None:
    from testbed.monitoring import start_pager

    start_pager(machine)


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
        elif machine.role == "pager":
            health = "receiving"
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


def backend_admin(name: str, method: str, path: str, body: dict | None = None) -> dict:
    """A fake Ollama backend's own admin routes (`/_fault`, `/_stats`), which real Ollama lacks."""
    request = urllib.request.Request(
        f"http://{find(name).address}:{OLLAMA_PORT}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read() or b"{}")
