"""The plumbing under every validation check: one HTTP client on one gateway, the request bodies
clients send, and the record of each result (with the master key scrubbed from its detail).

hxgw/validation.py puts the checks together (Validator); the checks themselves live in
validation_gateway_checks.py (the gateway alone) and validation_model_checks.py (each model).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from hxgw import client_checks
from hxgw.capability_checks import THINKING_MAX_TOKENS, thinks
from hxgw.catalogue import Catalogue
from hxgw.validation_judges import (
    PROMPT,
    classify,
    describe_error,
    error_message,
    members_of,
    unreachable_behind,
)
from hxgw.validation_report import DETAIL_MAX, CheckResult, shorten

MAX_TOKENS = 10
EMBED_INPUT = "HX validation probe"
EMBED_BATCH = ("HX validation probe one", "HX validation probe two", "HX validation probe three")

READY_TIMEOUT = 10.0  # seconds to wait for /health/readiness
READY_ATTEMPT_TIMEOUT = 3.0
READY_INTERVAL = 0.5
GATEWAY_TIMEOUT = 15.0  # auth and /v1/models: no model is called


@dataclass
class Answer:
    response: httpx.Response | None
    latency_ms: float
    error: str | None  # transport error text when there is no response

    @property
    def status(self) -> int | None:
        return self.response.status_code if self.response is not None else None

    def json(self) -> Any:
        try:
            return self.response.json() if self.response is not None else None
        except ValueError:
            return None


class GatewayCalls:
    """One gateway's URL, key and options, the calls to it and the results recorded so far."""

    def __init__(
        self,
        gateway: str,
        url: str,
        catalogue: Catalogue,
        master_key: str,
        *,
        unreachable: dict[str, str] | None = None,
        strict: bool = False,
        pinned_version: str | None = None,
        opened: tuple[str, ...] = (),
        ready_timeout: float = READY_TIMEOUT,
        clients: list[dict] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.gateway, self.url, self.catalogue = gateway, url.rstrip("/"), catalogue
        self._key = master_key
        self._wrong_key = "sk-" + secrets.token_urlsafe(32)
        self.unreachable = dict(unreachable or {})
        self.strict, self.pinned_version, self.ready_timeout = strict, pinned_version, ready_timeout
        self.opened = opened  # routes the settings open without a key (client_checks.opened_routes)
        self._sleep = sleep
        self._transport = transport
        self._client: httpx.Client | None = None  # open during run()
        self.version: str | None = None
        self.checks: list[CheckResult] = []
        self.clients = list(clients or [])  # clients.json's entries (hxgw.clients.gateway_table)

    # --- plumbing ---

    def _scrub(self, text: str) -> str:
        if self._key:
            text = text.replace(self._key, "<master key>")
        return shorten(text)

    def _headers(self, key: str | None) -> dict[str, str]:
        # The validation may call models with the master key even where master_key_models is off
        # (templates/hx_auth.py VALIDATION_HEADER): the operator's own check.
        extra = {"x-hx-validation": "1"} if key and key == self._key else {}
        return {"Authorization": f"Bearer {key}", **extra} if key else {}

    def _call(
        self, method: str, path: str, *, key: str | None, timeout: float, body=None, headers=None
    ) -> Answer:
        started = time.perf_counter()
        try:
            response = self._client.request(
                method, path, headers=headers or self._headers(key), json=body, timeout=timeout
            )
        except httpx.HTTPError as error:  # transport errors: keep only a short text, no request
            return Answer(None, (time.perf_counter() - started) * 1000, describe_error(error, timeout))
        self._note_version(response)
        return Answer(response, (time.perf_counter() - started) * 1000, None)

    def _note_version(self, response: httpx.Response) -> None:
        if self.version is None and response.headers.get("x-litellm-version"):
            self.version = response.headers["x-litellm-version"]

    def _record(
        self,
        model: str | None,
        check: str,
        ok: bool,
        detail: str,
        answer: Answer | None = None,
        latency_ms: float | None = None,
    ) -> CheckResult:
        unreachable = unreachable_behind(self.catalogue, model, self.unreachable) if model else []
        status = classify(ok, unreachable, self.strict)
        if not ok and unreachable:
            note = "failed: validation_strict is on" if self.strict else "degraded"
            detail = (
                f"{shorten(detail, DETAIL_MAX - 80)} [backend {', '.join(unreachable)} unreachable; {note}]"
            )
        if latency_ms is None and answer is not None:
            latency_ms = answer.latency_ms
        result = CheckResult(
            model=model,
            check=check,
            status=status,
            latency_ms=None if latency_ms is None else round(latency_ms, 1),
            detail=self._scrub(detail),
            http_status=answer.status if answer is not None else None,
        )
        self.checks.append(result)
        return result

    @staticmethod
    def _failed_answer(what: str, answer: Answer) -> str:
        """`chat failed: HTTP 500: ...` or `chat failed: connection refused`."""
        why = answer.error if answer.response is None else error_message(answer.response)
        return f"{what} failed: {why}"

    @staticmethod
    def _served_by(answer: Answer) -> str:
        """` (via ollama_chat/phi3:latest at http://...:11434)`: which deployment answered
        (LiteLLM's response headers), so a group's result names the member behind it."""
        headers = answer.response.headers if answer.response is not None else {}
        model, base = headers.get("x-litellm-model-name"), headers.get("x-litellm-model-api-base")
        if model and base:
            return f" (via {model} at {base})"
        return f" (via {model or base})" if model or base else ""

    def _chat_body(self, name: str, stream: bool = False) -> dict:
        # The parameters clients commonly set, whether or not Ollama takes them (drop_params).
        body = {
            "model": name,
            "messages": [{"role": "user", "content": PROMPT}],
            **client_checks.CHAT_PARAMS,
            "max_tokens": MAX_TOKENS,
        }
        if thinks(members_of(self.catalogue, name)):
            body.update(reasoning_effort="none", max_tokens=THINKING_MAX_TOKENS)
        if stream:
            body["stream"] = True
            body["stream_options"] = client_checks.STREAM_OPTIONS
        return body

    def _timeout(self, name: str) -> float:
        return max(m.timeout for m in members_of(self.catalogue, name))

    def _mode(self, name: str) -> str:
        return members_of(self.catalogue, name)[0].mode

    def _dims(self, name: str) -> int | None:
        return members_of(self.catalogue, name)[0].dims
