"""Step 13: remove old release venvs (each ~750 MB) so upgrades and downgrades do not fill the disk.

Runs only when the host got here without an error (the release serves and passed validation, and
tasks/release.py kept it as the last known good one). Kept: the release this run installed or
kept (now running and last good), the one that ran before this run (the quickest way back), then
the newest others, `keep_releases` in all. Decided at plan time from the host's snapshot, so a
run with nothing to remove plans nothing (a no-op run stays a no-op).
"""

from __future__ import annotations

import posixpath
import re
import shlex

from pyinfra.api import deploy
from pyinfra.operations import server

from hxops.deploy_lock import under_work_lock
from hxops.facts import HostFacts
from hxops.plan import GatewayPlan
from hxops.wheelhouse import Release

# Release ids are hex digests (hxops.wheelhouse.release_for): anything else under venvs/ is not ours.
RELEASE_ID = re.compile(r"[0-9a-f]{16}")


def releases_to_remove(
    running: str, before: str | None, installed: set[str], installed_at: dict[str, int], keep: int
) -> list[str]:
    """The installed releases beyond the `keep` to keep: `running` first, then `before` (what ran
    before this run), then the newest by install time (pure)."""
    newest_first = sorted(installed, key=lambda r: (installed_at.get(r, 0), r), reverse=True)
    kept: list[str] = []
    for candidate in [running, before, *newest_first]:
        if candidate and candidate not in kept and len(kept) < max(keep, 1):
            kept.append(candidate)
    return sorted(r for r in installed if r not in kept and RELEASE_ID.fullmatch(r))


@deploy("tasks/prune.py")
def prune_releases(plan: GatewayPlan, facts: HostFacts, release: Release) -> None:
    settings = plan.settings
    old = releases_to_remove(
        release.id, facts.venv_release, facts.releases, facts.release_times, settings.keep_releases
    )
    if old:
        # Each venv leaves its release's name in one rename, then goes: a killed run never leaves a
        # half-removed venv that still looks installed (the install clears venvs/.trash-*).
        moves = [
            f"mv -T {shlex.quote(posixpath.join(settings.venv_root, r))} "
            f"{shlex.quote(posixpath.join(settings.venv_root, '.trash-' + r))}"
            for r in old
        ]
        trash = " ".join(shlex.quote(posixpath.join(settings.venv_root, ".trash-" + r)) for r in old)
        server.shell(
            name=f"Remove old release venvs {', '.join(old)} (keep_releases = {settings.keep_releases})",
            commands=[under_work_lock(" && ".join([*moves, f"rm -rf {trash}"]))],
        )
