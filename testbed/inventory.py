"""pyinfra inventory of the running local fleet: `pyinfra testbed/inventory.py deploy.py`.

Hosts and addresses come from the fleet's state file, so this follows `--gateways N` and
HX_TESTBED_NET. Host data points the deploy at the fleet's fake Ollama backends instead of
production's 192.168.10.x. HX_TESTBED_GATEWAY_WORKERS=N gives every gateway num_workers = N (the
end-to-end tests set 1, tests/e2e/conftest.py); unset or empty, the deploy's default applies.
Every net's fleet has its own `fleet_name` (testbed-netN), hence its own master key.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed import fleet  # noqa: E402
from testbed.fleet_layout import NET  # noqa: E402

_machines = fleet.load_machines()
if not _machines:
    raise RuntimeError("the local fleet is not up: run `make testbed-up` (python -m testbed up) first")

_ssh = {
    "ssh_user": "root",
    "ssh_key": str(fleet.SSH_KEY),
    "ssh_known_hosts_file": "/dev/null",
    "ssh_strict_host_key_checking": "no",
    "ssh_connect_retries": 2,
}
_backends = [
    {"name": m.name, "url": f"http://{m.address}:{fleet.OLLAMA_PORT}"}
    for m in _machines
    if m.role == "backend"
]

# Each net's fleet is a fleet of its own: its master key is kept apart from every other's
# (hxops/secret_store.py), so parallel test workers never share or overwrite one.
_fleet = {"fleet_name": f"testbed-net{NET}"}
_workers = os.environ.get("HX_TESTBED_GATEWAY_WORKERS", "").strip()
_serving = {"num_workers": int(_workers)} if _workers else {}

gateways = [
    (
        m.name,
        {
            **_ssh,
            "ssh_hostname": m.address,
            "gateway_ip": m.address,
            "backends": _backends,
            **_fleet,
            **_serving,
        },
    )
    for m in _machines
    if m.role == "gateway"
]
_lbs = [(m.name, {**_ssh, "ssh_hostname": m.address}) for m in _machines if m.role == "loadbalancer"]
if _lbs:
    loadbalancers = _lbs
_caches = [
    (m.name, {**_ssh, "ssh_hostname": m.address, "cache_ip": m.address})
    for m in _machines
    if m.role == "cache"
]
if _caches:
    caches = _caches
# The fleet's Prometheus works on seconds, not the production defaults' minutes, so the tests see
# a fault fire and resolve quickly (hxgw/monitoring_settings.py declares each).
FAST_MONITORING = {
    "scrape_interval_s": 1,
    "evaluation_interval_s": 1,
    "alert_for_s": 2,
    "backend_probe_interval_s": 1,
    "alert_group_wait_s": 1,
    "alert_group_interval_s": 2,
    "alert_repeat_s": 3600,
}
_pagers = [m for m in _machines if m.role == "pager"]
_monitors = [
    (
        m.name,
        {
            **_ssh,
            "ssh_hostname": m.address,
            "monitoring_ip": m.address,
            **({"alert_webhook_url": f"http://{_pagers[0].address}:9095/hx-alerts"} if _pagers else {}),
            **FAST_MONITORING,
        },
    )
    for m in _machines
    if m.role == "monitoring"
]
if _monitors:
    monitoring = _monitors
