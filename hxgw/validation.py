"""Post-deploy validation of one gateway: real API calls, one result record per check, a report.

Pure logic with httpx and no pyinfra: hxops/validation_op.py runs `validate()` on the control
machine while the deploy executes and turns failures into a failed host.

Checks, in order: readiness (polled up to a timeout; a gateway that does not answer stops the
run there), auth (no key, a non-Bearer header, an empty Bearer and a wrong key each get exactly
401 with OpenAI's error body on /v1/models, chat, completions, embeddings and /health; the master
key is accepted), open routes (only the load balancer's probes answer without a key), the
running LiteLLM version against the pin, /v1/models lists exactly the catalogue's names,
embeddings (one input as base64, a batch of 3 as float; decoded vector length = dims) for every
embedding model, a deterministic chat for every chat model and group, and one streamed chat.
Requests are shaped as the official SDKs send them (hxgw.client_checks): their default fields
and the parameters clients commonly set.

A failed check is `degraded` instead of `fail` when the model's backend (for a group: any
member's backend) was found unreachable by the connectivity step, unless `strict`. Checks of
the gateway itself (readiness, auth, models, version) always fail.

The master key goes only into Authorization headers: it is never stored in a record, and every
detail text is scrubbed of it before it is recorded, in case an error message echoes it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from hxgw import client_checks
from hxgw.capability_checks import (
    THINKING_MAX_TOKENS,
    TOOL,
    TOOL_PROMPT,
    judge_plain_answer,
    judge_tool_call,
    thinks,
    tools_plan,
)
from hxgw.catalogue import Catalogue
from hxgw.validation_judges import (  # noqa: F401 - callers and tests import them from here
    EXPECTED,
    PROMPT,
    StreamResult,
    assemble_sse,
    classify,
    describe_error,
    error_message,
    judge_chat,
    judge_embeddings,
    judge_models,
    judge_stream,
    members_of,
    quoted,
    unreachable_behind,
)
from hxgw.validation_report import (  # noqa: F401
    DEGRADED,
    DETAIL_MAX,
    FAIL,
    FAILURES_IN_MESSAGE,
    PASS,
    CheckResult,
    Report,
    ValidationFailed,
    format_table,
    now_iso,
    shorten,
)

MAX_TOKENS = 10
EMBED_INPUT = "HX validation probe"
EMBED_BATCH = ("HX validation probe one", "HX validation probe two", "HX validation probe three")

READY_TIMEOUT = 10.0  # seconds to wait for /health/readiness
READY_ATTEMPT_TIMEOUT = 3.0
READY_INTERVAL = 0.5
GATEWAY_TIMEOUT = 15.0  # auth and /v1/models: no model is called


# --- the checks -------------------------------------------------------------------------------


@dataclass
class _Answer:
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


class Validator:
    """Runs every check against one gateway. Build it, call run(), get a Report."""

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

    # --- plumbing ---

    def _scrub(self, text: str) -> str:
        if self._key:
            text = text.replace(self._key, "<master key>")
        return shorten(text)

    def _headers(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _call(
        self, method: str, path: str, *, key: str | None, timeout: float, body=None, headers=None
    ) -> _Answer:
        started = time.perf_counter()
        try:
            response = self._client.request(
                method, path, headers=headers or self._headers(key), json=body, timeout=timeout
            )
        except httpx.HTTPError as error:  # transport errors: keep only a short text, no request
            return _Answer(None, (time.perf_counter() - started) * 1000, describe_error(error, timeout))
        self._note_version(response)
        return _Answer(response, (time.perf_counter() - started) * 1000, None)

    def _note_version(self, response: httpx.Response) -> None:
        if self.version is None and response.headers.get("x-litellm-version"):
            self.version = response.headers["x-litellm-version"]

    def _record(
        self,
        model: str | None,
        check: str,
        ok: bool,
        detail: str,
        answer: _Answer | None = None,
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
    def _failed_answer(what: str, answer: _Answer) -> str:
        """`chat failed: HTTP 500: ...` or `chat failed: connection refused`."""
        why = answer.error if answer.response is None else error_message(answer.response)
        return f"{what} failed: {why}"

    @staticmethod
    def _served_by(answer: _Answer) -> str:
        """` (via ollama_chat/phi3:latest at http://...:11434)`: which deployment answered
        (LiteLLM's response headers), so a group's result names the member behind it."""
        headers = answer.response.headers if answer.response is not None else {}
        model, base = headers.get("x-litellm-model-name"), headers.get("x-litellm-model-api-base")
        if model and base:
            return f" (via {model} at {base})"
        return f" (via {model or base})" if model or base else ""

    # --- checks ---

    def check_readiness(self) -> bool:
        deadline = time.monotonic() + self.ready_timeout
        waited_from = time.monotonic()
        while True:
            remaining = max(0.5, deadline - time.monotonic())
            answer = self._call(
                "GET", "/health/readiness", key=None, timeout=min(READY_ATTEMPT_TIMEOUT, remaining)
            )
            if answer.status == 200:
                body = answer.json()
                if isinstance(body, dict) and body.get("litellm_version") and not self.version:
                    self.version = str(body["litellm_version"])
                waited = time.monotonic() - waited_from
                after = f" after waiting {waited:.1f} s" if waited > READY_INTERVAL * 2 else ""
                state = body.get("status", "ready") if isinstance(body, dict) else "ready"
                self._record(None, "readiness", True, f"{state}{after}", answer)
                return True
            if time.monotonic() >= deadline:
                if answer.response is None:
                    detail = f"gateway {self.url} is not answering: {answer.error}"
                else:
                    detail = f"gateway {self.url} is not ready: {error_message(answer.response)}"
                self._record(None, "readiness", False, f"{detail} (waited {self.ready_timeout:g} s)", answer)
                return False
            self._sleep(READY_INTERVAL)

    def _auth_probes(self) -> list[tuple[str, str, dict | None]]:
        """(method, path, body) of every route a client calls, each shaped as the SDK sends it."""
        chat = next((m.name for m in self.catalogue.models if m.mode == "chat"), None)
        embedding = next((m.name for m in self.catalogue.models if m.mode == "embedding"), None)
        probes: list[tuple[str, str, dict | None]] = [("GET", "/v1/models", None)]
        if chat:
            probes.append(("POST", "/v1/chat/completions", self._chat_body(chat)))
            probes.append(("POST", "/v1/completions", {"model": chat, "prompt": PROMPT, "max_tokens": 1}))
        if embedding:
            probes.append(
                (
                    "POST",
                    "/v1/embeddings",
                    {"model": embedding, "input": EMBED_INPUT, "encoding_format": "base64"},
                )
            )
        probes.append(("GET", "/health", None))  # with a key it would call every deployment
        return probes

    def check_auth(self) -> None:
        """Every way of not having the key (none, not Bearer, an empty Bearer, a wrong key) gets
        exactly 401 with OpenAI's error body on every route a client calls, as from OpenAI."""
        probes = self._auth_probes()
        for check, header in client_checks.BAD_AUTH.items():
            headers = {"Authorization": header.format(wrong=self._wrong_key)} if header else {}
            wrong, answers = [], []
            for method, path, body in probes:
                answer = self._call(
                    method, path, key=None, timeout=GATEWAY_TIMEOUT, body=body, headers=headers
                )
                answers.append(answer)
                if answer.response is None:
                    wrong.append(f"{method} {path}: {answer.error}")
                    continue
                ok, verdict = client_checks.judge_unauthorised(
                    answer.status, answer.json(), answer.response.text, self._key
                )
                if not ok:
                    wrong.append(f"{method} {path}: {verdict} ({error_message(answer.response)})")
            who = check.removeprefix("auth-").replace("-", " ")
            detail = (
                f"{who}: " + "; ".join(wrong)
                if wrong
                else f"{who}: 401 with an OpenAI error body on all {len(probes)} client routes"
            )
            latency = sum(a.latency_ms for a in answers)
            self._record(None, check, not wrong, detail, answers[-1], latency_ms=latency)

    def check_open_routes(self) -> None:
        """Only the load balancer's probes answer without a key (README "Routes without a key")."""
        statuses, latency = {}, 0.0
        for route in client_checks.OPEN_ROUTES + client_checks.CLOSED_ROUTES:
            answer = self._call("GET", route, key=None, timeout=GATEWAY_TIMEOUT)
            statuses[route], latency = answer.status, latency + answer.latency_ms
        ok, detail = client_checks.judge_open_routes(statuses, self.opened)
        self._record(None, "open-routes", ok, detail, latency_ms=latency)

    def check_models(self) -> None:
        answer = self._call("GET", "/v1/models", key=self._key, timeout=GATEWAY_TIMEOUT)
        body = answer.json()
        if answer.status is None or not 200 <= answer.status < 300:
            what = "GET /v1/models with the master key"
            self._record(None, "auth-key", False, self._failed_answer(what, answer), answer)
            self._record(None, "models", False, "cannot list the models: see auth-key", answer)
            return
        self._record(
            None, "auth-key", True, f"GET /v1/models with the master key: HTTP {answer.status}", answer
        )
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            self._record(None, "models", False, "/v1/models answer has no data list", answer)
            return
        listed = [str(item.get("id")) for item in data if isinstance(item, dict)]
        ok, detail = judge_models(listed, self.catalogue.model_names())
        self._record(None, "models", ok, detail, answer)

    def check_version(self) -> None:
        if not (self.version and self.pinned_version):
            return
        ok = self.version == self.pinned_version
        detail = f"litellm {self.version}" + ("" if ok else f", but the deploy pins {self.pinned_version}")
        self._record(None, "version", ok, detail)

    def check_embeddings(self, name: str, dims: int | None, timeout: float) -> None:
        for check, inputs in (("embed", EMBED_INPUT), ("embed-batch", list(EMBED_BATCH))):
            count = 1 if isinstance(inputs, str) else len(inputs)
            # As the openai SDK sends it: encoding_format always (base64 unless the caller asks for
            # float); a base64 answer is decoded, so a shrunk vector fails (BerriAI/litellm#42426).
            body = {"model": name, "input": inputs, "encoding_format": client_checks.ENCODING[check]}
            answer = self._call("POST", "/v1/embeddings", key=self._key, timeout=timeout, body=body)
            if answer.status is None or not 200 <= answer.status < 300:
                self._record(name, check, False, self._failed_answer(check.replace("-", " "), answer), answer)
                continue
            ok, detail = judge_embeddings(client_checks.decoded_embeddings(answer.json()), count, dims)
            self._record(name, check, ok, detail, answer)

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

    def check_tools(self, name: str, timeout: float) -> None:
        """A tools request: tools-capable models answer with a tool call; a group whose members
        differ answers in plain text on every member (one request per member: any refusal shows)."""
        models = members_of(self.catalogue, name)
        plan = tools_plan(models)
        if plan is None:
            return
        body = {**self._chat_body(name), "tools": [TOOL], "max_tokens": THINKING_MAX_TOKENS}
        body["messages"] = [{"role": "user", "content": TOOL_PROMPT}]
        for _ in range(1 if plan == "call" else len(models)):
            answer = self._call("POST", "/v1/chat/completions", key=self._key, timeout=timeout, body=body)
            if answer.status is None or not 200 <= answer.status < 300:
                self._record(name, "tools", False, self._failed_answer("tools request", answer), answer)
                return
            ok, detail = (judge_tool_call if plan == "call" else judge_plain_answer)(answer.json())
            if not ok:
                self._record(name, "tools", False, detail + self._served_by(answer), answer)
                return
        self._record(name, "tools", True, detail + self._served_by(answer), answer)

    def check_chat(self, name: str, timeout: float) -> None:
        answer = self._call(
            "POST", "/v1/chat/completions", key=self._key, timeout=timeout, body=self._chat_body(name)
        )
        if answer.status is None or not 200 <= answer.status < 300:
            self._record(name, "chat", False, self._failed_answer("chat", answer), answer)
            return
        ok, detail = judge_chat(answer.json())
        self._record(name, "chat", ok, detail + self._served_by(answer), answer)

    def check_stream(self, name: str, timeout: float) -> None:
        started = time.perf_counter()
        headers = self._headers(self._key)
        try:
            with self._client.stream(
                "POST",
                "/v1/chat/completions",
                headers=headers,
                json=self._chat_body(name, True),
                timeout=timeout,
            ) as response:
                self._note_version(response)
                if not 200 <= response.status_code < 300:
                    response.read()
                    answer = _Answer(response, (time.perf_counter() - started) * 1000, None)
                    self._record(name, "stream", False, self._failed_answer("stream", answer), answer)
                    return
                result = assemble_sse(response.iter_lines())
                answer = _Answer(response, (time.perf_counter() - started) * 1000, None)
        except httpx.HTTPError as error:
            answer = _Answer(None, (time.perf_counter() - started) * 1000, describe_error(error, timeout))
            self._record(name, "stream", False, f"stream failed: {answer.error}", answer)
            return
        ok, detail = judge_stream(result)
        self._record(name, "stream", ok, detail + self._served_by(answer), answer)

    # --- the run ---

    def _timeout(self, name: str) -> float:
        return max(m.timeout for m in members_of(self.catalogue, name))

    def _mode(self, name: str) -> str:
        return members_of(self.catalogue, name)[0].mode

    def _dims(self, name: str) -> int | None:
        return members_of(self.catalogue, name)[0].dims

    def run(self) -> Report:
        started_at, started = now_iso(), time.perf_counter()
        # trust_env=False: talk to the gateway directly, never through a proxy from the environment.
        self._client = httpx.Client(base_url=self.url, transport=self._transport, trust_env=False)
        try:
            if self.check_readiness():
                self.check_auth()
                self.check_open_routes()
                self.check_models()
                for name in self.catalogue.model_names():
                    if self._mode(name) == "embedding":
                        self.check_embeddings(name, self._dims(name), self._timeout(name))
                for name in self.catalogue.model_names():
                    if self._mode(name) == "chat":
                        self.check_chat(name, self._timeout(name))
                        self.check_tools(name, self._timeout(name))
                streamed = self.stream_model()
                if streamed:
                    self.check_stream(streamed, self._timeout(streamed))
                self.check_version()
        finally:
            self._client.close()
        return Report(
            gateway=self.gateway,
            url=self.url,
            litellm_version=self.version,
            started=started_at,
            finished=now_iso(),
            duration_s=round(time.perf_counter() - started, 3),
            strict=self.strict,
            unreachable_backends=dict(self.unreachable),
            checks=list(self.checks),
        )

    def stream_model(self) -> str | None:
        """The chat model for the stream check: the first on a reachable backend, else the first."""
        chat = [m for m in self.catalogue.models if m.mode == "chat"]
        reachable = [m for m in chat if m.backend not in self.unreachable]
        chosen = (reachable or chat or [None])[0]
        return chosen.name if chosen else None


def validate(gateway: str, url: str, catalogue: Catalogue, master_key: str, **options: Any) -> Report:
    """Run every check against one gateway and return its Report (see Validator for options)."""
    return Validator(gateway, url, catalogue, master_key, **options).run()
