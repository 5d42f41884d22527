"""The installer choice and install script (hxgw.install), and the wheelhouse (hxops.wheelhouse):
built once per release, shared by concurrent deploys."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hxgw.install import effective_installer, install_script
from hxops import wheelhouse

REPO = Path(__file__).resolve().parents[2]


# ---------- the installer ----------


def test_installer_choice():
    assert effective_installer("uv", True) == "uv"
    assert effective_installer("pip", True) == "pip"
    assert effective_installer("uv", False) == "pip"  # uv comes only with the wheelhouse
    with pytest.raises(ValueError, match="uv, pip"):
        effective_installer("conda", True)


def test_pip_fallback_script_uses_the_wheelhouse_offline_and_hash_checked():
    script = install_script("r1", "/v/r1", None, "/g/wh.tar", "/g/.install-r1", installer="pip")
    assert "python3 -m venv /v/.build-r1" in script  # built under a temporary name
    assert "/v/.build-r1/bin/pip install" in script and "--no-index --find-links /g/.install-r1" in script
    assert "--require-hashes -r /g/.install-r1/gateway.lock" in script
    assert "uv" not in script.replace("/v/r1", "")
    assert "--no-compile" in script  # compileall writes the bytecode, naming the final path
    assert script.endswith("rm -rf /g/.install-r1 /g/wh.tar")


def test_uv_script_unpacks_uv_from_its_wheel():
    script = install_script("r1", "/v/r1", None, "/g/wh.tar", "/g/.install-r1", installer="uv")
    assert "python3 -m zipfile -e /g/.install-r1/uv-*.whl" in script
    assert '"$uv" pip install' in script and "--offline --no-index" in script


def test_the_install_writes_the_bytecode_then_moves_the_venv_into_place_and_imports_nothing():
    """The service cannot write bytecode: the install writes it (naming the final path), marks the
    build complete, and only then renames it to the release's name; a smoke import would only
    repeat what the first start proves."""
    lines = install_script("r1", "/v/r1", None, "/g/wh.tar", "/g/.install-r1").splitlines()
    install = next(i for i, line in enumerate(lines) if '"$uv" pip install' in line)
    compiled = next(i for i, line in enumerate(lines) if "compileall" in line)
    release = next(i for i, line in enumerate(lines) if ".hx-release" in line)
    moved = lines.index("mv -T /v/.build-r1 /v/r1")
    assert install < compiled < release < moved
    assert "-s /v/.build-r1 -p /v/r1" in lines[compiled]
    assert not any("import litellm" in line or "bin/litellm" in line for line in lines)


def test_index_install_is_pip_even_when_uv_is_asked_for():
    script = install_script("r1", "/v/r1", "/g/gateway-r1.lock", None, "/g/.install-r1", installer="uv")
    assert "/v/.build-r1/bin/pip install" in script and "--no-index" not in script


# ---------- the wheelhouse ----------


def test_concurrent_deploys_share_one_wheelhouse_build(tmp_path, monkeypatch):
    """Three deploys need the same release at once. The build starts only after all three have
    found the tar missing, so the two that do not build are past that check and must wait for
    the build (on the lock): without the lock each would build its own."""
    monkeypatch.setattr(wheelhouse, "CACHE", tmp_path)
    callers = 3
    checked: set[int] = set()
    everyone_checked = threading.Event()
    builds = []

    class WatchedRelease(wheelhouse.Release):
        @property
        def tar_path(self):
            checked.add(threading.get_ident())
            if len(checked) == callers:
                everyone_checked.set()
            return super().tar_path

    def fake_pip(cmd, **_):
        builds.append(cmd)
        # A bound on a hang (a caller that never comes), not a timing assumption.
        assert everyone_checked.wait(timeout=60), "the other callers never looked for the tar"
        dest = Path(cmd[cmd.index("--dest") + 1])
        (dest / "pkg-1.0-py3-none-any.whl").write_bytes(b"wheel")

        class Done:
            returncode, stderr = 0, ""

        return Done()

    monkeypatch.setattr(wheelhouse.subprocess, "run", fake_pip)
    release = WatchedRelease("abc", "3.11", "x86_64", "2.36")
    results, failures = [], []

    def deploy():
        try:
            results.append(wheelhouse.ensure_built(release))
        except Exception as error:  # noqa: BLE001 - reported below, with the thread's error
            failures.append(error)

    threads = [threading.Thread(target=deploy) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(builds) == 1
    assert results == [tmp_path / "wheelhouse-abc.tar"] * callers
    assert not list(tmp_path.glob("build-*")) and not list(tmp_path.glob("*.partial"))
    # A later run finds the tar and builds nothing.
    assert wheelhouse.ensure_built(release) == tmp_path / "wheelhouse-abc.tar" and len(builds) == 1


GREENLETS = r"""
from gevent import monkey

monkey.patch_all()  # as pyinfra_cli does: the hosts are then planned in parallel greenlets
import sys
import time
from pathlib import Path

import gevent

sys.path.insert(0, sys.argv[1])
from hxops import wheelhouse

wheelhouse.CACHE = Path(sys.argv[2])
builds = []


class Done:
    returncode, stderr = 0, ""


def fake_pip(cmd, **_):
    builds.append(cmd)
    time.sleep(0.3)  # cooperative, like waiting on the real pip download
    (Path(cmd[cmd.index("--dest") + 1]) / "p-1.0-py3-none-any.whl").write_bytes(b"wheel")
    return Done()


wheelhouse.subprocess.run = fake_pip
release = wheelhouse.Release("abc", "3.11", "x86_64", "2.36")
jobs = [gevent.spawn(wheelhouse.ensure_built, release, log=lambda *_: None) for _ in range(3)]
gevent.joinall(jobs, timeout=20, raise_error=True)
print(len(builds), sum(job.successful() for job in jobs))
"""


def test_hosts_planned_in_parallel_greenlets_share_one_build_without_deadlock(tmp_path):
    """pyinfra 3.10 plans hosts in greenlets of one process: a blocking flock() taken by the second
    host froze the first one in the middle of its build (a cold cache and two hosts hung for ever)."""
    script = tmp_path / "greenlets.py"
    script.write_text(GREENLETS)
    result = subprocess.run(
        [sys.executable, str(script), str(REPO), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1", "3"]  # one build, three hosts served


def test_release_id_changes_with_the_target_python_and_platform():
    a = wheelhouse.release_for((3, 11, 2), "x86_64", "2.36")
    assert a == wheelhouse.release_for((3, 11, 9), "x86_64", "2.36")  # same minor: same wheels
    assert a.id != wheelhouse.release_for((3, 12, 1), "x86_64", "2.36").id
    assert a.id != wheelhouse.release_for((3, 11, 2), "aarch64", "2.36").id
