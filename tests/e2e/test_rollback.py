"""The rollback to the last known good release (rollback.sh, which the deploy runs when a change
does not come up or fails validation), beyond config.yaml: the key, the unit and the venv link
come back too; its "not rolled back" exits (the saved venv gone, the failing release is the
saved one; no saved release yet is driven through a deploy below); and the saved release is
never touched by a rollback, root's alone (700/600). Those run the script over SSH on the shared
gateway, as the deploy runs it, with the host state made by hand.

Then real deploys of a change LiteLLM rejects whose rollback cannot help: nothing saved yet
(exit 2) and a saved release that does not start either (exit 3): the host fails with the cause,
the deployment record says "NOT rolled back", and the next run repairs. The successful
deploy-driven rollback is in test_rollout.py (fault 1).
"""

from __future__ import annotations

import json
import shlex

import pytest

from tests.e2e import helpers

GATEWAY = helpers.GATEWAY
ROLLBACK = f"{helpers.SCRIPTS}/rollback.sh"
GOOD = helpers.LAST_GOOD
VENV_LINK = f"{helpers.BASE}/gateway/venv"
SAVED = helpers.SAVED_RELEASE


def rollback(cause: str) -> tuple[int, str]:
    machine_out = helpers.ssh(GATEWAY, f'{ROLLBACK} {shlex.quote(cause)}; echo "exit $?"', timeout=420)
    lines = machine_out.strip().splitlines()
    return int(lines[-1].split()[1]), "\n".join(lines[:-1])


def saved_release() -> dict:
    return helpers.saved_release(GATEWAY)


def live_release() -> dict:
    return {
        "sha": helpers.sha256(GATEWAY, helpers.CONFIG, helpers.ENV_FILE, helpers.UNIT_FILE),
        "venv": helpers.ssh(GATEWAY, f"readlink {VENV_LINK}").strip(),
    }


@pytest.fixture
def saved(restore_gateway):
    """The saved release before the test; after it, the test must not have changed it."""
    before = saved_release()
    assert before["modes"] == {
        GOOD: "root:root 700",
        **{f"{GOOD}/{name}": "root:root 600" for name in SAVED},
    }
    assert helpers.stats(GATEWAY, f"{helpers.BASE}/releases")[f"{helpers.BASE}/releases"] == "root:root 700"
    return before


@pytest.fixture
def other_venv(saved):
    """Another name for the venv (a link), so the venv link can point elsewhere cheaply."""
    path = f"{helpers.BASE}/gateway/venvs/hx-test-other"
    yield path
    helpers.ssh(GATEWAY, f"rm -f {path}")


def test_rollback_restores_config_key_unit_and_venv_link(saved, other_venv):
    good_live = live_release()
    helpers.ssh(
        GATEWAY,
        f"echo '# changed by hand' >> {helpers.CONFIG} && "
        f"sed -i 's/=.*/=sk-ChangedByHandChangedByHandChangedByHand/' {helpers.ENV_FILE} && "
        f"echo '# changed by hand' >> {helpers.UNIT_FILE} && systemctl daemon-reload && "
        f"ln -sfn {good_live['venv']} {other_venv} && ln -sfn {other_venv} {VENV_LINK}",
    )
    changed = live_release()
    assert (
        all(changed["sha"][p] != good_live["sha"][p] for p in good_live["sha"])
        and changed["venv"] == other_venv
    )
    status, output = rollback("test: every part of the release changed")
    assert status == 0, output
    assert "ROLLED BACK: the last known good release serves again; cause: test: every part" in output
    assert live_release() == good_live
    assert helpers.ssh(GATEWAY, f"systemctl show -p NeedDaemonReload --value {helpers.UNIT}").strip() == "no"
    helpers.wait_ready(GATEWAY)
    assert saved_release() == saved  # a rollback reads the saved release, never writes it


def test_not_rolled_back_when_the_failing_release_is_the_saved_one(saved):
    pid, live = helpers.main_pid(GATEWAY), live_release()
    status, output = rollback("test: nothing differs")
    assert status == 2, output
    assert (
        "NOT ROLLED BACK: the failing release is the last known good one; cause: test: nothing differs"
        in output
    )
    assert (helpers.main_pid(GATEWAY), live_release()) == (pid, live)
    assert saved_release() == saved


@pytest.fixture
def saved_venv_gone(saved):
    """The saved release names a venv that is no longer there (pruned by hand)."""
    helpers.ssh(
        GATEWAY,
        f"cp -p {GOOD}/venv.target {GOOD}/../venv.target.hx-away && "
        f"echo {helpers.BASE}/gateway/venvs/pruned > {GOOD}/venv.target",
    )
    yield
    helpers.ssh(GATEWAY, f"mv {GOOD}/../venv.target.hx-away {GOOD}/venv.target")


def test_not_rolled_back_when_the_saved_venv_is_gone(saved_venv_gone):
    pid, live = helpers.main_pid(GATEWAY), live_release()
    helpers.ssh(GATEWAY, f"echo '# changed by hand' >> {helpers.CONFIG}")  # the live release differs
    status, output = rollback("test: venv pruned")
    assert status == 2, output
    assert f"NOT ROLLED BACK: the last known good venv {helpers.BASE}/gateway/venvs/pruned is gone" in output
    assert helpers.main_pid(GATEWAY) == pid
    assert live_release()["venv"] == live["venv"]


@pytest.fixture
def saved_with_several_workers(restore_gateway):
    """The gateway deployed with the default serving (several workers), so the saved release is
    one: its start-up failure is uvicorn's multi-worker one. restore_gateway puts the suite's one
    worker back afterwards."""
    helpers.redeploy(GATEWAY, env=helpers.DEFAULT_SERVING)
    assert helpers.workers_in_unit(GATEWAY) >= 2


# --- a real deploy whose rollback fails: the host fails with the cause, the record says so, and
# --- the next run repairs (hxops/start_op.py, rollback.sh exit 2 and 3)

# Passes the deploy's data checks, but LiteLLM exits at start-up (as in test_rollout.py fault 1).
BAD_CHANGE = 'router_settings = {**_base.router_settings, "plugins": ["hx_missing_plugin.Plugin"]}\n'


def deploy_the_bad_change(tmp_path, env: dict | None = None) -> tuple[helpers.DeployResult, dict]:
    """The deploy of a change that does not come up; returns its result and outcome document."""
    bad = helpers.group_data(tmp_path / "group_data", BAD_CHANGE)
    outcomes = tmp_path / "outcomes"
    key = helpers.master_key(GATEWAY)
    result = helpers.pyinfra(
        "--limit", GATEWAY, "--group-data", bad, "--data", f"outcome_dir={outcomes}",
        env={"MASTER_KEY": key, **(env or {})},
    )  # fmt: skip
    return result, json.loads((outcomes / f"{GATEWAY}.json").read_text())


def last_recorded() -> dict:
    return json.loads(helpers.ssh(GATEWAY, f"tail -n 1 {helpers.BASE}/releases/deployments.jsonl"))


def assert_the_next_run_repairs(env: dict | None = None) -> None:
    helpers.redeploy(GATEWAY, env={"MASTER_KEY": helpers.master_key(GATEWAY), **(env or {})})
    assert helpers.ready(GATEWAY)
    assert last_recorded()["outcome"] == "updated"
    assert helpers.saved_release(GATEWAY)["modes"][GOOD] == "root:root 700"  # a rollback target again


@pytest.fixture
def no_saved_release(saved):
    """No saved release, as on a first deploy; the next good deploy saves one (restore_gateway)."""
    helpers.ssh(GATEWAY, f"mv {GOOD} {GOOD}.hx-away")
    yield
    helpers.ssh(GATEWAY, f"rm -rf {GOOD}.hx-away")


def test_a_deploy_with_nothing_to_roll_back_to_fails_not_rolled_back(no_saved_release, tmp_path):
    result, outcome = deploy_the_bad_change(tmp_path)
    assert result.returncode == 1, result.output[-3000:]
    verdict = "NOT ROLLED BACK: there is no last known good release yet (first deploy)"
    assert (
        f"ImportError: Could not import Plugin from hx_missing_plugin; NOT rolled back ({verdict}"
        in result.output
    )
    assert (outcome["rolled_back"], outcome["restarted"]) == (False, True)
    assert "hx_missing_plugin" in outcome["cause"]
    entry = last_recorded()
    assert entry["outcome"] == "NOT rolled back"
    assert "hx_missing_plugin" in entry["cause"] and verdict in entry["cause"]
    assert not helpers.ready(GATEWAY)  # the failing release stays: there was nothing to go back to
    assert_the_next_run_repairs()


@pytest.fixture
def saved_release_broken(saved_with_several_workers, saved):
    """The saved config.yaml is one LiteLLM rejects at start-up; the next good deploy saves a
    good one again (restore_gateway)."""
    helpers.ssh(
        GATEWAY,
        f"cp -a {GOOD} {GOOD}.hx-backup && "
        f"sed -i 's/^  routing_strategy: .*/  routing_strategy: \"simple_shuffle\"/' {GOOD}/config.yaml",
    )
    yield
    helpers.ssh(GATEWAY, f"rm -rf {GOOD}.hx-backup")


def test_a_deploy_whose_rollback_fails_too_fails_not_rolled_back(saved_release_broken, tmp_path):
    result, outcome = deploy_the_bad_change(tmp_path, env=helpers.DEFAULT_SERVING)
    assert result.returncode == 1, result.output[-3000:]
    verdict = "ROLLBACK FAILED: the last known good release did not become ready either"
    assert f"; NOT rolled back ({verdict}" in result.output
    # Caught by the worker's own start-up failure, not by waiting out start.sh's timeout.
    assert "is not ready: a worker failed at start-up" in result.output
    assert outcome["rolled_back"] is False and "hx_missing_plugin" in outcome["cause"]
    entry = last_recorded()
    assert entry["outcome"] == "NOT rolled back"
    assert "hx_missing_plugin" in entry["cause"] and verdict in entry["cause"]
    assert not helpers.ready(GATEWAY)
    assert_the_next_run_repairs()
