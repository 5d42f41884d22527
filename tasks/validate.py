"""Step 11: post-deploy validation: call the gateway's API from the control machine and report.

The last step of deploy.py, or alone: `pyinfra INVENTORY tasks/validate.py`. The checks
(hxgw.validation) run while pyinfra executes the operation, so --dry calls nothing, and a passing
validation reports "No changes": a no-op re-run stays a no-op.
A table goes to the deploy's output and a JSON report to `validation_report` (host data or
`--data validation_report=PATH`, `{host}` in PATH is replaced by the host name), by default
reports/validation-<host>-<UTC timestamp>.json and reports/validation-<host>-latest.json.
A failed required check fails the host. Models on a backend the connectivity step found
unreachable are degraded, not failed, unless validation_strict is on. `validation_ready_timeout`
(seconds, default 10) is how long to wait for /health/readiness.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pyinfra import host, local, logger  # noqa: E402

from hxops import plan, validation_op  # noqa: E402

host_plan = plan.for_host(host)
if not host_plan.facts:
    # Run alone: deploy.py's connectivity step did not run (its precheck fills host_plan.facts),
    # so probe the backends the same way, with the same step, to know which are unreachable.
    local.include(str(REPO / "tasks" / "backends.py"))
if not host_plan.stopped and host_plan.settings.loopback_only:
    # listen_host 127.x: nothing but the host itself can reach the API, this machine included;
    # start.sh has checked /health/readiness there. (Validate through the local proxy instead.)
    logger.warning(
        f"{host.name}: listen_host is {host_plan.settings.listen_host}: the API answers only on the "
        "host itself, so it is not validated from here (start.sh checked its readiness on the host)"
    )
elif not host_plan.stopped:
    validation_op.gateway_api(
        name=f"Validate the gateway API at {host_plan.api_url}",
        report_setting=host.data.get("validation_report"),
        ready_timeout=host.data.get("validation_ready_timeout"),
    )
