"""Who the monitoring host (the inventory's `monitoring` group) watches, and the token it reads the
gateways' metrics with.

Without a `monitoring` group nothing here is used: no exporter, no metrics callback, as before.
With one, every managed host runs prometheus-node-exporter answering only the monitoring host, the
gateways export LiteLLM's metrics behind METRICS_TOKEN, the load balancer its HAProxy exporter and
the cache host prometheus-redis-exporter.

The metrics token is handled like the Redis password (hxops.kept_secret): METRICS_TOKEN on the
control machine, else the one generated at the first deploy; it is never the master key, and it
opens /metrics only (templates/hx_auth.py).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from hxgw.errors import ConfigError
from hxgw.monitoring_settings import MonitoringSettings, parse_monitoring_settings
from hxops.kept_secret import kept_secret
from hxops.role_host import only_host

TOKEN_VARIABLE = "METRICS_TOKEN"
# What the gateway's EnvironmentFile names the token (templates/hx_auth.py reads it).
GATEWAY_TOKEN_VARIABLE = "HX_METRICS_TOKEN"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32,}$")
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"


@dataclass(frozen=True)
class MonitoringTarget:
    host_name: str
    settings: MonitoringSettings


def token_file() -> Path:
    return Path(os.environ.get("HX_METRICS_TOKEN_FILE") or "~/.config/hx-gateway/metrics-token").expanduser()


def check_token(token: str) -> None:
    if not _TOKEN_RE.fullmatch(token):
        raise ConfigError(
            [
                f"METRICS_TOKEN ({len(token)} characters) needs at least 32 characters, only letters, "
                "digits, '_' and '-'; generate one with: python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            ]
        )
    if token == os.environ.get("MASTER_KEY"):
        raise ConfigError(["METRICS_TOKEN is the master key; the scraper must never hold it: pick another"])


def metrics_token() -> str:
    """METRICS_TOKEN if set (checked), else the kept one, generated (root-only file) the first time."""
    return kept_secret(TOKEN_VARIABLE, token_file(), check_token)


def monitoring_target(inventory) -> MonitoringTarget | None:
    """The inventory's one monitoring host and its checked settings, or None without the group."""
    found = only_host(
        inventory, "monitoring", "keep one host in `monitoring`", "monitoring host", parse_monitoring_settings
    )
    return MonitoringTarget(*found) if found else None


def host_address(host) -> str | None:
    """The address a managed host's exporters listen on (its role's own address setting)."""
    for key in ("gateway_ip", "cache_ip", "monitoring_ip", "lb_ip"):
        if host.data.get(key):
            return host.data.get(key)
    return host.data.get("ssh_hostname")


def token_env_content(token: str) -> str:
    return f"{GATEWAY_TOKEN_VARIABLE}={token}\n"


def scrape_targets(inventory, settings: MonitoringSettings) -> dict[str, list[dict]]:
    """Every target Prometheus scrapes, by job: host name, address:port and role."""
    roles = (
        ("gateways", "gateway"),
        ("loadbalancers", "loadbalancer"),
        ("caches", "cache"),
        ("monitoring", "monitoring"),
    )
    targets: dict[str, list[dict]] = {"gateway": [], "node": [], "haproxy": [], "redis": []}
    for group, role in roles:
        for member in inventory.get_group(group, default=[]):
            address = host_address(member)
            targets["node"].append(
                {"host": member.name, "role": role, "address": f"{address}:{settings.node_exporter_port}"}
            )
            if role == "gateway":
                port = member.data.get("port", 4000)
                targets["gateway"].append({"host": member.name, "role": role, "address": f"{address}:{port}"})
            elif role == "loadbalancer":
                targets["haproxy"].append(
                    {
                        "host": member.name,
                        "role": role,
                        "address": f"{address}:{settings.haproxy_metrics_port}",
                    }
                )
            elif role == "cache":
                targets["redis"].append(
                    {
                        "host": member.name,
                        "role": role,
                        "address": f"{address}:{settings.redis_exporter_port}",
                    }
                )
    return targets
