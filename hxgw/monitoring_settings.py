"""Settings of the monitoring host (the optional `monitoring` group: Prometheus and Alertmanager
watching the fleet), declared once like hxgw.settings; parse_monitoring_settings() validates them.

The gateways, the load balancer and the cache read them too (through the one monitoring host's
data, hxops.monitoring_link): where their exporters listen, who may reach them, how often a
gateway probes its backends.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hxgw.schema import messages, problem
from hxgw.setting_fields import IPv4Text, integer, ipv4_text, seconds, validate_section

_URL_FIX = "set alert_webhook_url to the receiver's http(s) URL, e.g. 'http://pager.example.lan:9095/hx'"
# Written into alertmanager.yml as JSON (so YAML-safe); no whitespace or quotes in any case.
_URL_CHARS = re.compile(r"^[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]+$")


def ratio(default: float, description: str, example: str) -> Any:
    """A fraction above 0 and at most 1 (0.05 = 5 %)."""
    return Field(
        default,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description=description,
        json_schema_extra=messages(
            example,
            wrong_type="must be a number above 0 and at most 1, got {got}; write a bare number, {fix}",
            wrong_value="{value} is out of range; it must be above 0 and at most 1, {fix}",
        ),
    )


class MonitoringSettings(BaseModel):
    """Validated settings of the monitoring host; build them with parse_monitoring_settings()."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    monitoring_ip: IPv4Text = ipv4_text(
        None,
        "The monitoring host's private IPv4 address: Prometheus serves its pages there, and it is "
        "the only address every exporter of the fleet answers.",
        "set monitoring_ip to the monitoring host's address on the gateways' network",
    )
    prometheus_port: int = integer(
        9090, 1, 65535, "Prometheus's web and API port.", "e.g. prometheus_port = 9090"
    )
    alertmanager_port: int = integer(
        9093, 1, 65535, "Alertmanager's port (on 127.0.0.1: only Prometheus talks to it).", "e.g. 9093"
    )
    prometheus_retention_days: int = integer(
        15, 1, 3650, "Days Prometheus keeps its samples (--storage.tsdb.retention.time).", "e.g. 15"
    )
    alert_webhook_url: str = Field(
        description="Where Alertmanager sends every notification (its webhook receiver): the on-call "
        "tool's http(s) URL.",
        json_schema_extra=messages(_URL_FIX, wrong_type="must be a URL string, got {got}; {fix}"),
    )
    scrape_interval_s: int = integer(
        15, 1, 300, "Seconds between two scrapes of every target.", "e.g. scrape_interval_s = 15"
    )
    evaluation_interval_s: int = integer(
        15, 1, 300, "Seconds between two evaluations of the alert rules.", "e.g. evaluation_interval_s = 15"
    )
    alert_for_s: int = integer(
        60,
        0,
        3600,
        "Seconds a fault must last before its alert fires (the rules' `for:`); 0 fires at once.",
        "e.g. alert_for_s = 60",
    )
    alert_group_wait_s: int = integer(
        30, 0, 3600, "Seconds Alertmanager waits to group a new alert with others before it notifies.", "30"
    )
    alert_group_interval_s: int = integer(
        300, 1, 86400, "Seconds between two notifications of one group (also a resolved one's delay).", "300"
    )
    alert_repeat_s: int = integer(
        3600, 10, 86400, "Seconds before Alertmanager repeats a notification still firing.", "e.g. 3600"
    )
    alert_error_ratio: float = ratio(
        0.05, "Fires when more than this fraction of a gateway's requests fail (over 5 minutes).", "e.g. 0.05"
    )
    alert_p95_latency_s: float = seconds(
        30, 3600, "Fires when a gateway's 95th percentile request time is above this (seconds).", "e.g. 30"
    )
    alert_disk_free_ratio: float = ratio(
        0.10, "Fires when a gateway's root filesystem has less than this fraction free.", "e.g. 0.10"
    )
    backend_probe_interval_s: int = integer(
        15, 1, 300, "Seconds between two probes of every backend from every gateway.", "e.g. 15"
    )
    node_exporter_port: int = integer(
        9100, 1, 65535, "prometheus-node-exporter's port on every host.", "9100"
    )
    redis_exporter_port: int = integer(
        9121, 1, 65535, "prometheus-redis-exporter's port (cache host).", "9121"
    )
    haproxy_metrics_port: int = integer(
        8405, 1, 65535, "HAProxy's built-in Prometheus exporter's port (load balancer).", "8405"
    )

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook_is_a_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise problem(f"{url!r} is not an http:// or https:// URL with a host; {_URL_FIX}")
        if not _URL_CHARS.fullmatch(url):
            raise problem(f"{url!r} holds whitespace, quotes or other characters a URL cannot; {_URL_FIX}")
        try:
            parts.port  # noqa: B018 - raises on a port out of range
        except ValueError:
            raise problem(f"{url!r} has a port out of range; {_URL_FIX}") from None
        return url

    @field_validator("monitoring_ip")
    @classmethod
    def _monitoring_ip_is_an_address(cls, address: str) -> str:
        if ipaddress.IPv4Address(address).is_unspecified or ipaddress.IPv4Address(address).is_loopback:
            raise problem(
                f"{address!r} is not an address the other hosts can reach; set monitoring_ip to the "
                "monitoring host's address on the gateways' network"
            )
        return address


MONITORING_SETTING_KEYS = tuple(MonitoringSettings.model_fields)


def parse_monitoring_settings(data: Mapping[str, Any]) -> MonitoringSettings:
    """Validate the monitoring host's settings in `data`, or raise ConfigError (one line each)."""
    return validate_section(MonitoringSettings, "settings", data)
