"""Tests for hxgw.settings: defaults, derived paths, and one clear message per bad key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hxgw import settings_doc
from hxgw.catalogue import ConfigError
from hxgw.loadbalancer_settings import LB_SETTING_KEYS, LoadBalancerSettings, parse_loadbalancer_settings
from hxgw.settings import DEFAULTS, SETTING_KEYS, Settings, locked_litellm_version, parse_settings

BASELINE = {"base_dir": "/opt/hx", "gateway_ip": "192.168.10.39", "litellm_version": "1.74.9"}
DELETE = object()  # marks a key to remove from the baseline

UNSAFE_PATH = "unsafe in systemd units and shell scripts"
BASE_DIR_FIX = "'/opt/hx'"
IP_FIX = "set the host data key gateway_ip"
IP_EXAMPLE = "e.g. gateway_ip = '192.168.10.39'"

# (case id, changes to the baseline, substrings that must all appear in ONE problem line:
#  the offending key and the fix)
BAD_CASES = [
    ("base-dir-missing", {"base_dir": DELETE}, ["settings: base_dir is not set", BASE_DIR_FIX]),
    ("base-dir-relative", {"base_dir": "opt/hx"}, ["base_dir 'opt/hx' is not an absolute path", BASE_DIR_FIX]),
    ("base-dir-dotdot", {"base_dir": "/opt/../etc"}, ["base_dir '/opt/../etc' contains a '..' component", BASE_DIR_FIX]),
    ("base-dir-root", {"base_dir": "/"}, ["base_dir '/' is the filesystem root", BASE_DIR_FIX]),
    ("base-dir-root-dot", {"base_dir": "/./"}, ["base_dir '/./' is the filesystem root", BASE_DIR_FIX]),
    ("base-dir-space", {"base_dir": "/opt/hx gw"}, ["base_dir '/opt/hx gw'", UNSAFE_PATH, BASE_DIR_FIX]),
    ("base-dir-quote", {"base_dir": "/opt/hx'gw"}, ["base_dir \"/opt/hx'gw\"", UNSAFE_PATH, BASE_DIR_FIX]),
    ("base-dir-dquote", {"base_dir": '/opt/hx"gw'}, ["base_dir '/opt/hx\"gw'", UNSAFE_PATH]),
    ("base-dir-dollar", {"base_dir": "/opt/$HOME"}, ["base_dir '/opt/$HOME'", UNSAFE_PATH, BASE_DIR_FIX]),
    ("base-dir-backtick", {"base_dir": "/opt/`id`"}, ["base_dir '/opt/`id`'", UNSAFE_PATH]),
    ("base-dir-newline", {"base_dir": "/opt/hx\n"}, ["base_dir '/opt/hx\\n'", UNSAFE_PATH, BASE_DIR_FIX]),
    ("base-dir-percent", {"base_dir": "/opt/%h"}, ["base_dir '/opt/%h'", UNSAFE_PATH]),
    ("base-dir-not-string", {"base_dir": 5}, ["base_dir must be a string, got int 5", BASE_DIR_FIX]),
    ("port-0", {"port": 0}, ["settings: port 0 is out of range", "from 1 to 65535", "port = 4000"]),
    ("port-65536", {"port": 65536}, ["settings: port 65536 is out of range", "from 1 to 65535"]),
    ("port-string", {"port": "4000"}, ["settings: port must be an integer", "got str '4000'", "no quotes"]),
    ("port-bool", {"port": True}, ["settings: port must be an integer", "got bool True", "not True/False"]),
    ("port-float", {"port": 4000.0}, ["settings: port must be an integer", "got float 4000.0"]),
    ("gateway-ip-missing", {"gateway_ip": DELETE}, ["settings: gateway_ip is not set", IP_FIX, IP_EXAMPLE]),
    ("gateway-ip-short", {"gateway_ip": "192.168.10"}, ["gateway_ip '192.168.10' is not an IPv4 address", IP_FIX, IP_EXAMPLE]),
    ("gateway-ip-ipv6", {"gateway_ip": "::1"}, ["gateway_ip '::1' is not an IPv4 address", IP_FIX, IP_EXAMPLE]),
    ("gateway-ip-text", {"gateway_ip": "abc"}, ["gateway_ip 'abc' is not an IPv4 address", IP_FIX, IP_EXAMPLE]),
    ("gateway-ip-unspecified", {"gateway_ip": "0.0.0.0"}, ["gateway_ip '0.0.0.0' is not an address clients can reach", IP_EXAMPLE]),
    ("gateway-ip-not-string", {"gateway_ip": 3232238119}, ["gateway_ip must be an IPv4 address string", IP_EXAMPLE]),
    ("listen-host-name", {"listen_host": "localhost"}, ["listen_host 'localhost' is not an IPv4 address", "use '0.0.0.0'"]),
    ("service-user-upper", {"service_user": "HX"}, ["service_user 'HX' is not a valid system user name", "^[a-z_][a-z0-9_-]{0,31}$", "'hx-gateway'"]),
    ("service-user-space", {"service_user": "hx gw"}, ["service_user 'hx gw'", "^[a-z_][a-z0-9_-]{0,31}$"]),
    ("service-user-long", {"service_user": "a" * 33}, ["service_user", "at most 32 characters"]),
    ("service-user-digit-first", {"service_user": "1hx"}, ["service_user '1hx'", "e.g. 'hx-gateway'"]),
    ("version-missing", {"litellm_version": DELETE}, ["settings: litellm_version is not set", "litellm_version = '1.108.7'"]),
    ("version-two-parts", {"litellm_version": "1.74"}, ["litellm_version '1.74' is not X.Y.Z", "pin an exact LiteLLM release"]),
    ("version-prefixed", {"litellm_version": "v1.74.9"}, ["litellm_version 'v1.74.9' is not X.Y.Z", "litellm_version = '1.108.7'"]),
    ("version-range", {"litellm_version": ">=1.74.9"}, ["litellm_version '>=1.74.9'", "pin an exact"]),
    ("version-newline", {"litellm_version": "1.74.9\n"}, ["litellm_version '1.74.9\\n'", "pin an exact"]),
    ("version-float", {"litellm_version": 1.74}, ["litellm_version float 1.74 is not X.Y.Z", "pin an exact"]),
    ("workers-0", {"num_workers": 0}, ["settings: num_workers 0 is out of range", "from 1 to 64"]),
    ("workers-65", {"num_workers": 65}, ["settings: num_workers 65 is out of range", "from 1 to 64"]),
    ("workers-string", {"num_workers": "2"}, ["settings: num_workers must be an integer", "no quotes"]),
    ("strict-string", {"backend_check_strict": "true"}, ["backend_check_strict must be True or False, got str 'true'", "backend_check_strict = True (no quotes)"]),
    ("validation-int", {"validation_strict": 1}, ["validation_strict must be True or False, got int 1", "(no quotes)"]),
    ("force-string", {"force": "yes"}, ["force must be True or False", "force = True"]),
    ("install-source-typo", {"install_source": "wheelhous"}, ["install_source 'wheelhous' (did you mean 'wheelhouse'?)", "use 'wheelhouse'", "or 'index'"]),
    ("install-source-pypi", {"install_source": "pypi"}, ["install_source 'pypi' is not supported", "'index'"]),
    # Values that would harm the host.
    ("service-user-root", {"service_user": "root"}, ["service_user 'root' is an existing system account", "service_user = 'hx-gateway'"]),
    ("service-user-www-data", {"service_user": "www-data"}, ["service_user 'www-data' is an existing system account"]),
    ("service-user-nobody", {"service_user": "nobody"}, ["service_user 'nobody' is an existing system account"]),
    ("service-user-systemd", {"service_user": "systemd-network"}, ["service_user 'systemd-network' is an existing system account"]),
    ("base-dir-etc", {"base_dir": "/etc/hx"}, ["base_dir '/etc/hx' is under /etc", "base_dir = '/opt/hx-gateway'"]),
    ("base-dir-usr-lib", {"base_dir": "/usr/lib/hx"}, ["base_dir '/usr/lib/hx' is under /usr", "a directory of its own"]),
    ("base-dir-run", {"base_dir": "/run/hx"}, ["base_dir '/run/hx' is under /run"]),
    ("base-dir-opt", {"base_dir": "/opt"}, ["base_dir '/opt' is a system directory", "re-permissions everything"]),
    ("base-dir-var-lib", {"base_dir": "/var/lib/"}, ["base_dir '/var/lib' is a system directory"]),
    # Settings that were read ad hoc before the settings model.
    ("installer-unknown", {"installer": "conda"}, ["settings: installer 'conda' is not supported", "use 'uv' (the default) or 'pip'"]),
    ("installer-typo", {"installer": "ppi"}, ["installer 'ppi' (did you mean 'pip'?)"]),
    ("installer-not-string", {"installer": 1}, ["installer int 1 is not supported", "'pip'"]),
    ("installer-ignored", {"installer": "uv", "install_source": "index"}, ["settings: installer 'uv' would be ignored", "install_source = 'wheelhouse'"]),
    ("report-directory", {"validation_report": "reports/"}, ["validation_report 'reports/' ends with '/'", "reports/validation-{host}.json"]),
    ("report-empty", {"validation_report": ""}, ["validation_report '' is empty", "or leave it out"]),
    ("report-not-text", {"validation_report": 5}, ["validation_report must be a file path (text), got int 5"]),
    ("ready-timeout-zero", {"validation_ready_timeout": 0}, ["validation_ready_timeout 0 is out of range", "more than 0", "validation_ready_timeout = 30"]),
    ("ready-timeout-huge", {"validation_ready_timeout": 3600}, ["validation_ready_timeout 3600 is out of range", "at most 600 seconds"]),
    ("ready-timeout-text", {"validation_ready_timeout": "3"}, ["validation_ready_timeout must be a number of seconds, got str '3'", "no quotes"]),
    ("ready-timeout-nan", {"validation_ready_timeout": float("nan")}, ["validation_ready_timeout", "nan"]),
]  # fmt: skip


def apply(changes: dict) -> dict:
    data = dict(BASELINE)
    for key, value in changes.items():
        if value is DELETE:
            data.pop(key)
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(
    ("changes", "expected"),
    [pytest.param(changes, expected, id=case_id) for case_id, changes, expected in BAD_CASES],
)
def test_bad_setting_names_key_and_fix(changes: dict, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(apply(changes))
    problems = caught.value.problems
    assert any(all(part in line for part in expected) for line in problems), (
        f"no single problem line contains all of {expected!r}; got:\n" + "\n".join(problems)
    )
    assert len(problems) == 1  # each case breaks exactly one key
    assert "\n" not in problems[0]


def test_case_ids_are_unique() -> None:
    ids = [case_id for case_id, _, _ in BAD_CASES]
    assert len(ids) == len(set(ids))


def test_defaults() -> None:
    settings = parse_settings(BASELINE)
    assert settings == Settings(
        base_dir="/opt/hx",
        gateway_ip="192.168.10.39",
        litellm_version="1.74.9",
        service_user="hx-gateway",
        listen_host="0.0.0.0",
        port=4000,
        num_workers=None,  # one per CPU of the host (hxgw.serving)
        max_requests_before_restart=0,
        log_level="WARNING",
        access_log=False,
        backend_check_strict=False,
        validation_strict=False,
        force=False,
        install_source="wheelhouse",
        installer="uv",
        validation_report=None,
        validation_ready_timeout=10.0,
    )


def test_none_means_default() -> None:
    # host.data.get() returns None for unset keys; that must not be an error.
    settings = parse_settings({**BASELINE, "port": None, "force": None, "service_user": None})
    assert (settings.port, settings.force, settings.service_user) == (4000, False, "hx-gateway")


def test_other_keys_are_ignored() -> None:
    assert parse_settings({**BASELINE, "backends": [], "models": []}).port == 4000


def test_derived_paths() -> None:
    settings = parse_settings({**BASELINE, "base_dir": "/srv//hx/./", "port": 4100})
    assert settings.base_dir == "/srv/hx"
    assert settings.gateway_dir == "/srv/hx/gateway"
    assert settings.venv_root == "/srv/hx/gateway/venvs"
    assert settings.venv_link == "/srv/hx/gateway/venv"
    assert settings.config_dir == "/srv/hx/config/api-gateway"
    assert settings.config_file == "/srv/hx/config/api-gateway/config.yaml"
    assert settings.env_file == "/srv/hx/config/api-gateway/gateway.env"
    assert settings.scripts_dir == "/srv/hx/scripts/service/api-gateway"
    assert settings.log_dir == "/srv/hx/logs/services"
    assert settings.unit_name == "hx-litellm-gateway.service"
    assert settings.local_url == "http://127.0.0.1:4100"
    assert settings.public_url == "http://192.168.10.39:4100"


def test_leading_double_slash_is_collapsed() -> None:
    assert parse_settings({**BASELINE, "base_dir": "//opt/hx"}).base_dir == "/opt/hx"


def test_local_url_uses_a_specific_listen_host() -> None:
    settings = parse_settings({**BASELINE, "listen_host": "192.168.10.39"})
    assert settings.local_url == "http://192.168.10.39:4000"


def test_explicit_values_are_kept() -> None:
    settings = parse_settings(
        {
            **BASELINE,
            "service_user": "litellm_svc",
            "port": 8080,
            "num_workers": 64,
            "backend_check_strict": True,
            "validation_strict": True,
            "force": True,
            "install_source": "index",
        }
    )
    assert settings.service_user == "litellm_svc"
    assert (settings.port, settings.num_workers) == (8080, 64)
    assert settings.backend_check_strict and settings.validation_strict and settings.force
    assert settings.install_source == "index"


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"base_dir": "relative", "port": True})
    problems = caught.value.problems
    assert len(problems) == 4  # base_dir, gateway_ip, litellm_version, port
    assert len(str(caught.value).splitlines()) == 5


def test_settings_are_frozen() -> None:
    settings = parse_settings(BASELINE)
    with pytest.raises(ValidationError, match="frozen"):
        settings.port = 1  # type: ignore[misc]


def test_allowed_places_and_new_settings_are_kept() -> None:
    settings = parse_settings(
        {
            **BASELINE,
            "base_dir": "/usr/local/hx",
            "installer": "pip",
            "validation_report": "reports/v-{host}.json",
            "validation_ready_timeout": 3,
        }
    )
    assert settings.base_dir == "/usr/local/hx"
    assert (settings.installer, settings.effective_installer) == ("pip", "pip")
    assert settings.validation_report == "reports/v-{host}.json"
    assert settings.validation_ready_timeout == 3.0
    assert parse_settings({**BASELINE, "install_source": "index"}).effective_installer == "pip"
    assert parse_settings({**BASELINE, "base_dir": "/srv/gateway"}).base_dir == "/srv/gateway"


def test_a_version_the_lock_does_not_install_is_refused() -> None:
    data = {**BASELINE, "litellm_version": "1.110.2"}
    assert parse_settings(data, locked_litellm_version="1.110.2").litellm_version == "1.110.2"
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, locked_litellm_version="1.108.7")
    (line,) = caught.value.problems
    assert "settings: litellm_version '1.110.2' is not the release the venv installs" in line
    assert "litellm_version = '1.108.7'" in line
    assert "make lock LITELLM=1.110.2" in line


def test_the_locked_version_is_read_from_the_lock() -> None:
    text = "click==8.1.8 \\\n    --hash=sha256:ab\nlitellm==1.108.7 \\\n    --hash=sha256:cd\n"
    assert locked_litellm_version(text) == "1.108.7"
    assert locked_litellm_version("litellm-proxy-extras==0.4.1\n") is None


def test_every_setting_is_declared_once_with_a_description() -> None:
    for schema in (Settings, LoadBalancerSettings):
        for key, field in schema.model_fields.items():
            assert field.description, f"{key} has no description"
    assert set(SETTING_KEYS) == set(Settings.model_fields)
    assert DEFAULTS["port"] == 4000 and "base_dir" not in DEFAULTS


LB_CASES = [
    ("lb-port-text", {"lb_port": "4000"}, ["settings: lb_port must be an integer", "lb_port = 4000"]),
    ("lb-port-range", {"lb_port": 0}, ["settings: lb_port 0 is out of range", "from 1 to 65535"]),
    ("lb-bind-name", {"lb_bind": "localhost"}, ["settings: lb_bind 'localhost' is not an IPv4 address", "use '0.0.0.0'"]),
    ("lb-interval-text", {"lb_check_interval_ms": "abc"}, ["lb_check_interval_ms must be an integer", "got str 'abc'"]),
    ("lb-interval-tiny", {"lb_check_interval_ms": 5}, ["lb_check_interval_ms 5 is out of range", "from 100 to 60000"]),
    ("lb-timeout-bool", {"lb_request_timeout": True}, ["lb_request_timeout must be an integer", "got bool True"]),
]  # fmt: skip


@pytest.mark.parametrize(("data", "expected"), [pytest.param(d, e, id=i) for i, d, e in LB_CASES])
def test_bad_load_balancer_setting_names_key_and_fix(data: dict, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_loadbalancer_settings(data)
    (line,) = caught.value.problems
    assert all(part in line for part in expected), line


def test_load_balancer_defaults() -> None:
    lb = parse_loadbalancer_settings({"lb_port": None, "gateway_ip": "ignored"})
    assert (lb.lb_bind, lb.lb_port, lb.lb_request_timeout, lb.lb_check_interval_ms) == (
        "0.0.0.0",
        4000,
        300,
        1000,
    )
    assert LB_SETTING_KEYS == ("lb_bind", "lb_port", "lb_request_timeout", "lb_check_interval_ms")


def test_the_readme_lists_every_declared_setting_as_declared() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- settings:begin -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert block == settings_doc.markdown(), "regenerate it: python -m hxgw.settings_doc"
    for key in (*SETTING_KEYS, *LB_SETTING_KEYS):
        assert f"| `{key}` |" in block


def test_problems_across_fields_are_reported_together() -> None:
    data = {**BASELINE, "listen_host": "10.9.8.7", "installer": "uv", "install_source": "index"}
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, locked_litellm_version="1.108.7")
    keys = [line.split()[1] for line in caught.value.problems]
    assert keys == ["litellm_version", "listen_host", "installer"]
