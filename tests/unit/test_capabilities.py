"""Model capabilities in the catalogue (hxgw/capabilities.py), their rendering for LiteLLM, and
the validation's capability checks (hxgw/capability_checks.py, Validator._chat_body/check_tools)."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import httpx
import jinja2
import pytest
import yaml

from hxgw import capabilities as caps
from hxgw import capability_checks as cc
from hxgw import validation as v
from hxgw.catalogue import ConfigError, parse_catalogue
from hxops import paths

REPO = Path(__file__).resolve().parents[2]


def seed() -> dict:
    return runpy.run_path(str(REPO / "group_data" / "all.py"))


def seed_config() -> dict:
    data = seed()
    catalogue = parse_catalogue(data["backends"], data["models"], data["model_groups"])
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    text = env.from_string((paths.TEMPLATES / "config.yaml.j2").read_text()).render(
        deployments=catalogue.deployments(), router_settings=data["router_settings"]
    )
    return yaml.safe_load(text)


def refusal(change: dict, index: int = 3) -> str:
    """The catalogue's one problem after changing one seed entry (default llama3.2, models[3])."""
    data = seed()
    data["models"][index] = {**data["models"][index], **change}
    with pytest.raises(ConfigError) as error:
        parse_catalogue(data["backends"], data["models"], data["model_groups"])
    (problem,) = error.value.problems
    return problem


@pytest.mark.parametrize(
    ("change", "expected"),
    [({"capabilities": "tools"}, 'capabilities must be a list, got str \'tools\'; write e.g. "capabilities": ["tools"]'),
     ({"capabilities": ["tool"]}, "capabilities lists 'tool' (did you mean 'tools'?), which is not one of 'tools', 'thinking', 'vision'"),
     ({"capabilities": ["tools", "tools"]}, "lists a capability twice; list each once"),
     ({"context_length": "8k"}, "context_length must be a positive integer"),
     ({"context_length": 0}, "context_length must be a positive integer (tokens), got int 0"),
     ({"context_length": True}, "context_length must be a positive integer")],
)  # fmt: skip
def test_bad_capabilities_are_refused_before_anything_runs_naming_the_fix(change, expected):
    problem = refusal(change)
    assert problem.startswith("catalogue: model 'llm01-llama3.2-3b' ") and expected in problem


def test_an_embedding_model_with_capabilities_is_refused():
    problem = refusal({"capabilities": ["tools"]}, index=0)
    assert problem.startswith("catalogue: model 'emb-premium' ")
    assert "is an embedding model with capabilities ['tools']; remove capabilities" in problem


def test_good_capabilities_are_kept_and_undeclared_stays_undeclared():
    data = seed()
    data["models"][3] = {**data["models"][3], "capabilities": ["tools", "vision"], "context_length": 4096}
    data["models"][4] = {k: v for k, v in data["models"][4].items() if k != "capabilities"}
    catalogue = parse_catalogue(data["backends"], data["models"], data["model_groups"])
    assert catalogue.models[3].capabilities == ("tools", "vision")
    assert catalogue.models[3].context_length == 4096
    assert catalogue.models[4].capabilities is None  # not declared: not the same as []


def test_model_info_flags_are_what_litellm_reads():
    assert caps.model_info({"mode": "chat", "capabilities": ["tools"], "context_length": 8192}) == {
        "supports_function_calling": True,
        "supports_reasoning": False,
        "supports_vision": False,
        "max_input_tokens": 8192,
    }
    assert caps.model_info({"mode": "chat"}) == {}  # undeclared: LiteLLM asks Ollama's /api/show
    assert caps.model_info({"mode": "embedding", "capabilities": []}) == {}


def test_a_model_or_group_drops_the_parameters_of_what_a_member_lacks():
    llama = {"name": "a", "capabilities": ["tools"]}
    phi3 = {"name": "b", "capabilities": []}
    qwen = {"name": "c", "capabilities": ["tools", "thinking"]}
    tools = ["tools", "tool_choice", "functions"]
    assert caps.dropped_params([qwen]) == []  # has both: a tools request gets a tool call
    assert caps.dropped_params([llama]) == ["reasoning_effort"]
    assert caps.dropped_params([phi3]) == [*tools, "reasoning_effort"]  # a plain answer, never a 400
    assert caps.dropped_params([llama, phi3]) == [*tools, "reasoning_effort"]
    assert caps.dropped_params([qwen, {"name": "d", "capabilities": ["tools", "thinking"]}]) == []
    assert caps.dropped_params([qwen, {"name": "e"}]) == []  # undeclared: adds nothing
    assert caps.group_gaps("g", [llama, phi3]) == [
        "group 'g' cannot serve tool calls (tools are dropped on every member: the group answers in "
        "plain text): b lacks 'tools', a has it"
    ]
    assert "e declare no capabilities" in caps.group_gaps("g", [llama, {"name": "e"}])[0]


def test_the_seed_renders_flags_and_drops_tools_on_every_hx_chat_member():
    # phi3 alone drops tools too: a tools request to it is answered in plain text
    phi3 = next(e for e in seed_config()["model_list"] if e["model_name"] == "llm02-phi3")
    assert phi3["litellm_params"]["additional_drop_params"][:3] == ["tools", "tool_choice", "functions"]
    config = seed_config()
    entries = config["model_list"]
    hx_chat = [e for e in entries if e["model_name"] == "hx-chat"]
    assert len(hx_chat) == 3
    assert all(
        e["litellm_params"]["additional_drop_params"]
        == ["tools", "tool_choice", "functions", "reasoning_effort"]
        for e in hx_chat
    )
    assert [e["model_info"]["supports_function_calling"] for e in hx_chat] == [True, False, False]
    fast = next(e for e in entries if e["model_name"] == "hx-chat-fast")
    assert "additional_drop_params" not in fast["litellm_params"]
    assert (
        fast["model_info"]["supports_reasoning"] is True and fast["model_info"]["max_input_tokens"] == 40960
    )
    assert next(e for e in entries if e["model_name"] == "emb-perf")["model_info"] == {"mode": "embedding"}


def test_tool_call_judge():
    def answer(message, finish="tool_calls"):
        return {"choices": [{"message": message, "finish_reason": finish}]}

    call = {
        "id": "call_x",
        "type": "function",
        "function": {"name": cc.TOOL_NAME, "arguments": '{"text": "HX-OK"}'},
    }
    assert cc.judge_tool_call(answer({"content": "", "tool_calls": [call]})) == (
        True,
        'called hx_echo({"text": "HX-OK"}), finish_reason tool_calls',
    )
    ok, detail = cc.judge_tool_call(answer({"content": "HX-OK"}, "stop"))
    assert not ok and detail == "no tool call (finish_reason 'stop', content 'HX-OK')"
    bad = {**call, "function": {"name": cc.TOOL_NAME, "arguments": "[1]"}}
    assert not cc.judge_tool_call(answer({"tool_calls": [bad]}))[0]
    assert not cc.judge_tool_call(answer({"tool_calls": [call]}, "stop"))[0]
    assert cc.judge_plain_answer(answer({"content": "hi"}, "stop"))[0]
    assert not cc.judge_plain_answer(answer({"tool_calls": [call]}))[0]


def test_validation_turns_thinking_off_and_calls_tools_where_every_member_has_them():
    data = seed()
    catalogue = parse_catalogue(data["backends"], data["models"], data["model_groups"])
    bodies: list[dict] = []

    key = "sk-" + "k" * 40

    def gateway(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/health/"):
            return httpx.Response(200, json={"status": "healthy"})
        if request.headers.get("authorization") != f"Bearer {key}":  # the auth checks' requests
            return httpx.Response(401, json={"error": {"message": "no", "type": "auth_error", "code": "401"}})
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": n} for n in catalogue.model_names()]})
        body = json.loads(request.content)
        bodies.append(body)
        return httpx.Response(
            200, json={"choices": [{"message": {"content": "HX-OK"}, "finish_reason": "stop"}]}
        )

    transport = httpx.MockTransport(gateway)
    v.validate("gw", "http://198.18.200.39:4000", catalogue, key, transport=transport)
    chats = {b["model"]: b for b in bodies if "tools" not in b and "messages" in b and not b.get("stream")}
    assert chats["hx-chat-fast"]["reasoning_effort"] == "none"
    assert chats["hx-chat-fast"]["max_tokens"] == cc.THINKING_MAX_TOKENS
    assert (
        "reasoning_effort" not in chats["llm01-llama3.2-3b"]
        and chats["llm01-llama3.2-3b"]["max_tokens"] == 10
    )
    tools = [b["model"] for b in bodies if "tools" in b]
    # every chat model and group is asked (a plain answer from those without tools), every
    # member of hx-chat once
    assert sorted(set(tools)) == ["hx-chat", "hx-chat-fast", "hx-chat-premium", "llm01-llama3.2-3b",
                                  "llm01-mistral-small3.2", "llm01-qwen3-1.7b", "llm02-gemma2-2b",
                                  "llm02-phi3"]  # fmt: skip
    assert tools.count("hx-chat") == 3
