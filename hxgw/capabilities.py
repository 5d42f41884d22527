"""What each model can do (tools, thinking, vision; its context length), and what follows for
LiteLLM's config and for the groups that load-balance over several models.

Pure functions over plain model and group dicts (the catalogue's entries, whose shape
hxgw.catalogue_entries checks), so any schema can call them:
- `model_info(model)`: the LiteLLM `model_info` flags to render for it.
- `dropped_params(members)`: the OpenAI parameters to drop on a model, or on every member of a
  group, so that no member refuses a request for a capability it lacks.
- `group_gaps(name, members)`: for people, which requests the group cannot serve on every member.

Why the groups need this: Ollama answers 400 "<model> does not support tools" (server/routes.go
ChatHandler -> images.go CheckCapabilities) for a tools request to a model whose template has no
tools, and LiteLLM 1.108.7 neither retries a 400 on another member (router.py
should_retry_this_error) nor routes by capability (its pre-call checks filter on context window
and on provider-level parameters only). A tool-calling client of a group mixing both kinds would
fail on a share of its requests, depending on which member the shuffle picked. Dropping `tools`
on every member (LiteLLM's per-deployment `additional_drop_params`) makes the group answer every
tools request the same way: a plain answer, never a tool call. A single model without tools
gets the same treatment, so a client's tools request never fails on it. Clients that need tool
calls use a model or a group whose members all have them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CAPABILITIES = ("tools", "thinking", "vision")
# LiteLLM 1.108.7 model_info keys (litellm/types/utils.py ModelInfoBase): /model/info shows them,
# litellm.supports_*() read them, and router.py _pre_call_checks reads max_input_tokens.
FLAGS = {"tools": "supports_function_calling", "thinking": "supports_reasoning", "vision": "supports_vision"}
# The OpenAI parameters that reach Ollama as a capability it checks (LiteLLM
# llms/ollama/chat/transformation.py map_openai_params: tools/functions -> tools,
# reasoning_effort -> think).
DROP_WHEN_LACKING = {"tools": ("tools", "tool_choice", "functions"), "thinking": ("reasoning_effort",)}
# What a client loses on the members without the capability, for group_gaps.
GAP = {
    "tools": "tool calls (tools are dropped on every member: the group answers in plain text)",
    "thinking": "the same answer shape: members with thinking add reasoning_content and spend "
    "max_tokens on it, reasoning_effort is dropped on every member",
    "vision": "images (members without vision answer without seeing them)",
}
EXAMPLE = '"capabilities": ["tools"]'


def declared(model: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The model's capabilities, or None when the entry does not declare them."""
    caps = model.get("capabilities")
    return None if caps is None else tuple(caps)


def model_info(model: Mapping[str, Any]) -> dict[str, Any]:
    """LiteLLM model_info flags for one chat model: a supports_* flag per known capability (true
    or false once the model declares its capabilities) and max_input_tokens."""
    info: dict[str, Any] = {}
    caps = declared(model)
    if caps is not None and model.get("mode", "chat") == "chat":
        info.update({flag: cap in caps for cap, flag in FLAGS.items()})
    if model.get("context_length"):
        info["max_input_tokens"] = model["context_length"]
    return info


def split(members: Sequence[Mapping[str, Any]], cap: str) -> tuple[list[str], list[str]]:
    """(names with the capability, names without) among members that declare capabilities."""
    known = [(m["name"], declared(m)) for m in members if declared(m) is not None]
    return [n for n, caps in known if cap in caps], [n for n, caps in known if cap not in caps]


def dropped_params(members: Sequence[Mapping[str, Any]]) -> list[str]:
    """OpenAI parameters to drop on a model (one member) or on every member of a group: those of
    each capability that a member declaring its capabilities lacks. A model without tools then
    answers a tools request in plain text, as a model with tools may choose to, instead of
    Ollama's 400 (issue 10: a common parameter never fails a request); a group answers alike on
    every member. Members that declare nothing add nothing."""
    dropped: list[str] = []
    for cap, params in DROP_WHEN_LACKING.items():
        if split(members, cap)[1]:
            dropped.extend(params)
    return dropped


def group_gaps(name: str, members: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per request kind the group cannot serve on every member, for the operator."""
    undeclared = [m["name"] for m in members if declared(m) is None]
    if undeclared and len(undeclared) < len(members):
        return [
            f"group {name!r}: {', '.join(undeclared)} declare no capabilities, so the deploy cannot "
            "tell what every member serves; add capabilities to each member (e.g. "
            f"{EXAMPLE}, or [] for plain chat)"
        ]
    gaps = []
    for cap in CAPABILITIES:
        having, lacking = split(members, cap)
        if having and lacking:
            gaps.append(
                f"group {name!r} cannot serve {GAP[cap]}: {', '.join(lacking)} "
                f"{'lacks' if len(lacking) == 1 else 'lack'} {cap!r}, {', '.join(having)} "
                f"{'has' if len(having) == 1 else 'have'} it"
            )
    return gaps
