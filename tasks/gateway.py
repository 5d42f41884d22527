"""The gateway deploy, step by step: deploy.py calls `deploy_gateway`, and so does every variant
(bench/). Each step is a pyinfra @deploy function in its own module of tasks/; what it needs comes
in as arguments (the host's GatewayPlan, the facts the precheck read, what earlier steps
decided) and what it decides goes out as its return value.

Operation order: pyinfra (CLI mode) orders and identifies each operation by the line numbers of
its call stack, from deploy.py down (pyinfra.api.util.get_operation_order_from_stack). Each step
below is called from a line of its own, so two steps' operations never share a stack position,
whatever the step modules' own line numbers, and hosts in different states (a fresh gateway next
to deployed ones) plan operations that line up instead of forming a cycle. Keep ONE step call per
line here (tests/unit/test_op_order.py shows what two calls from one line do).
"""

from __future__ import annotations

from collections.abc import Callable

from pyinfra import host

from hxops import outcome
from hxops.plan import GatewayPlan, HostRefused, gateway_plan
from tasks.backends import backends
from tasks.config import config
from tasks.layout import layout
from tasks.lock import deploy_lock_step
from tasks.monitoring_agent import monitoring_agent
from tasks.packages import packages
from tasks.precheck import precheck
from tasks.preflight import preflight
from tasks.prune import prune_releases
from tasks.release import keep_release
from tasks.scripts import scripts
from tasks.service import service
from tasks.unit import unit
from tasks.validate import validate
from tasks.venv import venv


def deploy_gateway(
    plan: GatewayPlan | None = None,
    *,
    venv_step: Callable = venv,
    service_step: Callable = service,
    validate_step: Callable | None = validate,
) -> None:
    """Every step of the gateway deploy, in the seed's order, for the host pyinfra is planning.

    A step that refuses the host (hxops.plan.refuse) ends its plan here; the other hosts go on.
    The keyword arguments let a variant (bench/) swap one step for its own; deploy.py takes them
    as they are.
    """
    plan = plan or gateway_plan(host)  # the data, checked before any step runs
    outcome.record(host, planned=True)
    try:
        deploy_lock_step(plan)  # one deploy per gateway at a time; held until this run ends here
        checked = precheck(plan)  # binaries, then the identity guard
        release = preflight(plan, checked.facts)  # OS, Python, disk, port, installer, service_user
        packages(checked.facts)
        layout(plan, checked.facts.snapshot)  # user, group, directories, permission model
        venv_switch = venv_step(plan, checked.facts, release)
        reach = backends(plan)  # connectivity from the gateway host
        config_files = config(plan, checked.facts)  # config.yaml and the master key's file
        unit_file = unit(plan, checked.facts)
        scripts(plan, checked.facts.snapshot)
        running = service_step(plan, checked.facts, [venv_switch, *config_files, unit_file])
        if validate_step is not None:
            validate_step(plan, checked.api_url, reach, running.restarting)  # from the control machine
        keep_release(plan, checked.facts.snapshot, running)  # the rollback target
        prune_releases(plan, checked.facts, release)  # old venvs beyond keep_releases
        monitoring_agent(plan)  # node exporter and the backend probe, with a `monitoring` group
    except HostRefused:
        return
