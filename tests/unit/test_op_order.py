"""pyinfra's operation order, and why tasks/gateway.py calls each step from a line of its own.

pyinfra (CLI mode) identifies and orders an operation by the line numbers of its call stack from
the deploy file down. Two steps called from ONE line (a loop over steps) whose operations sit on
the same line numbers of their own modules share those identities: hosts in different states
then order them differently, and pyinfra finds a cycle. Planned with the @fake connector only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hxops.wheelhouse import release_for

REPO = Path(__file__).resolve().parents[2]
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))

# Two step modules laid out alike: line 7 holds an operation that only some hosts get.
STEP = """\
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server
@deploy("{name}")
def {name}():
    if {condition}:
        server.shell(name="{name}: {which} hosts only", commands=["true"])
    server.shell(name="{name}: every host", commands=["true"])
"""
INVENTORY = """\
hosts = [("@fake/fresh", {"fresh": True}), ("@fake/deployed", {"fresh": False})]
"""


def plan(tmp_path: Path, deploy_text: str, inventory_text: str = INVENTORY) -> subprocess.CompletedProcess:
    (tmp_path / "deploy.py").write_text(deploy_text)
    (tmp_path / "inventory.py").write_text(inventory_text)
    return subprocess.run(
        [PYINFRA, "--dry", "--json", "inventory.py", "deploy.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )


def steps(tmp_path: Path) -> None:
    (tmp_path / "step_a.py").write_text(
        STEP.format(name="a", condition='host.data.get("fresh")', which="fresh")
    )
    (tmp_path / "step_b.py").write_text(
        STEP.format(name="b", condition='not host.data.get("fresh")', which="deployed")
    )


HEADER = "import sys\nsys.path.insert(0, '.')\nfrom step_a import a\nfrom step_b import b\n"


def test_steps_called_from_one_line_collide_across_hosts_in_different_states(tmp_path):
    steps(tmp_path)
    result = plan(tmp_path, HEADER + "for step in (a, b):\n    step()\n")
    assert result.returncode != 0
    assert "Cycle detected in operation ordering DAG" in result.stdout + result.stderr


def test_steps_called_from_lines_of_their_own_line_up(tmp_path):
    steps(tmp_path)
    result = plan(tmp_path, HEADER + "a()\nb()\n")
    assert result.returncode == 0, result.stderr[-2000:]
    names = [op["name"] for op in json.loads(result.stdout)["plan"]]
    assert names == [
        "a | a: fresh hosts only",
        "a | a: every host",
        "b | b: deployed hosts only",
        "b | b: every host",
    ]


def gateway_fact(venv_installed: bool) -> str:
    release = release_for((3, 11, 2), "x86_64", "2.36").id
    lines = [f"bin {b}" for b in ("ip", "ss", "python3", "systemctl", "curl", "tar", "sha256sum")]
    lines += ["os debian 12", "python 3.11.2 x86_64 2.36", "disk_kb 9000000", "pkg python3-venv"]
    if venv_installed:
        lines += ["service active 42", f"venv {release}", f"release {release}", "env_file present"]
        lines += [
            "passwd hx-gateway:x:999:999:HX gateway service (managed by the hx deploy):/nonexistent:/bin/false"
        ]
        lines += ["group hx-gateway:x:999:"]
    else:
        lines += ["service inactive 0", "venv -"]
    return "\n".join(lines + ["addr 192.168.10.39"])


def test_the_deploy_plans_a_fresh_and_a_deployed_gateway_together(tmp_path):
    """The commits 978ae22/18b9811 case: a new gateway next to a deployed one, one restart op."""

    def gateway(fresh: bool) -> dict:
        return {
            "gateway_ip": "192.168.10.39",
            "fake_delay": 0,
            "fake_delay_jitter": 0,
            "fake_responses": {
                "uname -s": "Linux",
                "useradd": "/usr/sbin/useradd",
                "command -v $b": gateway_fact(not fresh),
            },
        }

    inventory = f"gateways = [('@fake/fresh', {gateway(True)!r}), ('@fake/deployed', {gateway(False)!r})]\n"
    (tmp_path / "inventory.py").write_text(inventory)
    result = subprocess.run(
        # install_source=index: the fresh host's install is planned without building a wheelhouse.
        [
            PYINFRA,
            "--dry",
            "--json",
            "--data",
            "install_source=index",
            str(tmp_path / "inventory.py"),
            "deploy.py",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    operations = {op["name"]: op for op in json.loads(result.stdout)["plan"]}
    install = next(
        op for name, op in operations.items() if name.startswith("tasks/venv.py | Install litellm")
    )
    assert install["hosts_with_change"] == ["@fake/fresh"]
    # One restart operation for both hosts (not one per host, run one after the other).
    restarts = [name for name in operations if name.startswith("tasks/service.py | Restart the gateway")]
    assert restarts == ["tasks/service.py | Restart the gateway and wait for readiness"]
    assert operations[restarts[0]]["hosts_with_change"] == ["@fake/deployed", "@fake/fresh"]
