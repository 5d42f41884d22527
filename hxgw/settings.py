"""The deploy's settings (host data keys other than the catalogue), each declared once: name,
type, default, description and messages, on pydantic v2. `group_data/all.py` sets only what the
fleet chooses; everything else takes the default declared here.

parse_settings() reads only the keys declared below from the data it is given, so the caller can
pass host.data-like mappings; a key that is missing or None takes its default (or is reported if
required). All problems are raised together in one ConfigError, one line per key, each naming
the key and the fix. The README's settings table is generated from these declarations
(`python -m hxgw.settings_doc`).
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from hxgw import host_rules
from hxgw.errors import ConfigError, text_problem  # noqa: F401 - ConfigError: old import path
from hxgw.install import INSTALLERS, effective_installer
from hxgw.refused_versions import refusal
from hxgw.router_settings import ROUTER_KEYS, parse_router_settings  # noqa: F401 - old import path
from hxgw.schema import escape, fix_of, messages, problem
from hxgw.serving import LOG_LEVELS, MIN_REQUESTS_BEFORE_RESTART, RECYCLING_REFUSED_BECAUSE
from hxgw.setting_fields import IPv4Text, boolean, integer, ipv4_text, seconds, validate_section

UNIT_NAME = "hx-litellm-gateway.service"
INSTALL_SOURCES = ("wheelhouse", "index")
SERVICE_USER_PATTERN = r"^[a-z_][a-z0-9_-]{0,31}$"
VERSION_PATTERN = r"^[0-9]+\.[0-9]+\.[0-9]+$"
FLEET_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
EXAMPLE_GATEWAY_IP = "192.168.10.39"

# base_dir is written unquoted into systemd units and shell scripts, so only characters
# that need no quoting there are allowed (no spaces, quotes, $, backticks, %, ;, ...).
_SAFE_PATH_RE = re.compile(r"^[A-Za-z0-9._+@/-]+$")
_BASE_DIR_FIX = "set base_dir to an absolute path such as '/opt/hx'"
_SERVICE_USER_RULE = (
    f"{{shown}} is not a valid system user name; it must match {escape(SERVICE_USER_PATTERN)} (lower case, "
    "digits, '_' or '-', at most 32 characters), e.g. 'hx-gateway'"
)
_FLEET_NAME_RULE = (
    f"{{shown}} is not a fleet name; it must match {escape(FLEET_NAME_PATTERN)} (lower case, digits, "
    "'.', '_' or '-'; it names a directory), e.g. 'production'"
)
_VERSION_RULE = f"{{shown}} is not X.Y.Z ({VERSION_PATTERN}); {{fix}}"
_INSTALL_SOURCE_RULE = "{shown}{hint} is not supported; {fix}"


class Settings(BaseModel):
    """Validated deploy settings of one gateway host; build them with parse_settings()."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    base_dir: str = Field(
        description="Where everything of the gateway lives on the host (venvs, config, scripts, logs). "
        "The deploy owns and re-permissions this whole tree.",
        json_schema_extra=messages(_BASE_DIR_FIX, wrong_type="must be a string, got {got}; {fix}"),
    )
    gateway_ip: IPv4Text = ipv4_text(
        None,
        "The LAN IPv4 address this gateway serves on and must own (the identity guard checks it).",
        "set the host data key gateway_ip to the gateway's LAN IPv4 address, "
        f"e.g. gateway_ip = {EXAMPLE_GATEWAY_IP!r}",
    )
    litellm_version: str = Field(
        pattern=VERSION_PATTERN,
        description="The exact LiteLLM release; it must match the pin in requirements/gateway.lock "
        "(`make lock LITELLM=X.Y.Z` sets both) or a release locked beside it in "
        "requirements/gateway-X.Y.Z.lock (`make lock LITELLM=X.Y.Z BESIDE=1`). "
        "Releases in requirements/refused-litellm.toml are refused.",
        json_schema_extra=messages(
            "pin an exact LiteLLM release, e.g. litellm_version = '1.108.7'", _VERSION_RULE, _VERSION_RULE
        ),
    )
    service_user: str = Field(
        "hx-gateway",
        pattern=SERVICE_USER_PATTERN,
        description="The no-login system account the proxy runs as; the deploy creates it. "
        "Never an existing account.",
        json_schema_extra=messages("", _SERVICE_USER_RULE, _SERVICE_USER_RULE),
    )
    fleet_name: str = Field(
        "default",
        pattern=FLEET_NAME_PATTERN,
        description="Names the fleet (the `gateways` group and its load balancer): the control machine "
        "keeps the fleet's one master key under this name (hxops/secret_store.py). Give each fleet "
        "deployed from one control machine its own.",
        json_schema_extra=messages("", _FLEET_NAME_RULE, _FLEET_NAME_RULE),
    )
    listen_host: IPv4Text = ipv4_text(
        "0.0.0.0",
        "The address the proxy listens on: '0.0.0.0', gateway_ip, or 127.0.0.1 (host only).",
        "use '0.0.0.0' for all interfaces or one of the host's IPv4 addresses",
    )
    port: int = integer(4000, 1, 65535, "The proxy's TCP port.", "e.g. port = 4000")
    num_workers: int | None = integer(
        None,
        1,
        64,
        "LiteLLM worker processes (`--num_workers`). Unset: one per CPU of the host (a fact read at "
        "deploy time), as many as its memory holds, at least 2 when it holds 2. Refused when over 4 "
        "per CPU or beyond the host's memory.",
        "e.g. num_workers = 4, or leave it unset (one per CPU)",
    )
    max_requests_before_restart: int = integer(
        0,
        0,
        10**9,
        "Recycle each worker after this many requests (`--max_requests_before_restart`, against "
        "memory growth), staggered by up to a tenth of it; 0: never. Refused for now: with the "
        "locked uvicorn a recycle leaves the worker's slot empty for minutes (hxgw/serving.py).",
        "e.g. max_requests_before_restart = 100000, or 0 (never)",
    )
    log_level: Literal[LOG_LEVELS] = Field(  # type: ignore[valid-type]
        "WARNING",
        description="LiteLLM's log level (`LITELLM_LOG`) in the journal. WARNING keeps the warnings an "
        "operator acts on (a backend in cooldown); DEBUG logs request bodies.",
        json_schema_extra=messages(
            "use one of " + ", ".join(repr(level) for level in LOG_LEVELS),
            _INSTALL_SOURCE_RULE,
            _INSTALL_SOURCE_RULE,
        ),
    )
    access_log: bool = boolean(
        "Write uvicorn's access line (client, request line, status) to the journal for every request."
    )
    install_source: Literal[INSTALL_SOURCES] = Field(  # type: ignore[valid-type]
        "wheelhouse",
        description="'wheelhouse': the control machine builds the wheels and ships them (hosts need "
        "no internet); 'index': hosts install from their own package index (always with pip).",
        json_schema_extra=messages(
            "use 'wheelhouse' (install from pre-built wheels) or 'index' (install from the package index)",
            _INSTALL_SOURCE_RULE,
            _INSTALL_SOURCE_RULE,
        ),
    )
    installer: Literal[INSTALLERS] = Field(  # type: ignore[valid-type]
        "uv",
        description="What installs the venv from the wheelhouse: uv, or pip (the tested fallback).",
        json_schema_extra=messages(
            "use 'uv' (the default) or 'pip'", _INSTALL_SOURCE_RULE, _INSTALL_SOURCE_RULE
        ),
    )
    backend_check_strict: bool = boolean(
        "An unreachable backend or a model not pulled there fails the deploy instead of warning."
    )
    validation_strict: bool = boolean(
        "Models on an unreachable backend fail the validation instead of degrading."
    )
    force: bool = boolean("Go past the identity guard on a host that does not own gateway_ip (also FORCE=1).")
    admin_ui: bool = boolean(
        "Serve LiteLLM's admin UI (/ui and its login routes) without a key; off: those routes answer 401."
    )
    api_docs: bool = boolean(
        "Serve the API docs (/, /redoc, /openapi.json, /swagger) without a key; off: they answer 401."
    )
    master_key_models: bool = boolean(
        "The master key may call models, as the seed's applications do. False: it is the operator's "
        "(admin routes and the deploy's validation only) and applications need client keys "
        '(`clients`, `make client-key`); README "Clients and keys" has the migration.',
        default=True,
    )
    validation_report: str | None = Field(
        None,
        description="Where the validation's JSON report goes ('{host}' is replaced by the host name); "
        "default reports/validation-<host>-<time>.json and -latest.json.",
        json_schema_extra=messages(
            "write a file path such as 'reports/validation-{host}.json', or leave it out",
            wrong_type="must be a file path (text), got {got}; {fix}",
        ),
    )
    validation_ready_timeout: float = seconds(
        10.0, 600, "Seconds the validation waits for /health/readiness.", "e.g. validation_ready_timeout = 30"
    )
    deploy_lock_timeout: float = seconds(
        600.0,
        3600,
        "Seconds a deploy waits for another deploy of the same gateway (its deploy lock) before it "
        "stops that host naming the holder. 600: longer than the slowest healthy deploy (an install, "
        "a start that times out at 180 s and a rollback's own 180 s, and the validation), so a second "
        "deploy waits out any live one and gives up only on one that is stuck.",
        "e.g. deploy_lock_timeout = 900",
    )
    keep_releases: int = integer(
        2,
        1,
        20,
        "Release venvs kept on the host (each ~750 MB): the running one, the last known good one, then "
        "the newest others; older ones are removed after a deploy that passed.",
        "e.g. keep_releases = 2",
    )

    @field_validator("base_dir")
    @classmethod
    def _base_dir_is_safe(cls, raw: str) -> str:
        if not _SAFE_PATH_RE.fullmatch(raw):
            raise problem(
                f"{raw!r} contains characters that are unsafe in systemd units and shell scripts "
                "(whitespace, control characters, quotes, $, backticks, %, ...); use only letters, "
                "digits and . _ + @ - /, e.g. '/opt/hx'"
            )
        if not raw.startswith("/"):
            raise problem(f"{raw!r} is not an absolute path; {_BASE_DIR_FIX}")
        if ".." in raw.split("/"):
            raise problem(
                f"{raw!r} contains a '..' component, so where files land is unclear; "
                f"write the resolved path, {_BASE_DIR_FIX}"
            )
        # normpath keeps a leading '//' (POSIX allows it a special meaning); collapse it too.
        normalised = "/" + posixpath.normpath(raw).lstrip("/")
        if normalised == "/":
            raise problem(f"{raw!r} is the filesystem root; {_BASE_DIR_FIX}")
        harm = host_rules.base_dir_problem(normalised)
        if harm:
            raise problem(harm)
        return normalised

    @field_validator("gateway_ip")
    @classmethod
    def _gateway_ip_is_reachable(cls, address: str) -> str:
        if address == "0.0.0.0":
            fix = fix_of(cls.model_fields["gateway_ip"])
            raise problem(f"'0.0.0.0' is not an address clients can reach; {fix}")
        return address

    @field_validator("service_user")
    @classmethod
    def _service_user_is_ours(cls, name: str) -> str:
        harm = host_rules.service_user_name_problem(name)
        if harm:
            raise problem(harm)
        return name

    @field_validator("validation_report")
    @classmethod
    def _report_path_is_a_file(cls, path: str | None) -> str | None:
        if path is None:
            return None
        fix = "write a file path such as 'reports/validation-{host}.json', or leave it out"
        bad = text_problem(path) if path else "is empty"
        if bad or "\n" in path or path.endswith("/"):
            why = bad or ("holds a newline" if "\n" in path else "ends with '/', so it names a directory")
            raise problem(f"{path!r} {why}; {fix}")
        return path

    # Checks against fields declared earlier (info.data holds those that were valid), so every
    # problem is reported at once. A field validator runs only on a value that was given.
    @field_validator("listen_host")
    @classmethod
    def _listen_host_reaches_clients(cls, listen: str, info: ValidationInfo) -> str:
        gateway_ip = info.data.get("gateway_ip")
        if (
            gateway_ip is None
            or listen in ("0.0.0.0", gateway_ip)
            or ipaddress.IPv4Address(listen).is_loopback
        ):
            return listen
        raise problem(
            f"{listen!r} is not where clients connect (gateway_ip is {gateway_ip!r}); use '0.0.0.0' "
            f"(all interfaces), {gateway_ip!r}, or '127.0.0.1' (only the host itself, behind a local proxy)"
        )

    @field_validator("installer")
    @classmethod
    def _installer_is_used(cls, installer: str, info: ValidationInfo) -> str:
        if installer == "uv" and info.data.get("install_source") == "index":
            raise problem(
                "'uv' would be ignored: uv comes only with the wheelhouse, so install_source 'index' "
                "always installs with pip; remove installer or set install_source = 'wheelhouse'"
            )
        return installer

    @field_validator("max_requests_before_restart")
    @classmethod
    def _recycling_keeps_serving(cls, requests: int, info: ValidationInfo) -> int:
        if 0 < requests < MIN_REQUESTS_BEFORE_RESTART:
            raise problem(
                f"{requests} recycles a worker too often: each recycle is a full LiteLLM start (seconds "
                f"of CPU); set it to {MIN_REQUESTS_BEFORE_RESTART} or more, or 0 (never)"
            )
        if requests and info.data.get("num_workers") == 1:
            # LiteLLM's own warning (proxy_cli.single_worker_max_requests_warning): with one worker
            # uvicorn exits the whole process after N requests, and it exits 0, so
            # Restart=on-failure would not even start it again.
            raise problem(
                f"{requests} with num_workers 1 stops the gateway after {requests} requests (uvicorn "
                "exits instead of recycling its only worker); set num_workers to 2 or more (or leave it "
                "unset), or max_requests_before_restart = 0"
            )
        if requests and RECYCLING_REFUSED_BECAUSE:
            raise problem(f"{requests}: {RECYCLING_REFUSED_BECAUSE}; leave it 0 (the default)")
        return requests

    @field_validator("litellm_version")
    @classmethod
    def _version_is_the_locked_one(cls, version: str, info: ValidationInfo) -> str:
        locked = (info.context or {}).get("locked_litellm_version")
        if not locked:
            return version
        lock_file = (info.context or {}).get("lock_file") or "requirements/gateway.lock"
        # The lock is the one truth; the refused list (requirements/refused-litellm.toml) wins over both.
        if reason := refusal(version):
            raise problem(f"{version!r}: {reason}; pick another release and run `make lock LITELLM=X.Y.Z`")
        if reason := refusal(locked):
            raise problem(f"{lock_file} pins {reason}; run `make lock LITELLM=X.Y.Z` for a safe release")
        if version != locked:
            raise problem(
                f"{version!r} is not the release the venv installs: {lock_file} "
                f"pins litellm {locked}; set litellm_version = {locked!r}, or run "
                f"`make lock LITELLM={version}` to lock and set the new release "
                f"(`make lock LITELLM={version} BESIDE=1` locks it beside the pin)"
            )
        return version

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
    def log_config_file(self) -> str:
        """uvicorn's logging configuration (`--log_config`; hxgw.serving.uvicorn_log_config)."""
        return posixpath.join(self.config_dir, "uvicorn-logging.json")

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
    def effective_installer(self) -> str:
        """The installer that really runs: uv comes only with the wheelhouse."""
        return effective_installer(self.installer, self.install_source == "wheelhouse")

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


SETTING_KEYS = tuple(Settings.model_fields)
REQUIRED = tuple(key for key, field in Settings.model_fields.items() if field.is_required())
DEFAULTS: dict[str, Any] = {key: f.default for key, f in Settings.model_fields.items() if not f.is_required()}


def parse_settings(
    data: Mapping[str, Any], *, locked_litellm_version: str | None = None, lock_file: str | None = None
) -> Settings:
    """Validate the deploy settings in `data` and return Settings, or raise ConfigError listing
    every problem found (one per line). With `locked_litellm_version` (the release pinned in
    `lock_file`, the lock the install uses: hxops.gateway_locks), a litellm_version that the
    install would ignore is refused."""
    context = {"locked_litellm_version": locked_litellm_version, "lock_file": lock_file}
    return validate_section(Settings, "settings", data, context=context)


def locked_litellm_version(lock_text: str) -> str | None:
    """The litellm release pinned in a requirements lock (`litellm==X.Y.Z`), or None."""
    match = re.search(r"^litellm==([0-9][^ \\\n]*)", lock_text, re.MULTILINE)
    return match.group(1) if match else None
