"""(Re)start the gateway and wait until it is ready; when it does not come up, roll back.

An operation (not a server.shell) so the outcome is recorded as data (hxops.outcome): whether the
restart ran, whether the rollback restored the last known good release (rollback.sh's exit
status), and the gateway's own error from the journal tail start.sh prints.
"""

from __future__ import annotations

import re
import shlex

from pyinfra import logger
from pyinfra.api import FunctionCommand, OperationError, operation

from hxops import outcome
from hxops.deploy_lock import under_work_lock
from hxops.deploy_record import NOT_ROLLED_BACK, ROLLED_BACK

# The gateway's own error among the journal lines start.sh prints (a Python exception's last line).
_EXCEPTION = re.compile(r"\b[A-Z]\w*(Error|Exception): .+")


def rollback_verdict(lines: list[str]) -> str:
    """rollback.sh's own last "NOT ROLLED BACK: ..." (exit 2) or "ROLLBACK FAILED: ..." (exit 3)
    line, or what its last line said (pure)."""
    said = [line.strip() for line in lines if line.strip()]
    verdicts = [line for line in said if line.startswith(("NOT ROLLED BACK:", "ROLLBACK FAILED:"))]
    return (verdicts or said or ["rollback.sh printed nothing"])[-1][:300]


def gateway_error(lines: list[str]) -> str | None:
    """The last exception line in the gateway's journal tail (pure)."""
    found = [m.group(0) for m in (_EXCEPTION.search(line) for line in lines) if m]
    return found[-1][:300] if found else None


def _start_or_roll_back(state, host, command: str, rollback_script: str, cause: str, record) -> None:
    outcome.record(host, restarted=True)
    ok, output = host.run_shell_command(command, _timeout=900)
    if ok:
        return
    lines = output.output_lines
    for line in lines:
        logger.error(f"{host.name}: {line}")
    reason = gateway_error(lines) or cause
    logger.error(f"{host.name}: the new release did not become ready: rolling back")
    rolled_back, rollback_output = host.run_shell_command(
        under_work_lock(f"{rollback_script} {shlex.quote(cause)}"), _timeout=420
    )
    for line in rollback_output.output_lines:
        logger.error(f"{host.name}: {line}")
    verdict = "" if rolled_back else f" ({rollback_verdict(rollback_output.output_lines)})"
    if record is not None:
        append_rolled_back(host, record, reason + verdict, rolled_back=bool(rolled_back))
    outcome.record(host, rolled_back=bool(rolled_back), cause=reason)
    said = "; rolled back" if rolled_back else f"; NOT rolled back{verdict}"
    raise OperationError(f"{cause}: {reason}{said}")


def append_rolled_back(host, record, cause: str, rolled_back: bool = True) -> None:
    """Append "rolled back" (or "NOT rolled back") to the host's deployment record
    (hxops.deploy_record); a record that cannot be written is logged, never a reason to fail
    differently."""
    said = ROLLED_BACK if rolled_back else NOT_ROLLED_BACK
    ok, output = host.run_shell_command(record.command(said, cause), _timeout=60)
    if not ok:
        logger.warning(f"{host.name}: the deployment record was not written: {output.output_lines[-3:]}")


@operation(is_idempotent=False)
def start_gateway(command: str, rollback_script: str, cause: str, record=None):
    """
    Run start.sh (`command`) on the host; if the gateway does not become ready, run rollback.sh
    (it restores the last known good release, when there is one), append "rolled back" to the
    deployment record (`record`: hxops.deploy_record.Record) and fail the host with `cause`.
    """
    yield FunctionCommand(_start_or_roll_back, (command, rollback_script, cause, record), {})
