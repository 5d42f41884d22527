"""Deploy the HX LiteLLM gateway: `pyinfra inventory.py deploy.py`.

For a gateway host, every step of tasks/ in order (tasks/gateway.py): the data is checked before
any host is touched (hxops.plan); a host that fails a pre-check gets no further operations, the
other hosts go on. A host of the `loadbalancers` group gets HAProxy instead (tasks/loadbalancer.py),
one of the `caches` group Redis (tasks/cache.py), one of the `monitoring` group Prometheus and
Alertmanager (tasks/monitoring.py); all run before any gateway step.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pyinfra import host  # noqa: E402

from tasks.cache import cache  # noqa: E402
from tasks.gateway import deploy_gateway  # noqa: E402
from tasks.loadbalancer import loadbalancer  # noqa: E402
from tasks.monitoring import monitoring  # noqa: E402

if "loadbalancers" in host.groups:
    loadbalancer()  # the optional HAProxy front door (rollout/): none of the gateway steps
elif "caches" in host.groups:
    cache()  # the optional Redis for shared router state: none of the gateway steps
elif "monitoring" in host.groups:
    monitoring()  # the optional Prometheus and Alertmanager: none of the gateway steps
else:
    deploy_gateway()
