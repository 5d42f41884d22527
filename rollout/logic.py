"""The pure parts of the rollout: batches, reading pyinfra's results per host, the summary.

No pyinfra, no subprocess, no network: everything here is unit-tested (tests/unit/test_rollout_logic.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

UPDATED, UNCHANGED, ROLLED_BACK, FAILED, UNREACHABLE, SKIPPED = (
    "updated",
    "unchanged",
    "rolled back",
    "failed",
    "unreachable",
    "skipped",
)
STATUSES = (UPDATED, UNCHANGED, ROLLED_BACK, FAILED, UNREACHABLE, SKIPPED)
BAD = (ROLLED_BACK, FAILED, UNREACHABLE)
# Operations that report a change on every run (the validation is a python.call): not a change
# of the host.
ALWAYS_CHANGING = ("tasks/validate.py | ",)
RESTART_OPS = ("tasks/service.py | Restart the gateway", "tasks/service.py | Start the gateway")
_EXCEPTION = re.compile(r"\b[A-Z]\w*(Error|Exception): .+")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class HostResult:
    name: str
    status: str
    role: str = ""  # canary | batch N | load balancer
    detail: str = ""
    changes: list[str] = field(default_factory=list)
    restarted: bool = False
    ready_seconds: float | None = None
    degraded: list[str] = field(default_factory=list)


# --- batches -------------------------------------------------------------------------------


def next_batch(remaining: list[str], canary_passed: bool, batch_size: int) -> list[str]:
    """The canary goes alone; once one host passed, the rest go `batch_size` at a time."""
    if batch_size < 1:
        raise ValueError("the batch size must be at least 1")
    return remaining[: (batch_size if canary_passed else 1)]


def plan_batches(hosts: list[str], batch_size: int) -> list[list[str]]:
    """The batches a rollout will run when every host passes: [canary], then groups of N."""
    batches, canary_passed, remaining = [], False, list(hosts)
    while remaining:
        batch = next_batch(remaining, canary_passed, batch_size)
        batches.append(batch)
        remaining = remaining[len(batch) :]
        canary_passed = True
    return batches


def role_of(index: int) -> str:
    return "canary" if index == 0 else f"batch {index}"


# --- pyinfra's output ------------------------------------------------------------------------


def host_lines(output: str, host: str) -> list[str]:
    """The lines of pyinfra's log that are about `host`, without the host's name: `[host] ...`
    (with the continuation lines of a multi-line block, e.g. a diff or a failed command's output),
    `host: ...` messages, and the validation table's `host  ...` rows (kept whole)."""
    lines, current = [], None
    for raw in _ANSI.sub("", output).splitlines():
        stripped = raw.strip()
        match = re.match(r"^\[([^\]]+)\]\s?(.*)$", stripped)
        if match:
            current = match.group(1)
            if current == host:
                lines.append(match.group(2).strip())
            continue
        if not stripped or stripped.startswith("-->"):
            current = None
            continue
        if stripped.startswith(f"{host}: "):
            lines.append(stripped[len(host) + 2 :])
            current = None
        elif stripped.startswith(f"{host}  "):
            lines.append(stripped)
            current = None
        elif current == host and raw.startswith("      "):
            lines.append(raw.rstrip()[6:])
    return lines


def _host_ops(operations: list[dict], host: str, key: str) -> list[str]:
    return [op["name"] for op in operations if host in op.get(key, [])]


def real_changes(names: list[str]) -> list[str]:
    return [n for n in names if not n.startswith(ALWAYS_CHANGING)]


def planned(plan: list[dict], host: str) -> dict:
    """What `pyinfra --dry --json` plans for a host: the changing operations, and a restart?"""
    changes = real_changes([op["name"] for op in plan if host in op.get("hosts_with_change", [])])
    return {"changes": changes, "restart": any(n.startswith(RESTART_OPS) for n in changes)}


def cause_of(lines: list[str]) -> str:
    """The most telling line of a failure: an exception, a failed check, a FAILED: line."""
    candidates = [
        next((line.split(": ", 1)[1] for line in lines if "pyinfra error" in line and ": " in line), None),
        next((line for line in lines if line.startswith("FAILED ")), None),  # a failed validation check
        next((_EXCEPTION.search(line).group(0) for line in lines if _EXCEPTION.search(line)), None),
        next(
            (line for line in lines if line.startswith(("FAILED:", "NOT ROLLED BACK", "ROLLBACK FAILED"))),
            None,
        ),
        next((line for line in lines if "REFUS" in line), None),
        next((line for line in reversed(lines) if line.startswith("Error")), None),
    ]
    found = next((c for c in candidates if c), "")
    return found[:300]


def classify(host: str, returncode: int, results: dict | None, output: str) -> HostResult:
    """One host's outcome from a `pyinfra -y --json` run: its JSON results (None when pyinfra
    printed none: it does not when every host failed) and its log (stderr)."""
    lines = host_lines(output, host)
    unreachable = next((line for line in lines if line.startswith("Could not connect")), None)
    if unreachable:
        return HostResult(host, UNREACHABLE, detail=unreachable)
    operations = (results or {}).get("operations", [])
    changed = _host_ops(operations, host, "success")
    errors = _host_ops(operations, host, "error")
    failed_hosts = (results or {}).get("failed_hosts", [])
    degraded = [line[len("DEGRADED ") :] for line in lines if line.startswith("DEGRADED ")]
    restarted = any(n.startswith(RESTART_OPS) for n in changed + errors)
    result = HostResult(
        host, UNCHANGED, changes=real_changes(changed), restarted=restarted, degraded=degraded
    )
    failed = bool(errors) or host in failed_hosts or (results is None and returncode != 0)
    if not failed:
        result.status = UPDATED if result.changes else UNCHANGED
        if degraded:
            result.detail = f"degraded: {len(degraded)} check(s), e.g. {degraded[0]}"[:300]
        return result
    cause = cause_of(lines) or (f"failed at {errors[0]}" if errors else "pyinfra failed")
    if results is None and not lines:
        cause = cause_of(output.splitlines()) or "pyinfra failed before any operation (see its log)"
    rolled_back = any(line.startswith("ROLLED BACK:") for line in lines)
    result.status = ROLLED_BACK if rolled_back else FAILED
    result.detail = (f"rolled back to the last known good release; cause: {cause}" if rolled_back else cause)[
        :400
    ]
    return result


# --- the report ------------------------------------------------------------------------------


def summary(results: list[HostResult]) -> list[str]:
    """The final report: one row per host, then the counts."""
    name_width = max([len(r.name) for r in results] + [4])
    rows = [f"{'host':{name_width}}  {'role':13}  {'result':11}  {'restart->ready':>14}  detail"]
    for r in results:
        ready = f"{r.ready_seconds:.1f} s" if r.ready_seconds is not None else "-"
        detail = r.detail or (f"{len(r.changes)} change(s)" if r.changes else "")
        rows.append(f"{r.name:{name_width}}  {r.role:13}  {r.status:11}  {ready:>14}  {detail}")
    counts = ", ".join(f"{status}: {sum(r.status == status for r in results)}" for status in STATUSES)
    return rows + [counts]


def exit_code(results: list[HostResult]) -> int:
    return 1 if any(r.status in BAD for r in results) else 0
