"""hxops.ops at parity with the pyinfra operations they stand for: every attribute those manage,
drifted by hand on the deployed gateway, is found from the snapshot and repaired by the next run,
and the run after that is a no-op again.

(The decisions, attribute by attribute, are unit-tested in tests/unit/test_snapshot_ops.py.)
"""

from __future__ import annotations

from tests.e2e import helpers
from tests.e2e.conftest import GATEWAY

BASE = helpers.BASE
CONFIG_DIR = f"{BASE}/config/api-gateway"
SCRIPTS = f"{BASE}/scripts/service/api-gateway"
LOGS = f"{BASE}/logs/services"
LINK = f"{BASE}/gateway/venv"
USER = "hx-gateway"


def account() -> str:
    """The passwd entry without the ids (the group is created anew), and the primary group."""
    name, _, _uid, _gid, comment, home, shell = (
        helpers.ssh(GATEWAY, f"getent passwd {USER}").strip().split(":")
    )
    return f"{name}:{comment}:{home}:{shell} {helpers.ssh(GATEWAY, f'id -gn {USER}').strip()}"


def stats(*paths: str) -> dict[str, str]:
    out = helpers.ssh(GATEWAY, "stat -c '%n|%F|%U:%G %a' " + " ".join(paths))
    return dict(line.split("|", 1) for line in out.splitlines())


def repaired_then_quiet(*expected_changes: str) -> None:
    """One deploy repairs (each expected operation reports a change), the next changes nothing."""
    result = helpers.pyinfra("--limit", GATEWAY)
    assert result.returncode == 0, result.output[-3000:]
    changed = result.changed(GATEWAY)
    for name in expected_changes:
        assert any(n.startswith(name) for n in changed), (name, changed)
    pid = helpers.main_pid(GATEWAY)
    again = helpers.pyinfra("--limit", GATEWAY)
    assert again.returncode == 0, again.output[-3000:]
    assert again.changed(GATEWAY) == []
    assert helpers.main_pid(GATEWAY) == pid


def test_service_account_drift_is_repaired(first_deploy):
    """server.user: shell, home, comment, primary group; server.group: presence."""
    before = account()
    assert before == f"{USER}:HX gateway service (managed by the hx deploy):/nonexistent:/bin/false {USER}"
    helpers.ssh(
        GATEWAY,
        # usermod refuses a new home to an account a process runs as: the gateway stops first,
        # and every process of the account is gone (a CI run with 2 workers per gateway once saw
        # usermod name a process of the account right after the stop returned).
        f"systemctl stop {helpers.UNIT} && "
        f"timeout 30 sh -c 'while pgrep -u {USER} >/dev/null; do sleep 0.2; done' && "
        f"usermod -s /bin/bash -d /tmp -c drifted -g nogroup {USER} && groupdel {USER}",
    )
    repaired_then_quiet(
        f"tasks/layout.py | System group {USER}",
        f"tasks/layout.py | System user {USER} (no shell, no home)",
        "tasks/service.py | Start the gateway",
    )
    assert account() == before


def test_file_directory_and_link_drift_is_repaired(first_deploy):
    """files.directory: presence, mode, owner, group; files.file: mode, owner, group;
    files.template: content, mode, owner; files.link: target."""
    paths = [
        SCRIPTS,
        LOGS,
        CONFIG_DIR,
        f"{CONFIG_DIR}/config.yaml",
        f"{SCRIPTS}/status.sh",
        f"{SCRIPTS}/stop.sh",
    ]
    before = stats(*paths)
    target = helpers.ssh(GATEWAY, f"readlink {LINK}").strip()
    start_sh = helpers.ssh(GATEWAY, f"sha1sum {SCRIPTS}/start.sh").split()[0]
    helpers.ssh(
        GATEWAY,
        f"chmod 700 {SCRIPTS} && chgrp nogroup {SCRIPTS} && chown nobody {CONFIG_DIR} && rm -rf {LOGS} && "
        f"chmod 600 {CONFIG_DIR}/config.yaml && chgrp root {CONFIG_DIR}/config.yaml && "
        f"echo '# drift' >> {SCRIPTS}/start.sh && chmod 700 {SCRIPTS}/status.sh && "
        f"chown nobody {SCRIPTS}/stop.sh && "
        f"ln -sfn {target}/ {LINK}",  # the same venv by another spelling
    )
    repaired_then_quiet(
        f"tasks/layout.py | Directory {SCRIPTS} (root:root 755)",
        f"tasks/layout.py | Directory {LOGS} ({USER}:{USER} 750)",
        f"tasks/layout.py | Directory {CONFIG_DIR} (root:{USER} 750)",
        "tasks/config.py | config.yaml is root:group 640",
        "tasks/scripts.py | Service script start.sh",
        "tasks/scripts.py | Service script status.sh",
        "tasks/service.py | Activate venv release",  # switched right before the restart
    )
    assert stats(*paths) == before
    assert helpers.ssh(GATEWAY, f"readlink {LINK}").strip() == target
    assert helpers.ssh(GATEWAY, f"sha1sum {SCRIPTS}/start.sh").split()[0] == start_sh
