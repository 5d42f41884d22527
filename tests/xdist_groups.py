"""`--dist loadgroup` that works on pytest 9.2: the workers tell the scheduler each test's group.

pytest-xdist 3.8 passes a test's xdist_group to its scheduler by appending "@group" to the
test's node id, which pytest 9.2's structured node ids silently ignore, so every test is
scheduled alone (pytest-dev/pytest-xdist#1386, fix pending in #1388). Here each worker writes
{node id: group} to a directory the controller made before starting the workers, and the
scheduler reads it when it splits the collection into work units (after every worker has
collected). Once xdist carries groups again this module can go; the marks stay as they are.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from xdist.scheduler import LoadGroupScheduling

GROUPS_DIR = "HX_XDIST_GROUPS_DIR"


def make_groups_dir(config) -> None:
    """On the controller, before the workers start (they inherit the environment)."""
    folder = tempfile.mkdtemp(prefix="hx-xdist-groups-")
    os.environ[GROUPS_DIR] = folder
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def publish(groups: dict[str, str]) -> None:
    """On a worker: the group of each grouped test, by node id."""
    folder, worker = os.environ.get(GROUPS_DIR), os.environ.get("PYTEST_XDIST_WORKER")
    if folder and worker:
        (Path(folder) / f"{worker}.json").write_text(json.dumps(groups))


class PublishedGroupScheduling(LoadGroupScheduling):
    """LoadGroupScheduling with the groups the workers published (every worker collects the
    same tests, so any one's file would do; they are merged)."""

    def _split_scope(self, nodeid: str) -> str:
        if not hasattr(self, "_published"):
            self._published: dict[str, str] = {}
            for path in sorted(Path(os.environ[GROUPS_DIR]).glob("*.json")):
                self._published.update(json.loads(path.read_text()))
        return self._published.get(nodeid) or super()._split_scope(nodeid)
