"""Failover across a fleet that shares its router state in Redis (README "Failover", issue #13
item 4): the session's rollout fleet (three gateways behind hx-lb) on the deploy's default serving
(one LiteLLM worker per CPU: 2 per gateway here) and on hx-cache's Redis, as a user runs it with a
`caches` group. A backend starts failing every request under steady traffic through the load
balancer; every client request still succeeds, and the fleet stops sending to the backend after
the failures its members were allowed counted ONCE for the fleet, not once per worker.
"""

from __future__ import annotations

import threading
import time

import openai
import pytest
import yaml
from openai import OpenAI

from testbed import cache, fleet
from tests.e2e import helpers, rollout_support

GROUP = "hx-chat"
DEAD = "llm-02"
CLIENTS = 4
PROMPT = [{"role": "user", "content": helpers.HX_OK}]
WARM_UP_S, WINDOW_S = 4, 12  # the window stays under the 30 s cooldown: no member comes back in it


@pytest.fixture(scope="module")
def fleet_on_redis(rollout_fleet):
    """hx-cache in the fleet and the rollout fleet's three gateways deployed onto its Redis with
    the default serving; afterwards hx-cache is gone and the gateways are back as the rollout
    tests expect them (own memory, one worker)."""
    rf = rollout_fleet
    rollout_support.make_healthy(rf)
    cache_host = cache.add_cache().name
    limits = [arg for name in [*rf.gateways, cache_host] for arg in ("--limit", name)]
    result = helpers.pyinfra(*limits, env={"MASTER_KEY": rf.key, **helpers.DEFAULT_SERVING})
    assert result.returncode == 0, f"deploying the fleet onto Redis failed:\n{result.output[-4000:]}"
    rollout_support.wait_all_up(rf.gateways)
    yield rf, cache_host
    helpers.backend(DEAD, "POST", "/_fault", {"reset": True})
    fleet.remove_machine(cache_host)
    limits = [arg for name in rf.gateways for arg in ("--limit", name)]
    result = helpers.pyinfra(*limits, env={"MASTER_KEY": rf.key})
    assert result.returncode == 0, f"putting the rollout fleet back failed:\n{result.output[-4000:]}"
    rollout_support.wait_all_up(rf.gateways)


def router_facts(gateway: str) -> tuple[int, int]:
    """From the deployed config.yaml: how many of the group's members are on the dead backend,
    and how many failures of a backend's 500 the router allows a member before its cooldown."""
    config = yaml.safe_load(helpers.ssh(gateway, f"cat {helpers.CONFIG}"))
    address = fleet.find(DEAD).address
    members = [
        m
        for m in config["model_list"]
        if m["model_name"] == GROUP and address in m["litellm_params"]["api_base"]
    ]
    allowed = config["router_settings"]["allowed_fails_policy"]["InternalServerErrorAllowedFails"]
    return len(members), allowed


def redis_counters(cache_host: str) -> dict[str, int]:
    """The router's fail counters in Redis (`deployment:<id>:allowed_fails...`), with their values."""
    address = fleet.find(cache_host).address
    auth = "export REDISCLI_AUTH=$(sed -n 's/^requirepass //p' /etc/redis/hx-redis-secret.conf);"
    cli = f"redis-cli --no-auth-warning -h {address}"
    out = helpers.ssh(
        cache_host,
        f"{auth} for k in $({cli} --scan --pattern 'deployment:*:allowed_fails*'); do echo $k $({cli} get $k); done",
    )
    return {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if line.strip()}


class GroupTraffic:
    """CLIENTS `openai` clients (no client retries) asking the group through hx-lb until stopped."""

    def __init__(self, key: str):
        url = f"http://{fleet.find(rollout_support.LB).address}:4000/v1"
        self.client = OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60)
        self.results: list[tuple[bool, str, float]] = []  # (answered HX-OK, why, seconds)
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


def test_a_failing_backend_is_left_after_the_fleets_allowed_fails_not_each_workers(fleet_on_redis):
    rf, cache_host = fleet_on_redis
    workers = {name: helpers.workers_in_unit(name) for name in rf.gateways}
    assert all(n >= 2 for n in workers.values()), workers  # the default serving on these hosts
    members, allowed = router_facts(helpers.GATEWAY)
    assert members >= 1, f"no {GROUP} member on {DEAD}"

    with GroupTraffic(rf.key) as traffic:
        time.sleep(WARM_UP_S)
        before = len(traffic.results)
        helpers.backend(DEAD, "POST", "/_fault", {"error_rate": 1.0})
        helpers.backend(DEAD, "DELETE", "/_stats")
        time.sleep(WINDOW_S)
        reached = helpers.chats_reaching(DEAD)
        during = traffic.results[before:]
    helpers.backend(DEAD, "POST", "/_fault", {"reset": True})

    failed = [why for ok, why, _ in during if not ok]
    assert len(during) > 100 and not failed, (
        f"{len(failed)} of {len(during)} group requests failed: {failed[:3]}"
    )
    # Every member on the dead backend was counted in Redis, once for the whole fleet.
    counters = redis_counters(cache_host)
    assert len(counters) >= members and all(v > allowed for v in counters.values()), counters
    # Without shared state every worker needs `allowed` + 1 failures of each member before it stops
    # sending to it: that many requests at least would reach the dead backend (measured: ~100 for
    # 6 workers; with Redis ~20; README "Failover").
    per_worker_floor = sum(workers.values()) * members * (allowed + 1)
    print(  # the README's figures (pytest -rP shows them)
        f"{len(during) - len(failed)}/{len(during)} group requests succeeded in {WINDOW_S} s through {rollout_support.LB} "
        f"({len(rf.gateways)} gateways, {sum(workers.values())} workers, Redis), worst {max(t for *_, t in during):.2f} s; "
        f"{reached} reached the failing {DEAD} (per-worker floor {per_worker_floor}); Redis counters {sorted(counters.values())}"
    )
    assert 0 < reached < per_worker_floor, (
        f"{reached} requests reached the failing {DEAD}; without shared state at least {per_worker_floor} "
        f"would ({sum(workers.values())} workers x {members} members x {allowed + 1} failures)"
    )
