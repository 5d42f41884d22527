"""The production inventory, planned with pyinfra's @fake connector: no host is ever contacted
(tests/unit/helpers.py builds the fake inventory)."""

from __future__ import annotations

import pytest

from tests.unit.helpers import REPO, fake_inventory, plan


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
        "tasks/service.py | Activate venv release",  # switched right before the restart
        "tasks/config.py | Render config.yaml",
        "tasks/config.py | Install the master key of the fleet (value not shown)",
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
