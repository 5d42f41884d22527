"""The control machine's secret store: one root-only directory per fleet.

    ${HX_SECRETS_DIR:-~/.config/hx-gateway}/fleets/<fleet_name>/<secret>

A fleet is the inventory's `gateways` group (and the load balancer in front of it), named by the
`fleet_name` setting (hxgw.settings); two fleets deployed from one control machine (the tests'
parallel testbed fleets, on their own nets) have their own directories and never share or
overwrite each other's secrets. Directories are mode 700, files 600, owned by whoever runs the
deploy (root): a secret is never readable by anyone else, not even while it is written (created
with its mode, then renamed into place). Nothing here prints or logs a value.

The master key lives in `master-key` (hxops.fleet_key); other fleet-wide secrets may sit beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_ROOT = "~/.config/hx-gateway"


def root() -> Path:
    return Path(os.environ.get("HX_SECRETS_DIR") or DEFAULT_ROOT).expanduser()


def secret_path(fleet: str, name: str) -> Path:
    """Where the fleet's secret `name` is kept (fleet names are checked by hxgw.settings)."""
    return root() / "fleets" / fleet / name


def read(path: Path) -> str | None:
    """The kept value (stripped), or None when nothing is kept there."""
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    return value or None


def _parent(path: Path) -> None:
    """The store's directories, each 700 (mkdir's parents= would make the upper ones 755)."""
    for directory in [*reversed(path.parent.relative_to(root()).parents), path.parent.relative_to(root())]:
        level = root() / directory
        if not level.is_dir():
            level.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(level, 0o700)


def create(path: Path, value: str) -> str:
    """Keep `value` unless something is already kept there (another deploy won the race): return
    what is kept now."""
    _parent(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read(path) or replace(path, value)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


def replace(path: Path, value: str) -> str:
    """Keep `value` in place of whatever was kept (atomically: a reader sees old or new)."""
    _parent(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    os.replace(temporary, path)
    return value
