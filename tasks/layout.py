"""Step 4: the service's system user and group, the directory layout with production modes, and
the permission model enforced on everything under base_dir (the seed's enhancement #005).

Drift inside the tree (a `chown -R`, a `chmod -R o+w`, a file dropped in by hand) is found by ONE
find (hxops.security.LayoutDrift) and repaired only when there is some, so a clean re-run stays a
no-op. The repair does not restart the service: ownership and modes do not change what it runs,
and the process has already read its config and key. A content change restarts it (tasks/config.py).
"""

from __future__ import annotations

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.operations import server

from hxgw import accounts
from hxgw.layout import directories, drift_repair_command
from hxops import ops
from hxops.facts import Snapshot
from hxops.plan import GatewayPlan
from hxops.security import LayoutDrift, drift_by_tree


@deploy("tasks/layout.py")
def layout(plan: GatewayPlan, snapshot: Snapshot) -> None:
    settings = plan.settings
    user = settings.service_user
    ops.group(name=f"System group {user}", group=user, system=True, snapshot=snapshot)
    ops.user(
        name=f"System user {user} (no shell, no home)",
        user=user,
        group=user,
        system=True,
        shell=accounts.SHELL,
        home=accounts.HOME,
        comment=accounts.COMMENT,
        create_home=False,
        ensure_home=False,
        snapshot=snapshot,
    )
    for entry in directories(settings):
        ops.directory(
            name=f"Directory {entry.path} ({entry.user}:{entry.group} {entry.mode})",
            path=entry.path,
            user=entry.user,
            group=entry.group,
            mode=entry.mode,
            snapshot=snapshot,
        )

    drift = drift_by_tree(host.get_fact(LayoutDrift, settings=settings), settings)
    if drift:
        total = sum(entry["count"] for entry in drift.values())
        for tree, entry in drift.items():
            shown = ", ".join(entry["examples"][:5])
            logger.warning(
                f"{host.name}: {entry['count']} path(s) under {tree} drifted from the model: {shown}"
            )
        server.shell(
            name=f"Repair owner/mode drift of {total} path(s) under {settings.base_dir}",
            commands=[drift_repair_command(settings)],
        )
