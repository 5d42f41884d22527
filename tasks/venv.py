"""Step 5: the venv with the pinned litellm[proxy], from the hash-checked lock in the repo.

The control machine builds the wheelhouse for the host's Python and platform (hosts need no
internet) and ships it only when the host lacks this release; `install_source: index` installs
from the host's own package index instead. uv installs; pip is the fallback.
"""

from __future__ import annotations

import posixpath

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, server

from hxgw.install import effective_installer, install_script
from hxops import ops, wheelhouse
from hxops.facts import HostFacts
from hxops.plan import GatewayPlan
from tasks.preflight import installer_of


@deploy("tasks/venv.py")
def venv(plan: GatewayPlan, facts: HostFacts, release: wheelhouse.Release) -> OperationMeta:
    """Install the release when the host lacks it; return the venv link's operation (a change of
    it means the service must restart)."""
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
            commands=[install_script(release.id, venv_dir, lock, remote_tar, work_dir, installer)],
        )

    return ops.link(
        name=f"Activate venv release {release.id}",
        path=settings.venv_link,
        target=venv_dir,
        # No user/group: a link's owner is cosmetic and must not trigger a restart; tasks/layout.py
        # repairs owner drift under base_dir (the link included) without restarting.
        snapshot=facts.snapshot,
    )
