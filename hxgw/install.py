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


def build_dir(venv_dir: str) -> str:
    """Where a release's venv is built: beside its final place, under a name the deploy never
    takes for an installed release (the facts read venvs/*/.hx-release; `*` skips dot names)."""
    parent, _, name = venv_dir.rstrip("/").rpartition("/")
    return f"{parent}/.build-{name}"


def install_script(
    release_id: str,
    venv_dir: str,
    lock: str,
    wheelhouse_tar: str | None,
    work_dir: str,
    installer: str = "uv",
) -> str:
    """One `sh -e` script; `wheelhouse_tar=None` installs from the host's package index.

    The venv is built under build_dir() and renamed into place (one rename) only when complete,
    with its marker, so a killed install leaves nothing under the release's name. A venv names
    its own path in its scripts' #! lines and its bytecode: the build writes the bytecode as the
    final path names it (compileall -s/-p) and rewrites the scripts before the rename.
    """
    q = shlex.quote
    venv, work, build = q(venv_dir), q(work_dir), q(build_dir(venv_dir))
    parent = q(venv_dir.rstrip("/").rpartition("/")[0])
    # Leftovers of a killed run (its remote work has ended: hxops.deploy_lock's work lock).
    lines = ["set -e", f"rm -rf {build} {work} {parent}/.trash-*", f"mkdir -p {work}"]
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
            f'"$uv" venv --quiet --python /usr/bin/python3 {build}',
            f'"$uv" pip install --quiet --python {build}/bin/python --no-cache --offline '
            f"{sources} --require-hashes -r {lock_path}",
        ]
    else:
        lines += [
            f"python3 -m venv {build}",
            f"{build}/bin/pip install --quiet --disable-pip-version-check --no-cache-dir --no-compile "
            f"{sources} --require-hashes -r {lock_path}".replace("  ", " "),
        ]
    lines += [
        # BYTECODE (above), on every CPU, naming the final path. Like uv's --compile-bytecode and
        # pip's own, a module that does not compile (a Python 2 test fixture in a package) is skipped.
        f"{build}/bin/python -m compileall -q -j 0 -s {build} -p {venv} {build}/lib >/dev/null || true",
        # #! lines (bin/, not the python symlinks: grep -r does not follow them) and pyvenv.cfg.
        f"grep -rlIF -- {build} {build}/bin {build}/pyvenv.cfg | while IFS= read -r f; do "
        f'sed -i "s|{build_dir(venv_dir)}|{venv_dir}|g" "$f"; done',
        # uv leaves a world-writable .lock in the venv; nothing under base_dir may be.
        f"chmod -R go-w {build}",
        f"echo {q(release_id)} > {build}/.hx-release",
        # A directory under the release's name here is an older deploy's half-built one (a
        # complete release is never reinstalled): out of the way, then the one rename.
        f"if [ -e {venv} ]; then mv -T {venv} {parent}/.trash-{q(release_id)} && "
        f"rm -rf {parent}/.trash-{q(release_id)}; fi",
        f"mv -T {build} {venv}",
        f"rm -rf {work}" + (f" {q(wheelhouse_tar)}" if wheelhouse_tar else ""),
    ]
    return "\n".join(lines)
