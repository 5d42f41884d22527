"""The bad-input matrix: the real CLI (`pyinfra --dry`) on the production inventory, faked with
@fake (tests/unit/helpers.py), refuses each bad value before any operation exists.

Adding a case is one line in CASES: (id, how, value, substrings ONE problem line must hold).
`how` is "data" (`--data key=value`), "env" (the MASTER_KEY environment variable) or "group"
(Python run in a --group-data all.py after copies of the repo's backends, models, model_groups and
router_settings, so a case mutates them, e.g. `del models[3]["backend"]`). The substrings name the
entry and the fix.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import jinja2
import pytest
import yaml

from hxgw.catalogue import NAME_PATTERN, TAG_PATTERN, parse_catalogue
from hxgw.settings import SERVICE_USER_PATTERN
from hxops import paths
from tests.unit.helpers import PYINFRA, REPO, fake_inventory

STRONG_BODY = "Zq3xV9kLm2Pw7RtY4uHs8JdN6bFgC1aE0oIxTrW5"
GENERATE = "generate a strong key with"
URL_FIX = "write it as scheme://host:port"
HOSTILE = 'it\'s "quoted" $HOME `whoami` # not a comment: yes\nsecond line'

CASES = [
    # The master key (never echoed: see test_a_rejected_key_is_never_echoed).
    ("key-known-default", "env", "sk-1234", ["well-known default", GENERATE]),
    ("key-short", "env", "sk-Zq3xV9kLm2Pw7", ["too short", "at least 32 characters", GENERATE]),
    ("key-not-sk", "env", "pk-" + STRONG_BODY, ["does not start with 'sk-'", GENERATE]),
    ("key-shell-chars", "env", "sk-" + STRONG_BODY + "$(id)'\"", ["characters other than", GENERATE]),
    ("key-one-char", "env", "sk-" + "a" * 40, ["one character repeated", GENERATE]),
    # The catalogue.
    ("group-unknown-member", "group", 'model_groups[0]["members"].append("llm01-nope")',
     ["group 'hx-chat'", "'llm01-nope' is not a defined model", "define it under models"]),
    ("model-without-backend", "group", 'del models[3]["backend"]',
     ["model 'llm01-llama3.2-3b'", "missing required key 'backend'", "llm-01"]),
    ("model-unknown-backend", "group", 'models[3]["backend"] = "llm01"',
     ["model 'llm01-llama3.2-3b'", "'llm01'", "did you mean 'llm-01'"]),
    ("backend-url-no-scheme", "group", 'backends[0]["url"] = "192.168.10.29:11434"',
     ["backend 'llm-01'", "has no scheme", URL_FIX]),
    ("backend-url-no-port", "group", 'backends[0]["url"] = "http://192.168.10.29"',
     ["backend 'llm-01'", "has no port", URL_FIX]),
    ("backend-url-credentials", "group", 'backends[1]["url"] = "http://u:pw@192.168.10.28:11434"',
     ["backend 'llm-02'", "user info", URL_FIX]),
    ("backend-url-shell", "group", 'backends[2]["url"] = "http://192.168.10.31:11434/$(id)"',
     ["backend 'orc'", "has a path", URL_FIX]),
    ("duplicate-model", "group", "models.append(dict(models[0]))",
     ["model 'emb-premium' is defined twice", "unique name"]),
    ("duplicate-backend", "group", "backends.append(dict(backends[1]))",
     ["backend 'llm-02' is defined twice", "unique name"]),
    ("group-collides-with-model", "group", 'model_groups.append({"name": "emb-perf", "members": ["emb-light"]})',
     ["group 'emb-perf' collides with model 'emb-perf'", "rename the group or the model"]),
    ("catalogue-key-typo", "group", 'models[0]["modle"] = models[0].pop("model")',
     ["unknown key 'modle' in model 'emb-premium'", "rename it to 'model'"]),
    ("mode-typo", "group", 'models[3]["mode"] = "chta"', ["model 'llm01-llama3.2-3b'", "did you mean 'chat'"]),
    ("dims-quoted", "group", 'models[0]["dims"] = "1024"', ["model 'emb-premium' dims", '"dims": 768']),
    ("name-with-quote", "group", 'models[3]["name"] = "llm01-\\"x"', ["invalid name", NAME_PATTERN]),
    ("name-with-backticks", "group", 'models[3]["name"] = "llm`whoami`"', ["invalid name", NAME_PATTERN]),
    ("name-with-newline", "group", 'models[3]["name"] = "llm01\\nx: y"', ["invalid name", NAME_PATTERN]),
    ("name-with-dollar", "group", 'model_groups[0]["name"] = "hx-$HOME"', ["invalid name", NAME_PATTERN]),
    ("tag-with-shell", "group", 'models[3]["model"] = "llama3.2:3b; rm -rf /"',
     ["model 'llm01-llama3.2-3b' has invalid Ollama tag", TAG_PATTERN]),
    ("tag-with-hash", "group", 'models[3]["model"] = "llama3.2 #3b"', ["invalid Ollama tag", TAG_PATTERN]),
    ("description-not-text", "group", 'models[3]["description"] = 42',
     ["model 'llm01-llama3.2-3b' description must be text", "or leave it out"]),
    ("description-control-char", "group", 'models[3]["description"] = "bell\\x07"',
     ["model 'llm01-llama3.2-3b' description contains control", "U+0007"]),
    ("description-emoji", "group", 'models[3]["description"] = "fast \\U0001F680"',
     ["model 'llm01-llama3.2-3b' description", "beyond U+FFFF", "U+1F680"]),
    ("router-key-typo", "group", 'router_settings["routing_stratgy"] = router_settings.pop("routing_strategy")',
     ["router_settings: unknown key 'routing_stratgy'", "did you mean 'routing_strategy'", "rename or remove"]),
    ("router-seed-model-group", "group", 'router_settings["model_group"] = {"hx-chat": ["a"]}',
     ["router_settings: unknown key 'model_group'", "silently ignore"]),
    ("router-model-list", "group", 'router_settings["model_list"] = []',
     ["router_settings: key 'model_list'", "describe models under models"]),
    ("router-nan", "group", 'router_settings["timeout"] = float("nan")', ["router_settings: timeout", "nan"]),
    ("router-object", "group", 'router_settings["retry_policy"] = object()',
     ["router_settings: retry_policy", "not plain data"]),
    ("router-not-dict", "group", 'router_settings = ["routing_strategy"]',
     ["router_settings must be a dict", "routing_strategy"]),
    # Settings.
    ("gateway-ip-short", "data", "gateway_ip=192.168.10", ["gateway_ip '192.168.10' is not an IPv4", "gateway_ip ="]),
    ("gateway-ip-name", "data", "gateway_ip=gateway.local", ["gateway_ip 'gateway.local' is not an IPv4"]),
    ("gateway-ip-v6", "data", "gateway_ip=fe80::1", ["gateway_ip 'fe80::1' is not an IPv4"]),
    ("listen-host-name", "data", "listen_host=localhost", ["listen_host 'localhost' is not an IPv4", "0.0.0.0"]),
    ("listen-host-elsewhere", "data", "listen_host=10.9.8.7",
     ["listen_host '10.9.8.7' is not where clients connect", "'192.168.10.39'", "'127.0.0.1'"]),
    ("port-too-high", "data", "port=70000", ["port 70000 is out of range", "from 1 to 65535"]),
    ("port-zero", "data", "port=0", ["port 0 is out of range", "from 1 to 65535"]),
    ("port-text", "data", "port=four", ["port must be an integer", "bare number"]),
    ("base-dir-relative", "data", "base_dir=relative/path", ["base_dir 'relative/path' is not an absolute path"]),
    ("base-dir-space", "data", "base_dir=/opt/hx gateway", ["base_dir", "unsafe", "use only letters"]),
    ("base-dir-subshell", "data", "base_dir=/opt/$(whoami)", ["base_dir", "unsafe", "use only letters"]),
    ("base-dir-dotdot", "data", "base_dir=/opt/../etc", ["base_dir", "'..'", "resolved path"]),
    ("base-dir-root", "data", "base_dir=/", ["base_dir '/' is the filesystem root"]),
    ("service-user-space", "data", "service_user=hx gateway", ["service_user 'hx gateway'", SERVICE_USER_PATTERN]),
    ("service-user-colon", "data", "service_user=hx:root", ["service_user 'hx:root'", SERVICE_USER_PATTERN]),
    ("workers-zero", "data", "num_workers=0", ["num_workers 0 is out of range"]),
    ("version-latest", "data", "litellm_version=latest", ["litellm_version 'latest' is not X.Y.Z"]),
    ("install-source-typo", "data", "install_source=wheelhose", ["did you mean 'wheelhouse'"]),
    ("strict-not-bool", "data", "backend_check_strict=yes", ["backend_check_strict must be True or False"]),
    # Values that would harm the host, be silently ignored, or make the proxy exit at start.
    ("service-user-root", "data", "service_user=root", ["service_user 'root' is an existing system account", "'hx-gateway'"]),
    ("service-user-www-data", "data", "service_user=www-data", ["service_user 'www-data' is an existing system account"]),
    ("base-dir-etc", "data", "base_dir=/etc/hx", ["base_dir '/etc/hx' is under /etc", "a directory of its own"]),
    ("base-dir-usr", "data", "base_dir=/usr", ["base_dir '/usr' is a system directory"]),
    ("version-not-locked", "data", "litellm_version=1.110.2",
     ["litellm_version '1.110.2' is not the release the venv installs", "litellm_version = '1.108.7'",
      "make lock LITELLM=1.110.2"]),
    # requirements/refused-litellm.toml: refused with its reason and link, never offered to re-lock.
    ("version-compromised", "data", "litellm_version=1.82.7",
     ["litellm_version '1.82.7': litellm 1.82.7 is refused", "supply-chain compromise", "issues/24518"]),
    ("version-advisory", "data", "litellm_version=1.83.10",
     ["litellm 1.83.10 is refused", "CVE-2026-49468", "GHSA-4xpc-pv4p-pm3w", "pick another release"]),
    ("installer-typo", "data", "installer=ppi", ["installer 'ppi' (did you mean 'pip'?)", "use 'uv'"]),
    ("installer-ignored", "group", 'install_source = "index"\ninstaller = "uv"', ["installer 'uv' would be ignored"]),
    ("ready-timeout-text", "data", "validation_ready_timeout=soon", ["validation_ready_timeout must be a number of seconds"]),
    ("report-directory", "data", "validation_report=reports/", ["validation_report 'reports/' ends with '/'"]),
    ("router-strategy-underscore", "group", 'router_settings["routing_strategy"] = "simple_shuffle"',
     ["router_settings: routing_strategy 'simple_shuffle'", "did you mean 'simple-shuffle'", "exit at start"]),
    ("router-retries-negative", "group", 'router_settings["num_retries"] = -1', ["router_settings: num_retries -1 is out of range"]),
    ("router-fallback-unknown", "group", 'router_settings["fallbacks"] = [{"hx-chat": ["llm02-phi4"]}]',
     ["router_settings: fallbacks of 'hx-chat' names 'llm02-phi4'", "did you mean 'llm02-phi3'"]),
    ("router-fatal-key", "group", 'router_settings["health_check_interval"] = 30',
     ["health_check_interval makes LiteLLM's proxy exit at start"]),
    ("capability-typo", "group", 'models[4]["capabilities"] = ["tool"]',
     ["model 'llm01-qwen3-1.7b' capabilities lists 'tool'", "did you mean 'tools'"]),
]  # fmt: skip


def overlay(tmp_path: Path, code: str) -> Path:
    """A --group-data folder whose all.py copies the repo's catalogue, then runs `code` on it."""
    folder = tmp_path / "group_data"
    folder.mkdir()
    prelude = textwrap.dedent(
        f"""
        import copy as _copy
        import importlib.util as _util
        _spec = _util.spec_from_file_location("_base", {str(REPO / "group_data" / "all.py")!r})
        _base = _util.module_from_spec(_spec)
        _spec.loader.exec_module(_base)
        backends = _copy.deepcopy(_base.backends)
        models = _copy.deepcopy(_base.models)
        model_groups = _copy.deepcopy(_base.model_groups)
        router_settings = _copy.deepcopy(_base.router_settings)
        """
    )
    (folder / "all.py").write_text(prelude + code + "\n")
    return folder


def dry_run(tmp_path: Path, how: str = "", value: str = "") -> subprocess.CompletedProcess:
    inventory = fake_inventory(tmp_path, "192.168.10.39")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    args: list[str] = []
    if how == "data":
        args = ["--data", value]
    elif how == "env":
        env["MASTER_KEY"] = value
    elif how == "group":
        args = ["--group-data", str(overlay(tmp_path, value))]
    return subprocess.run(
        [PYINFRA, "--dry", *args, str(inventory), "deploy.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def problem_lines(output: str) -> list[str]:
    return [line[4:] for line in output.splitlines() if line.startswith("  - ")]


@pytest.mark.parametrize(("how", "value", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_any_operation(tmp_path, how, value, expected):
    result = dry_run(tmp_path, how, value)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "nothing was changed on any host" in output, output[-2000:]
    lines = problem_lines(output)
    assert any(all(part in line for part in expected) for line in lines), (
        f"no problem line holds all of {expected!r}; got:\n" + "\n".join(lines)
    )
    # No operation was even planned: no task ran, nothing to change, no fact gathered.
    assert "Detected changes" not in output
    assert "tasks/" not in output
    assert "Getting fact" not in output


def test_case_ids_are_unique():
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("key", [c[2] for c in CASES if c[1] == "env"])
def test_a_rejected_key_is_never_echoed(tmp_path, key):
    result = dry_run(tmp_path, "env", key)
    assert result.returncode != 0
    assert key not in result.stdout + result.stderr
    assert "characters)" in result.stderr  # its length is reported instead


def test_hostile_free_text_is_accepted_where_text_belongs(tmp_path):
    """Quotes, $, backticks, '#', ':' and newlines are fine in a description and router values."""
    code = (
        f'models[3]["description"] = {HOSTILE!r}\nrouter_settings["redis_password"] = {HOSTILE!r}\n'
        'router_settings.update(redis_host="10.0.0.5", redis_port=6379)'  # Redis is used only with both
    )
    result = dry_run(tmp_path, "group", code)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "tasks/config.py | Render config.yaml" in output


def test_hostile_free_text_renders_literally_into_config_yaml():
    spec_data: dict = {}
    exec((REPO / "group_data" / "all.py").read_text(), spec_data)
    models = [dict(m) for m in spec_data["models"]]
    models[3]["description"] = HOSTILE
    catalogue = parse_catalogue(spec_data["backends"], models, spec_data["model_groups"])
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    text = env.from_string((paths.TEMPLATES / "config.yaml.j2").read_text()).render(
        deployments=catalogue.deployments(), router_settings={"redis_password": HOSTILE, "num_retries": 2}
    )
    config = yaml.safe_load(text)
    entry = next(e for e in config["model_list"] if e["model_name"] == "llm01-llama3.2-3b")
    assert entry["model_info"]["description"] == HOSTILE  # beside its capability flags
    # A group member carries its model's description too; embeddings keep their mode.
    assert HOSTILE in [
        (e.get("model_info") or {}).get("description")
        for e in config["model_list"]
        if e["model_name"] == "hx-chat"
    ]
    assert next(e for e in config["model_list"] if e["model_name"] == "emb-premium")["model_info"] == {
        "mode": "embedding"
    }
    assert config["router_settings"] == {"redis_password": HOSTILE, "num_retries": 2}
    assert "$HOME `whoami`" in text and "\nsecond line" not in text  # one quoted line, no raw newline
