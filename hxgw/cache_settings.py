"""Settings of a cache host (the optional `caches` group: Redis holding the gateways' shared
router state), declared once like hxgw.settings; parse_cache_settings() validates them, and
check_redis_password() the password the deploy gives Redis and the gateways."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from hxgw.errors import ConfigError
from hxgw.setting_fields import IPv4Text, boolean, integer, ipv4_text, validate_section

MIN_PASSWORD_LENGTH = 32
# Nothing a redis.conf line, an EnvironmentFile or the RESP protocol would need quoted.
_PASSWORD_RE = re.compile(r"^[A-Za-z0-9_-]+$")


class CacheSettings(BaseModel):
    """Validated settings of one cache host; build them with parse_cache_settings()."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    cache_ip: IPv4Text = ipv4_text(
        None,
        "The private-network IPv4 address Redis binds to and the gateways connect to.",
        "set cache_ip to the cache host's address on the gateways' network",
    )
    redis_port: int = integer(6379, 1, 65535, "Redis's TCP port.", "e.g. redis_port = 6379")
    redis_persistence: bool = boolean(
        "Keep Redis's data across restarts (RDB snapshots); off: router state (cooldowns, fail "
        "counts, all with short TTLs) starts empty after a restart, which is harmless.",
        False,
    )
    redis_maxmemory_mb: int = integer(
        64,
        8,
        65536,
        "Redis's memory ceiling in MiB; past it the keys nearest their expiry go first.",
        "e.g. redis_maxmemory_mb = 64",
    )


CACHE_SETTING_KEYS = tuple(CacheSettings.model_fields)


def parse_cache_settings(data: Mapping[str, Any]) -> CacheSettings:
    """Validate a cache host's settings in `data`, or raise ConfigError (one line each)."""
    return validate_section(CacheSettings, "settings", data)


def check_redis_password(password: str) -> None:
    """Raise ConfigError naming what is wrong with the password (never the password itself)."""
    what = f"REDIS_PASSWORD ({len(password)} characters)"
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"{what} is too short; it needs at least {MIN_PASSWORD_LENGTH} characters")
    if not _PASSWORD_RE.fullmatch(password):
        problems.append(f"{what} may hold only letters, digits, '_' and '-'")
    if problems:
        problems.append("generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
        raise ConfigError(problems)
