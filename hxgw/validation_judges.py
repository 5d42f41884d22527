"""The validation's judges: pure functions that read one answer of the gateway and say whether
it is what a client needs, and why not (hxgw/validation.py sends the requests)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from hxgw.catalogue import Catalogue, Model
from hxgw.validation_report import DEGRADED, FAIL, PASS, shorten

PROMPT = "Return exactly the text: HX-OK"
EXPECTED = "HX-OK"
_NOISE_RE = re.compile(r" ?ssl:<[^>]*>")


def quoted(text: Any, limit: int = 60) -> str:
    """A model's answer as shown in a detail: repr-quoted, shortened."""
    text = "" if text is None else str(text)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


def classify(ok: bool, unreachable: Iterable[str] = (), strict: bool = False) -> str:
    """pass; else degraded when a backend behind the check was unreachable (and not strict);
    else fail. Gateway-level checks pass no backends, so they always fail."""
    if ok:
        return PASS
    if list(unreachable) and not strict:
        return DEGRADED
    return FAIL


def unreachable_behind(catalogue: Catalogue, name: str, unreachable: dict[str, str]) -> list[str]:
    """The unreachable backends (names, in order) behind a model or a group."""
    if name in {g.name for g in catalogue.groups}:
        group = next(g for g in catalogue.groups if g.name == name)
        backends = [catalogue.model(member).backend for member in group.members]
    else:
        backends = [catalogue.model(name).backend]
    return list(dict.fromkeys(b for b in backends if b in unreachable))


def members_of(catalogue: Catalogue, name: str) -> list[Model]:
    """The models behind a name: itself, or a group's members."""
    for group in catalogue.groups:
        if group.name == name:
            return [catalogue.model(member) for member in group.members]
    return [catalogue.model(name)]


def describe_error(error: Exception, timeout: float | None = None) -> str:
    """A short, secret-free text for an httpx exception (never its request or headers)."""
    if isinstance(error, httpx.ConnectTimeout):
        return "connect timed out"
    if isinstance(error, httpx.TimeoutException):
        return f"no answer within {timeout:g} s" if timeout else "timed out"
    text = str(error) or type(error).__name__
    lowered = text.lower()
    for phrase in ("connection refused", "no route to host", "network is unreachable", "name or service"):
        if phrase in lowered:
            return phrase if phrase != "name or service" else "unknown host name"
    if text.startswith("[Errno"):
        text = text.split("]", 1)[-1].strip()
    return f"{type(error).__name__}: {text}"


def error_message(response: httpx.Response) -> str:
    """`HTTP 400: No connected db.`: the status and the error text of a non-2xx answer."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message = None
    if isinstance(body, dict):
        error = body.get("error", body.get("detail"))
        if isinstance(error, dict):
            message = error.get("message") or json.dumps(error)
        elif error is not None:
            message = str(error)
    if message is None:
        message = response.text or response.reason_phrase
    message = _NOISE_RE.sub("", message)  # aiohttp's "ssl:<ssl.SSLContext object at 0x...>"
    return f"HTTP {response.status_code}: {shorten(message, 160)}"


def judge_models(listed: list[str], expected: list[str]) -> tuple[bool, str]:
    missing = [name for name in expected if name not in listed]
    unexpected = sorted(set(listed) - set(expected))
    if not missing and not unexpected:
        return True, f"all {len(expected)} catalogue names listed, nothing else"
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if unexpected:
        parts.append(f"unexpected {', '.join(unexpected)}")
    return False, "/v1/models: " + "; ".join(parts)


def judge_embeddings(body: Any, count: int, dims: int | None) -> tuple[bool, str]:
    """`count` vectors, each `dims` long (any length > 0 when dims is unknown)."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return False, "embedding answer has no data list"
    vectors = [item.get("embedding") for item in sorted(data, key=lambda d: d.get("index", 0))]
    if len(vectors) != count:
        return False, f"{count} input{'s' if count != 1 else ''} returned {len(vectors)} vectors"
    lengths = sorted({len(v) if isinstance(v, list) else -1 for v in vectors})
    if -1 in lengths:
        return False, "an embedding is not a list of numbers"
    if dims is not None and lengths != [dims]:
        return False, f"vectors have {'/'.join(map(str, lengths))} dims, expected {dims}"
    if dims is None and lengths[0] <= 0:
        return False, "empty vectors"
    return True, f"{count} vector{'s' if count != 1 else ''} of {lengths[0]} dims"


def judge_chat(body: Any) -> tuple[bool, str]:
    """The answer must be exactly EXPECTED (whitespace stripped); reasoning_content is tolerated."""
    try:
        message = body["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        return False, "chat answer has no choices[0].message"
    content = (message.get("content") or "").strip()
    if content == EXPECTED:
        thinking = " (with reasoning_content)" if message.get("reasoning_content") else ""
        return True, f"answered {EXPECTED!r}{thinking}"
    detail = f"chat answered {quoted(content)}, expected {EXPECTED!r}"
    if not content and message.get("reasoning_content"):
        detail += f" (only reasoning_content: {quoted(message['reasoning_content'], 40)})"
    return False, detail


@dataclass
class StreamResult:
    content: str = ""
    reasoning: str = ""
    chunks: int = 0
    done: bool = False
    error: str | None = None


def assemble_sse(lines: Iterable[str]) -> StreamResult:
    """Assemble an OpenAI-style SSE chat stream: the `data:` chunks' delta content, and whether
    the last data line is `data: [DONE]`."""
    result = StreamResult()
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line or line.startswith(":") or not line.startswith("data:"):
            continue  # blank separators, comments, event:/id: fields
        payload = line[5:].strip()
        if result.done:
            result.error = result.error or "data after data: [DONE]"
            continue
        if payload == "[DONE]":
            result.done = True
            continue
        try:
            chunk = json.loads(payload)
        except ValueError:
            result.error = result.error or f"malformed chunk {quoted(payload, 60)}"
            continue
        if isinstance(chunk, dict) and chunk.get("error"):
            error = chunk["error"]
            text = error.get("message") if isinstance(error, dict) else error
            result.error = result.error or f"stream error: {shorten(str(text), 160)}"
            continue
        result.chunks += 1
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        for choice in choices or []:
            delta = choice.get("delta") or {}
            result.content += delta.get("content") or ""
            result.reasoning += delta.get("reasoning_content") or ""
    return result


def judge_stream(result: StreamResult) -> tuple[bool, str]:
    if result.error:
        return False, f"stream broken: {result.error}"
    content = result.content.strip()
    if content != EXPECTED:
        return False, f"stream assembled {quoted(content)}, expected {EXPECTED!r}"
    if not result.done:
        return False, f"stream assembled {EXPECTED!r} but did not end with data: [DONE]"
    return True, f"{result.chunks} chunks assembled to {EXPECTED!r}, ended with data: [DONE]"
