"""Step 0: the deploy lock of this gateway (hxops.deploy_lock), taken at plan time, before the
host's facts are read, so the plan is made from the host as the previous deploy left it, and held
until this pyinfra process is done with the host (its validation, the release kept and the old
venvs pruned included).

A second deploy waits up to `deploy_lock_timeout`, then this host is refused with the holder's
name (control machine, user, pid, start time, step); the other hosts go on. `--dry` takes no
lock: it says who holds it, if anyone.
"""

from __future__ import annotations

import os

from pyinfra import host, logger, state

from hxops import deploy_lock, lock_hook
from hxops.plan import GatewayPlan, refuse

SSH_KEYS = deploy_lock.SSH_KEYS


def deploy_lock_step(plan: GatewayPlan) -> None:
    timeout = plan.settings.deploy_lock_timeout
    if lock_hook.is_dry_run():
        status, output = host.run_shell_command(deploy_lock.SHOW_COMMAND, _timeout=30)
        holder = deploy_lock.read_holder(output.stdout_lines) if status else None
        if holder is None:
            logger.info(f"{host.name}: the deploy lock is free (a real run takes it)")
        else:
            logger.warning(
                f"{host.name}: the deploy lock is held by {holder.describe()}; "
                f"a real run would wait up to {timeout:g} s for it"
            )
        return
    if not lock_hook.over_ssh(host):
        logger.info(f"{host.name}: not an SSH host: no deploy lock")  # @fake plan tests, @local
        return
    session = deploy_lock.LockSession(
        host.name, {k: host.data.get(k) for k in SSH_KEYS}, what="pyinfra deploy.py"
    )
    join = os.environ.get(deploy_lock.TOKEN_ENV) or None
    try:
        waited = session.acquire(timeout, join=join)
    except deploy_lock.LockBusy as busy:
        refuse(host, state, f"{busy}; nothing was changed on this host")
    except RuntimeError as error:
        refuse(host, state, str(error))
    if session.joined:
        logger.info(f"{host.name}: deploying under the rollout's deploy lock")
    elif session.waited_for is not None:
        logger.warning(
            f"{host.name}: waited {waited:.0f} s for the deploy lock ({session.waited_for.describe()})"
        )
    lock_hook.hold(state, session)
