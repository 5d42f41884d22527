"""Helpers for the rollout's end-to-end tests: run `python -m rollout` on the session's rollout
fleet (conftest.rollout_fleet: three gateways and hx-lb), read its report, watch HAProxy, and
put the fleet back in the state every rollout test starts from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from testbed import fleet
from tests.e2e import helpers

LB = fleet.LOADBALANCER[0]
EXTRA_MODEL = "llm02-dolphin3"


@dataclass
class RolloutFleet:
    gateways: list[str]
    key: str  # the master key every gateway of the rollout fleet serves with
    baseline_sha: str  # config.yaml of the repository's catalogue on these gateways


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
    """The operator's environment: no MASTER_KEY (the fleet's key is the kept one), no FORCE."""
    return {k: v for k, v in os.environ.items() if k not in ("MASTER_KEY", "FORCE")}


def rollout_cmd(rf: RolloutFleet, *args: str) -> list[str]:
    # Limited to the rollout fleet's gateways: other modules leave machines of their own.
    limits = [arg for name in rf.gateways for arg in ("--limit", name)]
    return [sys.executable, "-m", "rollout", helpers.INVENTORY, *limits, *args]


def rollout(rf: RolloutFleet, *args: str, timeout: float = 900) -> RolloutResult:
    started = time.monotonic()
    proc = subprocess.run(
        rollout_cmd(rf, *args),
        cwd=helpers.REPO,
        env=rollout_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return RolloutResult(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started)


def config_sha(name: str) -> str:
    return helpers.ssh(name, f"sha256sum {helpers.CONFIG}").split()[0]


def lb_servers() -> dict:
    return json.loads(helpers.ssh(LB, "hx-lb-ctl state hx_gateways"))


def lb_control(action: str, *servers: str) -> dict:
    out = helpers.ssh(LB, f"hx-lb-ctl {action} hx_gateways {' '.join(servers)} --timeout 60", check=False)
    return json.loads(out.strip().splitlines()[-1])


def lb_set_state(server: str, state: str) -> None:
    """`set server hx_gateways/SERVER state STATE` on HAProxy's runtime API, through hx-lb-ctl's
    own socket client on the LB (it has no socat)."""
    code = (
        "import importlib.machinery as m; "
        "c = m.SourceFileLoader('c', '/usr/local/sbin/hx-lb-ctl').load_module(); "
        f"print(c.command('set server hx_gateways/{server} state {state}'), end='')"
    )
    answer = helpers.ssh(LB, f'python3 -c "{code}"')
    assert answer.strip() == "", answer


def wait_all_up(names: list[str], timeout: float = 90) -> dict:
    """Until HAProxy has every gateway UP (a bound on a hang, not a speed claim)."""
    deadline = time.monotonic() + timeout
    while True:
        servers = lb_servers()
        if all(servers.get(n, {}).get("status") == "UP" for n in names):
            return servers
        assert time.monotonic() < deadline, f"not every gateway is UP on {LB}: {servers}"
        time.sleep(0.5)


# A stand-in for an HAProxy that refuses every new config: `haproxy -c` fails, anything else runs
# the real binary. The deploy's own checks refuse the values HAProxy would, so this is how the
# safety net behind them (check before install, no reload) is driven.
_REFUSING_HAPROXY = """#!/bin/sh
for arg; do [ "$arg" = -c ] && { echo '[ALERT] (stand-in) configuration refused' >&2; exit 1; }; done
exec /usr/sbin/haproxy.hx-real "$@"
"""


@contextmanager
def haproxy_refusing_configs():
    helpers.ssh(LB, "mv /usr/sbin/haproxy /usr/sbin/haproxy.hx-real")
    try:
        helpers.ssh(
            LB, f"cat > /usr/sbin/haproxy <<'EOF'\n{_REFUSING_HAPROXY}EOF\nchmod 755 /usr/sbin/haproxy"
        )
        yield
    finally:
        helpers.ssh(LB, "mv -f /usr/sbin/haproxy.hx-real /usr/sbin/haproxy")


def haproxy_reloads() -> int:
    return int(helpers.ssh(LB, "journalctl -u haproxy.service -o cat | grep -c '^Reloaded' || true").strip())


def power_on_everything(rf: RolloutFleet) -> bool:
    """Every machine of the rollout fleet and every backend on; True if a backend had been off."""
    backend_was_off = False
    for name in [*rf.gateways, LB, *fleet.BACKENDS]:
        if not fleet.pid_alive(fleet.find(name).pid):
            fleet.power_on(name)
            backend_was_off = backend_was_off or name in fleet.BACKENDS
    return backend_was_off


def make_healthy(rf: RolloutFleet) -> None:
    """The state every rollout test starts from: every machine on, each gateway serving the
    repository's catalogue with the fleet's key, every gateway UP on the load balancer. Cheap
    when the fleet is already so: one SSH command per gateway and one to the LB."""
    must_serve_again = power_on_everything(rf)
    for name in rf.gateways:
        helpers.wait_ready(name)
    if any(config_sha(n) != rf.baseline_sha for n in rf.gateways):
        result = rollout(rf, "--batch-size", str(len(rf.gateways)))
        assert result.returncode == 0, f"could not put the rollout fleet back:\n{result.output[-4000:]}"
        must_serve_again = True
    if must_serve_again:
        for name in rf.gateways:
            helpers.wait_served(name, "llm02-phi3", key=rf.key)
    not_up = [n for n, s in lb_servers().items() if n in rf.gateways and s["status"] != "UP"]
    if not_up:
        lb_control("ready", *not_up)
        wait_all_up(rf.gateways)


def leave_shared_gateway_as_found(rf: RolloutFleet) -> None:
    """After a rollout test: machines on, and the session's shared gateway (the rollout's canary)
    back on the repository's catalogue if the test changed it, for the other modules."""
    if power_on_everything(rf):
        helpers.wait_served(helpers.GATEWAY, "llm02-phi3", key=rf.key)
    helpers.wait_ready(helpers.GATEWAY)
    if config_sha(helpers.GATEWAY) != rf.baseline_sha:
        helpers.redeploy(helpers.GATEWAY)


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


class ClientLoop:
    """A few concurrent clients calling chat and embeddings through the load balancer until
    stop(), which returns (requests, errors, first errors). Paced at ~10 requests/s; no time or
    count bound, so a slow rollout is covered as fully as a fast one."""

    def __init__(self, base_url: str, key: str, clients: int = 4):
        self.base_url, self.key, self.clients = base_url, key, clients
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

    def count(self) -> int:
        with self._lock:
            return self.requests

    def wait_for_requests(self, more: int, timeout: float = 120) -> None:
        """Until `more` further requests have been answered (or failed)."""
        target, deadline = self.count() + more, time.monotonic() + timeout
        while self.count() < target:
            assert time.monotonic() < deadline, f"the client loop sent fewer than {more} requests"
            time.sleep(0.2)

    def stop(self):
        self._done.set()
        for thread in self._threads:
            thread.join(timeout=90)
        return self.requests, self.errors, self.samples

    def _client(self, index: int) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        chat = {
            "model": "llm01-llama3.2-3b",
            "messages": [{"role": "user", "content": "Return exactly the text: LB-OK"}],
            "max_tokens": 5,
        }
        embed = {"model": "emb-light", "input": "through the load balancer"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=60, trust_env=False) as client:
            n = index
            while not self._done.is_set():
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
                with self._lock:
                    self.requests += 1
                    if not ok:
                        self.errors += 1
                        self.samples.append(f"{time.strftime('%H:%M:%S')} {why}")
                self._done.wait(0.3)


ODD_KEY = "sk-" + "Zy8_wQ3-nB6vC1xM4kL7jH2gF9dS5aP0oIu"  # a key the fleet does not hold


@contextmanager
def odd_key_on_last_gateway(rf: RolloutFleet, serving: bool = False):
    """The last gateway's env file holds ODD_KEY (`serving`: and it restarted onto it); yields
    (gateway, key). Afterwards its own file is back, and it serves the fleet's key again."""
    odd = rf.gateways[-1]
    pid = helpers.main_pid(odd)
    helpers.ssh(odd, f"cp -p {helpers.ENV_FILE} /root/gateway.env.hx-test")
    try:
        helpers.ssh(odd, f"printf 'LITELLM_MASTER_KEY=%s\\n' {ODD_KEY} > {helpers.ENV_FILE}")
        if serving:
            helpers.ssh(odd, f"systemctl restart {helpers.UNIT}")
            helpers.wait_ready(odd)
            wait_all_up(rf.gateways)
        yield odd, ODD_KEY
    finally:
        helpers.ssh(odd, f"mv -f /root/gateway.env.hx-test {helpers.ENV_FILE}")
        if helpers.main_pid(odd) != pid:
            helpers.ssh(odd, f"systemctl restart {helpers.UNIT}")
            helpers.wait_served(odd, "llm02-phi3", key=rf.key)
            wait_all_up(rf.gateways)
