"""Failover across a fleet that shares its router state in Redis (README "Failover", issue #13):
the session's rollout fleet (three gateways behind hx-lb) on the deploy's default serving (one
LiteLLM worker per CPU: 2 per gateway here) and on hx-cache's Redis, as a user runs it with a
`caches` group; clients are `openai` clients through the load balancer, without retries.

- A member slower than its timeout: every request succeeds, the slow member is left.
- A backend failing every request: every request succeeds, and the fleet stops sending to it
  after its members' allowed failures counted ONCE for the fleet (in Redis), not once per worker.
  Then Redis stops: the gateways keep serving, the validation says degraded, and all is well again
  when Redis is back; a wrong Redis password is refused before any restart.
- The clients' keys on this fleet (tests/e2e/fleet_clients.py, collected here to share the fleet):
  what clients see, limits counted once for the fleet, a rotation under traffic.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from pathlib import Path

import openai
import pytest
import yaml
from openai import OpenAI

from testbed import cache, fleet
from tests.e2e import fleet_clients, helpers, rollout_support
from tests.e2e.fleet_clients import (  # noqa: F401 - collected in this module, on its fleet
    test_a_clients_limit_is_counted_once_for_the_whole_fleet,
    test_a_key_rotation_under_traffic_fails_no_request_and_revocation_is_one_line,
    test_clients_see_their_models_and_openais_refusals,
    test_the_master_key_can_be_the_operators_only,
)

GROUP = "hx-chat"
FAILING, SLOW = "llm-02", "llm-01"  # llm-02 holds 2 of hx-chat's 3 members, llm-01 the third
SLOW_MODEL, SLOW_TIMEOUT_S, SLOW_LATENCY_MS = "llm01-llama3.2-3b", 2, 6000
CLIENTS = 4
PROMPT = [{"role": "user", "content": helpers.HX_OK}]
WARM_UP_S, WINDOW_S = 4, 12  # the window stays under the 30 s cooldown: no member comes back in it
COOLDOWN_S = 30  # group_data router_settings cooldown_time


@pytest.fixture(scope="module")
def fleet_on_redis(rollout_fleet, tmp_path_factory):
    """hx-cache in the fleet and the rollout fleet's three gateways deployed onto its Redis with
    the default serving, on the repository's catalogue but for one change: hx-chat's member on
    llm-01 gets a 2 s `timeout` (the default, 60 s, would make the slow-member test minutes long).
    Afterwards hx-cache is gone and the gateways are back as the rollout tests expect them (the
    repository's catalogue, their own memory, one worker)."""
    rf = rollout_fleet
    rollout_support.make_healthy(rf)
    short = helpers.group_data(
        tmp_path_factory.mktemp("group_data"),
        f"""
        models = [dict(m, timeout={SLOW_TIMEOUT_S}) if m["name"] == {SLOW_MODEL!r} else m for m in _base.models]
        {fleet_clients.GROUP_DATA}
        """,
    )
    fleet_clients.make_keys()
    cache_host = cache.add_cache().name
    limits = [arg for name in [*rf.gateways, cache_host] for arg in ("--limit", name)]
    env = {"MASTER_KEY": rf.key, **helpers.DEFAULT_SERVING}
    result = helpers.pyinfra(*limits, "--group-data", short, env=env)
    assert result.returncode == 0, f"deploying the fleet onto Redis failed:\n{result.output[-4000:]}"
    rollout_support.wait_all_up(rf.gateways)
    yield rf, cache_host, short
    for backend in (FAILING, SLOW):
        helpers.backend(backend, "POST", "/_fault", {"reset": True})
    fleet.remove_machine(cache_host)
    limits = [arg for name in rf.gateways for arg in ("--limit", name)]
    result = helpers.pyinfra(*limits, env={"MASTER_KEY": rf.key})
    assert result.returncode == 0, f"putting the rollout fleet back failed:\n{result.output[-4000:]}"
    rollout_support.wait_all_up(rf.gateways)


def lb_client(key: str) -> OpenAI:
    url = f"http://{fleet.find(rollout_support.LB).address}:4000/v1"
    return OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60)


def answers(client: OpenAI, count: int) -> list[str]:
    return [
        client.chat.completions.create(model=GROUP, messages=PROMPT, temperature=0).choices[0].message.content
        for _ in range(count)
    ]


def until_in_rotation(key: str, *backends: str) -> None:
    """Group requests until each backend got one: none of its members is cooling down (after an
    earlier test took it away, that lasts up to the cooldown; with Redis, for the whole fleet)."""
    client, deadline = lb_client(key), time.monotonic() + COOLDOWN_S + 60  # a bound on a hang
    for backend in backends:
        # The fake counts a request when it has answered it: requests still queued behind a slow
        # one would be counted later, and look like new traffic. Count from an idle backend.
        while (idle := helpers.backend(backend, "GET", "/_stats"))["running"] or idle["waiting"]:
            assert time.monotonic() < deadline, f"{backend} never became idle: {idle}"
            time.sleep(0.2)
        before = helpers.chats_reaching(backend)
        while helpers.chats_reaching(backend) == before:
            assert time.monotonic() < deadline, f"no request reached {backend} (again)"
            assert answers(client, 3) == ["HX-OK"] * 3
            time.sleep(0.5)


def router_facts(gateway: str) -> tuple[int, int]:
    """From the deployed config.yaml: how many of the group's members are on the failing backend,
    and how many failures of a backend's 500 the router allows a member before its cooldown."""
    config = yaml.safe_load(helpers.ssh(gateway, f"cat {helpers.CONFIG}"))
    address = fleet.find(FAILING).address
    members = [
        m
        for m in config["model_list"]
        if m["model_name"] == GROUP and address in m["litellm_params"]["api_base"]
    ]
    allowed = config["router_settings"]["allowed_fails_policy"]["InternalServerErrorAllowedFails"]
    return len(members), allowed


def redis_cli(cache_host: str, command: str) -> str:
    auth = "export REDISCLI_AUTH=$(sed -n 's/^requirepass //p' /etc/redis/hx-redis-secret.conf);"
    cli = f"redis-cli --no-auth-warning -h {fleet.find(cache_host).address}"
    return helpers.ssh(cache_host, f"{auth} {command.replace('CLI', cli)}")


def redis_counters(cache_host: str) -> dict[str, int]:
    """The router's fail counters in Redis (`deployment:<id>:allowed_fails...`), with their values."""
    out = redis_cli(
        cache_host,
        "for k in $(CLI --scan --pattern 'deployment:*:allowed_fails*'); do echo $k $(CLI get $k); done",
    )
    return {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if line.strip()}


def shared_state_check(gateway: str, group_data: str, report: Path) -> dict:
    """tasks/validate.py alone against one gateway; its shared-state record."""
    result = helpers.pyinfra(
        "--limit", gateway, "--group-data", group_data, "--data", f"validation_report={report}",
        deploy="tasks/validate.py",
    )  # fmt: skip
    assert result.returncode == 0, result.output[-3000:]  # Redis trouble never fails the validation
    return next(c for c in json.loads(report.read_text())["checks"] if c["check"] == "shared-state")


class GroupTraffic:
    """CLIENTS clients asking the group through hx-lb until stopped; results as (ok, why, seconds)."""

    def __init__(self, key: str):
        self.client = lb_client(key)
        self.results: list[tuple[bool, str, float]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(CLIENTS)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                answer = self.client.chat.completions.create(model=GROUP, messages=PROMPT, temperature=0)
                text = answer.choices[0].message.content or ""
                ok, why = text == "HX-OK", text
            except openai.APIError as error:
                ok, why = False, f"{type(error).__name__}: {error}"[:200]
            self.results.append((ok, why, time.monotonic() - started))

    def during_fault(self, backend: str, knobs: dict) -> tuple[list, int]:
        """After the warm-up, set the backend's fault and zero its counts; WINDOW_S later, the
        results of that window and how many requests reached the backend in it."""
        time.sleep(WARM_UP_S)
        before = len(self.results)
        helpers.backend(backend, "POST", "/_fault", knobs)
        helpers.backend(backend, "DELETE", "/_stats")
        time.sleep(WINDOW_S)
        stats = helpers.backend(backend, "GET", "/_stats")  # answered, plus those still running or queued
        reached = (
            stats.get("paths", {}).get("/api/chat", 0) + sum(stats["running"].values()) + stats["waiting"]
        )
        return self.results[before:], reached


def summary(during: list, reached: int, backend: str) -> str:
    failed = sum(not ok for ok, *_ in during)
    worst = max(t for *_, t in during)
    return f"{len(during) - failed}/{len(during)} group requests succeeded in {WINDOW_S} s, worst {worst:.2f} s; {reached} reached {backend}"


def test_a_member_slower_than_its_timeout_is_left_and_every_request_succeeds(fleet_on_redis):
    rf, _, _ = fleet_on_redis
    until_in_rotation(rf.key, SLOW, FAILING)
    with GroupTraffic(rf.key) as traffic:
        during, reached = traffic.during_fault(SLOW, {"latency_ms": SLOW_LATENCY_MS})
    helpers.backend(SLOW, "POST", "/_fault", {"reset": True})
    print(summary(during, reached, f"{SLOW}, answering after {SLOW_LATENCY_MS} ms"))  # pytest -rP
    failed = [why for ok, why, _ in during if not ok]
    assert len(during) > 50 and not failed, f"{len(failed)} of {len(during)} failed: {failed[:3]}"
    # Requests that picked the slow member waited out its timeout, then the failover answered.
    assert reached > 0, f"no request reached the slow {SLOW}: the fault was never in the way"


def test_a_failing_backend_is_left_after_the_fleets_allowed_fails_then_redis_may_stop(
    fleet_on_redis, tmp_path
):
    rf, cache_host, short = fleet_on_redis
    workers = {name: helpers.workers_in_unit(name) for name in rf.gateways}
    assert all(n >= 2 for n in workers.values()), workers  # the default serving on these hosts
    members, allowed = router_facts(helpers.GATEWAY)
    assert members >= 1, f"no {GROUP} member on {FAILING}"
    until_in_rotation(rf.key, SLOW, FAILING)
    redis_cli(cache_host, "CLI --scan --pattern 'deployment:*' | xargs -r CLI del")  # earlier tests' counts

    with GroupTraffic(rf.key) as traffic:
        during, reached = traffic.during_fault(FAILING, {"error_rate": 1.0})
    counters = redis_counters(cache_host)
    memory = redis_cli(cache_host, "CLI info memory").split("used_memory_human:", 1)[-1].split()[0]
    # Without shared state every worker needs `allowed` + 1 failures of each member before it stops
    # sending to it: that many requests at least would reach the backend (measured: ~100 for 6
    # workers; with Redis ~20: README "Failover").
    per_worker_floor = sum(workers.values()) * members * (allowed + 1)
    print(
        f"{summary(during, reached, FAILING)} (per-worker floor {per_worker_floor}); Redis counters {counters}"
    )
    print(f"Redis on {cache_host}: used_memory {memory} with the fleet's router state")
    failed = [why for ok, why, _ in during if not ok]
    assert len(during) > 100 and not failed, f"{len(failed)} of {len(during)} failed: {failed[:3]}"
    # Every member on the failing backend was counted in Redis, once for the whole fleet.
    assert len(counters) >= members and all(v > allowed for v in counters.values()), counters
    assert 0 < reached < per_worker_floor, (
        f"{reached} requests reached the failing {FAILING}; without shared state at least {per_worker_floor} "
        f"would ({sum(workers.values())} workers x {members} members x {allowed + 1} failures)"
    )

    # Redis stops while llm-02 is powered off (as in the single-gateway tests, the validation
    # reports an unreachable backend as degraded): the gateways serve from their own memory.
    helpers.backend(FAILING, "POST", "/_fault", {"reset": True})
    client = lb_client(rf.key)
    fleet.power_off(FAILING)
    try:
        helpers.ssh(cache_host, "systemctl stop redis-server")
        texts, worst = [], 0.0
        for _ in range(20):
            started = time.monotonic()
            texts += answers(client, 1)
            worst = max(worst, time.monotonic() - started)
        print(f"Redis stopped: {texts.count('HX-OK')}/20 group requests succeeded, worst {worst:.2f} s")
        assert texts == ["HX-OK"] * 20
        degraded = shared_state_check(helpers.GATEWAY, short, tmp_path / "degraded.json")
        assert degraded["status"] == "degraded" and "cannot be reached" in degraded["detail"], degraded
        helpers.ssh(cache_host, "systemctl start redis-server")
        assert answers(client, 10) == ["HX-OK"] * 10
        assert shared_state_check(helpers.GATEWAY, short, tmp_path / "back.json")["status"] == "pass"
    finally:
        fleet.power_on(FAILING)

    # A Redis password the cache host does not have: refused before the gateway restarts onto it.
    pid = helpers.main_pid(helpers.GATEWAY)
    env = {"MASTER_KEY": rf.key, **helpers.DEFAULT_SERVING, "REDIS_PASSWORD": secrets.token_urlsafe(32)}
    wrong = helpers.pyinfra("--limit", helpers.GATEWAY, "--group-data", short, env=env)
    assert wrong.returncode == 1, wrong.output[-3000:]
    assert "refused the gateway's Redis password (-WRONGPASS); the gateway was not restarted" in wrong.output
    assert helpers.main_pid(helpers.GATEWAY) == pid
