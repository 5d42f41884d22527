"""Issue 23: two deploys of one gateway at once never interleave. The first takes the gateway's
deploy lock; a second of the same release waits for it and then finds nothing to do; one of
another release with a short `deploy_lock_timeout` is refused, naming the holder (control machine,
user, pid, start time, step); `--dry` shows the holder and takes nothing. A rollout holding the lock
from its drain to the gateway's return is in deploy_lock_long.py (make test-long). The end state is one release, and the record's last line names it."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from hxgw.settings import locked_litellm_version
from hxops import deploy_lock
from hxops.gateway_locks import GATEWAY_LOCK, locks_beside
from tests.e2e import helpers
from tests.e2e import kill_support as kill

PINNED = locked_litellm_version(GATEWAY_LOCK.read_text())
OTHER = next(iter(locks_beside()))
GW = helpers.GATEWAY


def start(*args: str, key: str, dry: bool = False) -> subprocess.Popen:
    """`pyinfra -y --json ARGS` (or `--dry`) in the background."""
    mode = ["--dry"] if dry else ["-y", "--json"]
    return subprocess.Popen(
        [helpers.PYINFRA, *mode, *args, helpers.INVENTORY, "deploy.py"],
        cwd=helpers.REPO,
        env=kill.env({"MASTER_KEY": key}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 900) -> helpers.DeployResult:
    started = time.monotonic()
    stdout, stderr = proc.communicate(timeout=timeout)
    operations = None
    if stdout.strip().startswith("{"):
        operations = json.loads(stdout).get("results", {}).get("operations", [])
    return helpers.DeployResult(proc.returncode, stdout, stderr, time.monotonic() - started, operations)


def held_by(name: str, timeout: float = 120) -> deploy_lock.Holder:
    """The holder of `name`'s deploy lock, once there is one (polled over SSH)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = deploy_lock.read_holder(helpers.ssh(name, deploy_lock.SHOW_COMMAND).splitlines())
        if holder is not None:
            return holder
        time.sleep(0.2)
    raise AssertionError(f"nobody took the deploy lock of {name} within {timeout} s")


@pytest.fixture
def on_the_pin_after(first_deploy):
    key = helpers.master_key(GW)
    yield key
    helpers.redeploy(GW, env={"MASTER_KEY": key})
    assert kill.serving_version(GW) == PINNED


def test_two_deploys_at_once_one_waits_and_finds_nothing_the_other_is_refused_naming_the_holder(
    on_the_pin_after,
):
    key = on_the_pin_after
    records = len(kill.record_lines(GW))
    first = start("--limit", GW, "--data", f"litellm_version={OTHER}", key=key)
    holder = held_by(GW)
    assert holder.pid == str(first.pid) and holder.what == "pyinfra deploy.py", holder
    same = start("--limit", GW, "--data", f"litellm_version={OTHER}", key=key)
    other = start(
        "--limit", GW, "--data", f"litellm_version={PINNED}", "--data", "deploy_lock_timeout=3", key=key
    )
    dry = start("--limit", GW, "--data", f"litellm_version={PINNED}", key=key, dry=True)

    shown = finish(dry)
    assert (
        f"the deploy lock is held by pyinfra deploy.py by {holder.user}@{holder.control} (pid {first.pid}"
        in (shown.output)
    ), shown.output[-3000:]
    refused = finish(other)
    assert refused.returncode == 1
    message = re.search(r"another deploy holds the deploy lock of \S+ \((.*?)\); waited", refused.output)
    assert message, refused.output[-3000:]
    assert re.fullmatch(
        rf"pyinfra deploy\.py by {re.escape(holder.user)}@{re.escape(holder.control)} \(pid {first.pid}, "
        r"started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\), at step: .+",
        message.group(1),
    ), message.group(1)

    changed = finish(first)
    assert changed.returncode == 0, changed.output[-4000:]
    assert any(name.endswith("Restart the gateway and wait for readiness") for name in changed.changed(GW))
    waited = finish(same)
    assert re.search(
        rf"waited \d+ s for the deploy lock \(pyinfra deploy\.py by .* \(pid {first.pid},", waited.output
    )
    helpers.assert_noop(waited, GW)  # planned after the first had finished: nothing left to do

    assert kill.serving_version(GW) == OTHER
    lines = kill.record_lines(GW)
    assert len(lines) == records + 1 and lines[-1]["litellm"] == OTHER and lines[-1]["outcome"] == "updated"
    assert helpers.ssh(GW, f"cat {deploy_lock.HOLDER_FILE} 2>/dev/null || echo none").strip() == "none"
