"""The gateway deploy on a real fleet machine: host state, idempotence, the API, dry-run diffs."""

from __future__ import annotations

import httpx
import pytest
import testinfra

from testbed import fleet
from tests.e2e import helpers

GATEWAY = helpers.GATEWAY
BASE = helpers.BASE
CONFIG = helpers.CONFIG


@pytest.fixture(scope="module")
def gw(first_deploy):
    machine = fleet.find(GATEWAY)
    return testinfra.get_host(
        f"paramiko://root@{machine.address}",
        ssh_identity_file=str(fleet.SSH_KEY),
    )


def test_service_user_is_a_system_account(gw):
    user = gw.user("hx-gateway")
    assert user.exists
    assert user.uid < 1000
    assert user.shell == "/bin/false"
    assert user.home == "/nonexistent"
    assert not gw.file("/nonexistent").exists


def test_ownership_and_modes(first_deploy):
    assert helpers.stats(GATEWAY, *helpers.LAYOUT_MODES) == helpers.LAYOUT_MODES


def test_nothing_under_base_dir_is_world_writable(gw):
    found = gw.check_output(f"find {BASE} -perm -o+w ! -type l -print")
    assert found == ""


def test_unit_runs_as_service_user_and_holds_port_4000(gw):
    service = gw.service("hx-litellm-gateway.service")
    assert service.is_enabled and service.is_running
    assert gw.socket("tcp://0.0.0.0:4000").is_listening
    pid = gw.check_output("systemctl show -p MainPID --value hx-litellm-gateway.service")
    assert gw.check_output(f"ps -o user= -p {pid}") == "hx-gateway"
    listeners = gw.check_output("ss -ltnpH 'sport = :4000'")
    assert f"pid={pid}," in listeners


def test_config_uses_real_litellm_syntax_and_no_secret(gw):
    config = gw.file(CONFIG).content_string
    assert 'model: "ollama_chat/llama3.2:3b"' in config
    assert 'model: "ollama/mxbai-embed-large"' in config
    assert "mode: embedding" in config
    assert "master_key: os.environ/LITELLM_MASTER_KEY" in config
    assert config.count('- model_name: "hx-chat"') == 3  # a real load-balanced group
    assert "model_group:" not in config  # the seed's invalid syntax
    assert helpers.master_key(GATEWAY) not in config


def test_second_run_changes_nothing_and_does_not_restart(first_deploy):
    pid = helpers.main_pid(GATEWAY)
    again = helpers.pyinfra("--limit", GATEWAY)
    helpers.assert_noop(again, GATEWAY)
    assert len(again.unchanged(GATEWAY)) >= 15
    assert helpers.main_pid(GATEWAY) == pid


def test_chat_and_embedding_through_the_gateway(first_deploy):
    key = helpers.master_key(GATEWAY)
    url = f"http://{fleet.find(GATEWAY).address}:4000"
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60, trust_env=False) as client:
        chat = client.post(
            "/v1/chat/completions",
            json={
                "model": "llm01-llama3.2-3b",
                "messages": [{"role": "user", "content": "Return exactly the text: HX-OK"}],
                "temperature": 0,
                "max_tokens": 10,
            },
        )
        assert chat.status_code == 200, chat.text
        assert chat.json()["choices"][0]["message"]["content"].strip() == "HX-OK"
        emb = client.post("/v1/embeddings", json={"model": "emb-premium", "input": "hello"})
        assert emb.status_code == 200, emb.text
        assert len(emb.json()["data"][0]["embedding"]) == 1024


def test_catalogue_change_dry_run_shows_diff_then_one_restart(restore_gateway, tmp_path):
    override = helpers.with_extra_model(tmp_path / "group_data")
    config_before = helpers.ssh(GATEWAY, f"sha256sum {CONFIG}")
    pid = helpers.main_pid(GATEWAY)

    dry = helpers.pyinfra("--dry", "--diff", "--group-data", override, "--limit", GATEWAY, json_output=False)
    assert dry.returncode == 0, dry.output[-3000:]
    assert '+   - model_name: "llm02-dolphin3"' in dry.output
    assert "Restart the gateway and wait for readiness" in dry.output
    assert helpers.ssh(GATEWAY, f"sha256sum {CONFIG}") == config_before
    assert helpers.main_pid(GATEWAY) == pid

    starts_before = helpers.starts(GATEWAY)
    applied = helpers.pyinfra("--group-data", override, "--limit", GATEWAY)
    assert applied.returncode == 0, applied.output[-3000:]
    assert "tasks/service.py | Restart the gateway and wait for readiness" in applied.changed(GATEWAY)
    assert helpers.starts(GATEWAY) == starts_before + 1  # exactly one restart
    assert helpers.main_pid(GATEWAY) != pid
    # The new model is served.
    assert "llm02-dolphin3" in helpers.served_models(GATEWAY)
    # And a re-run with the change is a no-op.
    helpers.assert_noop(helpers.pyinfra("--group-data", override, "--limit", GATEWAY), GATEWAY)
