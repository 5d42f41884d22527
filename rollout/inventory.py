"""`python -m rollout.inventory INVENTORY`: the gateways and load balancers of a pyinfra inventory
as JSON, with the host data the rollout needs (its SSH goes through pyinfra: rollout/remote.py).

A separate process on purpose: importing pyinfra's CLI monkey-patches the whole interpreter for
gevent, which the rollout (threads, subprocesses) must not inherit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hxops.deploy_lock import SSH_KEYS

REPO = Path(__file__).resolve().parent.parent
KEYS = (
    "gateway_ip",  # the gateway's address for the readiness watch
    "port",
    "deploy_lock_timeout",  # the deploy lock the rollout holds around each batch (hxops.deploy_lock)
    *SSH_KEYS,
)


def describe(path: str) -> dict:
    from pyinfra.api import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    with ctx_state.use(State()):
        inventory = make_inventory(path, cwd=str(REPO))
    gateways = inventory.get_group("gateways", default=[])
    lbs = inventory.get_group("loadbalancers", default=[])
    return {
        "gateways": [h.name for h in gateways],
        "loadbalancers": [h.name for h in lbs],
        "data": {h.name: {k: h.data.get(k) for k in KEYS} for h in [*gateways, *lbs]},
    }


if __name__ == "__main__":
    print(json.dumps(describe(sys.argv[1]), default=str))
