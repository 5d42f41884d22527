"""Step 10: enable the service; (re)start it only when something it runs on changed; wait ready.

The restart is decided at plan time from the operations that feed the service (venv, config,
key, unit), so a no-op run restarts nothing and --dry shows a restart exactly when one follows.
A service older than the files it runs on (a deploy interrupted between writing them and the
restart) is restarted too, so the next run converges.

When the service does not become ready, start.sh prints the journal's tail, rollback.sh restores
the last known good release (hxops.release) and waits until it serves again, and the host fails
with both outputs. On a first deploy there is nothing to roll back to: the host just fails.
"""

import posixpath

from pyinfra import host, logger
from pyinfra.operations import server, systemd

from hxops import plan, release

host_plan = plan.for_host(host)
settings = host_plan.settings
start = posixpath.join(settings.scripts_dir, "start.sh")
rollback = release.rollback_script(settings)
facts = release.gather(host, settings)


def start_or_roll_back(command: str, cause: str) -> str:
    """Run start.sh; if it fails, roll back (when there is a last known good release) and fail."""
    return (
        f"{command} || {{ echo 'the new release did not become ready: rolling back' >&2; "
        f"{rollback} '{cause}'; exit 1; }}"
    )


systemd.service(
    name=f"Enable {settings.unit_name} at boot",
    service=settings.unit_name,
    running=None,
    enabled=True,
)
stale = release.stale_reason(facts)
if stale and not host_plan.restart_needed():
    logger.warning(f"{host.name}: the running gateway is stale: {stale}; restarting it")
if host_plan.restart_needed() or stale:
    release.mark_restarting(host)
    server.shell(
        name="Restart the gateway and wait for readiness",
        commands=[
            start_or_roll_back(f"{start} --restart", "the gateway did not become ready after the restart")
        ],
    )
elif host_plan.facts.get("service_state") != "active":
    release.mark_restarting(host)
    server.shell(
        name="Start the gateway and wait for readiness",
        commands=[start_or_roll_back(start, "the gateway did not become ready at start")],
    )
