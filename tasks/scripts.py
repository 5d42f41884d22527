"""Step 9: the operators' service scripts start.sh, stop.sh and status.sh (the seed's HX standard),
rollback.sh (root only), which restores the last known good release (hxops.release), and record.sh
(root only), which appends to the deployment record (hxops.deploy_record)."""

from __future__ import annotations

import posixpath

from pyinfra.api import deploy

from hxgw.layout import auth_module_file
from hxops import deploy_record, ops, paths, release
from hxops.facts import Snapshot
from hxops.plan import GatewayPlan


@deploy("tasks/scripts.py")
def scripts(plan: GatewayPlan, snapshot: Snapshot) -> None:
    settings = plan.settings
    for script in ("start.sh", "stop.sh", "status.sh"):
        ops.template(
            name=f"Service script {script}",
            src=paths.template(f"{script}.j2"),
            dest=posixpath.join(settings.scripts_dir, script),
            user="root",
            group="root",
            mode="755",
            snapshot=snapshot,
            settings=settings,
        )
    ops.template(
        name="Service script rollback.sh (root only)",
        src=paths.template("rollback.sh.j2"),
        dest=release.rollback_script(settings),
        user="root",
        group="root",
        mode="700",
        snapshot=snapshot,
        settings=settings,
        last_good=release.last_good_dir(settings),
        unit_file=release.unit_file(settings),
        auth_file=auth_module_file(settings),
        start=posixpath.join(settings.scripts_dir, "start.sh"),
    )
    ops.template(
        name="Service script record.sh (root only): appends to the deployment record",
        src=paths.template("record.sh.j2"),
        dest=deploy_record.record_script(settings),
        user="root",
        group="root",
        mode="700",
        snapshot=snapshot,
        settings=settings,
        log=deploy_record.record_file(settings),
        unit_file=release.unit_file(settings),
    )
