"""What real OpenAI clients send and expect, for the post-deploy validation (hxgw.validation).

The validation speaks as the official SDKs do: their default fields (`encoding_format` on every
embedding, `stream_options` on streams) and the parameters clients commonly set. It expects
what OpenAI answers: 401 with `{"error": {"message", "type", "code"}}` for any request without
the right key, on every route a client calls; and nothing else than OPEN_ROUTES answering
without a key (templates/hx_auth.py's gate; README "Routes without a key").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from typing import Any

# The only routes that answer without a key: the load balancer's probes.
OPEN_ROUTES = ("/health/liveliness", "/health/liveness", "/health/readiness")
# Routes LiteLLM 1.108.7 itself serves without a key (or crashes on): each must now answer 401.
# The admin UI, the API docs and their metadata; OAuth/MCP discovery; the public model hub.
CLOSED_ROUTES = (
    "/",
    "/ui/",
    "/redoc",
    "/openapi.json",
    "/swagger/swagger-ui.css",
    "/.well-known/litellm-ui-config",
    "/.well-known/openid-configuration",
    "/get/ui_theme_settings",
    "/sso/key/generate",
    "/public/model_hub",
    "/metrics",
    "/routes",
)

# Among those, what the settings admin_ui and api_docs open (they then answer, without a key).
UI_ROUTES = ("/ui/", "/.well-known/litellm-ui-config", "/get/ui_theme_settings", "/sso/key/generate")
DOCS_ROUTES = ("/", "/redoc", "/openapi.json", "/swagger/swagger-ui.css")


def opened_routes(admin_ui: bool = False, api_docs: bool = False) -> tuple[str, ...]:
    """The CLOSED_ROUTES that the settings turn on (see templates/hx_auth.py)."""
    return UI_ROUTES * admin_ui + DOCS_ROUTES * api_docs


# Authorization headers a client may get wrong, by check name. The wrong key is filled in later.
BAD_AUTH: dict[str, str | None] = {
    "auth-no-key": None,
    "auth-malformed": "Basic aHgtdXNlcjpoeC1wYXNz",  # not a Bearer token at all
    "auth-empty-bearer": "Bearer",
    "auth-wrong-key": "Bearer {wrong}",
}

# The parameters clients commonly set on a chat; Ollama takes only some of them, the gateway
# must drop the rest rather than fail (litellm_settings.drop_params).
CHAT_PARAMS: dict[str, Any] = {
    "temperature": 0,
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "seed": 7,
    "user": "hx-validation",
    "stop": ["HX-STOP"],
    "n": 1,
    "response_format": {"type": "text"},
}
# The openai SDK's stream default when usage is wanted (LangChain sets it for usage metadata).
STREAM_OPTIONS = {"include_usage": True}
# encoding_format per embedding check: the openai SDK sends base64 unless told otherwise.
ENCODING = {"embed": "base64", "embed-batch": "float"}


def decode_vector(value: Any) -> Any:
    """An embedding as a list of floats: base64 (little-endian float32, as OpenAI encodes it)
    is decoded; a list is returned as is; anything else is returned unchanged for the judge."""
    if not isinstance(value, str):
        return value
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value
    if len(raw) % 4:
        return value
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def decoded_embeddings(body: Any) -> Any:
    """The answer with every embedding decoded (see decode_vector); non-dict answers unchanged."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return body
    data = [
        {**item, "embedding": decode_vector(item.get("embedding"))} if isinstance(item, dict) else item
        for item in body["data"]
    ]
    return {**body, "data": data}


def judge_unauthorised(status: int | None, body: Any, text: str, key: str) -> tuple[bool, str]:
    """A request without the right key: exactly 401, OpenAI's error shape, and neither the master
    key nor its sha256 in the answer."""
    if key and (key in text or hashlib.sha256(key.encode()).hexdigest() in text):
        return False, f"HTTP {status}: the answer carries the master key or its hash"
    if status != 401:
        return False, f"HTTP {status}, expected 401"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not all(field in error for field in ("message", "type", "code")):
        return False, "HTTP 401 without OpenAI's {error: {message, type, code}} body"
    return True, "401"


def judge_open_routes(answers: dict[str, int | None], opened: tuple[str, ...] = ()) -> tuple[bool, str]:
    """answers: route -> HTTP status without a key. OPEN_ROUTES must answer 200, the routes the
    settings opened anything but 401 or a 5xx, every other route 401."""

    def wrong(route: str, status: int | None) -> str | None:
        if route in OPEN_ROUTES:
            return None if status == 200 else "expected 200"
        if route in opened:
            return None if status is not None and status != 401 and status < 500 else "expected it open"
        return None if status == 401 else "expected 401"

    problems = [
        f"{route} answered {status}, {why}"
        for route, status in answers.items()
        if (why := wrong(route, status))
    ]
    if problems:
        return False, "without a key: " + "; ".join(problems)
    closed = len(answers) - len(OPEN_ROUTES) - len(opened)
    also = f", and {len(opened)} the settings opened" if opened else ""
    return True, f"only {', '.join(OPEN_ROUTES)}{also} answer without a key ({closed} other routes: 401)"
