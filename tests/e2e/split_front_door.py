"""`make test-split-fleet`: a fleet whose gateways serve different keys fails the validation at
its front door, while each gateway alone would pass with its own key. Not part of `make test`
(two restarts and a validation of three gateways: ~110 s on a loaded machine, beyond the
issue's e2e budget); the deploy refuses such a fleet before it gets there
(test_fleet_key.py), and hxgw/validation_front_door.py is unit-tested on a stand-in balancer."""

from __future__ import annotations

import json

from tests.e2e import helpers, rollout_support
from tests.e2e.rollout_support import LB


def test_a_split_fleet_fails_the_front_door_validation(healthy, tmp_path):
    with rollout_support.odd_key_on_last_gateway(healthy, serving=True) as (odd, _other):
        report = str(tmp_path / "validation-{host}.json")
        limits = [arg for name in healthy.gateways for arg in ("--limit", name)]
        validated = helpers.pyinfra(
            *limits,
            "--data",
            f"validation_report={report}",
            deploy="tasks/validate.py",
            env={"MASTER_KEY": healthy.key},  # validate with the fleet's key, as clients use it
        )
        assert validated.returncode == 1, validated.output[-3000:]
        front = f"through the front door {helpers.url(LB)} got 401 with the fleet's master key"
        assert front in validated.output
        # The gateways holding the fleet's key pass everything but the front door.
        for name in healthy.gateways[:-1]:
            failed = [
                c
                for c in json.loads((tmp_path / f"validation-{name}.json").read_text())["checks"]
                if c["status"] == "fail"
            ]
            assert [c["check"] for c in failed] == ["front-door"], failed
        assert odd == healthy.gateways[-1]
