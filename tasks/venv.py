"""Step 5: the venv with the pinned litellm[proxy], from the hash-checked lock in the repo.

The control machine builds the wheelhouse for the host's Python and platform (hosts need no
internet) and ships it only when the host lacks this release; `install_source: index` installs
from the host's own package index instead. uv installs; pip is the fallback.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, server

from hxgw.install import effective_installer, install_script
from hxops import ops, wheelhouse
from hxops.deploy_lock import under_work_lock
from hxops.facts import HostFacts
from hxops.plan import GatewayPlan
from tasks.preflight import installer_of


@dataclass
class VenvSwitch:
    """The `gateway/venv` link to point at this run's release: switched right before the restart
    (tasks/service.py calls `apply`), never earlier, so the running gateway keeps importing from
    its own venv until it is restarted (LiteLLM imports some modules lazily, while serving).
    `will_change` (plan time, from the snapshot): the switch is a reason to restart."""

    path: str
    target: str
    snapshot: object
    will_change: bool
    _op: OperationMeta | None = field(default=None, repr=False)

    def apply(self) -> OperationMeta:
        """The link operation (atomic: hxops.ops.link); planned once, where first asked for."""
        if self._op is None:
            self._op = ops.link(
                name=f"Activate venv release {posixpath.basename(self.target)}",
                path=self.path,
                target=self.target,
                # No user/group: a link's owner is cosmetic and must not trigger a restart;
                # tasks/layout.py repairs owner drift under base_dir (the link too) without restarting.
                snapshot=self.snapshot,
            )
        return self._op


@deploy("tasks/venv.py")
def venv(plan: GatewayPlan, facts: HostFacts, release: wheelhouse.Release) -> VenvSwitch:
    """Install the release when the host lacks it; return the switch of the venv link (a change
    of it means the service must restart)."""
    settings = plan.settings
    venv_dir = posixpath.join(settings.venv_root, release.id)
    # Checked by the preflight: "uv" (default) or "pip"; from the host's index it is always pip.
    installer = effective_installer(installer_of(host.data), settings.install_source == "wheelhouse")

    if release.id not in facts.releases:
        work_dir = posixpath.join(settings.gateway_dir, f".install-{release.id}")
        if settings.install_source == "wheelhouse":
            local_tar = wheelhouse.ensure_built(release)
            remote_tar = posixpath.join(settings.gateway_dir, f"wheelhouse-{release.id}.tar")
            files.put(
                name=f"Ship the wheelhouse of release {release.id}",
                src=str(local_tar),
                dest=remote_tar,
                mode="600",
            )
            lock = None
        else:
            remote_tar = None
            lock = posixpath.join(settings.gateway_dir, f"gateway-{release.id}.lock")
            files.put(name="Upload the hash-locked requirements", src=str(release.lock), dest=lock)
        server.shell(
            name=f"Install litellm {settings.litellm_version} into venvs/{release.id} ({installer})",
            # Under the work lock: a deploy after a killed one waits for this to end.
            commands=[
                under_work_lock(install_script(release.id, venv_dir, lock, remote_tar, work_dir, installer))
            ],
        )

    entry = ops.snapshot_of(facts.snapshot, settings.venv_link)
    unchanged = entry is not None and entry["type"] == "link" and entry.get("target") == venv_dir
    return VenvSwitch(settings.venv_link, venv_dir, facts.snapshot, will_change=not unchanged)
