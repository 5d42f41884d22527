"""Step 2: preflight: supported OS, Python >= 3.10, free disk for the venv, port free or ours, an
installer we know, workers the host can carry, and a service_user that is not somebody else's
account."""

from __future__ import annotations

from pyinfra import host, state
from pyinfra.api import deploy

from hxgw.accounts import service_user_problem
from hxgw.install import INSTALLERS
from hxgw.serving import serving_problem
from hxops.facts import HostFacts
from hxops.plan import GatewayPlan, refuse
from hxops.wheelhouse import Release, release_for

SUPPORTED_OS = {"debian": 12, "ubuntu": 22}
MIN_PYTHON = (3, 10)
VENV_DISK_MB = 1500  # the proxy venv is ~750 MB; the wheelhouse tar ~190 MB while installing


def installer_of(host_data) -> str:
    """The `installer` host data (uv by default; pip is the fallback). Checked below."""
    return host_data.get("installer", "uv")


@deploy("tasks/preflight.py")
def preflight(plan: GatewayPlan, facts: HostFacts) -> Release:
    """Refuse a host the gateway cannot run on; return the release (venv) it needs."""
    settings = plan.settings
    problems = []
    release = None

    major = int(facts.os_version.split(".")[0]) if facts.os_version.split(".")[0].isdigit() else 0
    if facts.os_id not in SUPPORTED_OS or major < SUPPORTED_OS[facts.os_id]:
        problems.append(
            f"unsupported OS {facts.os_id} {facts.os_version or '?'}: the gateway needs Debian >= 12 "
            "or Ubuntu >= 22.04"
        )

    python = facts.python
    if not python or python[:2] < MIN_PYTHON:
        found = ".".join(map(str, python)) if python else "none"
        problems.append(
            f"python3 on the host is {found}: litellm needs >= 3.10 (older Pythons silently get an "
            "old litellm); install a newer python3"
        )
    else:
        release = release_for(python, facts.machine, facts.glibc, plan.gateway_lock)
        already_installed = facts.venv_release == release.id
        if not already_installed and facts.disk_free_mb < VENV_DISK_MB:
            problems.append(
                f"only {facts.disk_free_mb} MB free under {settings.base_dir}: the venv needs "
                f"{VENV_DISK_MB} MB; free some disk or point base_dir at a larger filesystem"
            )

    installer = installer_of(host.data)
    if installer not in INSTALLERS:
        problems.append(f"installer is {installer!r}: use one of {', '.join(INSTALLERS)} (uv is the default)")

    strangers = [o for o in facts.port_owners if not o.ours]
    if strangers:
        who = ", ".join(f"pid {o.pid} ({o.command or '?'})" for o in strangers)
        problems.append(
            f"port {settings.port} is held by another process: {who}; stop it or set `port` to a free one"
        )

    workers = serving_problem(settings, facts.cpus, facts.memory_mb)
    if workers:
        problems.append(workers)

    account = facts.snapshot.passwd.get(settings.service_user)
    log_dir = facts.snapshot.entry(settings.log_dir) or {}
    problem = service_user_problem(settings.service_user, account, log_dir.get("user"))
    if problem:
        problems.append(problem)

    if problems or release is None:
        refuse(host, state, "preflight failed:\n  - " + "\n  - ".join(problems))
    return release
