"""The rollout's pyinfra runs: the inventory, and one `pyinfra --json` subprocess per batch with
its structured results (pyinfra's JSON and the deploy's outcome documents, hxops.outcome)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
DEPLOY = "deploy.py"


class RolloutError(RuntimeError):
    pass


@dataclass
class Inventory:
    gateways: list[str]
    loadbalancers: list[str]
    data: dict[str, dict] = field(default_factory=dict)  # host -> the data this module needs

    def url(self, host: str) -> str | None:
        address = self.data[host].get("gateway_ip")
        return f"http://{address}:{self.data[host].get('port') or 4000}" if address else None


def load_inventory(path: str) -> Inventory:
    """Hosts of the `gateways` and `loadbalancers` groups, in inventory order, with their data."""
    proc = subprocess.run(
        [sys.executable, "-m", "rollout.inventory", path],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RolloutError(f"cannot load the inventory {path}:\n{tail}")
    found = json.loads(proc.stdout)
    if not found["gateways"]:
        raise RolloutError(f"{path} has no `gateways` group: nothing to roll out")
    return Inventory(found["gateways"], found["loadbalancers"], found["data"])


def _die_with_parent() -> list[str]:
    """A prefix that makes pyinfra get SIGKILL when the rollout dies (Linux PR_SET_PDEATHSIG via
    util-linux setpriv), so killing the rollout stops the deploy it drives. Empty without setpriv."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL"] if setpriv else []


@dataclass
class Run:
    returncode: int
    results: dict | None  # `results` of --json, None when pyinfra printed no JSON
    plan: list[dict]
    output: str  # pyinfra's log (stderr): shown to people, never parsed for a decision
    seconds: float
    outcomes: dict[str, dict | None]  # host -> hxops.outcome document (None: never planned)


def pyinfra(
    inventory: str,
    hosts: list[str],
    passthrough: list[str],
    dry: bool,
    log_file: Path,
    env: dict | None = None,
) -> Run:
    """`pyinfra [-y|--dry --diff] --json --limit H... --data outcome_dir=D INVENTORY deploy.py ...`."""
    from hxops import outcome

    outcome_dir = log_file.with_suffix(".outcomes")
    shutil.rmtree(outcome_dir, ignore_errors=True)
    mode = ["--dry", "--diff"] if dry else ["-y"]
    limits = [arg for host in hosts for arg in ("--limit", host)]
    data = ["--data", f"{outcome.KEY}={outcome_dir}"]
    cmd = [PYINFRA, *mode, "--json", *limits, *data, *passthrough, inventory, DEPLOY]
    wrapped = _die_with_parent() + cmd
    log_file.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # pyinfra's log goes straight to the file, so an interrupted run leaves it behind too.
    with open(log_file, "w+") as log:
        log.write(f"$ {shlex.join(cmd)}\n")
        log.flush()
        proc = subprocess.run(
            wrapped,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            timeout=3600,
            env={**os.environ, **(env or {})},
        )
        seconds = time.monotonic() - started
        log.write(f"(exit {proc.returncode}, {seconds:.1f} s)\n")
        log.seek(0)
        output = log.read()
    document = None
    if proc.stdout.strip().startswith("{"):
        try:
            document = json.loads(proc.stdout)
        except ValueError:
            document = None
    return Run(
        proc.returncode,
        (document or {}).get("results"),
        (document or {}).get("plan", []),
        output,
        seconds,
        {host: outcome.read(outcome_dir, host) for host in hosts},
    )
