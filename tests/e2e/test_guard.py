"""The identity guard: on a fresh machine (booted for the test, removed after) it refuses before
any change; FORCE=1 gets past it."""

from __future__ import annotations

import pytest

from testbed import fleet
from tests.e2e import helpers

WRONG_ADDRESS = "198.18.0.250"


@pytest.fixture
def fresh_gateway(fleet_machines):
    """A gateway machine of its own that no deploy has touched yet."""
    name = helpers.fresh_gateway()
    yield name
    fleet.remove_machine(name)


def test_guard_refuses_a_host_that_does_not_own_the_gateway_address(fresh_gateway):
    before = helpers.untouched_snapshot(fresh_gateway)
    assert "hx-gateway" not in before
    dry = helpers.pyinfra(
        "--dry", "--limit", fresh_gateway, "--data", f"gateway_ip={WRONG_ADDRESS}", json_output=False
    )
    assert dry.returncode == 1 and "REFUSING TO DEPLOY" in dry.output  # --dry fails the host too
    result = helpers.pyinfra("--limit", fresh_gateway, "--data", f"gateway_ip={WRONG_ADDRESS}")
    assert result.returncode == 1
    assert "REFUSING TO DEPLOY" in result.output
    assert WRONG_ADDRESS in result.output
    assert "FORCE=1" in result.output  # the message names the way out
    assert helpers.untouched_snapshot(fresh_gateway) == before


def test_force_passes_the_guard_with_a_loud_warning(first_deploy):
    """On the deployed shared gateway (gateway_ip is used by the guard and the validation's URL
    only): FORCE=1 gets every later step planned and run, validated at the address the deploy
    reached the host by, and, the host being as wanted, nothing changes."""
    gateway = helpers.GATEWAY
    result = helpers.pyinfra("--limit", gateway, "--data", f"gateway_ip={WRONG_ADDRESS}", env={"FORCE": "1"})
    helpers.assert_noop(result, gateway)
    assert "FORCED past the identity guard" in result.output
    assert "validation OK: " in result.output and f"({helpers.url(gateway)}, litellm " in result.output
    assert any(name.startswith("tasks/service.py") for name in result.unchanged(gateway))
