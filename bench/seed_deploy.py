"""The seed's way, for the benchmark's comparison only (never the production path).

The seed's bash deploy pip-installed the venv and restarted the gateway on EVERY run. This file
runs deploy.py's steps (read from its TASKS) with two differences: after the venv step it runs a
plain `pip install -r gateway.lock` into the active venv every time, and instead of the service
step (restart only on change) it restarts unconditionally and waits for readiness. Run it with
`--data installer=pip` so the first install is pip's too (the production pip fallback).
"""

import posixpath
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pyinfra import host, local, state  # noqa: E402
from pyinfra.operations import files, server, systemd  # noqa: E402

from bench.steps import deploy_tasks  # noqa: E402
from hxops import ops, plan, wheelhouse  # noqa: E402

host_plan = plan.for_host(host)
settings = host_plan.settings


def pip_install_every_run() -> None:
    lock = posixpath.join(settings.gateway_dir, "seed-gateway.lock")
    files.put(name="(seed) Upload the requirements", src=str(wheelhouse.GATEWAY_LOCK), dest=lock, mode="600")
    server.shell(
        name="(seed) pip install the requirements, every run",
        commands=[
            f"{settings.venv_link}/bin/pip install --quiet --disable-pip-version-check --no-index "
            f"--require-hashes -r {lock}"
        ],
    )


def restart_every_run() -> None:
    systemd.service(
        name=f"(seed) Enable {settings.unit_name}", service=settings.unit_name, running=None, enabled=True
    )
    start = posixpath.join(settings.scripts_dir, "start.sh")
    server.shell(
        name="(seed) Restart the gateway, every run, and wait for readiness",
        commands=[f"{start} --restart"],
    )


for number, task in enumerate(deploy_tasks()):
    if host_plan.stopped:
        break
    with ops.one_task_at_a_time():  # as deploy.py: one op-order number per task file
        state.current_op_file_number = number
        if task == "service":
            restart_every_run()
            continue
        local.include(str(REPO / "tasks" / f"{task}.py"))
        if task == "venv" and not host_plan.stopped:
            pip_install_every_run()
