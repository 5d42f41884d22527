"""Step 6: can this gateway host reach each Ollama backend, and does each hold its models?

An unreachable backend or a model not pulled there is a warning (the seed's graceful
degradation); `backend_check_strict: True` makes it stop the host instead.
"""

import json

from pyinfra import host, logger

from hxgw.tags import missing_tags
from hxops import plan
from hxops.facts import BackendProbe

host_plan = plan.for_host(host)
catalogue = host_plan.catalogue
backends = [{"name": b.name, "url": b.url} for b in catalogue.backends]
probe = host.get_fact(BackendProbe, backends_json=json.dumps(backends))

problems = []
for backend in catalogue.backends:
    wanted = [m.model for m in catalogue.models_on_backend(backend.name)]
    result = probe.get(backend.name, {"ok": False, "error": "not probed"})
    if not result["ok"]:
        host_plan.unreachable_backends[backend.name] = result["error"]
        problems.append(
            f"backend {backend.name} ({backend.url}) is unreachable from {host.name}: "
            f"{result['error']}; its models will be degraded: "
            + ", ".join(m.name for m in catalogue.models_on_backend(backend.name))
        )
        continue
    missing = missing_tags(wanted, result["models"])
    if missing:
        host_plan.missing_models[backend.name] = missing
        problems.append(
            f"backend {backend.name} does not hold {', '.join(missing)}: run `ollama pull` there "
            "or fix the catalogue"
        )
    else:
        logger.info(
            f"{host.name}: backend {backend.name} (ollama {result['version']}) holds all {len(wanted)} models"
        )

for problem in problems:
    logger.warning(f"{host.name}: {problem}")
if problems and host_plan.settings.backend_check_strict:
    plan.refuse(host, "backend check failed (backend_check_strict is on):\n  - " + "\n  - ".join(problems))
