"""Issue 23, beyond `make test` (`make test-long`): a plain deploy started while a rollout holds the
gateway's lock waits for all of the rollout (drain, restart, re-enable), then deploys.

Out of `make test` for its time: a rollout plus a deploy on the rollout fleet (78 s).
"""

from __future__ import annotations

import re
import subprocess
import sys

from tests.e2e import helpers
from tests.e2e import kill_support as kill
from tests.e2e.rollout_support import RolloutResult, rollout_env
from tests.e2e.test_deploy_lock import OTHER, PINNED, finish, held_by, start


def test_a_plain_deploy_waits_for_a_rollout_from_its_drain_to_the_gateway_back_on_the_lb(healthy):
    rf = healthy
    gw = rf.gateways[-1]
    records = len(kill.record_lines(gw))
    rollout = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rollout",
            helpers.INVENTORY,
            "--limit",
            gw,
            "--data",
            f"litellm_version={OTHER}",
        ],
        cwd=helpers.REPO,
        env=rollout_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    holder = held_by(gw, timeout=300)  # after the rollout's own --dry planning
    assert holder.what == "python -m rollout" and holder.pid == str(rollout.pid), holder
    plain = start("--limit", gw, key=rf.key)  # the pin: the other release
    rolled, _ = rollout.communicate(timeout=900)
    assert rollout.returncode == 0, rolled[-4000:]
    assert RolloutResult(rollout.returncode, rolled, 0).status(gw) == "updated", rolled[-3000:]
    deployed = finish(plain)
    assert deployed.returncode == 0, deployed.output[-4000:]
    assert re.search(r"waited \d+ s for the deploy lock \(python -m rollout by ", deployed.output), (
        deployed.output[-3000:]
    )
    lines = kill.record_lines(gw)
    assert [line["litellm"] for line in lines[records:]] == [OTHER, PINNED], lines[records:]
    assert kill.serving_version(gw) == PINNED
