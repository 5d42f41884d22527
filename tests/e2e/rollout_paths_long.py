"""Issue 27, beyond `make test` (`make test-long`): a rollout restarting the only gateway UP warns
and goes on. Out of `make test` for its time.
"""

from __future__ import annotations

import subprocess
import sys

from tests.e2e import helpers
from tests.e2e.rollout_support import LB, lb_servers, lb_set_state, rollout_env


def test_a_restart_with_no_other_gateway_up_warns_and_goes_on(healthy):
    canary, others = healthy.gateways[0], healthy.gateways[1:]
    helpers.ssh(canary, f"touch {helpers.CONFIG}")
    pid = helpers.main_pid(canary)
    for name in others:
        lb_set_state(name, "maint")  # the fixture puts them back
    # Only the canary: the others stay out of rotation, as an operator left them.
    run = subprocess.run(
        [sys.executable, "-m", "rollout", helpers.INVENTORY, "--limit", canary],
        cwd=helpers.REPO, env=rollout_env(), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert f"warning: no other gateway is UP on {LB}: its clients get errors during this restart" in output
    row = [line for line in output.splitlines() if line.startswith(canary + " ")][-1]
    assert "  updated  " in row, row
    assert f"{', '.join(sorted(others))}: drained on the load balancer, not part of this rollout" in output
    assert helpers.main_pid(canary) != pid
    assert lb_servers()[canary]["status"] == "UP"
