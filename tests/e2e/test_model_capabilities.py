"""What clients see through the gateway when the backends behave as Ollama does: thinking that
spends max_tokens, tool calls where every member has tools, hx-chat answering tools requests in
plain text, a failure mid-stream, and a backend busy loading a model (testbed/fake_ollama.py)."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from testbed import fleet
from tests.e2e import helpers
from tests.e2e.conftest import GATEWAY

PROMPT = "Return exactly the text: HX-OK"
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def api(first_deploy):
    key = helpers.master_key(GATEWAY)
    url = f"http://{fleet.find(GATEWAY).address}:4000"
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120, trust_env=False
    ) as c:
        yield c


def fault(backend: str, knobs: dict) -> None:
    url = f"http://{fleet.find(backend).address}:{fleet.OLLAMA_PORT}/_fault"
    assert httpx.post(url, json=knobs, timeout=10, trust_env=False).status_code == 200


def chat(api, model: str, **extra) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], **extra}
    return api.post("/v1/chat/completions", json=body)


def test_a_thinking_model_spends_a_small_max_tokens_on_thinking(api):
    small = chat(api, "hx-chat-fast", max_tokens=10).json()["choices"][0]
    assert small["finish_reason"] == "length"
    assert not small["message"]["content"] and small["message"]["reasoning_content"]
    off = chat(api, "hx-chat-fast", max_tokens=10, reasoning_effort="none").json()["choices"][0]
    assert (off["message"]["content"], off["finish_reason"]) == ("HX-OK", "stop")


def test_tool_calls_plain_and_streamed_on_a_model_with_tools(api):
    answer = chat(api, "llm01-llama3.2-3b", tools=[TOOL]).json()["choices"][0]
    assert answer["finish_reason"] == "tool_calls"
    (call,) = answer["message"]["tool_calls"]
    assert call["id"] and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "HX-OK"}
    body = {"model": "hx-chat-premium", "messages": [{"role": "user", "content": PROMPT}], "tools": [TOOL]}
    with api.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data: {")]
    calls = [c for e in events for c in e["choices"][0]["delta"].get("tool_calls") or []]
    assert [c["function"]["name"] for c in calls] == ["get_weather"] and calls[0]["id"]
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_a_model_without_tools_and_hx_chat_answer_tools_requests_in_plain_text(api):
    """Ollama refuses tools to phi3 (400 'does not support tools'); the deploy drops them there,
    so its tools requests get a plain answer and the backend never sees one."""
    llm02 = f"http://{fleet.find('llm-02').address}:{fleet.OLLAMA_PORT}/_stats"
    before = httpx.get(llm02, trust_env=False).json()["statuses"].get("400", 0)
    answers = [chat(api, "hx-chat", tools=[TOOL]) for _ in range(9)] + [chat(api, "llm02-phi3", tools=[TOOL])]
    assert [r.status_code for r in answers] == [200] * 10
    assert all(r.json()["choices"][0]["message"]["content"] == "HX-OK" for r in answers)
    assert httpx.get(llm02, trust_env=False).json()["statuses"].get("400", 0) == before  # none refused


def test_a_failure_mid_stream_reaches_the_client_as_an_error_event(api):
    fault("llm-01", {"stream_error_after": 1})
    try:
        words = [{"role": "user", "content": "Return exactly the text: one two three four"}]
        body = {"model": "llm01-llama3.2-3b", "messages": words, "stream": True}
        with api.stream("POST", "/v1/chat/completions", json=body) as r:
            status, lines = r.status_code, [line for line in r.iter_lines() if line]
    finally:
        fault("llm-01", {"reset": True})
    assert status == 200  # Ollama had already answered 200: the error comes inside the stream
    assert "data: [DONE]" not in lines
    error = json.loads(lines[-1][5:])["error"]
    assert "an error was encountered while running the model" in error["message"]


def test_a_backend_busy_loading_answers_server_busy_through_the_gateway(api):
    """Ollama answers 503 "server busy" only while its scheduler's pending queue is full, which
    happens while a model loads (server/sched.go GetRunner; ollama/ollama#7758): a cold model
    loading for 15 s with OLLAMA_MAX_QUEUE 0 leaves no room for a second request."""
    backend = f"http://{fleet.find('llm-01').address}:{fleet.OLLAMA_PORT}"
    unload = {"model": "mistral-small3.2", "messages": [], "keep_alive": 0}
    assert httpx.post(f"{backend}/api/chat", json=unload, timeout=10, trust_env=False).status_code == 200
    fault("llm-01", {"load_ms": 15000, "max_queue": 0})
    try:
        first: list = []
        holder = threading.Thread(target=lambda: first.append(chat(api, "llm01-mistral-small3.2")))
        holder.start()
        wait_stats(f"{backend}/_stats", lambda s: s["loading"], "mistral-small3.2 loading")
        busy = chat(api, "llm01-mistral-small3.2")
        holder.join(timeout=120)
    finally:
        fault("llm-01", {"reset": True})
    assert busy.status_code == 503
    assert "server busy, please try again.  maximum pending requests exceeded" in busy.text
    assert first[0].status_code == 200 and first[0].json()["choices"][0]["message"]["content"] == "HX-OK"


def wait_stats(stats_url: str, predicate, what: str, attempts: int = 500) -> None:
    """Poll the backend's /_stats until predicate holds (observable state, no fixed sleep)."""
    for _ in range(attempts):
        if predicate(httpx.get(stats_url, timeout=10, trust_env=False).json()):
            return
        threading.Event().wait(0.02)
    raise AssertionError(f"the backend never reached: {what}")
