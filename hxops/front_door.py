"""Where the fleet's front door is (the `loadbalancers` group's HAProxy), for the validation.

The front door is checked (hxgw.validation_front_door) by a run that deploys every gateway of
the `gateways` group: a run limited to some (`--limit`, the rollout's batches) would find the
others still on their old state, so it leaves the check to the run that covers them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra import logger

from hxgw.errors import ConfigError
from hxgw.loadbalancer_settings import parse_loadbalancer_settings


@dataclass(frozen=True)
class FrontDoor:
    url: str
    gateways: int  # how many gateways stand behind it


def front_door(host) -> FrontDoor | None:
    """The front door to check in this run, or None (no load balancer, or not every gateway here)."""
    lbs = list(host.inventory.get_group("loadbalancers", default=[]))
    if not lbs:
        return None
    gateways = list(host.inventory.get_group("gateways", default=[]))
    left_out = [g.name for g in gateways if not host.state.is_host_in_limit(g)]
    if left_out:
        logger.info(
            f"{host.name}: the front door is not checked in this run: {', '.join(left_out)} of its "
            "gateways are not in it (a run over every gateway checks it)"
        )
        return None
    lb = lbs[0]
    try:
        settings = parse_loadbalancer_settings(lb.data)
    except ConfigError:
        return None  # the load balancer's own plan reports it
    address = settings.lb_bind
    if address == "0.0.0.0":
        address = lb.data.get("ssh_hostname") or lb.name
    return FrontDoor(f"http://{address}:{settings.lb_port}", len(gateways))
