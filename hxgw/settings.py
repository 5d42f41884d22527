"""Validate the non-catalogue deploy settings (paths, user, network, versions, switches).

parse_settings() reads only the keys below from the data it is given, so the caller can
pass host.data-like mappings; a key that is missing or None takes its default (or is
reported if required). All problems are raised together in one ConfigError.
"""

from __future__ import annotations

import ipaddress
import math
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hxgw.catalogue import ConfigError, describe, did_you_mean, is_int, text_problem

UNIT_NAME = "hx-litellm-gateway.service"
INSTALL_SOURCES = ("wheelhouse", "index")
SERVICE_USER_PATTERN = r"^[a-z_][a-z0-9_-]{0,31}$"
VERSION_PATTERN = r"^[0-9]+\.[0-9]+\.[0-9]+$"
EXAMPLE_GATEWAY_IP = "192.168.10.39"

# base_dir is written unquoted into systemd units and shell scripts, so only characters
# that need no quoting there are allowed (no spaces, quotes, $, backticks, %, ;, ...).
_SAFE_PATH_RE = re.compile(r"^[A-Za-z0-9._+@/-]+$")
_SERVICE_USER_RE = re.compile(SERVICE_USER_PATTERN)
_VERSION_RE = re.compile(VERSION_PATTERN)

DEFAULTS: dict[str, Any] = {
    "service_user": "hx-gateway",
    "listen_host": "0.0.0.0",
    "port": 4000,
    "num_workers": 1,
    "backend_check_strict": False,
    "validation_strict": False,
    "force": False,
    "install_source": "wheelhouse",
    # LiteLLM's admin UI (/ui) and API docs (/, /redoc, /openapi.json) answer without a key: off.
    "admin_ui": False,
    "api_docs": False,
}
# report(key, message): records one problem about one settings key.
Report = Callable[[str, str], None]

REQUIRED = ("base_dir", "gateway_ip", "litellm_version")
SETTING_KEYS = REQUIRED + tuple(DEFAULTS)


@dataclass(frozen=True)
class Settings:
    """Validated deploy settings; build them with parse_settings(), not directly."""

    base_dir: str
    gateway_ip: str
    litellm_version: str
    service_user: str = DEFAULTS["service_user"]
    listen_host: str = DEFAULTS["listen_host"]
    port: int = DEFAULTS["port"]
    num_workers: int = DEFAULTS["num_workers"]
    backend_check_strict: bool = DEFAULTS["backend_check_strict"]
    validation_strict: bool = DEFAULTS["validation_strict"]
    force: bool = DEFAULTS["force"]
    install_source: str = DEFAULTS["install_source"]
    admin_ui: bool = DEFAULTS["admin_ui"]
    api_docs: bool = DEFAULTS["api_docs"]

    @property
    def gateway_dir(self) -> str:
        return posixpath.join(self.base_dir, "gateway")

    @property
    def venv_root(self) -> str:
        """Where versioned virtualenvs live side by side."""
        return posixpath.join(self.gateway_dir, "venvs")

    @property
    def venv_link(self) -> str:
        """Symlink to the active virtualenv, switched atomically on upgrade."""
        return posixpath.join(self.gateway_dir, "venv")

    @property
    def config_dir(self) -> str:
        return posixpath.join(self.base_dir, "config", "api-gateway")

    @property
    def config_file(self) -> str:
        return posixpath.join(self.config_dir, "config.yaml")

    @property
    def env_file(self) -> str:
        return posixpath.join(self.config_dir, "gateway.env")

    @property
    def scripts_dir(self) -> str:
        return posixpath.join(self.base_dir, "scripts", "service", "api-gateway")

    @property
    def log_dir(self) -> str:
        return posixpath.join(self.base_dir, "logs", "services")

    @property
    def unit_name(self) -> str:
        return UNIT_NAME

    @property
    def local_url(self) -> str:
        """URL for checks run on the gateway host itself (0.0.0.0 is not connectable)."""
        host = "127.0.0.1" if self.listen_host == "0.0.0.0" else self.listen_host
        return f"http://{host}:{self.port}"

    @property
    def public_url(self) -> str:
        """URL clients on the network use."""
        return f"http://{self.gateway_ip}:{self.port}"

    @property
    def loopback_only(self) -> bool:
        """The gateway answers only on the host itself (listen_host 127.x): a local reverse proxy
        or an SSH tunnel is its only way in, and the control machine cannot reach public_url."""
        return ipaddress.IPv4Address(self.listen_host).is_loopback


def parse_settings(data: Mapping[str, Any]) -> Settings:
    """Validate the deploy settings in `data` and return Settings, or raise ConfigError
    listing every problem found (one per line)."""
    problems: list[str] = []

    def value(key: str) -> Any:
        found = data.get(key)
        return DEFAULTS.get(key) if found is None else found

    def report(key: str, message: str) -> None:
        problems.append(f"settings: {key} {message}")

    fields = {
        "base_dir": _check_base_dir(value("base_dir"), report),
        "gateway_ip": _check_gateway_ip(value("gateway_ip"), report),
        "litellm_version": _check_version(value("litellm_version"), report),
        "service_user": _check_service_user(value("service_user"), report),
        "listen_host": _check_listen_host(value("listen_host"), report),
        "port": _check_int("port", value("port"), 1, 65535, "e.g. port = 4000", report),
        "num_workers": _check_int("num_workers", value("num_workers"), 1, 64, "e.g. num_workers = 1", report),
        "install_source": _check_install_source(value("install_source"), report),
    }
    for key in ("backend_check_strict", "validation_strict", "force", "admin_ui", "api_docs"):
        fields[key] = _check_bool(key, value(key), report)
    _check_listen_host_reaches_clients(fields["listen_host"], fields["gateway_ip"], report)
    if problems:
        raise ConfigError(problems)
    return Settings(**fields)


def _shown(raw: Any) -> str:
    """A bad value for a message: just quoted if it is a string, else with its type."""
    return repr(raw) if isinstance(raw, str) else describe(raw)


def _check_base_dir(raw: Any, report: Report) -> str | None:
    fix = "set base_dir to an absolute path such as '/opt/hx'"
    if raw is None:
        report("base_dir", f"is not set; {fix}")
        return None
    if not isinstance(raw, str):
        report("base_dir", f"must be a string, got {describe(raw)}; {fix}")
        return None
    if not _SAFE_PATH_RE.fullmatch(raw):
        report(
            "base_dir",
            f"{raw!r} contains characters that are unsafe in systemd units and shell scripts "
            "(whitespace, control characters, quotes, $, backticks, %, ...); use only letters, "
            f"digits and . _ + @ - /, e.g. '/opt/hx'",
        )
        return None
    if not raw.startswith("/"):
        report("base_dir", f"{raw!r} is not an absolute path; {fix}")
        return None
    if ".." in raw.split("/"):
        report(
            "base_dir",
            f"{raw!r} contains a '..' component, so where files land is unclear; "
            f"write the resolved path, {fix}",
        )
        return None
    # normpath keeps a leading '//' (POSIX allows it a special meaning); collapse it too.
    normalised = "/" + posixpath.normpath(raw).lstrip("/")
    if normalised == "/":
        report("base_dir", f"{raw!r} is the filesystem root; {fix}")
        return None
    return normalised


def _check_ipv4(key: str, raw: Any, fix: str, report: Report) -> str | None:
    """The canonical text of an IPv4 address, or None after reporting why."""
    if not isinstance(raw, str):
        report(key, f"must be an IPv4 address string, got {describe(raw)}; {fix}")
        return None
    try:
        return str(ipaddress.IPv4Address(raw))
    except ValueError:
        report(key, f"{raw!r} is not an IPv4 address (four numbers 0-255 joined by '.'); {fix}")
        return None


def _check_gateway_ip(raw: Any, report: Report) -> str | None:
    fix = (
        "set the host data key gateway_ip to the gateway's LAN IPv4 address, "
        f"e.g. gateway_ip = {EXAMPLE_GATEWAY_IP!r}"
    )
    if raw is None:
        report("gateway_ip", f"is not set; {fix}")
        return None
    address = _check_ipv4("gateway_ip", raw, fix, report)
    if address == "0.0.0.0":
        report("gateway_ip", f"'0.0.0.0' is not an address clients can reach; {fix}")
        return None
    return address


def _check_listen_host(raw: Any, report: Report) -> str | None:
    fix = "use '0.0.0.0' for all interfaces or one of the host's IPv4 addresses"
    return _check_ipv4("listen_host", raw, fix, report)


def _check_listen_host_reaches_clients(listen: str | None, gateway_ip: str | None, report: Report) -> None:
    """Clients reach the gateway at gateway_ip: listening on another address would miss them."""
    if listen is None or gateway_ip is None:
        return
    if listen in ("0.0.0.0", gateway_ip) or ipaddress.IPv4Address(listen).is_loopback:
        return
    report(
        "listen_host",
        f"{listen!r} is not where clients connect (gateway_ip is {gateway_ip!r}); use '0.0.0.0' "
        f"(all interfaces), {gateway_ip!r}, or '127.0.0.1' (only the host itself, behind a local proxy)",
    )


def _check_version(raw: Any, report: Report) -> str | None:
    fix = "pin an exact LiteLLM release, e.g. litellm_version = '1.74.9'"
    if raw is None:
        report("litellm_version", f"is not set; {fix}")
        return None
    if not isinstance(raw, str) or not _VERSION_RE.fullmatch(raw):
        report("litellm_version", f"{_shown(raw)} is not X.Y.Z ({VERSION_PATTERN}); {fix}")
        return None
    return raw


def _check_service_user(raw: Any, report: Report) -> str | None:
    if not isinstance(raw, str) or not _SERVICE_USER_RE.fullmatch(raw):
        report(
            "service_user",
            f"{_shown(raw)} is not a valid system user name; it must match "
            f"{SERVICE_USER_PATTERN} (lower case, digits, '_' or '-', at most 32 characters), "
            f"e.g. {DEFAULTS['service_user']!r}",
        )
        return None
    return raw


def _check_int(key: str, raw: Any, low: int, high: int, example: str, report: Report) -> int | None:
    if not is_int(raw):
        report(
            key,
            f"must be an integer from {low} to {high}, got {describe(raw)}; "
            f"write a bare number (no quotes, not True/False), {example}",
        )
        return None
    if not low <= raw <= high:
        report(key, f"{raw} is out of range; it must be from {low} to {high}, {example}")
        return None
    return raw


def _check_bool(key: str, raw: Any, report: Report) -> bool | None:
    if not isinstance(raw, bool):
        report(key, f"must be True or False, got {describe(raw)}; write {key} = True (no quotes)")
        return None
    return raw


def _check_install_source(raw: Any, report: Report) -> str | None:
    if not isinstance(raw, str) or raw not in INSTALL_SOURCES:
        hint = did_you_mean(raw, INSTALL_SOURCES) if isinstance(raw, str) else ""
        report(
            "install_source",
            f"{_shown(raw)}{hint} is not supported; use 'wheelhouse' (install from pre-built "
            "wheels) or 'index' (install from the package index)",
        )
        return None
    return raw


# LiteLLM's Router() keyword arguments (litellm 1.108.7, `Router.__init__`): the only keys the
# proxy passes on from router_settings; it silently drops any other (the seed's `model_group`).
# model_list is left out on purpose: the deploy writes it from the catalogue.
ROUTER_KEYS = (
    "assistants_config", "search_tools", "guardrail_list", "redis_url", "redis_host", "redis_port",
    "redis_password", "redis_db", "cache_responses", "cache_kwargs", "caching_groups", "client_ttl",
    "polling_interval", "default_priority", "num_retries", "max_fallbacks", "timeout",
    "stream_timeout", "default_litellm_params", "default_max_parallel_requests", "set_verbose",
    "debug_level", "default_fallbacks", "fallbacks", "context_window_fallbacks",
    "content_policy_fallbacks", "model_group_alias", "enable_pre_call_checks",
    "enable_tag_filtering", "tag_filtering_match_any", "tag_routing_prefix", "plugins",
    "retry_after", "retry_policy", "model_group_retry_policy", "allowed_fails",
    "allowed_fails_policy", "cooldown_time", "disable_cooldowns", "fallback_on_unsupported_params",
    "routing_strategy", "optional_pre_call_checks", "routing_strategy_args", "routing_groups",
    "provider_budget_config", "alerting_config", "router_general_settings",
    "deployment_affinity_ttl_seconds", "model_group_affinity_config", "ignore_invalid_deployments",
    "enable_health_check_routing", "health_check_staleness_threshold",
    "health_check_ignore_transient_errors", "background_health_check_model_groups",
    "enable_weighted_failover", "fallback_access_check", "fallback_budget_check",
    "auto_router_capability_limit",
)  # fmt: skip


def parse_router_settings(raw: Any) -> dict[str, Any]:
    """Validate router_settings: a dict of known Router() arguments whose values are plain data
    (text, numbers, booleans, None, lists and dicts of those). Text may hold any printable
    character; the template JSON-quotes every value. Raise ConfigError listing every problem."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            [
                f"router_settings must be a dict of LiteLLM Router() arguments, got {describe(raw)}; "
                "write router_settings = {'routing_strategy': 'simple-shuffle', ...}"
            ]
        )
    problems = []
    for key, value in raw.items():
        if key == "model_list":
            problems.append(
                "router_settings: key 'model_list' is written by the deploy from the catalogue; "
                "remove it and describe models under models and model_groups"
            )
            continue
        if not isinstance(key, str) or key not in ROUTER_KEYS:
            hint = did_you_mean(key, ROUTER_KEYS) if isinstance(key, str) else ""
            problems.append(
                f"router_settings: unknown key {_shown(key)}{hint}; LiteLLM would silently ignore it: "
                "rename or remove it (keys are LiteLLM 1.108.7 Router() arguments, e.g. "
                "routing_strategy, num_retries, timeout, allowed_fails, cooldown_time, fallbacks, "
                "model_group_alias)"
            )
            continue
        bad = _plain_data_problem(value)
        if bad:
            problems.append(
                f"router_settings: {key} {bad}; use text, numbers, True/False, None, "
                "or lists and dicts of those"
            )
    if problems:
        raise ConfigError(problems)
    return dict(raw)


def _plain_data_problem(value: Any, depth: int = 0) -> str | None:
    """Why a value cannot be written into config.yaml as plain data, or None if it can."""
    if depth > 8:
        return "is nested too deeply"
    if value is None or isinstance(value, bool) or is_int(value):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"is {value!r}, which YAML cannot hold as a number"
    if isinstance(value, str):
        problem = text_problem(value)
        return f"has text that {problem}" if problem else None
    if isinstance(value, (list, tuple)):
        for item in value:
            problem = _plain_data_problem(item, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"has a non-text dict key {describe(key)}"
            problem = text_problem(key) or _plain_data_problem(item, depth + 1)
            if problem:
                return problem
        return None
    return f"holds {describe(value)}, which is not plain data"
