"""`make lock LITELLM=X.Y.Z`: lock a LiteLLM release for the gateways and set it, in one step.

The hash-locked requirements/gateway.lock is the one truth for the version the venv installs;
group_data/all.py's litellm_version may only agree with it (the plan refuses a mismatch). This
rewrites the pin in requirements/gateway.in, regenerates the lock with the command its header
records (same uv, same flags), and sets litellm_version, or changes nothing if any step fails.
A release on the refused list (requirements/refused-litellm.toml) is refused before anything.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from hxgw.refused_versions import refusal
from hxgw.settings import VERSION_PATTERN, locked_litellm_version

REPO = Path(__file__).resolve().parent.parent
GATEWAY_IN = Path("requirements/gateway.in")
GATEWAY_LOCK = Path("requirements/gateway.lock")
GROUP_DATA = Path("group_data/all.py")
# The flags the lock's header records (uv pip compile); kept so a re-lock diffs cleanly.
COMPILE_FLAGS = (
    "--generate-hashes",
    "--python-version",
    "3.11",
    "--python-platform",
    "x86_64-manylinux_2_28",
)
PIN_RE = re.compile(r"^litellm\[proxy\]==\S+$", re.MULTILINE)
SETTING_RE = re.compile(r'^litellm_version = "[^"\n]*"$', re.MULTILINE)


class LockError(Exception):
    """A re-lock that must not happen; the message names the problem and the fix."""


def _replace_once(pattern: re.Pattern, text: str, new: str, where: Path) -> str:
    result, count = pattern.subn(new, text)
    if count != 1:
        raise LockError(
            f"{where}: expected one line matching {pattern.pattern!r}, found {count}; restore that line"
        )
    return result


def _uv() -> str:
    beside = Path(sys.executable).parent / "uv"  # the venv's uv (requirements/control.lock)
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        raise LockError("uv not found; run `make venv` (requirements/control.lock installs it)")
    return found


def lock(version: str, root: Path = REPO) -> None:
    """Pin `version` in gateway.in, regenerate gateway.lock and set litellm_version under `root`."""
    if not re.fullmatch(VERSION_PATTERN, version):
        raise LockError(
            f"LITELLM={version!r} is not X.Y.Z; name an exact release, e.g. make lock LITELLM=1.108.7"
        )
    if reason := refusal(version):
        raise LockError(f"{reason}; pick another release")
    gateway_in, lock_file, group_data = root / GATEWAY_IN, root / GATEWAY_LOCK, root / GROUP_DATA
    old_in = gateway_in.read_text()
    new_in = _replace_once(PIN_RE, old_in, f"litellm[proxy]=={version}", GATEWAY_IN)
    new_group = _replace_once(
        SETTING_RE, group_data.read_text(), f'litellm_version = "{version}"', GROUP_DATA
    )
    staged = lock_file.with_name(lock_file.name + ".new")
    gateway_in.write_text(new_in)
    try:
        command = [
            _uv(),
            "pip",
            "compile",
            *COMPILE_FLAGS,
            str(GATEWAY_IN),
            "-o",
            str(staged.relative_to(root)),
        ]
        run = subprocess.run(command, cwd=root, capture_output=True, text=True)
        if run.returncode != 0:
            raise LockError(
                f"uv pip compile failed for litellm {version}; nothing changed:\n{run.stderr.strip()}"
            )
        # The header names the output file; record the real one, as a hand-run compile would.
        text = staged.read_text().replace(str(staged.relative_to(root)), str(GATEWAY_LOCK))
        if locked_litellm_version(text) != version:
            raise LockError(f"the new lock does not pin litellm=={version}; nothing changed")
    except BaseException:
        gateway_in.write_text(old_in)
        raise
    finally:
        staged.unlink(missing_ok=True)
    lock_file.write_text(text)
    group_data.write_text(new_group)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make lock", description=__doc__.splitlines()[0])
    parser.add_argument("version", help="the exact LiteLLM release, X.Y.Z")
    parser.add_argument(
        "--root", type=Path, default=REPO, help="the repository to re-lock (default: this one)"
    )
    args = parser.parse_args(argv)
    try:
        lock(args.version, args.root)
    except LockError as error:
        print(f"make lock: {error}", file=sys.stderr)
        return 2
    print(f"locked litellm {args.version}: {GATEWAY_IN}, {GATEWAY_LOCK} and litellm_version in {GROUP_DATA}")
    print("review with `git diff`, preview with `make rollout ARGS=--dry`, then roll out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
