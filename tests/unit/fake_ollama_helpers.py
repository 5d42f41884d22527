"""Start the fake Ollama as a real subprocess on 127.0.0.1, and talk to it (shared by its tests)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "testbed" / "fake_ollama.py"
MODELS = (
    "llama3.2:3b=tools,qwen3:1.7b=tools+thinking,phi3:latest,mxbai-embed-large,"
    "nomic-embed-text:latest,all-minilm,tiny-embed=embed:16,mistral-small3.2=tools+vision"
)
EXACT = "Say hi.\nReturn exactly the text: hello fleet 42\nThanks."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*extra: str, stderr=subprocess.DEVNULL) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, str(SCRIPT), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--name", "t1", "--models", MODELS, *extra],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15  # a busy 2-core machine
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/api/version", timeout=0.5, trust_env=False).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"fake_ollama did not come up (exit code {proc.poll()})")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("fake_ollama") / "stderr.log"
    with log.open("w") as err:
        proc, url = start(stderr=err)
    yield url, log
    proc.terminate()
    proc.wait(timeout=5)


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server[0], timeout=60, trust_env=False) as c:  # no env proxies
        yield c


@pytest.fixture
def client(http):
    yield http
    http.post("/_fault", json={"reset": True})  # no test leaks faults into the next


def chat(client, model="llama3.2:3b", content=EXACT, **extra):
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    return client.post("/api/chat", json={"stream": False, **body})


def stream_lines(client, path, body) -> tuple[httpx.Response, list[dict]]:
    with client.stream("POST", path, json=body) as r:
        return r, [json.loads(line) for line in r.iter_lines() if line]


def stats(client) -> dict:
    return client.get("/_stats").json()


def wait_until(client, predicate, what: str, timeout: float = 10.0) -> dict:
    """Poll /_stats until predicate(stats) holds: waits on observable state, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = stats(client)
        if predicate(current):
            return current
        time.sleep(0.01)
    raise AssertionError(f"the fake never reached: {what} (last /_stats: {current})")


def in_background(fn, *args, **kwargs) -> tuple[threading.Thread, list]:
    """Run fn in a thread; its result lands in the returned list."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(fn(*args, **kwargs)), daemon=True)
    thread.start()
    return thread, out
