"""The pure logic behind fast re-runs and installs: the host snapshot, the decisions of hxops.ops,
the installer choice, the wheelhouse lock, and the benchmark's statistics."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench import steps
from hxgw.install import effective_installer, install_script
from hxgw.settings import parse_settings
from hxops import facts as hxfacts
from hxops import ops, wheelhouse

REPO = Path(__file__).resolve().parents[2]
SETTINGS = parse_settings({"base_dir": "/opt/hx", "gateway_ip": "198.18.0.39", "litellm_version": "1.108.7"})


# ---------- the snapshot ----------


def snapshot(lines: list[str]) -> hxfacts.HostFacts:
    return hxfacts.GatewayHost().process(lines)


def test_managed_paths_cover_the_layout_the_rendered_files_and_the_key_file():
    paths, rendered = hxfacts.managed_paths(SETTINGS)
    assert "/opt/hx" in paths and "/opt/hx/logs/services" in paths
    assert SETTINGS.venv_link in paths and SETTINGS.env_file in paths
    assert set(rendered) <= set(paths)
    assert SETTINGS.config_file in rendered
    assert "/etc/systemd/system/hx-litellm-gateway.service" in rendered
    assert SETTINGS.env_file not in rendered  # the key file's content is never hashed


def test_snapshot_command_is_one_command_and_quotes_paths():
    command = hxfacts.GatewayHost().command(
        "/opt/hx",
        4000,
        "u.service",
        "/opt/hx/gateway/venv",
        "/opt/hx/gateway/venvs",
        "/opt/hx/e",
        paths=["/opt/hx", "/opt/h x"],
        hashed=["/opt/hx/c.yaml"],
        account="hx-gateway",
    )
    assert "'/opt/h x'" in command
    assert "sha1sum /opt/hx/c.yaml" in command
    assert "getent passwd hx-gateway" in command
    assert command.endswith("true")


def test_snapshot_without_paths_adds_nothing():
    assert hxfacts.snapshot_commands((), (), "") == []


def test_snapshot_parses_present_absent_files_links_accounts_and_addresses():
    facts = snapshot(
        [
            "want /opt/hx",
            "want /opt/hx/config/c.yaml",
            "want /opt/hx/gateway/venv",
            "want /opt/hx/absent",
            "stat directory|root|root|755|/opt/hx",
            "stat regular file|root|hx-gateway|640|/opt/hx/config/c.yaml",
            "stat symbolic link|root|root|777|/opt/hx/gateway/venv",
            "target /opt/hx/gateway/venv /opt/hx/gateway/venvs/abc",
            "sha1 0123abcd  /opt/hx/config/c.yaml",
            "passwd hx-gateway:x:999:998::/nonexistent:/bin/false",
            "group hx-gateway:x:998:",
            "addr 127.0.0.1",
            "addr 198.18.0.39",
            "os debian 12",
        ]
    )
    paths = facts.snapshot.paths
    assert paths["/opt/hx"] == {"type": "directory", "user": "root", "group": "root", "mode": 755}
    assert paths["/opt/hx/config/c.yaml"]["sha1"] == "0123abcd"
    assert paths["/opt/hx/config/c.yaml"]["mode"] == 640
    assert paths["/opt/hx/gateway/venv"]["type"] == "link"
    assert paths["/opt/hx/gateway/venv"]["target"] == "/opt/hx/gateway/venvs/abc"
    assert paths["/opt/hx/absent"] == {"type": None}
    assert facts.snapshot.passwd["hx-gateway"] == hxfacts.Account(999, 998, "", "/nonexistent", "/bin/false")
    assert facts.snapshot.groups == {"hx-gateway": 998}
    assert facts.snapshot.addresses == ["127.0.0.1", "198.18.0.39"]
    assert facts.os_id == "debian"  # the rest of the fact is parsed as before


def test_snapshot_ignores_malformed_lines():
    found = snapshot(["stat garbage", "sha1 abc  /not/wanted", "passwd broken", "group x:y:z"]).snapshot
    assert found.paths == {} and found.passwd == {} and found.groups == {}


# ---------- the decisions ----------


def test_directory_in_place_needs_nothing():
    entry = {"type": "directory", "user": "root", "group": "hx", "mode": 750}
    assert ops.directory_fix(entry, "/d", "root", "hx", "750") == []


def test_absent_directory_is_created_owned_and_moded_in_one_command():
    steps_ = ops.directory_fix({"type": None}, "/opt/h x", "root", "hx", "750")
    assert (
        ops.joined(steps_).get_raw_value()
        == "mkdir -p '/opt/h x' && chmod 750 '/opt/h x' && chown root:hx '/opt/h x'"
    )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"type": "directory", "user": "root", "group": "hx", "mode": 777}, "chmod 750 /d"),
        ({"type": "directory", "user": "nobody", "group": "hx", "mode": 750}, "chown root:hx /d"),
        (
            {"type": "directory", "user": "root", "group": "root", "mode": 755},
            "chmod 750 /d && chown root:hx /d",
        ),
    ],
)
def test_drifted_directory_gets_only_the_repair_it_needs(entry, expected):
    assert ops.joined(ops.directory_fix(entry, "/d", "root", "hx", "750")).get_raw_value() == expected


def test_attributes_match_ignores_what_is_not_managed():
    entry = {"type": "file", "user": "root", "group": "hx", "mode": 640}
    assert ops.attributes_match(entry, None, None, None)
    assert ops.attributes_match(entry, "root", "hx", "640")
    assert not ops.attributes_match(entry, "root", "hx", "644")
    assert not ops.attributes_match(entry, "root", "root", None)


def test_content_matches_on_sha1_of_the_rendering():
    text = "port: 4000\n"
    entry = {"type": "file", "sha1": hashlib.sha1(text.encode()).hexdigest()}
    assert ops.content_matches(entry, text)
    assert not ops.content_matches(entry, text + "x")
    assert not ops.content_matches({"type": None}, text)
    assert not ops.content_matches({"type": "file"}, text)  # no hash taken: never trusted
    assert not ops.content_matches(None, text)


def test_a_path_the_snapshot_does_not_cover_is_not_trusted():
    facts = hxfacts.Snapshot(paths={"/a": {"type": None}})
    assert ops.snapshot_of(facts, "/a") == {"type": None}
    assert ops.snapshot_of(facts, "/b") is None
    assert ops.snapshot_of(None, "/a") is None


def test_mode_int_is_pyinfras_representation():
    assert ops.mode_int("640") == 640 and ops.mode_int(755) == 755 and ops.mode_int(None) is None
    with pytest.raises(Exception, match="octal"):
        ops.mode_int("rw-r--r--")


# ---------- the installer ----------


def test_installer_choice():
    assert effective_installer("uv", True) == "uv"
    assert effective_installer("pip", True) == "pip"
    assert effective_installer("uv", False) == "pip"  # uv comes only with the wheelhouse
    with pytest.raises(ValueError, match="uv, pip"):
        effective_installer("conda", True)


def test_pip_fallback_script_uses_the_wheelhouse_offline_and_hash_checked():
    script = install_script("r1", "/v/r1", None, "/g/wh.tar", "/g/.install-r1", installer="pip")
    assert "python3 -m venv /v/r1" in script
    assert "/v/r1/bin/pip install" in script and "--no-index --find-links /g/.install-r1" in script
    assert "--require-hashes -r /g/.install-r1/gateway.lock" in script
    assert "uv" not in script.replace("/v/r1", "")
    assert "litellm --version" in script and script.endswith("rm -rf /g/.install-r1 /g/wh.tar")


def test_uv_script_unpacks_uv_from_its_wheel():
    script = install_script("r1", "/v/r1", None, "/g/wh.tar", "/g/.install-r1", installer="uv")
    assert "python3 -m zipfile -e /g/.install-r1/uv-*.whl" in script
    assert '"$uv" pip install' in script and "--offline --no-index" in script


def test_install_compiles_litellm_after_the_smoke_test():
    """The service cannot write bytecode: what it imports while serving must be compiled here."""
    lines = install_script("r1", "/v/r1", None, "/g/wh.tar", "/g/.install-r1").splitlines()
    smoke = next(i for i, line in enumerate(lines) if "litellm --version" in line)
    compile_ = next(i for i, line in enumerate(lines) if "-m compileall -q -j 0" in line)
    release = next(i for i, line in enumerate(lines) if ".hx-release" in line)
    assert smoke < compile_ < release
    assert (
        lines[compile_].startswith("/v/r1/bin/python -m compileall")
        and '/litellm" > /dev/null' in lines[compile_]
    )


def test_index_install_is_pip_even_when_uv_is_asked_for():
    script = install_script("r1", "/v/r1", "/g/gateway-r1.lock", None, "/g/.install-r1", installer="uv")
    assert "/v/r1/bin/pip install" in script and "--no-index" not in script


# ---------- the wheelhouse ----------


def test_concurrent_deploys_share_one_wheelhouse_build(tmp_path, monkeypatch):
    """Two deploys that need the same release at once: one builds, the other waits on the lock."""
    monkeypatch.setattr(wheelhouse, "CACHE", tmp_path)
    builds = []

    def fake_pip(cmd, **_):
        builds.append(cmd)
        time.sleep(0.3)  # long enough for the other caller to reach the lock
        dest = Path(cmd[cmd.index("--dest") + 1])
        (dest / "pkg-1.0-py3-none-any.whl").write_bytes(b"wheel")

        class Done:
            returncode, stderr = 0, ""

        return Done()

    monkeypatch.setattr(wheelhouse.subprocess, "run", fake_pip)
    release = wheelhouse.Release("abc", "3.11", "x86_64", "2.36")
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(wheelhouse.ensure_built(release))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert results == [tmp_path / "wheelhouse-abc.tar"] * 3
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


# ---------- the benchmark's arithmetic ----------


def test_percentile_nearest_rank():
    values = list(range(1, 201))
    assert steps.percentile(values, 50) == 100
    assert steps.percentile(values, 99) == 198
    assert steps.percentile([5.0], 99) == 5.0
    with pytest.raises(ValueError):
        steps.percentile([], 50)


def test_summary_and_table():
    data = steps.summary([3.0, 1.0, 2.0])
    assert (data["median"], data["min"], data["max"]) == (2.0, 1.0, 3.0)
    row = {"figure": "no-op", "unit": "s", "n": 3, "target": "<= 4 s", "met": True, **data}
    lines = steps.markdown_table([row])
    assert lines[2] == "| no-op | 2.00 s | 1.00 s | 3.00 s | 3 | <= 4 s (met) |"
    assert "MISSED" in steps.markdown_table([{**row, "met": False}])[2]


def test_snapshot_covers_every_entry_of_the_globbed_directories():
    command = "; ".join(hxfacts.snapshot_commands([], [], "", ["/opt/hx"], ["/opt/hx/s s"]))
    assert "for p in /opt/hx/* '/opt/hx/s s'/*; do" in command  # the glob stays unquoted
    assert "sha1sum '/opt/hx/s s'/*" in command and "sha1sum /opt/hx/*" not in command
    globbed, hashed = hxfacts.snapshot_globs(SETTINGS)
    assert globbed == ["/opt/hx"] and hashed == [SETTINGS.scripts_dir]
    facts = snapshot(
        [
            "want /opt/hx/s s/rollback.sh",
            "stat regular file|root|root|700|/opt/hx/s s/rollback.sh",
            "sha1 ab12  /opt/hx/s s/rollback.sh",
        ]
    )
    assert facts.snapshot.paths["/opt/hx/s s/rollback.sh"] == {
        "type": "file",
        "user": "root",
        "group": "root",
        "mode": 700,
        "sha1": "ab12",
    }


def test_a_changed_path_is_forgotten_so_later_operations_ask_the_host():
    facts = hxfacts.Snapshot(paths={"/c.yaml": {"type": "file"}, "/d": {"type": None}})
    ops.forget(facts, "/c.yaml")
    ops.forget(facts, "/never-covered")
    assert ops.snapshot_of(facts, "/c.yaml") is None and ops.snapshot_of(facts, "/d") == {"type": None}
    ops.forget(None, "/x")  # no snapshot at all
    ops.forget(facts, "/d", executing=False)  # planning: the host has not changed yet
    assert ops.snapshot_of(facts, "/d") == {"type": None}
