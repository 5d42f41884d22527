"""Where the gateways find Redis (the host of the inventory's `caches` group) and its password.

Without a `caches` group nothing here is used and the gateways keep their router state in each
worker's memory, as before. With one, the gateways' router_settings get redis_host, redis_port
and `redis_password: os.environ/REDIS_PASSWORD` (host/port rather than a URL, as LiteLLM's docs
recommend), and the password goes into `redis.env` beside gateway.env (root:service group 640).

The password is handled like the master key: REDIS_PASSWORD on the control machine, else the one
generated at the first deploy and kept in a root-only file on the control machine (the cache host
and every gateway need the same one, so it cannot be made on one host alone); it travels only
over SFTP (hxops.security.secret_file) and is never printed.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from dataclasses import dataclass
from pathlib import Path

from hxgw.cache_settings import CacheSettings, check_redis_password, parse_cache_settings
from hxgw.settings import Settings
from hxops.kept_secret import kept_secret
from hxops.role_host import only_host

PASSWORD_VARIABLE = "REDIS_PASSWORD"
ROUTER_KEYS = ("redis_url", "redis_host", "redis_port", "redis_password")


@dataclass(frozen=True)
class CacheTarget:
    host_name: str
    settings: CacheSettings


def password_file() -> Path:
    return Path(
        os.environ.get("HX_REDIS_PASSWORD_FILE") or "~/.config/hx-gateway/redis-password"
    ).expanduser()


def redis_password() -> str:
    """REDIS_PASSWORD if set (checked), else the kept one, generated (root-only file) the first time."""
    return kept_secret(PASSWORD_VARIABLE, password_file(), check_redis_password)


def cache_target(inventory) -> CacheTarget | None:
    """The inventory's one cache host and its checked settings, or None without a `caches` group."""
    found = only_host(
        inventory,
        "caches",
        "the gateways share ONE Redis: keep one host in `caches`",
        "cache host",
        parse_cache_settings,
    )
    return CacheTarget(*found) if found else None


def router_redis_settings(target: CacheTarget) -> dict:
    return {
        "redis_host": target.settings.cache_ip,
        "redis_port": target.settings.redis_port,
        "redis_password": f"os.environ/{PASSWORD_VARIABLE}",
    }


# Runs on a gateway host: AUTH with the password from redis.env (never in a command line), then
# PING. Prints one line: OK, UNREACHABLE <why> or REFUSED <Redis's answer>; exit 1 only if refused.
AUTH_PROBE = """
import socket, sys
env, variable, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
password = next(l.split("=", 1)[1].strip() for l in open(env) if l.startswith(variable + "="))
try:
    sock = socket.create_connection((host, port), timeout=3)
    sock.settimeout(3)
    sock.sendall(b"*2\\r\\n$4\\r\\nAUTH\\r\\n$%d\\r\\n%s\\r\\n*1\\r\\n$4\\r\\nPING\\r\\n"
                 % (len(password), password.encode()))
    answer = b""
    while answer.count(b"\\r\\n") < 2 and not answer.startswith(b"-"):
        chunk = sock.recv(256)
        if not chunk:
            break
        answer += chunk
except OSError as error:
    print(f"UNREACHABLE {error}")
    sys.exit(0)
if answer.split() == [b"+OK", b"+PONG"]:
    print("OK")
    sys.exit(0)
print("REFUSED " + (answer.decode(errors="replace").split(" ")[0].strip() or "no answer"))
sys.exit(1)
"""


def auth_probe_command(settings: Settings, target: CacheTarget) -> str:
    cache = target.settings
    args = [redis_env_file(settings), PASSWORD_VARIABLE, cache.cache_ip, str(cache.redis_port)]
    return f"python3 -c {shlex.quote(AUTH_PROBE)} {' '.join(shlex.quote(a) for a in args)}"


def redis_env_file(settings: Settings) -> str:
    return posixpath.join(settings.config_dir, "redis.env")


def redis_env_content(password: str) -> str:
    return f"{PASSWORD_VARIABLE}={password}\n"
