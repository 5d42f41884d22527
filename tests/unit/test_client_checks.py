"""The client-shaped parts of the validation (hxgw.client_checks) and the gateway's key gate
(templates/hx_auth.py, run here against stand-ins for the two LiteLLM modules it imports).
The real thing on the fleet: tests/e2e/test_clients.py."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.util
import json
import runpy
import struct
import sys
import types

import httpx
import pytest

from hxgw import client_checks as cc
from hxgw.catalogue import parse_catalogue
from tests.unit.test_validation_logic import KEY, REPO, FakeGateway, checks_by, run

HX_AUTH = REPO / "templates" / "hx_auth.py"


@pytest.fixture(scope="module")
def catalogue():
    data = runpy.run_path(str(REPO / "group_data" / "all.py"))
    return parse_catalogue(data["backends"], data["models"], data["model_groups"])


def b64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def test_base64_vectors_decode_to_their_true_length():
    assert cc.decode_vector(b64([0.5] * 768)) == [0.5] * 768
    assert cc.decode_vector([0.25, 0.5]) == [0.25, 0.5]  # floats pass through
    assert cc.decode_vector("not base64!") == "not base64!"  # left for the judge to refuse
    body = {"data": [{"index": 0, "embedding": b64([1.0] * 384)}]}
    assert len(cc.decoded_embeddings(body)["data"][0]["embedding"]) == 384


OPENAI_401 = {"error": {"message": "Invalid or missing API key.", "type": "auth_error", "code": "401"}}


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (401, OPENAI_401, "401"),
        (400, {"error": {"message": "No connected db."}}, "HTTP 400, expected 401"),  # 1.108.7, wrong key
        (500, None, "HTTP 500, expected 401"),  # 1.108.7 without prisma, no key
        (200, {"data": []}, "HTTP 200, expected 401"),
        (401, {"detail": "Unauthorized"}, "HTTP 401 without OpenAI's {error: {message, type, code}} body"),
    ],
)
def test_judge_unauthorised_wants_exactly_401_with_openai_body(status, body, verdict):
    assert cc.judge_unauthorised(status, body, json.dumps(body), KEY) == (verdict == "401", verdict)


def test_an_answer_carrying_the_key_or_its_hash_fails():
    for leak in (KEY, hashlib.sha256(KEY.encode()).hexdigest()):
        ok, detail = cc.judge_unauthorised(401, OPENAI_401, f'{{"error": "bad key {leak}"}}', KEY)
        assert not ok and detail == "HTTP 401: the answer carries the master key or its hash"
        assert KEY not in detail


def test_open_routes_judge_names_each_wrong_route():
    good = {route: 200 for route in cc.OPEN_ROUTES} | {route: 401 for route in cc.CLOSED_ROUTES}
    assert cc.judge_open_routes(good)[0] is True
    ok, detail = cc.judge_open_routes({**good, "/ui/": 200, "/health/readiness": 503})
    assert not ok
    assert (
        detail
        == "without a key: /health/readiness answered 503, expected 200; /ui/ answered 200, expected 401"
    )


def test_validation_names_the_parameters_a_gateway_without_drop_params_refuses(catalogue):
    """The gateway as it was before drop_params: every SDK-shaped embedding and chat fails, named."""
    gateway = FakeGateway(catalogue)
    refuse = {"encoding_format", "presence_penalty"}
    original = gateway.__call__

    def strict(request):
        body = json.loads(request.content or b"{}")
        unsupported = sorted(refuse & set(body))
        if request.headers.get("authorization") == f"Bearer {KEY}" and unsupported:
            message = f"litellm.UnsupportedParamsError: ollama does not support parameters: {unsupported}"
            return httpx.Response(400, json={"error": {"message": message}})
        return original(request)

    report = run(catalogue, strict)
    failures = checks_by(report)
    assert failures[("emb-light", "embed")].detail.startswith(
        "embed failed: HTTP 400: litellm.UnsupportedParamsError: ollama does not support parameters: "
        "['encoding_format']"
    )
    assert "['presence_penalty']" in failures[("llm02-phi3", "chat")].detail
    # the tools requests carry the common parameters too
    assert {c.check for c in report.failures} == {"embed", "embed-batch", "chat", "stream", "tools"}


# --- templates/hx_auth.py, the gate in front of LiteLLM ---------------------------------------


class StandInApp:
    def __init__(self):
        self.router = types.SimpleNamespace(
            routes=[types.SimpleNamespace(path=p) for p in ("/ui", "/v1/models")]
        )
        self.middleware_stack = self.litellm

    async def litellm(self, scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"litellm"})

    def build_middleware_stack(self):
        return self.litellm


@pytest.fixture
def hx_auth(monkeypatch):
    """templates/hx_auth.py loaded as LiteLLM loads it, with the UI and the docs off."""

    class ProxyException(Exception):
        def __init__(self, message, type, param, code):
            super().__init__(message)
            self.message, self.type, self.code = message, type, str(code)

    app = StandInApp()
    types_module = types.SimpleNamespace(ProxyErrorTypes=types.SimpleNamespace(auth_error="auth_error"))
    types_module.ProxyException = ProxyException
    monkeypatch.setitem(sys.modules, "litellm", types.ModuleType("litellm"))
    monkeypatch.setitem(sys.modules, "litellm.proxy", types.ModuleType("litellm.proxy"))
    monkeypatch.setitem(sys.modules, "litellm.proxy._types", types_module)
    logger = types.SimpleNamespace(CustomLogger=object)
    monkeypatch.setitem(sys.modules, "litellm.integrations", types.ModuleType("litellm.integrations"))
    monkeypatch.setitem(sys.modules, "litellm.integrations.custom_logger", logger)
    monkeypatch.setitem(sys.modules, "litellm.proxy.proxy_server", types.SimpleNamespace(app=app))
    for name, value in (("LITELLM_MASTER_KEY", KEY), ("DISABLE_ADMIN_UI", "True"), ("NO_DOCS", "True")):
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("hx_auth", HX_AUTH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, app


def call(app, path, headers=()):
    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": path, "headers": [(k.encode(), v.encode()) for k, v in headers]}
    asyncio.run(app.middleware_stack(scope, None, send))
    return sent[0]["status"], sent[1]["body"]


def test_the_gate_opens_only_the_probes_and_the_master_key(hx_auth):
    module, app = hx_auth
    assert module.OPEN_PATHS == cc.OPEN_ROUTES  # the validation checks what the gate opens
    assert [r.path for r in app.router.routes] == ["/v1/models"]  # the UI's files are gone
    for path in cc.OPEN_ROUTES:
        assert call(app, path) == (200, b"litellm")
    assert call(app, "/v1/models", [("authorization", f"Bearer {KEY}")]) == (200, b"litellm")
    assert call(app, "/v1/messages", [("x-api-key", KEY)]) == (200, b"litellm")
    for headers in (
        [],
        [("authorization", "Bearer")],
        [("authorization", "Basic eDp5")],
        [("authorization", "Bearer sk-x")],
    ):
        for path in ("/v1/models", "/ui/", "/", "/.well-known/litellm-ui-config", "/health"):
            status, body = call(app, path, headers)
            assert status == 401 and json.loads(body)["error"]["code"] == "401", (path, headers)
            assert KEY.encode() not in body


def test_the_key_check_hands_the_master_key_to_litellm_and_refuses_the_rest(hx_auth):
    module, _ = hx_auth
    assert asyncio.run(module.user_api_key_auth(None, KEY)) == KEY
    for wrong in ("", None, "sk-wrong", KEY + "x", KEY[:-1]):
        with pytest.raises(Exception) as refused:
            asyncio.run(module.user_api_key_auth(None, wrong))
        assert refused.value.code == "401" and KEY not in str(refused.value)


def test_the_gate_opens_the_ui_and_docs_routes_only_when_turned_on(hx_auth, monkeypatch):
    module, _ = hx_auth
    monkeypatch.setenv("DISABLE_ADMIN_UI", "False")
    paths, prefixes = module._open_routes()
    assert "/.well-known/litellm-ui-config" in paths and "/ui" in prefixes and "/redoc" not in paths
    monkeypatch.setenv("NO_DOCS", "False")
    assert "/redoc" in module._open_routes()[0]


def test_routes_the_settings_open_must_answer_and_the_rest_stay_closed():
    opened = cc.opened_routes(admin_ui=True, api_docs=False)
    assert opened == cc.UI_ROUTES and set(opened) < set(cc.CLOSED_ROUTES)
    answers = {route: 200 for route in cc.OPEN_ROUTES} | {route: 401 for route in cc.CLOSED_ROUTES}
    ok, detail = cc.judge_open_routes(answers, opened)  # the UI turned on but still closed
    assert not ok and "/ui/ answered 401, expected it open" in detail
    answers |= {route: 200 for route in opened} | {"/sso/key/generate": 303}
    assert cc.judge_open_routes(answers, opened)[0] is True
    assert cc.judge_open_routes({**answers, "/redoc": 200}, opened)[1].endswith(
        "/redoc answered 200, expected 401"
    )


def test_a_stop_string_becomes_the_list_ollama_takes(hx_auth):
    module, _ = hx_auth
    fix = module.request_fixes.async_pre_call_hook
    assert asyncio.run(fix(None, None, {"stop": "HX"}, "completion")) == {"stop": ["HX"]}
    assert asyncio.run(fix(None, None, {"stop": ["A", "B"]}, "completion")) == {"stop": ["A", "B"]}
    assert asyncio.run(fix(None, None, {"model": "m"}, "completion")) == {"model": "m"}
