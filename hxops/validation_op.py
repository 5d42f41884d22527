"""The validation as a pyinfra operation: it checks the live API and changes nothing.

An operation that always yields a command (python.call) would count as a change on every run,
so a no-op re-run would never be a no-op. This operation does its checks while pyinfra executes
it and yields no command when they all pass ("No changes"); when a required check fails it yields
one command that raises, so the host fails with the checks named. At plan time (and so under
--dry) it calls nothing at all.

The master key comes from MASTER_KEY on the control machine, else from the host's env file
(which must hold the fleet's key, hxops.fleet_key), read over SFTP into memory: never through a
fact or a command whose output pyinfra shows, never as an operation argument, and only ever sent
as an Authorization header.
"""

from __future__ import annotations

import hmac
import shlex
import time
from datetime import UTC, datetime
from pathlib import Path

from pyinfra import host, logger, state
from pyinfra.api import FunctionCommand, operation

from hxgw import client_checks, validation
from hxgw.validation_front_door import check_front_door
from hxgw.validation_shared_state import judge_shared_state
from hxops import deploy_record, outcome, release
from hxops.fleet_key import MasterKeyUnavailable, fingerprint, read_master_key, short
from hxops.monitoring_link import TEXTFILE_DIR
from hxops.paths import REPO
from hxops.plan import GatewayPlan
from hxops.redis_link import auth_probe_command


def report_paths(host_name: str, setting, started: str) -> list[Path]:
    """Where to write the JSON report: the configured path, else the timestamped and latest ones."""
    if setting:
        path = Path(str(setting).replace("{host}", host_name)).expanduser()
        return [path if path.is_absolute() else Path.cwd() / path]
    stamp = datetime.fromisoformat(started.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    reports = REPO / "reports"
    # Two deploys of one host name can validate in the same second (the tests' two workers each
    # have a fleet with that name): a stamped report is never overwritten, the second gets -2.
    stamped, n = reports / f"validation-{host_name}-{stamp}.json", 1
    while stamped.exists():
        n += 1
        stamped = reports / f"validation-{host_name}-{stamp}-{n}.json"
    return [stamped, reports / f"validation-{host_name}-latest.json"]


def held_fleet_key(plan: GatewayPlan) -> str:
    """The key the host's env file holds, which must be the fleet's (hxops.fleet_key): a host that
    lost it or holds another would serve a different key after its next start."""
    key = read_master_key(plan.settings.env_file)
    if not hmac.compare_digest(key.encode(), (plan.master_key or "").encode()):
        raise MasterKeyUnavailable(
            f"{host.name}: {plan.settings.env_file} holds key {short(fingerprint(key))}, not the fleet's "
            f"{short(fingerprint(plan.master_key or ''))} (sha256): deploy to give it the fleet's key"
        )
    return key


def run_validation(
    plan: GatewayPlan, api_url: str, unreachable: dict, report_setting=None, ready_timeout=None
) -> validation.Report:
    """Validate, print the table, write the report; return it (failures are the caller's call)."""
    settings = plan.settings
    key = plan.master_key if plan.master_key_given else held_fleet_key(plan)
    options = {} if ready_timeout is None else {"ready_timeout": float(ready_timeout)}
    report = validation.validate(
        host.name,
        api_url,
        plan.catalogue,
        key,
        unreachable=unreachable,
        strict=settings.validation_strict,
        pinned_version=settings.litellm_version,
        opened=client_checks.opened_routes(settings.admin_ui, settings.api_docs),
        clients=plan.clients,
        **options,
    )
    if plan.front_door is not None:  # the load balancer, with the fleet's key: one key behind it
        report.checks.append(check_front_door(plan.front_door.url, key, plan.front_door.gateways))
    if plan.cache is not None:  # the `caches` group's Redis, asked from the gateway host itself
        report.checks.append(shared_state(plan))
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
    return report


def shared_state(plan: GatewayPlan) -> validation.CheckResult:
    where = f"{plan.cache.settings.cache_ip}:{plan.cache.settings.redis_port}"
    started = time.perf_counter()
    try:
        _ok, output = host.run_shell_command(auth_probe_command(plan.settings, plan.cache))
        lines = [line for line in output.stdout_lines if line.strip()]
    except Exception as error:  # noqa: BLE001 - a probe that cannot run degrades, never fails
        lines = [f"PROBE {type(error).__name__}"]
    latency = (time.perf_counter() - started) * 1000
    return judge_shared_state(where, lines[-1] if lines else None, round(latency, 1))


def publish_result(plan: GatewayPlan, failures: int) -> None:
    """With a `monitoring` group: the result as a metric for node exporter's textfile collector
    (hx_validation_passed, the HxValidationFailing alert). Rewritten only when it differs, so a
    no-op run touches nothing."""
    if plan.monitoring is None:
        return
    path = f"{TEXTFILE_DIR}/hx_validation.prom"
    text = (
        "# HELP hx_validation_passed Whether the last deploy's validation of this gateway passed.\n"
        "# TYPE hx_validation_passed gauge\n"
        f'hx_validation_passed{{failures="{failures}"}} {0 if failures else 1}\n'
    )
    new, path = shlex.quote(path + ".new"), shlex.quote(path)
    host.run_shell_command(
        f"mkdir -p {TEXTFILE_DIR} && printf %s {shlex.quote(text)} > {new} && "
        f"if cmp -s {new} {path}; then rm -f {new}; else chmod 644 {new} && mv -f {new} {path}; fi"
    )


def _fail(error: Exception) -> None:
    raise error


@operation()
def gateway_api(
    plan: GatewayPlan,
    api_url: str,
    unreachable: dict,
    roll_back: bool = False,
    report_setting=None,
    ready_timeout=None,
):
    """
    Validate the gateway's live API from the control machine (hxgw.validation).

    + plan: the host's GatewayPlan (catalogue, settings, MASTER_KEY if given)
    + api_url: where to call the API
    + unreachable: {backend: error} the connectivity step found; their models are degraded
    + roll_back: this run restarted the service: a failure restores the last known good release
    + report_setting: where to write the JSON report (`{host}` is replaced), default reports/
    + ready_timeout: seconds to wait for /health/readiness

    Changes nothing: no command when every required check passes, one failing command otherwise.
    """
    if not state.is_executing:
        return
    try:
        report = run_validation(plan, api_url, unreachable, report_setting, ready_timeout)
    except MasterKeyUnavailable as error:
        yield FunctionCommand(_fail, (error,), {})
        return
    except Exception as error:  # noqa: BLE001 - fail this host, not the whole run; no key in the text
        yield FunctionCommand(_fail, (RuntimeError(f"validation could not run: {type(error).__name__}"),), {})
        return
    outcome.record(
        host,
        degraded=[check.line() for check in report.degraded],
        failures=[check.line() for check in report.failures],
    )
    publish_result(plan, len(report.failures))
    if report.failures:
        outcome.record(host, cause=report.failures[0].line())
        if roll_back:  # this run restarted the gateway (tasks/service.py): back to the last good release
            rolled_back = release.rollback_after_failed_validation(
                host, plan.settings, report.summary_line(), deploy_record.Record.of(plan)
            )
            outcome.record(host, rolled_back=rolled_back)
        yield FunctionCommand(_fail, (validation.ValidationFailed(report),), {})
