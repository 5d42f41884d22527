"""`python -m rollout.remote INVENTORY HOST COMMAND`: run COMMAND on HOST over pyinfra's own SSH
connector, with the inventory's SSH data (key, port, user, known hosts) exactly as the deploy
uses it; print its output and exit with its status (255 when the host cannot be reached).

The rollout's one way onto a host (rollout/lb.py). A separate process on purpose, as
rollout/inventory.py: pyinfra monkey-patches the interpreter for gevent on import.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UNREACHABLE = 255


def run(inventory_path: str, host_name: str, command: str) -> int:
    from pyinfra.api import Config, State
    from pyinfra.context import ctx_host, ctx_state
    from pyinfra_cli.inventory import make_inventory

    state = State()
    with ctx_state.use(state):
        inventory = make_inventory(inventory_path, cwd=str(REPO))
        state.init(inventory, Config())
        host = inventory.get_host(host_name)
        with ctx_host.use(host):
            host.connect(raise_exceptions=False)
            if not host.connected:
                print(f"cannot connect to {host_name}", file=sys.stderr)
                return UNREACHABLE
            ok, output = host.run_shell_command(command, _timeout=600)
            host.disconnect()
    for line in output.stdout_lines:
        print(line)
    for line in output.stderr_lines:
        print(line, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.splitlines()[0])
    sys.exit(run(*sys.argv[1:]))
