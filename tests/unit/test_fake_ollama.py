"""Contract tests for testbed/fake_ollama.py, run as a real subprocess on 127.0.0.1."""

from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "testbed" / "fake_ollama.py"
MODELS = (
    "llama3.2:3b,qwen3:1.7b,phi3:latest,mxbai-embed-large,nomic-embed-text:latest,"
    "all-minilm,tiny-embed=embed:16"
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
    deadline = time.monotonic() + 5
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
    with httpx.Client(base_url=server[0], timeout=5, trust_env=False) as c:  # no env proxies
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


def test_root_head_version(client):
    r = client.get("/")
    assert (r.status_code, r.text) == (200, "Ollama is running")
    head = client.head("/")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == "17"
    r = client.get("/api/version")
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.json() == {"version": "0.9.0"}
    assert client.get("/api/ps").json() == {"models": []}
    assert client.get("/api/nope").status_code == 404


def test_tags_lists_every_model(client):
    models = {m["name"]: m for m in client.get("/api/tags").json()["models"]}
    assert set(models) == {
        "llama3.2:3b", "qwen3:1.7b", "phi3:latest", "mxbai-embed-large:latest",
        "nomic-embed-text:latest", "all-minilm:latest", "tiny-embed:latest",
    }  # fmt: skip
    llama = models["llama3.2:3b"]
    assert llama["model"] == "llama3.2:3b" and llama["size"] > 0 and llama["modified_at"]
    assert len(llama["digest"]) == 64 and int(llama["digest"], 16) >= 0
    assert llama["details"]["format"] == "gguf"
    assert llama["details"]["family"] == "llama"
    assert llama["details"]["parameter_size"] == "3B"
    assert models["mxbai-embed-large:latest"]["details"]["parameter_size"] == "335M"


def test_show_chat_and_embedding_models(client):
    show = client.post("/api/show", json={"name": "llama3.2:3b"}).json()
    assert show["capabilities"] == ["completion"]
    assert "FROM llama3.2:3b" in show["modelfile"] and show["template"]
    assert show["details"]["quantization_level"] == "Q4_K_M"
    assert show["model_info"]["llama.context_length"] == 8192
    emb = client.post("/api/show", json={"model": "nomic-embed-text"}).json()
    assert emb["capabilities"] == ["embedding"]
    assert emb["model_info"]["nomic-bert.embedding_length"] == 768
    qwen = client.post("/api/show", json={"model": "qwen3:1.7b"}).json()
    assert qwen["capabilities"] == ["completion", "thinking"]


def test_chat_non_streaming_exact_answer(client):
    r = chat(client, options={"temperature": 0, "num_predict": 64})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    body = r.json()
    assert body["model"] == "llama3.2:3b" and body["created_at"].endswith("Z")
    assert body["message"] == {"role": "assistant", "content": "hello fleet 42"}
    assert body["done"] is True and body["done_reason"] == "stop"
    for key in ("prompt_eval_count", "eval_count", "total_duration", "load_duration",
                "prompt_eval_duration", "eval_duration"):  # fmt: skip
        assert isinstance(body[key], int) and body[key] > 0, key


def test_chat_default_answer_is_deterministic_echo(client):
    first = chat(client, content="What is   the capital\nof France?").json()["message"]
    again = chat(client, content="What is   the capital\nof France?").json()["message"]
    assert first == again
    assert first["content"] == "[llama3.2:3b@t1] echo: What is the capital of France?"
    assert chat(client, content="x" * 200).json()["message"]["content"].endswith("x" * 60)


def test_chat_streams_by_default_and_every_line_is_complete(client):
    body = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": EXACT}]}
    r, lines = stream_lines(client, "/api/chat", body)  # no "stream" key: Ollama streams
    assert r.headers["content-type"] == "application/x-ndjson"
    assert len(lines) >= 3
    for line in lines:
        assert line["model"] == "llama3.2:3b" and line["created_at"]
        assert line["message"]["role"] == "assistant" and "content" in line["message"]
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert "".join(line["message"]["content"] for line in lines) == "hello fleet 42"
    assert lines[-1]["done_reason"] == "stop" and lines[-1]["eval_count"] > 0


def test_generate_plain_and_streaming(client):
    body = {"model": "phi3", "prompt": EXACT, "options": {"temperature": 0}}
    r = client.post("/api/generate", json={**body, "stream": False})
    got = r.json()
    assert got["response"] == "hello fleet 42" and got["model"] == "phi3"
    assert got["done"] is True and got["done_reason"] == "stop" and got["prompt_eval_count"] > 0
    r, lines = stream_lines(client, "/api/generate", {**body, "stream": True})
    assert all({"model", "created_at", "response", "done"} <= set(x) for x in lines)
    assert "".join(x["response"] for x in lines) == "hello fleet 42"
    assert lines[-1]["done"] is True and not any(x["done"] for x in lines[:-1])


def test_qwen3_thinks_but_content_stays_exact(client):
    msg = chat(client, model="qwen3:1.7b").json()["message"]
    assert msg["content"] == "hello fleet 42" and len(msg["thinking"]) > 10
    assert "thinking" not in chat(client, model="qwen3:1.7b", think=False).json()["message"]
    body = {"model": "qwen3:1.7b", "messages": [{"role": "user", "content": EXACT}]}
    _, lines = stream_lines(client, "/api/chat", body)
    assert "".join(x["message"]["content"] for x in lines) == "hello fleet 42"
    assert "".join(x["message"].get("thinking", "") for x in lines) == msg["thinking"]


def test_num_predict_truncates(client):
    body = chat(client, content="Return exactly the text: " + "a" * 50, options={"num_predict": 3})
    assert body.json()["message"]["content"] == "a" * 12
    assert body.json()["done_reason"] == "length"


@pytest.mark.parametrize(
    ("model", "dim"),
    [("mxbai-embed-large", 1024), ("mxbai-embed-large:latest", 1024),
     ("nomic-embed-text", 768), ("all-minilm:latest", 384), ("tiny-embed", 16)],
)  # fmt: skip
def test_embed_sizes_and_determinism(client, model, dim):
    def embed(text):
        r = client.post("/api/embed", json={"model": model, "input": text})
        assert r.status_code == 200 and r.json()["model"] == model
        assert r.json()["prompt_eval_count"] > 0
        (vec,) = r.json()["embeddings"]
        return vec

    a, b = embed("the quick brown fox"), embed("the quick brown fox")
    assert len(a) == dim and a == b
    assert all(-1 <= x <= 1 for x in a)
    assert math.isclose(math.sqrt(sum(x * x for x in a)), 1.0, abs_tol=1e-4)
    assert embed("a different text") != a


def test_batch_embed_and_legacy_embeddings(client):
    texts = ["alpha", "beta", "gamma"]
    batch = client.post("/api/embed", json={"model": "all-minilm", "input": texts}).json()
    assert len(batch["embeddings"]) == 3 and len({tuple(v) for v in batch["embeddings"]}) == 3
    single = client.post("/api/embed", json={"model": "all-minilm", "input": ["beta"]}).json()
    assert single["embeddings"][0] == batch["embeddings"][1]
    legacy = client.post("/api/embeddings", json={"model": "all-minilm", "prompt": "beta"})
    assert legacy.json() == {"embedding": batch["embeddings"][1]}
    # Real Ollama embeds with chat models too; the fake answers with 4096 dimensions.
    chat_vec = client.post("/api/embed", json={"model": "llama3.2:3b", "input": "x"}).json()
    assert len(chat_vec["embeddings"][0]) == 4096


def test_unknown_model_is_404_everywhere(client):
    for path, body in [
        ("/api/chat", {"model": "nope:1b", "messages": [], "stream": False}),
        ("/api/generate", {"model": "nope:1b", "prompt": "x", "stream": False}),
        ("/api/embed", {"model": "nope:1b", "input": "x"}),
        ("/api/embeddings", {"model": "nope:1b", "prompt": "x"}),
        ("/api/show", {"name": "nope:1b"}),
    ]:
        r = client.post(path, json=body)
        assert (r.status_code, r.json()) == (404, {"error": "model 'nope:1b' not found"}), path


def test_tag_matching_like_ollama(client):
    assert chat(client, model="phi3").json()["message"]["content"] == "hello fleet 42"
    assert chat(client, model="phi3:latest").status_code == 200
    assert chat(client, model="llama3.2").status_code == 404  # means llama3.2:latest
    assert chat(client, model="phi3:mini").status_code == 404


def test_chat_to_embedding_model_is_400(client):
    r = chat(client, model="mxbai-embed-large")
    assert (r.status_code, r.json()) == (
        400,
        {"error": '"mxbai-embed-large" does not support chat'},
    )


def test_fault_wrong_models(client):
    knobs = client.post("/_fault", json={"wrong_models": ["phi3"]}).json()
    assert knobs["wrong_models"] == ["phi3:latest"]
    assert chat(client, model="phi3").json()["message"]["content"] == "WRONG-ANSWER"
    gen = client.post("/api/generate", json={"model": "phi3", "prompt": EXACT, "stream": False})
    assert gen.json()["response"] == "WRONG-ANSWER"
    assert chat(client, model="llama3.2:3b").json()["message"]["content"] == "hello fleet 42"


def test_fault_error_rate_is_deterministic(client):
    client.post("/_fault", json={"error_rate": 0.5})
    replies = [chat(client) for _ in range(6)]
    assert [r.status_code for r in replies] == [200, 500, 200, 500, 200, 500]
    assert replies[1].json() == {"error": "injected fault"}
    client.post("/_fault", json={"error_rate": 1})
    assert client.post("/api/embed", json={"model": "all-minilm", "input": "x"}).status_code == 500
    assert client.get("/api/tags").status_code == 200  # probes are never faulted


def test_fault_latency_spares_probes(client):
    client.post("/_fault", json={"latency_ms": 300})
    t0 = time.monotonic()
    assert chat(client).status_code == 200
    assert 0.28 <= time.monotonic() - t0 < 2.0
    t0 = time.monotonic()
    assert client.get("/api/version").status_code == 200
    assert client.get("/api/tags").status_code == 200
    assert time.monotonic() - t0 < 0.25


def test_fault_reset_and_validation(client):
    client.post("/_fault", json={"latency_ms": 5, "error_rate": 0.25, "wrong_models": ["phi3"]})
    assert client.get("/_fault").json() == {
        "latency_ms": 5, "error_rate": 0.25, "wrong_models": ["phi3:latest"],
    }  # fmt: skip
    reset = client.post("/_fault", json={"reset": True}).json()
    assert reset == {"latency_ms": 0, "error_rate": 0.0, "wrong_models": []}
    assert chat(client, model="phi3").json()["message"]["content"] == "hello fleet 42"
    for bad in ({"error_rate": 2}, {"latency_ms": -1}, {"wrong_models": "phi3"}, {"x": 1}):
        assert client.post("/_fault", json=bad).status_code == 400, bad
    assert client.get("/_fault").json() == reset


def test_stats_count_paths_and_models(client):
    client.delete("/_stats")
    chat(client)
    chat(client, model="phi3")
    client.post("/api/embed", json={"model": "all-minilm", "input": "x"})
    client.get("/api/tags")
    stats = client.get("/_stats").json()
    assert stats["name"] == "t1" and stats["total"] == 4
    assert stats["paths"] == {"/api/chat": 2, "/api/embed": 1, "/api/tags": 1}
    assert stats["models"] == {"llama3.2:3b": 1, "phi3:latest": 1, "all-minilm:latest": 1}
    assert stats["statuses"] == {"200": 4}


def test_one_log_line_per_request(client, server):
    chat(client, model="phi3")
    lines = server[1].read_text().splitlines()
    assert any("POST /api/chat model=phi3 status=200" in line for line in lines)


def test_cli_faults_and_sigterm_exit_promptly():
    proc, url = start("--quiet", "--wrong-models", "phi3", "--latency-ms", "7")
    try:
        knobs = httpx.get(f"{url}/_fault", trust_env=False).json()
        assert knobs == {"latency_ms": 7, "error_rate": 0.0, "wrong_models": ["phi3:latest"]}
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=3) == 0
        assert time.monotonic() - t0 < 1.0
    finally:
        if proc.poll() is None:
            proc.kill()
