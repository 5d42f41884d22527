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

# The gateway's own error among the journal lines start.sh prints (a Python exception's last line).
_EXCEPTION = re.compile(r"\b[A-Z]\w*(Error|Exception): .+")


def gateway_error(lines: list[str]) -> str | None:
    """The last exception line in the gateway's journal tail (pure)."""
    found = [m.group(0) for m in (_EXCEPTION.search(line) for line in lines) if m]
    return found[-1][:300] if found else None


def _start_or_roll_back(state, host, command: str, rollback_script: str, cause: str) -> None:
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
        f"{rollback_script} {shlex.quote(cause)}", _timeout=420
    )
    for line in rollback_output.output_lines:
        logger.error(f"{host.name}: {line}")
    outcome.record(host, rolled_back=bool(rolled_back), cause=reason)
    raise OperationError(f"{cause}: {reason}" + ("; rolled back" if rolled_back else "; NOT rolled back"))


@operation(is_idempotent=False)
def start_gateway(command: str, rollback_script: str, cause: str):
    """
    Run start.sh (`command`) on the host; if the gateway does not become ready, run rollback.sh
    (it restores the last known good release, when there is one) and fail the host with `cause`.
    """
    yield FunctionCommand(_start_or_roll_back, (command, rollback_script, cause), {})
