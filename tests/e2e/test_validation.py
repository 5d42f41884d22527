"""Post-deploy validation (tasks/validate.py) on the local fleet: all green after a deploy, a
backend answering wrongly, a backend powered off (degraded; failed when strict), the gateway
stopped. The master key never shows up in pyinfra's output or in the JSON report."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest

from testbed import fleet
from tests.e2e import helpers

GATEWAY = helpers.GATEWAY
START = f"{helpers.BASE}/scripts/service/api-gateway/start.sh"
EMBEDDINGS = {"emb-premium": 1024, "emb-perf": 768, "emb-light": 384}
CHATS = ["llm01-llama3.2-3b", "llm01-qwen3-1.7b", "llm01-mistral-small3.2", "llm02-phi3", "llm02-gemma2-2b"]
GROUPS = ["hx-chat", "hx-chat-fast", "hx-chat-premium"]
GATEWAY_CHECKS = {
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


def gateway_url() -> str:
    return f"http://{fleet.find(GATEWAY).address}:4000"


def validate(
    tmp_path: Path, *args: str, env: dict | None = None, json_output: bool = True
) -> tuple[helpers.DeployResult, dict | None]:
    """Run tasks/validate.py alone against the gateway; return pyinfra's result and the report."""
    report = tmp_path / "report.json"
    result = helpers.pyinfra(
        "--limit",
        GATEWAY,
        "--data",
        f"validation_report={report}",
        *args,
        deploy="tasks/validate.py",
        env=env,
        json_output=json_output,
    )
    return result, (json.loads(report.read_text()) if report.exists() else None)


def by_check(report: dict) -> dict[tuple, dict]:
    return {(c["model"], c["check"]): c for c in report["checks"]}


def assert_key_hidden(result: helpers.DeployResult, report: dict | None, key: str | None = None) -> None:
    key = key or helpers.master_key(GATEWAY)
    assert key not in result.output
    assert report is None or key not in json.dumps(report)


def set_fault(backend: str, knobs: dict) -> dict:
    machine = fleet.find(backend)
    response = httpx.post(
        f"http://{machine.address}:{fleet.OLLAMA_PORT}/_fault", json=knobs, timeout=5, trust_env=False
    )
    response.raise_for_status()
    return response.json()


def test_the_deploy_runs_validation_and_prints_the_table(first_deploy):
    assert "validation OK" in first_deploy.stderr, first_deploy.output[-3000:]
    # A passing validation changes nothing, so it is listed among the unchanged operations.
    assert any("Validate the gateway API" in op for op in first_deploy.unchanged(GATEWAY))
    header = next(line for line in first_deploy.stderr.splitlines() if "latency ms" in line)
    assert header.split()[:6] == ["gateway", "model", "check", "result", "latency", "ms"]
    # The default report: reports/validation-<host>-<UTC timestamp>.json and ...-latest.json.
    written = [
        line.split(" written to ", 1)[1].strip()
        for line in first_deploy.stderr.splitlines()
        if "validation report written to" in line
    ]
    stamped = [p for p in written if not p.endswith("-latest.json")]
    assert len(written) == 2 and len(stamped) == 1, written
    assert Path(stamped[0]).parent == helpers.REPO / "reports"
    assert Path(stamped[0]).name.startswith(f"validation-{GATEWAY}-20")
    assert json.loads(Path(stamped[0]).read_text())["url"] == gateway_url()
    assert_key_hidden(first_deploy, json.loads(Path(stamped[0]).read_text()))


def test_all_checks_pass(first_deploy, tmp_path):
    result, report = validate(tmp_path)
    assert result.returncode == 0, result.output[-4000:]
    assert report is not None
    assert report["gateway"] == GATEWAY and report["url"] == gateway_url()
    assert report["litellm_version"] == "1.108.7"
    assert report["summary"] == {"passed": len(report["checks"]), "failed": 0, "degraded": 0}
    assert report["duration_s"] > 0 and report["started"] <= report["finished"]
    checks = by_check(report)
    assert {check for model, check in checks if model is None} == GATEWAY_CHECKS
    for name, dims in EMBEDDINGS.items():
        assert checks[(name, "embed")]["detail"] == f"1 vector of {dims} dims"
        assert checks[(name, "embed-batch")]["detail"] == f"3 vectors of {dims} dims"
    for name in CHATS + GROUPS:
        assert checks[(name, "chat")]["status"] == "pass"
        assert checks[(name, "chat")]["detail"].startswith("answered 'HX-OK'")
    stream = checks[("llm01-llama3.2-3b", "stream")]
    assert stream["status"] == "pass" and "ended with data: [DONE]" in stream["detail"]
    models_in_report = {model for model, _ in checks if model}
    assert models_in_report == set(EMBEDDINGS) | set(CHATS) | set(GROUPS)
    assert all(
        c["status"] == "pass" and c["latency_ms"] is not None
        for c in report["checks"]
        if c["check"] != "version"
    )
    # Every way of not having the key: exactly 401 on every client route (templates/hx_auth.py).
    for check in ("auth-no-key", "auth-malformed", "auth-empty-bearer", "auth-wrong-key"):
        assert checks[(None, check)]["http_status"] == 401
        assert checks[(None, check)]["detail"].endswith(
            ": 401 with an OpenAI error body on all 5 client routes"
        )
    assert checks[(None, "auth-key")]["http_status"] == 200
    assert "all 11 catalogue names listed, nothing else" == checks[(None, "models")]["detail"]
    # The table is in pyinfra's normal output.
    assert f"{GATEWAY}  llm02-phi3" in result.stderr
    assert "validation OK: " in result.stderr
    assert_key_hidden(result, report)


def test_dry_run_calls_nothing(first_deploy, tmp_path):
    # Every check the validation makes of a model reaches a backend through the gateway: the
    # fakes count each request as it arrives (/_stats received). What a --dry run may still
    # send are the backend checks' probes (/api/version, /api/tags from the gateway host), facts
    # read at plan time like every other.
    def requests() -> dict:
        stats = {name: helpers.backend(name, "GET", "/_stats") for name in fleet.BACKENDS}
        return {name: (s["received"], s["running"], s["waiting"], s["paths"]) for name, s in stats.items()}

    before = requests()
    result, report = validate(tmp_path, "--dry", json_output=False)
    assert result.returncode == 0, result.output[-3000:]
    assert report is None
    assert "latency ms" not in result.output
    after = requests()
    for name in fleet.BACKENDS:
        assert after[name][:3] == before[name][:3], (name, before[name], after[name])  # no model request
        grew = {path for path, n in after[name][3].items() if n != before[name][3].get(path, 0)}
        assert grew <= {"/api/version", "/api/tags"}, (name, grew)


@pytest.fixture
def hx_chat_members_answer_wrongly(first_deploy):
    """Every member of hx-chat answers wrongly (llama3.2 on llm-01, phi3 and gemma2 on llm-02):
    the group's one chat check fails whichever member the router picks (simple-shuffle)."""
    set_fault("llm-01", {"wrong_models": ["llama3.2:3b"]})
    set_fault("llm-02", {"wrong_models": ["phi3:latest", "gemma2:2b"]})
    yield
    set_fault("llm-01", {"reset": True})
    set_fault("llm-02", {"reset": True})


def test_a_wrong_answer_fails_exactly_the_models_that_give_it(hx_chat_members_answer_wrongly, tmp_path):
    result, report = validate(tmp_path)
    assert result.returncode != 0
    assert report is not None
    checks = by_check(report)
    wrong = {"llm01-llama3.2-3b": ("llama3.2:3b", "llm-01"), "llm02-phi3": ("phi3:latest", "llm-02"),
             "llm02-gemma2-2b": ("gemma2:2b", "llm-02")}  # fmt: skip
    for name, (tag, backend) in wrong.items():
        via = f"(via ollama_chat/{tag} at http://{fleet.find(backend).address}:11434)"
        assert checks[(name, "chat")]["status"] == "fail"
        assert checks[(name, "chat")]["detail"] == f"chat answered 'WRONG-ANSWER', expected 'HX-OK' {via}"
        assert f"{name}: chat answered 'WRONG-ANSWER', expected 'HX-OK'" in result.output
    group = checks[("hx-chat", "chat")]
    assert group["status"] == "fail"
    assert group["detail"].startswith("chat answered 'WRONG-ANSWER', expected 'HX-OK' (via ollama_chat/")
    failed = {key for key, c in checks.items() if c["status"] == "fail"}
    # ... and the one streamed chat, which the validation asks of the first chat model.
    assert failed == {(name, "chat") for name in wrong} | {("hx-chat", "chat"), (CHATS[0], "stream")}
    assert report["summary"]["degraded"] == 0
    assert report["summary"]["failed"] == len(failed)
    assert_key_hidden(result, report)


def test_a_backend_down_is_degraded_and_fails_when_strict(llm02_down, tmp_path):
    result, report = validate(tmp_path)
    strict, strict_report = validate(tmp_path / "strict", "--data", "validation_strict=True")

    # Not strict: llm-02's models are degraded, the host passes.
    assert result.returncode == 0, result.output[-4000:]
    assert "llm-02" in report["unreachable_backends"]
    checks = by_check(report)
    degraded = {key for key, c in checks.items() if c["status"] == "degraded"}
    # hx-chat has a member on llm-01: a pick of an llm-02 member fails over to it at once
    # (enable_weighted_failover, DefaultRetries 0), so the group passes.
    hx_chat = {("hx-chat", "chat"), ("hx-chat", "tools")}
    on_llm02 = {(m, check) for m in ("llm02-phi3", "llm02-gemma2-2b") for check in ("chat", "tools")}
    assert degraded == on_llm02
    assert {checks[key]["status"] for key in hx_chat} == {"pass"}
    assert report["summary"]["failed"] == 0
    assert "[backend llm-02 unreachable; degraded]" in checks[("llm02-phi3", "chat")]["detail"]
    assert f"{GATEWAY}: DEGRADED llm02-phi3: chat failed: HTTP " in result.output
    assert all(checks[(name, "chat")]["status"] == "pass" for name in CHATS[:3] + ["hx-chat-fast"])
    assert all(checks[(name, "embed")]["status"] == "pass" for name in EMBEDDINGS)

    # Strict: the same checks fail, and so does the host.
    assert strict.returncode != 0
    strict_checks = by_check(strict_report)
    failed = {key for key, c in strict_checks.items() if c["status"] == "fail"}
    assert failed == on_llm02  # the groups still pass: their llm-01 member answers
    assert strict_report["summary"]["degraded"] == 0
    assert "validation_strict is on" in strict_checks[("llm02-phi3", "chat")]["detail"]
    assert "llm02-phi3: chat failed: HTTP " in strict.output
    assert_key_hidden(result, report)
    assert_key_hidden(strict, strict_report)


@pytest.fixture
def gateway_stopped(first_deploy):
    helpers.ssh(GATEWAY, f"systemctl stop {helpers.UNIT}")
    yield
    helpers.ssh(GATEWAY, START, timeout=240)


def test_the_gateway_stopped_is_a_failure_that_says_so(gateway_stopped, tmp_path):
    result, report = validate(tmp_path, "--data", "validation_ready_timeout=3")
    assert result.returncode != 0
    assert report["summary"] == {"passed": 0, "failed": 1, "degraded": 0}
    (check,) = report["checks"]
    assert (check["model"], check["check"], check["status"]) == (None, "readiness", "fail")
    message = f"gateway {gateway_url()} is not answering: connection refused"
    assert check["detail"].startswith(message)
    assert f"{GATEWAY}: FAILED {message}" in result.output
    assert "ValidationFailed" in result.output and message in result.output
    assert_key_hidden(result, report)


def test_master_key_from_the_control_machine_is_used_and_never_shown(first_deploy, tmp_path):
    # MASTER_KEY on the control machine wins over the host's env file: a valid-looking key the
    # gateway does not know is refused, every authenticated check fails, and the key stays hidden.
    other = "sk-" + secrets.token_urlsafe(32)
    result, report = validate(tmp_path, env={"MASTER_KEY": other})
    assert result.returncode != 0
    checks = by_check(report)
    assert checks[(None, "auth-key")]["status"] == "fail"
    assert checks[(None, "auth-key")]["detail"].startswith(
        "GET /v1/models with the master key failed: HTTP 4"
    )
    assert checks[(None, "auth-no-key")]["status"] == "pass"
    assert_key_hidden(result, report, key=other)
    assert_key_hidden(result, report)


@pytest.fixture
def env_file_aside(first_deploy):
    """The host's env file moved aside (the running service keeps the key it started with)."""
    helpers.ssh(GATEWAY, f"mv {helpers.ENV_FILE} {helpers.ENV_FILE}.hx-away")
    yield
    helpers.ssh(GATEWAY, f"mv {helpers.ENV_FILE}.hx-away {helpers.ENV_FILE}")


def test_a_host_without_its_key_file_fails_validation_saying_where_to_look(env_file_aside, tmp_path):
    result, report = validate(tmp_path)
    assert result.returncode != 0
    assert f"{GATEWAY}: cannot read the master key from {helpers.ENV_FILE}" in result.output
    assert "set MASTER_KEY on the control machine, or deploy first" in result.output


@pytest.fixture
def malformed_env_file(first_deploy):
    """The env file without a LITELLM_MASTER_KEY= line; the real one is back after the test."""
    helpers.ssh(
        GATEWAY,
        f"cp -p {helpers.ENV_FILE} {helpers.ENV_FILE}.hx-away && "
        f"sed -i 's/^LITELLM_MASTER_KEY=/LITELLM_MASTER_KEY_TYPO=/' {helpers.ENV_FILE}",
    )
    yield
    helpers.ssh(GATEWAY, f"mv {helpers.ENV_FILE}.hx-away {helpers.ENV_FILE}")


def test_a_malformed_key_file_fails_validation_naming_the_missing_line(malformed_env_file, tmp_path):
    key = helpers.ssh(GATEWAY, f"sed -n 's/^LITELLM_MASTER_KEY_TYPO=//p' {helpers.ENV_FILE}").strip()
    result, report = validate(tmp_path)
    assert result.returncode != 0
    assert f"{GATEWAY}: {helpers.ENV_FILE} has no LITELLM_MASTER_KEY=... line" in result.output
    assert key and key not in result.output
