"""The rollout's failure paths (rollout/runner.py), each driven for real through `python -m rollout`
on the session's rollout fleet (three gateways behind hx-lb): a planning failure, an unreachable or
failing load balancer (the rollout stops before any gateway), a drain that fails (nothing deployed
in that batch), a gateway not UP on the LB after --ready-timeout, a gateway restarted without
a drain because its state changed after planning, and a gateway an interrupted rollout left
drained while it was not answering its health check.

Stand-ins where the fleet cannot fail by itself: the LB powered off, an haproxy that refuses every
config (the deploy's own checks refuse the values HAProxy would), the
LB's admin socket moved away (HAProxy then refuses the runtime API), a blackhole route on the LB
to one gateway (its health checks fail). Every test starts from and leaves the `healthy` state.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from testbed import fleet
from tests.e2e import helpers
from tests.e2e.rollout_support import (
    LB,
    config_sha,
    haproxy_refusing_configs,
    lb_control,
    lb_servers,
    lb_set_state,
    rollout,
    rollout_cmd,
    rollout_env,
)

SOCKET = "/run/haproxy/admin.sock"


def unchanged_everywhere(gateways: list[str]) -> dict:
    return {n: (config_sha(n), helpers.main_pid(n)) for n in gateways}


def test_a_planning_failure_stops_before_anything_changes(healthy):
    before = unchanged_everywhere(healthy.gateways)
    result = rollout(healthy, "--data", "port=70000")
    assert result.returncode == 1
    assert "rollout: planning failed, nothing was changed" in result.output
    # The first host planned names the problem: a gateway ("out of range") or the LB ("not a port").
    assert re.search(r"port 70000 is (out of range|not a port number)", result.output), result.output
    assert "--> canary" not in result.output
    assert unchanged_everywhere(healthy.gateways) == before


def test_an_unreachable_load_balancer_stops_the_rollout_before_any_gateway(healthy, tmp_path):
    change = helpers.with_extra_model(tmp_path / "group_data")
    before = unchanged_everywhere(healthy.gateways)
    fleet.power_off(LB)  # the fixture powers it on again
    result = rollout(healthy, "--group-data", change)
    assert result.returncode == 1, result.output[-4000:]
    assert result.status(LB) == "unreachable"
    for name in healthy.gateways:
        assert result.status(name) == "skipped"
        assert f"load balancer {LB} unreachable: no gateway can be drained" in result.row(name)
    assert unchanged_everywhere(healthy.gateways) == before


def test_a_failing_load_balancer_deploy_stops_the_rollout_before_any_gateway(healthy, tmp_path):
    change = helpers.with_extra_model(tmp_path / "group_data")
    before = unchanged_everywhere(healthy.gateways)
    with haproxy_refusing_configs():
        result = rollout(healthy, "--group-data", change, "--data", "lb_check_interval_ms=1500")
    assert result.returncode == 1, result.output[-4000:]
    assert result.status(LB) == "failed"
    assert "haproxy -c refused the new config" in result.output
    for name in healthy.gateways:
        assert result.status(name) == "skipped"
        assert f"load balancer {LB} failed" in result.row(name)
    assert unchanged_everywhere(healthy.gateways) == before
    helpers.redeploy(LB)  # its candidate config back to the wanted one


@pytest.fixture
def admin_socket_away(healthy):
    """HAProxy's runtime API refuses: its socket is moved away (HAProxy keeps it open)."""
    helpers.ssh(LB, f"mv {SOCKET} {SOCKET}.hx-away")
    yield
    helpers.ssh(LB, f"mv {SOCKET}.hx-away {SOCKET}")


def test_a_failed_drain_deploys_nothing_in_that_batch(healthy, admin_socket_away, tmp_path):
    change = helpers.with_extra_model(tmp_path / "group_data")
    canary = healthy.gateways[0]
    before = unchanged_everywhere(healthy.gateways)
    result = rollout(healthy, "--group-data", change)
    assert result.returncode == 1, result.output[-4000:]
    # The LB's state cannot be read (looking for gateways left drained): a warning, then the
    # drain itself fails and says why.
    assert (
        f"    warning: HAProxy runtime API at {SOCKET}: [Errno 2] No such file or directory" in result.output
    )
    assert result.status(canary) == "failed"
    assert f"not drained from {LB}: HAProxy runtime API at {SOCKET}" in result.row(canary)
    assert "nothing deployed" in result.row(canary)
    for name in healthy.gateways[1:]:
        assert result.status(name) == "skipped"
    assert unchanged_everywhere(healthy.gateways) == before


@pytest.fixture
def lb_cannot_reach_the_canary(healthy):
    """A blackhole route on the LB to the canary: HAProxy's health checks of it fail, while the
    control machine still reaches it (its deploy and validation pass)."""
    canary = healthy.gateways[0]
    # From the control machine, in the LB's network namespace: the LB itself may not change routes.
    route = ["blackhole", f"{fleet.find(canary).address}/32"]
    netns = fleet.find(LB).netns
    subprocess.run(["ip", "-n", netns, "route", "add", *route], check=True)
    yield canary
    subprocess.run(["ip", "-n", netns, "route", "del", *route], check=True)


def test_a_gateway_not_up_after_the_ready_timeout_fails_the_rollout(healthy, lb_cannot_reach_the_canary):
    canary = lb_cannot_reach_the_canary
    # Left in maintenance by an earlier rollout: this one puts it back once deployed, and waits
    # for UP, which the failing health checks never give.
    lb_set_state(canary, "maint")
    result = rollout(healthy, "--ready-timeout", "5")
    assert f"{canary}: found drained on the load balancer" in result.output
    assert result.returncode == 1, result.output[-4000:]  # out of rotation is a failure
    assert result.status(canary) == "failed"
    assert f"not UP on {LB} after 5 s" in result.row(canary)
    assert lb_servers()[canary]["status"] != "UP"
    for name in healthy.gateways[1:]:
        assert "not UP" not in result.row(name)


def test_a_restart_the_plan_did_not_foresee_is_reported_as_undrained(healthy):
    """The second gateway's service goes stale while the canary deploys: planned without a
    restart, so not drained, it restarts anyway, and the report says so."""
    canary, second = healthy.gateways[0], healthy.gateways[1]
    pid = helpers.main_pid(second)
    proc = subprocess.Popen(
        rollout_cmd(healthy, "--batch-size", "1"),
        cwd=helpers.REPO,
        env=rollout_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(f"--> canary: {canary}"):  # planning is over; the second waits its turn
            helpers.ssh(second, f"touch {helpers.CONFIG}")
    returncode = proc.wait(timeout=60)
    output = "".join(lines)
    assert returncode == 0, output[-4000:]  # it came up and passed: a warning, not a failure
    assert f"--> batch 1: {second} (no restart planned)" in output
    row = [line for line in output.splitlines() if line.startswith(second + " ")][-1]
    assert "  updated  " in row and "restarted without a drain (not planned)" in row, row
    assert helpers.main_pid(second) != pid


def test_a_gateway_left_drained_while_it_does_not_answer_is_put_back_once_it_does(healthy):
    """A rollout killed while a gateway restarts leaves it drained and failing its health check:
    HAProxy's `show stat` then says DOWN, not DRAIN, and the next rollout took it for a gateway
    nobody had drained (the session's full test run caught it: fault 5 left the canary drained).
    Made on purpose: drained, then frozen (systemd still calls it active, nothing to deploy)."""
    canary = healthy.gateways[0]
    assert lb_control("drain", canary)["ok"]
    pid = helpers.main_pid(canary)
    helpers.ssh(canary, f"kill -STOP {pid}")
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60  # a bound on a hang: HAProxy's checks fail in seconds
        while not lb_servers()[canary]["status"].startswith("DOWN"):
            assert time.monotonic() < deadline, lb_servers()
            time.sleep(0.2)
        proc = subprocess.Popen(
            rollout_cmd(healthy),
            cwd=helpers.REPO,
            env=rollout_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for line in proc.stdout:  # the gateway answers again once the rollout has read the LB
            lines.append(line)
            if "found drained on the load balancer" in line:
                break
    finally:
        helpers.ssh(canary, f"kill -CONT {pid}")
    lines.append(proc.stdout.read())
    output = "".join(lines)
    assert proc.wait(timeout=600) == 0, output[-4000:]
    assert f"{canary}: found drained on the load balancer; put back after deploy" in output
    assert helpers.main_pid(canary) == pid  # nothing to deploy: not restarted, only put back
    assert lb_servers()[canary]["status"] == "UP"
