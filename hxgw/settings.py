"""Validate the non-catalogue deploy settings (paths, user, network, versions, switches).

parse_settings() reads only the keys below from the data it is given, so the caller can
pass host.data-like mappings; a key that is missing or None takes its default (or is
reported if required). All problems are raised together in one ConfigError.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hxgw.catalogue import ConfigError, describe, did_you_mean, is_int

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
    for key in ("backend_check_strict", "validation_strict", "force"):
        fields[key] = _check_bool(key, value(key), report)
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
