"""Where the local fleet lives: its net, addresses, names and state file, and its machines.

Everything the fleet creates carries the prefix `hxtb{N}` (bridge, namespaces, veths) or lives
under STATE_DIR (N is HX_TESTBED_NET), so `down` can find what an earlier run left.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

NET = int(os.environ.get("HX_TESTBED_NET", "0"))
if not 0 <= NET <= 255:
    raise SystemExit(f"HX_TESTBED_NET={NET} is out of range: use 0..255")
PREFIX = f"hxtb{NET}"
BRIDGE = PREFIX
SUBNET = f"198.18.{NET}"
HOST_ADDRESS = f"{SUBNET}.1"
STATE_DIR = Path(os.environ.get("HX_TESTBED_STATE", f"/var/lib/hx-testbed/net{NET}"))
STATE_FILE = STATE_DIR / "state.json"
SSH_KEY = STATE_DIR / "id_ed25519"
OLLAMA_PORT = 11434
FAKE_OLLAMA = Path(__file__).with_name("fake_ollama.py")

# The production fleet's hosts, mirrored by last octet (192.168.10.X -> 198.18.N.X).
# Each model with its capabilities beside completion, per Ollama's model library (fake_ollama.py
# answers 400 "... does not support tools" for the others, as Ollama does).
BACKENDS = {
    "llm-01": (
        29,
        ["llama3.2:3b=tools", "qwen3:1.7b=tools+thinking", "mistral-small3.2:latest=tools+vision"],
    ),
    "llm-02": (28, ["phi3:latest", "gemma2:2b", "cogito:32b=tools", "deepcoder:14b", "dolphin3:8b"]),
    "orc": (31, ["mxbai-embed-large", "nomic-embed-text", "all-minilm"]),
}
# Per-backend Ollama settings as fake_ollama.py flags without the dashes (version, num_parallel,
# max_queue, keep_alive_s, load_ms, ...). Empty means Ollama's defaults (0.12.10 behaviour,
# OLLAMA_NUM_PARALLEL 1, OLLAMA_MAX_QUEUE 512, keep_alive 5m). HX_BACKEND_KNOBS (JSON, e.g.
# '{"llm-01": {"version": "0.9.0"}}') overrides them for one `up`; POST /_fault changes the
# run-time ones on a running backend.
BACKEND_KNOBS: dict[str, dict] = {name: {} for name in BACKENDS}
FIRST_GATEWAY_OCTET = 39
LOADBALANCER = ("hx-lb", 10)


def gateway_name(index: int) -> str:
    return "hx-api-gateway-server" if index == 0 else f"hx-api-gateway-{index + 1:02d}"


@dataclass
class Machine:
    name: str
    role: str  # gateway | loadbalancer | backend
    octet: int
    pid: int | None = None
    models: list[str] = field(default_factory=list)
    knobs: dict = field(default_factory=dict)  # backends: fake_ollama.py settings

    @property
    def address(self) -> str:
        return f"{SUBNET}.{self.octet}"

    @property
    def netns(self) -> str:
        return f"{PREFIX}-{self.octet}"

    @property
    def root(self) -> Path:
        return STATE_DIR / "machines" / self.name

    @property
    def log(self) -> Path:
        return STATE_DIR / "logs" / f"{self.name}.log"


class FleetError(RuntimeError):
    pass


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise FleetError(f"{' '.join(cmd)} failed (exit {result.returncode}): {result.stderr.strip()}")
    return result


# Each machine's systemd (and its services) takes inotify instances from root's one budget on the
# control machine; Debian's default of 128 ran out at about ten machines (new ones booted degraded:
# "Too many open files"), so the fleet raises it, never lowers it.
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
MIN_INOTIFY_INSTANCES = 1024


def raise_inotify_limit() -> None:
    if int(INOTIFY_INSTANCES.read_text()) < MIN_INOTIFY_INSTANCES:
        INOTIFY_INSTANCES.write_text(f"{MIN_INOTIFY_INSTANCES}\n")


def require_host() -> None:
    if os.geteuid() != 0:
        raise FleetError("the local fleet needs root (network namespaces, nspawn): run as root")
    raise_inotify_limit()
    missing = [t for t in ("debootstrap", "systemd-nspawn", "ip", "ssh", "ssh-keygen") if not shutil.which(t)]
    if missing:
        raise FleetError(
            f"missing tools: {', '.join(missing)}; install them with `make deps` "
            "(apt-get install debootstrap systemd-container iproute2 openssh-client)"
        )


# ---------- state ----------


def load_machines() -> list[Machine]:
    if not STATE_FILE.exists():
        return []
    data = json.loads(STATE_FILE.read_text())
    return [Machine(**m) for m in data["machines"]]


def save_machines(machines: list[Machine]) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"net": NET, "ssh_key": str(SSH_KEY), "machines": [asdict(m) for m in machines]}
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(STATE_FILE)


def find(name: str) -> Machine:
    for machine in load_machines():
        if machine.name == name:
            return machine
    raise FleetError(f"no machine named {name!r} in the fleet; see `python -m testbed status`")
