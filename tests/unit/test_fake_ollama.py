"""Contract tests for testbed/fake_ollama.py, run as a real subprocess on 127.0.0.1."""

from __future__ import annotations

import math
import re
import signal
import time

import httpx
import pytest

from tests.unit import fake_ollama_helpers as fo
from tests.unit.fake_ollama_helpers import EXACT, chat, in_background, start, stats, stream_lines, wait_until

server, http, client = fo.server, fo.http, fo.client  # the fixtures, by name


def test_root_head_version(client):
    r = client.get("/")
    assert (r.status_code, r.text) == (200, "Ollama is running")
    head = client.head("/")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == "17"
    r = client.get("/api/version")
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.json() == {"version": "0.12.10"}  # the release whose behaviour the fake imitates
    assert isinstance(client.get("/api/ps").json()["models"], list)
    assert client.get("/api/nope").status_code == 404


def test_tags_lists_every_model(client):
    models = {m["name"]: m for m in client.get("/api/tags").json()["models"]}
    assert set(models) == {
        "llama3.2:3b", "qwen3:1.7b", "phi3:latest", "mxbai-embed-large:latest",
        "nomic-embed-text:latest", "all-minilm:latest", "tiny-embed:latest", "mistral-small3.2:latest",
    }  # fmt: skip
    llama = models["llama3.2:3b"]
    assert llama["model"] == "llama3.2:3b" and llama["size"] > 0 and llama["modified_at"]
    assert re.fullmatch(r"[0-9a-f]{64}", llama["digest"])  # a sha256 in hex, as Ollama lists it
    assert llama["details"]["format"] == "gguf"
    assert llama["details"]["family"] == "llama"
    assert llama["details"]["parameter_size"] == "3B"
    assert models["mxbai-embed-large:latest"]["details"]["parameter_size"] == "335M"


def test_show_chat_and_embedding_models(client):
    show = client.post("/api/show", json={"name": "llama3.2:3b"}).json()
    assert show["capabilities"] == ["completion", "tools"]
    assert "FROM llama3.2:3b" in show["modelfile"]
    assert "tools" in show["template"].lower()  # what LiteLLM reads as supports_function_calling
    phi3 = client.post("/api/show", json={"name": "phi3"}).json()
    assert phi3["capabilities"] == ["completion"] and "tools" not in phi3["template"].lower()
    vision = client.post("/api/show", json={"name": "mistral-small3.2"}).json()
    assert vision["capabilities"] == ["completion", "tools", "vision"]
    assert show["details"]["quantization_level"] == "Q4_K_M"
    assert show["model_info"]["llama.context_length"] == 8192
    emb = client.post("/api/show", json={"model": "nomic-embed-text"}).json()
    assert emb["capabilities"] == ["embedding"]
    assert emb["model_info"]["nomic-bert.embedding_length"] == 768
    qwen = client.post("/api/show", json={"model": "qwen3:1.7b"}).json()
    assert qwen["capabilities"] == ["completion", "tools", "thinking"]


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


def test_fault_latency_holds_the_model_but_spares_probes(client, http):
    client.post("/_fault", json={"latency_ms": 3000})
    thread, out = in_background(chat, http)
    wait_until(client, lambda s: s["running"] == {"llama3.2:3b": 1}, "the chat running")
    assert client.get("/api/version").status_code == 200  # answered while the chat still runs
    assert client.get("/api/tags").status_code == 200
    assert stats(client)["running"] == {"llama3.2:3b": 1}
    thread.join(timeout=30)
    assert out[0].status_code == 200 and out[0].json()["message"]["content"] == "hello fleet 42"
    assert stats(client)["running"] == {}


def test_fault_reset_and_validation(client):
    client.post("/_fault", json={"latency_ms": 5, "error_rate": 0.25, "wrong_models": ["phi3"]})
    client.post("/_fault", json={"stream_error_after": 2, "no_usage": True, "num_parallel": 3})
    assert client.get("/_fault").json() == {
        "latency_ms": 5, "error_rate": 0.25, "wrong_models": ["phi3:latest"], "stream_error_after": 2,
        "no_usage": True, "num_parallel": 3, "max_queue": 512, "keep_alive_s": 300.0, "load_ms": 0,
    }  # fmt: skip
    reset = client.post("/_fault", json={"reset": True}).json()
    assert reset == {
        "latency_ms": 0,
        "error_rate": 0.0,
        "wrong_models": [],
        "stream_error_after": -1,
        "no_usage": False,
        "num_parallel": 1,
        "max_queue": 512,
        "keep_alive_s": 300.0,
        "load_ms": 0,
    }  # fmt: skip (Ollama's defaults: OLLAMA_NUM_PARALLEL 1, OLLAMA_MAX_QUEUE 512, keep_alive 5m)
    assert chat(client, model="phi3").json()["message"]["content"] == "hello fleet 42"
    bad_knobs = ({"error_rate": 2}, {"latency_ms": -1}, {"wrong_models": "phi3"}, {"x": 1},
                 {"num_parallel": 0}, {"no_usage": 1}, {"stream_error_after": -2})  # fmt: skip
    for bad in bad_knobs:
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
    assert stats["received"] == {"/api/chat": 2, "/api/embed": 1}  # model requests, as they arrive
    assert (stats["running"], stats["waiting"], stats["pending"], stats["loading"]) == ({}, 0, 0, False)


def test_one_log_line_per_request(client, server):
    chat(client, model="phi3")
    # The fake writes the line once the answer is out, so the client can be first: poll the log
    # (a bound on a hang, not a speed claim).
    deadline, wanted = time.monotonic() + 10, "POST /api/chat model=phi3 status=200"
    while not any(wanted in line for line in server[1].read_text().splitlines()):
        assert time.monotonic() < deadline, server[1].read_text()[-2000:]
        time.sleep(0.01)


def test_cli_knobs_and_sigterm_exits_0():
    proc, url = start("--quiet", "--wrong-models", "phi3", "--latency-ms", "7", "--num-parallel", "4",
                      "--max-queue", "9", "--keep-alive-s", "60", "--load-ms", "5")  # fmt: skip
    try:
        knobs = httpx.get(f"{url}/_fault", trust_env=False).json()
        assert knobs == {
            "latency_ms": 7, "error_rate": 0.0, "wrong_models": ["phi3:latest"], "stream_error_after": -1,
            "no_usage": False, "num_parallel": 4, "max_queue": 9, "keep_alive_s": 60.0, "load_ms": 5,
        }  # fmt: skip
        # reset turns the faults off and puts Ollama's settings back to how the backend started
        reset = httpx.post(f"{url}/_fault", json={"reset": True}, trust_env=False).json()
        assert (reset["latency_ms"], reset["wrong_models"], reset["num_parallel"]) == (0, [], 4)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
