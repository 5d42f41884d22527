"""The monitoring group on the fleet: hx-mon's Prometheus scrapes every gateway (LiteLLM's metrics
with the scrape token, all workers merged), HAProxy, Redis and every host's node exporter; real
faults fire their alerts and reach the pager hx-pager; a healthy fleet fires nothing.

One module fixture: hx-lb, hx-cache, hx-mon and hx-pager beside the running gateways, everything
deployed once with the default serving (two workers per gateway); afterwards the fleet is as the
other modules expect it (no monitoring, one worker).
"""

from __future__ import annotations

import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from openai import OpenAI

from testbed import cache, fleet, monitoring
from tests.e2e import helpers, rollout_support
from tests.e2e import monitoring_support as mon

GATEWAY = helpers.GATEWAY
LB = rollout_support.LB
# What the fleet's fast settings (testbed/inventory.py: 1 s scrapes and evaluations, 1 s probes,
# `for: 2s`, 1 s group wait) let a fault take to fire, with room for a loaded machine. Production's
# defaults (15 s scrapes, `for: 60s`, 30 s group wait) take about two minutes.
FIRE_WITHIN_S = 25
PROMPT = "tell me about the zebra-marmalade-4711 protocol"


@pytest.fixture(scope="module")
def monitored(first_deploy):
    machines = fleet.load_machines()
    had_lb = any(m.role == "loadbalancer" for m in machines)
    had_cache = any(m.role == "cache" for m in machines)
    fleet.add_loadbalancer()
    cache_host = cache.add_cache().name
    monitor, pager = (m.name for m in monitoring.add_monitoring())
    gateways = [m.name for m in fleet.load_machines() if m.role == "gateway" and fleet.pid_alive(m.pid)]
    key, token = helpers.master_key(GATEWAY), secrets.token_urlsafe(32)
    env = {"MASTER_KEY": key, "METRICS_TOKEN": token, "REDIS_PASSWORD": secrets.token_urlsafe(32)}
    limits = [arg for name in [*gateways, LB, cache_host, monitor] for arg in ("--limit", name)]
    started = time.monotonic()
    result = helpers.pyinfra(*limits, env={**env, **helpers.DEFAULT_SERVING})
    assert result.returncode == 0, f"deploying the monitored fleet failed:\n{result.output[-4000:]}"
    print(f"monitored fleet deployed in {time.monotonic() - started:.1f} s")
    rollout_support.wait_all_up(gateways)
    # The deploy restarted the gateways under Prometheus's eyes: their alerts resolve once they answer.
    mon.wait_until("every target up and no alert firing", lambda: _all_up() and not mon.firing(), 90)
    yield {"gateways": gateways, "key": key, "token": token, "cache": cache_host, "monitor": monitor}
    for name in (pager, monitor) + (() if had_cache else (cache_host,)) + (() if had_lb else (LB,)):
        fleet.remove_machine(name)
    limits = [arg for name in gateways + ([LB] if had_lb else []) for arg in ("--limit", name)]
    result = helpers.pyinfra(*limits, env={"MASTER_KEY": key})
    assert result.returncode == 0, f"putting the fleet back failed:\n{result.output[-4000:]}"
    if had_lb:
        rollout_support.wait_all_up(gateways)


def _all_up() -> bool:
    return all(t["health"] == "up" for t in mon.targets())


def test_a_healthy_fleet_has_every_target_up_and_no_alert(monitored):
    want = {("gateway", g) for g in monitored["gateways"]} | {("haproxy", LB), ("redis", monitored["cache"])}
    want |= {
        ("node", name) for name in [*monitored["gateways"], LB, monitored["cache"], monitored["monitor"]]
    }
    found = {(t["job"], t["host"]): t for t in mon.targets()}
    assert want <= set(found), f"targets missing: {sorted(want - set(found))}"
    assert [t for t in found.values() if t["health"] != "up"] == []
    # Each gateway's last validation, published for the HxValidationFailing alert.
    passed = {r["metric"]["host"]: r["value"][1] for r in mon.query("hx_validation_passed")}
    assert passed == {g: "1" for g in monitored["gateways"]}
    for _ in range(4):  # over four evaluation intervals, not one lucky moment
        assert mon.firing() == []
        time.sleep(1)


def test_the_scrape_token_reads_metrics_only_and_metrics_carry_no_key_or_prompt(monitored):
    key, token = monitored["key"], monitored["token"]
    assert helpers.workers_in_unit(GATEWAY) >= 2  # so "merged" means something
    before = mon.counter_total(
        mon.scrape(GATEWAY, token).text,
        "litellm_proxy_total_requests_metric_total",
        requested_model="hx-chat",
        status_code="200",
    )
    client = OpenAI(base_url=f"{helpers.url(GATEWAY)}/v1", api_key=key, max_retries=0, timeout=60)
    with ThreadPoolExecutor(4) as pool:  # concurrent, so both workers serve some
        list(
            pool.map(
                lambda _: client.chat.completions.create(
                    model="hx-chat", messages=[{"role": "user", "content": PROMPT}]
                ),
                range(12),
            )
        )
    scraped = mon.scrape(GATEWAY, token)
    assert scraped.status_code == 200
    after = mon.counter_total(
        scraped.text,
        "litellm_proxy_total_requests_metric_total",
        requested_model="hx-chat",
        status_code="200",
    )
    assert after - before == 12, "every worker's requests are counted once in one scrape"
    assert PROMPT not in scraped.text and "zebra" not in scraped.text
    assert key not in scraped.text and key[3:] not in scraped.text and token not in scraped.text
    assert "hashed_api_key" not in scraped.text
    # Prometheus sees the same sum.
    expr = f'sum(litellm_proxy_total_requests_metric_total{{host="{GATEWAY}",requested_model="hx-chat",status_code="200"}})'
    mon.wait_until(
        "Prometheus scraped the 12 chats", lambda: float(mon.query(expr)[0]["value"][1]) >= after, 15
    )
    # The token opens nothing else; without it /metrics is closed.
    for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("GET", "/health")):
        answer = httpx.request(
            method,
            f"{helpers.url(GATEWAY)}{path}",
            json={},
            trust_env=False,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert answer.status_code == 401, f"{method} {path} with the metrics token: {answer.status_code}"
    assert httpx.get(f"{helpers.url(GATEWAY)}/metrics/", trust_env=False, timeout=10).status_code == 401


def test_exporters_listen_on_their_host_for_the_monitoring_host_only(monitored):
    monitor_ip = fleet.find(monitored["monitor"]).address
    for name in [*monitored["gateways"], LB, monitored["cache"], monitored["monitor"]]:
        address = fleet.find(name).address
        listeners = helpers.ssh(name, "ss -ltnH 'sport = :9100'").split()
        assert f"{address}:9100" in listeners, f"{name}: node exporter listens on {listeners}"
        allowed = helpers.ssh(name, "systemctl show -p IPAddressAllow --value prometheus-node-exporter")
        assert set(allowed.split()) == {"127.0.0.1/32", f"{monitor_ip}/32"}
        if name != monitored["monitor"]:  # enabled by Debian's package, started only on hx-mon
            state = helpers.ssh(
                name, "systemctl is-active prometheus; systemctl is-enabled prometheus", check=False
            )
            assert state.split() == ["inactive", "disabled"], f"{name}: prometheus is {state.split()}"
    # HAProxy's exporter drops the control machine and answers the monitoring host.
    lb = fleet.find(LB).address
    refused = mon.curl_code(f"http://{lb}:8405/metrics")
    assert refused != "200", "HAProxy's exporter answered a host that is not the monitoring host"
    answered = helpers.ssh(
        monitored["monitor"], f"curl -s -o /dev/null -w '%{{http_code}}' http://{lb}:8405/metrics"
    )
    assert answered == "200"


def test_real_faults_fire_their_alerts_reach_the_pager_and_resolve(monitored):
    """Four faults at once (each alert depends on one of them only): llm-01 and llm-02 powered off
    (hx-chat loses every member), the shared gateway stopped, Redis stopped."""
    cache_host = monitored["cache"]
    expected = {
        "backend llm-02 down": ("HxBackendDown", {"backend": "llm-02"}),
        "hx-chat without a live member": ("HxModelGroupNoLiveMember", {"model_group": "hx-chat"}),
        "the gateway down": ("HxGatewayDown", {"host": GATEWAY}),
        "the gateway DOWN on hx-lb": ("HxLoadBalancerServerDown", {"server": GATEWAY}),
        "Redis down": ("HxRedisDown", {"host": cache_host}),
    }
    seen = len(monitoring.received())  # notifications from the deploy's restarts do not count
    caused = {}  # when each fault was in place
    try:
        fleet.power_off("llm-02")
        fleet.power_off("llm-01")
        caused["backend llm-02 down"] = caused["hx-chat without a live member"] = time.monotonic()
        helpers.ssh(GATEWAY, f"systemctl stop {helpers.UNIT}")
        caused["the gateway down"] = caused["the gateway DOWN on hx-lb"] = time.monotonic()
        helpers.ssh(cache_host, "systemctl stop redis-server")
        caused["Redis down"] = time.monotonic()
        fired = {}
        for what, (alertname, labels) in expected.items():
            mon.wait_until(
                what, lambda a=alertname, want=labels: mon.named(mon.firing(), a, **want), FIRE_WITHIN_S
            )
            fired[what] = time.monotonic() - caused[what]
        print(
            "fired, seconds after the fault (at most): " + ", ".join(f"{w} {s:.1f}" for w, s in fired.items())
        )
        for what, (alertname, labels) in expected.items():
            mon.wait_until(
                f"the pager got '{what}'",
                lambda a=alertname, want=labels: mon.notifications("firing", a, seen, **want),
                15,
            )
    finally:
        seen = len(monitoring.received())  # the resolved notifications come after this
        back = time.monotonic()
        fleet.power_on("llm-02")
        fleet.power_on("llm-01")
        helpers.ssh(cache_host, "systemctl start redis-server")
        helpers.ssh(GATEWAY, f"{helpers.SCRIPTS}/start.sh", timeout=300)  # two workers, a busy host
    for what, (alertname, labels) in expected.items():
        mon.wait_until(
            f"'{what}' resolved", lambda a=alertname, want=labels: not mon.named(mon.firing(), a, **want), 60
        )
        mon.wait_until(
            f"the pager got '{what}' resolved",
            lambda a=alertname, want=labels: mon.notifications("resolved", a, seen, **want),
            15,
        )
    print(f"every alert resolved and notified {time.monotonic() - back:.1f} s after the repairs began")
    rollout_support.wait_all_up(monitored["gateways"])
    mon.wait_until("no alert firing", lambda: not mon.firing(), 60)


def test_the_operators_page_in_a_browser_shows_a_dead_backend_and_its_alert(monitored, tmp_path):
    """The console page hx-mon serves (templates/monitoring/consoles/hx-fleet.html), opened by a
    real browser while llm-02 is off: it lists llm-02 DOWN and the alert naming it."""
    page = f"http://{fleet.find(monitored['monitor']).address}:9090/consoles/hx-fleet.html"
    mon.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = mon.SCREENSHOTS / "hx-fleet-llm-02-down.png"
    shot.unlink(missing_ok=True)
    try:
        fleet.power_off("llm-02")
        mon.wait_until(
            "HxBackendDown for llm-02",
            lambda: mon.named(mon.firing(), "HxBackendDown", backend="llm-02"),
            FIRE_WITHIN_S,
        )
        dom = mon.chromium(tmp_path, page, "--dump-dom")
        mon.chromium(tmp_path, page, f"--screenshot={shot}")
    finally:
        fleet.power_on("llm-02")
    mon.wait_until("llm-02's alert resolved", lambda: not mon.named(mon.firing(), "HxBackendDown"), 60)
    rows = {cells[0]: cells[1:] for cells in mon.table(dom, "backends")}
    assert rows["llm-02"][0] == "DOWN" and rows["llm-01"][0] == "up", rows
    gateways = {cells[0]: cells[1:] for cells in mon.table(dom, "gateways")}
    assert set(gateways) == set(monitored["gateways"]) and all(g[0] == "up" for g in gateways.values()), (
        gateways
    )
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", gateways[GATEWAY][2]), gateways[GATEWAY]
    alerts = mon.table(dom, "alerts")
    assert ["HxBackendDown", "page", "llm-02"] in alerts, alerts
    assert shot.stat().st_size > 10_000, "the screenshot is an image of the page"
    print(f"screenshot: {shot}")


def test_make_status_shows_the_fleet_from_prometheus_and_from_direct_probes_alike(monitored):
    client = OpenAI(
        base_url=f"{helpers.url(GATEWAY)}/v1", api_key=monitored["key"], max_retries=0, timeout=60
    )
    for _ in range(3):
        client.chat.completions.create(model="hx-chat", messages=[{"role": "user", "content": helpers.HX_OK}])

    def with_rate() -> dict | None:
        snapshot = mon.status()
        row = next(r for r in snapshot["gateways"] if r["gateway"] == GATEWAY)
        return snapshot if row["rps"] else None

    mon.wait_until("make status shows the gateway's request rate", lambda: with_rate() is not None, 30)
    from_prometheus, direct = mon.status(), mon.status("--direct")
    assert from_prometheus["source"].startswith("Prometheus http://")
    assert direct["source"].startswith("direct probes")
    for snapshot in (from_prometheus, direct):
        rows = {row["gateway"]: row for row in snapshot["gateways"]}
        assert set(rows) == set(monitored["gateways"])
        for row in rows.values():
            assert row["ready"] is True and row["lb"] == "UP", row
            assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", row["litellm"] or ""), row
        assert set(snapshot["groups"]) == {"hx-chat", "hx-chat-fast", "hx-chat-premium"}
        assert snapshot["groups"]["hx-chat"]["down"] == []
    assert [r["release"] for r in from_prometheus["gateways"]] == [r["release"] for r in direct["gateways"]]
    assert sorted(from_prometheus["groups"]["hx-chat"]["live"]) == sorted(direct["groups"]["hx-chat"]["live"])
    assert from_prometheus["alerts"] == [] and direct["alerts"] is None
    assert all(r["rps"] is None for r in direct["gateways"]), "direct probes have no request rates"
