"""Step 10: enable the service; (re)start it only when something it runs on changed; wait ready.

The restart is decided at plan time from the operations that feed the service (venv, config,
key, unit: `restart_triggers`), so a no-op run restarts nothing and --dry shows a restart exactly
when one follows. A service older than the files it runs on (a deploy interrupted between writing
them and the restart) is restarted too, so the next run converges.

When the service does not become ready, start.sh prints the journal's tail, rollback.sh restores
the last known good release (hxops.release) and waits until it serves again, and the host fails
with both outputs (hxops.start_op). On a first deploy there is nothing to roll back to: the host
just fails.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.operations import systemd

from hxops import deploy_record, outcome, release
from hxops.deploy_lock import under_work_lock
from hxops.facts import HostFacts
from hxops.plan import GatewayPlan
from hxops.start_op import start_gateway


@dataclass(frozen=True)
class ServiceOutcome:
    """Does this run (re)start the gateway? Then a failed validation rolls back (tasks/validate.py)
    and the release is kept afterwards (tasks/release.py). `release_state`: hxops.release.ReleaseState."""

    restarting: bool
    release_state: dict = field(default_factory=dict)


@deploy("tasks/service.py")
def service(plan: GatewayPlan, facts: HostFacts, restart_triggers: list) -> ServiceOutcome:
    """`restart_triggers`: operations (and the venv switch, tasks/venv.py) whose change restarts."""
    settings = plan.settings
    start = posixpath.join(settings.scripts_dir, "start.sh")
    release_state = release.read_state(host, settings)
    record = deploy_record.Record.of(plan)  # a rollback appends "rolled back" to it

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
    for trigger in restart_triggers:
        if hasattr(trigger, "apply"):
            trigger.apply()  # the venv link, switched only now: right before the (re)start
    if restart_needed or stale:
        start_gateway(
            name="Restart the gateway and wait for readiness",
            command=under_work_lock(f"{start} --restart"),
            rollback_script=release.rollback_script(settings),
            record=record,
            cause="the gateway did not become ready after the restart",
        )
    elif facts.service_state != "active":
        start_gateway(
            name="Start the gateway and wait for readiness",
            command=under_work_lock(start),
            rollback_script=release.rollback_script(settings),
            record=record,
            cause="the gateway did not become ready at start",
        )
    restarting = bool(restart_needed or stale or facts.service_state != "active")
    outcome.record(host, restart=restarting)
    return ServiceOutcome(restarting, release_state)
