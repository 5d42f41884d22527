"""Failover, as a client sees it (README "Failover"): a group answers every request while any of
its members lives, and a name with no live member fails fast with 503 + Retry-After naming only
the model. Single-gateway faults on the session's shared gateway; the backends are the fleet's
fake Ollama processes, powered off (connection refused) or told to fail (`/_fault`).
"""

from __future__ import annotations

import time

import openai
import pytest
from openai import OpenAI

from testbed import fleet
from tests.e2e import helpers

GATEWAY = helpers.GATEWAY
PROMPT = [{"role": "user", "content": helpers.HX_OK}]
COOLDOWN = 30  # group_data router_settings cooldown_time


@pytest.fixture(scope="module", autouse=True)
def several_workers(first_deploy):
    """These tests run the deploy's default serving: one worker per CPU (2 or more here), each
    with a router and a cooldown list of its own, as users run it. Afterwards the suite's one
    worker again (tests/e2e/conftest.py)."""
    helpers.redeploy(GATEWAY, env=helpers.DEFAULT_SERVING)
    assert helpers.workers_in_unit(GATEWAY) >= 2  # the default on these 2-CPU hosts
    yield
    helpers.redeploy(GATEWAY)


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


@pytest.fixture
def llm02_answering_500():
    """llm-02 answers 500 to every request; afterwards its faults are off and its counts zeroed."""
    helpers.backend("llm-02", "POST", "/_fault", {"error_rate": 1.0})
    yield
    helpers.backend("llm-02", "POST", "/_fault", {"reset": True})
    helpers.backend("llm-02", "DELETE", "/_stats")


def test_a_name_whose_only_backend_answers_500_gets_502_in_the_backends_words(llm02_answering_500, client):
    # One request: 3 tries (InternalServerErrorRetries 2), within the 3 failures allowed before a
    # cooldown, so no later test finds this name cooling down.
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="llm02-phi3", messages=PROMPT)
    error, text = caught.value, caught.value.response.text
    assert error.status_code == 502, text
    assert (
        error.body["message"] == "the backend serving model 'llm02-phi3' failed (injected fault); retry later"
    )
    for leak in (fleet.find("llm-02").address, "litellm", "Ollama_chat", "Traceback", "model group"):
        assert leak not in text, text


def test_traffic_returns_to_a_backend_that_comes_back(llm02_down, client):
    # Enough requests for both llm-02 members to pass allowed_fails (3) and cool down.
    assert answers(client, "hx-chat", 20) == ["HX-OK"] * 20
    fleet.power_on("llm-02")
    until_llm02_in_rotation(client)
