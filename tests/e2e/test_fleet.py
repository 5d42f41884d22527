"""The local fleet itself: real machines, reachable by pyinfra, and sealed off from other networks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from testbed import fleet
from tests.e2e import helpers


def test_every_gateway_runs_systemd_as_pid_1(fleet_machines):
    gateways = [m for m in fleet_machines if m.role == "gateway"]
    assert gateways
    for machine in gateways:
        assert helpers.ssh(machine.name, "systemctl is-system-running").strip() == "running"
        assert helpers.ssh(machine.name, "cat /proc/1/comm").strip() == "systemd"


def test_backends_answer_in_their_own_namespaces(fleet_machines):
    # The fleet as it is now: a backend powered off and on since the session began has a new pid.
    backends = [m for m in fleet.load_machines() if m.role == "backend"]
    assert {m.name for m in backends} == {"llm-01", "llm-02", "orc"}
    for machine in backends:
        assert fleet.backend_version(machine), f"{machine.name} does not answer /api/version"
        netns = subprocess.run(["ip", "netns", "identify", str(machine.pid)], capture_output=True, text=True)
        # The pid is `ip netns exec`'s, which became the backend process itself.
        assert netns.stdout.strip() == machine.netns


def test_pyinfra_connects_and_second_run_changes_nothing(fleet_machines):
    first = helpers.pyinfra(deploy="tests/e2e/deploys/probe_directory.py", timeout=120)
    assert first.returncode == 0, first.output[-2000:]
    second = helpers.pyinfra(deploy="tests/e2e/deploys/probe_directory.py", timeout=120)
    assert second.returncode == 0, second.output[-2000:]
    for machine in (m for m in fleet_machines if m.role == "gateway"):
        assert second.unchanged(machine.name) == ["Probe directory"]
        assert second.changed(machine.name) == []


def test_gateway_has_no_route_to_production(fleet_machines):
    # `ip route get` asks the routing table only: no packet leaves, even if a route existed.
    result = fleet.ssh_command(fleet.find(fleet.gateway_name(0)), "ip route get 192.168.10.29")
    assert result.returncode != 0
    assert "unreachable" in result.stderr.lower()
    routes = helpers.ssh(fleet.gateway_name(0), "ip -4 route show default")
    assert routes.strip() == ""


def test_down_leaves_nothing_behind(fleet_machines):
    """A second fleet on its own net (so the shared one keeps running) goes up and down cleanly."""
    # Derived from this run's net, so suites running side by side on other nets never collide.
    net = str((fleet.NET + 100) % 256)
    env = {**os.environ, "HX_TESTBED_NET": net}
    repo = Path(__file__).resolve().parents[2]
    up = subprocess.run(
        [sys.executable, "-m", "testbed", "up"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert up.returncode == 0, up.stderr
    assert f"hxtb{net}-39" in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    down = subprocess.run(
        [sys.executable, "-m", "testbed", "down"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert down.returncode == 0, down.stderr
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"hxtb{net}-" not in namespaces
    assert subprocess.run(["ip", "link", "show", f"hxtb{net}"], capture_output=True).returncode != 0
    marker = f"/run/netns/hxtb{net}-".encode()
    leftovers = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes():
                    leftovers.append(proc.name)
            except OSError:
                pass
    assert leftovers == []
    assert not Path(f"/var/lib/hx-testbed/net{net}").exists()


def test_a_removed_machine_leaves_no_trace_and_its_name_is_reused(fleet_machines):
    added = fleet.add_gateways(1)[0]
    assert helpers.ssh(added.name, "systemctl is-system-running").strip() == "running"
    fleet.remove_machine(added.name)
    assert added.name not in {m.name for m in fleet.load_machines()}
    assert added.netns not in fleet.our_namespaces()
    assert not added.root.exists()
    again = fleet.add_gateways(1)[0]
    try:
        assert (again.name, again.address) == (added.name, added.address)
    finally:
        fleet.remove_machine(again.name)
