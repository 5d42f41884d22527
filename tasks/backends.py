"""Step 6: can this gateway host reach each Ollama backend, and does each hold its models?

An unreachable backend or a model not pulled there is a warning (the seed's graceful
degradation); `backend_check_strict: True` makes it stop the host instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pyinfra import host, logger, state
from pyinfra.api import deploy

from hxgw.tags import missing_tags
from hxops.facts import BackendProbe
from hxops.plan import GatewayPlan, refuse


@dataclass(frozen=True)
class BackendReach:
    """What the gateway host sees of its backends: the validation degrades the models of the
    unreachable ones instead of failing them."""

    unreachable: dict[str, str] = field(default_factory=dict)  # backend -> error
    missing_models: dict[str, list[str]] = field(default_factory=dict)  # backend -> tags not pulled


@deploy("tasks/backends.py")
def backends(plan: GatewayPlan) -> BackendReach:
    catalogue = plan.catalogue
    wanted_backends = [{"name": b.name, "url": b.url} for b in catalogue.backends]
    probe = host.get_fact(BackendProbe, backends_json=json.dumps(wanted_backends)) or {}

    reach = BackendReach()
    problems = []
    for backend in catalogue.backends:
        wanted = [m.model for m in catalogue.models_on_backend(backend.name)]
        result = probe.get(backend.name, {"ok": False, "error": "not probed"})
        if not result["ok"]:
            reach.unreachable[backend.name] = result["error"]
            problems.append(
                f"backend {backend.name} ({backend.url}) is unreachable from {host.name}: "
                f"{result['error']}; its models will be degraded: "
                + ", ".join(m.name for m in catalogue.models_on_backend(backend.name))
            )
            continue
        missing = missing_tags(wanted, result["models"])
        if missing:
            reach.missing_models[backend.name] = missing
            problems.append(
                f"backend {backend.name} does not hold {', '.join(missing)}: run `ollama pull` there "
                "or fix the catalogue"
            )
        else:
            version, count = result["version"], len(wanted)
            logger.info(f"{host.name}: backend {backend.name} (ollama {version}) holds all {count} models")

    for problem in problems:
        logger.warning(f"{host.name}: {problem}")
    if problems and plan.settings.backend_check_strict:
        refuse(
            host, state, "backend check failed (backend_check_strict is on):\n  - " + "\n  - ".join(problems)
        )
    return reach
