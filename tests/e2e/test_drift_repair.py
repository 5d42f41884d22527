"""The permission model's drift scan and repair (hxgw.layout), run for real as root on a fleet
machine, on a scratch tree of the gateway's layout: the scan finds exactly the drift, the repair
fixes it and nothing else. (A unit test could only run it as root on the control machine, and
skipped it otherwise.)"""

from __future__ import annotations

import shlex

import pytest

from hxgw.layout import drift_repair_command, drift_scan_command
from hxgw.settings import parse_settings
from testbed import fleet
from tests.e2e import helpers

MACHINE = fleet.gateway_name(0)
SCRATCH = "/tmp/hx-drift-scratch/gw"


@pytest.fixture
def scratch(fleet_machines):
    helpers.ssh(MACHINE, f"rm -rf {SCRATCH}")
    yield SCRATCH
    helpers.ssh(MACHINE, f"rm -rf {SCRATCH}")


def run(command: str) -> str:
    return helpers.ssh(MACHINE, f"sh -c {shlex.quote(command)}")


def test_drift_scan_finds_and_repair_fixes_only_drift(scratch):
    # 'daemon' exists as a user and a group on every Debian: it plays the service user here. The
    # settings model refuses an existing system account for a real host, so it is set past it.
    settings = parse_settings(
        {"gateway_ip": "192.168.10.39", "litellm_version": "1.108.7", "base_dir": scratch}
    ).model_copy(update={"service_user": "daemon"})
    venv = f"{scratch}/gateway/venvs/r1"
    config_dir, log_dir = settings.config_dir, settings.log_dir
    run(
        f"mkdir -p {venv}/bin {config_dir} {log_dir} {settings.scripts_dir} && "
        f"printf '#!/bin/sh\\n' > {venv}/bin/litellm && "
        f"echo x > {config_dir}/config.yaml && echo x > {config_dir}/gateway.env && "
        f"ln -s {venv} {scratch}/gateway/venv"
    )
    # The modelled state: what the deploy leaves.
    run(f"chmod -R go-w {scratch} && chown -R root:root {scratch}")
    run(f"chown -R root:daemon {config_dir} && chmod 750 {config_dir}")
    run(f"chmod 640 {config_dir}/* && chown -R daemon:daemon {log_dir}")
    assert run(drift_scan_command(settings)) == ""

    run(f"chown -hR nobody:nogroup {scratch} && chmod -R o+w {config_dir}")
    run(f"chmod g+w {venv}/bin/litellm && touch {log_dir}/x && chmod 666 {log_dir}/x")
    found = run(drift_scan_command(settings, limit=3)).splitlines()
    counts = {line.split()[1]: int(line.split()[2]) for line in found if line.startswith("drift_count")}
    assert counts == {"0": 3, "1": 2, "2": 12}  # config dir + 2 files; logs + x; the 12 others
    assert sum(line.startswith("drift ") for line in found) == 3 + 2 + 3  # at most `limit` per tree

    run(drift_repair_command(settings))
    assert run(drift_scan_command(settings)) == ""
    stat = run(f"stat -c '%U:%G %a' {settings.config_file} {venv}/bin/litellm {log_dir}/x")
    assert stat.split("\n")[:3] == ["root:daemon 640", "root:root 644", "daemon:daemon 664"]
    assert run(f"stat -c '%U:%G' {scratch}/gateway/venv").strip() == "root:root"  # the link
