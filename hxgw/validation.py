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

import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
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
from hxgw.catalogue import Catalogue, Model

PROMPT = "Return exactly the text: HX-OK"
EXPECTED = "HX-OK"
MAX_TOKENS = 10
EMBED_INPUT = "HX validation probe"
EMBED_BATCH = ("HX validation probe one", "HX validation probe two", "HX validation probe three")

PASS, FAIL, DEGRADED = "pass", "fail", "degraded"
READY_TIMEOUT = 10.0  # seconds to wait for /health/readiness
READY_ATTEMPT_TIMEOUT = 3.0
READY_INTERVAL = 0.5
GATEWAY_TIMEOUT = 15.0  # auth and /v1/models: no model is called
DETAIL_MAX = 300
FAILURES_IN_MESSAGE = 5
_NOISE_RE = re.compile(r" ?ssl:<[^>]*>")


@dataclass
class CheckResult:
    """One check's outcome. `model` is None for checks of the gateway itself."""

    model: str | None
    check: str
    status: str  # pass | fail | degraded
    latency_ms: float | None
    detail: str
    http_status: int | None = None

    def line(self) -> str:
        """`llm02-phi3: chat answered 'WRONG-ANSWER', expected 'HX-OK'`; the gateway's own checks
        are just their detail, which names what was asked."""
        return f"{self.model}: {self.detail}" if self.model else self.detail


@dataclass
class Report:
    gateway: str
    url: str
    litellm_version: str | None
    started: str
    finished: str
    duration_s: float
    strict: bool
    unreachable_backends: dict[str, str]
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        counts = {"passed": 0, "failed": 0, "degraded": 0}
        key = {PASS: "passed", FAIL: "failed", DEGRADED: "degraded"}
        for check in self.checks:
            counts[key[check.status]] += 1
        return counts

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def degraded(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == DEGRADED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway,
            "url": self.url,
            "litellm_version": self.litellm_version,
            "started": self.started,
            "finished": self.finished,
            "duration_s": self.duration_s,
            "strict": self.strict,
            "unreachable_backends": dict(self.unreachable_backends),
            "summary": self.summary,
            "checks": [asdict(c) for c in self.checks],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def summary_line(self) -> str:
        s = self.summary
        verdict = "FAILED" if s["failed"] else ("DEGRADED" if s["degraded"] else "OK")
        return (
            f"{self.gateway}: validation {verdict}: {s['passed']} passed, {s['failed']} failed, "
            f"{s['degraded']} degraded in {self.duration_s:.1f}s ({self.url}, "
            f"litellm {self.litellm_version or 'version unknown'})"
        )


class ValidationFailed(Exception):
    """Raised (by the pyinfra glue) when a required check failed; its text names each one.

    pyinfra renders a callback's exception as `Name(args)`, so the message is one line.
    """

    def __init__(self, report: Report) -> None:
        self.report = report
        failures = report.failures
        lines = [c.line() for c in failures[:FAILURES_IN_MESSAGE]]
        if len(failures) > FAILURES_IN_MESSAGE:
            lines.append(f"and {len(failures) - FAILURES_IN_MESSAGE} more (see the table)")
        message = (
            f"{report.gateway}: {len(failures)} required check{'s' if len(failures) != 1 else ''} "
            "failed: " + "; ".join(lines)
        )
        super().__init__(message)


# --- pure helpers -----------------------------------------------------------------------------


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def shorten(text: str, limit: int = DETAIL_MAX) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


def format_table(reports: Iterable[Report], detail_width: int = 110) -> list[str]:
    """The human-readable table: gateway, model, check, result, latency ms, detail."""
    header = ("gateway", "model", "check", "result", "latency ms", "detail")
    rows = []
    for report in reports:
        for c in report.checks:
            latency = "-" if c.latency_ms is None else f"{c.latency_ms:.0f}"
            detail = c.detail if len(c.detail) <= detail_width else c.detail[: detail_width - 3] + "..."
            result = c.status.upper() if c.status != PASS else c.status
            rows.append((report.gateway, c.model or "-", c.check, result, latency, detail))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def render(row) -> str:
        cells = [
            str(cell).rjust(widths[i]) if i == 4 else str(cell).ljust(widths[i]) for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    return [render(header), render(["-" * w for w in widths]), *(render(r) for r in rows)]


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
