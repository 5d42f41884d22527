"""Tests for hxgw.router_settings: router_settings are refused when LiteLLM 1.108.7's proxy would
silently drop them or exit at start, and fallbacks and aliases must name the catalogue's models."""

from __future__ import annotations

import pytest

from hxgw.errors import ConfigError
from hxgw.router_settings import parse_router_settings

NAMES = ["llm01-llama3.2-3b", "llm02-phi3", "hx-chat", "emb-perf"]
GOOD = {
    "routing_strategy": "simple-shuffle",
    "num_retries": 2,
    "timeout": 300,
    "allowed_fails": 3,
    "cooldown_time": 30,
    "fallbacks": [{"hx-chat": ["llm02-phi3"]}, {"*": ["llm01-llama3.2-3b"]}],
    "default_fallbacks": ["hx-chat"],
    "model_group_alias": {"chat": "hx-chat", "hidden-chat": {"model": "hx-chat", "hidden": True}},
    "tag_routing_prefix": "it's $HOME",
}

# (case id, changes to GOOD, substrings ONE problem line must hold: the key and the fix)
BAD_CASES = [
    ("strategy-underscore", {"routing_strategy": "simple_shuffle"},
     ["router_settings: routing_strategy 'simple_shuffle' (did you mean 'simple-shuffle'?)", "exit at start", "least-busy"]),
    ("strategy-unknown", {"routing_strategy": "round-robin"}, ["routing_strategy 'round-robin' is not a LiteLLM routing strategy"]),
    ("strategy-not-text", {"routing_strategy": 1}, ["routing_strategy int 1 is not a LiteLLM routing strategy"]),
    ("retries-negative", {"num_retries": -1}, ["router_settings: num_retries -1 is out of range", "from 0 to 100"]),
    ("retries-text", {"num_retries": "2"}, ["router_settings: num_retries must be an integer", "got str '2'"]),
    ("timeout-zero", {"timeout": 0}, ["router_settings: timeout 0 is out of range", "more than 0"]),
    ("timeout-text", {"timeout": "300"}, ["router_settings: timeout must be a number of seconds", "got str '300'"]),
    ("cooldown-negative", {"cooldown_time": -5}, ["router_settings: cooldown_time -5 is out of range", "from 0"]),
    ("allowed-fails-bool", {"allowed_fails": True}, ["router_settings: allowed_fails must be an integer", "got bool True"]),
    ("redis-port-range", {"redis_host": "10.0.0.5", "redis_port": 70000}, ["router_settings: redis_port 70000 is out of range"]),
    ("debug-level", {"debug_level": "debug"}, ["router_settings: debug_level 'debug'", "(did you mean 'DEBUG'?)"]),
    ("switch-text", {"enable_pre_call_checks": "yes"}, ["router_settings: enable_pre_call_checks must be True or False", "got str 'yes'"]),
    ("fallbacks-not-list", {"fallbacks": {"hx-chat": ["llm02-phi3"]}}, ["router_settings: fallbacks must be a list of one-key dicts", "[{'<model or group>'"]),
    ("fallbacks-two-keys", {"fallbacks": [{"hx-chat": ["llm02-phi3"], "emb-perf": []}]}, ["router_settings: fallbacks [0] must be a dict with exactly one key"]),
    ("fallbacks-bare-name", {"fallbacks": [{"hx-chat": "llm02-phi3"}]}, ["router_settings: fallbacks [0] must list the fallbacks of 'hx-chat' as a list of names"]),
    ("fallbacks-unknown-source", {"fallbacks": [{"hx-chta": ["llm02-phi3"]}]},
     ["router_settings: fallbacks names 'hx-chta', which is not a model or group", "(did you mean 'hx-chat'?)", "use one of: llm01-llama3.2-3b"]),
    ("fallbacks-unknown-target", {"fallbacks": [{"hx-chat": ["llm02-phi4"]}]},
     ["router_settings: fallbacks of 'hx-chat' names 'llm02-phi4'", "(did you mean 'llm02-phi3'?)"]),
    ("context-fallbacks-unknown", {"context_window_fallbacks": [{"hx-chat": ["gpt-4"]}]}, ["context_window_fallbacks of 'hx-chat' names 'gpt-4'"]),
    ("default-fallbacks-string", {"default_fallbacks": "hx-chat"}, ["router_settings: default_fallbacks must be a list of model names", "exit at start"]),
    ("default-fallbacks-unknown", {"default_fallbacks": ["nope"]}, ["router_settings: default_fallbacks names 'nope'"]),
    ("alias-unknown-target", {"model_group_alias": {"chat": "hx-caht"}}, ["router_settings: model_group_alias 'chat' names 'hx-caht'", "did you mean 'hx-chat'"]),
    ("alias-hides-model", {"model_group_alias": {"llm02-phi3": "hx-chat"}}, ["model_group_alias 'llm02-phi3' is already a model or group name", "rename the alias"]),
    ("alias-not-dict", {"model_group_alias": ["chat"]}, ["router_settings: model_group_alias must map alias names"]),
    ("fatal-health-interval", {"health_check_interval": 30}, ["router_settings: health_check_interval makes LiteLLM's proxy exit at start", "remove it"]),
    ("dropped-by-proxy", {"ignore_invalid_deployments": True}, ["router_settings: ignore_invalid_deployments is set by LiteLLM's proxy itself", "silently ignored"]),
    ("redis-host-without-port", {"redis_host": "10.0.0.5"}, ["router_settings: redis_host would be silently ignored", "add redis_port"]),
    ("redis-port-without-host", {"redis_port": 6379, "redis_password": "pw"}, ["router_settings: redis_password, redis_port would be silently ignored", "add redis_host"]),
    ("dropped-router-general", {"router_general_settings": {}}, ["router_settings: router_general_settings is set by LiteLLM's proxy itself"]),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "expected"), [pytest.param(c, e, id=i) for i, c, e in BAD_CASES])
def test_bad_router_setting_names_key_and_fix(changes: dict, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_router_settings({**GOOD, **changes}, model_names=NAMES)
    problems = caught.value.problems
    assert len(problems) == 1, problems
    assert all(part in problems[0] for part in expected), problems[0]


def test_case_ids_are_unique() -> None:
    ids = [case_id for case_id, _, _ in BAD_CASES]
    assert len(ids) == len(set(ids))


def test_good_settings_pass_unchanged() -> None:
    assert parse_router_settings(GOOD, model_names=NAMES) == GOOD
    assert parse_router_settings(None) == {}
    # Every LiteLLM routing strategy is accepted, None means LiteLLM's default.
    for strategy in ("least-busy", "latency-based-routing", "usage-based-routing-v2", "lar1"):
        assert parse_router_settings({"routing_strategy": strategy})["routing_strategy"] == strategy
    assert parse_router_settings({"timeout": None, "num_retries": 0}) == {"timeout": None, "num_retries": 0}


def test_references_are_checked_only_against_a_known_catalogue() -> None:
    settings = {"fallbacks": [{"anything": ["else"]}]}
    assert parse_router_settings(settings) == settings  # no catalogue given: shapes only
    with pytest.raises(ConfigError) as caught:
        parse_router_settings(settings, model_names=NAMES)
    assert len(caught.value.problems) == 2  # the source and the target


def test_redis_is_accepted_when_the_router_uses_it() -> None:
    for redis in ({"redis_host": "10.0.0.5", "redis_port": 6379}, {"redis_url": "redis://10.0.0.5:6379"}):
        assert parse_router_settings({**redis, "redis_password": "x"}) == {**redis, "redis_password": "x"}


def test_every_problem_is_reported_together() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_router_settings({"routing_strategy": "simple_shuffle", "num_retries": -1, "model_group": {}})
    assert len(caught.value.problems) == 3
