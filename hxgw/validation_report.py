"""The validation's records and report: one CheckResult per check, the Report of one gateway,
the failure that carries it, and the table people read (hxgw/validation.py runs the checks)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

PASS, FAIL, DEGRADED = "pass", "fail", "degraded"
DETAIL_MAX = 300
FAILURES_IN_MESSAGE = 5


@dataclass
class CheckResult:
    """One check's outcome. `model` is None for checks of the gateway itself."""

    model: str | None
    check: str
    status: str  # pass | fail | degraded
    latency_ms: float | None
    detail: str
    http_status: int | None = None

    def line(self) -> str:
        """`llm02-phi3: chat answered 'WRONG-ANSWER', expected 'HX-OK'`; the gateway's own checks
        are just their detail, which names what was asked."""
        return f"{self.model}: {self.detail}" if self.model else self.detail


@dataclass
class Report:
    gateway: str
    url: str
    litellm_version: str | None
    started: str
    finished: str
    duration_s: float
    strict: bool
    unreachable_backends: dict[str, str]
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        counts = {"passed": 0, "failed": 0, "degraded": 0}
        key = {PASS: "passed", FAIL: "failed", DEGRADED: "degraded"}
        for check in self.checks:
            counts[key[check.status]] += 1
        return counts

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def degraded(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == DEGRADED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway,
            "url": self.url,
            "litellm_version": self.litellm_version,
            "started": self.started,
            "finished": self.finished,
            "duration_s": self.duration_s,
            "strict": self.strict,
            "unreachable_backends": dict(self.unreachable_backends),
            "summary": self.summary,
            "checks": [asdict(c) for c in self.checks],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def summary_line(self) -> str:
        s = self.summary
        verdict = "FAILED" if s["failed"] else ("DEGRADED" if s["degraded"] else "OK")
        return (
            f"{self.gateway}: validation {verdict}: {s['passed']} passed, {s['failed']} failed, "
            f"{s['degraded']} degraded in {self.duration_s:.1f}s ({self.url}, "
            f"litellm {self.litellm_version or 'version unknown'})"
        )


class ValidationFailed(Exception):
    """Raised (by the pyinfra glue) when a required check failed; its text names each one.

    pyinfra renders a callback's exception as `Name(args)`, so the message is one line.
    """

    def __init__(self, report: Report) -> None:
        self.report = report
        failures = report.failures
        lines = [c.line() for c in failures[:FAILURES_IN_MESSAGE]]
        if len(failures) > FAILURES_IN_MESSAGE:
            lines.append(f"and {len(failures) - FAILURES_IN_MESSAGE} more (see the table)")
        message = (
            f"{report.gateway}: {len(failures)} required check{'s' if len(failures) != 1 else ''} "
            "failed: " + "; ".join(lines)
        )
        super().__init__(message)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def shorten(text: str, limit: int = DETAIL_MAX) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_table(reports: Iterable[Report], detail_width: int = 110) -> list[str]:
    """The human-readable table: gateway, model, check, result, latency ms, detail."""
    header = ("gateway", "model", "check", "result", "latency ms", "detail")
    rows = []
    for report in reports:
        for c in report.checks:
            latency = "-" if c.latency_ms is None else f"{c.latency_ms:.0f}"
            detail = c.detail if len(c.detail) <= detail_width else c.detail[: detail_width - 3] + "..."
            result = c.status.upper() if c.status != PASS else c.status
            rows.append((report.gateway, c.model or "-", c.check, result, latency, detail))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def render(row) -> str:
        cells = [
            str(cell).rjust(widths[i]) if i == 4 else str(cell).ljust(widths[i]) for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    return [render(header), render(["-" * w for w in widths]), *(render(r) for r in rows)]
