"""The gateway's side of the shared router state: the Redis password file, and a check that the
cache host takes it before the gateway restarts onto it (called by tasks/config.py).

Without a `caches` group a left-over redis.env is removed (config.yaml then names no Redis).
"""

from __future__ import annotations

from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, server

from hxops import ops
from hxops.facts import Snapshot
from hxops.plan import GatewayPlan
from hxops.redis_link import auth_probe_command, redis_env_content, redis_env_file
from hxops.security import secret_file


def redis_client(plan: GatewayPlan, snapshot: Snapshot) -> list[OperationMeta]:
    """The redis.env operations (a change means the service must restart)."""
    settings, path = plan.settings, redis_env_file(plan.settings)
    if plan.cache is None or plan.redis_password is None:
        entry = ops.snapshot_of(snapshot, path)
        if entry is None or entry.get("type") is not None:  # there, or the snapshot cannot tell
            files.file(name=f"Remove {path} (no `caches` group)", path=path, present=False)
        return []
    password = plan.redis_password
    written = secret_file(
        name=f"Install the Redis password in {path} (value not shown)",
        path=path,
        group=settings.service_user,
        content_source=lambda: redis_env_content(password),
        what="the Redis password",
    )
    ops.file(
        name=f"{path} is root:group 640",
        path=path,
        user="root",
        group=settings.service_user,
        mode="640",
        snapshot=snapshot,
    )
    return [written]


def check_redis_password(plan: GatewayPlan) -> None:
    """Before a restart: the cache host must take the password the gateway will use."""
    if plan.cache is None:
        return
    where = f"Redis at {plan.cache.settings.cache_ip}:{plan.cache.settings.redis_port}"
    # Unreachable is a warning (the gateways serve without Redis, each worker on its own state);
    # a refused password is an error, before anything restarts onto it.
    server.shell(
        name=f"The Redis on {plan.cache.host_name} takes the gateway's password",
        commands=[
            f'out=$({auth_probe_command(plan.settings, plan.cache)}); case "$out" in OK) ;; '
            f'UNREACHABLE*) echo "WARNING: {where} cannot be reached from this gateway (${{out#* }}); it '
            'keeps its router state in memory until Redis answers" >&2 ;; '
            f"*) echo \"FAILED: {where} refused the gateway's Redis password (${{out#* }}); the gateway "
            "was not restarted. Deploy the cache host together with the gateways, or set REDIS_PASSWORD "
            "to the cache host's password\" >&2; exit 1 ;; esac"
        ],
    )
