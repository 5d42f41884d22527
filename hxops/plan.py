"""Per-host plan state shared by deploy.py and the task files.

pyinfra runs deploy.py (and every file it includes) once per host at plan time. Decisions that
one task makes and a later one needs (stop here, restart because the config changed, which
backends were unreachable) live in a HostPlan keyed by host name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from pyinfra.api.exceptions import DeployError

from hxgw.catalogue import Catalogue, ConfigError, parse_catalogue, spelled_names
from hxgw.secrets import check_master_key
from hxgw.settings import (
    SETTING_KEYS,
    Settings,
    locked_litellm_version,
    parse_router_settings,
    parse_settings,
)
from hxops.wheelhouse import GATEWAY_LOCK

CATALOGUE_KEYS = ("backends", "models", "model_groups")


@dataclass
class HostPlan:
    settings: Settings
    catalogue: Catalogue
    router_settings: dict
    master_key: str | None
    stopped: bool = False
    facts: dict = field(default_factory=dict)
    release: Any = None  # hxops.wheelhouse.Release, set by the preflight
    # Operations whose change means the running service must restart to pick it up.
    restart_triggers: list = field(default_factory=list)
    unreachable_backends: dict = field(default_factory=dict)
    missing_models: dict = field(default_factory=dict)
    # Set when FORCE took the host past the identity guard: it does not own gateway_ip, so the
    # validation calls the address the deploy reached it by instead.
    forced_api_url: str | None = None

    @property
    def api_url(self) -> str:
        return self.forced_api_url or self.settings.public_url

    def restart_needed(self) -> bool:
        return any(op.will_change for op in self.restart_triggers)


_plans: dict[str, HostPlan] = {}


def _host_values(host, keys) -> dict[str, Any]:
    values = {}
    for key in keys:
        value = host.data.get(key)
        if value is not None:
            values[key] = value
    return values


def for_host(host) -> HostPlan:
    """Validate this host's settings, catalogue and master key once; raise DeployError if bad."""
    if host.name in _plans:
        return _plans[host.name]
    problems = []
    settings_data = _host_values(host, SETTING_KEYS)
    if os.environ.get("FORCE") == "1":
        settings_data["force"] = True
    try:
        settings = parse_settings(
            settings_data, locked_litellm_version=locked_litellm_version(GATEWAY_LOCK.read_text())
        )
    except ConfigError as error:
        problems.extend(error.problems)
    catalogue_data = _host_values(host, CATALOGUE_KEYS)
    try:
        catalogue = parse_catalogue(
            catalogue_data.get("backends"),
            catalogue_data.get("models"),
            catalogue_data.get("model_groups", []),
        )
    except ConfigError as error:
        problems.extend(error.problems)
    master_key = os.environ.get("MASTER_KEY") or None
    if master_key is not None:
        try:
            check_master_key(master_key)
        except ConfigError as error:
            problems.extend(f"MASTER_KEY: {p}" for p in error.problems)
    router = {}
    try:
        names = spelled_names(catalogue_data.get("models"), catalogue_data.get("model_groups"))
        router = parse_router_settings(host.data.get("router_settings"), model_names=names)
    except ConfigError as error:
        problems.extend(error.problems)
    if problems:
        raise DeployError(
            f"{host.name}: the deploy's data has {len(problems)} problem(s); nothing was changed "
            "on any host:\n  - " + "\n  - ".join(problems)
        )
    plan = HostPlan(settings, catalogue, router, master_key)
    _plans[host.name] = plan
    return plan


def reset() -> None:
    """Forget every host's plan (tests run several deploys in one process)."""
    _plans.clear()


def refuse(host, reason: str) -> None:
    """Stop this host here with a clear message; the other hosts go on.

    Called at plan time, before any operation that changes the host, so nothing changes on it.
    """
    from pyinfra import logger
    from pyinfra.operations import python

    host_plan = for_host(host)
    host_plan.stopped = True
    logger.error(f"{host.name}: {reason}")
    python.raise_exception(DeployError, f"{host.name}: {reason}", name=f"REFUSED: {reason.splitlines()[0]}")
