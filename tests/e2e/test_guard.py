"""The identity guard on a fresh machine: it refuses before any change; FORCE=1 gets past it."""

from __future__ import annotations

import pytest

from testbed import fleet
from tests.e2e import helpers

WRONG_ADDRESS = "198.18.0.250"


@pytest.fixture(scope="module")
def fresh_gateway(fleet_machines):
    """A gateway machine of its own that no deploy has touched yet."""
    existing = [m for m in fleet.load_machines() if m.role == "gateway"]
    if len(existing) < 2:
        fleet.add_gateways(1)
    name = fleet.gateway_name(1)
    # Another module may have powered it off (install_paths) or deployed it (rollout): take a new one.
    if not fleet.pid_alive(fleet.find(name).pid) or "hx-gateway" in _snapshot(name):
        return fleet.add_gateways(1)[0].name
    return name


def _snapshot(name: str) -> str:
    """What a deploy would create or change, as one comparable text."""
    return helpers.ssh(
        name,
        "getent passwd hx-gateway; ls -la /opt /etc/systemd/system; "
        "find /opt /etc/systemd/system -newer /etc/hostname 2>/dev/null | sort",
        check=False,
    )


def test_guard_refuses_a_host_that_does_not_own_the_gateway_address(fresh_gateway):
    before = _snapshot(fresh_gateway)
    dry = helpers.pyinfra(
        "--dry", "--limit", fresh_gateway, "--data", f"gateway_ip={WRONG_ADDRESS}", json_output=False
    )
    assert dry.returncode == 1 and "REFUSING TO DEPLOY" in dry.output  # --dry fails the host too
    result = helpers.pyinfra("--limit", fresh_gateway, "--data", f"gateway_ip={WRONG_ADDRESS}")
    assert result.returncode == 1
    assert "REFUSING TO DEPLOY" in result.output
    assert WRONG_ADDRESS in result.output
    assert "FORCE=1" in result.output  # the message names the way out
    assert _snapshot(fresh_gateway) == before
    assert "hx-gateway" not in before
    # Only the refusal itself ran; no operation changed anything.
    assert result.changed(fresh_gateway) == []


def test_force_passes_the_guard_with_a_loud_warning(fresh_gateway):
    result = helpers.pyinfra(
        "--limit", fresh_gateway, "--data", f"gateway_ip={WRONG_ADDRESS}", env={"FORCE": "1"}
    )
    assert result.returncode == 0, result.output[-3000:]
    assert "FORCED past the identity guard" in result.output
    assert helpers.ssh(fresh_gateway, "systemctl is-active hx-litellm-gateway.service").strip() == "active"
