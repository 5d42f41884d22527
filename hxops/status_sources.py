"""`make status` without a `monitoring` group: the fleet's state from direct probes (hxops.status).

Each gateway's /health/readiness over HTTP; its release and LiteLLM version over SSH (pyinfra's
connector with the inventory's SSH data, as `make history`); HAProxy's view of each gateway through
hx-lb-ctl on the load balancer; each backend's /api/tags for the model groups' members. Nothing is
changed anywhere; what cannot be read shows '-'.
"""

from __future__ import annotations

import json
import posixpath
import shlex
import urllib.request

from pyinfra.context import ctx_host

from hxgw.catalogue import parse_catalogue
from hxgw.errors import ConfigError

RELEASE_COMMAND = (
    'release=$(readlink {link}); echo "$(basename "$release") $(ls -d "$release"/lib/python3*/site-packages/'
    "litellm-*.dist-info 2>/dev/null | sed -n 's/.*litellm-\\(.*\\)\\.dist-info$/\\1/p' | head -n 1)\""
)


def _ssh(host, command: str) -> str | None:
    with ctx_host.use(host):
        host.connect(raise_exceptions=False)
        if not host.connected:
            return None
        ok, output = host.run_shell_command(command, _timeout=30)
        host.disconnect()
    return "\n".join(output.stdout_lines) if ok else None


def _ready(address: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/health/readiness", timeout=3) as answer:
            return answer.status == 200
    except OSError:
        return False


def _served(url: str) -> set[str] | None:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/api/tags", timeout=3) as answer:
            names = {m.get("name") for m in json.loads(answer.read()).get("models", [])}
    except (OSError, ValueError):
        return None
    return names | {n.split(":")[0] for n in names if n and n.endswith(":latest")}


def _members(gateway) -> dict[str, dict]:
    data = gateway.data
    try:
        catalogue = parse_catalogue(data.get("backends"), data.get("models"), data.get("model_groups", []))
    except ConfigError:
        return {}
    served = {b.name: _served(b.url) for b in catalogue.backends}
    groups = {}
    for group in catalogue.groups:
        live, down = [], []
        for model in (catalogue.model(name) for name in group.members):
            tag = model.litellm_model.split("/", 1)[1]
            names = served.get(model.backend)
            (live if names is not None and tag in names else down).append(f"{tag}@{model.backend}")
        groups[group.name] = {"live": live, "down": down, "cooling": None}
    return groups


def direct_snapshot(inventory) -> dict:
    gateways = list(inventory.get_group("gateways", default=[]))
    lb_state: dict = {}
    for lb in inventory.get_group("loadbalancers", default=[]):
        text = _ssh(lb, "hx-lb-ctl state hx_gateways")
        lb_state = {name: s.get("status") for name, s in json.loads(text).items()} if text else {}
    rows = []
    for gateway in gateways:
        base_dir = gateway.data.get("base_dir")
        link = posixpath.join(str(base_dir), "gateway", "venv") if base_dir else None
        found = _ssh(gateway, RELEASE_COMMAND.format(link=shlex.quote(link))) if link else None
        release, _, litellm = (found or "").strip().partition(" ")
        rows.append(
            {
                "gateway": gateway.name,
                "release": release or None,
                "litellm": litellm or None,
                "ready": _ready(gateway.data.get("gateway_ip"), gateway.data.get("port", 4000)),
                "lb": lb_state.get(gateway.name),
                "rps": None,
                "error_pct": None,
                "p95_s": None,
            }
        )
    groups = _members(gateways[0]) if gateways else {}
    return {
        "source": "direct probes (no `monitoring` group)",
        "gateways": rows,
        "groups": groups,
        "alerts": None,
    }
