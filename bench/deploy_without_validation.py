"""deploy.py without its validation step (benchmark only): what a re-run costs before the API checks.

`pyinfra testbed/inventory.py bench/deploy_without_validation.py`; the steps are deploy.py's own
(read from its TASKS), less `validate`.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pyinfra import host, local, state  # noqa: E402

from bench.steps import deploy_tasks  # noqa: E402
from hxops import ops, plan  # noqa: E402

host_plan = plan.for_host(host)
for number, task in enumerate(deploy_tasks()):
    if host_plan.stopped:
        break
    if task != "validate":
        with ops.one_task_at_a_time():  # as deploy.py: one op-order number per task file
            state.current_op_file_number = number
            local.include(str(REPO / "tasks" / f"{task}.py"))
