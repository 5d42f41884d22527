"""The fleet's optional monitoring pair (`python -m testbed up --monitoring`): `hx-mon`, the host of
the inventory's `monitoring` group where the deploy runs Prometheus and Alertmanager, and `hx-pager`,
the webhook receiver Alertmanager notifies (testbed/webhook_receiver.py, a process in a namespace of
its own, like the fake backends).

Prometheus, Alertmanager and the exporters are in the root filesystem (testbed/rootfs.py), disabled:
the deploy configures and starts each only where it belongs (tasks/monitoring.py, tasks/exporters.py).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path

from testbed import fleet, rootfs

MONITOR = ("hx-mon", 14)
PAGER = ("hx-pager", 15)
PAGER_PORT = 9095
RECEIVER = Path(__file__).with_name("webhook_receiver.py")


def monitoring_machines() -> list[fleet.Machine]:
    return [fleet.Machine(MONITOR[0], "monitoring", MONITOR[1]), fleet.Machine(PAGER[0], "pager", PAGER[1])]


def pager_url(machine: fleet.Machine | None = None) -> str:
    machine = machine or fleet.find(PAGER[0])
    return f"http://{machine.address}:{PAGER_PORT}/hx-alerts"


def start_pager(machine: fleet.Machine) -> None:
    argv = [sys.executable, str(RECEIVER), "--host", machine.address, "--port", str(PAGER_PORT)]
    fleet.spawn(machine, ["ip", "netns", "exec", machine.netns, *argv, "--log", str(machine.log) + ".jsonl"])


def received(machine: fleet.Machine | None = None) -> list[dict]:
    """Every notification hx-pager got so far, oldest first."""
    machine = machine or fleet.find(PAGER[0])
    url = f"http://{machine.address}:{PAGER_PORT}/_received"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def pager_ready(machine: fleet.Machine, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            received(machine)
            return
        except OSError:
            time.sleep(0.2)
    raise fleet.FleetError(f"{machine.name} does not answer on :{PAGER_PORT}; see {machine.log}")


def add_monitoring() -> list[fleet.Machine]:
    """Boot hx-mon and hx-pager on a running fleet, unless they are there already."""
    fleet.require_host()
    machines = fleet.load_machines()
    if not machines:
        raise fleet.FleetError("the fleet is not up: run `make testbed-up` first")
    for wanted in monitoring_machines():
        existing = next((m for m in machines if m.name == wanted.name), None)
        if existing:
            if not fleet.pid_alive(existing.pid):
                fleet.power_on(existing.name)
            continue
        fleet.attach_namespace(wanted)
        if wanted.role == "pager":
            start_pager(wanted)
        else:
            fleet.prepare_machine_root(wanted, rootfs.ensure_rootfs())
            fleet.boot(wanted)
        machines.append(wanted)
        fleet.save_machines(machines)
        fleet.wait_ready(wanted)
    return [fleet.find(m.name) for m in monitoring_machines()]
