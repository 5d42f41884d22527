"""`python -m rollout`'s refusals before anything connects, each driven through the real command
line: argument errors (argparse's exit 2 and its words) and a --limit that matches no gateway
(exit 1, said before any planning). The inventory here is a file of made-up hosts on the
testbed's range that nothing ever connects to."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.unit.helpers import REPO

USAGE = "usage: python -m rollout [-h]"


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inventory.py"
    path.write_text(
        'gateways = [("gw-a", {"ssh_hostname": "198.18.250.2"}), ("gw-b", {"ssh_hostname": "198.18.250.3"})]\n'
        'loadbalancers = [("lb-a", {"ssh_hostname": "198.18.250.4"})]\n'
    )
    return str(path)


def rollout(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rollout", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ([], "the following arguments are required: inventory"),
        (["INV", "--batch-size", "0"], "--batch-size must be at least 1"),
        (["INV", "--batch-size", "two"], "argument --batch-size: invalid int value: 'two'"),
        (["INV", "--drain-timeout", "soon"], "argument --drain-timeout: invalid float value: 'soon'"),
        (["INV", "--json"], "the rollout sets --json itself"),
        (["INV", "-y", "--diff"], "the rollout sets -y, --diff itself"),
        (["no-such-inventory.py"], "no inventory file no-such-inventory.py"),
    ],
)
def test_argument_errors_exit_2_with_the_problem(inventory, args, error):
    run = rollout(*[inventory if a == "INV" else a for a in args])
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr.startswith(USAGE)
    assert run.stderr.rstrip().splitlines()[-1] == f"python -m rollout: error: {error}"


def test_a_limit_matching_no_gateway_exits_1_before_planning(inventory):
    run = rollout(inventory, "--limit", "gw-z*", "--limit", "lb-a")
    assert (run.returncode, run.stdout) == (1, "")  # no "--> planning": nothing ran anywhere
    assert run.stderr == "rollout: --limit gw-z* lb-a matches no host of the `gateways` group\n"


def test_an_inventory_without_gateways_exits_1(tmp_path):
    path = tmp_path / "inventory.py"
    path.write_text('loadbalancers = [("lb-a", {"ssh_hostname": "198.18.250.4"})]\n')
    run = rollout(str(path))
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == f"rollout: {path} has no `gateways` group: nothing to roll out\n"
