"""The seed's way, for the benchmark's comparison only (never the production path).

The seed's bash deploy pip-installed the venv and restarted the gateway on EVERY run. This file
runs deploy.py's entry point (tasks.gateway.deploy_gateway) with two steps swapped: after the venv
step a plain `pip install -r gateway.lock` into the active venv, every time, and instead of the
service step (restart only on change) an unconditional restart that waits for readiness. Run it
with `--data installer=pip` so the first install is pip's too (the production pip fallback).
"""

import posixpath
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pyinfra import host  # noqa: E402
from pyinfra.api import deploy  # noqa: E402
from pyinfra.operations import files, server, systemd  # noqa: E402

from hxops import release, wheelhouse  # noqa: E402
from tasks.gateway import deploy_gateway  # noqa: E402
from tasks.service import ServiceOutcome  # noqa: E402
from tasks.venv import venv  # noqa: E402


@deploy("bench/seed_deploy.py venv")
def venv_then_pip_install_every_run(plan, facts, release):
    link = venv(plan, facts, release)
    link.apply()  # the seed's pip below runs in the active venv
    settings = plan.settings
    lock = posixpath.join(settings.gateway_dir, "seed-gateway.lock")
    files.put(name="(seed) Upload the requirements", src=str(wheelhouse.GATEWAY_LOCK), dest=lock, mode="600")
    server.shell(
        name="(seed) pip install the requirements, every run",
        commands=[
            f"{settings.venv_link}/bin/pip install --quiet --disable-pip-version-check --no-index "
            f"--require-hashes -r {lock}"
        ],
    )
    return link


@deploy("bench/seed_deploy.py service")
def restart_every_run(plan, facts, restart_triggers):
    settings = plan.settings
    systemd.service(
        name=f"(seed) Enable {settings.unit_name}", service=settings.unit_name, running=None, enabled=True
    )
    start = posixpath.join(settings.scripts_dir, "start.sh")
    server.shell(
        name="(seed) Restart the gateway, every run, and wait for readiness",
        commands=[f"{start} --restart"],
    )
    # As before: the seed's restart is not this deploy's, so the release step keeps a release only
    # when the saved one differs, and a failed validation does not roll back.
    return ServiceOutcome(restarting=False, release_state=release.read_state(host, settings))


deploy_gateway(venv_step=venv_then_pip_install_every_run, service_step=restart_every_run)
