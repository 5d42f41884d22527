"""The monitoring group at plan level (pyinfra's @fake connector, no host contacted), its settings,
its alert rules and `make status`'s screen."""

from __future__ import annotations

import textwrap

import pytest

from hxgw.errors import ConfigError
from hxgw.monitoring_settings import parse_monitoring_settings
from hxops.alert_rules import alert_rules
from hxops.status import render
from tests.unit.helpers import fake_inventory, plan

GOOD = {"monitoring_ip": "192.168.10.50", "alert_webhook_url": "http://pager.example.lan:9095/hx"}


def with_monitoring(tmp_path, **data):
    inventory = fake_inventory(tmp_path, "192.168.10.39")
    host = {**GOOD, **data}
    inventory.write_text(
        inventory.read_text()
        + textwrap.dedent(
            f"""
            monitoring = [("@fake/hx-mon", {{**{host!r}, "fake_delay": 0, "fake_delay_jitter": 0,
                           "fake_responses": {{"uname -s": "Linux"}}}})]
            """
        )
    )
    return inventory


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (
            {"alert_webhook_url": "ftp://pager"},
            "alert_webhook_url 'ftp://pager' is not an http:// or https:// URL",
        ),
        ({"alert_webhook_url": "http://pa ger/"}, "holds whitespace, quotes or other characters"),
        ({"monitoring_ip": "0.0.0.0"}, "monitoring_ip '0.0.0.0' is not an address the other hosts can reach"),
        ({"alert_error_ratio": 5}, "alert_error_ratio 5 is out of range; it must be above 0 and at most 1"),
        ({"prometheus_retention_days": "15d"}, "prometheus_retention_days must be an integer from 1 to 3650"),
    ],
)
def test_bad_monitoring_settings_name_the_key_and_the_fix(data, problem):
    with pytest.raises(ConfigError) as error:
        parse_monitoring_settings({**GOOD, **data})
    assert any(problem in line for line in error.value.problems), error.value.problems


def test_the_webhook_url_is_required():
    with pytest.raises(ConfigError) as error:
        parse_monitoring_settings({"monitoring_ip": "192.168.10.50"})
    assert error.value.problems == [
        "settings: alert_webhook_url is not set; set alert_webhook_url to the receiver's http(s) URL, "
        "e.g. 'http://pager.example.lan:9095/hx'"
    ]


def test_every_alert_has_a_runbook_and_its_threshold_from_the_settings():
    settings = parse_monitoring_settings(
        {**GOOD, "alert_error_ratio": 0.2, "alert_p95_latency_s": 7, "alert_for_s": 9}
    )
    rules = {r["alert"]: r for g in alert_rules(settings)["groups"] for r in g["rules"]}
    assert set(rules) == {
        "HxGatewayDown",
        "HxBackendDown",
        "HxBackendCoolingDown",
        "HxModelGroupNoLiveMember",
        "HxErrorRatioHigh",
        "HxLatencyP95High",
        "HxGatewayDiskNearlyFull",
        "HxValidationFailing",
        "HxRedisDown",
        "HxLoadBalancerServerDown",
        "HxExporterDown",
    }
    assert all(
        r["annotations"]["runbook"] and "\n" not in r["annotations"]["runbook"] for r in rules.values()
    )
    assert rules["HxErrorRatioHigh"]["expr"].endswith("> 0.2")
    assert rules["HxLatencyP95High"]["expr"].endswith("> 7.0")
    assert rules["HxGatewayDown"]["for"] == "9s"


def test_the_monitoring_host_is_planned_with_prometheus_and_the_gateway_with_its_agent(tmp_path):
    result = plan(with_monitoring(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout + result.stderr
    for wanted in (
        "Render /etc/prometheus/hx/prometheus.yml",
        "Write the alert rules /etc/prometheus/hx/hx-alerts.yml",
        "Render /etc/prometheus/hx/alertmanager.yml",
        "Install the metrics token in /etc/prometheus/hx/metrics-token (value not shown)",
        "Install the metrics token in /opt/HX-Infrastructure-/api-gateway/config/api-gateway/metrics.env",
        "hx-backend-probe.service enabled and running",
        "prometheus-node-exporter enabled and running",
    ):
        assert wanted in out, f"{wanted!r} not planned:\n{out[-3000:]}"
    token = (tmp_path / ".config/hx-gateway/metrics-token").read_text().strip()
    assert token not in out


def test_a_bad_webhook_url_stops_the_run_before_any_host(tmp_path):
    result = plan(with_monitoring(tmp_path, alert_webhook_url="mailto:oncall"))
    out = result.stdout + result.stderr
    assert result.returncode == 1
    assert "alert_webhook_url 'mailto:oncall' is not an http:// or https:// URL with a host" in out
    assert "nothing was changed on any host" in out


def test_the_status_screen_shows_gateways_groups_and_alerts():
    snapshot = {
        "source": "Prometheus http://198.18.0.14:9090",
        "gateways": [
            {
                "gateway": "gw-1",
                "release": "r1",
                "litellm": "1.108.7",
                "ready": True,
                "lb": "UP",
                "rps": 3.5,
                "error_pct": 1.25,
                "p95_s": 0.42,
            },
            {
                "gateway": "gw-2",
                "release": None,
                "litellm": None,
                "ready": False,
                "lb": "DOWN",
                "rps": None,
                "error_pct": None,
                "p95_s": None,
            },
        ],
        "groups": {
            "hx-chat": {
                "live": ["phi3:latest@llm-02", "llama3.2:3b@llm-01"],
                "down": ["gemma2:2b@llm-02"],
                "cooling": ["phi3:latest@llm-02"],
            }
        },
        "alerts": [{"alertname": "HxGatewayDown", "summary": "gateway gw-2 does not answer"}],
    }
    screen = render(snapshot)
    lines = screen.splitlines()
    assert lines[0] == "HX fleet status (from Prometheus http://198.18.0.14:9090)"
    gw1 = next(line for line in lines if line.startswith("gw-1"))
    assert gw1.split() == ["gw-1", "r1", "1.108.7", "yes", "UP", "3.50", "1.2", "0.42"]
    assert next(line for line in lines if line.startswith("gw-2")).split() == [
        "gw-2",
        "-",
        "-",
        "NO",
        "DOWN",
        "-",
        "-",
        "-",
    ]
    chat = next(line for line in lines if line.startswith("hx-chat"))
    assert chat.split(None, 2) == [
        "hx-chat",
        "1",
        "phi3:latest@llm-02 (cooling), llama3.2:3b@llm-01, gemma2:2b@llm-02 (DOWN)",
    ]
    assert "  HxGatewayDown: gateway gw-2 does not answer" in lines
