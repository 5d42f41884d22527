"""The pure parts of the rollout: batches, each host's outcome from structured results, the summary.

A host's outcome comes from pyinfra's `--json` results (which operations changed or failed on it)
and the deploy's own outcome document (hxops.outcome: planned, restart, rolled back, cause,
degraded checks), never from pyinfra's log text or an operation's name.
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


# --- pyinfra's output, for people ------------------------------------------------------------


def host_lines(output: str, host: str) -> list[str]:
    """The lines of pyinfra's log that are about `host`, to SHOW (the --dry preview): `[host] ...`
    (with the continuation lines of a multi-line block, e.g. a diff), `host: ...` messages, and
    the validation table's `host  ...` rows. Never used to decide anything."""
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


# --- structured results ----------------------------------------------------------------------


def _host_ops(operations: list[dict], host: str, key: str) -> list[str]:
    return [op["name"] for op in operations if host in op.get(key, [])]


def planned(plan: list[dict], host: str, outcome: dict | None) -> dict:
    """What `pyinfra --dry --json` plans for a host: the changing operations (to show), and
    whether the deploy decided to (re)start its gateway (the outcome document's `restart`)."""
    changes = [op["name"] for op in plan if host in op.get("hosts_with_change", [])]
    return {"changes": changes, "restart": bool((outcome or {}).get("restart"))}


UNKNOWN_CAUSE = "pyinfra failed (see its log)"


def said_in_log(host: str, log: str) -> str | None:
    """For people, when the results name no cause: the first 'FAILED: ...' line the host's own
    commands printed (the deploy's convention, e.g. haproxy -c refusing a config). Shown, never
    used to decide anything: the status comes from the structured results."""
    prefix = f"[{host}]"
    for line in log.splitlines():
        text = line.strip()
        if text.startswith(prefix) and text[len(prefix) :].strip().startswith("FAILED:"):
            return text[len(prefix) :].strip()
    return None


def classify(host: str, returncode: int, results: dict | None, outcome: dict | None) -> HostResult:
    """One host's outcome from a `pyinfra -y --json` run: its JSON results (None when pyinfra
    printed none: it does not when every host failed) and its outcome document (None when the
    deploy never planned the host: pyinfra could not connect to it)."""
    if outcome is None:
        return HostResult(
            host, UNREACHABLE, detail="not planned: pyinfra could not connect to it (see the log)"
        )
    operations = (results or {}).get("operations", [])
    changed = _host_ops(operations, host, "success")
    errors = _host_ops(operations, host, "error")
    failed_hosts = (results or {}).get("failed_hosts", [])
    degraded = list(outcome.get("degraded", []))
    result = HostResult(
        host, UNCHANGED, changes=changed, restarted=bool(outcome.get("restarted")), degraded=degraded
    )
    failed = bool(errors) or host in failed_hosts or (results is None and returncode != 0)
    if not failed:
        result.status = UPDATED if result.changes else UNCHANGED
        if degraded:
            result.detail = f"degraded: {len(degraded)} check(s), e.g. {degraded[0]}"[:300]
        return result
    cause = outcome.get("cause") or (f"failed at {errors[0]}" if errors else UNKNOWN_CAUSE)
    if outcome.get("rolled_back") is True:
        result.status = ROLLED_BACK
        result.detail = f"rolled back to the last known good release; cause: {cause}"[:400]
    else:
        result.status = FAILED
        result.detail = cause[:400]
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
