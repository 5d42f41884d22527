"""One local fleet shared by every end-to-end test, and one first deploy onto it (under
pytest-xdist: one fleet per worker, tests/conftest.py).

The fleet must start: when it cannot (not root, missing tools, boot failure) every e2e test
ERRORS with the reason. Nothing here skips.
"""

from __future__ import annotations

import os
import tempfile

import pytest

from testbed import fleet
from tests import xdist_groups
from tests.e2e import helpers, rollout_support

GATEWAY = helpers.GATEWAY

# The fleets' gateways run one LiteLLM worker (testbed/inventory.py reads this in every pyinfra
# run the tests start). With the default (one per CPU: 2 on these hosts) LiteLLM's parent imports
# the proxy and so does each worker: a start costs ~25 s of CPU and ~16 s to ready, against ~8 and
# ~8 with one (measured on the testbed, 2026-12-02), and the suite starts gateways many dozens of
# times on 2 CPUs. Tests about serving with several workers deploy the default themselves
# (helpers.DEFAULT_SERVING). `HX_TESTBED_GATEWAY_WORKERS= make test` runs everything on the default.
os.environ.setdefault("HX_TESTBED_GATEWAY_WORKERS", "1")
# The clients' keys the tests make (hxops.client_keys) stay in a directory of this run, never in
# the operator's ~/.config; every pyinfra run the tests start reads them from there.
os.environ.setdefault("HX_CLIENT_KEYS_DIR", tempfile.mkdtemp(prefix="hx-client-keys-"))


# Tests that share a costly fixture run on one xdist worker (`--dist loadgroup`), so the fixture
# is built once per run, not once per worker: the tests of each session fixture named here in a
# group of that name, and a module's tests in one group when it has a module-scoped fixture (a
# machine or a deploy of its own). A new costly session fixture joins by adding its name.
GROUPED_SESSION_FIXTURES = ("rollout_fleet",)


def xdist_group(item) -> str | None:
    for name in GROUPED_SESSION_FIXTURES:
        if name in item.fixturenames:
            return name
    fixtures = getattr(item, "_fixtureinfo", None)
    definitions = fixtures.name2fixturedefs.values() if fixtures else []
    if any(defs[-1].scope == "module" for defs in definitions):
        return item.nodeid.split("::", 1)[0]
    return None


def pytest_collection_modifyitems(items):
    groups = {}
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            group = xdist_group(item)
            if group:
                item.add_marker(pytest.mark.xdist_group(group))
                groups[item.nodeid] = group
    xdist_groups.publish(groups)  # the marks alone no longer reach xdist's scheduler (see there)


@pytest.fixture(scope="session")
def fleet_machines():
    if os.geteuid() != 0:
        pytest.fail("the end-to-end tests need root for the local fleet (network namespaces, nspawn)")
    try:
        machines = fleet.up(gateways=1)
    except Exception as error:  # noqa: BLE001 - any failure to boot is the test run's failure
        pytest.fail(f"the local fleet could not start: {error}")
    yield machines
    if os.environ.get("HX_KEEP_FLEET") != "1":
        fleet.down()


@pytest.fixture(scope="session")
def first_deploy(fleet_machines) -> helpers.DeployResult:
    """The first deploy of the shared gateway; tests that need a deployed gateway depend on it."""
    result = helpers.pyinfra("--limit", GATEWAY)
    assert result.returncode == 0, f"first deploy failed:\n{result.output[-4000:]}"
    return result


@pytest.fixture
def restore_gateway(first_deploy):
    """After the test, the shared gateway is back in the repository's state with the key it had.
    A teardown that fails is reported as an error of its own: it never hides the test's failure."""
    key = helpers.master_key(GATEWAY)
    yield
    helpers.redeploy(GATEWAY, env={"MASTER_KEY": key})


@pytest.fixture(scope="session")
def rollout_fleet(first_deploy) -> rollout_support.RolloutFleet:
    """Three gateways (the shared one first, then two of the rollout's own) behind hx-lb,
    deployed once the README's way, without MASTER_KEY: the two new gateways get the fleet's key
    (the one the shared gateway holds and the control machine keeps), no other module's changes."""
    added = [m.name for m in fleet.add_gateways(2)]
    fleet.add_loadbalancer()
    gateways = [GATEWAY, *added]
    limits = [arg for name in [*gateways, rollout_support.LB] for arg in ("--limit", name)]
    result = helpers.pyinfra(*limits)  # in parallel
    assert result.returncode == 0, f"the rollout fleet's first deploy failed:\n{result.output[-4000:]}"
    key = helpers.kept_master_key()  # as `make master-key` prints it
    rf = rollout_support.RolloutFleet(gateways, key, rollout_support.config_sha(GATEWAY))
    rollout_support.wait_all_up(gateways)
    yield rf
    for name in added:
        fleet.remove_machine(name)


@pytest.fixture
def healthy(rollout_fleet) -> rollout_support.RolloutFleet:
    """The rollout fleet in its starting state before the test; after it, the shared gateway as
    the other modules expect it."""
    rollout_support.make_healthy(rollout_fleet)
    yield rollout_fleet
    rollout_support.leave_shared_gateway_as_found(rollout_fleet)


@pytest.fixture
def llm02_down(first_deploy):
    """The backend llm-02 powered off; after the test, on again and served by the shared gateway."""
    fleet.power_off("llm-02")
    yield fleet.find("llm-02").address
    fleet.power_on("llm-02")
    helpers.wait_served(GATEWAY, "llm02-phi3")
