"""What Ollama refuses or answers differently, per release, and so the fake (testbed/
ollama_request.py and fake_ollama.py cite the lines): think values, keep_alive durations, empty
inputs, and the order of the checks. Never stricter either: what a release accepts passes."""

from __future__ import annotations

import httpx
import pytest

from tests.unit import fake_ollama_helpers as fo
from tests.unit.fake_ollama_helpers import chat, start

server, http, client = fo.server, fo.http, fo.client  # the fixtures, by name
LEVELS = '"high", "medium", "low", true, or false'
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.fixture(scope="module", params=["0.10.1", "0.17.7", "0.22.0"])
def release(request):
    """A fake imitating another Ollama release: (version, client)."""
    proc, url = start("--quiet", "--version", request.param)
    with httpx.Client(base_url=url, timeout=10, trust_env=False) as c:
        yield request.param, c
    proc.terminate()
    proc.wait(timeout=10)


def answer(r: httpx.Response) -> tuple[int, object]:
    return r.status_code, r.json()


@pytest.mark.parametrize(
    ("keep_alive", "error"),
    [
        ("300", 'time: missing unit in duration "300"'),
        ("5x", 'time: unknown unit "x" in duration "5x"'),
        ("", 'time: invalid duration ""'),
        ("soon", 'time: invalid duration "soon"'),
        (True, "Unsupported type: 'bool'"),
    ],
)
def test_keep_alive_is_a_go_duration_or_a_number(client, keep_alive, error):
    # api/types.go Duration.UnmarshalJSON -> time.ParseDuration; ShouldBindJSON's error is a 400.
    assert answer(chat(client, keep_alive=keep_alive)) == (400, {"error": error})


@pytest.mark.parametrize("keep_alive", [300, 1.5, "0", "-1m", "1h30m", "250ms", "+5m"])
def test_keep_alive_that_go_parses_is_accepted(client, keep_alive):
    assert chat(client, keep_alive=keep_alive).status_code == 200


def test_the_binding_is_checked_before_the_model(client):
    r = chat(client, model="no-such-model", keep_alive="300")
    assert answer(r) == (400, {"error": 'time: missing unit in duration "300"'})


def test_0_12_think_takes_only_the_three_levels(client):
    # api/types.go ThinkValue.UnmarshalJSON (v0.12.10 lines 938-959)
    r = chat(client, model="qwen3:1.7b", think="max")
    assert answer(r) == (400, {"error": f'invalid think value: "max" (must be {LEVELS})'})


def test_0_12_think_of_another_type(client):
    r = chat(client, model="qwen3:1.7b", think=1)
    assert answer(r) == (400, {"error": f"think must be a boolean or string ({LEVELS})"})


def test_0_12_a_think_level_is_for_gpt_oss_only(client):
    # routes.go ChatHandler v0.12.10 lines 2050-2053 (harmony models only)
    r = chat(client, model="qwen3:1.7b", think="high")
    assert answer(r) == (400, {"error": 'think value "high" is not supported for this model'})


def test_a_think_level_on_a_model_without_thinking(client):
    r = chat(client, model="phi3", think="low")
    assert answer(r) == (400, {"error": '"phi3" does not support thinking'})


def test_think_is_checked_before_tools(client):
    # routes.go ChatHandler: the thinking check (line 1975) before scheduleRunner's capabilities
    r = chat(client, model="phi3", think=True, tools=[TOOL])
    assert answer(r) == (400, {"error": '"phi3" does not support thinking'})


def test_a_think_level_per_release(release):
    version, c = release
    r = chat(c, model="qwen3:1.7b", think="high")
    wants = {
        "0.10.1": (400, "json: cannot unmarshal string into Go struct field ChatRequest.think of type bool"),
        "0.17.7": (200, None),  # a level on any thinking model from 0.17.7
        "0.22.0": (200, None),
    }
    assert (r.status_code, r.json().get("error")) == wants[version]


def test_max_from_0_21_3(release):
    version, c = release
    r = chat(c, model="qwen3:1.7b", think="max")
    wants = {
        "0.10.1": (400, "json: cannot unmarshal string into Go struct field ChatRequest.think of type bool"),
        "0.17.7": (400, f'invalid think value: "max" (must be {LEVELS})'),
        "0.22.0": (200, None),  # commit c2ebb4d57 "api: accept "max" as a think value"
    }
    assert (r.status_code, r.json().get("error")) == wants[version]


@pytest.mark.parametrize("empty", ["", [], None])
def test_an_empty_embed_input_answers_no_vectors(client, empty):
    # routes.go EmbedHandler (v0.12.10): len(input) == 0 -> EmbedResponse{Embeddings: [][]float32{}}
    body = {"model": "all-minilm"} | ({} if empty is None else {"input": empty})
    assert answer(client.post("/api/embed", json=body)) == (200, {"model": "all-minilm", "embeddings": []})


def test_an_empty_prompt_loads_the_model(client):
    r = client.post("/api/generate", json={"model": "phi3", "prompt": "", "stream": False}).json()
    assert (r["done"], r["done_reason"], r["response"]) == (True, "load", "")


def test_an_empty_prompt_with_keep_alive_0_unloads(client):
    client.post("/api/generate", json={"model": "phi3", "prompt": ""})
    r = client.post("/api/generate", json={"model": "phi3", "prompt": "", "keep_alive": 0}).json()
    assert (r["done"], r["done_reason"]) == (True, "unload")
    assert "phi3:latest" not in [m["name"] for m in client.get("/api/ps").json()["models"]]


def test_no_messages_with_keep_alive_0_unloads(client):
    r = client.post("/api/chat", json={"model": "phi3", "messages": [], "keep_alive": 0}).json()
    assert (r["done_reason"], r["message"]) == ("unload", {"role": "assistant", "content": ""})
