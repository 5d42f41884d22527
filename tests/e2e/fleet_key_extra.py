"""`make test-fleet-key-extra`: the master key across the rollout fleet (three gateways behind
hx-lb), beyond `make test`'s e2e budget (each case restarts gateways: ~2-4 min on a loaded
machine). The deploy's refusal of a split fleet and one key after a plain deploy are in
`make test` (test_fleet_key.py); hxgw/validation_front_door.py is unit-tested on a stand-in.

- A rotation with MASTER_KEY reaches every gateway, the control machine and the front door, and
  the next plain deploy keeps it.
- A fleet whose gateways serve different keys fails the validation at its front door, while each
  gateway alone passes with the fleet's key.
"""

from __future__ import annotations

import hashlib
import json
import secrets

import pytest
from openai import AuthenticationError, OpenAI

from tests.e2e import helpers, rollout_support
from tests.e2e.rollout_support import LB


def test_a_rotation_reaches_every_gateway_the_control_machine_and_the_front_door(healthy):
    old, new = healthy.key, "sk-" + secrets.token_urlsafe(32)
    limits = [arg for name in [*healthy.gateways, LB] for arg in ("--limit", name)]
    try:
        rotated = helpers.pyinfra(*limits, env={"MASTER_KEY": new})
        assert rotated.returncode == 0, rotated.output[-3000:]
        assert new not in rotated.output and old not in rotated.output
        door = f"9 of 9 requests through the front door {helpers.url(LB)} served with the fleet's key"
        assert rotated.output.count(door) == len(healthy.gateways), rotated.output[-3000:]
        held = helpers.key_fingerprints(*healthy.gateways)
        assert set(held.values()) == {hashlib.sha256(new.encode()).hexdigest()}, held
        assert helpers.kept_master_key() == new
        client = OpenAI(base_url=f"{helpers.url(LB)}/v1", api_key=new)
        assert all(client.models.list().data for _ in range(30))
        with pytest.raises(AuthenticationError):
            OpenAI(base_url=f"{helpers.url(LB)}/v1", api_key=old).models.list()
        again = helpers.pyinfra(*limits)  # without MASTER_KEY: the fleet keeps the new key
        for name in healthy.gateways:
            helpers.assert_noop(again, name)
    finally:
        back = helpers.pyinfra(*limits, env={"MASTER_KEY": old})
        assert back.returncode == 0, back.output[-3000:]
        rollout_support.wait_all_up(healthy.gateways)


def test_a_split_fleet_fails_the_front_door_validation(healthy, tmp_path):
    with rollout_support.odd_key_on_last_gateway(healthy, serving=True) as (odd, _other):
        report = str(tmp_path / "validation-{host}.json")
        limits = [arg for name in healthy.gateways for arg in ("--limit", name)]
        validated = helpers.pyinfra(
            *limits,
            "--data",
            f"validation_report={report}",
            deploy="tasks/validate.py",
            env={"MASTER_KEY": healthy.key},  # validate with the fleet's key, as its clients use it
        )
        assert validated.returncode == 1, validated.output[-3000:]
        front = f"through the front door {helpers.url(LB)} got 401 with the fleet's master key"
        assert front in validated.output
        # The gateways holding the fleet's key pass everything but the front door.
        for name in healthy.gateways[:-1]:
            checks = json.loads((tmp_path / f"validation-{name}.json").read_text())["checks"]
            assert [c["check"] for c in checks if c["status"] == "fail"] == ["front-door"], checks
        assert odd == healthy.gateways[-1]
