"""The gateway deploy's plan: one typed object per host, built once from its data and passed down.

deploy.py builds a GatewayPlan for the host pyinfra is planning (`gateway_plan(host)`): the data
is checked here, before any step runs, and a mistake stops the whole run before any host is
touched. The steps (tasks/) receive the plan and whatever earlier steps returned; nothing is
kept in module globals. A step that finds the host unfit calls `refuse`, which stops this host's
plan (HostRefused) while the other hosts go on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from pyinfra import logger
from pyinfra.api.exceptions import DeployError, PyinfraError
from pyinfra.operations import python

from hxgw.catalogue import Catalogue, ConfigError, parse_catalogue, spelled_names
from hxgw.clients import gateway_table, parse_clients
from hxgw.secrets import check_master_key
from hxgw.settings import (
    SETTING_KEYS,
    Settings,
    locked_litellm_version,
    parse_router_settings,
    parse_settings,
)
from hxops import client_keys, outcome
from hxops.fleet_key import fleet_master_key
from hxops.front_door import FrontDoor, front_door
from hxops.gateway_locks import GATEWAY_LOCK, display, lock_for
from hxops.monitoring_link import MonitoringTarget, metrics_token, monitoring_target
from hxops.redis_link import ROUTER_KEYS, CacheTarget, cache_target, redis_password, router_redis_settings

CATALOGUE_KEYS = ("backends", "models", "model_groups")


@dataclass(frozen=True)
class GatewayPlan:
    """What the deploy was asked for on one gateway host: checked settings, catalogue, router
    settings, and the fleet's master key (hxops.fleet_key: MASTER_KEY, the one the gateways or
    the control machine hold, or a new one)."""

    host_name: str
    settings: Settings
    catalogue: Catalogue
    router_settings: dict = field(default_factory=dict)
    master_key: str | None = field(default=None, repr=False)  # never printed; the fleet's
    gateway_lock: Path = GATEWAY_LOCK  # what the venv installs: hxops.gateway_locks.lock_for
    cache: CacheTarget | None = None  # the `caches` group's Redis (hxops.redis_link), if any
    redis_password: str | None = field(default=None, repr=False)  # never printed
    master_key_given: bool = False  # from MASTER_KEY: the control machine keeps it once deployed
    front_door: FrontDoor | None = None  # the load balancer the validation checks with the key
    clients: list = field(default_factory=list)  # clients.json: limits and key hashes (hxgw.clients)
    monitoring: MonitoringTarget | None = None  # the `monitoring` group's host (hxops.monitoring_link)
    metrics_token: str | None = field(default=None, repr=False)  # never printed


class HostRefused(Exception):
    """A step refused this host; deploy.py plans no further step for it."""


def _host_values(host, keys) -> dict:
    values = {}
    for key in keys:
        value = host.data.get(key)
        if value is not None:
            values[key] = value
    return values


def _settings(host) -> tuple[Settings, Path]:
    """The host's checked settings and the lock its venv installs; raises ConfigError."""
    settings_data = _host_values(host, SETTING_KEYS)
    if os.environ.get("FORCE") == "1":
        settings_data["force"] = True
    lock = lock_for(settings_data.get("litellm_version"))
    locked = locked_litellm_version(lock.read_text())
    settings = parse_settings(settings_data, locked_litellm_version=locked, lock_file=display(lock))
    return settings, lock


def _settings_or_none(host) -> Settings | None:
    try:
        return _settings(host)[0]
    except (ConfigError, DeployError, OSError):
        return None  # its own plan reports it


def gateway_plan(host, deploying: bool = True) -> GatewayPlan:
    """Validate this host's settings, catalogue and master key, and decide the fleet's key; raise
    DeployError if bad. `deploying` False (the validation alone): never generate a key."""
    problems = []
    settings = None
    lock = lock_for(host.data.get("litellm_version"))
    try:
        settings, lock = _settings(host)
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
    names = None  # unknown while the catalogue's names are bad: the clients are checked once it is fixed
    try:
        names = spelled_names(catalogue_data.get("models"), catalogue_data.get("model_groups"))
        router = parse_router_settings(host.data.get("router_settings"), model_names=names)
    except ConfigError as error:
        problems.extend(error.problems)
    clients = _clients(host, names, problems) if names is not None else []
    cache = cache_target(host.inventory)
    if cache is not None:
        clash = sorted(key for key in ROUTER_KEYS if key in router)
        if clash:
            problems.append(
                f"router_settings: {', '.join(clash)} would override the `caches` group's Redis "
                f"({cache.host_name}); remove them (the deploy points the gateways at the cache host)"
            )
        router = {**router, **router_redis_settings(cache)}
    if problems:
        raise DeployError(
            f"{host.name}: the deploy's data has {len(problems)} problem(s); nothing was changed "
            "on any host:\n  - " + "\n  - ".join(problems)
        )
    password = redis_password() if cache is not None else None
    monitoring = monitoring_target(host.inventory)
    token = metrics_token() if monitoring is not None else None
    key = fleet_master_key(host, settings.fleet_name, master_key, _settings_or_none, generate=deploying)
    return GatewayPlan(
        host.name,
        settings,
        catalogue,
        router,
        key,
        lock,
        cache,
        password,
        master_key_given=master_key is not None,
        front_door=front_door(host),
        clients=clients,
        monitoring=monitoring,
        metrics_token=token,
    )


def _clients(host, model_names, problems) -> list:
    """The gateway's client table (hashes only); a client without a key is refused with the fix."""
    try:
        clients, warnings = parse_clients(host.data.get("clients"), model_names)
    except ConfigError as error:
        problems.extend(error.problems)
        return []
    for warning in warnings:
        logger.warning(f"{host.name}: {warning}")
    hashes = client_keys.hashes(c.name for c in clients)
    for client in clients:
        if not hashes[client.name]:
            problems.append(
                f"client {client.name!r} has no key on this control machine "
                f"({client_keys.key_file(client.name)}); make one with "
                f"`make client-key NAME={client.name}` and hand it over"
            )
    return gateway_table(clients, hashes)


def refuse(host, state, reason: str) -> NoReturn:
    """Stop this host here with a clear message; the other hosts go on. Raises HostRefused.

    Called at plan time, before any operation that changes the host. The host is marked failed
    now, so the run exits 1 under --dry too (an operation that raises runs only when executing),
    and the one REFUSED operation carries the reason into the results and --json output.
    """
    logger.error(f"{host.name}: {reason}")
    outcome.record(host, refused=reason, cause=reason)
    python.raise_exception(DeployError, f"{host.name}: {reason}", name=f"REFUSED: {reason.splitlines()[0]}")
    try:
        state.fail_hosts({state.inventory.get_host(host.name)})  # the Host, not pyinfra's context proxy
    except PyinfraError:
        pass  # "No hosts remaining!": every host was refused; the run fails either way
    raise HostRefused(reason)
