"""Kill a deploy for real: run pyinfra on the local fleet and SIGKILL it at a chosen moment, then
check that a plain re-run converges. Used by tests/e2e/deploy_kill_long.py (a deterministic
subset) and tests/e2e/kill_matrix.py (`make kill-matrix`: every step boundary and random moments).

A moment is "N s after the run began", or "N s after pyinfra printed `Starting operation: <op>`"
(its log line for each operation as it starts: a step boundary when N is 0).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

import httpx

from tests.e2e import helpers

STARTING = re.compile(r"--> Starting operation: (.*?)\s*$")
RECORD = f"{helpers.BASE}/releases/deployments.jsonl"


@dataclass
class Killed:
    killed: bool  # False: the run ended before the moment came
    seconds: float  # when it was killed (or ended), from its start
    last_operation: str | None  # the operation that had started last
    operations: list[str] = field(default_factory=list)
    output: str = ""


def pyinfra_argv(*args: str) -> list[str]:
    return [helpers.PYINFRA, "-y", *args, helpers.INVENTORY, "deploy.py"]


def env(extra: dict | None = None) -> dict:
    full = {k: v for k, v in os.environ.items() if k not in ("MASTER_KEY", "FORCE")}
    full["PYTHONUNBUFFERED"] = "1"
    return {**full, **(extra or {})}


def run_and_kill(
    args: list[str],
    after: float,
    operation: str | None = None,
    limit: float = 900,
    env_extra: dict | None = None,
) -> Killed:
    """Start pyinfra with `args`; SIGKILL it `after` s after its start, or after the operation whose
    name starts with `operation` started. Its whole process group goes (pyinfra and its ssh)."""
    proc = subprocess.Popen(
        pyinfra_argv(*args),
        cwd=helpers.REPO,
        env=env(env_extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    started = time.monotonic()
    seen: list[str] = []
    lines: list[str] = []
    armed = threading.Event()
    deadline = [started + after if operation is None else None]
    if operation is None:
        armed.set()

    def read():
        for line in proc.stdout:
            lines.append(line)
            match = STARTING.search(line)
            if match:
                seen.append(match.group(1))
                if operation and not armed.is_set() and operation in match.group(1):
                    deadline[0] = time.monotonic() + after
                    armed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    killed = False
    while proc.poll() is None and time.monotonic() - started < limit:
        if armed.is_set() and deadline[0] is not None and time.monotonic() >= deadline[0]:
            os.killpg(proc.pid, signal.SIGKILL)  # pyinfra and every child of its session
            killed = True
            break
        time.sleep(0.02)
    seconds = time.monotonic() - started
    proc.wait()
    reader.join(timeout=5)
    return Killed(killed, seconds, seen[-1] if seen else None, seen, "".join(lines))


def record_lines(name: str) -> list[dict]:
    text = helpers.ssh(name, f"cat {RECORD} 2>/dev/null || true")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def serving_version(name: str) -> str:
    """The LiteLLM version the gateway itself reports to a client (x-litellm-version on an
    embedding's answer; the key from the host)."""
    answer = httpx.post(
        helpers.url(name) + "/v1/embeddings",
        headers={"Authorization": f"Bearer {helpers.master_key(name)}"},
        json={"model": "emb-light", "input": "which release serves?"},
        timeout=60,
        trust_env=False,
    )
    assert answer.status_code == 200, answer.text[:300]
    return answer.headers["x-litellm-version"]


def release_dir(name: str, version: str) -> str | None:
    """The venv directory on the host holding LiteLLM `version`, unless it is the running one."""
    venvs = f"{helpers.BASE}/gateway/venvs"
    running = helpers.ssh(name, f"readlink {helpers.BASE}/gateway/venv || true").strip()
    found = helpers.ssh(
        name, f"ls -d {venvs}/*/lib/python3*/site-packages/litellm-{version}.dist-info 2>/dev/null || true"
    )
    for line in found.split():
        directory = line.split("/lib/python3", 1)[0]
        if directory != running:
            return directory
    return None


@dataclass
class Outcome:
    killed: Killed
    restart_started: bool  # the killed run had begun its restart
    served_between: str | None  # what served between the kill and the re-run (None: nothing)
    rerun: helpers.DeployResult
    served_after: str
    record_last: dict
    noop: helpers.DeployResult
    lock_free_after: float | None  # s from the kill until the dead run's lock was free


def kill_and_rerun(name: str, version: str, operation: str | None, after: float, key: str) -> Outcome:
    """Change `name` to LiteLLM `version`, SIGKILL the run `after` s after `operation` started (or
    after its own start, with operation None), check what serves, re-run the same command
    plainly, then once more (the no-op)."""
    args = ["--limit", name, "--data", f"litellm_version={version}"]
    environment = {"MASTER_KEY": key}
    killed = run_and_kill(args, after, operation, env_extra=environment)
    lock_free_after = seconds_until_lock_free(name)
    restart_started = any(op.startswith("tasks/service.py | Restart") for op in killed.operations)
    try:
        served_between = serving_version(name) if helpers.ready(name) else None
    except (AssertionError, httpx.HTTPError):
        served_between = None
    rerun = helpers.pyinfra(*args, env=environment, timeout=900)
    served_after = serving_version(name) if rerun.returncode == 0 else "?"
    lines = record_lines(name)
    noop = helpers.pyinfra(*args, env=environment, timeout=600)
    last = lines[-1] if lines else {}
    return Outcome(killed, restart_started, served_between, rerun, served_after, last, noop, lock_free_after)


def seconds_until_lock_free(name: str, limit: float = 30) -> float | None:
    """How long after the kill the dead run's deploy lock stayed held (None: still after `limit`)."""
    from hxops import deploy_lock

    started = time.monotonic()
    while time.monotonic() - started < limit:
        if deploy_lock.read_holder(helpers.ssh(name, deploy_lock.SHOW_COMMAND).splitlines()) is None:
            return time.monotonic() - started
        time.sleep(0.2)
    return None
