"""Safe multi-gateway rollout on a local fleet of three gateways behind HAProxy (issue 5).

The session's rollout fleet (conftest.rollout_fleet: the shared gateway and two of the rollout's
own, behind hx-lb, with one master key) survives each fault: a change LiteLLM rejects at start-up
(the canary rolls back, the others are never touched), a backend down (degraded, exit 0), a dead
gateway (reported, the others deployed, exit 1), SIGKILL and a reboot (systemd brings the gateway
back), a rolling restart under client load through the LB (zero failed requests), a rollout
killed mid-run (the next one converges), and what a killed rollout leaves behind (a gateway
drained and older than its files: found, restarted, put back).

Every test starts from the same state and leaves it (the `healthy` fixture): every machine on,
the repository's catalogue everywhere, every gateway UP on the load balancer. Each one can run
alone or in any order.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

from hxgw.settings import locked_litellm_version
from hxops.gateway_locks import GATEWAY_LOCK
from testbed import fleet
from tests.e2e import helpers
from tests.e2e.rollout_support import (
    EXTRA_MODEL,
    LB,
    ClientLoop,
    children,
    config_sha,
    haproxy_refusing_configs,
    haproxy_reloads,
    lb_control,
    lb_servers,
    rollout,
    rollout_cmd,
    rollout_env,
    wait_all_up,
)

PINNED = locked_litellm_version(GATEWAY_LOCK.read_text())


def test_the_load_balancer_is_idempotent_and_checks_a_config_before_reloading(healthy):
    gateways = healthy.gateways
    config = "/etc/haproxy/haproxy.cfg"

    def live():
        return helpers.ssh(LB, f"sha256sum {config}"), helpers.ssh(
            LB, "systemctl show -p MainPID --value haproxy"
        )

    for server in gateways:
        assert f"server {server} {fleet.find(server).address}:4000" in helpers.ssh(LB, f"cat {config}")
    reloads = haproxy_reloads()
    helpers.assert_noop(helpers.pyinfra("--limit", LB), LB)
    assert haproxy_reloads() == reloads

    # The positive control: a change HAProxy accepts is checked, then reloaded once, and counted.
    changed = helpers.pyinfra("--limit", LB, "--data", "lb_check_interval_ms=1500")
    assert changed.returncode == 0, changed.output[-3000:]
    assert "inter 1500" in helpers.ssh(LB, f"cat {config}")
    assert haproxy_reloads() == reloads + 1
    back = helpers.pyinfra("--limit", LB)
    assert back.returncode == 0, back.output[-3000:]
    assert haproxy_reloads() == reloads + 2
    reloads, before = reloads + 2, live()

    # A value HAProxy would refuse is refused before anything runs, naming the setting.
    typo = helpers.pyinfra("--limit", LB, "--data", "lb_check_interval_ms=abc")
    assert typo.returncode != 0 and "lb_check_interval_ms must be an integer" in typo.output
    assert live() == before and haproxy_reloads() == reloads

    with haproxy_refusing_configs():  # past the deploy's checks: `haproxy -c` is the last word
        bad = helpers.pyinfra("--limit", LB, "--data", "lb_check_interval_ms=1500")
    assert bad.returncode != 0
    assert "haproxy -c refused the new config; the live one is unchanged" in bad.output
    assert live() == before
    assert haproxy_reloads() == reloads and helpers.ready(LB)

    back = helpers.pyinfra("--limit", LB)  # only the candidate goes back: the live config was right
    assert back.returncode == 0
    assert back.changed(LB) == ["tasks/loadbalancer.py | Render the HAProxy config (candidate)"]
    assert haproxy_reloads() == reloads


def last_recorded(name: str) -> dict:
    """The newest entry of the gateway's deployment record (hxops.deploy_record)."""
    return json.loads(helpers.ssh(name, f"tail -n 1 {helpers.BASE}/releases/deployments.jsonl"))


def test_a_change_that_fails_validation_rolls_the_canary_back(healthy, tmp_path):
    canary = healthy.gateways[0]
    # Starts fine, but the model's tag is not on its backend: the validation's chat check fails.
    typo = helpers.with_extra_model(tmp_path / "group_data", name="llm02-typo", tag="dolphin3:7b")
    before = {n: (config_sha(n), helpers.main_pid(n)) for n in healthy.gateways}
    result = rollout(healthy, "--group-data", typo)
    assert result.returncode == 1, result.output[-4000:]
    assert result.status(canary) == "rolled back"
    assert "llm02-typo: chat failed: HTTP 404" in result.row(canary)
    assert last_recorded(canary)["outcome"] == "rolled back"  # the deployment record says so too
    assert "validation failed" in last_recorded(canary)["cause"]
    assert all(result.status(n) == "skipped" for n in healthy.gateways[1:])
    assert config_sha(canary) == before[canary][0] and helpers.ready(canary)
    assert "llm02-typo" not in helpers.served_models(canary, healthy.key)
    for name in healthy.gateways[1:]:
        assert (config_sha(name), helpers.main_pid(name)) == before[name]
    # Validation run alone never rolls back, even when it fails: it restarted nothing.
    pid = helpers.main_pid(canary)
    alone = helpers.pyinfra("--limit", canary, "--group-data", typo, deploy="tasks/validate.py")
    assert alone.returncode != 0
    assert "Rolling back" not in alone.output and "ROLLED BACK" not in alone.output
    assert helpers.main_pid(canary) == pid


def test_fault1_a_change_litellm_rejects_rolls_the_canary_back_and_spares_the_others(healthy, tmp_path):
    canary, others = healthy.gateways[0], healthy.gateways[1:]
    # Passes the deploy's data checks (plain text under a known Router() key: whether a routing
    # plugin's module can be imported is the host's business), but LiteLLM exits at start-up.
    bad = helpers.group_data(
        tmp_path / "group_data",
        'router_settings = {**_base.router_settings, "plugins": ["hx_missing_plugin.Plugin"]}\n',
    )
    before = {n: (config_sha(n), helpers.main_pid(n)) for n in healthy.gateways}
    saved = helpers.saved_release(canary)

    result = rollout(healthy, "--group-data", bad)

    assert result.returncode == 1, result.output[-4000:]
    assert result.status(canary) == "rolled back"
    assert "hx_missing_plugin" in result.row(canary)  # the cause, named
    assert (last_recorded(canary)["outcome"], last_recorded(canary)["litellm"]) == ("rolled back", PINNED)
    for name in others:
        assert result.status(name) == "skipped"
        assert f"the rollout stopped at {canary}" in result.row(name)
        assert (config_sha(name), helpers.main_pid(name)) == before[name]  # never touched
    # The canary serves the old release again, and is back in the LB's rotation.
    assert config_sha(canary) == before[canary][0]
    assert helpers.ready(canary)
    assert helpers.main_pid(canary) != before[canary][1]
    # The saved release it went back to is untouched, and still root's alone.
    assert helpers.saved_release(canary) == saved
    assert set(saved["modes"].values()) == {"root:root 700", "root:root 600"}
    wait_all_up(healthy.gateways)


def restart_planned(*gateways: str) -> dict[str, int]:
    """Each gateway's config.yaml touched: its service is older than its files, so the rollout
    restarts it (hxops.release.stale_reason) with nothing to put back afterwards. Their PIDs."""
    for name in gateways:
        helpers.ssh(name, f"touch {helpers.CONFIG}")
    return {name: helpers.main_pid(name) for name in gateways}


def test_fault2_a_backend_down_during_the_rollout_completes_degraded(healthy):
    fleet.power_off("llm-02")  # the fixture powers it on and waits until every gateway serves it
    canary, others = healthy.gateways[0], healthy.gateways[1:]
    pids = restart_planned(canary)  # it restarts while the backend is down
    result = rollout(healthy, "--batch-size", "2")
    assert result.returncode == 0, result.output[-4000:]
    assert result.status(canary) == "updated" and helpers.main_pid(canary) != pids[canary]
    for name in others:
        assert result.status(name) == "unchanged"
    for name in healthy.gateways:
        assert "degraded:" in result.row(name) and "llm02-" in result.row(name)
    assert "failed: 0, unreachable: 0, skipped: 0" in result.output


def test_fault3_a_dead_gateway_is_reported_and_the_others_are_deployed(healthy):
    dead = healthy.gateways[0]  # the first gateway: the next reachable one becomes the canary
    fleet.power_off(dead)
    canary, last = healthy.gateways[1], healthy.gateways[2]
    pids = restart_planned(canary)  # the new canary restarts while the first gateway is dead
    result = rollout(healthy, "--batch-size", "2")
    fleet.power_on(dead)  # (the fixture would, were the rollout to raise)
    assert result.returncode == 1, result.output[-4000:]
    assert result.status(dead) == "unreachable"
    assert "canary" in result.row(canary)
    assert result.status(canary) == "updated"  # restarted, validated, back in rotation
    assert helpers.main_pid(canary) != pids[canary]
    assert result.status(last) == "unchanged"  # deployed and validated; nothing to change
    # Powered on again, the gateway comes back by itself (enabled).
    assert helpers.ssh(dead, f"systemctl is-enabled {helpers.UNIT}").strip() == "enabled"
    helpers.wait_ready(dead)


def test_fault4_sigkill_and_reboot_bring_the_gateway_back(healthy):
    killed, rebooted = healthy.gateways[1], healthy.gateways[2]
    pid = helpers.main_pid(killed)
    restarts = int(helpers.ssh(killed, f"systemctl show -p NRestarts --value {helpers.UNIT}"))
    helpers.ssh(killed, f"kill -KILL {pid}")
    fleet.power_off(rebooted)
    fleet.power_on(rebooted)  # returns once systemd runs; the gateway starts on its own
    helpers.wait_ready(killed)
    helpers.wait_ready(rebooted)
    assert helpers.main_pid(killed) != pid
    assert int(helpers.ssh(killed, f"systemctl show -p NRestarts --value {helpers.UNIT}")) == restarts + 1
    assert helpers.ssh(rebooted, f"systemctl is-active {helpers.UNIT}").strip() == "active"
    assert helpers.ssh(rebooted, f"systemctl is-enabled {helpers.UNIT}").strip() == "enabled"
    wait_all_up(healthy.gateways)


def test_fault6_a_rolling_restart_under_load_through_the_lb_fails_no_request(healthy, tmp_path):
    gateways = healthy.gateways
    change = helpers.with_extra_model(tmp_path / "group_data")
    pids = {n: helpers.main_pid(n) for n in gateways}
    shas = {n: config_sha(n) for n in gateways}
    dry = rollout(
        healthy, "--dry", "--group-data", change
    )  # every host's change, with diffs; changes nothing
    assert dry.returncode == 0, dry.output[-3000:]
    for name in gateways:
        assert f"=== {name} (" in dry.output
    assert dry.output.count("restarts the gateway (drained from the load balancer first)") == len(gateways)
    assert dry.output.count(f'+   - model_name: "{EXTRA_MODEL}"') == len(gateways)
    assert {n: (config_sha(n), helpers.main_pid(n)) for n in gateways} == {
        n: (shas[n], pids[n]) for n in gateways
    }
    # The clients run from before the rollout starts until after it ends, however long it takes.
    with ClientLoop(helpers.url(LB), healthy.key) as loop:
        loop.wait_for_requests(20)
        before = loop.count()
        result = rollout(healthy, "--group-data", change)
        during = loop.count() - before
        loop.wait_for_requests(20)
        requests, errors, samples = loop.stop()
    ready_seconds = {}
    for name in gateways:
        found = re.search(r"\s(\d+\.\d) s\s", result.row(name) + " ")
        ready_seconds[name] = float(found.group(1)) if found else None
    figures = {
        "requests": requests,
        "requests_during_the_rollout": during,
        "errors": errors,
        "restart_to_ready_s": ready_seconds,
        "rollout_s": round(result.seconds, 1),
    }
    print(f"fault 6 figures: {json.dumps(figures)}")
    (helpers.REPO / "reports").mkdir(exist_ok=True)
    (helpers.REPO / "reports" / "rollout-fault6.json").write_text(json.dumps(figures, indent=2) + "\n")

    assert result.returncode == 0, result.output[-4000:]
    for name in gateways:
        assert result.status(name) == "updated"
        assert helpers.main_pid(name) != pids[name]  # each one restarted
        assert EXTRA_MODEL in helpers.served_models(name, healthy.key)
    assert during > 0, figures
    assert errors == 0, f"{errors} failed requests of {requests}: {samples[:5]}"
    wait_all_up(gateways)


def test_fault5_an_interrupted_rollout_converges_on_the_next_run(healthy, tmp_path):
    gateways, canary = healthy.gateways, healthy.gateways[0]
    start_sha = config_sha(canary)
    target = ["--group-data", helpers.with_extra_model(tmp_path / "group_data")]
    proc = subprocess.Popen(
        rollout_cmd(healthy, *target),
        cwd=helpers.REPO,
        env=rollout_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    pyinfra_pids: set[int] = set()
    try:
        deadline = time.monotonic() + 300
        while config_sha(canary) == start_sha:  # kill it once it has changed the canary's config
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the rollout never changed the canary's config"
            pyinfra_pids.update(children(proc.pid))
            time.sleep(0.2)
        pyinfra_pids.update(children(proc.pid))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.stdout.close()
    # pyinfra died with it (PR_SET_PDEATHSIG): nothing keeps deploying behind our back.
    deadline = time.monotonic() + 30
    while [p for p in pyinfra_pids if fleet.pid_alive(p)]:
        assert time.monotonic() < deadline, "pyinfra outlived the killed rollout"
        time.sleep(0.2)
    assert pyinfra_pids

    result = rollout(healthy, "--batch-size", "2", *target)
    assert result.returncode == 0, result.output[-4000:]
    for name in gateways:
        assert result.status(name) in ("updated", "unchanged")
        assert EXTRA_MODEL in helpers.served_models(name, healthy.key)
    assert len({config_sha(n) for n in gateways}) == 1
    servers = wait_all_up(gateways)  # none left drained by the killed rollout
    assert all(servers[n]["status"] == "UP" for n in gateways)


def test_a_gateway_left_drained_and_older_than_its_files_is_restarted_and_put_back(healthy):
    """What a rollout killed between writing a gateway's files and restarting it leaves behind,
    made on purpose: the gateway drained on the LB, its service older than its config.yaml."""
    canary = healthy.gateways[0]
    assert lb_control("drain", canary)["ok"]
    helpers.ssh(canary, f"touch {helpers.CONFIG}")
    pid = helpers.main_pid(canary)
    result = rollout(healthy)
    assert result.returncode == 0, result.output[-4000:]
    assert f"{canary}: found drained on the load balancer; put back after deploy" in result.output
    # The plan saw the stale service: its restart was planned, so it was drained first.
    assert f"--> canary: {canary} (restart: {canary})" in result.output
    assert helpers.main_pid(canary) != pid  # restarted: it now runs what is on disk
    for name in healthy.gateways[1:]:
        assert result.status(name) == "unchanged"
    assert lb_servers()[canary]["status"] == "UP"
