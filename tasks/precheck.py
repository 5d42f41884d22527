"""Step 1: the binaries the deploy relies on, then the server identity guard.

The guard stops a deploy that was pointed at the wrong machine: the host must own the gateway
address it is meant to serve (`gateway_ip`). FORCE=1 or host data `force: True` overrides it.
"""

from pyinfra import host, logger
from pyinfra.facts.hardware import Ipv4Addrs

from hxops import plan
from hxops.facts import REQUIRED_BINARIES, GatewayHost, managed_paths, snapshot_globs

host_plan = plan.for_host(host)
settings = host_plan.settings

# One command: everything the later steps decide on, and the snapshot hxops.ops compares with.
snapshot_paths, rendered_files = managed_paths(settings)
globbed, globbed_hashed = snapshot_globs(settings)
host_plan.facts = host.get_fact(
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
missing = [b for b in REQUIRED_BINARIES if b not in host_plan.facts["binaries"]]
if missing:
    packages = " ".join(sorted({REQUIRED_BINARIES[b] for b in missing}))
    plan.refuse(
        host,
        f"required command(s) not found: {', '.join(missing)}. "
        f"Install them on the host: apt-get install -y {packages}",
    )
else:
    # The snapshot lists the host's IPv4 addresses; a host whose `ip -o` printed none is asked again.
    owned = sorted(set(host_plan.facts["addresses"])) or sorted(
        {a for addrs in host.get_fact(Ipv4Addrs).values() for a in addrs}
    )
    if settings.gateway_ip in owned:
        logger.info(f"{host.name}: identity confirmed, the host owns {settings.gateway_ip}")
    elif settings.force:
        logger.warning(
            f"{host.name}: FORCED past the identity guard: this host owns {', '.join(owned)}, "
            f"not the gateway address {settings.gateway_ip}. Deploying anyway (FORCE=1 / force)."
        )
        host_plan.forced_api_url = f"http://{host.data.get('ssh_hostname') or host.name}:{settings.port}"
    else:
        plan.refuse(
            host,
            f"REFUSING TO DEPLOY: this host does not own the gateway address {settings.gateway_ip} "
            f"(it has {', '.join(owned) or 'no IPv4 address'}). Check the inventory's gateway_ip, "
            "or set FORCE=1 if this really is the gateway.",
        )
