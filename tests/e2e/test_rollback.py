"""The rollback to the last known good release (rollback.sh, which the deploy runs when a change
does not come up or fails validation), beyond config.yaml: the key, the unit and the venv link
come back too; its "not rolled back" exits (no saved release yet, the saved venv gone, the failing
release is the saved one) and "rollback failed" (the saved release does not start either); and
the saved release is never touched by a rollback, root's alone (700/600).

The deploy-driven rollback (a change LiteLLM rejects) is in test_rollout.py (fault 1). Here the
script runs over SSH on the shared gateway, as the deploy runs it, with the host state made by hand.
"""

from __future__ import annotations

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
def saved_release_away(saved):
    """No saved release, as on a first deploy: moved aside, and back after the test."""
    helpers.ssh(GATEWAY, f"mv {GOOD} {GOOD}.hx-away")
    yield
    helpers.ssh(GATEWAY, f"mv {GOOD}.hx-away {GOOD}")


def test_not_rolled_back_without_a_saved_release(saved_release_away):
    pid, live = helpers.main_pid(GATEWAY), live_release()
    status, output = rollback("test: first deploy")
    assert status == 2, output
    assert (
        "NOT ROLLED BACK: there is no last known good release yet (first deploy); cause: test: first deploy"
        in output
    )
    assert (helpers.main_pid(GATEWAY), live_release()) == (pid, live)


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


@pytest.fixture
def saved_release_that_does_not_start(saved_with_several_workers, saved):
    """The saved config.yaml is one LiteLLM rejects at start-up; the real one is back after."""
    helpers.ssh(
        GATEWAY,
        f"cp -a {GOOD} {GOOD}.hx-backup && "
        f"sed -i 's/^  routing_strategy: .*/  routing_strategy: \"simple_shuffle\"/' {GOOD}/config.yaml",
    )
    yield
    helpers.ssh(GATEWAY, f"rm -rf {GOOD} && mv {GOOD}.hx-backup {GOOD}")


def test_rollback_failed_when_the_saved_release_does_not_start_either(saved_release_that_does_not_start):
    helpers.ssh(GATEWAY, f"echo '# changed by hand' >> {helpers.CONFIG}")  # the live release differs
    status, output = rollback("test: the new release failed")
    assert status == 3, output
    assert "ROLLBACK FAILED: the last known good release did not become ready either" in output
    # Caught by the worker's own start-up failure, not by waiting out start.sh's timeout.
    assert "is not ready: a worker failed at start-up" in output
    assert not helpers.ready(GATEWAY)  # and it says so, rather than claiming a rollback
