"""`make status` (`python -m hxops.status [INVENTORY] [--json]`): the whole fleet on one screen.

Per gateway: its release and LiteLLM version, ready or not, its state on the load balancer,
requests per second, error % and p95 latency; per model group its live and cooling members; the
alerts firing. With a `monitoring` group everything comes from its Prometheus (one HTTP API, the
numbers the alerts see). Without one, from direct probes: each gateway's /health/readiness, its
release over SSH (pyinfra's connector, as `make history`), HAProxy's state through hx-lb-ctl, each
backend's /api/tags; request rates need the metrics and show '-'. `--direct` probes directly even
with a `monitoring` group (Prometheus down). Reading changes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
import urllib.request

from hxops.gateway_locks import REPO
from hxops.status_sources import direct_snapshot

DEFAULT_INVENTORY = "testbed/inventory.py"


def _get(url: str, timeout: float = 5) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


class Prometheus:
    def __init__(self, base: str) -> None:
        self.base = base

    def query(self, expr: str) -> list[dict]:
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        return _get(url)["data"]["result"]

    def by(self, expr: str, label: str) -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(expr)}

    def alerts(self) -> list[dict]:
        return [a for a in _get(f"{self.base}/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"]


def prometheus_snapshot(prom: Prometheus, gateways: list[str]) -> dict:
    """Everything the screen shows, from Prometheus's API."""
    up = prom.by('up{job="gateway"}', "host")
    releases = {r["metric"]["host"]: r["metric"] for r in prom.query("hx_gateway_release_info")}
    lb = {r["metric"]["server"]: r["metric"]["state"] for r in prom.query("haproxy_server_status == 1")}
    rate = prom.by("sum by (host) (rate(litellm_proxy_total_requests_metric_total[1m]))", "host")
    errors = prom.by(
        "sum by (host) (rate(litellm_proxy_failed_requests_metric_total[5m])) / "
        "sum by (host) (rate(litellm_proxy_total_requests_metric_total[5m]))",
        "host",
    )
    p95 = prom.by(
        "histogram_quantile(0.95, sum by (host, le) (rate(litellm_request_total_latency_metric_bucket[5m])))",
        "host",
    )
    rows = []
    for name in gateways:
        release = releases.get(name, {})
        rows.append(
            {
                "gateway": name,
                "release": release.get("release"),
                "litellm": release.get("litellm_version"),
                "ready": up.get(name) == 1.0,
                "lb": lb.get(name),
                "rps": rate.get(name),
                "error_pct": None if errors.get(name) is None else 100 * errors[name],
                "p95_s": p95.get(name),
            }
        )
    members: dict[str, dict] = {}
    for r in prom.query("max by (model_group, backend, model) (hx_model_member_up)"):
        m = r["metric"]
        group = members.setdefault(m["model_group"], {"live": [], "down": [], "cooling": []})
        (group["live"] if float(r["value"][1]) == 1 else group["down"]).append(f"{m['model']}@{m['backend']}")
    cooling = {
        r["metric"].get("litellm_model_name")
        for r in prom.query("max by (litellm_model_name) (litellm_deployment_state) > 0")
    }
    for group in members.values():
        group["cooling"] = [member for member in group["live"] if member.split("@")[0] in cooling]
    alerts = [
        {"alertname": a["labels"]["alertname"], "summary": a["annotations"].get("summary", "")}
        for a in prom.alerts()
    ]
    return {"source": f"Prometheus {prom.base}", "gateways": rows, "groups": members, "alerts": alerts}


def _cell(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render(snapshot: dict) -> str:
    """The one screen (pure)."""
    lines = [f"HX fleet status (from {snapshot['source']})", ""]
    lines.append(
        f"{'gateway':24} {'release':28} {'litellm':9} {'ready':5} {'lb':6} "
        f"{'req/s':>7} {'err%':>6} {'p95 s':>6}"
    )
    for row in snapshot["gateways"]:
        ready = "-" if row["ready"] is None else ("yes" if row["ready"] else "NO")
        lines.append(
            f"{row['gateway']:24} {row['release'] or '-':28} {row['litellm'] or '-':9} {ready:5} "
            f"{row['lb'] or '-':6} {_cell(row['rps'], '7.2f'):>7} {_cell(row['error_pct'], '6.1f'):>6} "
            f"{_cell(row['p95_s'], '6.2f'):>6}"
        )
    lines += ["", f"{'model group':18} {'live':>4}  members"]
    for name, group in sorted(snapshot["groups"].items()):
        cooling = set(group.get("cooling") or [])
        shown = [f"{m}{' (cooling)' if m in cooling else ''}" for m in group["live"]]
        shown += [f"{m} (DOWN)" for m in group["down"]]
        live = len(group["live"]) - len(cooling)
        lines.append(f"{name:18} {live:>4}  {', '.join(shown) or '-'}")
    lines.append("")
    if snapshot["alerts"] is None:
        lines.append("alerts: no `monitoring` group, so no alerting")
    elif not snapshot["alerts"]:
        lines.append("alerts: none firing")
    else:
        lines.append(f"alerts firing ({len(snapshot['alerts'])}):")
        lines += [f"  {a['alertname']}: {a['summary']}" for a in snapshot["alerts"]]
    return "\n".join(lines)


def snapshot_of(inventory_path: str, direct: bool = False) -> dict:
    from pyinfra.api import Config, State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    from hxops.monitoring_link import monitoring_target

    state = State()
    with ctx_state.use(state):
        inventory = make_inventory(inventory_path, cwd=str(REPO))
        state.init(inventory, Config())
        gateways = [h.name for h in inventory.get_group("gateways", default=[])]
        target = monitoring_target(inventory)
        if target is not None and not direct:
            s = target.settings
            return prometheus_snapshot(Prometheus(f"http://{s.monitoring_ip}:{s.prometheus_port}"), gateways)
        return direct_snapshot(inventory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make status", description=__doc__.splitlines()[0])
    parser.add_argument("inventory", nargs="?", default=DEFAULT_INVENTORY, help="pyinfra inventory")
    parser.add_argument("--json", action="store_true", help="print what the screen shows as JSON")
    parser.add_argument(
        "--direct", action="store_true", help="probe the hosts directly even with a monitoring group"
    )
    args = parser.parse_args(argv)
    try:
        snapshot = snapshot_of(args.inventory, direct=args.direct)
    except OSError as error:
        print(f"make status: cannot read the fleet's state: {error}", file=sys.stderr)
        return 1
    print(json.dumps(snapshot, indent=2) if args.json else render(snapshot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
