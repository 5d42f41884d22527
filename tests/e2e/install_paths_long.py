"""The other install paths, each on a gateway of its own, end to end: the pip fallback
(`installer: pip`) from the shipped wheelhouse, and `install_source: index`, where the host's own
pip installs from its configured package index.

uv from the wheelhouse is the default (tests/e2e/test_deploy.py covers it). Each test boots one
extra gateway, deploys it, checks that the venv was made as asked and serves (the deploy's own
validation step calls the API), that a re-run installs and restarts nothing, then removes it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from testbed import fleet
from tests.e2e import helpers

VENV = f"{helpers.BASE}/gateway/venv"
INDEX_PORT = 8765


@pytest.fixture
def extra_gateway(first_deploy):
    """A fresh gateway (after the session's first deploy, so the wheelhouse is built)."""
    name = helpers.fresh_gateway()
    yield name
    fleet.remove_machine(name)


def installs(result: helpers.DeployResult, host: str) -> list[str]:
    return [name for name in result.changed(host) if name.startswith("tasks/venv.py | Install litellm")]


def assert_serves_and_reruns_as_a_noop(host: str, *args: str) -> None:
    assert helpers.ssh(host, f"curl -fsS {fleet.find(host).address}:4000/health/readiness")
    pid = helpers.main_pid(host)
    helpers.assert_noop(helpers.pyinfra("--limit", host, *args), host)
    assert helpers.main_pid(host) == pid


def test_pip_fallback_installs_a_working_venv_and_reruns_as_a_noop(extra_gateway):
    first = helpers.pyinfra("--limit", extra_gateway, "--data", "installer=pip")
    assert first.returncode == 0, first.output[-4000:]
    assert [name.endswith("(pip)") for name in installs(first, extra_gateway)] == [True]
    # pip made this venv (a uv venv has no pip in it); the gateway started from it, and the
    # deploy's validation step called the API it serves.
    assert "pip " in helpers.ssh(extra_gateway, f"{VENV}/bin/pip --version")
    ran = first.changed(extra_gateway) + first.unchanged(extra_gateway)
    assert any(name.startswith("tasks/validate.py") for name in ran) and not first.errors(extra_gateway)
    assert_serves_and_reruns_as_a_noop(extra_gateway, "--data", "installer=pip")


def wheelhouse_of_this_lock() -> tarfile.TarFile:
    """The wheelhouse tar (built by the session's first deploy) whose lock is the repository's."""
    lock = (helpers.REPO / "requirements" / "gateway.lock").read_bytes()
    cache = Path.home() / ".cache" / "hx-gateway" / "wheelhouse"
    for path in sorted(cache.glob("wheelhouse-*.tar")):
        tar = tarfile.open(path)
        member = tar.extractfile("gateway.lock")
        if member is not None and member.read() == lock:
            return tar
        tar.close()
    raise AssertionError(f"no wheelhouse in {cache} was built from requirements/gateway.lock")


@pytest.fixture
def package_index(tmp_path, fleet_machines):
    """The wheelhouse served as a simple package index (one directory per normalised project
    name, as pip asks for it) on the fleet's bridge address, for this test only."""
    root = tmp_path / "simple"
    with wheelhouse_of_this_lock() as tar:
        for member in tar.getmembers():
            if member.name.endswith(".whl"):
                project = re.sub(r"[-_.]+", "-", member.name.split("-")[0]).lower()
                (root / project).mkdir(parents=True, exist_ok=True)
                (root / project / member.name).write_bytes(tar.extractfile(member).read())
    bridge = fleet.find(helpers.GATEWAY).address.rsplit(".", 1)[0] + ".1"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(INDEX_PORT),
            "--bind",
            bridge,
            "--directory",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield f"http://{bridge}:{INDEX_PORT}/simple/"
    server.terminate()
    served = server.communicate(timeout=10)[1]
    assert "GET /simple/litellm/" in served, served[-2000:]  # pip really used it


def test_install_from_the_hosts_package_index_end_to_end(extra_gateway, package_index):
    # The host's own pip configuration names the index, as an operator would set it up.
    host_ip = package_index.split("//")[1].split(":")[0]
    helpers.ssh(
        extra_gateway,
        f"printf '[global]\\nindex-url = {package_index}\\ntrusted-host = {host_ip}\\n' > /etc/pip.conf",
    )
    # No route anywhere else: the index on the control machine answers the host.
    helpers.ssh(extra_gateway, f"curl -fsS -o /dev/null {package_index}litellm/")
    first = helpers.pyinfra("--limit", extra_gateway, "--data", "install_source=index")
    assert first.returncode == 0, first.output[-4000:]
    assert [name.endswith("(pip)") for name in installs(first, extra_gateway)] == [
        True
    ]  # uv needs the wheelhouse
    changed = first.changed(extra_gateway)
    assert "tasks/venv.py | Upload the hash-locked requirements" in changed
    assert not [name for name in changed if name.startswith("tasks/venv.py | Ship the wheelhouse")]
    assert not helpers.ssh(extra_gateway, f"ls {helpers.BASE}/gateway | grep '^wheelhouse-' || true").strip()
    assert "litellm" in helpers.ssh(extra_gateway, f"{VENV}/bin/pip show litellm")
    assert_serves_and_reruns_as_a_noop(extra_gateway, "--data", "install_source=index")
