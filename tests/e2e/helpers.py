"""Helpers for the end-to-end tests: run pyinfra against the local fleet, read its JSON, SSH in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from testbed import fleet

REPO = Path(__file__).resolve().parents[2]
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
INVENTORY = "testbed/inventory.py"
BASE = "/opt/HX-Infrastructure-/api-gateway"
UNIT = "hx-litellm-gateway.service"


@dataclass
class DeployResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    operations: list[dict]

    def changed(self, host: str) -> list[str]:
        return [op["name"] for op in self.operations if host in op["success"]]

    def unchanged(self, host: str) -> list[str]:
        return [op["name"] for op in self.operations if host in op["no_change"]]

    def errors(self, host: str) -> list[str]:
        return [op["name"] for op in self.operations if host in op["error"]]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def pyinfra(
    *args: str,
    env: dict | None = None,
    deploy: str = "deploy.py",
    json_output: bool = True,
    timeout: float = 600,
) -> DeployResult:
    """Run `pyinfra -y [--json] testbed/inventory.py deploy.py ARGS` from the repo root."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("MASTER_KEY", "FORCE")}
    full_env.update(env or {})
    cmd = (
        [PYINFRA]
        + ([] if "--dry" in args else ["-y"])
        + (["--json"] if json_output else [])
        + list(args)
        + [INVENTORY, deploy]
    )
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - started
    operations = []
    if json_output and proc.stdout.strip().startswith("{"):
        operations = json.loads(proc.stdout).get("results", {}).get("operations", [])
    return DeployResult(proc.returncode, proc.stdout, proc.stderr, seconds, operations)


def ssh(machine_name: str, command: str, check: bool = True, timeout: float = 30) -> str:
    machine = fleet.find(machine_name)
    result = fleet.ssh_command(machine, command, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{machine_name}: `{command}` failed ({result.returncode}): {result.stderr}")
    return result.stdout


def main_pid(machine_name: str) -> int:
    return int(ssh(machine_name, f"systemctl show -p MainPID --value {UNIT}").strip())


def master_key(machine_name: str) -> str:
    line = ssh(machine_name, f"cat {BASE}/config/api-gateway/gateway.env").strip()
    return line.split("=", 1)[1]
