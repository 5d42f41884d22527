"""The pre-checks and the preflight refuse a host with a message naming the problem and the fix,
before anything on it changes: a missing binary, an unsupported OS, Python < 3.10, too little
disk, a foreign process on the port; and the backend check, when strict, refuses a host whose
backend lacks a model or cannot be reached.

Each condition is made for real on a fleet machine with the smallest stand-in (a renamed binary,
a fake /etc/os-release, a python3 shim reporting 3.9, a small tmpfs over /opt, a process holding
port 4000), and taken away after the test. The machine is one no deploy has touched: the module
boots it and removes it at the end.
"""

from __future__ import annotations

import shlex

import pytest

from testbed import fleet
from tests.e2e import helpers

GATEWAY = helpers.GATEWAY
PY39_SHIM = """#!/bin/sh
# A python3 that reports 3.9 (the real interpreter underneath): a stand-in for an old host.
PYTHONPATH=/usr/local/lib/hx-py39 exec /usr/bin/python3 "$@"
"""
PY39_SITE = "import sys\nsys.version_info = (3, 9, 18, 'final', 0)\n"


@pytest.fixture(scope="module")
def bare_host(fleet_machines):
    name = helpers.fresh_gateway()
    yield name
    fleet.remove_machine(name)


def refused(host: str, *args: str, env: dict | None = None) -> helpers.DeployResult:
    """Deploy (for real, not --dry) and expect the host refused with nothing changed on it."""
    before = helpers.untouched_snapshot(host)
    result = helpers.pyinfra("--limit", host, *args, env=env)
    assert result.returncode != 0, result.output[-3000:]
    assert helpers.untouched_snapshot(host) == before
    return result


@pytest.fixture
def stand_in(bare_host):
    """Run a setup command on the bare host now and its undo command after the test."""
    undo: list[str] = []

    def make(setup: str, teardown: str) -> None:
        helpers.ssh(bare_host, setup)
        undo.append(teardown)

    yield make
    for command in reversed(undo):
        helpers.ssh(bare_host, command)


def test_the_bare_host_passes_every_preflight_check(bare_host):
    """The control: without a stand-in, the same --dry plan goes past the preflight."""
    result = helpers.pyinfra("--dry", "--limit", bare_host, json_output=False)
    assert result.returncode == 0, result.output[-3000:]
    assert "preflight failed" not in result.output and "required command" not in result.output
    assert "tasks/venv.py | Install litellm" in result.output


def test_a_missing_binary_is_refused_with_the_package_to_install(bare_host, stand_in):
    stand_in("mv /usr/bin/curl /usr/bin/curl.hx-away", "mv /usr/bin/curl.hx-away /usr/bin/curl")
    result = refused(bare_host)
    assert "required command(s) not found: curl" in result.output
    assert "Install them on the host: apt-get install -y curl" in result.output


def test_an_unsupported_os_is_refused(bare_host, stand_in):
    stand_in(
        "mv /etc/os-release /etc/os-release.hx-away && "
        "printf 'ID=centos\\nVERSION_ID=\"7\"\\n' > /etc/os-release",
        "rm -f /etc/os-release && mv /etc/os-release.hx-away /etc/os-release",
    )
    result = refused(bare_host)
    assert "preflight failed" in result.output
    assert "unsupported OS centos 7: the gateway needs Debian >= 12 or Ubuntu >= 22.04" in result.output


def test_python_older_than_3_10_is_refused(bare_host, stand_in):
    stand_in(
        "mkdir -p /usr/local/lib/hx-py39 && "
        f"printf '%s' {shlex.quote(PY39_SITE)} > /usr/local/lib/hx-py39/sitecustomize.py && "
        f"printf '%s' {shlex.quote(PY39_SHIM)} > /usr/local/bin/python3 && chmod 755 /usr/local/bin/python3",
        "rm -rf /usr/local/bin/python3 /usr/local/lib/hx-py39",
    )
    assert helpers.ssh(bare_host, "python3 -c 'import sys; print(sys.version_info[:2])'").strip() == "(3, 9)"
    result = refused(bare_host)
    assert "python3 on the host is 3.9.18: litellm needs >= 3.10" in result.output
    assert "install a newer python3" in result.output


def test_too_little_disk_for_the_venv_is_refused(bare_host, stand_in):
    # base_dir does not exist yet: the preflight measures the nearest existing parent, /opt.
    stand_in("mount -t tmpfs -o size=64m hx-small /opt", "umount /opt")
    result = refused(bare_host)
    assert (
        "only 64 MB free under /opt/HX-Infrastructure-/api-gateway: the venv needs 1500 MB" in result.output
    )
    assert "free some disk or point base_dir at a larger filesystem" in result.output


def test_a_foreign_process_on_the_port_is_refused(bare_host, stand_in):
    stand_in(
        "systemd-run --unit hx-squatter --service-type=exec python3 -m http.server 4000 && "
        "for i in $(seq 50); do ss -ltnH 'sport = :4000' | grep -q . && exit 0; sleep 0.2; done; exit 1",
        "systemctl stop hx-squatter",
    )
    pid = helpers.ssh(bare_host, "systemctl show -p MainPID --value hx-squatter").strip()
    result = refused(bare_host)
    assert f"port 4000 is held by another process: pid {pid} (python3)" in result.output
    assert "stop it or set `port` to a free one" in result.output


# --- the backend check, on the deployed gateway (its earlier steps change nothing there) ---------


def assert_gateway_untouched(before: tuple) -> None:
    assert (helpers.sha256(GATEWAY, helpers.CONFIG, helpers.UNIT_FILE), helpers.main_pid(GATEWAY)) == before


def test_a_model_missing_on_its_backend_warns_and_strict_refuses(first_deploy, tmp_path):
    typo = helpers.with_extra_model(tmp_path / "group_data", name="llm02-typo", tag="dolphin3:7b")
    before = (helpers.sha256(GATEWAY, helpers.CONFIG, helpers.UNIT_FILE), helpers.main_pid(GATEWAY))
    warning = "backend llm-02 does not hold dolphin3:7b: run `ollama pull` there or fix the catalogue"

    lenient = helpers.pyinfra("--dry", "--limit", GATEWAY, "--group-data", typo, json_output=False)
    assert lenient.returncode == 0, lenient.output[-3000:]
    assert warning in lenient.output
    assert "tasks/config.py | Render config.yaml" in lenient.output  # the deploy would go on

    strict = helpers.pyinfra("--limit", GATEWAY, "--group-data", typo, "--data", "backend_check_strict=True")
    assert strict.returncode != 0, strict.output[-3000:]
    assert "backend check failed (backend_check_strict is on)" in strict.output
    assert warning in strict.output
    assert_gateway_untouched(before)


def test_an_unreachable_backend_with_strict_checks_is_refused(llm02_down):
    before = (helpers.sha256(GATEWAY, helpers.CONFIG, helpers.UNIT_FILE), helpers.main_pid(GATEWAY))
    strict = helpers.pyinfra("--limit", GATEWAY, "--data", "backend_check_strict=True")
    assert strict.returncode != 0, strict.output[-3000:]
    assert "backend check failed (backend_check_strict is on)" in strict.output
    assert f"backend llm-02 (http://{llm02_down}:11434) is unreachable from {GATEWAY}" in strict.output
    assert "its models will be degraded: llm02-phi3, llm02-gemma2-2b" in strict.output
    assert_gateway_untouched(before)
