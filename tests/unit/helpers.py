"""Helpers shared by the unit tests: templates rendered as pyinfra renders them, and the
production inventory planned with pyinfra's @fake connector (no host is ever contacted).

The fake inventory takes every host and its data from inventory.py and group_data/, drops the
SSH settings, and answers the deploy's fact commands with a healthy Debian 12 gateway that owns
(or, for the guard, does not own) the address given.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jinja2

from hxops import paths
from hxops.wheelhouse import release_for

REPO = paths.REPO
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
PROD_BACKENDS = {
    "llm-01": ["llama3.2:3b", "qwen3:1.7b", "mistral-small3.2:latest"],
    "llm-02": ["phi3:latest", "gemma2:2b"],
    "orc": ["mxbai-embed-large:latest", "nomic-embed-text:latest", "all-minilm:latest"],
}


def production_data() -> dict:
    spec = importlib.util.spec_from_file_location("group_all", REPO / "group_data" / "all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {k: v for k, v in vars(module).items() if not k.startswith("_")}


def render(name: str, **context) -> str:
    # pyinfra renders with StrictUndefined too: an unknown name fails instead of rendering empty.
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string((paths.TEMPLATES / name).read_text()).render(**context)


def gateway_fact(venv_installed: bool) -> str:
    release = release_for((3, 11, 2), "x86_64", "2.36").id
    lines = [f"bin {b}" for b in ("ip", "ss", "python3", "systemctl", "curl", "tar", "sha256sum")]
    lines += ["os debian 12", "python 3.11.2 x86_64 2.36", "disk_kb 9000000", "service inactive 0"]
    lines += ["venv -", "pkg python3-venv"] + ([f"release {release}"] if venv_installed else [])
    return "\n".join(lines)


def probe_fact() -> str:
    parts = []
    for name, tags in PROD_BACKENDS.items():
        parts += [f"@@ {name} version", '{"version": "0.9.0"}', f"@@ {name} tags"]
        parts.append(json.dumps({"models": [{"name": t} for t in tags]}))
    return "\n".join(parts)


def healthy_responses(owned_address: str) -> dict:
    """@fake's answers to the deploy's facts from a healthy Debian 12 gateway owning the address."""
    addresses = [
        {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
        {"ifname": "eth0", "addr_info": [{"family": "inet", "local": owned_address, "prefixlen": 24}]},
    ]
    return {
        "uname -s": "Linux",
        "useradd": "/usr/sbin/useradd",
        "command -v $b": gateway_fact(venv_installed=True),
        "ip -j addr show": json.dumps(addresses),
        "/api/version": probe_fact(),
    }


def fake_inventory(tmp_path: Path, owned_address: str) -> Path:
    """inventory.py's gateways on @fake, answering the deploy's facts as a healthy host would."""
    responses = healthy_responses(owned_address)
    path = tmp_path / "fake_inventory.py"
    path.write_text(
        textwrap.dedent(
            f"""
            import importlib.util
            _spec = importlib.util.spec_from_file_location("prod", {str(REPO / "inventory.py")!r})
            _prod = importlib.util.module_from_spec(_spec)
            _spec.loader.exec_module(_prod)
            _fake = {{"fake_delay": 0, "fake_delay_jitter": 0, "fake_responses": {responses!r}}}
            gateways = [
                ("@fake/" + name, {{**{{k: v for k, v in data.items() if not k.startswith("ssh_")}}, **_fake}})
                for name, data in _prod.gateways
            ]
            """
        )
    )
    return path


def plan(inventory: Path, *args: str) -> subprocess.CompletedProcess:
    """`pyinfra --dry ARGS INVENTORY deploy.py`: plan only. The @fake connector runs nothing
    anywhere, and validation (a run-time python.call) never fires under --dry, so no request can
    leave for 192.168.10.x."""
    return subprocess.run(
        [PYINFRA, "--dry", *args, str(inventory), "deploy.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(inventory.parent)},
    )
