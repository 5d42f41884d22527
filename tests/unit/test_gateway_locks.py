"""Releases locked beside the pin (hxops.gateway_locks, `make lock LITELLM=X.Y.Z BESIDE=1`), the
plan that picks a lock by litellm_version, and the pruning of old release venvs (tasks/prune.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hxgw.refused_versions import refusal
from hxgw.settings import locked_litellm_version
from hxops.gateway_locks import GATEWAY_LOCK, REPO, lock_for, locks_beside
from hxops.wheelhouse import release_for
from tasks.prune import releases_to_remove
from tests.unit.helpers import fake_inventory, plan

PINNED = locked_litellm_version(GATEWAY_LOCK.read_text())
INDEX = ("--data", "install_source=index", "--data", "installer=pip")  # no wheelhouse build at plan time


def test_every_lock_beside_the_pin_pins_the_release_its_name_says() -> None:
    beside = locks_beside()
    assert beside, "the upgrade test needs a second release locked (make lock LITELLM=X.Y.Z BESIDE=1)"
    for version, path in beside.items():
        assert locked_litellm_version(path.read_text()) == version, path
        assert version != PINNED, f"{path} holds the pin: one lock per release"
        assert refusal(version) is None, path
        assert lock_for(version) == path


def test_a_version_without_a_lock_of_its_own_gets_the_pins_lock() -> None:
    assert lock_for(PINNED) == GATEWAY_LOCK
    assert lock_for("9.9.9") == GATEWAY_LOCK
    assert lock_for("../gateway") == GATEWAY_LOCK and lock_for(1.108) == GATEWAY_LOCK


def test_the_plan_installs_a_release_locked_beside_the_pin_from_its_own_lock(tmp_path) -> None:
    version, path = next(iter(locks_beside().items()))
    result = plan(fake_inventory(tmp_path, "192.168.10.39"), "--data", f"litellm_version={version}", *INDEX)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    release = release_for((3, 11, 2), "x86_64", "2.36", path)
    assert release.id != release_for((3, 11, 2), "x86_64", "2.36").id  # one release per lock
    assert f"Install litellm {version} into venvs/{release.id} (pip)" in output


def test_the_plan_refuses_a_release_with_no_lock_naming_both_ways_to_lock_it(tmp_path) -> None:
    result = plan(fake_inventory(tmp_path, "192.168.10.39"), "--data", "litellm_version=1.108.5")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "nothing was changed on any host" in output
    assert f"requirements/gateway.lock pins litellm {PINNED}" in output
    assert "`make lock LITELLM=1.108.5`" in output and "`make lock LITELLM=1.108.5 BESIDE=1`" in output


@pytest.mark.parametrize(
    ("version", "expected"),
    [(PINNED, "is the pin already"), ("1.82.7", "litellm 1.82.7 is refused"), ("1.108", "is not X.Y.Z")],
)
def test_make_lock_beside_refuses_and_writes_nothing(version, expected) -> None:
    before = sorted(p.name for p in (REPO / "requirements").iterdir())
    command = [sys.executable, "-m", "hxops.lock_gateway", version, "--beside"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert sorted(p.name for p in (REPO / "requirements").iterdir()) == before


IDS = {name: f"{n:016x}" for n, name in enumerate(("a", "b", "c", "d"), start=10)}


@pytest.mark.parametrize(
    ("keep", "running", "before", "removed"),
    [
        (2, "d", "c", ["a", "b"]),  # the new release and the one it replaced
        (2, "a", "d", ["b", "c"]),  # a downgrade back to an old release keeps the one it left
        (3, "d", "c", ["a"]),
        (1, "d", "c", ["a", "b", "c"]),
        (5, "d", "c", []),
        (2, "d", None, ["a", "b"]),  # a first deploy next to older leftovers: the newest stays
    ],
)
def test_old_releases_beyond_keep_releases_are_removed(keep, running, before, removed) -> None:
    installed = set(IDS.values())
    times = {IDS[name]: 1000 + i for i, name in enumerate(("a", "b", "c", "d"))}
    found = releases_to_remove(IDS[running], IDS.get(before), installed, times, keep)
    assert found == sorted(IDS[name] for name in removed)


def test_only_the_deploys_own_release_ids_are_ever_removed() -> None:
    assert releases_to_remove("0" * 16, None, {"0" * 16, "../etc", "not-ours"}, {}, 1) == []
