"""The security model's pure pieces: the permission model's trees and scan command, the unit's
hardening as rendered, and the listen address rules. (The scan and repair run for real, as root
on a fleet machine, in tests/e2e/test_drift_repair.py.)"""

from __future__ import annotations

import subprocess

import pytest

from hxgw.layout import drift_scan_command, trees
from hxgw.serving import serving_for
from hxgw.settings import parse_settings
from tests.unit.helpers import render

BASELINE = {"gateway_ip": "192.168.10.39", "litellm_version": "1.108.7"}


def run(command: str) -> str:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout


def test_trees_carve_config_and_logs_out_of_the_root_owned_rest():
    settings = parse_settings({**BASELINE, "base_dir": "/opt/hx"})
    assert [(t.path, t.user, t.group, t.forbidden) for t in trees(settings)] == [
        ("/opt/hx/config/api-gateway", "root", "hx-gateway", "027"),
        ("/opt/hx/logs/services", "hx-gateway", "hx-gateway", "002"),
        ("/opt/hx", "root", "root", "022"),
    ]
    scan = drift_scan_command(settings)
    assert "-path /opt/hx/config/api-gateway -prune -o -path /opt/hx/logs/services -prune" in scan


def test_unit_is_hardened_and_stays_off_the_internet():
    settings = parse_settings({**BASELINE, "base_dir": "/opt/hx"})
    unit = render("hx-litellm-gateway.service.j2", settings=settings, serving=serving_for(settings, 2, 4096))
    lines = unit.splitlines()
    for directive in (
        "MemoryDenyWriteExecute=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6",
        "Environment=LITELLM_LOCAL_MODEL_COST_MAP=True",
        "Environment=LITELLM_TELEMETRY_DISABLED=True",
        "CapabilityBoundingSet=",
        "PrivateUsers=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/opt/hx/logs/services",
    ):
        assert directive in lines, directive
    assert "AF_UNIX" not in "".join(line for line in lines if not line.startswith("#"))


@pytest.mark.parametrize(
    ("listen_host", "loopback_only"),
    [("0.0.0.0", False), ("192.168.10.39", False), ("127.0.0.1", True), ("127.0.1.1", True)],
)
def test_listen_hosts_that_reach_clients_or_only_the_host(listen_host, loopback_only):
    settings = parse_settings({**BASELINE, "base_dir": "/opt/hx", "listen_host": listen_host})
    assert settings.loopback_only is loopback_only
    assert settings.public_url == "http://192.168.10.39:4000"
