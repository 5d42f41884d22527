"""Settings of a load balancer host (the optional `loadbalancers` group: HAProxy in front of the
gateways), declared once like hxgw.settings; parse_loadbalancer_settings() validates them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from hxgw.setting_fields import IPv4Text, integer, ipv4_text, validate_section


class LoadBalancerSettings(BaseModel):
    """Validated settings of one load balancer host; build them with parse_loadbalancer_settings()."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    lb_bind: IPv4Text = ipv4_text(
        "0.0.0.0",
        "The address HAProxy listens on for clients.",
        "use '0.0.0.0' for all interfaces or one of the load balancer's IPv4 addresses",
    )
    lb_port: int = integer(4000, 1, 65535, "HAProxy's client port.", "e.g. lb_port = 4000")
    lb_request_timeout: int = integer(
        300,
        1,
        3600,
        "Seconds HAProxy waits for a client or a gateway (long chats need minutes).",
        "e.g. lb_request_timeout = 300",
    )
    lb_check_interval_ms: int = integer(
        1000,
        100,
        60000,
        "Milliseconds between HAProxy's health checks of each gateway's /health/readiness.",
        "e.g. lb_check_interval_ms = 1000",
    )


LB_SETTING_KEYS = tuple(LoadBalancerSettings.model_fields)


def parse_loadbalancer_settings(data: Mapping[str, Any]) -> LoadBalancerSettings:
    """Validate a load balancer host's settings in `data`, or raise ConfigError (one line each)."""
    return validate_section(LoadBalancerSettings, "settings", data)
