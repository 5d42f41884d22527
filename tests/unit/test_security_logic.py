"""The security model's pure pieces: the permission model's drift scan and repair (run for real on
a scratch tree), the unit's hardening as rendered, and the listen address rules."""

from __future__ import annotations

import os
import subprocess

import pytest

from hxgw.layout import drift_repair_command, drift_scan_command, trees
from hxgw.settings import parse_settings
from tests.unit.test_render import render

BASELINE = {"gateway_ip": "192.168.10.39", "litellm_version": "1.108.7"}


def run(command: str) -> str:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to other users needs root")
def test_drift_scan_finds_and_repair_fixes_only_drift(tmp_path):
    # 'daemon' exists as a user and a group on every Debian: it plays the service user here. The
    # settings model refuses an existing system account for a real host, so it is set past it.
    settings = parse_settings({**BASELINE, "base_dir": str(tmp_path / "gw")}).model_copy(
        update={"service_user": "daemon"}
    )
    venv = tmp_path / "gw" / "gateway" / "venvs" / "r1" / "bin"
    venv.mkdir(parents=True)
    (venv / "litellm").write_text("#!/bin/sh\n")
    for directory in (settings.config_dir, settings.log_dir, settings.scripts_dir):
        os.makedirs(directory)
    for name in ("config.yaml", "gateway.env"):
        (tmp_path / "gw" / "config" / "api-gateway" / name).write_text("x\n")
    (tmp_path / "gw" / "gateway" / "venv").symlink_to(venv.parent)
    # The modelled state: what the deploy leaves.
    run(f"chmod -R go-w {tmp_path / 'gw'} && chown -R root:root {tmp_path / 'gw'}")
    run(f"chown -R root:daemon {settings.config_dir} && chmod 750 {settings.config_dir}")
    run(f"chmod 640 {settings.config_dir}/* && chown -R daemon:daemon {settings.log_dir}")
    assert run(drift_scan_command(settings)) == ""

    run(f"chown -hR nobody:nogroup {tmp_path / 'gw'} && chmod -R o+w {tmp_path / 'gw' / 'config'}")
    run(f"chmod g+w {venv / 'litellm'} && touch {settings.log_dir}/x && chmod 666 {settings.log_dir}/x")
    found = run(drift_scan_command(settings, limit=3)).splitlines()
    counts = {line.split()[1]: int(line.split()[2]) for line in found if line.startswith("drift_count")}
    assert counts == {"0": 3, "1": 2, "2": 12}  # config dir + 2 files; logs + x; the 12 others
    assert sum(line.startswith("drift ") for line in found) == 3 + 2 + 3  # at most `limit` per tree

    run(drift_repair_command(settings))
    assert run(drift_scan_command(settings)) == ""
    stat = run(f"stat -c '%U:%G %a' {settings.config_file} {venv / 'litellm'} {settings.log_dir}/x")
    assert stat.split("\n")[:3] == ["root:daemon 640", "root:root 644", "daemon:daemon 664"]
    assert run(f"stat -c '%U:%G' {tmp_path / 'gw' / 'gateway' / 'venv'}").strip() == "root:root"  # the link


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
    unit = render("hx-litellm-gateway.service.j2", settings=settings)
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
