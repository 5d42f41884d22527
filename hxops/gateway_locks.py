"""Which hash-locked requirements a gateway's venv installs, chosen by its litellm_version.

requirements/gateway.lock is the pin (group_data's litellm_version, set by `make lock`). A release
may also be held beside it, locked the same way, in requirements/gateway-X.Y.Z.lock (`make lock
LITELLM=X.Y.Z BESIDE=1`): a canary or a whole rollout can then move to it (`--data
litellm_version=X.Y.Z`) and back without re-locking. Each lock pins exactly the release its name
says (tests/unit/test_gateway_locks.py), so a version and the lock it installs never disagree;
a version with no lock is refused at plan time (hxgw.settings), naming `make lock`.
"""

from __future__ import annotations

import re
from pathlib import Path

from hxgw.settings import VERSION_PATTERN

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO / "requirements"
GATEWAY_LOCK = REQUIREMENTS / "gateway.lock"
BESIDE_RE = re.compile(r"gateway-(?P<version>.+)\.lock")


def beside_lock(version: str, root: Path = REPO) -> Path:
    """Where a release held beside the pin is locked."""
    return root / "requirements" / f"gateway-{version}.lock"


def lock_for(version: object, root: Path = REPO) -> Path:
    """The lock a gateway with this litellm_version installs: its own beside the pin when there
    is one, else the pin's (the plan then refuses a version the pin's lock does not hold)."""
    if isinstance(version, str) and re.fullmatch(VERSION_PATTERN, version):
        beside = beside_lock(version, root)
        if beside.is_file():
            return beside
    return root / "requirements" / "gateway.lock"


def locks_beside(root: Path = REPO) -> dict[str, Path]:
    """Every release locked beside the pin: version (from the file name) -> lock file."""
    found = {}
    for path in sorted((root / "requirements").glob("gateway-*.lock")):
        match = BESIDE_RE.fullmatch(path.name)
        if match:
            found[match.group("version")] = path
    return found


def display(path: Path, root: Path = REPO) -> str:
    """The lock's path as the repository names it (requirements/...)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
