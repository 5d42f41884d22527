"""pyinfra glue of the deploy lock (hxops.deploy_lock): the sessions this pyinfra process holds,
and the step each one shows in the holder file.

PYINFRA INTERNAL, kept here alone: pyinfra has no public API that tells deploy code when an
operation starts on a host at run time (deploy files run at plan time; python.call would add an
operation per step and end the no-op runs). `State.add_callback_handler` with a
`BaseStateCallback` (pyinfra.api.state, used by pyinfra's own CLI for its progress output) and
`State.get_op_meta(op_hash).names` are what this uses; a public "operation started" hook would
replace both. Likewise nothing tells deploy code at plan time that the run is `--dry` (the CLI
keeps it to itself: pyinfra_cli.cli), so `is_dry_run` reads pyinfra's own command line.
"""

from __future__ import annotations

import atexit
import sys

from pyinfra.api.state import BaseStateCallback

from hxops.deploy_lock import LockSession

_SESSIONS: dict[str, LockSession] = {}  # host name -> the lock this process holds on it
_HOOKED: set[int] = set()  # id() of the States the callback is registered with


class _StepReporter(BaseStateCallback):
    @staticmethod
    def operation_host_start(state, host, op_hash):
        session = _SESSIONS.get(host.name)
        if session is not None:
            names = sorted(state.get_op_meta(op_hash).names)
            session.step(names[0] if names else op_hash)

    @staticmethod
    def host_disconnect(state, host):
        # pyinfra disconnects each host once its last operation ran: the deploy is over there.
        release(host.name)


def is_dry_run() -> bool:
    """This pyinfra run is `--dry` (it changes nothing, so it takes no lock)."""
    return "--dry" in sys.argv[1:]


def over_ssh(host) -> bool:
    """The host is reached over SSH (the lock's own session needs it; not @fake nor @local)."""
    from pyinfra.connectors.ssh import SSHConnector

    return isinstance(host.connector, SSHConnector)


def hold(state, session: LockSession) -> None:
    """Keep `session` for the rest of this process; its step follows the host's operations."""
    _SESSIONS[session.host_name] = session
    if id(state) not in _HOOKED:
        state.add_callback_handler(_StepReporter())
        _HOOKED.add(id(state))


def release(host_name: str) -> None:
    session = _SESSIONS.pop(host_name, None)
    if session is not None:
        session.release()


@atexit.register
def _release_all() -> None:
    for name in list(_SESSIONS):
        release(name)
