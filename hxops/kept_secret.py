"""A secret the whole fleet shares, made on the control machine: the variable if set (checked),
else the one generated the first time and kept in a root-only file there. Several hosts need the
same value (Redis and its clients; the gateways and the Prometheus that scrapes them), so it
cannot be made on one host alone. It travels only over SFTP (hxops.security.secret_file)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from pyinfra.api.exceptions import DeployError

from hxgw.errors import ConfigError


def kept_secret(variable: str, path: Path, check: Callable[[str], None]) -> str:
    """`variable` from the environment when set (`check` raises ConfigError on a bad one), else
    the value kept in `path`, generated (mode 600, in a 700 directory) when there is none."""
    given = os.environ.get(variable)
    if given:
        try:
            check(given)
        except ConfigError as error:
            raise DeployError(f"{variable}:\n  - " + "\n  - ".join(error.problems)) from None
        return given
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another deploy made it a moment ago: use that one
            return path.read_text().strip()
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()
