"""The templates render what LiteLLM and systemd expect, from the production data."""

from __future__ import annotations

import yaml

from hxgw.catalogue import parse_catalogue
from hxgw.serving import serving_for
from hxgw.settings import parse_settings
from tests.unit.helpers import production_data, render


def production_config() -> dict:
    data = production_data()
    catalogue = parse_catalogue(data["backends"], data["models"], data["model_groups"])
    text = render(
        "config.yaml.j2", deployments=catalogue.deployments(), router_settings=data["router_settings"]
    )
    return yaml.safe_load(text)


def test_config_has_every_deployment_with_real_litellm_params():
    config = production_config()
    entries = config["model_list"]
    assert len(entries) == 13  # 8 models + 5 group members
    names = [e["model_name"] for e in entries]
    assert names.count("hx-chat") == 3
    assert len(set(names)) == 11
    by_name = {e["model_name"]: e for e in entries}
    assert by_name["emb-premium"]["litellm_params"]["model"] == "ollama/mxbai-embed-large"
    assert by_name["emb-premium"]["model_info"] == {"mode": "embedding"}
    assert by_name["llm02-phi3"]["litellm_params"] == {
        "model": "ollama_chat/phi3:latest",
        "api_base": "http://192.168.10.28:11434",
        "timeout": 60.0,
        # what phi3 lacks is dropped, so a tools request gets a plain answer instead of a 400
        "additional_drop_params": ["tools", "tool_choice", "functions", "reasoning_effort"],
    }
    assert by_name["llm02-phi3"]["model_info"] == {  # its declared capabilities, for LiteLLM
        "supports_function_calling": False,
        "supports_reasoning": False,
        "supports_vision": False,
        "max_input_tokens": 4096,
    }
    hx_chat = [e["litellm_params"]["model"] for e in entries if e["model_name"] == "hx-chat"]
    assert hx_chat == ["ollama_chat/llama3.2:3b", "ollama_chat/phi3:latest", "ollama_chat/gemma2:2b"]


def test_config_keeps_secrets_out_and_uses_real_keys():
    config = production_config()
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert config["general_settings"]["background_health_checks"] is False
    assert config["litellm_settings"] == {
        "telemetry": False,
        "drop_params": True,
        "callbacks": ["hx_auth.request_fixes", "hx_auth.failover"],
        "enable_post_custom_auth_checks": True,  # a client key's expiry (hx_auth.py)
    }
    assert config["general_settings"]["custom_auth"] == "hx_auth.user_api_key_auth"
    assert "model_group" not in config["router_settings"]  # the seed's invalid key
    assert config["router_settings"]["routing_strategy"] == "simple-shuffle"


def test_unit_runs_as_the_service_user_with_the_key_from_a_file():
    data = production_data()
    settings = parse_settings({**data, "gateway_ip": "192.168.10.39"})
    unit = render("hx-litellm-gateway.service.j2", settings=settings, serving=serving_for(settings, 2, 4096))
    assert "User=hx-gateway\n" in unit
    assert "EnvironmentFile=/opt/HX-Infrastructure-/api-gateway/config/api-gateway/gateway.env\n" in unit
    assert "Environment=LITELLM_LOCAL_MODEL_COST_MAP=True\n" in unit
    assert "Restart=on-failure\n" in unit
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start == (
        "ExecStart=/opt/HX-Infrastructure-/api-gateway/gateway/venv/bin/litellm "
        "--config /opt/HX-Infrastructure-/api-gateway/config/api-gateway/config.yaml "
        "--host 0.0.0.0 --port 4000 --num_workers 2 --timeout_worker_healthcheck 120 "
        "--log_config /opt/HX-Infrastructure-/api-gateway/config/api-gateway/uvicorn-logging.json"
    )
    assert "Environment=LITELLM_LOG=WARNING\n" in unit
    for directive in ("NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectSystem=strict", "ProtectHome=yes"):
        assert directive + "\n" in unit
