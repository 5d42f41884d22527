"""deploy.py without its validation step (benchmark only): what a re-run costs before the API checks.

`pyinfra testbed/inventory.py bench/deploy_without_validation.py`: deploy.py's own entry point,
tasks.gateway.deploy_gateway, with no validation step.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tasks.gateway import deploy_gateway  # noqa: E402

deploy_gateway(validate_step=None)
