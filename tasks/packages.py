"""Step 3: the system packages the venv needs, installed only when missing."""

from pyinfra import host
from pyinfra.operations import apt

from hxops import plan

NEEDED = ["python3-venv"]

host_plan = plan.for_host(host)
missing = [p for p in NEEDED if p not in host_plan.facts["packages"]]
if missing:
    # Only when something is missing: an unconditional `apt-get update` would change every run.
    apt.packages(name=f"Install {', '.join(missing)}", packages=missing, update=True)
