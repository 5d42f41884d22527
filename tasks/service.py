"""Step 10: enable the service; (re)start it only when something it runs on changed; wait ready.

The restart is decided at plan time from the operations that feed the service (venv, config,
key, unit: `restart_triggers`), so a no-op run restarts nothing and --dry shows a restart exactly
when one follows. A service older than the files it runs on (a deploy interrupted between writing
them and the restart) is restarted too, so the next run converges.

When the service does not become ready, start.sh prints the journal's tail, rollback.sh restores
the last known good release (hxops.release) and waits until it serves again, and the host fails
with both outputs. On a first deploy there is nothing to roll back to: the host just fails.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import server, systemd

from hxops import release
from hxops.facts import HostFacts
from hxops.plan import GatewayPlan


@dataclass(frozen=True)
class ServiceOutcome:
    """Does this run (re)start the gateway? Then a failed validation rolls back (tasks/validate.py)
    and the release is kept afterwards (tasks/release.py). `release_state`: hxops.release.ReleaseState."""

    restarting: bool
    release_state: dict = field(default_factory=dict)


def start_or_roll_back(settings, command: str, cause: str) -> str:
    """Run start.sh; if it fails, roll back (when there is a last known good release) and fail."""
    return (
        f"{command} || {{ echo 'the new release did not become ready: rolling back' >&2; "
        f"{release.rollback_script(settings)} '{cause}'; exit 1; }}"
    )


@deploy("tasks/service.py")
def service(plan: GatewayPlan, facts: HostFacts, restart_triggers: list[OperationMeta]) -> ServiceOutcome:
    settings = plan.settings
    start = posixpath.join(settings.scripts_dir, "start.sh")
    release_state = release.read_state(host, settings)

    systemd.service(
        name=f"Enable {settings.unit_name} at boot",
        service=settings.unit_name,
        running=None,
        enabled=True,
    )
    restart_needed = any(op.will_change for op in restart_triggers)
    stale = release.stale_reason(release_state)
    if stale and not restart_needed:
        logger.warning(f"{host.name}: the running gateway is stale: {stale}; restarting it")
    if restart_needed or stale:
        server.shell(
            name="Restart the gateway and wait for readiness",
            commands=[
                start_or_roll_back(
                    settings, f"{start} --restart", "the gateway did not become ready after the restart"
                )
            ],
        )
        return ServiceOutcome(True, release_state)
    if facts.service_state != "active":
        server.shell(
            name="Start the gateway and wait for readiness",
            commands=[start_or_roll_back(settings, start, "the gateway did not become ready at start")],
        )
        return ServiceOutcome(True, release_state)
    return ServiceOutcome(False, release_state)
