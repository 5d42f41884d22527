"""The pip fallback (`installer: pip`) installs a working venv end to end, on a gateway of its own.

uv is the default installer (tests/e2e/test_deploy.py covers it); this boots one extra gateway,
deploys it with `--data installer=pip`, checks that the venv was made by pip and serves (the
deploy's own validation step calls the API), that a re-run installs and restarts nothing, then
powers the machine off.
"""

from __future__ import annotations

import pytest

from testbed import fleet
from tests.e2e import helpers

VENV = f"{helpers.BASE}/gateway/venv"


@pytest.fixture(scope="module")
def pip_gateway(fleet_machines):
    machine = fleet.add_gateways(1)[0]
    try:
        yield machine.name
    finally:
        fleet.remove_machine(machine.name)


def test_pip_fallback_installs_a_working_venv_and_reruns_as_a_noop(pip_gateway):
    first = helpers.pyinfra("--limit", pip_gateway, "--data", "installer=pip")
    assert first.returncode == 0, first.output[-4000:]
    installs = [
        name for name in first.changed(pip_gateway) if name.startswith("tasks/venv.py | Install litellm")
    ]
    assert len(installs) == 1 and installs[0].endswith("(pip)"), first.changed(pip_gateway)
    # pip made this venv (a uv venv has no pip in it); the install's smoke test ran `litellm
    # --version` in it, and the deploy's validation step called the API it serves.
    assert "pip " in helpers.ssh(pip_gateway, f"{VENV}/bin/pip --version")
    ran = first.changed(pip_gateway) + first.unchanged(pip_gateway)
    assert any(name.startswith("tasks/validate.py") for name in ran) and not first.errors(pip_gateway)
    assert helpers.ssh(pip_gateway, f"curl -fsS {fleet.find(pip_gateway).address}:4000/health/readiness")

    pid = helpers.main_pid(pip_gateway)
    again = helpers.pyinfra("--limit", pip_gateway, "--data", "installer=pip")
    assert again.returncode == 0, again.output[-3000:]
    assert not [name for name in again.changed(pip_gateway) if "Install" in name or "Restart" in name]
    assert helpers.main_pid(pip_gateway) == pid
