"""What a request to Ollama may contain and what Ollama answers: the fake's pure logic (stdlib only).

Each rule cites the Ollama source it imitates (github.com/ollama/ollama; testbed/README.md has
the table). fake_ollama.py imports this module by its plain name: it runs as a script.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import string
import struct

# The behaviour imitated by default is Ollama 0.12.10's: thinking on by default (0.12.4,
# commit 90d429f5a "turn on thinking mode for all reasoning models") and tool-call ids (0.12.10,
# server/routes.go toolCallId). --version picks an older behaviour, see Behaviour.
DEFAULT_VERSION = "0.12.10"
THINK_FIELD_SINCE = (0, 9, 0)  # api/types.go ChatRequest.Think, message.thinking (#10584)
THINK_DEFAULT_ON_SINCE = (0, 12, 4)
TOOL_CALL_ID_SINCE = (0, 12, 10)
MODIFIED_AT = "2025-06-01T12:00:00.000000000Z"
MID_STREAM_ERROR = "an error was encountered while running the model: unexpected EOF"
CAPABILITIES = ("completion", "tools", "thinking", "vision", "embedding")  # types/model/capability.go
# base name -> (dimensions, family, parameter size) of the well-known embedding models
KNOWN_EMBED = {
    "mxbai-embed-large": (1024, "bert", "335M"),
    "nomic-embed-text": (768, "nomic-bert", "137M"),
    "all-minilm": (384, "bert", "23M"),
}
CHAT_EMBED_DIM = 4096
EXACT_RE = re.compile(r"Return exactly the text:[ \t]*([^\r\n]*)")
THINKING = (
    "The user asks me to return an exact text. I should reply with that text and nothing else, "
    "no quotes, no explanation, no punctuation added. Let me make sure I copy it exactly as given, "
    "keeping its case and characters. Then I answer with it alone."
)  # about 60 tokens, like a small model's short reasoning
# api/types.go Options: the JSON type of each option LiteLLM or a client may send (FromMap
# refuses another type with `option %q must be of type ...`); unknown keys are only logged.
OPTION_TYPES = {
    **dict.fromkeys(("num_predict", "num_ctx", "seed", "top_k", "num_keep", "repeat_last_n",
                     "num_batch", "num_gpu", "num_thread", "mirostat"), "integer"),
    **dict.fromkeys(("temperature", "top_p", "min_p", "typical_p", "repeat_penalty",
                     "presence_penalty", "frequency_penalty", "mirostat_tau", "mirostat_eta"),
                    "float32"),
    "stop": "array", "penalize_newline": "boolean", "numa": "boolean", "use_mmap": "boolean",
}  # fmt: skip


class OllamaError(Exception):
    """An answer `{"error": message}` with this HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


class Behaviour:
    """Which Ollama release the fake imitates, and what follows from it."""

    def __init__(self, version: str = DEFAULT_VERSION):
        v = version_tuple(version)
        if len(v) != 3:
            raise ValueError(f"version {version!r} is not X.Y.Z")
        self.version = version
        self.think_field = v >= THINK_FIELD_SINCE
        self.think_default_on = v >= THINK_DEFAULT_ON_SINCE
        self.tool_call_ids = v >= TOOL_CALL_ID_SINCE
        self.release = v

    def thinking_mode(self, think, model: dict) -> str:
        """'field' (message.thinking), 'inline' (<think>...</think> in content) or 'off', for a
        `think` already bound (ollama_request.think_value: None, a boolean or a level).

        server/routes.go ChatHandler: a model with the thinking capability gets think=true when
        the request leaves it unset (0.12.4+); a think that is on (ThinkValue.Bool: true or a
        level) for a model without it is a 400. Before 0.12.4 an unset think let the model's
        template think inline; before 0.9.0 `think` did not exist and thinking models always
        thought inline."""
        thinks = "thinking" in model["caps"]
        if not self.think_field:
            return "inline" if thinks else "off"
        if think not in (None, False) and not thinks:
            raise OllamaError(400, f'"{model["requested"]}" does not support thinking')
        if not thinks or think is False:
            return "off"
        if think is None and not self.think_default_on:
            return "inline"
        return "field"


def norm(name: str) -> str:
    """Ollama's tag rule: a name without a tag means ':latest' (a registry port is no tag)."""
    name = name.strip()
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def make_model(spec: str) -> dict:
    """'name', 'name=embed[:DIM]' or 'name=tools+thinking+vision' (capabilities beside
    completion) -> the record behind tags, show and the endpoints."""
    name, _, kind = spec.partition("=")
    name = norm(name)
    base = name.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    known = KNOWN_EMBED.get(base)
    dim = known[0] if known else 0
    caps = ["completion"]
    if kind.startswith("embed"):
        dim = int(kind.partition(":")[2] or dim or 768)
    elif kind:
        extra = kind.split("+")
        bad = [c for c in extra if c not in CAPABILITIES[1:4]]
        if bad:
            raise ValueError(f"model {name}: unknown capability {bad[0]!r}; use tools, thinking, vision")
        caps += [c for c in CAPABILITIES if c in extra]
    if dim:
        caps = ["embedding"]
    hit = re.search(r"(\d+(?:\.\d+)?)([bm])\b", name.lower())  # "3b" in "llama3.2:3b"
    psize = known[2] if known else (hit.group(1) + hit.group(2).upper() if hit else "7B")
    params = int(float(psize[:-1]) * (1e9 if psize.endswith("B") else 1e6))
    family = known[1] if known else (re.match(r"[a-z]*", base).group() or "llama")
    details = {"parent_model": "", "format": "gguf", "family": family, "families": [family],
               "parameter_size": psize, "quantization_level": "F16" if dim else "Q4_K_M"}  # fmt: skip
    size = int(params * (2 if dim else 0.6))  # F16 is 2 bytes per parameter, Q4_K_M about 0.6
    return {"name": name, "base": base, "dim": dim, "params": params, "size": size, "caps": caps,
            "digest": hashlib.sha256(name.encode()).hexdigest(), "details": details}  # fmt: skip


def template_of(model: dict) -> str:
    """A chat template as LiteLLM reads it: llms/ollama/common_utils.py _supports_function_calling
    looks for "tools" in /api/show's template, as a real tools-capable template has."""
    if "tools" in model["caps"]:
        return "{{- if .Tools }}{{ range .Tools }}{{ . }}{{ end }}{{ end }}{{ .Prompt }}"
    return "{{ .Prompt }}"


def check_options(options) -> dict:
    """api/types.go Options.FromMap: a known option of the wrong JSON type is refused (the
    scheduler's error path, server/routes.go handleScheduleError, answers it with 500)."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise OllamaError(400, "json: cannot unmarshal options into map[string]interface {}")
    for key, value in options.items():
        want = OPTION_TYPES.get(key)
        if want is None or value is None:
            continue
        ok = {
            "integer": isinstance(value, (int, float)) and not isinstance(value, bool),
            "float32": isinstance(value, (int, float)) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "array": isinstance(value, list),
        }[want]
        if not ok:
            raise OllamaError(500, f'option "{key}" must be of type {want}')
        if want == "array" and not all(isinstance(s, str) for s in value):
            raise OllamaError(500, f'option "{key}" must be of an array of strings')
    return options


def check_format(fmt) -> None:
    """llm/llama_server.go: format is "json" or a JSON schema object, else an error (500)."""
    if fmt in (None, "", "json") or isinstance(fmt, dict):
        return
    raw = json.dumps(json.dumps(fmt, separators=(",", ":")))
    raise OllamaError(500, f'invalid format: {raw}; expected "json" or a valid JSON Schema object')


def tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


def exact_answer(text: str) -> str | None:
    hit = EXACT_RE.search(text)
    return hit.group(1).strip() if hit else None


def example_value(schema, text: str):
    """A value of a JSON schema's type: strings get `text`, so answers stay deterministic."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: example_value(v, text) for k, v in props.items()}
    if kind == "array":
        return [example_value(schema.get("items") or {}, text)]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(kind, text)


def formatted(answer: str, fmt) -> str:
    """`format` honoured: JSON mode answers an object, a schema gets an instance of it."""
    if fmt == "json":
        return json.dumps({"answer": answer})
    if isinstance(fmt, dict):
        return json.dumps(example_value(fmt, answer))
    return answer


def apply_stop(text: str, stop) -> tuple[str, bool]:
    """Ollama stops at the first stop sequence and leaves it out (done_reason "stop")."""
    cut = min((i for s in stop or [] if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def budget(thinking: str, content: str, num_predict) -> tuple[str, str, str, int]:
    """Thinking tokens count against num_predict (and in eval_count) before the answer's:
    a small budget leaves empty content and done_reason "length" (runner/ollamarunner)."""
    limit = int(num_predict) if isinstance(num_predict, (int, float)) and num_predict > 0 else 0
    used = tokens(thinking) + tokens(content)
    if not limit or used <= limit:
        return thinking, content, "stop", used
    if tokens(thinking) >= limit:
        return thinking[: limit * 4], "", "length", limit
    return thinking, content[: (limit - tokens(thinking)) * 4], "length", limit


def tool_calls(tools, last_user: str, ids: bool, call_id) -> list[dict]:
    """The model calls the first function offered, arguments an instance of its parameters
    schema (strings: the exact text asked for, else "HX"). api/types.go ToolCall: id (0.12.10+),
    function.index, function.name, function.arguments as a JSON object."""
    fn = next((t.get("function") for t in tools if isinstance(t, dict) and t.get("function")), None)
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise OllamaError(400, "invalid tool: function.name is required")
    args = example_value(fn.get("parameters") or {"type": "object"}, exact_answer(last_user) or "HX")
    call = {"function": {"index": 0, "name": fn["name"], "arguments": args or {}}}
    return [{"id": call_id(), **call} if ids else call]


def vector(model: str, text: str, dim: int) -> list[float]:
    """sha256 in counter mode -> floats in [-1, 1], L2-normalised; stable per (model, text)."""
    seed = hashlib.sha256(f"{model}\0{text}".encode()).digest()
    blocks = (hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(dim // 8 + 1))
    raw = b"".join(blocks)
    return normalise([u / 2147483647.5 - 1.0 for u in struct.unpack(f">{dim}I", raw[: dim * 4])])


def normalise(vals: list[float]) -> list[float]:
    length = math.sqrt(sum(v * v for v in vals)) or 1.0
    return [round(v / length, 7) for v in vals]


def text_of(content) -> str:
    """Message content is a string for Ollama, but tolerate OpenAI-style lists of parts."""
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def chunks(text: str) -> list[str]:
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def tool_call_id() -> str:  # server/routes.go toolCallId
    return "call_" + "".join(random.choices(string.ascii_lowercase + string.digits, k=8))


def full_name(name: str) -> str:
    """The name Ollama's errors use: types/model/name.go fills in registry and namespace."""
    return name if "/" in name else f"registry.ollama.ai/library/{name}"


def summary(m: dict) -> dict:
    return {"name": m["name"], "model": m["name"], "modified_at": MODIFIED_AT, "size": m["size"],
            "digest": m["digest"], "details": m["details"]}  # fmt: skip


def show(m: dict, think_field: bool) -> dict:
    """/api/show: capabilities (no "thinking" before 0.9.0), a template LiteLLM reads for tools,
    and model_info's *.context_length, which LiteLLM reads as max_input_tokens."""
    fam, dim = m["details"]["family"], m["dim"]
    info = {
        "general.architecture": fam,
        "general.basename": m["base"],
        "general.parameter_count": m["params"],
        f"{fam}.context_length": 512 if dim else 8192,
        f"{fam}.embedding_length": dim or CHAT_EMBED_DIM,
    }
    return {
        "license": "",
        "modelfile": f"# Modelfile generated by fake_ollama\nFROM {m['name']}\n",
        "parameters": "" if dim else "temperature 0.7\nnum_ctx 8192",
        "template": template_of(m),
        "details": m["details"],
        "model_info": info,
        "capabilities": [c for c in m["caps"] if c != "thinking" or think_field],
        "modified_at": MODIFIED_AT,
    }
