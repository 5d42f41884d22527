"""The cache host (the optional `caches` group): Redis for the gateways' shared router state.

deploy.py runs this step instead of the gateway steps for a host of the `caches` group. Redis is
Debian's redis-server, installed with apt when missing. It binds only to `cache_ip` (the private
network), keeps protected-mode on, requires the password (hxops.redis_link: in a root:redis 640
file that redis.conf includes, uploaded over SFTP, never printed), persists only with
`redis_persistence`, and runs under Debian's sandboxed unit with a drop-in that also takes away
its config directory and every peer but the gateways. A changed config or password restarts it;
a re-run changes nothing.
"""

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.server import Which
from pyinfra.operations import apt, files, server, systemd

from hxops import outcome, paths
from hxops.monitoring_link import monitoring_target
from hxops.redis_link import cache_target, redis_password
from hxops.security import secret_file
from tasks.exporters import node_exporter, redis_exporter

CONFIG = "/etc/redis/hx-redis.conf"
SECRET = "/etc/redis/hx-redis-secret.conf"
DROP_IN = "/etc/systemd/system/redis-server.service.d/hx-gateway.conf"
SERVICE = "redis-server.service"


def allowed_peers(cache_ip: str) -> str:
    """The addresses that may talk to Redis: the gateways, the host itself."""
    gateways = [g.data.get("gateway_ip") for g in inventory.get_group("gateways", default=[])]
    return " ".join(["127.0.0.1", cache_ip, *sorted({ip for ip in gateways if ip})])


@deploy("tasks/cache.py")
def cache() -> None:
    target = cache_target(inventory)
    if target is None or target.host_name != host.name:
        raise DeployError(f"{host.name}: a cache host must be the one host of the `caches` group")
    settings, password = target.settings, redis_password()
    outcome.record(host, planned=True)

    if not host.get_fact(Which, command="redis-server"):
        apt.packages(name="Install redis-server", packages=["redis-server"], update=True)

    changes = [
        files.template(
            name=f"Render {CONFIG}",
            src=paths.template("redis.conf.j2"),
            dest=CONFIG,
            user="root",
            group="redis",
            mode="640",
            settings=settings,
            secret_file=SECRET,
        ),
        secret_file(
            name=f"Install the Redis password in {SECRET} (value not shown)",
            path=SECRET,
            group="redis",
            content_source=lambda: f"requirepass {password}\n",
            what="the Redis password",
        ),
        files.template(
            name=f"Harden {SERVICE} (drop-in)",
            src=paths.template("redis-hardening.conf.j2"),
            dest=DROP_IN,
            user="root",
            group="root",
            mode="644",
            create_remote_dir=True,
            config_file=CONFIG,
            allowed=allowed_peers(settings.cache_ip),
        ),
    ]
    files.file(name=f"{SECRET} is root:redis 640", path=SECRET, user="root", group="redis", mode="640")
    changed = [op for op in changes if op.will_change]
    if changes[2].will_change:
        systemd.daemon_reload(name="Reload systemd for the Redis drop-in")
    systemd.service(
        name=f"{SERVICE} enabled and running" + (", restarted for the change" if changed else ""),
        service=SERVICE,
        running=True,
        enabled=True,
        restarted=bool(changed),
    )
    if changed:  # a no-op run checks nothing on the host, so it changes nothing
        server.shell(
            name="Redis answers PING with the password",
            commands=[_ping_command(settings.cache_ip, settings.redis_port)],
        )
    watcher = monitoring_target(inventory)
    if watcher is not None:
        node_exporter(watcher)
        redis_exporter(watcher, settings, password)


def _ping_command(address: str, port: int) -> str:
    # The password is read on the host from the secret file, never put in the command; REDISCLI_AUTH
    # keeps it out of redis-cli's arguments. Redis may need a moment after a restart.
    ping = f"redis-cli --no-auth-warning -h {address} -p {port} ping 2>&1"
    return (
        f"export REDISCLI_AUTH=\"$(sed -n 's/^requirepass //p' {SECRET})\"; "
        f'for i in $(seq 50); do [ "$({ping})" = PONG ] && exit 0; sleep 0.2; done; '
        f'echo "FAILED: Redis on {address}:{port} does not answer PING: $({ping})" >&2; exit 1'
    )
