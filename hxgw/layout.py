"""The gateway host's directory layout and its production ownership (the seed's enhancement #005).

root owns code and config; the service user can read its config (through the group) and write
only its logs; nothing is world-writable.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from hxgw.settings import Settings


@dataclass(frozen=True)
class Entry:
    path: str
    user: str
    group: str
    mode: str
    why: str


def directories(settings: Settings) -> list[Entry]:
    svc = settings.service_user
    base = settings.base_dir
    return [
        Entry(base, "root", "root", "755", "the gateway's tree"),
        Entry(settings.gateway_dir, "root", "root", "755", "code: venvs and wheels, root-owned"),
        Entry(settings.venv_root, "root", "root", "755", "one venv per release, for rollback"),
        Entry(posixpath.join(base, "config"), "root", "root", "755", "config root"),
        Entry(settings.config_dir, "root", svc, "750", "config.yaml and gateway.env: group-readable"),
        Entry(posixpath.join(base, "scripts"), "root", "root", "755", "scripts root"),
        Entry(posixpath.join(base, "scripts", "service"), "root", "root", "755", "scripts"),
        Entry(settings.scripts_dir, "root", "root", "755", "start/stop/status scripts"),
        Entry(posixpath.join(base, "logs"), "root", "root", "755", "logs root"),
        Entry(settings.log_dir, svc, svc, "750", "the only place the service may write"),
    ]
