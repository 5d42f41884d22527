"""Helpers for the end-to-end tests: run pyinfra against the local fleet, read its JSON, SSH in,
wait for a gateway to serve, read a host's state."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from testbed import fleet

REPO = Path(__file__).resolve().parents[2]
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
INVENTORY = "testbed/inventory.py"
BASE = "/opt/HX-Infrastructure-/api-gateway"
UNIT = "hx-litellm-gateway.service"
CONFIG = f"{BASE}/config/api-gateway/config.yaml"
ENV_FILE = f"{BASE}/config/api-gateway/gateway.env"
UNIT_FILE = f"/etc/systemd/system/{UNIT}"
LAST_GOOD = f"{BASE}/releases/last-good"
SCRIPTS = f"{BASE}/scripts/service/api-gateway"
HX_OK = "Return exactly the text: HX-OK"
GATEWAY = fleet.gateway_name(0)  # the session's shared gateway (conftest.first_deploy)
# The permission model as a deploy leaves it: path -> "user:group mode".
LAYOUT_MODES = {
    BASE: "root:root 755",
    f"{BASE}/gateway": "root:root 755",
    f"{BASE}/gateway/venvs": "root:root 755",
    f"{BASE}/config": "root:root 755",
    f"{BASE}/config/api-gateway": "root:hx-gateway 750",
    CONFIG: "root:hx-gateway 640",
    ENV_FILE: "root:hx-gateway 640",
    f"{BASE}/config/api-gateway/clients.json": "root:hx-gateway 640",  # the clients' key hashes
    f"{SCRIPTS}/start.sh": "root:root 755",
    f"{SCRIPTS}/stop.sh": "root:root 755",
    f"{SCRIPTS}/status.sh": "root:root 755",
    f"{BASE}/logs/services": "hx-gateway:hx-gateway 750",
    f"{BASE}/releases": "root:root 700",
    UNIT_FILE: "root:root 644",
}


@dataclass
class DeployResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    # None when pyinfra printed no JSON (it prints none when every host failed): then no
    # operation list can be read, and asking for one is an error, never an empty list.
    operations: list[dict] | None

    def _ops(self, host: str, key: str) -> list[str]:
        assert self.operations is not None, f"pyinfra printed no JSON results:\n{self.output[-3000:]}"
        return [op["name"] for op in self.operations if host in op[key]]

    def changed(self, host: str) -> list[str]:
        return self._ops(host, "success")

    def unchanged(self, host: str) -> list[str]:
        return self._ops(host, "no_change")

    def errors(self, host: str) -> list[str]:
        return self._ops(host, "error")

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
    operations = None
    if json_output and proc.stdout.strip().startswith("{"):
        operations = json.loads(proc.stdout).get("results", {}).get("operations", [])
    return DeployResult(proc.returncode, proc.stdout, proc.stderr, seconds, operations)


def assert_noop(result: DeployResult, host: str, ignore: tuple[str, ...] = ()) -> None:
    """The run succeeded, ran operations on `host`, and none of them changed anything (names
    starting with one of `ignore` excepted)."""
    assert result.returncode == 0, result.output[-3000:]
    assert result.unchanged(host), f"no operation ran on {host}:\n{result.output[-3000:]}"
    assert not result.errors(host), result.errors(host)
    changed = [name for name in result.changed(host) if not name.startswith(ignore)]
    assert changed == [], changed


# The deploy's own serving defaults (num_workers from the host's CPUs), for the tests about serving
# with several workers: the suite otherwise runs one worker per gateway (tests/e2e/conftest.py).
DEFAULT_SERVING = {"HX_TESTBED_GATEWAY_WORKERS": ""}


def workers_in_unit(host: str) -> int:
    """The --num_workers the gateway's unit runs (1 when the flag is absent)."""
    exec_start = ssh(host, f"systemctl show -p ExecStart --value {UNIT}")
    words = exec_start.split()
    return int(words[words.index("--num_workers") + 1]) if "--num_workers" in words else 1


def redeploy(host: str, env: dict | None = None) -> DeployResult:
    """Put a gateway back to the repository's wanted state; fails loudly when that fails."""
    result = pyinfra("--limit", host, env=env)
    assert result.returncode == 0, f"putting {host} back failed:\n{result.output[-3000:]}"
    return result


def ssh(machine_name: str, command: str, check: bool = True, timeout: float = 30) -> str:
    machine = fleet.find(machine_name)
    for _attempt in range(3):
        result = fleet.ssh_command(machine, command, timeout=timeout)
        # ssh's own failure to connect (255) on a loaded machine, not the command's: try again.
        if not (result.returncode == 255 and "timed out" in result.stderr):
            break
    if check and result.returncode != 0:
        raise AssertionError(f"{machine_name}: `{command}` failed ({result.returncode}): {result.stderr}")
    return result.stdout


def main_pid(machine_name: str) -> int:
    return int(ssh(machine_name, f"systemctl show -p MainPID --value {UNIT}").strip())


def starts(machine_name: str) -> int:
    """How many times systemd has started the unit (the journal's 'Started' lines)."""
    return int(ssh(machine_name, f"journalctl -u {UNIT} -o cat | grep -c '^Started' || true").strip())


def master_key(machine_name: str) -> str:
    line = ssh(machine_name, f"cat {ENV_FILE}").strip()
    return line.split("=", 1)[1]


def kept_master_key() -> str:
    """The fleet's key as the control machine keeps it (what `make master-key` prints)."""
    proc = subprocess.run(
        [sys.executable, "-m", "hxops.master_key", INVENTORY], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def key_fingerprints(*machine_names: str) -> dict[str, str]:
    """sha256 of the master key each gateway's env file holds (the value never leaves the host)."""
    command = f"sed -n 's/^LITELLM_MASTER_KEY=//p' {ENV_FILE} | tr -d '\\n' | sha256sum"
    return {name: ssh(name, command).split()[0] for name in machine_names}


def sha256(machine_name: str, *paths: str) -> dict[str, str]:
    """sha256 of each path on the host (missing files are absent from the answer)."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    out = ssh(machine_name, f"sha256sum {quoted} 2>/dev/null || true")
    return {line.split(None, 1)[1].strip(): line.split()[0] for line in out.splitlines() if line.strip()}


def stats(machine_name: str, *paths: str) -> dict[str, str]:
    """`user:group mode` of each path on the host."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    out = ssh(machine_name, f"stat -c '%n %U:%G %a' {quoted}")
    return {line.rsplit(" ", 2)[0]: " ".join(line.rsplit(" ", 2)[1:]) for line in out.splitlines()}


SAVED_RELEASE = ("config.yaml", "gateway.env", UNIT, "venv.target")


def saved_release(machine_name: str) -> dict:
    """The last known good release as it is on disk: each file's sha256, mtime, owner and mode."""
    paths = [LAST_GOOD, *(f"{LAST_GOOD}/{name}" for name in SAVED_RELEASE)]
    return {
        "sha": sha256(machine_name, *paths[1:]),
        "mtime": ssh(machine_name, "stat -c '%n %Y' " + " ".join(paths)),
        "modes": stats(machine_name, *paths),
    }


def url(machine_name: str, port: int = 4000) -> str:
    return f"http://{fleet.find(machine_name).address}:{port}"


def ready(machine_name: str) -> bool:
    try:
        answer = httpx.get(f"{url(machine_name)}/health/readiness", timeout=2, trust_env=False)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


def wait_ready(machine_name: str, timeout: float = 180) -> None:
    """Until the gateway answers /health/readiness (a bound on a hang, not a speed claim)."""
    deadline = time.monotonic() + timeout
    while not ready(machine_name):
        assert time.monotonic() < deadline, f"{machine_name} not ready after {timeout} s"
        time.sleep(0.5)


def wait_served(machine_name: str, model: str, key: str | None = None, timeout: float = 120) -> None:
    """Until the gateway answers a chat for `model` (after a backend or the gateway came back)."""
    key = key or master_key(machine_name)
    body = {"model": model, "messages": [{"role": "user", "content": HX_OK}]}
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = httpx.post(
                f"{url(machine_name)}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
                trust_env=False,
            )
            if answer.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{machine_name} does not serve {model} after {timeout} s"
        time.sleep(1)


def served_models(machine_name: str, key: str | None = None) -> set[str]:
    key = key or master_key(machine_name)
    answer = httpx.get(
        f"{url(machine_name)}/v1/models",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
        trust_env=False,
    )
    answer.raise_for_status()
    return {m["id"] for m in answer.json()["data"]}


def group_data(folder: Path, body: str) -> str:
    """A --group-data folder whose all.py is the repository's, changed by `body` (Python that
    sees the repository's module as `_base`)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = REPO / "group_data" / "all.py"
    (folder / "all.py").write_text(
        textwrap.dedent(
            f"""
            import copy, importlib.util
            _spec = importlib.util.spec_from_file_location("_base", {str(base)!r})
            _base = importlib.util.module_from_spec(_spec)
            _spec.loader.exec_module(_base)
            """
        )
        + textwrap.dedent(body)
    )
    return str(folder)


def with_extra_model(folder: Path, name: str = "llm02-dolphin3", tag: str = "dolphin3:8b") -> str:
    """--group-data with one more chat model on llm-02 (dolphin3:8b is on the fake backend)."""
    return group_data(
        folder,
        f"""
        models = _base.models + [
            {{"name": {name!r}, "backend": "llm-02", "model": {tag!r}, "mode": "chat"}}
        ]
        """,
    )


def fresh_gateway() -> str:
    """Boot an extra gateway machine no deploy has touched (the caller removes it)."""
    return fleet.add_gateways(1)[0].name


def untouched_snapshot(name: str) -> str:
    """What a deploy would create or change on a machine, as one comparable text. The SSH must
    work (a failed one would compare equal to itself); the account may be missing (getent's
    status is not the command's: the last pipeline's is)."""
    out = ssh(
        name,
        "getent passwd hx-gateway; ls -la /opt /etc/systemd/system; "
        "find /opt /etc/systemd/system -newer /etc/hostname 2>/dev/null | sort",
    )
    assert "/etc/systemd/system:" in out, f"no snapshot of {name}: {out[-500:]}"
    return out


backend = fleet.backend_admin  # the fake Ollama's /_fault and /_stats


def chats_reaching(name: str) -> int:
    return backend(name, "GET", "/_stats").get("paths", {}).get("/api/chat", 0)
