"""Step 8: the hardened systemd unit hx-litellm-gateway.service, running as the service user."""

from pyinfra import host
from pyinfra.operations import systemd

from hxops import ops, paths, plan

host_plan = plan.for_host(host)
settings = host_plan.settings

unit = ops.template(
    name=f"Install {settings.unit_name}",
    src=paths.template("hx-litellm-gateway.service.j2"),
    dest=f"/etc/systemd/system/{settings.unit_name}",
    user="root",
    group="root",
    mode="644",
    settings=settings,
)
host_plan.restart_triggers.append(unit)
# Decided at plan time (not with _if), so --dry shows a reload only when one will happen.
if unit.will_change:
    systemd.daemon_reload(name="Reload systemd for the changed unit")
