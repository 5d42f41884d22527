"""Print validation reports (the JSON that tasks/validate.py writes) as one table.

`python -m hxgw.report [REPORT.json ...]` (default: every reports/validation-*-latest.json).
Exit status 1 when any report has a failed check, so `make demo` ends red on a broken gateway.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPORTS = Path(__file__).resolve().parent.parent / "reports"


def render(report: dict) -> list[str]:
    summary = report["summary"]
    lines = [
        f"== {report['gateway']} at {report['url']} (litellm {report.get('litellm_version') or '?'}): "
        f"{summary['passed']} passed, {summary['failed']} failed, {summary['degraded']} degraded "
        f"in {report['duration_s']:.1f}s",
        f"   {'model':24} {'check':20} {'result':9} {'ms':>7}  detail",
    ]
    for check in report["checks"]:
        latency = "-" if check["latency_ms"] is None else f"{check['latency_ms']:.0f}"
        lines.append(
            f"   {check['model'] or '-':24} {check['check']:20} {check['status']:9} {latency:>7}  "
            f"{check['detail'][:90]}"
        )
    return lines


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(REPORTS.glob("validation-*-latest.json"))
    if not paths:
        print("no validation report yet: run a deploy (make demo) first", file=sys.stderr)
        return 1
    failed = False
    for path in paths:
        report = json.loads(path.read_text())
        print("\n".join(render(report)))
        print(f"   report: {path}")
        failed |= report["summary"]["failed"] > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
