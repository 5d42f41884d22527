"""The gateway's side of the shared router state: the Redis password file, and a check that the
cache host takes it before the gateway restarts onto it (called by tasks/config.py).

Without a `caches` group a left-over redis.env is removed (config.yaml then names no Redis).
"""

from __future__ import annotations

import shlex

from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, server

from hxops import ops
from hxops.facts import Snapshot
from hxops.plan import GatewayPlan
from hxops.redis_link import PASSWORD_VARIABLE, redis_env_content, redis_env_file
from hxops.security import secret_file

# Runs on the gateway host: AUTH with the password from redis.env (never in a command line).
# Unreachable is a warning (the gateways serve without Redis, each worker on its own state);
# a refused password is an error, before anything restarts onto it.
_CHECK = """
import socket, sys
env, variable, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
where = f"Redis at {host}:{port}"
password = next(l.split("=", 1)[1].strip() for l in open(env) if l.startswith(variable + "="))
try:
    sock = socket.create_connection((host, port), timeout=3)
    sock.sendall(b"*2\\r\\n$4\\r\\nAUTH\\r\\n$%d\\r\\n%s\\r\\n" % (len(password), password.encode()))
    answer = sock.recv(256).decode(errors="replace").strip()
except OSError as error:
    print(f"WARNING: {where} cannot be reached from this gateway ({error}); it will keep its router "
          "state in memory until Redis answers", file=sys.stderr)
    sys.exit(0)
if answer != "+OK":
    print(f"FAILED: {where} refused the gateway's Redis password ({answer.split(' ')[0] or 'no answer'}); "
          "the gateway was not restarted. Deploy the cache host together with the gateways, or set "
          "REDIS_PASSWORD to the cache host's password", file=sys.stderr)
    sys.exit(1)
"""


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
    cache = plan.cache.settings
    args = [redis_env_file(plan.settings), PASSWORD_VARIABLE, cache.cache_ip, str(cache.redis_port)]
    server.shell(
        name=f"The Redis on {plan.cache.host_name} takes the gateway's password",
        commands=[f"python3 -c {shlex.quote(_CHECK)} {' '.join(shlex.quote(a) for a in args)}"],
    )
