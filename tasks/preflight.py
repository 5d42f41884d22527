"""Step 2: preflight: supported OS, Python >= 3.10, free disk for the venv, port free or ours."""

from pyinfra import host

from hxgw.install import INSTALLERS
from hxops import plan
from hxops.wheelhouse import release_for

SUPPORTED_OS = {"debian": 12, "ubuntu": 22}
MIN_PYTHON = (3, 10)
VENV_DISK_MB = 1500  # the proxy venv is ~750 MB; the wheelhouse tar ~190 MB while installing

host_plan = plan.for_host(host)
settings, facts = host_plan.settings, host_plan.facts
problems = []

os_id, os_version = facts.get("os_id", "unknown"), facts.get("os_version", "")
major = int(os_version.split(".")[0]) if os_version.split(".")[0].isdigit() else 0
if os_id not in SUPPORTED_OS or major < SUPPORTED_OS[os_id]:
    problems.append(
        f"unsupported OS {os_id} {os_version or '?'}: the gateway needs Debian >= 12 or Ubuntu >= 22.04"
    )

python = facts.get("python")
if not python or python[:2] < MIN_PYTHON:
    found = ".".join(map(str, python)) if python else "none"
    problems.append(
        f"python3 on the host is {found}: litellm needs >= 3.10 (older Pythons silently get an "
        "old litellm); install a newer python3"
    )
else:
    host_plan.release = release_for(python, facts["machine"], facts["glibc"])
    already_installed = facts.get("venv_release") == host_plan.release.id
    free = facts.get("disk_free_mb", 0)
    if not already_installed and free < VENV_DISK_MB:
        problems.append(
            f"only {free} MB free under {settings.base_dir}: the venv needs {VENV_DISK_MB} MB; "
            "free some disk or point base_dir at a larger filesystem"
        )

installer = host.data.get("installer", "uv")
if installer not in INSTALLERS:
    problems.append(f"installer is {installer!r}: use one of {', '.join(INSTALLERS)} (uv is the default)")

strangers = [o for o in facts.get("port_owners", []) if not o["ours"]]
if strangers:
    who = ", ".join(f"pid {o['pid']} ({o['command'] or '?'})" for o in strangers)
    problems.append(
        f"port {settings.port} is held by another process: {who}; stop it or set `port` to a free one"
    )

if problems:
    plan.refuse(host, "preflight failed:\n  - " + "\n  - ".join(problems))
