"""Step 10: enable the service; (re)start it only when something it runs on changed; wait ready.

The restart is decided at plan time from the operations that feed the service (venv, config,
key, unit), so a no-op run restarts nothing and --dry shows a restart exactly when one follows.
On failure start.sh prints the journal's tail and the host fails.
"""

import posixpath

from pyinfra import host
from pyinfra.operations import server, systemd

from hxops import plan

host_plan = plan.for_host(host)
settings = host_plan.settings
start = posixpath.join(settings.scripts_dir, "start.sh")

systemd.service(
    name=f"Enable {settings.unit_name} at boot",
    service=settings.unit_name,
    running=None,
    enabled=True,
)
if host_plan.restart_needed():
    server.shell(name="Restart the gateway and wait for readiness", commands=[f"{start} --restart"])
elif host_plan.facts.get("service_state") != "active":
    server.shell(name="Start the gateway and wait for readiness", commands=[start])
