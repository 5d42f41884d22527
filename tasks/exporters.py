"""The exporters every managed host runs when the inventory has a `monitoring` group: Debian's
prometheus-node-exporter on each (gateways, load balancer, cache, monitoring host), and
prometheus-redis-exporter on the cache host. Each listens on its host's own address and answers
only the monitoring host (a drop-in's IPAddressAllow=), under the shared hardening drop-in
(templates/prometheus-hardening.conf.j2). A re-run changes nothing and restarts nothing.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.server import Which
from pyinfra.operations import apt, files, systemd

from hxops import paths
from hxops.monitoring_link import TEXTFILE_DIR, MonitoringTarget, host_address
from hxops.security import secret_file

NODE_EXPORTER = "prometheus-node-exporter"
REDIS_EXPORTER = "prometheus-redis-exporter"
# Collectors a fleet host needs; the rest (and the noisy per-device ones) stay off.
NODE_COLLECTORS = ("cpu", "diskstats", "filesystem", "loadavg", "meminfo", "netdev", "stat", "time", "uname")
# node exporter's default minus overlay: a container's (and the fleet's) root filesystem is one, and
# its free space is what the disk alert watches. `$$` is systemd's escape for `$`.
FS_TYPES_EXCLUDE = (
    "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|"
    "nsfs|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs|tmpfs)$$"
)


def drop_in(unit: str) -> str:
    return f"/etc/systemd/system/{unit}.service.d/hx-monitoring.conf"


def hardened_service(unit: str, package: str, binary: str, target: MonitoringTarget, **drop) -> None:
    """Install `package` when missing, write its drop-in, and keep `unit` enabled and running:
    restarted when the drop-in (or an operation of `drop['restart_for']`) changed, reloaded
    (SIGHUP) when only an operation of `drop['reload_for']` did."""
    if not host.get_fact(Which, command=binary):
        apt.packages(name=f"Install {package}", packages=[package], update=True)
    restart_for, reload_for = drop.pop("restart_for", []), drop.pop("reload_for", [])
    allowed = drop.pop("allowed", f"127.0.0.1 {target.settings.monitoring_ip}")
    written = files.template(
        name=f"Harden {unit}.service and set its arguments (drop-in)",
        src=paths.template("prometheus-hardening.conf.j2"),
        dest=drop_in(unit),
        user="root",
        group="root",
        mode="644",
        create_remote_dir=True,
        unit=f"{unit}.service",
        allowed=allowed,
        families=drop.pop("families", "AF_INET AF_INET6"),
        writable=drop.pop("writable", ""),
        environment_file=drop.pop("environment_file", ""),
        **drop,
    )
    changed = written.will_change or any(op.will_change for op in restart_for)
    reload = not changed and any(op.will_change for op in reload_for)
    if written.will_change:
        systemd.daemon_reload(name=f"Reload systemd for the {unit} drop-in")
    why = ", restarted for the change" if changed else ", reloaded for the new config" if reload else ""
    systemd.service(
        name=f"{unit} enabled and running{why}",
        service=f"{unit}.service",
        running=True,
        enabled=True,
        restarted=changed,
        reloaded=reload,
    )


@deploy("tasks/exporters.py: node exporter")
def node_exporter(target: MonitoringTarget) -> None:
    address = host_address(host)
    if not address:
        raise DeployError(f"{host.name}: no address for its exporters (gateway_ip, cache_ip or ssh_hostname)")
    port = target.settings.node_exporter_port
    collectors = " ".join(f"--collector.{name}" for name in NODE_COLLECTORS)
    files.directory(
        name=f"{TEXTFILE_DIR} (the textfile collector's metrics, e.g. the backend probe's)",
        path=TEXTFILE_DIR,
        user="prometheus",
        group="prometheus",
        mode="755",
    )
    hardened_service(
        NODE_EXPORTER,
        NODE_EXPORTER,
        NODE_EXPORTER,
        target,
        # AF_NETLINK: the netdev collector reads the interfaces' counters over netlink.
        families="AF_INET AF_INET6 AF_NETLINK AF_UNIX",
        exec_start=f"/usr/bin/{NODE_EXPORTER} --web.listen-address={address}:{port} "
        f"--collector.disable-defaults {collectors} "
        f"--collector.filesystem.fs-types-exclude={FS_TYPES_EXCLUDE} "
        f"--collector.textfile --collector.textfile.directory={TEXTFILE_DIR}",
    )


REDIS_EXPORTER_ENV = "/etc/default/hx-redis-exporter"


def prometheus_secret(path: str, content_source, what: str):
    """A root:prometheus 640 file holding a secret (hxops.security.secret_file); returns the
    content operation (its change restarts the service that reads it)."""
    written = secret_file(
        name=f"Install {what} in {path} (value not shown)",
        path=path,
        group="prometheus",
        content_source=content_source,
        what=what,
    )
    files.file(name=f"{path} is root:prometheus 640", path=path, user="root", group="prometheus", mode="640")
    return written


@deploy("tasks/exporters.py: redis exporter")
def redis_exporter(target: MonitoringTarget, cache, password: str) -> None:
    """prometheus-redis-exporter on the cache host: Redis's own numbers (and redis_up), with the
    password from a root:prometheus 640 file (REDIS_PASSWORD, the variable the exporter reads)."""
    env = prometheus_secret(REDIS_EXPORTER_ENV, lambda: f"REDIS_PASSWORD={password}\n", "the Redis password")
    hardened_service(
        REDIS_EXPORTER,
        REDIS_EXPORTER,
        REDIS_EXPORTER,
        target,
        environment_file=REDIS_EXPORTER_ENV,
        restart_for=[env],
        exec_start=f"/usr/bin/{REDIS_EXPORTER} -web.listen-address {cache.cache_ip}:"
        f"{target.settings.redis_exporter_port} -redis.addr redis://{cache.cache_ip}:{cache.redis_port}",
    )
