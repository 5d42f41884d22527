"""Step 8: the hardened systemd unit hx-litellm-gateway.service, running as the service user,
with the serving defaults the host's CPUs and memory call for (hxgw.serving)."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import systemd

from hxgw.serving import serving_for
from hxops import ops, paths, release
from hxops.facts import HostFacts
from hxops.plan import GatewayPlan


@deploy("tasks/unit.py")
def unit(plan: GatewayPlan, facts: HostFacts) -> OperationMeta:
    """Install the unit; return its operation (a change means the service must restart)."""
    settings = plan.settings
    unit_file = ops.template(
        name=f"Install {settings.unit_name}",
        src=paths.template("hx-litellm-gateway.service.j2"),
        dest=release.unit_file(settings),
        user="root",
        group="root",
        mode="644",
        snapshot=facts.snapshot,
        settings=settings,
        serving=serving_for(settings, facts.cpus, facts.memory_mb),
    )
    # Decided at plan time (not with _if), so --dry shows a reload only when one will happen.
    if unit_file.will_change:
        systemd.daemon_reload(name="Reload systemd for the changed unit")
    return unit_file
