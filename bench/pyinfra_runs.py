"""The benchmark's pyinfra runs: timestamped output, the changed operations, where the time went."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
INVENTORY = "testbed/inventory.py"
RUNS_DIR = REPO / "bench" / "runs"
RESULT_ROW = re.compile(r"^\s*(\S.*?)\s{2,}(\d+)\s+(\d+|-)\s+(\d+|-)\s+(\d+|-)\s*$")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_average() -> float:
    return os.getloadavg()[0]


def settle(below: float = 2.5, longest: float = 300) -> None:
    """Wait until the 1-minute load falls below `below` (at most `longest` s): after a deploy of
    many gateways the load average trails the work by minutes, and rows measured in that tail
    measure the tail."""
    started = time.monotonic()
    while load_average() >= below and time.monotonic() - started < longest:
        time.sleep(5)
    log(f"settled for {time.monotonic() - started:.0f} s: load {load_average():.2f}")


class Run:
    """One pyinfra run: wall seconds, the CPU seconds it spent on the control machine (pyinfra and
    its ssh clients), and the 1-minute load before and after it."""

    def __init__(self, label: str, seconds: float, returncode: int, lines: list[tuple[float, str]]):
        self.label, self.seconds, self.returncode, self.lines = label, seconds, returncode, lines
        self.control_cpu = 0.0
        self.load = (0.0, 0.0)

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def changed_operations(self) -> list[str]:
        """Operations the results table counts as changed (Success column) on any host."""
        changed, in_results = [], False
        for _, line in self.lines:
            if "--> Results:" in line:
                in_results = True
                continue
            match = RESULT_ROW.match(line) if in_results else None
            if match and match.group(1) not in ("Operation", "Grand total") and match.group(3) != "-":
                changed.append(match.group(1).strip())
        return changed

    def slowest_operations(self, count: int = 6) -> list[tuple[str, float]]:
        """(step, seconds) from the timestamped output: where this run's time went."""
        marks = [(0.0, "(start-up, connect, facts, plan)")]
        for stamp, line in self.lines:
            if "--> Starting operation:" in line:
                marks.append((stamp, line.split("--> Starting operation:", 1)[1].strip()))
            elif "--> Beginning operation run" in line or "--> Results:" in line:
                marks.append((stamp, None))
        spans: dict[str, float] = {}
        for (stamp, name), (following, _) in zip(marks, marks[1:], strict=False):
            if name:
                spans[name] = spans.get(name, 0.0) + following - stamp
        return sorted(spans.items(), key=lambda item: -item[1])[:count]


def pyinfra(label: str, *args: str, deploy: str = "deploy.py", timeout: float = 900) -> Run:
    """Run pyinfra from the repo root, timestamp its output, fail loudly on a failed deploy."""
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_KEY", "FORCE")}
    cmd = [PYINFRA, *([] if "--dry" in args else ["-y"]), *args, INVENTORY, deploy]
    lines: list[tuple[float, str]] = []
    load_before = load_average()
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            lines.append((time.monotonic() - started, line.rstrip("\n")))
        # wait4, not wait: its rusage is the CPU pyinfra and the ssh clients it waited for spent here.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        timer.cancel()
    seconds = time.monotonic() - started
    run = Run(label, seconds, proc.returncode, lines)
    run.control_cpu = usage.ru_utime + usage.ru_stime
    run.load = (load_before, load_average())
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label)
    (RUNS_DIR / f"{safe}.log").write_text(
        f"$ {' '.join(cmd)}\n" + "\n".join(f"{t:7.2f} {line}" for t, line in lines) + "\n"
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench: `{label}` failed (exit {proc.returncode}); see {RUNS_DIR / safe}.log")
    log(
        f"{label}: {seconds:.2f} s, control CPU {run.control_cpu:.2f} s "
        f"(load {run.load[0]:.2f} -> {run.load[1]:.2f})"
    )
    return run
