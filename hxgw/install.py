"""The shell that installs one venv release on a gateway host, from a shipped wheelhouse or an index.

A release goes into its own directory (venvs/<release>) and is marked complete only at the end,
so an interrupted install is redone, never half-used; the `venv` symlink is switched afterwards
by the deploy, so the running service keeps its venv until the restart.
"""

from __future__ import annotations

import shlex

# No smoke import here: a broken dependency set fails the first start just as surely (start.sh
# waits for readiness, the host fails, and a later deploy rolls back), so importing the proxy
# before it starts only doubled that work.
#
# BYTECODE: the service cannot write bytecode (read-only venv, PYTHONDONTWRITEBYTECODE), so every
# module without a .pyc is compiled from source at EVERY start, in every worker, and a module
# first imported while serving (LiteLLM retries a failing optional import, its OTel logger, on
# each request) on every use. The installer writes it once, in parallel; bench/results.md shows
# what it costs in the install and what it saves in each start.
# Host data `installer`: uv (shipped as a wheel in the wheelhouse) or pip, the fallback.
INSTALLERS = ("uv", "pip")


def effective_installer(installer: str, from_wheelhouse: bool) -> str:
    """The installer that really runs: uv comes only with the wheelhouse, so an install from the
    host's own index (install_source = "index") always uses pip."""
    if installer not in INSTALLERS:
        raise ValueError(f"installer must be one of {', '.join(INSTALLERS)}, not {installer!r}")
    return installer if from_wheelhouse else "pip"


def install_script(
    release_id: str,
    venv_dir: str,
    lock: str,
    wheelhouse_tar: str | None,
    work_dir: str,
    installer: str = "uv",
) -> str:
    """One `sh -e` script; `wheelhouse_tar=None` installs from the host's package index."""
    q = shlex.quote
    venv, work = q(venv_dir), q(work_dir)
    lines = ["set -e", f"rm -rf {venv} {work}", f"mkdir -p {work}"]
    if wheelhouse_tar:
        lines.append(f"tar -xf {q(wheelhouse_tar)} -C {work}")
        lock_path = f"{work}/gateway.lock"
        sources = f"--no-index --find-links {work}"
    else:
        lock_path = q(lock)
        sources = ""
    if effective_installer(installer, bool(wheelhouse_tar)) == "uv":
        # uv ships as a wheel; a wheel is a zip, so python3 itself unpacks the binary.
        lines += [
            f"python3 -m zipfile -e {work}/uv-*.whl {work}/uv",
            f'uv=$(ls {work}/uv/uv-*.data/scripts/uv) && chmod 755 "$uv"',
            f'"$uv" venv --quiet --python /usr/bin/python3 {venv}',
            # --compile-bytecode: see BYTECODE below; uv compiles on every CPU while it installs.
            f'"$uv" pip install --quiet --python {venv}/bin/python --no-cache --offline '
            f"{sources} --compile-bytecode --require-hashes -r {lock_path}",
        ]
    else:
        lines += [
            f"python3 -m venv {venv}",
            # pip writes the bytecode of what it installs by default (BYTECODE below).
            f"{venv}/bin/pip install --quiet --disable-pip-version-check --no-cache-dir "
            f"{sources} --require-hashes -r {lock_path}".replace("  ", " "),
        ]
    lines += [
        # uv leaves a world-writable .lock in the venv; nothing under base_dir may be.
        f"chmod -R go-w {venv}",
        f"echo {q(release_id)} > {venv}/.hx-release",
        f"rm -rf {work}" + (f" {q(wheelhouse_tar)}" if wheelhouse_tar else ""),
    ]
    return "\n".join(lines)
