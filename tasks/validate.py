"""Step 11: post-deploy validation: call the gateway's API from the control machine and report.

The eleventh step of deploy.py, or alone: `pyinfra INVENTORY tasks/validate.py`. The checks
(hxgw.validation) run while pyinfra executes the operation (hxops.validation_op), so --dry calls
nothing, and a passing validation reports "No changes": a no-op re-run stays a no-op.
A table goes to the deploy's output and a JSON report to `validation_report` (host data or
`--data validation_report=PATH`, `{host}` in PATH is replaced by the host name), by default
reports/validation-<host>-<UTC timestamp>.json and reports/validation-<host>-latest.json.
A failed required check fails the host (and, when this run restarted the gateway, rolls it back
to the last known good release). Models on a backend the connectivity step found unreachable are
degraded, not failed, unless validation_strict is on. `validation_ready_timeout` (seconds,
default 10) is how long to wait for /health/readiness.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pyinfra import host, logger  # noqa: E402
from pyinfra.api import deploy  # noqa: E402

from hxops import validation_op  # noqa: E402
from hxops.plan import GatewayPlan, HostRefused, gateway_plan  # noqa: E402
from tasks.backends import BackendReach, backends  # noqa: E402


@deploy("tasks/validate.py")
def validate(plan: GatewayPlan, api_url: str, reach: BackendReach, restarting: bool) -> None:
    """Validate the API at `api_url`; `restarting`: this run (re)started the gateway, so a failed
    validation rolls it back."""
    settings = plan.settings
    if settings.loopback_only:
        # listen_host 127.x: nothing but the host itself can reach the API, this machine included;
        # start.sh has checked /health/readiness there. (Validate through the local proxy instead.)
        logger.warning(
            f"{host.name}: listen_host is {settings.listen_host}: the API answers only on the "
            "host itself, so it is not validated from here (start.sh checked its readiness on the host)"
        )
        return
    validation_op.gateway_api(
        name=f"Validate the gateway API at {api_url}",
        plan=plan,
        api_url=api_url,
        unreachable=reach.unreachable,
        roll_back=restarting,
        report_setting=host.data.get("validation_report"),
        ready_timeout=host.data.get("validation_ready_timeout"),
    )


def validate_alone() -> None:
    """`pyinfra INVENTORY tasks/validate.py`: probe the backends the way the deploy does (to know
    which are unreachable), then validate. Never rolls back: this run restarted nothing."""
    plan = gateway_plan(host, deploying=False)  # validates with the fleet's key; never makes one
    try:
        reach = backends(plan)
    except HostRefused:
        return
    validate(plan, plan.settings.public_url, reach, restarting=False)


if __name__ == "builtins":  # pyinfra exec()s a deploy file without a module name
    validate_alone()
