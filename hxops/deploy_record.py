"""The deployment record: one JSON line per change on each gateway, kept on the gateway itself.

`base_dir/releases/deployments.jsonl` (root only, like the rest of releases/) gets an entry when
a deploy changed the release a gateway runs (venv, config.yaml, the key's file, hx_auth.py, the
unit) or restarted it and the result passed (tasks/release.py: outcome "updated"), and when a
change was rolled back (hxops.start_op, hxops.release: outcome "rolled back") or could not be
(outcome "NOT rolled back", the cause ending in rollback.sh's own verdict). A no-op run adds
nothing. record.sh (templates/record.sh.j2) appends it: the host itself supplies the time (UTC),
the release its venv link points at, the LiteLLM version installed there and the sha256 of
config.yaml and the unit, so the entry says what really serves; this module supplies what only
the control machine knows (the deploy repository's commit, a web link to it, whether the tree
was dirty, who ran the deploy from where). Never the key: nothing from gateway.env is read.
`python -m hxops.history` prints the fleet's timeline.
"""

from __future__ import annotations

import functools
import getpass
import json
import posixpath
import re
import shlex
import socket
import subprocess
from dataclasses import dataclass

from hxops.gateway_locks import REPO
from hxops.release import releases_dir

RECORD_NAME = "deployments.jsonl"
UPDATED = "updated"
ROLLED_BACK = "rolled back"
NOT_ROLLED_BACK = "NOT rolled back"  # rollback.sh exit 2 (nothing to go back to) or 3 (failed)
# git@github.com:owner/repo.git, ssh://git@host[:port]/owner/repo.git
_SCP_LIKE = re.compile(r"^[\w.-]+@(?P<host>[\w.-]+):(?P<path>[^/].*)$")
_SSH_URL = re.compile(r"^ssh://(?:[^@/]+@)?(?P<host>[\w.-]+)(?::\d+)?/(?P<path>.+)$")
_HTTP_URL = re.compile(r"^(?P<scheme>https?)://(?:[^@/]+@)?(?P<host>[\w.:-]+)/(?P<path>.+)$")


def record_file(settings) -> str:
    return posixpath.join(releases_dir(settings), RECORD_NAME)


def record_script(settings) -> str:
    return posixpath.join(settings.scripts_dir, "record.sh")


def commit_link(remote: str | None, commit: str | None) -> str | None:
    """The web page of `commit` for a git remote hosted on the web (https, http, git@host:path,
    ssh://), or None. Credentials in the remote's URL never reach the link (pure)."""
    if not remote or not commit:
        return None
    remote = remote.strip()
    for pattern in (_HTTP_URL, _SSH_URL, _SCP_LIKE):
        match = pattern.match(remote)
        if match:
            scheme = match.groupdict().get("scheme") or "https"
            path = match.group("path").rstrip("/").removesuffix(".git")
            return f"{scheme}://{match.group('host')}/{path}/commit/{commit}"
    return None  # a local path or file:// remote has no web page


def _git(*args: str) -> str | None:
    try:
        run = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return run.stdout.strip() if run.returncode == 0 else None


@functools.cache
def origin() -> dict:
    """What the control machine knows about this deploy (read once per run): commit, link, dirty
    tree, operator, control machine."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain")
    remote = _git("remote", "get-url", "origin")
    try:
        operator = getpass.getuser()
    except (KeyError, OSError):
        operator = "unknown"
    return {
        "commit": commit,
        "commit_url": commit_link(remote, commit),
        "dirty": bool(status) if status is not None else None,
        "operator": operator,
        "control": socket.gethostname(),
    }


@dataclass(frozen=True)
class Record:
    """How a deploy appends to one gateway's record: record.sh and the control machine's fields
    (JSON text, so the operations that carry it stay hashable)."""

    script: str
    fields_json: str

    @classmethod
    def of(cls, plan) -> Record:
        fields = {"gateway": plan.host_name, "deployed_litellm": plan.settings.litellm_version, **origin()}
        return cls(record_script(plan.settings), json.dumps(fields, sort_keys=True))

    def command(self, outcome: str, cause: str | None = None) -> str:
        fields = {**json.loads(self.fields_json), "outcome": outcome}
        if cause:
            fields["cause"] = cause[:300]
        return f"{self.script} {shlex.quote(json.dumps(fields, sort_keys=True))}"
