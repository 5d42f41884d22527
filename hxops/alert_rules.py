"""The alert rules Prometheus evaluates (tasks/monitoring.py writes them as JSON, which is YAML):
what an on-call person wants paged for, each alert naming what is wrong and carrying a one-line
runbook. Thresholds and `for:` come from the monitoring settings (hxgw/monitoring_settings.py).

Metric sources: LiteLLM's Prometheus callback on each gateway (counters summed over its workers by
prometheus_client's MultiProcessCollector; gauges per worker `pid`, hence `max by`), the backend probe
each gateway runs (templates/hx-backend-probe.py), node exporter, HAProxy's and Redis's exporters.
"""

from __future__ import annotations

from hxgw.monitoring_settings import MonitoringSettings


def _rule(name: str, expr: str, severity: str, summary: str, runbook: str, hold: str) -> dict:
    return {
        "alert": name,
        "expr": expr,
        "for": hold,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "runbook": runbook},
    }


def alert_rules(s: MonitoringSettings) -> dict:
    hold = f"{s.alert_for_s}s"
    host = "{{ $labels.host }}"
    gateway = [
        _rule(
            "HxGatewayDown",
            'up{job="gateway"} == 0',
            "page",
            f"gateway {host} does not answer (its /metrics scrape fails)",
            f"ssh to {host}: systemctl status hx-litellm-gateway; journalctl -u hx-litellm-gateway -n 50; "
            "redeploy it, or roll back (make rollout)",
            hold,
        ),
        _rule(
            "HxBackendDown",
            "min by (backend, api_base) (hx_backend_up) == 0",
            "page",
            "backend {{ $labels.backend }} ({{ $labels.api_base }}) does not answer a gateway's probe",
            "curl {{ $labels.api_base }}/api/version from a gateway; check Ollama on {{ $labels.backend }} "
            "(systemctl status ollama); its groups fail over to their other members meanwhile",
            hold,
        ),
        _rule(
            "HxBackendCoolingDown",
            "max by (api_base, litellm_model_name) (litellm_deployment_state) > 0",
            "warn",
            "LiteLLM has {{ $labels.litellm_model_name }} on {{ $labels.api_base }} in partial or "
            "full outage: its requests fail and it is cooling down",
            "journalctl -u hx-litellm-gateway -p warning on the gateways; check the backend's errors and "
            "load; LiteLLM takes it back after cooldown_time once it answers",
            hold,
        ),
        _rule(
            "HxModelGroupNoLiveMember",
            "sum by (model_group) (max by (model_group, backend, model) (hx_model_member_up)) == 0",
            "page",
            "model group {{ $labels.model_group }} has no live member: every request for it fails",
            "bring back a member's backend (see HxBackendDown), or point the group at a live backend in "
            "group_data and redeploy",
            hold,
        ),
        _rule(
            "HxErrorRatioHigh",
            "sum by (host) (rate(litellm_proxy_failed_requests_metric_total[5m])) / "
            f"sum by (host) (rate(litellm_proxy_total_requests_metric_total[5m])) > {s.alert_error_ratio}",
            "page",
            f"{{{{ $value | humanizePercentage }}}} of gateway {host}'s requests fail "
            f"(threshold {s.alert_error_ratio:.1%})",
            f"make status shows which group fails; journalctl -u hx-litellm-gateway -p warning on {host}; "
            "a backend down or a bad release (roll back) are the usual causes",
            hold,
        ),
        _rule(
            "HxLatencyP95High",
            "histogram_quantile(0.95, sum by (host, le) "
            f"(rate(litellm_request_total_latency_metric_bucket[5m]))) > {s.alert_p95_latency_s}",
            "warn",
            f"gateway {host}'s p95 request time is {{{{ $value | humanizeDuration }}}} "
            f"(threshold {s.alert_p95_latency_s:g} s)",
            "check the backends' queues (Ollama's num_parallel) and load; add a member to the busy group "
            "or shed load at the load balancer",
            hold,
        ),
        _rule(
            "HxGatewayDiskNearlyFull",
            'node_filesystem_avail_bytes{role="gateway", mountpoint="/"} / '
            f'node_filesystem_size_bytes{{role="gateway", mountpoint="/"}} < {s.alert_disk_free_ratio}',
            "page",
            f"gateway {host}'s root filesystem has {{{{ $value | humanizePercentage }}}} free",
            f"on {host}: du -xsh /var/log/journal <base_dir>/venvs/*; journalctl --vacuum-size=200M; "
            "lower keep_releases and redeploy",
            hold,
        ),
        _rule(
            "HxValidationFailing",
            "hx_validation_passed == 0",
            "page",
            f"the last deploy's validation of gateway {host} failed",
            f"read reports/validation-{host}-*.json on the control machine; fix what it names and "
            "redeploy, or roll back",
            "0s",
        ),
    ]
    infrastructure = [
        _rule(
            "HxRedisDown",
            'redis_up == 0 or up{job="redis"} == 0',
            "page",
            f"Redis on {host} is down: the gateways' workers no longer share cooldowns",
            f"ssh to {host}: systemctl status redis-server; journalctl -u redis-server -n 50; the "
            "gateways keep serving, each worker on its own state",
            hold,
        ),
        _rule(
            "HxLoadBalancerServerDown",
            'haproxy_server_status{state="DOWN"} == 1',
            "page",
            f"HAProxy on {host} has gateway {{{{ $labels.server }}}} DOWN (it fails /health/readiness)",
            "see HxGatewayDown for {{ $labels.server }}; hx-lb-ctl state on the load balancer lists "
            "every gateway's state",
            hold,
        ),
        _rule(
            "HxExporterDown",
            'up{job=~"node|haproxy|redis"} == 0',
            "warn",
            f"the {{{{ $labels.job }}}} exporter on {host} does not answer: the host is down or it stopped",
            f"ping {host}; systemctl status prometheus-node-exporter (haproxy: haproxy.service, redis: "
            "prometheus-redis-exporter) there",
            hold,
        ),
    ]
    return {
        "groups": [
            {"name": "hx-gateway", "rules": gateway},
            {"name": "hx-infrastructure", "rules": infrastructure},
        ]
    }
