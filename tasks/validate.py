"""Step 11: post-deploy validation: call the gateway's API from the control machine and report.

The last step of deploy.py, or alone: `pyinfra INVENTORY tasks/validate.py`. The checks
(hxgw.validation) run at execution time in a python.call callback, so --dry calls nothing.
A table goes to the deploy's output and a JSON report to `validation_report` (host data or
`--data validation_report=PATH`, `{host}` in PATH is replaced by the host name), by default
reports/validation-<host>-<UTC timestamp>.json and reports/validation-<host>-latest.json.
A failed required check fails the host. Models on a backend the connectivity step found
unreachable are degraded, not failed, unless validation_strict is on. `validation_ready_timeout`
(seconds, default 10) is how long to wait for /health/readiness.

The master key comes from MASTER_KEY on the control machine, else from the host's env file,
read over SFTP inside the callback: never through a fact or a command whose output pyinfra
shows, never as an operation argument, and only ever sent as an Authorization header.
"""

import io
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pyinfra import host, local, logger  # noqa: E402
from pyinfra.operations import python  # noqa: E402

from hxgw import validation  # noqa: E402
from hxops import plan  # noqa: E402

KEY_VARIABLE = "LITELLM_MASTER_KEY"


class MasterKeyUnavailable(Exception):
    """The key could not be read; the message says where and why, never a part of the key."""


def read_master_key(host, env_file: str) -> str:
    """LITELLM_MASTER_KEY from the host's env file, downloaded into memory over SFTP."""
    buffer = io.BytesIO()
    try:
        host.get_file(env_file, buffer)
    except Exception as error:  # noqa: BLE001 - SFTP/SSH errors of any kind; keep only the reason
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise MasterKeyUnavailable(
            f"{host.name}: cannot read the master key from {env_file}: {reason} "
            "(set MASTER_KEY on the control machine, or deploy first)"
        ) from None
    for line in buffer.getvalue().decode("utf-8", "replace").splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name.strip() == KEY_VARIABLE:
            value = value.strip().strip("'\"")
            if value:
                return value
    raise MasterKeyUnavailable(f"{host.name}: {env_file} has no {KEY_VARIABLE}=... line")


def report_paths(host_name: str, setting, started: str) -> list[Path]:
    """Where to write the JSON report: the configured path, else the timestamped and latest ones."""
    if setting:
        path = Path(str(setting).replace("{host}", host_name)).expanduser()
        return [path if path.is_absolute() else Path.cwd() / path]
    stamp = datetime.fromisoformat(started.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    reports = REPO / "reports"
    return [reports / f"validation-{host_name}-{stamp}.json", reports / f"validation-{host_name}-latest.json"]


def run_validation(state, host, report_setting=None, ready_timeout=None):
    """The python.call callback: validate, print the table, write the report, fail on failures."""
    host_plan = plan.for_host(host)
    settings = host_plan.settings
    key = host_plan.master_key or read_master_key(host, settings.env_file)
    options = {} if ready_timeout is None else {"ready_timeout": float(ready_timeout)}
    report = validation.validate(
        host.name,
        settings.public_url,
        host_plan.catalogue,
        key,
        unreachable=host_plan.unreachable_backends,
        strict=settings.validation_strict,
        pinned_version=settings.litellm_version,
        **options,
    )
    for line in validation.format_table([report]):
        logger.info(line)
    text = report.to_json()
    for path in report_paths(host.name, report_setting, report.started):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        logger.info(f"{host.name}: validation report written to {path}")
    for check in report.degraded:
        logger.warning(f"{host.name}: DEGRADED {check.line()}")
    for check in report.failures:
        logger.error(f"{host.name}: FAILED {check.line()}")
    (logger.error if report.failures else logger.info)(report.summary_line())
    if report.failures:
        raise validation.ValidationFailed(report)


host_plan = plan.for_host(host)
if not host_plan.facts:
    # Run alone: deploy.py's connectivity step did not run (its precheck fills host_plan.facts),
    # so probe the backends the same way, with the same step, to know which are unreachable.
    local.include(str(REPO / "tasks" / "backends.py"))
if not host_plan.stopped:
    python.call(
        name=f"Validate the gateway API at {host_plan.settings.public_url}",
        function=run_validation,
        report_setting=host.data.get("validation_report"),
        ready_timeout=host.data.get("validation_ready_timeout"),
    )
