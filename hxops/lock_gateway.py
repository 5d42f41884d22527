"""`make lock LITELLM=X.Y.Z`: lock a LiteLLM release for the gateways and set it, in one step.

The hash-locked requirements/gateway.lock is the one truth for the version the venv installs;
group_data/all.py's litellm_version may only agree with it (the plan refuses a mismatch). This
rewrites the pin in requirements/gateway.in, regenerates the lock with the command its header
records (same uv, same flags), and sets litellm_version, or changes nothing if any step fails.
A release on the refused list (requirements/refused-litellm.toml) is refused before anything.

`--beside` (make lock LITELLM=X.Y.Z BESIDE=1) locks the release beside the pin instead, in
requirements/gateway-X.Y.Z.lock, from gateway.in with only the litellm pin changed, and leaves
the pin alone (hxops.gateway_locks). Making a release the pin removes its lock beside the pin.
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
from hxops.gateway_locks import beside_lock

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


def _check_version(version: str) -> None:
    if not re.fullmatch(VERSION_PATTERN, version):
        raise LockError(
            f"LITELLM={version!r} is not X.Y.Z; name an exact release, e.g. make lock LITELLM=1.108.7"
        )
    if reason := refusal(version):
        raise LockError(f"{reason}; pick another release")


def _compile(root: Path, source: Path, target: Path, version: str) -> str:
    """uv pip compile `source` (relative to root) into the text of the lock `target` pinning
    `version`; raise LockError (nothing written) when it fails."""
    staged = target.with_name(target.name + ".new")
    # uv prefers the versions already in the output file: seeded with the current lock, a re-lock
    # that adds a requirement moves only what it must, not every package with a newer release.
    if (root / target).exists():
        shutil.copyfile(root / target, root / staged)
    try:
        command = [_uv(), "pip", "compile", *COMPILE_FLAGS, str(source), "-o", str(staged)]
        run = subprocess.run(command, cwd=root, capture_output=True, text=True)
        if run.returncode != 0:
            raise LockError(
                f"uv pip compile failed for litellm {version}; nothing changed:\n{run.stderr.strip()}"
            )
        # The header names the output file; record the real one, as a hand-run compile would.
        text = (root / staged).read_text().replace(str(staged), str(target))
    finally:
        (root / staged).unlink(missing_ok=True)
    if locked_litellm_version(text) != version:
        raise LockError(f"the new lock does not pin litellm=={version}; nothing changed")
    return text


def lock(version: str, root: Path = REPO) -> None:
    """Pin `version` in gateway.in, regenerate gateway.lock and set litellm_version under `root`."""
    _check_version(version)
    gateway_in, lock_file, group_data = root / GATEWAY_IN, root / GATEWAY_LOCK, root / GROUP_DATA
    old_in = gateway_in.read_text()
    new_in = _replace_once(PIN_RE, old_in, f"litellm[proxy]=={version}", GATEWAY_IN)
    new_group = _replace_once(
        SETTING_RE, group_data.read_text(), f'litellm_version = "{version}"', GROUP_DATA
    )
    gateway_in.write_text(new_in)
    try:
        text = _compile(root, GATEWAY_IN, GATEWAY_LOCK, version)
    except BaseException:
        gateway_in.write_text(old_in)
        raise
    lock_file.write_text(text)
    group_data.write_text(new_group)
    beside_lock(version, root).unlink(missing_ok=True)  # the pin now: one lock per release


def lock_beside(version: str, root: Path = REPO) -> Path:
    """Lock `version` in requirements/gateway-X.Y.Z.lock, leaving the pin as it is."""
    _check_version(version)
    pinned = locked_litellm_version((root / GATEWAY_LOCK).read_text())
    if version == pinned:
        raise LockError(f"litellm {version} is the pin already ({GATEWAY_LOCK}); nothing to lock beside it")
    target = beside_lock(version, root).relative_to(root)
    source = target.with_suffix(".in")  # gateway.in with only the pin changed, for uv's header
    pin = f"litellm[proxy]=={version}"
    (root / source).write_text(_replace_once(PIN_RE, (root / GATEWAY_IN).read_text(), pin, GATEWAY_IN))
    try:
        text = _compile(root, source, target, version)
    finally:
        (root / source).unlink(missing_ok=True)
    header = f"# Held beside the pin by `make lock LITELLM={version} BESIDE=1`: {GATEWAY_IN} with {pin}\n"
    (root / target).write_text(header + text)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make lock", description=__doc__.splitlines()[0])
    parser.add_argument("version", help="the exact LiteLLM release, X.Y.Z")
    parser.add_argument(
        "--root", type=Path, default=REPO, help="the repository to re-lock (default: this one)"
    )
    parser.add_argument(
        "--beside",
        action="store_true",
        help="lock the release in requirements/gateway-X.Y.Z.lock beside the pin, leaving the pin",
    )
    args = parser.parse_args(argv)
    try:
        if args.beside:
            target = lock_beside(args.version, args.root)
            print(f"locked litellm {args.version} beside the pin: {target}")
            print(f"roll out with `make rollout ARGS='--data litellm_version={args.version}'`")
            return 0
        lock(args.version, args.root)
    except LockError as error:
        print(f"make lock: {error}", file=sys.stderr)
        return 2
    print(f"locked litellm {args.version}: {GATEWAY_IN}, {GATEWAY_LOCK} and litellm_version in {GROUP_DATA}")
    print("review with `git diff`, preview with `make rollout ARGS=--dry`, then roll out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
