"""Issue 23, the pure parts: the deploy lock's holder text and its SSH command, and the drift
repair's tolerance of files that vanish while it runs (real find and sh on a temporary tree)."""

from __future__ import annotations

import shlex
import stat
import subprocess

import pytest

from hxgw.layout import _tolerant
from hxgw.settings import ConfigError, Settings, parse_settings
from hxops import deploy_lock


def test_holder_text_round_trips_and_names_everything_the_message_needs():
    text = deploy_lock.holder_lines("pyinfra deploy.py") + "\ntoken=abc\nstep=tasks/venv.py | Install litellm"
    holder = deploy_lock.Holder.parse(text.replace("\n", "\t"))  # as the remote side shows it
    assert holder.what == "pyinfra deploy.py" and holder.step == "tasks/venv.py | Install litellm"
    described = holder.describe()
    for part in (holder.user, holder.control, f"pid {holder.pid}", f"started {holder.started}", "at step:"):
        assert part in described


def test_a_free_lock_reads_as_none_and_a_held_one_as_its_holder():
    assert deploy_lock.read_holder(["free"]) is None
    held = deploy_lock.read_holder(
        ["held", "control=cm", "user=ops", "pid=42", "started=T", "what=w", "step=s"]
    )
    assert held == deploy_lock.Holder("cm", "ops", "42", "T", "w", "s")


def test_the_lock_session_uses_the_hosts_pyinfra_ssh_data():
    argv = deploy_lock.ssh_command(
        {
            "ssh_hostname": "198.18.0.39",
            "ssh_port": 2222,
            "ssh_user": "root",
            "ssh_key": "/k",
            "ssh_known_hosts_file": "/dev/null",
            "ssh_strict_host_key_checking": "no",
        },
        "true",
    )
    assert argv[-2:] == ["198.18.0.39", "true"]
    joined = " ".join(argv)
    for part in ("-p 2222", "-l root", "-i /k", "UserKnownHostsFile=/dev/null", "StrictHostKeyChecking=no"):
        assert part in joined
    assert "BatchMode=yes" in joined  # never a password prompt that would hold the lock open


def test_long_remote_commands_run_under_the_shared_work_lock():
    wrapped = deploy_lock.under_work_lock("echo 'a b'")
    assert f"flock -s {deploy_lock.WORK_LOCK} sh -c " in wrapped and wrapped.endswith(" hx-deploy-work")
    inner = shlex.split(wrapped.split(" sh -c ", 1)[1])[0]
    assert "( echo 'a b'\n)" in inner and inner.startswith("trap '' PIPE;")


def test_work_under_the_lock_outlives_a_closed_channel_and_keeps_its_output(tmp_path):
    """The killed deploy's channel is gone: the command still runs to its end (no SIGPIPE)."""
    marker = tmp_path / "done"
    script = f"echo first; sleep 0.5; echo second; touch {marker}"
    inner = shlex.split(deploy_lock.under_work_lock(script).split(" sh -c ", 1)[1])[0]
    proc = subprocess.Popen(["sh", "-c", inner], stdout=subprocess.PIPE)
    proc.stdout.close()  # the reader (sshd's channel) goes away at once
    proc.wait(timeout=10)  # its final `cat` into the closed pipe fails; the work before it must not
    assert marker.exists()
    run = subprocess.run(["sh", "-c", inner], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout == "first\nsecond\n"


@pytest.mark.parametrize("value", [0, -1, 3601, "600", True])
def test_deploy_lock_timeout_is_a_positive_number_of_seconds(value):
    base = {"base_dir": "/opt/hx", "gateway_ip": "198.18.0.39", "litellm_version": "1.108.7"}
    with pytest.raises(ConfigError, match="deploy_lock_timeout"):
        parse_settings({**base, "deploy_lock_timeout": value}, locked_litellm_version="1.108.7")


def test_deploy_lock_timeout_default_outlasts_a_slow_healthy_deploy():
    assert Settings.model_fields["deploy_lock_timeout"].default == 600


def _shim(tmp_path, body: str):
    shim = tmp_path / "shim"
    shim.write_text("#!/bin/sh\n" + body)
    shim.chmod(0o755)
    return str(shim)


def _writable_tree(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("a", "b", "c"):
        (tree / name).write_text(name)
        (tree / name).chmod(0o666)
    return tree


def test_a_repair_skips_a_file_that_vanished_since_find_saw_it(tmp_path):
    tree = _writable_tree(tmp_path)
    # The repair's command, but the first file it is handed vanishes just before (a log rotated,
    # a killed install's venv removed).
    shim = _shim(tmp_path, f'rm -f {tree}/a; exec chmod o-w "$@"\n')
    words = ["find", str(tree), "-ignore_readdir_race", "-type", "f", "-perm", "/002", *_tolerant(shim)]
    run = subprocess.run(words, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    left = sorted(p.name for p in tree.iterdir())
    assert len(left) == 2 and all(not (tree / n).stat().st_mode & stat.S_IWOTH for n in left)


def test_a_repair_still_fails_on_a_file_it_cannot_fix(tmp_path):
    tree = _writable_tree(tmp_path)
    shim = _shim(tmp_path, 'echo "cannot fix $*" >&2; exit 1\n')
    words = ["find", str(tree), "-ignore_readdir_race", "-type", "f", *_tolerant(shim)]
    run = subprocess.run(words, capture_output=True, text=True)
    assert run.returncode != 0 and "cannot fix" in run.stderr
