"""The load balancer, driven from the control machine: hx-lb-ctl (rollout/lbctl.py, which also
holds the LB's names and paths) on each LB host, reached over pyinfra's connector (rollout/remote.py)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

from rollout import lbctl
from rollout.pyinfra_run import REPO, RolloutError


class LoadBalancer:
    """hx-lb-ctl on one LB host of the inventory."""

    def __init__(self, name: str, inventory: str):
        self.name, self.inventory = name, inventory

    def remote(self, command: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "rollout.remote", self.inventory, self.name, command],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def control(self, action: str, servers: list[str], timeout: float) -> dict:
        args = [lbctl.CONTROL, action, lbctl.BACKEND, *servers, "--timeout", str(timeout)]
        try:
            proc = self.remote(shlex.join(args), timeout=timeout + 30)
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"{self.name}: no answer within {timeout + 30:.0f} s"}
        try:
            answer = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            error = (proc.stderr or proc.stdout).strip()[-300:] or f"exit {proc.returncode}"
            return {"ok": False, "error": f"{self.name}: {error}"}
        return answer

    def servers(self) -> dict:
        answer = self.control("state", [], timeout=10)
        if "error" in answer:
            raise RolloutError(answer["error"])
        return answer
