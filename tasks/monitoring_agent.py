"""A gateway's part of the monitoring (only with a `monitoring` group; without one a left-over
metrics.env is removed and nothing else is done):

- metrics.env: the metrics token (hxops.monitoring_link) the gateway opens /metrics with, and only
  /metrics (templates/hx_auth.py); a restart trigger like the master key's file (tasks/config.py);
- node exporter (tasks/exporters.py), and hx-backend-probe.service: the backends' health as this
  gateway sees it, for node exporter's textfile collector (templates/hx-backend-probe.py).
"""

from __future__ import annotations

import ipaddress
import json
import posixpath
from io import StringIO
from urllib.parse import urlsplit

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import File
from pyinfra.operations import files, systemd

from hxops import ops, paths
from hxops.facts import Snapshot
from hxops.monitoring_link import TEXTFILE_DIR, token_env_content
from hxops.plan import GatewayPlan
from hxops.security import secret_file
from tasks.exporters import NODE_EXPORTER, drop_in, node_exporter

PROBE_UNIT = "hx-backend-probe.service"
PROBE_UNIT_FILE = f"/etc/systemd/system/{PROBE_UNIT}"
PROBE_DIR = "/etc/hx-monitoring"
PROBE_SCRIPT = f"{PROBE_DIR}/hx-backend-probe.py"
PROBE_CONFIG = f"{PROBE_DIR}/hx-backend-probe.json"


def metrics_env_file(plan: GatewayPlan) -> str:
    return posixpath.join(plan.settings.config_dir, "metrics.env")


def metrics_env(plan: GatewayPlan, snapshot: Snapshot) -> list[OperationMeta]:
    """The metrics.env operations (a change means the service must restart)."""
    path, group = metrics_env_file(plan), plan.settings.service_user
    if plan.monitoring is None or plan.metrics_token is None:
        entry = ops.snapshot_of(snapshot, path)
        if entry is None or entry.get("type") is not None:  # there, or the snapshot cannot tell
            files.file(name=f"Remove {path} (no `monitoring` group)", path=path, present=False)
        return []
    token = plan.metrics_token
    written = secret_file(
        name=f"Install the metrics token in {path} (value not shown)",
        path=path,
        group=group,
        content_source=lambda: token_env_content(token),
        what="the metrics token",
    )
    ops.file(
        name=f"{path} is root:group 640", path=path, user="root", group=group, mode="640", snapshot=snapshot
    )
    return [written]


def probe_config(plan: GatewayPlan) -> dict:
    catalogue = plan.catalogue
    members = [
        {"model_group": group.name, "backend": model.backend, "model": model.litellm_model.split("/", 1)[1]}
        for group in catalogue.groups
        for model in (catalogue.model(name) for name in group.members)
    ]
    return {
        "interval_s": plan.monitoring.settings.backend_probe_interval_s,
        "venv_link": plan.settings.venv_link,
        "backends": [{"name": b.name, "url": b.url} for b in catalogue.backends],
        "members": members,
    }


def backend_addresses(plan: GatewayPlan) -> str:
    """The backends' IPv4 addresses for the probe's IPAddressAllow=, or '' when one is a name
    (then the probe may reach any address: a name resolves only at run time)."""
    addresses = []
    for backend in plan.catalogue.backends:
        try:
            addresses.append(str(ipaddress.IPv4Address(urlsplit(backend.url).hostname)))
        except ValueError:
            return ""
    return " ".join(sorted(set(addresses)))


@deploy("tasks/monitoring_agent.py")
def monitoring_agent(plan: GatewayPlan) -> None:
    if plan.monitoring is None:
        _leave_monitoring()
        return
    node_exporter(plan.monitoring)
    files.directory(name=PROBE_DIR, path=PROBE_DIR, user="root", group="root", mode="755")
    changes = [
        files.put(
            name=f"Install {PROBE_SCRIPT}",
            src=paths.template("hx-backend-probe.py"),
            dest=PROBE_SCRIPT,
            user="root",
            group="root",
            mode="755",
        ),
        files.put(
            name=f"Write {PROBE_CONFIG} (the backends and model groups to probe)",
            src=StringIO(json.dumps(probe_config(plan), indent=2, sort_keys=True) + "\n"),
            dest=PROBE_CONFIG,
            user="root",
            group="root",
            mode="644",
        ),
    ]
    unit = files.template(
        name=f"Render {PROBE_UNIT}",
        src=paths.template("hx-backend-probe.service.j2"),
        dest=PROBE_UNIT_FILE,
        user="root",
        group="root",
        mode="644",
        script=PROBE_SCRIPT,
        config=PROBE_CONFIG,
        textfile_dir=TEXTFILE_DIR,
        backends=backend_addresses(plan),
    )
    if unit.will_change:
        systemd.daemon_reload(name=f"Reload systemd for {PROBE_UNIT}")
    restart = unit.will_change or any(op.will_change for op in changes)
    systemd.service(
        name=f"{PROBE_UNIT} enabled and running" + (", restarted for the change" if restart else ""),
        service=PROBE_UNIT,
        running=True,
        enabled=True,
        restarted=restart,
    )


def _leave_monitoring() -> None:
    """Out of the `monitoring` group (or never in it): no probe, no exporter left running. One
    fact; nothing at all when the probe's unit was never installed."""
    if not host.get_fact(File, path=PROBE_UNIT_FILE):
        return
    for unit in (PROBE_UNIT, f"{NODE_EXPORTER}.service"):
        systemd.service(
            name=f"{unit} stopped and disabled (no `monitoring` group)",
            service=unit,
            running=False,
            enabled=False,
        )
    files.file(name=f"Remove {PROBE_UNIT_FILE}", path=PROBE_UNIT_FILE, present=False)
    files.file(name=f"Remove {drop_in(NODE_EXPORTER)}", path=drop_in(NODE_EXPORTER), present=False)
    systemd.daemon_reload(name="Reload systemd for the removed units")
