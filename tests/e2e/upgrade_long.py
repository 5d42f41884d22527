"""Issue 11: a LiteLLM upgrade and a downgrade are one `make rollout` each, over the rollout
fleet's three gateways behind hx-lb, with steady client traffic through the load balancer that
never sees a failed request. The second release is the one locked beside the pin
(requirements/gateway-X.Y.Z.lock), shipped like the pin from its own cached wheelhouse. Each
gateway's record (`make history`) gains one entry per change and none for a no-op run; old
release venvs are pruned to `keep_releases`.

ONE test function: each direction costs a venv install or a restart per gateway. After the canary,
the other two go as one batch (`--batch-size 2`), so the canary alone carries the traffic while
they restart: a harder case for "no failed request" than one at a time, and one step shorter."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import pytest

from hxgw.settings import locked_litellm_version
from hxops.gateway_locks import GATEWAY_LOCK, locks_beside
from tests.e2e import helpers
from tests.e2e.rollout_support import LB, ClientLoop, rollout, wait_all_up

PINNED = locked_litellm_version(GATEWAY_LOCK.read_text())
OTHER = next(iter(locks_beside()), None)
LONG = 2400  # seconds: a rollout that installs a venv on each of three gateways, on a loaded machine


def served_version(name: str, key: str) -> str:
    """The LiteLLM version the gateway itself reports to a client: the x-litellm-version header
    of an embedding's answer (/v1/models and the probes carry none)."""
    answer = httpx.post(
        helpers.url(name) + "/v1/embeddings",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "emb-light", "input": "which release serves?"},
        timeout=60,
        trust_env=False,
    )
    assert answer.status_code == 200, answer.text[:300]
    return answer.headers["x-litellm-version"]


def installed_releases(name: str) -> set[str]:
    return set(helpers.ssh(name, f"cat {helpers.BASE}/gateway/venvs/*/.hx-release").split())


def running_release(name: str) -> str:
    return helpers.ssh(name, f"cat {helpers.BASE}/gateway/venv/.hx-release").strip()


def history() -> list[dict]:
    """`make history ARGS=--json`, as an operator's tool reads it."""
    command = [sys.executable, "-m", "hxops.history", helpers.INVENTORY, "--json"]
    run = subprocess.run(command, cwd=helpers.REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def drain_to_back_seconds(result, gateways: list[str]) -> dict:
    """Each gateway's time from its drain to back UP, from the rollout's report."""
    found = {n: re.search(r"\s(\d+\.\d) s\s", result.row(n) + " ") for n in gateways}
    return {n: float(m.group(1)) if m else None for n, m in found.items()}


@pytest.fixture
def back_on_the_pin(healthy):
    """After the test, every gateway of the rollout fleet serves the pinned release again, even
    when the test stopped between the upgrade and the downgrade."""
    yield healthy
    if any(served_version(n, healthy.key) != PINNED for n in healthy.gateways):
        result = rollout(healthy, "--batch-size", str(len(healthy.gateways)), timeout=LONG)
        assert result.returncode == 0, f"could not put the pinned release back:\n{result.output[-4000:]}"


def test_upgrade_then_downgrade_through_the_lb_fails_no_request_and_is_recorded(back_on_the_pin):
    rf = back_on_the_pin
    gateways = rf.gateways
    assert OTHER, "no release locked beside the pin: make lock LITELLM=X.Y.Z BESIDE=1"
    assert {n: served_version(n, rf.key) for n in gateways} == dict.fromkeys(gateways, PINNED)
    pinned_release = {n: running_release(n) for n in gateways}
    recorded_before = len(history())

    with ClientLoop(helpers.url(LB), rf.key) as loop:
        loop.wait_for_requests(20)
        before = loop.count()
        upgrade = rollout(rf, "--batch-size", "2", "--data", f"litellm_version={OTHER}", timeout=LONG)
        during_upgrade = loop.count() - before
        upgraded = {n: served_version(n, rf.key) for n in gateways}
        releases_after_upgrade = {n: installed_releases(n) for n in gateways}
        other_release = {n: running_release(n) for n in gateways}
        # The downgrade is the same command; keep_releases = 1 leaves only the running venv.
        downgrade = rollout(rf, "--batch-size", "2", "--data", "keep_releases=1", timeout=LONG)
        loop.wait_for_requests(20)
        requests, errors, samples = loop.stop()

    figures = {
        "upgrade": f"{PINNED} -> {OTHER}",
        "requests": requests,
        "requests_during_the_upgrade": during_upgrade,
        "errors": errors,
        "upgrade_drain_to_back_s": drain_to_back_seconds(upgrade, gateways),
        "downgrade_drain_to_back_s": drain_to_back_seconds(downgrade, gateways),
        "upgrade_s": round(upgrade.seconds, 1),
        "downgrade_s": round(downgrade.seconds, 1),
    }
    print(f"upgrade figures: {json.dumps(figures)}")
    (helpers.REPO / "reports").mkdir(exist_ok=True)
    (helpers.REPO / "reports" / "upgrade.json").write_text(json.dumps(figures, indent=2) + "\n")

    assert upgrade.returncode == 0, upgrade.output[-4000:]
    assert downgrade.returncode == 0, downgrade.output[-4000:]
    assert [upgrade.status(n) for n in gateways] == ["updated"] * len(gateways)
    assert [downgrade.status(n) for n in gateways] == ["updated"] * len(gateways)
    assert upgraded == dict.fromkeys(gateways, OTHER)
    assert {n: served_version(n, rf.key) for n in gateways} == dict.fromkeys(gateways, PINNED)
    assert errors == 0, f"{errors} failed requests of {requests}: {samples[:5]}"
    assert during_upgrade > 0 and requests > before + during_upgrade, figures
    # keep_releases = 2 (the default) kept the release the upgrade left; 1 pruned it on the way back.
    for name in gateways:
        assert other_release[name] != pinned_release[name]
        assert releases_after_upgrade[name] == {pinned_release[name], other_release[name]}
        assert installed_releases(name) == {pinned_release[name]}
        assert running_release(name) == pinned_release[name]

    # The record: one "updated" entry per gateway and direction, read back from the hosts.
    entries = history()[recorded_before:]
    for name in gateways:
        mine = [(e["outcome"], e["litellm"], e["release"]) for e in entries if e["gateway"] == name]
        assert mine == [
            ("updated", OTHER, other_release[name]),
            ("updated", PINNED, pinned_release[name]),
        ], entries
    assert all(e["commit"] and e["operator"] and "dirty" in e for e in entries)
    assert all(e["time"] >= prev["time"] for prev, e in zip(entries, entries[1:], strict=False))
    # A no-op run adds nothing.
    helpers.assert_noop(helpers.pyinfra("--limit", helpers.GATEWAY), helpers.GATEWAY)
    assert len(history()) == recorded_before + len(entries)
    wait_all_up(gateways)
