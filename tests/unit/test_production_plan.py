"""The production inventory, planned with pyinfra's @fake connector: no host is ever contacted.

The fake inventory takes every host and its data from inventory.py and group_data/, drops the
SSH settings, and answers the deploy's fact commands with a healthy Debian 12 gateway that owns
(or, for the guard, does not own) 192.168.10.39.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hxops.wheelhouse import release_for

REPO = Path(__file__).resolve().parents[2]
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
PROD_BACKENDS = {
    "llm-01": ["llama3.2:3b", "qwen3:1.7b", "mistral-small3.2:latest"],
    "llm-02": ["phi3:latest", "gemma2:2b"],
    "orc": ["mxbai-embed-large:latest", "nomic-embed-text:latest", "all-minilm:latest"],
}


def gateway_fact(venv_installed: bool) -> str:
    release = release_for((3, 11, 2), "x86_64", "2.36").id
    lines = [f"bin {b}" for b in ("ip", "ss", "python3", "systemctl", "curl", "tar", "sha256sum")]
    lines += ["os debian 12", "python 3.11.2 x86_64 2.36", "disk_kb 9000000", "service inactive 0"]
    lines += ["venv -", "pkg python3-venv"] + ([f"release {release}"] if venv_installed else [])
    return "\n".join(lines)


def probe_fact() -> str:
    parts = []
    for name, tags in PROD_BACKENDS.items():
        parts += [f"@@ {name} version", '{"version": "0.9.0"}', f"@@ {name} tags"]
        parts.append(json.dumps({"models": [{"name": t} for t in tags]}))
    return "\n".join(parts)


def fake_inventory(tmp_path: Path, owned_address: str) -> Path:
    addresses = [
        {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
        {"ifname": "eth0", "addr_info": [{"family": "inet", "local": owned_address, "prefixlen": 24}]},
    ]
    responses = {
        "uname -s": "Linux",
        "useradd": "/usr/sbin/useradd",
        "command -v $b": gateway_fact(venv_installed=True),
        "ip -j addr show": json.dumps(addresses),
        "/api/version": probe_fact(),
    }
    path = tmp_path / "fake_inventory.py"
    path.write_text(
        textwrap.dedent(
            f"""
            import importlib.util
            _spec = importlib.util.spec_from_file_location("prod", {str(REPO / "inventory.py")!r})
            _prod = importlib.util.module_from_spec(_spec)
            _spec.loader.exec_module(_prod)
            _fake = {{"fake_delay": 0, "fake_delay_jitter": 0, "fake_responses": {responses!r}}}
            gateways = [
                ("@fake/" + name, {{**{{k: v for k, v in data.items() if not k.startswith("ssh_")}}, **_fake}})
                for name, data in _prod.gateways
            ]
            """
        )
    )
    return path


def plan(inventory: Path, *args: str) -> subprocess.CompletedProcess:
    # --dry: plan only. The @fake connector runs nothing anywhere, and the validation (an
    # operation that calls the API only while executing) never fires under --dry, so no request
    # can leave for 192.168.10.x.
    return subprocess.run(
        [PYINFRA, "--dry", *args, str(inventory), "deploy.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(inventory.parent)},
    )


def test_production_inventory_has_the_gateway_and_no_fleet_addresses():
    text = (REPO / "inventory.py").read_text()
    assert '"gateway_ip": "192.168.10.39"' in text
    assert "198.18." not in text


def test_production_plan_renders_every_step(tmp_path):
    result = plan(fake_inventory(tmp_path, "192.168.10.39"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "identity confirmed, the host owns 192.168.10.39" in output
    for step in (
        "tasks/layout.py | System user hx-gateway",
        "tasks/venv.py | Activate venv release",
        "tasks/config.py | Render config.yaml",
        "tasks/config.py | Generate a master key on the host",
        "tasks/unit.py | Install hx-litellm-gateway.service",
        "tasks/scripts.py | Service script status.sh",
        "tasks/service.py | Restart the gateway and wait for readiness",
    ):
        assert step in output, step
    assert "does not hold" not in output and "unreachable" not in output


def test_production_plan_refuses_a_host_without_the_gateway_address(tmp_path):
    result = plan(fake_inventory(tmp_path, "10.1.2.3"))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]  # a refused host fails --dry too
    assert "REFUSING TO DEPLOY: this host does not own the gateway address 192.168.10.39" in output
    assert "it has 10.1.2.3, 127.0.0.1" in output
    assert "tasks/layout.py" not in output  # no step after the guard is even planned


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("port=70000", "port"),
        ("base_dir=relative/path", "base_dir"),
        ("gateway_ip=192.168.10", "gateway_ip"),
    ],
)
def test_bad_data_stops_the_plan_before_any_host_is_touched(tmp_path, data, expected):
    result = plan(fake_inventory(tmp_path, "192.168.10.39"), "--data", data)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "nothing was changed on any host" in output
    assert expected in output
    assert "Detected changes" not in output
