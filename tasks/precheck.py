"""Step 1: the binaries the deploy relies on, then the server identity guard.

The guard stops a deploy that was pointed at the wrong machine: the host must own the gateway
address it is meant to serve (`gateway_ip`). FORCE=1 or host data `force: True` overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra import host, logger, state
from pyinfra.api import deploy
from pyinfra.facts.hardware import Ipv4Addrs

from hxops.facts import REQUIRED_BINARIES, GatewayHost, HostFacts, managed_paths, snapshot_globs
from hxops.plan import GatewayPlan, refuse


@dataclass(frozen=True)
class CheckedHost:
    """The host passed the pre-checks: its facts (one snapshot) and where to call its API."""

    facts: HostFacts
    # The gateway's API as the control machine calls it: public_url, or, when FORCE took the host
    # past the guard (it does not own gateway_ip), the address the deploy reached it by.
    api_url: str


def host_facts(plan: GatewayPlan) -> HostFacts:
    """One command: everything the later steps decide on, and the snapshot hxops.ops compares with."""
    settings = plan.settings
    snapshot_paths, rendered_files = managed_paths(settings)
    globbed, globbed_hashed = snapshot_globs(settings)
    return host.get_fact(
        GatewayHost,
        base_dir=settings.base_dir,
        port=settings.port,
        unit=settings.unit_name,
        venv_link=settings.venv_link,
        venv_root=settings.venv_root,
        env_file=settings.env_file,
        paths=snapshot_paths,
        hashed=rendered_files,
        account=settings.service_user,
        globbed=globbed,
        globbed_hashed=globbed_hashed,
    )


@deploy("tasks/precheck.py")
def precheck(plan: GatewayPlan) -> CheckedHost:
    settings = plan.settings
    facts = host_facts(plan)
    missing = [b for b in REQUIRED_BINARIES if b not in facts.binaries]
    if missing:
        packages = " ".join(sorted({REQUIRED_BINARIES[b] for b in missing}))
        refuse(
            host,
            state,
            f"required command(s) not found: {', '.join(missing)}. "
            f"Install them on the host: apt-get install -y {packages}",
        )
    # The snapshot lists the host's IPv4 addresses; a host whose `ip -o` printed none is asked again.
    owned = sorted(set(facts.snapshot.addresses)) or sorted(
        {a for addrs in host.get_fact(Ipv4Addrs).values() for a in addrs}
    )
    if settings.gateway_ip in owned:
        logger.info(f"{host.name}: identity confirmed, the host owns {settings.gateway_ip}")
        return CheckedHost(facts, settings.public_url)
    if settings.force:
        logger.warning(
            f"{host.name}: FORCED past the identity guard: this host owns {', '.join(owned)}, "
            f"not the gateway address {settings.gateway_ip}. Deploying anyway (FORCE=1 / force)."
        )
        return CheckedHost(facts, f"http://{host.data.get('ssh_hostname') or host.name}:{settings.port}")
    refuse(
        host,
        state,
        f"REFUSING TO DEPLOY: this host does not own the gateway address {settings.gateway_ip} "
        f"(it has {', '.join(owned) or 'no IPv4 address'}). Check the inventory's gateway_ip, "
        "or set FORCE=1 if this really is the gateway.",
    )
