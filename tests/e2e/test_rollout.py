"""Safe multi-gateway rollout on a local fleet of three gateways behind HAProxy (issue 5).

The module adds gateways up to three and the load balancer hx-lb to the shared fleet, deploys
them all once with one master key, and then survives each fault: a change LiteLLM rejects at
start-up (the canary rolls back, the others are never touched), a backend down (degraded, exit
0), a dead gateway (reported, the others deployed, exit 1), SIGKILL and a reboot (systemd brings
the gateway back), a rolling restart under client load through the LB (zero failed requests),
and a rollout killed mid-run (the next one converges).

The tests run in file order and share the fleet's state: the rolling change (fault 6) leaves a
catalogue with one more model; the interrupted rollout (fault 5) goes back to the repository's
catalogue, so the module ends where it started.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from testbed import fleet
from tests.e2e import helpers

KEY = "sk-" + secrets.token_urlsafe(32)  # one master key for every gateway of this module
CONFIG = f"{helpers.BASE}/config/api-gateway/config.yaml"
LB = fleet.LOADBALANCER[0]
EXTRA_MODEL = "llm02-dolphin3"
# This module's three gateways (set by the fixture): every rollout here is limited to them, since
# other modules leave machines of their own in the inventory (test_install_paths powers one off).
GATEWAYS: list[str] = []


# --- helpers ---------------------------------------------------------------------------------


@dataclass
class RolloutResult:
    returncode: int
    output: str
    seconds: float

    def row(self, host: str) -> str:
        """The host's row of the final report."""
        rows = [line for line in self.output.splitlines() if line.startswith(host + " ")]
        assert rows, f"no report row for {host}:\n{self.output[-3000:]}"
        return rows[-1]

    def status(self, host: str) -> str:
        for status in ("rolled back", "updated", "unchanged", "failed", "unreachable", "skipped"):
            if f"  {status}  " in self.row(host):
                return status
        raise AssertionError(self.row(host))


def rollout_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_KEY", "FORCE")}
    return {**env, "MASTER_KEY": KEY}


def rollout_cmd(*args: str) -> list[str]:
    limits = [arg for name in GATEWAYS for arg in ("--limit", name)]
    return [sys.executable, "-m", "rollout", helpers.INVENTORY, *limits, *args]


def rollout(*args: str, timeout: float = 600) -> RolloutResult:
    started = time.monotonic()
    proc = subprocess.run(
        rollout_cmd(*args),
        cwd=helpers.REPO,
        env=rollout_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return RolloutResult(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started)


def group_data(tmp_path: Path, body: str) -> str:
    """A --group-data folder whose all.py is the repository's, changed by `body`."""
    folder = tmp_path / "group_data"
    folder.mkdir(exist_ok=True)
    base = helpers.REPO / "group_data" / "all.py"
    (folder / "all.py").write_text(
        textwrap.dedent(
            f"""
            import importlib.util
            _spec = importlib.util.spec_from_file_location("_base", {str(base)!r})
            _base = importlib.util.module_from_spec(_spec)
            _spec.loader.exec_module(_base)
            """
        )
        + textwrap.dedent(body)
    )
    return str(folder)


def with_extra_model(tmp_path: Path) -> str:
    return group_data(
        tmp_path,
        f"""
        models = _base.models + [
            {{"name": {EXTRA_MODEL!r}, "backend": "llm-02", "model": "dolphin3:8b", "mode": "chat"}}
        ]
        """,
    )


def config_sha(name: str) -> str:
    return helpers.ssh(name, f"sha256sum {CONFIG}").split()[0]


def url(name: str) -> str:
    return f"http://{fleet.find(name).address}:4000"


def ready(name: str) -> bool:
    try:
        return httpx.get(f"{url(name)}/health/readiness", timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def wait_ready(name: str, timeout: float = 180) -> float:
    started = time.monotonic()
    while not ready(name):
        assert time.monotonic() - started < timeout, f"{name} not ready after {timeout} s"
        time.sleep(0.5)
    return time.monotonic() - started


def lb_servers() -> dict:
    return json.loads(helpers.ssh(LB, "hx-lb-ctl state hx_gateways"))


def wait_all_up(names: list[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        servers = lb_servers()
        if all(servers.get(n, {}).get("status") == "UP" for n in names):
            return servers
        assert time.monotonic() < deadline, f"not every gateway is UP on {LB}: {servers}"
        time.sleep(0.5)


def wait_served(name: str, model: str, timeout: float = 90) -> None:
    """After a backend comes back, wait until the gateway answers for its model again."""
    body = {"model": model, "messages": [{"role": "user", "content": "Return exactly the text: HX-OK"}]}
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = httpx.post(
                f"{url(name)}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=30,
                trust_env=False,
            )
            if answer.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{name} does not serve {model} again after {timeout} s"
        time.sleep(1)


def served_models(name: str) -> set[str]:
    answer = httpx.get(
        f"{url(name)}/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=30, trust_env=False
    )
    answer.raise_for_status()
    return {m["id"] for m in answer.json()["data"]}


class ClientLoop:
    """A few concurrent clients calling chat and embeddings through the load balancer, bounded
    in count and time; stop() ends it early and returns (requests, errors, first errors)."""

    def __init__(self, base_url: str, clients: int = 4, max_requests: int = 2000, max_seconds: float = 180):
        self.base_url, self.clients = base_url, clients
        self.max_requests, self.deadline = max_requests, time.monotonic() + max_seconds
        self.requests = self.errors = 0
        self.samples: list[str] = []
        self._lock, self._done = threading.Lock(), threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)
        ]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def running(self) -> bool:
        """Still sending: neither the request count nor the time bound reached."""
        return self.requests < self.max_requests and time.monotonic() < self.deadline

    def stop(self):
        self._done.set()
        for thread in self._threads:
            thread.join(timeout=90)
        return self.requests, self.errors, self.samples

    def _client(self, index: int) -> None:
        headers = {"Authorization": f"Bearer {KEY}"}
        chat = {
            "model": "llm01-llama3.2-3b",
            "messages": [{"role": "user", "content": "Return exactly the text: LB-OK"}],
            "max_tokens": 5,
        }
        embed = {"model": "emb-light", "input": "through the load balancer"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=60, trust_env=False) as client:
            n = index
            while not self._done.is_set() and time.monotonic() < self.deadline:
                with self._lock:
                    if self.requests >= self.max_requests:
                        return
                    self.requests += 1
                n += 1
                try:
                    if n % 2:
                        answer = client.post("/v1/chat/completions", json=chat)
                        ok = answer.status_code == 200 and "LB-OK" in answer.text
                    else:
                        answer = client.post("/v1/embeddings", json=embed)
                        ok = answer.status_code == 200
                    why = f"HTTP {answer.status_code}: {answer.text[:160]}"
                except httpx.HTTPError as error:
                    ok, why = False, f"{type(error).__name__}: {error}"
                if not ok:
                    with self._lock:
                        self.errors += 1
                        self.samples.append(f"{time.strftime('%H:%M:%S')} {why}")
                self._done.wait(0.3)  # paced: ~10 requests/s, so the loop lasts the whole rollout


# --- the module's fleet ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateways(fleet_machines) -> list[str]:
    """Three running gateways (the shared one first, plus extra machines) and hx-lb, deployed once."""
    running = [m.name for m in fleet.load_machines() if m.role == "gateway" and fleet.pid_alive(m.pid)]
    if len(running) < 3:
        running += [m.name for m in fleet.add_gateways(3 - len(running))]
    fleet.add_loadbalancer()
    GATEWAYS[:] = running[:3]
    limits = [arg for name in [*GATEWAYS, LB] for arg in ("--limit", name)]
    result = helpers.pyinfra(*limits, env={"MASTER_KEY": KEY})  # in parallel
    assert result.returncode == 0, f"the module's first deploy failed:\n{result.output[-4000:]}"
    wait_all_up(GATEWAYS)
    yield list(GATEWAYS)
    for name in [*GATEWAYS, LB, *fleet.BACKENDS]:  # whatever a test here left off comes back on
        if not fleet.pid_alive(fleet.find(name).pid):
            fleet.power_on(name)


# --- the faults ----------------------------------------------------------------------------------


def haproxy_reloads() -> int:
    return int(helpers.ssh(LB, "journalctl -u haproxy.service -o cat | grep -c '^Reloaded' || true").strip())


def test_the_load_balancer_is_idempotent_and_checks_a_config_before_reloading(gateways):
    config = "/etc/haproxy/haproxy.cfg"
    before = (
        helpers.ssh(LB, f"sha256sum {config}"),
        helpers.ssh(LB, "systemctl show -p MainPID --value haproxy"),
    )
    for server in gateways:
        assert f"server {server} {fleet.find(server).address}:4000" in helpers.ssh(LB, f"cat {config}")
    reloads = haproxy_reloads()
    again = helpers.pyinfra("--limit", LB)
    assert again.returncode == 0 and again.changed(LB) == [], again.output[-3000:]

    bad = helpers.pyinfra("--limit", LB, "--data", "lb_check_interval_ms=abc")  # a value HAProxy refuses
    assert bad.returncode != 0
    assert "haproxy -c refused the new config; the live one is unchanged" in bad.output
    assert (
        helpers.ssh(LB, f"sha256sum {config}"),
        helpers.ssh(LB, "systemctl show -p MainPID --value haproxy"),
    ) == before
    assert haproxy_reloads() == reloads and ready(LB)

    back = helpers.pyinfra("--limit", LB)  # only the candidate goes back: the live config was right
    assert back.returncode == 0
    assert back.changed(LB) == ["tasks/loadbalancer.py | Render the HAProxy config (candidate)"]
    assert haproxy_reloads() == reloads


def test_a_change_that_fails_validation_rolls_the_canary_back(gateways, tmp_path):
    canary = gateways[0]
    # Starts fine, but the model's tag is not on its backend: the validation's chat check fails.
    typo = group_data(
        tmp_path,
        """
        models = _base.models + [
            {"name": "llm02-typo", "backend": "llm-02", "model": "dolphin3:7b", "mode": "chat"}
        ]
        """,
    )
    before = {n: (config_sha(n), helpers.main_pid(n)) for n in gateways}
    result = rollout("--group-data", typo)
    assert result.returncode == 1, result.output[-4000:]
    assert result.status(canary) == "rolled back"
    assert "llm02-typo: chat failed: HTTP 404" in result.row(canary)
    assert all(result.status(n) == "skipped" for n in gateways[1:])
    assert config_sha(canary) == before[canary][0] and ready(canary)
    assert "llm02-typo" not in served_models(canary)
    for name in gateways[1:]:
        assert (config_sha(name), helpers.main_pid(name)) == before[name]
    # Validation run alone never rolls back, even when it fails: it restarted nothing.
    pid = helpers.main_pid(canary)
    alone = helpers.pyinfra(
        "--limit", canary, "--group-data", typo, deploy="tasks/validate.py", env={"MASTER_KEY": KEY}
    )
    assert alone.returncode != 0
    assert "Rolling back" not in alone.output and "ROLLED BACK" not in alone.output
    assert helpers.main_pid(canary) == pid


def test_fault1_a_change_litellm_rejects_rolls_the_canary_back_and_spares_the_others(gateways, tmp_path):
    canary, others = gateways[0], gateways[1:]
    # Passes the deploy's data checks (plain text under a known Router() key: whether a routing
    # plugin's module can be imported is the host's business), but LiteLLM exits at start-up.
    bad = group_data(
        tmp_path, 'router_settings = {**_base.router_settings, "plugins": ["hx_missing_plugin.Plugin"]}\n'
    )
    before = {n: (config_sha(n), helpers.main_pid(n)) for n in gateways}

    result = rollout("--group-data", bad)

    assert result.returncode == 1, result.output[-4000:]
    assert result.status(canary) == "rolled back"
    assert "hx_missing_plugin" in result.row(canary)  # the cause, named
    for name in others:
        assert result.status(name) == "skipped"
        assert f"the rollout stopped at {canary}" in result.row(name)
        assert (config_sha(name), helpers.main_pid(name)) == before[name]  # never touched
    # The canary serves the old release again, and is back in the LB's rotation.
    assert config_sha(canary) == before[canary][0]
    assert ready(canary)
    assert helpers.main_pid(canary) != before[canary][1]
    wait_all_up(gateways)


def test_fault2_a_backend_down_during_the_rollout_completes_degraded(gateways):
    fleet.power_off("llm-02")
    try:
        result = rollout("--batch-size", "2")
    finally:
        fleet.power_on("llm-02")
        for name in gateways:
            for model in ("llm02-phi3", "llm02-gemma2-2b"):
                wait_served(name, model)
    assert result.returncode == 0, result.output[-4000:]
    for name in gateways:
        assert result.status(name) == "unchanged"
        assert "degraded:" in result.row(name) and "llm02-" in result.row(name)
    assert "failed: 0, unreachable: 0, skipped: 0" in result.output


def test_fault3_a_dead_gateway_is_reported_and_the_others_are_deployed(gateways):
    dead = gateways[0]  # the first gateway: the next reachable one becomes the canary
    fleet.power_off(dead)
    try:
        result = rollout("--batch-size", "2")
    finally:
        fleet.power_on(dead)
    assert result.returncode == 1, result.output[-4000:]
    assert result.status(dead) == "unreachable"
    assert "canary" in result.row(gateways[1])
    for name in gateways[1:]:
        assert result.status(name) == "unchanged"  # deployed and validated; nothing to change
    # Powered on again, the gateway comes back by itself (enabled); fault 4 waits for it to be
    # ready along with its own, so the two start-ups overlap.
    assert helpers.ssh(dead, f"systemctl is-enabled {helpers.UNIT}").strip() == "enabled"


def test_fault4_sigkill_and_reboot_bring_the_gateway_back(gateways):
    killed, rebooted = gateways[1], gateways[2]
    pid = helpers.main_pid(killed)
    restarts = int(helpers.ssh(killed, f"systemctl show -p NRestarts --value {helpers.UNIT}"))
    helpers.ssh(killed, f"kill -KILL {pid}")
    fleet.power_off(rebooted)
    fleet.power_on(rebooted)  # returns once systemd runs; the gateway starts on its own
    wait_ready(killed)
    wait_ready(rebooted)
    for name in gateways:  # and the one fault 3 powered off and on
        wait_ready(name)
    assert helpers.main_pid(killed) != pid
    assert int(helpers.ssh(killed, f"systemctl show -p NRestarts --value {helpers.UNIT}")) == restarts + 1
    assert helpers.ssh(rebooted, f"systemctl is-active {helpers.UNIT}").strip() == "active"
    assert helpers.ssh(rebooted, f"systemctl is-enabled {helpers.UNIT}").strip() == "enabled"
    wait_all_up(gateways)


def test_fault6_a_rolling_restart_under_load_through_the_lb_fails_no_request(gateways, tmp_path):
    change = with_extra_model(tmp_path)
    assert EXTRA_MODEL not in served_models(gateways[0]), "the fleet must start on the repository's catalogue"
    pids = {n: helpers.main_pid(n) for n in gateways}
    shas = {n: config_sha(n) for n in gateways}
    dry = rollout("--dry", "--group-data", change)  # every host's change, with diffs; changes nothing
    assert dry.returncode == 0, dry.output[-3000:]
    for name in gateways:
        assert f"=== {name} (" in dry.output
    assert dry.output.count("restarts the gateway (drained from the load balancer first)") == len(gateways)
    assert dry.output.count(f'+   - model_name: "{EXTRA_MODEL}"') == len(gateways)
    assert {n: (config_sha(n), helpers.main_pid(n)) for n in gateways} == {
        n: (shas[n], pids[n]) for n in gateways
    }
    with ClientLoop(url(LB)) as loop:
        time.sleep(2)
        result = rollout("--group-data", change)
        covered = loop.running  # the clients kept going until the last gateway was back
        time.sleep(2)
        requests, errors, samples = loop.stop()
    ready_seconds = {}
    for name in gateways:
        found = re.search(r"\s(\d+\.\d) s\s", result.row(name) + " ")
        ready_seconds[name] = float(found.group(1)) if found else None
    figures = {
        "requests": requests,
        "errors": errors,
        "restart_to_ready_s": ready_seconds,
        "rollout_s": round(result.seconds, 1),
        "loop_covered_the_rollout": covered,
    }
    print(f"fault 6 figures: {json.dumps(figures)}")
    (helpers.REPO / "reports").mkdir(exist_ok=True)
    (helpers.REPO / "reports" / "rollout-fault6.json").write_text(json.dumps(figures, indent=2) + "\n")

    assert result.returncode == 0, result.output[-4000:]
    for name in gateways:
        assert result.status(name) == "updated"
        assert helpers.main_pid(name) != pids[name]  # each one restarted
        assert EXTRA_MODEL in served_models(name)
    assert requests >= 100 and covered, figures
    assert errors == 0, f"{errors} failed requests of {requests}: {samples[:5]}"
    wait_all_up(gateways)


def children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(proc.name))
            except (OSError, ValueError, IndexError):
                pass
    return found


def test_fault5_an_interrupted_rollout_converges_on_the_next_run(gateways, tmp_path):
    canary = gateways[0]
    start_sha = config_sha(canary)
    # After fault 6 the fleet serves the extra model: going back to the repository's catalogue
    # changes config.yaml, so every gateway restarts. Run alone, the module goes the other way.
    extra_now = EXTRA_MODEL in served_models(canary)
    target = [] if extra_now else ["--group-data", with_extra_model(tmp_path)]
    proc = subprocess.Popen(
        rollout_cmd(*target),
        cwd=helpers.REPO,
        env=rollout_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    pyinfra_pids: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while config_sha(canary) == start_sha:  # kill it right after it rewrote the canary's config
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
    time.sleep(1)
    assert pyinfra_pids and not [p for p in pyinfra_pids if fleet.pid_alive(p)]

    # The kill lands right after the config write, so the canary is usually still drained; under
    # load the killed run can get as far as putting it back. Expect the message when it was drained.
    left_drained = any(s in lb_servers().get(canary, {}).get("status", "") for s in ("DRAIN", "MAINT"))
    result = rollout("--batch-size", "2", *target)
    assert result.returncode == 0, result.output[-4000:]
    if left_drained:
        assert f"{canary}: found drained on the load balancer" in result.output  # and put back below
    for name in gateways:
        assert result.status(name) in ("updated", "unchanged")
        assert (EXTRA_MODEL in served_models(name)) is not extra_now
    assert len({config_sha(n) for n in gateways}) == 1
    servers = wait_all_up(gateways)  # none left drained by the killed rollout
    assert all(servers[n]["status"] == "UP" for n in gateways)
    if target:  # run alone: back to the repository's catalogue, as the module found the fleet
        assert rollout("--batch-size", "2").returncode == 0
