"""The validation's check of the gateways' shared router state (the `caches` group's Redis).

Redis failing is not a gateway failure: LiteLLM then keeps each worker's router state in its own
memory and serves on. So the check is never `fail`: `pass` when the gateway host reaches Redis and
Redis takes its password, `degraded` otherwise (hxops.redis_link.AUTH_PROBE, run on the gateway
host, answers OK, UNREACHABLE <why> or REFUSED <Redis's answer>).
"""

from __future__ import annotations

from hxgw.validation_report import DEGRADED, PASS, CheckResult, shorten

CHECK = "shared-state"


def judge_shared_state(where: str, probe_output: str | None, latency_ms: float | None = None) -> CheckResult:
    """The check's record from the probe's output (None: the probe could not run on the host)."""
    answer = (probe_output or "").strip()
    if answer == "OK":
        return CheckResult(None, CHECK, PASS, latency_ms, f"router state shared in Redis at {where}")
    kind, _, why = answer.partition(" ")
    problem = {
        "UNREACHABLE": f"cannot be reached ({why})",
        "REFUSED": f"refused the gateway's password ({why})",
    }.get(kind, f"could not be asked ({shorten(answer) or 'no answer'})")
    detail = f"Redis at {where} {problem}: each worker keeps its router state in its own memory"
    return CheckResult(None, CHECK, DEGRADED, latency_ms, shorten(detail))
