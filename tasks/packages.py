"""Step 3: the Debian packages the gateway needs on the host (python3-venv)."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import apt

from hxops.facts import HostFacts

NEEDED = ["python3-venv"]


@deploy("tasks/packages.py")
def packages(facts: HostFacts) -> None:
    missing = [p for p in NEEDED if p not in facts.packages]
    if missing:
        # Only when something is missing: an unconditional `apt-get update` would change every run.
        apt.packages(name=f"Install {', '.join(missing)}", packages=missing, update=True)
