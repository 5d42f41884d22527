"""The load balancer (hosts of the optional `loadbalancers` group): HAProxy in front of the gateways.

deploy.py runs this step instead of the gateway steps for a host of the `loadbalancers` group.
HAProxy is Debian's package. Its config lists every host of the inventory's `gateways` group (by
`gateway_ip` and `port`), health-checks `/health/readiness`, listens on `lb_port` (default 4000),
and retries a request that meets a gateway going down on another one. A new config is checked
with `haproxy -c` before it replaces the live one, and HAProxy reloads (gracefully) only then.
`hx-lb-ctl` (rollout/lbctl.py) drains and restores gateways through the admin socket.
"""

import hashlib
import ipaddress
import re

from pyinfra import host, inventory, state
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.api.util import get_template
from pyinfra.facts.files import Sha256File
from pyinfra.facts.server import Which
from pyinfra.operations import apt, files, server, systemd

from hxgw.errors import ConfigError
from hxgw.loadbalancer_settings import LoadBalancerSettings, parse_loadbalancer_settings
from hxops import outcome, paths
from hxops.monitoring_link import host_address, monitoring_target
from rollout.lbctl import BACKEND, CANDIDATE, CONFIG, CONTROL, SOCKET
from tasks.exporters import node_exporter

_SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def gateway_servers() -> list[dict]:
    """One HAProxy server per host of the `gateways` group, whatever --limit selected."""
    servers, problems = [], []
    for gateway in inventory.get_group("gateways", default=[]):
        address = gateway.data.get("gateway_ip")
        port = gateway.data.get("port", 4000)
        try:
            address = str(ipaddress.IPv4Address(address))
        except ValueError:
            problems.append(f"gateway {gateway.name}: gateway_ip {address!r} is not an IPv4 address")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            problems.append(f"gateway {gateway.name}: port {port!r} is not a port number")
        if not _SERVER_NAME.fullmatch(gateway.name):
            problems.append(f"gateway {gateway.name!r}: the name is not usable as an HAProxy server name")
        servers.append({"name": gateway.name, "address": address, "port": port})
    if not servers:
        problems.append("the inventory has no `gateways` group: there is nothing to balance")
    if problems:
        raise DeployError(f"{host.name}: load balancer data:\n  - " + "\n  - ".join(problems))
    return servers


def loadbalancer_settings() -> LoadBalancerSettings:
    """This host's lb_* settings (hxgw/loadbalancer_settings.py), checked before anything runs."""
    try:
        return parse_loadbalancer_settings(host.data)
    except ConfigError as error:
        raise DeployError(
            f"{host.name}: the load balancer's data has {len(error.problems)} problem(s); nothing was "
            "changed on any host:\n  - " + "\n  - ".join(error.problems)
        ) from None


@deploy("tasks/loadbalancer.py")
def loadbalancer() -> None:
    settings = loadbalancer_settings()
    servers = gateway_servers()
    watcher = monitoring_target(inventory)
    outcome.record(host, planned=True)

    if not host.get_fact(Which, command="haproxy"):
        apt.packages(name="Install haproxy", packages=["haproxy"], update=True)

    files.put(
        name=f"Load balancer control script {CONTROL}",
        src=str(paths.REPO / "rollout" / "lbctl.py"),
        dest=CONTROL,
        user="root",
        group="root",
        mode="750",
    )
    config = {
        "servers": servers,
        "backend": BACKEND,
        "admin_socket": SOCKET,
        "bind": settings.lb_bind,
        "port": settings.lb_port,
        "connect_timeout": 5,
        "request_timeout": settings.lb_request_timeout,
        "check_interval_ms": settings.lb_check_interval_ms,
        "metrics": watcher
        and {
            "address": host_address(host),
            "port": watcher.settings.haproxy_metrics_port,
            "allowed": watcher.settings.monitoring_ip,
        },
    }
    # The candidate is what `haproxy -c` checks; with --diff it shows the change against the last one.
    files.template(
        name="Render the HAProxy config (candidate)",
        src=paths.template("haproxy.cfg.j2"),
        dest=CANDIDATE,
        user="root",
        group="root",
        mode="644",
        **config,
    )
    # Decided at plan time against the LIVE config, so --dry shows the reload exactly when one
    # follows, a config that `haproxy -c` refused is tried again on the next run, and a no-op run
    # reloads nothing. Rendered the way files.template renders.
    wanted = get_template(paths.template("haproxy.cfg.j2")).render(
        {"host": host, "state": state, "inventory": inventory, **config}
    )
    if host.get_fact(Sha256File, path=CONFIG) != hashlib.sha256(wanted.encode()).hexdigest():
        server.shell(
            name="Check the HAProxy config (haproxy -c), install it and reload HAProxy",
            commands=[
                f"haproxy -c -q -f {CANDIDATE} || {{ echo 'FAILED: haproxy -c refused the new config; "
                f"the live one is unchanged' >&2; haproxy -c -f {CANDIDATE} >&2; exit 1; }}",
                f"install -m 644 -o root -g root {CANDIDATE} {CONFIG}",
                "systemctl reload-or-restart haproxy.service",
            ],
        )
    systemd.service(name="HAProxy enabled and running", service="haproxy.service", running=True, enabled=True)
    if watcher is not None:
        node_exporter(watcher)
