"""Unit tests for hxgw.validation's pure parts: SSE assembly, the judges, classification, the
table, the report and the failure message, and the check run against a fake gateway
(httpx.MockTransport). They complement tests/e2e/test_validation.py, which runs the real thing."""

from __future__ import annotations

import base64
import json
import runpy
import struct
from pathlib import Path

import httpx
import pytest

from hxgw import validation as v
from hxgw.catalogue import parse_catalogue

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-unitTESTkey0123456789abcdefghijklmnopqrstu"
URL = "http://198.18.200.39:4000"


@pytest.fixture(scope="module")
def catalogue():
    data = runpy.run_path(str(REPO / "group_data" / "all.py"))
    return parse_catalogue(data["backends"], data["models"], data["model_groups"])


class FakeGateway:
    """Answers like LiteLLM 1.108.7 without a DB; knobs make it misbehave."""

    def __init__(self, catalogue):
        self.catalogue = catalogue
        self.wrong = set()  # model names answering WRONG-ANSWER
        self.broken = {}  # model name -> (status, message)
        self.dims = {m.name: m.dims for m in catalogue.models if m.mode == "embedding"}
        self.listed = list(catalogue.model_names())
        self.accept_any_key = False
        self.stream_done = True
        self.down = False
        self.timeouts = {}  # (model, path) -> read timeout the client asked for

    def _dims(self, name):
        if name in self.dims:
            return self.dims[name]
        return v.members_of(self.catalogue, name)[0].dims

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        path = request.url.path
        if path in ("/health/readiness", "/health/liveliness", "/health/liveness"):
            return httpx.Response(200, json={"status": "healthy", "db": "Not connected"})
        auth = request.headers.get("authorization")
        if not self.accept_any_key and auth != f"Bearer {KEY}":
            error = {
                "message": "Invalid or missing API key.",
                "type": "auth_error",
                "param": None,
                "code": "401",
            }
            return httpx.Response(401, json={"error": error})
        headers = {"x-litellm-version": "1.108.7"}
        if request.method == "GET" and path != "/v1/models":
            return httpx.Response(200 if path == "/health" else 404, json={}, headers=headers)
        if path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": n} for n in self.listed]}, headers=headers)
        body = json.loads(request.content)
        model = body["model"]
        self.timeouts[(model, path)] = request.extensions["timeout"]["read"]
        if model in self.broken:
            status, message = self.broken[model]
            return httpx.Response(status, json={"error": {"message": message}}, headers=headers)
        if path == "/v1/embeddings":
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            vector = [0.1] * self._dims(model)
            if body.get("encoding_format") == "base64":  # as OpenAI answers it: float32, base64
                vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data = [{"index": i, "embedding": vector} for i in range(len(inputs))]
            return httpx.Response(200, json={"data": data}, headers=headers)
        members = v.members_of(self.catalogue, model)
        if body.get("tools") and all("tools" in (m.capabilities or ()) for m in members):
            return httpx.Response(200, json=tool_call_answer(body["tools"][0]), headers=headers)
        answer = "WRONG-ANSWER" if model in self.wrong else "HX-OK"
        if body.get("stream"):
            lines = [
                f"data: {json.dumps({'choices': [{'delta': {'content': answer[:2]}}]})}",
                "",
                f"data: {json.dumps({'choices': [{'delta': {'content': answer[2:]}}]})}",
                "",
            ]
            if self.stream_done:
                lines += ["data: [DONE]", ""]
            return httpx.Response(
                200,
                content="\n".join(lines).encode(),
                headers={**headers, "content-type": "text/event-stream"},
            )
        message = {"role": "assistant", "content": answer}
        return httpx.Response(200, json={"choices": [{"message": message}]}, headers=headers)


def tool_call_answer(tool: dict) -> dict:
    """LiteLLM's answer when the model calls the tool (a group that drops tools answers plainly)."""
    call = {"id": "call_ab12cd34", "type": "function",
            "function": {"name": tool["function"]["name"], "arguments": '{"text": "HX-OK"}'}}  # fmt: skip
    message = {"role": "assistant", "content": "", "tool_calls": [call]}
    return {"choices": [{"message": message, "finish_reason": "tool_calls"}]}


def run(catalogue, gateway, **options):
    options.setdefault("sleep", lambda _: None)
    return v.validate("gw-test", URL, catalogue, KEY, transport=httpx.MockTransport(gateway), **options)


def checks_by(report):
    return {(c.model, c.check): c for c in report.checks}


# --- SSE assembly -------------------------------------------------------------------------------


def test_sse_assembles_content_and_sees_done():
    lines = [
        'data: {"choices":[{"delta":{"role":"assistant","reasoning_content":"Think "}}]}',
        "",
        ": keep-alive comment",
        'data: {"choices":[{"delta":{"content":"HX"}}]}',
        'data: {"choices":[{"delta":{"content":"-OK"}}]}',
        'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}',
        "data: [DONE]",
    ]
    result = v.assemble_sse(lines)
    assert (result.content, result.reasoning, result.chunks, result.done, result.error) == (
        "HX-OK",
        "Think ",
        4,
        True,
        None,
    )
    assert v.judge_stream(result)[0] is True


def test_sse_without_done_fails():
    result = v.assemble_sse(['data: {"choices":[{"delta":{"content":"HX-OK"}}]}'])
    ok, detail = v.judge_stream(result)
    assert not ok and detail == "stream assembled 'HX-OK' but did not end with data: [DONE]"


def test_sse_error_chunk_and_malformed_chunk_fail():
    error = v.assemble_sse(['data: {"error":{"message":"backend gone"}}', "data: [DONE]"])
    assert v.judge_stream(error) == (False, "stream broken: stream error: backend gone")
    malformed = v.assemble_sse(["data: {not json", "data: [DONE]"])
    assert v.judge_stream(malformed)[1].startswith("stream broken: malformed chunk")


def test_sse_data_after_done_is_an_error():
    result = v.assemble_sse(["data: [DONE]", 'data: {"choices":[{"delta":{"content":"x"}}]}'])
    assert result.error == "data after data: [DONE]"


def test_sse_wrong_content():
    result = v.assemble_sse(['data: {"choices":[{"delta":{"content":"nope"}}]}', "data: [DONE]"])
    assert v.judge_stream(result) == (False, "stream assembled 'nope', expected 'HX-OK'")


# --- judges and classification ------------------------------------------------------------------


def test_classify():
    assert v.classify(True, ["llm-02"]) == v.PASS
    assert v.classify(False) == v.FAIL
    assert v.classify(False, ["llm-02"]) == v.DEGRADED
    assert v.classify(False, ["llm-02"], strict=True) == v.FAIL


def test_unreachable_behind_models_and_groups(catalogue):
    down = {"llm-02": "curl: (7) Failed to connect"}
    assert v.unreachable_behind(catalogue, "llm02-phi3", down) == ["llm-02"]
    assert v.unreachable_behind(catalogue, "llm01-llama3.2-3b", down) == []
    assert v.unreachable_behind(catalogue, "hx-chat", down) == ["llm-02"]  # some members
    assert v.unreachable_behind(catalogue, "hx-chat-fast", down) == []


@pytest.mark.parametrize(
    ("message", "ok", "detail"),
    [
        ({"content": "HX-OK"}, True, "answered 'HX-OK'"),
        ({"content": "  HX-OK\n"}, True, "answered 'HX-OK'"),
        ({"content": "HX-OK", "reasoning_content": "hmm"}, True, "answered 'HX-OK' (with reasoning_content)"),
        ({"content": "WRONG-ANSWER"}, False, "chat answered 'WRONG-ANSWER', expected 'HX-OK'"),
        (
            {"content": "", "reasoning_content": "thinking"},
            False,
            "chat answered '', expected 'HX-OK' (only reasoning_content: 'thinking')",
        ),
        ({"content": None}, False, "chat answered '', expected 'HX-OK'"),
    ],
)
def test_judge_chat(message, ok, detail):
    assert v.judge_chat({"choices": [{"message": message}]}) == (ok, detail)


def test_judge_chat_without_choices():
    assert v.judge_chat({"error": "x"}) == (False, "chat answer has no choices[0].message")


def test_judge_embeddings():
    three = {"data": [{"index": i, "embedding": [0.0] * 768} for i in range(3)]}
    assert v.judge_embeddings(three, 3, 768) == (True, "3 vectors of 768 dims")
    assert v.judge_embeddings(three, 3, 1024) == (False, "vectors have 768 dims, expected 1024")
    assert v.judge_embeddings(three, 1, 768) == (False, "1 input returned 3 vectors")
    assert v.judge_embeddings({}, 1, 768) == (False, "embedding answer has no data list")


def test_judge_models(catalogue):
    names = catalogue.model_names()
    assert v.judge_models(names, names) == (True, "all 11 catalogue names listed, nothing else")
    ok, detail = v.judge_models([n for n in names if n != "hx-chat"] + ["stray"], names)
    assert not ok and detail == "/v1/models: missing hx-chat; unexpected stray"


def test_error_message_shapes():
    assert (
        v.error_message(httpx.Response(500, text="Internal Server Error"))
        == "HTTP 500: Internal Server Error"
    )
    body = {"error": {"message": "Cannot connect to host h:1 ssl:<ssl.SSLContext object at 0x7f> [refused]"}}
    assert v.error_message(httpx.Response(500, json=body)) == "HTTP 500: Cannot connect to host h:1 [refused]"


def test_describe_error_is_short_and_has_no_request():
    request = httpx.Request("GET", URL, headers={"Authorization": f"Bearer {KEY}"})
    assert v.describe_error(httpx.ConnectError("[Errno 111] Connection refused", request=request)) == (
        "connection refused"
    )
    assert v.describe_error(httpx.ReadTimeout("timed out", request=request), 300) == "no answer within 300 s"


# --- table and report ---------------------------------------------------------------------------


def make_report(checks):
    return v.Report(
        "gw-1", URL, "1.108.7", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", 1.0, False, {}, checks
    )


def test_table_columns_line_up():
    report = make_report(
        [
            v.CheckResult(None, "readiness", v.PASS, 12.34, "healthy", 200),
            v.CheckResult(
                "llm02-phi3", "chat", v.FAIL, 1234.5, "chat answered 'WRONG-ANSWER', expected 'HX-OK'", 200
            ),
            v.CheckResult("emb-light", "embed", v.DEGRADED, None, "x" * 200, 500),
        ]
    )
    lines = v.format_table([report], detail_width=40)
    assert lines[0].split() == ["gateway", "model", "check", "result", "latency", "ms", "detail"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    # every column starts at the same offset on every line
    starts = [lines[0].index(word) for word in ("model", "check", "result", "detail")]
    assert lines[3][starts[0] :].startswith("llm02-phi3")
    assert lines[3][starts[1] :].startswith("chat")
    assert lines[3][starts[2] :].startswith("FAIL")
    assert lines[3][starts[3] :].startswith("chat answered 'WRONG-ANSWER'")
    assert lines[2][starts[0] :].startswith("-")
    assert "1234" in lines[3] and "12 " in lines[2]
    assert lines[4].endswith("x" * 37 + "...") and "DEGRADED" in lines[4]


def test_report_json_and_failure_message():
    report = make_report(
        [
            v.CheckResult(None, "readiness", v.PASS, 1.0, "healthy", 200),
            v.CheckResult(
                "llm02-phi3", "chat", v.FAIL, 2.0, "chat answered 'WRONG-ANSWER', expected 'HX-OK'", 200
            ),
            v.CheckResult("llm02-gemma2-2b", "chat", v.DEGRADED, 3.0, "chat failed: HTTP 500: x", 500),
        ]
    )
    data = json.loads(report.to_json())
    assert data["summary"] == {"passed": 1, "failed": 1, "degraded": 1}
    assert set(data) >= {"gateway", "url", "litellm_version", "started", "finished", "duration_s", "checks"}
    assert data["checks"][1] == {
        "model": "llm02-phi3",
        "check": "chat",
        "status": "fail",
        "latency_ms": 2.0,
        "detail": "chat answered 'WRONG-ANSWER', expected 'HX-OK'",
        "http_status": 200,
    }
    error = v.ValidationFailed(report)
    assert (
        str(error)
        == "gw-1: 1 required check failed: llm02-phi3: chat answered 'WRONG-ANSWER', expected 'HX-OK'"
    )
    assert error.args == (str(error),)  # pyinfra prints Name(args): one readable line


# --- the run against a fake gateway -------------------------------------------------------------


def test_all_pass_against_a_healthy_gateway(catalogue):
    gateway = FakeGateway(catalogue)
    report = run(catalogue, gateway, pinned_version="1.108.7")
    assert report.summary == {"passed": len(report.checks), "failed": 0, "degraded": 0}
    found = checks_by(report)
    for name in catalogue.model_names():
        mode = v.members_of(catalogue, name)[0].mode
        wanted = ["embed", "embed-batch"] if mode == "embedding" else ["chat"]
        assert all(found[(name, check)].status == v.PASS for check in wanted), name
    assert found[("llm01-llama3.2-3b", "stream")].status == v.PASS
    assert {c.check for c in report.checks if c.model is None} == {
        "readiness",
        "auth-no-key",
        "auth-malformed",
        "auth-empty-bearer",
        "auth-wrong-key",
        "open-routes",
        "auth-key",
        "models",
        "version",
    }
    assert found[(None, "auth-no-key")].http_status == 401
    assert found[(None, "auth-wrong-key")].detail == (
        "wrong key: 401 with an OpenAI error body on all 5 client routes"
    )
    assert report.litellm_version == "1.108.7"
    # each request's timeout fits its model: the big mistral (and its group) 300 s
    assert gateway.timeouts[("llm01-mistral-small3.2", "/v1/chat/completions")] == 300
    assert gateway.timeouts[("hx-chat-premium", "/v1/chat/completions")] == 300
    assert gateway.timeouts[("llm02-phi3", "/v1/chat/completions")] == 60
    assert gateway.timeouts[("emb-light", "/v1/embeddings")] == 30
    assert KEY not in report.to_json()


def test_wrong_answer_fails_that_model_only(catalogue):
    gateway = FakeGateway(catalogue)
    gateway.wrong = {"llm02-phi3"}
    report = run(catalogue, gateway)
    assert [c.line() for c in report.failures] == [
        "llm02-phi3: chat answered 'WRONG-ANSWER', expected 'HX-OK'"
    ]
    assert "llm02-phi3: chat answered 'WRONG-ANSWER', expected 'HX-OK'" in str(v.ValidationFailed(report))


def test_unreachable_backend_degrades_its_models_and_groups_unless_strict(catalogue):
    gateway = FakeGateway(catalogue)
    gateway.broken = {
        name: (500, "litellm.APIConnectionError: Cannot connect to host 198.18.1.28:11434")
        for name in ("llm02-phi3", "llm02-gemma2-2b", "hx-chat")
    }
    down = {"llm-02": "curl: (7) Failed to connect"}
    report = run(catalogue, gateway, unreachable=down)
    assert {(c.model, c.check) for c in report.degraded} == {
        ("llm02-phi3", "chat"),
        ("llm02-gemma2-2b", "chat"),
        ("hx-chat", "chat"),  # a group with an unreachable member that fails: degraded
        ("hx-chat", "tools"),
        ("llm02-phi3", "tools"),  # asked for a plain answer to a tools request
        ("llm02-gemma2-2b", "tools"),
    }
    assert report.failures == []
    assert "[backend llm-02 unreachable; degraded]" in checks_by(report)[("llm02-phi3", "chat")].detail
    strict = run(catalogue, gateway, unreachable=down, strict=True)
    assert {(c.model, c.check) for c in strict.failures} == {
        ("llm02-phi3", "chat"),
        ("llm02-gemma2-2b", "chat"),
        ("hx-chat", "chat"),
        ("hx-chat", "tools"),
        ("llm02-phi3", "tools"),
        ("llm02-gemma2-2b", "tools"),
    }
    assert "validation_strict is on" in strict.failures[0].detail


def test_failure_on_a_reachable_backend_is_not_degraded(catalogue):
    gateway = FakeGateway(catalogue)
    gateway.broken = {"emb-light": (500, "boom")}
    report = run(catalogue, gateway, unreachable={"llm-02": "down"})
    assert {(c.model, c.check) for c in report.failures} == {
        ("emb-light", "embed"),
        ("emb-light", "embed-batch"),
    }
    assert report.failures[0].detail == "embed failed: HTTP 500: boom"


def test_stream_uses_a_model_on_a_reachable_backend(catalogue):
    assert v.Validator("gw", URL, catalogue, KEY).stream_model() == "llm01-llama3.2-3b"
    assert (
        v.Validator("gw", URL, catalogue, KEY, unreachable={"llm-01": "down"}).stream_model() == "llm02-phi3"
    )


def test_stream_without_done_fails(catalogue):
    gateway = FakeGateway(catalogue)
    gateway.stream_done = False
    report = run(catalogue, gateway)
    assert [c.line() for c in report.failures] == [
        "llm01-llama3.2-3b: stream assembled 'HX-OK' but did not end with data: [DONE]"
    ]


def test_gateway_down_is_one_failure_that_says_so(catalogue):
    gateway = FakeGateway(catalogue)
    gateway.down = True
    report = run(catalogue, gateway, ready_timeout=0, unreachable={"llm-01": "x", "llm-02": "y", "orc": "z"})
    assert [c.line() for c in report.failures] == [
        f"gateway {URL} is not answering: connection refused (waited 0 s)"
    ]
    assert report.summary == {"passed": 0, "failed": 1, "degraded": 0}


def test_a_gateway_accepting_any_key_fails_auth(catalogue):
    gateway = FakeGateway(catalogue)
    gateway.accept_any_key = True
    report = run(catalogue, gateway)
    failed = {c.check for c in report.failures}
    assert failed == {"auth-no-key", "auth-malformed", "auth-empty-bearer", "auth-wrong-key", "open-routes"}
    assert checks_by(report)[(None, "auth-no-key")].detail.startswith(
        "no key: GET /v1/models: HTTP 200, expected 401"
    )


def test_missing_and_extra_models_fail_the_listing(catalogue):
    gateway = FakeGateway(catalogue)
    gateway.listed = [n for n in catalogue.model_names() if n != "emb-perf"] + ["rogue"]
    report = run(catalogue, gateway)
    assert [c.line() for c in report.failures] == ["/v1/models: missing emb-perf; unexpected rogue"]


def test_wrong_dims_fail(catalogue):
    gateway = FakeGateway(catalogue)
    gateway.dims["emb-premium"] = 768
    report = run(catalogue, gateway)
    assert [c.line() for c in report.failures] == [
        "emb-premium: vectors have 768 dims, expected 1024",
        "emb-premium: vectors have 768 dims, expected 1024",
    ]


def test_version_differs_from_the_pin(catalogue):
    report = run(catalogue, FakeGateway(catalogue), pinned_version="1.74.9")
    assert [c.line() for c in report.failures] == ["litellm 1.108.7, but the deploy pins 1.74.9"]


def test_the_master_key_is_scrubbed_from_echoed_errors(catalogue):
    gateway = FakeGateway(catalogue)
    gateway.broken = {"llm02-phi3": (500, f"upstream said: bad token {KEY}")}
    report = run(catalogue, gateway)
    text = report.to_json() + "\n".join(v.format_table([report])) + str(v.ValidationFailed(report))
    assert KEY not in text
    assert "<master key>" in checks_by(report)[("llm02-phi3", "chat")].detail
