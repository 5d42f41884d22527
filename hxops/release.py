"""The last known good release of a gateway, and the rollback to it.

After a deploy whose service restart and validation passed, the release that runs (config.yaml,
gateway.env, the unit file and the venv the `gateway/venv` link points at) is saved under
`base_dir/releases/last-good` (root only) by `rollback.sh --save` (tasks/release.py). When a
change does not come up (start.sh fails: tasks/service.py) or fails validation after this run
restarted the service (hxops.validation_op calls rollback_after_failed_validation), `rollback.sh`
restores that release, restarts it, waits for readiness, and the host fails with the cause.

`ReleaseState`, one remote command at plan time, also tells whether the running service is
older than the files it runs on (a deploy interrupted between writing them and the restart):
tasks/service.py then restarts it, so the next run converges.
"""

from __future__ import annotations

import posixpath
import shlex

from pyinfra.api import FactBase

from hxgw.layout import auth_module_file
from hxgw.settings import Settings

LAST_GOOD = "last-good"


def releases_dir(settings: Settings) -> str:
    return posixpath.join(settings.base_dir, "releases")


def last_good_dir(settings: Settings) -> str:
    return posixpath.join(releases_dir(settings), LAST_GOOD)


def unit_file(settings: Settings) -> str:
    return f"/etc/systemd/system/{settings.unit_name}"


def rollback_script(settings: Settings) -> str:
    return posixpath.join(settings.scripts_dir, "rollback.sh")


def live_paths(settings: Settings) -> dict[str, str]:
    """The files of a release: name inside last-good -> live path."""
    return {
        "config.yaml": settings.config_file,
        "gateway.env": settings.env_file,
        "hx_auth.py": auth_module_file(settings),
        settings.unit_name: unit_file(settings),
    }


class ReleaseState(FactBase):
    """
    The running service's start time against its inputs' modification times, whether systemd
    needs a daemon-reload, and whether the live release equals the saved last known good one
    (sha256 of each file and the venv link target; never a file's content).
    """

    def command(self, settings: Settings) -> str:
        q = shlex.quote
        unit = q(settings.unit_name)
        good = last_good_dir(settings)
        parts = [
            # Microseconds on both sides: a restart right after a write is not mistaken for stale.
            f"ts=$(systemctl show --timestamp=us+utc -p ExecMainStartTimestamp --value {unit} 2>/dev/null); "
            'echo "start $( [ -n "$ts" ] && date -d "$ts" +%s.%N 2>/dev/null || echo -)"',
            f'echo "active $(systemctl show -p ActiveState --value {unit} 2>/dev/null || echo unknown)"',
            f'echo "need_reload $(systemctl show -p NeedDaemonReload --value {unit} 2>/dev/null || echo no)"',
        ]
        for name, path in live_paths(settings).items():
            saved = posixpath.join(good, name)
            parts.append(f'echo "mtime {name} $(stat -c %.9Y {q(path)} 2>/dev/null || echo -)"')
            parts.append(
                f'echo "same {name} $(a=$(sha256sum < {q(path)} 2>/dev/null); '
                f"b=$(sha256sum < {q(saved)} 2>/dev/null); "
                '[ -n "$a" ] && [ "$a" = "$b" ] && echo yes || echo no)"'
            )
        link, target = q(settings.venv_link), q(posixpath.join(good, "venv.target"))
        parts.append(f'echo "mtime venv $(stat -c %.9Y {link} 2>/dev/null || echo -)"')
        parts.append(
            f'echo "same venv $(a=$(readlink {link} 2>/dev/null); b=$(cat {target} 2>/dev/null); '
            '[ -n "$a" ] && [ "$a" = "$b" ] && echo yes || echo no)"'
        )
        parts.append("true")
        return "; ".join(parts)

    @staticmethod
    def default():
        return {"start": None, "active": "unknown", "need_reload": False, "mtimes": {}, "same": {}}

    def process(self, output):
        facts = self.default()
        for line in output:
            key, _, rest = line.strip().partition(" ")
            if key == "start":
                facts["start"] = _number(rest)
            elif key == "active":
                facts["active"] = rest or "unknown"
            elif key == "need_reload":
                facts["need_reload"] = rest == "yes"
            elif key in ("mtime", "same"):
                name, _, value = rest.partition(" ")
                if key == "mtime":
                    facts["mtimes"][name] = _number(value)
                else:
                    facts["same"][name] = value == "yes"
        return facts


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def stale_reason(facts: dict) -> str | None:
    """Why the running service does not run what is on disk, or None when it does (pure)."""
    if facts.get("active") != "active" or not facts.get("start"):
        return None
    if facts.get("need_reload"):
        return "the unit file changed but systemd was not reloaded"
    newer = sorted(
        name for name, mtime in facts.get("mtimes", {}).items() if mtime and mtime > facts["start"]
    )
    if newer:
        return f"{', '.join(newer)} changed after the service started (an interrupted deploy?)"
    return None


def last_good_matches(facts: dict) -> bool:
    """True when a last known good release is saved and equals the live one, file by file."""
    same = facts.get("same", {})
    return bool(same) and all(same.values())


def read_state(host, settings: Settings) -> dict:
    """This host's ReleaseState (one remote command; read once by tasks/service.py)."""
    return host.get_fact(ReleaseState, settings=settings) or ReleaseState.default()


def rollback_after_failed_validation(host, settings: Settings, cause: str, record=None) -> bool:
    """Called from the validation's failure path (run time) when this run restarted the service:
    restore the last known good release, log what happened and append "rolled back" to the
    deployment record (`record`: hxops.deploy_record.Record), "NOT rolled back" when it could not be.
    True if rolled back."""
    from pyinfra import logger

    from hxops.deploy_lock import under_work_lock
    from hxops.start_op import append_rolled_back, rollback_verdict

    command = under_work_lock(f"{rollback_script(settings)} {shlex.quote('validation failed: ' + cause)}")
    status, output = host.run_shell_command(command, _timeout=420)
    for line in output.output_lines:
        (logger.warning if status else logger.error)(f"{host.name}: {line}")
    if record is not None:
        verdict = "" if status else f" ({rollback_verdict(output.output_lines)})"
        append_rolled_back(host, record, f"validation failed: {cause}{verdict}", rolled_back=bool(status))
    return bool(status)
