"""The validation's checks for model capabilities (hxgw/capabilities.py): thinking models get a
budget and thinking off for the deterministic check, tools-capable models must answer a tools
request with a tool call, and groups whose members differ must answer it in plain text.

Pure helpers; hxgw/validation.py's Validator makes the calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

# Thinking models (qwen3...) think first, and Ollama counts the thinking against max_tokens: with
# 10 tokens the answer would be empty (done_reason "length"). The deterministic check turns
# thinking off the way a client does (reasoning_effort "none": LiteLLM sends think=false), and
# leaves room for Ollama releases before 0.9 that ignore it and think inline in <think> tags.
THINKING_MAX_TOKENS = 512
TOOL_NAME = "hx_echo"
TOOL_PROMPT = f"Call the {TOOL_NAME} tool with the text HX-OK. Return exactly the text: HX-OK"
TOOL = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": "Echo a text back to the user.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    },
}


def capabilities_of(models: Iterable[Any]) -> list[tuple[str, ...] | None]:
    """Each model's declared capabilities (None: not declared)."""
    return [getattr(m, "capabilities", None) for m in models]


def thinks(models: Iterable[Any]) -> bool:
    """True when a model behind the name thinks (so the checks must mind its budget)."""
    return any(caps and "thinking" in caps for caps in capabilities_of(models))


def tools_plan(models: list[Any]) -> str | None:
    """'call': every model has tools, a tools request must come back as a tool call; 'plain': some
    (or all) lack tools, so the deploy drops tools and each answers in plain text; None:
    capabilities not declared, nothing to check."""
    caps = capabilities_of(models)
    if any(c is None for c in caps):
        return None
    return "call" if all("tools" in c for c in caps) else "plain"


def judge_tool_call(body: Any) -> tuple[bool, str]:
    """A tools request to a tools-capable model: finish_reason tool_calls, a call of TOOL_NAME with
    JSON-object arguments and an id (what an OpenAI client needs to answer it)."""
    try:
        choice = body["choices"][0]
        calls = choice["message"].get("tool_calls") or []
    except (KeyError, IndexError, TypeError, AttributeError):
        return False, "tool answer has no choices[0].message"
    if not calls:
        content = choice["message"].get("content")
        reason = choice.get("finish_reason")
        return False, f"no tool call (finish_reason {reason!r}, content {str(content or '')[:60]!r})"
    function = calls[0].get("function") or {}
    try:
        arguments = json.loads(function.get("arguments") or "")
    except (TypeError, ValueError):
        arguments = None
    if function.get("name") != TOOL_NAME or not isinstance(arguments, dict) or not calls[0].get("id"):
        return False, f"malformed tool call {json.dumps(calls[0])[:120]}"
    if choice.get("finish_reason") != "tool_calls":
        return False, f"tool call with finish_reason {choice.get('finish_reason')!r}, expected 'tool_calls'"
    return True, f"called {TOOL_NAME}({json.dumps(arguments)}), finish_reason tool_calls"


def judge_plain_answer(body: Any) -> tuple[bool, str]:
    """A tools request to a group whose members drop tools: a plain answer, no tool call."""
    try:
        message = body["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        return False, "answer has no choices[0].message"
    if message.get("tool_calls"):
        return False, "a tool call came back, though tools are dropped on every member"
    return True, "answered in plain text (tools dropped on every member)"
