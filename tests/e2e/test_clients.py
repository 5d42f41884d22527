"""Real client libraries against the deployed gateway, directly and through the load balancer
(issue 10): the official `openai` SDK and LangChain (`langchain-openai`), pinned in
requirements/test.lock, used as their users use them. For each client and each way in: list the
models, chat with every chat model and group (with the parameters clients commonly set), stream,
embed with every embedding model (dimension checked after decoding), and the error mapping.
Then what no client library shows: the status of every way of not having the key on every
client route, the routes that answer without a key (every GET route LiteLLM has is probed), no
traceback in the journal, the README's snippets run as written, and a drifted config that breaks
clients makes the post-deploy validation fail and name it.

The module adds hx-lb in front of the gateways already running (all given one master key) and
takes it away again at the end unless it was there before.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
import time

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from hxgw import client_checks
from hxgw.catalogue import parse_catalogue
from hxgw.validation import EXPECTED, PROMPT
from testbed import fleet
from tests.e2e import helpers, rollout_support

GATEWAY = fleet.gateway_name(0)
LB = fleet.LOADBALANCER[0]
_DATA = runpy.run_path(str(helpers.REPO / "group_data" / "all.py"))
CATALOGUE = parse_catalogue(_DATA["backends"], _DATA["models"], _DATA["model_groups"])
EMBEDDINGS = {m.name: m.dims for m in CATALOGUE.models if m.mode == "embedding"}
CHATS = [name for name in CATALOGUE.model_names() if name not in EMBEDDINGS]  # models and groups
TARGETS = ("gateway", "load balancer")
CLIENTS = ("openai", "langchain")
CONFIG = f"{helpers.BASE}/config/api-gateway/config.yaml"
# A tool as the openai SDK takes it.
TOOL = {
    "type": "function",
    "function": {"name": "lookup", "description": "Look a word up", "parameters": {"type": "object"}},
}


class FleetURLs(dict):
    """The fixture's values; its repr (shown in a failing test's traceback) hides the key."""

    def __repr__(self) -> str:
        return repr({name: ("<master key>" if name == "key" else value) for name, value in self.items()})


@pytest.fixture(scope="module")
def fleet_urls(first_deploy) -> dict:
    """{"gateway": URL, "load balancer": URL, "key": master key}: hx-lb in front of every running
    gateway, all deployed the README's way: the fleet's one key (a no-op when they already run so)."""
    had_lb = any(m.role == "loadbalancer" for m in fleet.load_machines())
    fleet.add_loadbalancer()
    gateways = [m.name for m in fleet.load_machines() if m.role == "gateway" and fleet.pid_alive(m.pid)]
    limits = [arg for name in [*gateways, LB] for arg in ("--limit", name)]
    result = helpers.pyinfra(*limits)
    key = helpers.kept_master_key()
    assert result.returncode == 0, f"deploying the gateways behind {LB} failed:\n{result.output[-4000:]}"
    urls = {"gateway": url(GATEWAY), "load balancer": url(LB), "key": key}
    wait_ready(urls["load balancer"])
    # HAProxy started while the gateways were deployed beside it: a gateway its first checks found
    # restarting is DOWN until `rise` checks pass, and one 200 through the LB does not say every
    # gateway is UP. Wait until HAProxy has them all fully UP.
    rollout_support.wait_all_up(gateways)
    since = helpers.ssh(GATEWAY, "date +%s").strip()
    yield FleetURLs(urls, since=since)
    if not had_lb:
        fleet.remove_machine(LB)


def url(name: str) -> str:
    return f"http://{fleet.find(name).address}:4000"


def wait_ready(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/health/readiness", timeout=3, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{base} not ready after {timeout} s"
        time.sleep(0.5)


def sdk(fleet_urls: dict, target: str, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{fleet_urls[target]}/v1", api_key=key or fleet_urls["key"], max_retries=0, timeout=60
    )


def chat_model(fleet_urls: dict, target: str, model: str, key: str | None = None, **options) -> ChatOpenAI:
    base = f"{fleet_urls[target]}/v1"
    return ChatOpenAI(model=model, base_url=base, api_key=key or fleet_urls["key"], max_retries=0, **options)


# --- the client libraries ----------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("client", CLIENTS)
def test_list_models(fleet_urls, client, target):
    if client == "openai":
        listed = [model.id for model in sdk(fleet_urls, target).models.list()]
    else:  # LangChain has no listing of its own: its ChatOpenAI's own openai client
        listed = [model.id for model in chat_model(fleet_urls, target, "hx-chat").root_client.models.list()]
    assert sorted(listed) == sorted(CATALOGUE.model_names())


def members(name: str) -> list:
    group = next((g for g in CATALOGUE.groups if g.name == name), None)
    return [CATALOGUE.model(m) for m in group.members] if group else [CATALOGUE.model(name)]


def budget(name: str) -> int:
    """max_tokens a client gives: a thinking model spends its budget on thinking first (Ollama
    counts thinking in num_predict), so its users give it room."""
    return 512 if any("thinking" in (m.capabilities or ()) for m in members(name)) else 20


@pytest.mark.parametrize("model", CHATS)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("client", CLIENTS)
def test_chat_with_common_parameters(fleet_urls, client, target, model):
    if client == "openai":
        answer = sdk(fleet_urls, target).chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": PROMPT}],
            temperature=0,
            top_p=1,
            presence_penalty=0.1,
            frequency_penalty=0.1,
            seed=7,
            user="hx-client-test",
            stop="HX-STOP",  # OpenAI's one-string form (Ollama takes only a list: hx_auth.py)
            max_tokens=budget(model),
            n=1,
            response_format={"type": "text"},
        )
        content = answer.choices[0].message.content
    else:
        llm = chat_model(
            fleet_urls, target, model, temperature=0, top_p=1, presence_penalty=0.1, frequency_penalty=0.1,
            seed=7, max_tokens=budget(model), stop=["HX-STOP"],
        )  # fmt: skip
        content = llm.invoke(PROMPT).content
    assert content.strip() == EXPECTED


@pytest.mark.parametrize("model", CHATS)
@pytest.mark.parametrize("target", TARGETS)
def test_a_tools_request_never_fails(fleet_urls, target, model):
    """Tools go to every model: one whose members all have tools calls it; any other answers in
    plain text (the deploy drops tools where a member lacks them) instead of Ollama's 400."""
    answer = sdk(fleet_urls, target).chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": PROMPT}],
        tools=[TOOL],
        max_tokens=budget(model),
    )
    choice = answer.choices[0]
    if all("tools" in (m.capabilities or ()) for m in members(model)):
        assert choice.finish_reason == "tool_calls"
        call = choice.message.tool_calls[0]
        assert call.id and call.function.name == "lookup"
        assert isinstance(json.loads(call.function.arguments), dict)
    else:
        assert (choice.finish_reason, choice.message.tool_calls) == ("stop", None)
        assert choice.message.content.strip() == EXPECTED


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("client", CLIENTS)
def test_stream(fleet_urls, client, target):
    if client == "openai":
        stream = sdk(fleet_urls, target).chat.completions.create(
            model="hx-chat",
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    else:  # stream_usage: LangChain sends stream_options (its default only for OpenAI's own URL)
        chunks = list(
            chat_model(fleet_urls, target, "hx-chat", streaming=True, stream_usage=True).stream(PROMPT)
        )
        content = "".join(chunk.content for chunk in chunks)
        assert sum((c.usage_metadata or {}).get("output_tokens", 0) for c in chunks) > 0
    assert len(chunks) > 1 and content.strip() == EXPECTED


@pytest.mark.parametrize("model", sorted(EMBEDDINGS))
@pytest.mark.parametrize("target", TARGETS)
def test_openai_embeddings_keep_their_dimension_in_every_encoding(fleet_urls, target, model):
    client = sdk(fleet_urls, target)
    for encoding in (openai.NOT_GIVEN, "float", "base64"):  # the SDK's default is base64 on the wire
        answer = client.embeddings.create(model=model, input=["one", "two"], encoding_format=encoding)
        lengths = [len(item.embedding) for item in answer.data]
        assert lengths == [EMBEDDINGS[model]] * 2, (encoding, lengths)


@pytest.mark.parametrize("model", sorted(EMBEDDINGS))
@pytest.mark.parametrize("target", TARGETS)
def test_langchain_embeddings_keep_their_dimension(fleet_urls, target, model):
    embeddings = OpenAIEmbeddings(
        model=model,
        base_url=f"{fleet_urls[target]}/v1",
        api_key=fleet_urls["key"],
        check_embedding_ctx_length=False,  # tiktoken would fetch OpenAI's tokenizer from the internet
        max_retries=0,
    )
    documents = embeddings.embed_documents(["one", "two", "three"])
    assert [len(vector) for vector in documents] == [EMBEDDINGS[model]] * 3
    assert len(embeddings.embed_query("one")) == EMBEDDINGS[model]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("client", CLIENTS)
def test_error_mapping(fleet_urls, client, target):
    wrong = "sk-" + "x" * 40
    if client == "openai":
        with pytest.raises(openai.AuthenticationError) as refused:
            sdk(fleet_urls, target, key=wrong).models.list()
        with pytest.raises(openai.BadRequestError) as unknown:  # README: an unknown model is 400
            sdk(fleet_urls, target).chat.completions.create(
                model="no-such-model", messages=[{"role": "user", "content": PROMPT}]
            )
    else:
        with pytest.raises(openai.AuthenticationError) as refused:
            chat_model(fleet_urls, target, "hx-chat", key=wrong).invoke(PROMPT)
        with pytest.raises(openai.BadRequestError) as unknown:  # README: an unknown model is 400
            chat_model(fleet_urls, target, "no-such-model").invoke(PROMPT)
    assert refused.value.status_code == 401 and wrong not in str(refused.value)
    assert unknown.value.status_code == 400 and "no-such-model" in str(unknown.value)


# --- what the libraries do not show ------------------------------------------------------------

ROUTES = [
    ("GET", "/v1/models", None),
    ("POST", "/v1/chat/completions", {"model": "hx-chat", "messages": [{"role": "user", "content": PROMPT}]}),
    ("POST", "/v1/completions", {"model": "hx-chat", "prompt": PROMPT}),
    ("POST", "/v1/embeddings", {"model": "emb-light", "input": "x", "encoding_format": "base64"}),
    ("GET", "/health", None),
]
BAD_HEADERS = {
    "no Authorization header": {},
    "a malformed header": {"Authorization": "Basic aHg6aHg="},
    "an empty bearer": {"Authorization": "Bearer"},
    "a wrong key": {"Authorization": "Bearer sk-" + "w" * 40},
}


@pytest.mark.parametrize("target", TARGETS)
def test_every_way_of_not_having_the_key_gets_401_on_every_client_route(fleet_urls, target):
    key = fleet_urls["key"]
    seen = {}
    with httpx.Client(base_url=fleet_urls[target], trust_env=False, timeout=30) as client:
        for what, headers in BAD_HEADERS.items():
            for method, path, body in ROUTES:
                answer = client.request(method, path, headers=headers, json=body)
                ok, verdict = client_checks.judge_unauthorised(
                    answer.status_code, answer.json(), answer.text, key
                )
                seen[(what, path)] = verdict if not ok else 401
        for method, path, body in ROUTES:  # and the key itself works on each
            answer = client.request(method, path, headers={"Authorization": f"Bearer {key}"}, json=body)
            seen[("the master key", path)] = answer.status_code
    expected = {(what, path): 401 for what in BAD_HEADERS for _, path, _ in ROUTES}
    expected |= {("the master key", path): 200 for _, path, _ in ROUTES}
    assert seen == expected
    journal = helpers.ssh(GATEWAY, f"journalctl -u {helpers.UNIT} --since @{fleet_urls['since']} -o cat")
    assert "Traceback" not in journal and key not in journal


def readme_routes() -> list[str]:
    section = helpers.REPO.joinpath("README.md").read_text().split("### Routes without a key", 1)[1]
    return re.findall(r"^\| `GET (/\S+)` \|", section.split("\n#", 1)[0], flags=re.M)


def test_only_the_readme_routes_answer_without_a_key(fleet_urls):
    """Every GET route of LiteLLM's app (its OpenAPI schema, read on the gateway), without a key."""
    assert readme_routes() == list(client_checks.OPEN_ROUTES)
    venv_python = f"{helpers.BASE}/gateway/venv/bin/python"
    script = "import json; from litellm.proxy.proxy_server import app; print(json.dumps(sorted(app.openapi()['paths'])))"
    listing = helpers.ssh(
        GATEWAY, f'cd /tmp && LITELLM_LOCAL_MODEL_COST_MAP=True {venv_python} -c "{script}"', timeout=240
    )
    paths = json.loads(listing.strip().splitlines()[-1])
    assert len(paths) > 300 and "/health/readiness" in paths  # the whole app, not a stub
    open_without_key = []
    with httpx.Client(base_url=fleet_urls["gateway"], trust_env=False, timeout=30) as client:
        for path in paths + ["/ui/", "/_next/x", "/swagger/swagger-ui.css"]:  # + the static mounts
            if client.get(re.sub(r"\{[^}]+\}", "x", path)).status_code != 401:
                open_without_key.append(path)
    assert open_without_key == readme_routes()


# --- the README's snippets ------------------------------------------------------------------------


def lb_evidence() -> str:
    """What hx-lb saw, for a failure through it: the gateways' state and HAProxy's last request
    lines (the status, and `<NOSRV>` or the termination flags say whether HAProxy or the gateway
    answered; no header, so no key). A 503 here was seen once, first test of a reversed run."""
    state = helpers.ssh(LB, "hx-lb-ctl state hx_gateways", check=False)
    log = helpers.ssh(LB, "journalctl -t haproxy -n 15 --no-pager -o cat", check=False)
    return f"{LB} state: {state}\n{LB} log:\n{log}"


def readme_snippets() -> list[tuple[str, str]]:
    """(language, code) of each fenced block in the README's "Use the gateway" section."""
    text = helpers.REPO.joinpath("README.md").read_text()
    section = text.split("## Use the gateway", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```(sh|python)\n(.*?)^```", section, flags=re.M | re.S)


def test_the_readme_snippets_work_as_written(fleet_urls, tmp_path):
    snippets = readme_snippets()
    assert [language for language, _ in snippets] == ["sh", "sh", "python", "python"]
    setup = snippets[0][1]
    production = (
        "export OPENAI_BASE_URL=http://192.168.10.39:4000/v1\nexport OPENAI_API_KEY=sk-your-gateway-key\n"
    )
    assert setup == production
    # The fleet's load balancer and key instead of production's; the key goes through the
    # environment, never a command line.
    setup = setup.replace("http://192.168.10.39:4000", fleet_urls["load balancer"])
    setup = setup.replace("sk-your-gateway-key", '"$HX_TEST_KEY"')
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["HX_TEST_KEY"] = fleet_urls["key"]
    outputs = []
    for language, code in snippets[1:]:
        script = tmp_path / f"snippet-{len(outputs)}.sh"
        run = code if language == "sh" else f"{sys.executable} - <<'HX_PYTHON'\n{code}HX_PYTHON\n"
        # Nothing here may reach production's 192.168.10.x: only the fleet's addresses run.
        assert "192.168." not in setup + run, f"{language} snippet names a production address"
        script.write_text("set -euo pipefail\n" + setup + run)
        proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (
            f"{language} snippet failed:\n{proc.stdout}\n{proc.stderr}\n{lb_evidence()}"
        )
        outputs.append(proc.stdout)
    curl, sdk_out, langchain_out = outputs
    assert '"id":"hx-chat"' in curl.replace(" ", "") and EXPECTED in curl and '"embedding":' in curl
    assert sdk_out.splitlines()[1:] == [EXPECTED, EXPECTED, "2 vectors of 768 dims"]
    assert sorted(json.loads(sdk_out.splitlines()[0].replace("'", '"'))) == sorted(CATALOGUE.model_names())
    assert langchain_out.splitlines() == [EXPECTED, EXPECTED, "768 dims"]


# --- a drifted config breaks clients: the validation says so ------------------------------------


def test_validation_fails_and_names_a_gateway_that_refuses_client_parameters(fleet_urls, tmp_path):
    """Someone removes drop_params from config.yaml on the host and restarts: SDK embeddings
    and chats with common parameters fail, and the validation names each; a deploy repairs it."""
    edit = f"sed -i '/^  drop_params: true$/d' {CONFIG} && systemctl restart {helpers.UNIT}"
    report_file = tmp_path / "report.json"
    try:
        helpers.ssh(GATEWAY, edit)
        wait_ready(fleet_urls["gateway"], timeout=180)
        result = helpers.pyinfra(
            "--limit", GATEWAY, "--data", f"validation_report={report_file}", deploy="tasks/validate.py"
        )
    finally:
        repaired = helpers.pyinfra("--limit", GATEWAY)
    assert result.returncode != 0
    report = json.loads(report_file.read_text())
    failed = {(c["model"], c["check"]): c["detail"] for c in report["checks"] if c["status"] == "fail"}
    assert set(failed) == {(m, "embed") for m in EMBEDDINGS} | {(m, "embed-batch") for m in EMBEDDINGS} | {
        (m, check) for m in CHATS for check in ("chat", "tools")
    } | {(report_stream_model(report), "stream")}
    assert "UnsupportedParamsError" in failed[("emb-perf", "embed")]
    assert "encoding_format" in failed[("emb-perf", "embed")]
    assert "UnsupportedParamsError" in failed[("llm02-phi3", "chat")]
    assert "emb-perf: embed failed: HTTP 400" in result.output  # named in pyinfra's error too
    assert repaired.returncode == 0 and "tasks/config.py | Render config.yaml" in repaired.changed(GATEWAY)
    assert sdk(fleet_urls, "gateway").embeddings.create(model="emb-perf", input="x").data[0].embedding


def report_stream_model(report: dict) -> str:
    return next(c["model"] for c in report["checks"] if c["check"] == "stream")
