"""Failover across a fleet that shares its router state in Redis (README "Failover", issue #13):
the session's rollout fleet (three gateways behind hx-lb) on the deploy's default serving (one
LiteLLM worker per CPU: 2 per gateway here) and on hx-cache's Redis, as a user runs it with a
`caches` group; clients are `openai` clients through the load balancer, without retries.

- A slow member under more load than it serves (Ollama queues without limit): requests wait out
  its timeout, fail over, and it cools down fleet-wide, then returns by itself.
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
    test_clients_see_their_models_and_openais_refusals,
    test_the_master_key_can_be_the_operators_only,
)

GROUP = "hx-chat"
FAILING, SLOW = "llm-02", "llm-01"  # llm-02 holds 2 of hx-chat's 3 members, llm-01 the third
SLOW_MODEL, SLOW_TIMEOUT_S = "llm01-llama3.2-3b", 2
CLIENTS = 4
PROMPT = [{"role": "user", "content": helpers.HX_OK}]
COOLDOWN_S = 30  # group_data router_settings cooldown_time
# The overload: one request at a time (OLLAMA_NUM_PARALLEL 1), each 0.5 s, for more clients than
# that serves within the member's 2 s timeout (a third of 8 clients' requests pick it).
OVERLOAD_CLIENTS, OVERLOAD_ANSWER_MS = 8, 500


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
    env = helpers.DEFAULT_SERVING
    result = helpers.pyinfra(*limits, "--group-data", short, env=env)
    assert result.returncode == 0, f"deploying the fleet onto Redis failed:\n{result.output[-4000:]}"
    rollout_support.wait_all_up(rf.gateways)
    yield rf, cache_host, short
    for backend in (FAILING, SLOW):
        helpers.backend(backend, "POST", "/_fault", {"reset": True})
    fleet.remove_machine(cache_host)
    limits = [arg for name in rf.gateways for arg in ("--limit", name)]
    result = helpers.pyinfra(*limits)
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
    """`clients` clients asking the group through hx-lb until stopped; results as (ok, why, seconds)."""

    def __init__(self, key: str, clients: int = CLIENTS):
        self.client = lb_client(key)
        self.results: list[tuple[bool, str, float]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(clients)]

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

    def during_fault(self, backend: str, knobs: dict, cooled, timeout: float = 60) -> tuple[list, int]:
        """Once every client has answered twice, set the backend's fault and zero its counts;
        then until `cooled()` (the router's cooldowns in force) and the backend receives nothing
        more, the results of that window and how many requests reached the backend in it."""
        poll("the clients warmed up", lambda: len(self.results) >= 2 * len(self._threads), 60)
        before = len(self.results)
        helpers.backend(backend, "POST", "/_fault", knobs)
        helpers.backend(backend, "DELETE", "/_stats")
        poll("the failing member cooling down", cooled, timeout)
        received = lambda: sum(helpers.backend(backend, "GET", "/_stats")["received"].values())  # noqa: E731
        # Every worker re-reads the cooldowns from Redis each second (LiteLLM's
        # DEFAULT_COOLDOWN_REDIS_READ_INTERVAL_SECONDS): then nothing more arrives.
        last = [-1]
        poll(f"{backend} receiving nothing more", lambda: _unchanged(last, received()), 20, every=1.1)
        return self.results[before:], received()


def _unchanged(last: list, now: int) -> bool:
    same, last[0] = last[0] == now, now
    return same


def summary(during: list, reached: int, backend: str) -> str:
    failed = sum(not ok for ok, *_ in during)
    worst = max(t for *_, t in during)
    return f"{len(during) - failed}/{len(during)} group requests succeeded, worst {worst:.2f} s; {reached} reached {backend}"


def cooldown_keys(cache_host: str) -> dict[str, int]:
    """The router's cooldowns in Redis (cooldown_cache.py: `deployment:<id>:cooldown`, set with a
    TTL of cooldown_time): key -> milliseconds left."""
    out = redis_cli(
        cache_host,
        "for k in $(CLI --scan --pattern 'deployment:*:cooldown'); do echo $k $(CLI pttl $k); done",
    )
    return {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if line.strip()}


def poll(what: str, condition, timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"never happened within {timeout:.0f} s: {what}"
        time.sleep(every)
    return found


def test_an_overloaded_member_times_out_cools_down_fleet_wide_and_returns(fleet_on_redis):
    """Ollama under load: a slow backend with more clients than it answers queues every request
    on its model's slot, without limit and without an error (server/sched.go useLoadedRunner,
    llm/server.go s.sem.Acquire; testbed/ollama_load.py). What LiteLLM 1.108.7 then decides:
    - timeouts: the member's `timeout` (2 s here) is the httpx timeout of its call
      (router.py _get_timeout), so a request that waits longer raises litellm.Timeout (408) and
      its connection closes (Ollama then drops it from the queue, as the fake does: 499);
    - retries: retry_policy TimeoutErrorRetries 0 (router.py get_num_retries_from_retry_policy),
      and enable_weighted_failover re-picks another member for that request at once;
    - cooldown: a 408 needs a cooldown (cooldown_handlers.py _is_cooldown_required), counted
      against allowed_fails_policy TimeoutErrorAllowedFails 3 in Redis, fleet-wide
      (should_cooldown_based_on_allowed_fails_policy); the 4th timeout sets
      `deployment:<id>:cooldown` with a TTL of cooldown_time 30 s (cooldown_cache.py
      add_deployment_to_cooldown), which every worker reads from Redis at least every second;
    - return: once the key expires the member is picked again, with nothing else to do.
    Clients (the openai SDK, no retries of their own) see no error; those that picked the member
    first wait its timeout, then the failover answers (worst 7.8 s seen with 8 clients on the
    2 shared CPUs: the timeout plus a saturated gateway)."""
    rf, cache_host, _ = fleet_on_redis
    until_in_rotation(rf.key, SLOW, FAILING)
    redis_cli(cache_host, "CLI --scan --pattern 'deployment:*' | xargs -r CLI del")  # earlier tests' state
    received = lambda: sum(helpers.backend(SLOW, "GET", "/_stats")["received"].values())  # noqa: E731
    answered = lambda: helpers.backend(SLOW, "GET", "/_stats")["statuses"].get("200", 0)  # noqa: E731
    with GroupTraffic(rf.key, clients=OVERLOAD_CLIENTS) as traffic:
        poll("the clients warmed up", lambda: len(traffic.results) >= 2 * OVERLOAD_CLIENTS, 60)
        start = len(traffic.results)
        helpers.backend(SLOW, "POST", "/_fault", {"latency_ms": OVERLOAD_ANSWER_MS})  # num_parallel 1
        overloaded_at = time.monotonic()
        cooling = poll("the slow member cooling down", lambda: cooldown_keys(cache_host), 60)
        cooled_at = time.monotonic()
        # What it had queued times out (its clients give up): then nothing reaches it.
        poll(f"{SLOW} idle", lambda: not (s := helpers.backend(SLOW, "GET", "/_stats"))["running"]
             and not s["waiting"], 3 * SLOW_TIMEOUT_S)  # fmt: skip
        idle_received, idle_answered, idle_at = received(), answered(), time.monotonic()
        helpers.backend(SLOW, "POST", "/_fault", {"reset": True})  # fast again: it serves on return
        poll(f"a request reaching {SLOW} again", lambda: received() > idle_received, COOLDOWN_S + 15)
        back_at, left_when_back = time.monotonic(), cooldown_keys(cache_host)
        poll(f"{SLOW} answering again", lambda: answered() > idle_answered, 10)
        end = len(traffic.results)
    during = traffic.results[start:end]
    failed = [why for ok, why, _ in during if not ok]
    worst = max(t for *_, t in during)
    print(
        f"overload: {len(during) - len(failed)}/{len(during)} group requests succeeded with "
        f"{OVERLOAD_CLIENTS} clients, worst {worst:.2f} s; {SLOW} cooling down "
        f"{cooled_at - overloaded_at:.1f} s after it slowed to {OVERLOAD_ANSWER_MS} ms per answer "
        f"({len(cooling)} key, {max(cooling.values()) / 1000:.1f} s left when seen), idle "
        f"{idle_at - cooled_at:.1f} s later, back {back_at - cooled_at:.1f} s after the cooldown began"
    )  # pytest -rP
    assert not failed, f"{len(failed)} of {len(during)} failed: {failed[:3]}"
    assert len(cooling) == 1, cooling  # the slow member only; llm-02's two stay in rotation
    # Nothing reached it while its cooldown lasted: the first request after it came once the key
    # had expired, by itself.
    assert left_when_back == {}, f"a request reached {SLOW} with its cooldown still set: {left_when_back}"
    # The overload was in the clients' way: a request that picked the member waited its timeout.
    assert worst >= SLOW_TIMEOUT_S, worst


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

    def cooled() -> bool:  # each member on the failing backend cooling down, fleet-wide in Redis
        return len(cooldown_keys(cache_host)) == members

    with GroupTraffic(rf.key) as traffic:
        during, reached = traffic.during_fault(FAILING, {"error_rate": 1.0}, cooled)
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
    assert during and not failed, f"{len(failed)} of {len(during)} failed: {failed[:3]}"
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
    env = {**helpers.DEFAULT_SERVING, "REDIS_PASSWORD": secrets.token_urlsafe(32)}
    wrong = helpers.pyinfra("--limit", helpers.GATEWAY, "--group-data", short, env=env)
    assert wrong.returncode == 1, wrong.output[-3000:]
    assert "refused the gateway's Redis password (-WRONGPASS); the gateway was not restarted" in wrong.output
    assert helpers.main_pid(helpers.GATEWAY) == pid
