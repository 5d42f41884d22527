"""Failover, as a client sees it (README "Failover"): a group answers every request while any of
its members lives, and a name with no live member fails fast with 503 + Retry-After naming only
the model. Single-gateway faults on the session's shared gateway; the backends are the fleet's
fake Ollama processes, powered off (connection refused) or told to fail (`/_fault`).
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from testbed import cache, fleet
from tests.e2e import helpers

GATEWAY = helpers.GATEWAY
PROMPT = [{"role": "user", "content": helpers.HX_OK}]
COOLDOWN = 30  # group_data router_settings cooldown_time


@pytest.fixture(scope="module", autouse=True)
def several_workers(first_deploy):
    """These tests run the deploy's default serving: one worker per CPU (2 or more here), each
    with a router and a cooldown list of its own, as users run it. Afterwards the suite's one
    worker again (tests/e2e/conftest.py)."""
    key = helpers.master_key(GATEWAY)
    helpers.redeploy(GATEWAY, env={"MASTER_KEY": key, **helpers.DEFAULT_SERVING})
    assert helpers.workers_in_unit(GATEWAY) >= 2  # the default on these 2-CPU hosts
    yield
    helpers.redeploy(GATEWAY, env={"MASTER_KEY": helpers.master_key(GATEWAY)})


@pytest.fixture
def client(first_deploy) -> OpenAI:
    # No client retries: every failure the gateway lets through is seen here.
    return OpenAI(
        base_url=f"{helpers.url(GATEWAY)}/v1", api_key=helpers.master_key(GATEWAY), max_retries=0, timeout=120
    )


def until_llm02_in_rotation(client: OpenAI) -> None:
    """Group requests until one reaches llm-02: its members are not cooling down (after an earlier
    test took it away, that lasts up to the cooldown)."""
    before = helpers.chats_reaching("llm-02")
    deadline = time.monotonic() + COOLDOWN + 60  # a bound on a hang, not a speed claim
    while helpers.chats_reaching("llm-02") == before:
        assert time.monotonic() < deadline, "no request reached llm-02 (again)"
        assert answers(client, "hx-chat", 3) == ["HX-OK"] * 3
        time.sleep(0.5)


@pytest.fixture
def llm02_failing(client):
    """Set llm-02's fault knobs, once it is in the group's rotation; afterwards its faults are off
    and its counts zeroed."""
    until_llm02_in_rotation(client)
    yield lambda **knobs: helpers.backend("llm-02", "POST", "/_fault", knobs)
    helpers.backend("llm-02", "POST", "/_fault", {"reset": True})
    helpers.backend("llm-02", "DELETE", "/_stats")


def answers(client: OpenAI, model: str, count: int) -> list[str]:
    return [
        client.chat.completions.create(model=model, messages=PROMPT, temperature=0).choices[0].message.content
        for _ in range(count)
    ]


def test_a_group_answers_every_request_while_a_backend_is_powered_off(llm02_down, client):
    # hx-chat has 2 of its 3 members on llm-02: before the fix 1 request in 3 failed with 500.
    assert answers(client, "hx-chat", 40) == ["HX-OK"] * 40


def test_a_name_whose_only_backend_is_off_gets_503_naming_only_the_model(llm02_down, client):
    for stream in (False, True):
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="llm02-phi3", messages=PROMPT, stream=stream)
        error, text = caught.value, caught.value.response.text
        assert error.status_code == 503, text
        assert int(error.response.headers["retry-after"]) >= 1, error.response.headers
        assert error.body["message"] == "no backend serving model 'llm02-phi3' can be reached; retry later"
        # Never the backend's address, a stack or a library's internals.
        for leak in (llm02_down, "11434", "litellm", "Traceback", "ssl", "Connect call failed"):
            assert leak not in text, text


@pytest.mark.parametrize("error_rate", [0.5, 1.0])
def test_a_group_answers_every_request_while_a_member_fails(llm02_failing, client, error_rate):
    llm02_failing(error_rate=error_rate)
    assert answers(client, "hx-chat", 20) == ["HX-OK"] * 20
    assert helpers.backend("llm-02", "GET", "/_stats")["statuses"].get("500", 0) > 0  # the fault did fire


def test_a_name_whose_only_backend_answers_500_gets_502_in_the_backends_words(llm02_failing, client):
    llm02_failing(error_rate=1.0)
    for stream in (False, True):
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="llm02-phi3", messages=PROMPT, stream=stream)
        error, text = caught.value, caught.value.response.text
        assert error.status_code == 502, text
        assert (
            error.body["message"]
            == "the backend serving model 'llm02-phi3' failed (injected fault); retry later"
        )
        for leak in (fleet.find("llm-02").address, "litellm", "Ollama_chat", "Traceback", "model group"):
            assert leak not in text, text


def test_traffic_returns_to_a_backend_that_comes_back(llm02_down, client):
    # Enough requests for both llm-02 members to pass allowed_fails (3) and cool down.
    assert answers(client, "hx-chat", 20) == ["HX-OK"] * 20
    fleet.power_on("llm-02")
    until_llm02_in_rotation(client)


@pytest.fixture
def shared_gateway_with_redis(first_deploy, llm02_down):
    """hx-cache in the fleet (the `caches` group) and the shared gateway deployed onto its Redis;
    afterwards hx-cache is gone and the gateway is back on its own memory, with the key it had."""
    key = helpers.master_key(GATEWAY)
    cache_host = cache.add_cache().name
    yield key, cache_host
    fleet.remove_machine(cache_host)
    helpers.redeploy(GATEWAY, env={"MASTER_KEY": key, **helpers.DEFAULT_SERVING})


def redis_keys(cache_host: str, pattern: str) -> list[str]:
    address = fleet.find(cache_host).address
    auth = "export REDISCLI_AUTH=$(sed -n 's/^requirepass //p' /etc/redis/hx-redis-secret.conf);"
    out = helpers.ssh(
        cache_host, f"{auth} redis-cli --no-auth-warning -h {address} --scan --pattern '{pattern}'"
    )
    return out.split()


def shared_state_check(tmp_path: Path) -> dict:
    """tasks/validate.py alone against the shared gateway; its shared-state record."""
    report = tmp_path / "report.json"
    result = helpers.pyinfra(
        "--limit", GATEWAY, "--data", f"validation_report={report}", deploy="tasks/validate.py"
    )
    assert result.returncode == 0, result.output[-3000:]  # Redis trouble never fails the validation
    return next(c for c in json.loads(report.read_text())["checks"] if c["check"] == "shared-state")


def test_redis_shares_the_router_state_and_its_failure_is_not_the_gateways(
    shared_gateway_with_redis, tmp_path
):
    key, cache_host = shared_gateway_with_redis
    serving = {"MASTER_KEY": key, **helpers.DEFAULT_SERVING}
    deployed = helpers.pyinfra("--limit", GATEWAY, "--limit", cache_host, env=serving)
    assert deployed.returncode == 0, deployed.output[-4000:]
    client = OpenAI(base_url=f"{helpers.url(GATEWAY)}/v1", api_key=key, max_retries=0, timeout=120)

    # llm-02 is off: its members' cooldowns are written to Redis, where every worker reads them.
    assert answers(client, "hx-chat", 20) == ["HX-OK"] * 20
    assert redis_keys(cache_host, "deployment:*:cooldown"), "no cooldown reached Redis"

    helpers.ssh(cache_host, "systemctl stop redis-server")
    assert answers(client, "hx-chat", 10) == ["HX-OK"] * 10  # serves from its own memory
    degraded = shared_state_check(tmp_path)
    assert degraded["status"] == "degraded" and "cannot be reached" in degraded["detail"], degraded

    helpers.ssh(cache_host, "systemctl start redis-server")
    assert answers(client, "hx-chat", 10) == ["HX-OK"] * 10
    assert shared_state_check(tmp_path)["status"] == "pass"

    # A Redis password the cache host does not have: refused before the gateway restarts onto it.
    pid = helpers.main_pid(GATEWAY)
    wrong = helpers.pyinfra("--limit", GATEWAY, env={**serving, "REDIS_PASSWORD": secrets.token_urlsafe(32)})
    assert wrong.returncode == 1, wrong.output[-3000:]
    assert "refused the gateway's Redis password (-WRONGPASS); the gateway was not restarted" in wrong.output
    assert helpers.main_pid(GATEWAY) == pid
