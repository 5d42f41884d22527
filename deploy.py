"""Deploy the HX LiteLLM gateway: `pyinfra inventory.py deploy.py`.

Each step is a task file under tasks/, run in the seed's order. The data is checked before any
host is touched (hxops.plan); a host that fails a pre-check gets no further operations, the other
hosts go on.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Absolute paths: pyinfra resolves "./x" against ONE shared "current file", which the hosts'
# parallel plans (greenlets) overwrite for each other ("tasks/tasks/precheck.py" not found).
TASKS_DIR = Path(__file__).resolve().parent / "tasks"

from pyinfra import host, local, state  # noqa: E402

from hxops import ops, plan  # noqa: E402

TASKS = (
    "precheck",  # binaries, then the identity guard
    "preflight",  # OS, Python, disk, port
    "packages",
    "layout",  # user, group, directories
    "venv",
    "backends",  # connectivity from the gateway host
    "config",  # config.yaml and the master key's environment file
    "unit",
    "scripts",
    "service",
    "validate",  # the API checks and the report, from the control machine
    "release",  # keep what now runs as the last known good release (the rollback target)
)

if "loadbalancers" in host.groups:
    # The optional HAProxy front door (rollout/): not a gateway, so none of the gateway steps.
    local.include(str(TASKS_DIR / "loadbalancer.py"))
else:
    host_plan = plan.for_host(host)
    for number, task in enumerate(TASKS):
        if host_plan.stopped:
            break
        # pyinfra orders operations by line numbers only: give each task file its own number, as
        # the CLI does for each deploy file, or two files' operations on the same line collide
        # and a run over hosts in different states fails ("Cycle detected in operation ordering").
        # Hosts are planned in parallel greenlets that share this number: hold it for the task.
        with ops.one_task_at_a_time():
            state.current_op_file_number = number
            local.include(str(TASKS_DIR / f"{task}.py"))
