"""Step 12: keep the release that now runs, restarted and validated, as the last known good one.

It runs only when the host got here without an error (the restart came up, the validation
passed), and only when there is something new to keep: a restart in this run, or a live release
that differs from the saved one (hxops.release.ReleaseState, read at plan time by the service
step). The same change appends an "updated" entry to the deployment record (hxops.deploy_record).
A no-op re-run changes nothing. base_dir/releases is root's alone (700); the copies in it are
root 600. A key from MASTER_KEY that got here is kept on the control machine as the fleet's
(hxops.fleet_key).
"""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import server

from hxops import deploy_record, fleet_key, ops, release
from hxops.deploy_lock import under_work_lock
from hxops.facts import Snapshot
from hxops.plan import GatewayPlan
from tasks.service import ServiceOutcome


@deploy("tasks/release.py")
def keep_release(plan: GatewayPlan, snapshot: Snapshot, service: ServiceOutcome) -> None:
    settings = plan.settings
    ops.directory(
        name=f"Directory {release.releases_dir(settings)} (root:root 700)",
        path=release.releases_dir(settings),
        user="root",
        group="root",
        mode="700",
        snapshot=snapshot,
    )
    if service.restarting or not release.last_good_matches(service.release_state):
        # ONE remote command, under the work lock: a run killed between the two would leave the
        # release saved but unrecorded, and the re-run (nothing to save) would never record it.
        save = f"{release.rollback_script(settings)} --save"
        record = deploy_record.Record.of(plan).command(deploy_record.UPDATED)
        server.shell(
            name="Keep this release as the last known good (the rollback target) and append it to "
            f"the deployment record ({deploy_record.record_file(settings)})",
            commands=[under_work_lock(f"{save} && {record}")],
        )
    if plan.master_key_given:
        fleet_key.keep_given_key(
            name="The control machine keeps MASTER_KEY as the fleet's key (value not shown)",
            fleet_name=settings.fleet_name,
            key_source=lambda: plan.master_key,
        )
