"""The fake Ollama is as strict as Ollama 0.12.10 where LiteLLM or a client can tell the difference:
thinking, capabilities, tool calls, options, format, embeddings' dimensions, load and failures."""

from __future__ import annotations

import json
import math
import threading

import httpx
import pytest

from tests.unit import fake_ollama_helpers as fo
from tests.unit.fake_ollama_helpers import EXACT, chat, start, stats, stream_lines

server, http, client = fo.server, fo.http, fo.client  # the fixtures, by name
TOOL = {
    "type": "function",
    "function": {
        "name": "hx_echo",
        "description": "Echo a text back",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    },
}


@pytest.fixture
def old_ollama(request):
    """A second fake imitating an older Ollama release (the test's parameter)."""
    proc, url = start("--quiet", "--version", request.param)
    with httpx.Client(base_url=url, timeout=10, trust_env=False) as c:
        yield c
    proc.terminate()
    proc.wait(timeout=10)


def test_thinking_counts_against_num_predict(client):
    small = chat(client, model="qwen3:1.7b", options={"num_predict": 10}).json()
    assert small["message"]["content"] == "" and small["message"]["thinking"]
    assert (small["done_reason"], small["eval_count"]) == ("length", 10)
    roomy = chat(client, model="qwen3:1.7b", options={"num_predict": 200}).json()
    assert roomy["message"]["content"] == "hello fleet 42" and roomy["done_reason"] == "stop"
    assert roomy["eval_count"] > len("hello fleet 42") // 4 + 10  # thinking tokens are counted


def test_think_false_and_think_on_a_model_without_thinking(client):
    off = chat(client, model="qwen3:1.7b", think=False, options={"num_predict": 10}).json()
    assert off["message"] == {"role": "assistant", "content": "hello fleet 42"}
    r = chat(client, think=True)
    assert (r.status_code, r.json()) == (400, {"error": '"llama3.2:3b" does not support thinking'})


@pytest.mark.parametrize("old_ollama", ["0.9.0"], indirect=True)
def test_before_0_12_4_an_unset_think_thinks_inline(old_ollama):
    assert old_ollama.get("/api/version").json() == {"version": "0.9.0"}
    inline = chat(old_ollama, model="qwen3:1.7b").json()["message"]
    assert "thinking" not in inline
    assert inline["content"].startswith("<think>\n") and inline["content"].endswith(
        "</think>\n\nhello fleet 42"
    )
    field = chat(old_ollama, model="qwen3:1.7b", think=True).json()["message"]
    assert field["content"] == "hello fleet 42" and field["thinking"]


@pytest.mark.parametrize("old_ollama", ["0.8.0"], indirect=True)
def test_before_0_9_there_is_no_think_and_no_thinking_capability(old_ollama):
    show = old_ollama.post("/api/show", json={"model": "qwen3:1.7b"}).json()
    assert show["capabilities"] == ["completion", "tools"]
    message = chat(old_ollama, model="qwen3:1.7b", think=False).json()["message"]
    assert message["content"].startswith("<think>") and "thinking" not in message


def test_tools_on_a_model_without_them_is_400_worded_as_ollama(client):
    r = chat(client, model="phi3", tools=[TOOL])
    assert (r.status_code, r.json()) == (
        400,
        {"error": "registry.ollama.ai/library/phi3:latest does not support tools"},
    )
    r = chat(client, model="mxbai-embed-large", tools=[TOOL])
    assert r.json() == {"error": '"mxbai-embed-large" does not support chat'}


def test_tool_calls_plain_and_streamed(client):
    prompt = "Call hx_echo. Return exactly the text: HX-OK"
    body = chat(client, content=prompt, tools=[TOOL]).json()
    (call,) = body["message"]["tool_calls"]
    assert call["id"].startswith("call_") and len(call["id"]) == 13
    assert call["function"] == {"index": 0, "name": "hx_echo", "arguments": {"text": "HX-OK"}}
    assert body["message"]["content"] == "" and body["done_reason"] == "stop"
    stream = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": prompt}], "tools": [TOOL]}
    _, lines = stream_lines(client, "/api/chat", stream)
    with_calls = [x for x in lines if x["message"].get("tool_calls")]
    assert len(with_calls) == 1 and with_calls[0]["done"] is False and lines[-1]["done"] is True
    assert with_calls[0]["message"]["tool_calls"][0]["function"]["arguments"] == {"text": "HX-OK"}
    # given the tool's result, the model answers
    messages = [{"role": "user", "content": EXACT}, {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "tool", "content": "HX-OK"}]  # fmt: skip
    after = client.post("/api/chat", json={**stream, "messages": messages, "stream": False}).json()
    assert after["message"]["content"] == "hello fleet 42" and "tool_calls" not in after["message"]


def test_stop_and_format_are_honoured(client):
    assert chat(client, options={"stop": ["fleet"]}).json()["message"]["content"] == "hello "
    as_json = chat(client, format="json").json()["message"]["content"]
    assert json.loads(as_json) == {"answer": "hello fleet 42"}
    schema = {"type": "object", "properties": {"word": {"type": "string"}, "n": {"type": "integer"}}}
    assert json.loads(chat(client, format=schema).json()["message"]["content"]) == {
        "word": "hello fleet 42",
        "n": 1,
    }


@pytest.mark.parametrize(
    ("extra", "error"),
    [({"options": {"stop": "x"}}, 'option "stop" must be of type array'),
     ({"options": {"stop": [1]}}, 'option "stop" must be of an array of strings'),
     ({"options": {"num_predict": "10"}}, 'option "num_predict" must be of type integer'),
     ({"options": {"temperature": "hot"}}, 'option "temperature" must be of type float32'),
     ({"format": "xml"}, 'invalid format: "\\"xml\\""; expected "json" or a valid JSON Schema object')],
)  # fmt: skip
def test_ill_typed_options_are_refused_as_ollama_does(client, extra, error):
    r = chat(client, **extra)
    assert (r.status_code, r.json()) == (500, {"error": error})


def test_unknown_options_are_ignored_as_ollama_does(client):
    assert chat(client, options={"no_such_option": 1}).json()["message"]["content"] == "hello fleet 42"


def test_embed_dimensions_truncate_and_renormalise(client):
    full = client.post("/api/embed", json={"model": "mxbai-embed-large", "input": "x"}).json()
    cut = client.post("/api/embed", json={"model": "mxbai-embed-large", "input": "x", "dimensions": 256})
    (vec,) = cut.json()["embeddings"]
    assert len(vec) == 256 and math.isclose(math.sqrt(sum(v * v for v in vec)), 1.0, abs_tol=1e-4)
    head = full["embeddings"][0][:256]
    norm = math.sqrt(sum(v * v for v in head))
    assert all(math.isclose(a, b / norm, abs_tol=1e-5) for a, b in zip(vec, head, strict=True))
    big = client.post("/api/embed", json={"model": "all-minilm", "input": "x", "dimensions": 5000})
    assert len(big.json()["embeddings"][0]) == 384


def test_mid_stream_error_after_n_chunks(client):
    client.post("/_fault", json={"stream_error_after": 2})
    body = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": EXACT}]}
    r, lines = stream_lines(client, "/api/chat", body)
    assert r.status_code == 200 and len(lines) == 3
    assert [x["done"] for x in lines[:2]] == [False, False]
    assert lines[2] == {"error": "an error was encountered while running the model: unexpected EOF"}
    client.post("/_fault", json={"stream_error_after": 0})
    r = client.post("/api/chat", json=body)  # nothing written yet: a plain 500
    assert r.status_code == 500 and r.json()["error"].startswith("an error was encountered")


def test_done_chunk_without_usage(client):
    client.post("/_fault", json={"no_usage": True})
    body = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": EXACT}]}
    _, lines = stream_lines(client, "/api/chat", body)
    assert lines[-1]["done"] is True and "eval_count" not in lines[-1]
    assert "prompt_eval_count" not in lines[-1]
    assert "".join(x["message"]["content"] for x in lines) == "hello fleet 42"


def test_keep_alive_unloads_and_the_next_request_pays_a_cold_load(client):
    client.post("/_fault", json={"load_ms": 40})
    model = "mistral-small3.2"
    cold = chat(client, model=model, keep_alive=0).json()
    assert cold["load_duration"] >= 41_000_000
    assert model + ":latest" not in [m["name"] for m in client.get("/api/ps").json()["models"]]
    again = chat(client, model=model, keep_alive="5m").json()
    assert again["load_duration"] >= 41_000_000  # unloaded: loaded again
    loaded = {m["name"]: m for m in client.get("/api/ps").json()["models"]}
    assert loaded[model + ":latest"]["expires_at"].endswith("Z")
    assert chat(client, model=model).json()["load_duration"] == 1_000_000  # warm
    r = chat(client, model=model, keep_alive="soon")
    assert (r.status_code, r.json()) == (400, {"error": 'time: invalid duration "soon"'})


def test_64_concurrent_keep_alive_clients_are_all_served(client, server):
    """Issue 12/15: 16 keep-alive clients got httpx.ReadError (a listen backlog of 5)."""
    before = stats(client)["total"]
    barrier, failures, statuses = threading.Barrier(64), [], []

    def one_client():
        with httpx.Client(base_url=server[0], timeout=120, trust_env=False) as c:
            barrier.wait()
            for _ in range(5):
                try:
                    statuses.append(chat(c).status_code)
                except httpx.HTTPError as error:
                    failures.append(repr(error))

    threads = [threading.Thread(target=one_client) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert failures == [] and statuses == [200] * 320
    assert stats(client)["total"] - before == 320
