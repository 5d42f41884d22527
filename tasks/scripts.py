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
    root_only = {  # script -> what its template needs besides the settings
        "rollback.sh": {
            "last_good": release.last_good_dir(settings),
            "unit_file": release.unit_file(settings),
            "auth_file": auth_module_file(settings),
            "start": posixpath.join(settings.scripts_dir, "start.sh"),
        },
        "record.sh": {"log": deploy_record.record_file(settings), "unit_file": release.unit_file(settings)},
    }
    scripts = [(name, "755", {}) for name in ("start.sh", "stop.sh", "status.sh")]
    scripts += [(name, "700", data) for name, data in root_only.items()]
    for script, mode, data in scripts:
        ops.template(
            name=f"Service script {script}" + (" (root only)" if mode == "700" else ""),
            src=paths.template(f"{script}.j2"),
            dest=posixpath.join(settings.scripts_dir, script),
            user="root",
            group="root",
            mode=mode,
            snapshot=snapshot,
            settings=settings,
            **data,
        )
