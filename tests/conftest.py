"""`--test-order`: run the collected tests in file order (default), reversed, or shuffled
(`random:SEED`), to show that no test depends on another's leftovers.

Under pytest-xdist (`make test` runs two workers) each worker drives a fleet of its own, on the
net testbed/worker_nets.py gives it. This module is loaded before any test module imports
testbed.fleet, which reads its net once at import.
"""

from __future__ import annotations

import os
import random
import sys

from testbed.worker_nets import worker_net
from tests import xdist_groups


def _give_this_worker_its_own_fleet() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # set by pytest-xdist in each worker
    if not worker:
        return
    if "testbed.fleet_layout" in sys.modules:
        raise SystemExit("testbed was imported before tests/conftest.py chose this worker's net")
    if os.environ.get("HX_TESTBED_STATE"):
        raise SystemExit(
            "HX_TESTBED_STATE names one fleet's state directory, but each xdist worker runs a fleet "
            "of its own: unset it, or run without -n"
        )
    os.environ["HX_TESTBED_NET"] = str(worker_net(worker, os.environ))  # the fleet and pyinfra's


_give_this_worker_its_own_fleet()


def pytest_configure(config):
    if not os.environ.get("PYTEST_XDIST_WORKER") and config.getoption("dist", "no") == "loadgroup":
        xdist_groups.make_groups_dir(config)


def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") == "loadgroup":
        return xdist_groups.PublishedGroupScheduling(config, log)
    return None


def pytest_addoption(parser):
    parser.addoption(
        "--test-order",
        default="file",
        help="file (default), reverse, or random:SEED: the order the collected tests run in",
    )


def pytest_collection_modifyitems(config, items):
    order = config.getoption("--test-order")
    if order == "reverse":
        items.reverse()
    elif order.startswith("random:"):
        random.Random(order.split(":", 1)[1]).shuffle(items)
    elif order != "file":
        raise ValueError(f"--test-order {order!r}: use file, reverse or random:SEED")
