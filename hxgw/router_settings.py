"""router_settings: checked against what LiteLLM 1.108.7's proxy and Router() accept, so a value
the proxy would silently drop, or one that would make it exit at start, is refused at plan time.

Sources (litellm 1.108.7 wheel): `Router.__init__` (litellm/router.py) for the keys and their
types; the proxy's config loader (litellm/proxy/proxy_server.py, "ROUTER SETTINGS") passes only
`Router.get_valid_args()` minus `ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG` (litellm/constants.py),
warns about and DROPS any other key, and raises for `health_check_interval` and
`health_check_concurrency`; `validate_routing_strategy` (litellm/router_utils/routing_groups.py)
raises for a strategy outside VALID_ROUTING_STRATEGIES; `Router.validate_fallbacks` raises for a
fallback entry that is not a one-key dict of a list.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hxgw.errors import ConfigError, describe, did_you_mean, is_int, shown, text_problem
from hxgw.schema import explain, field_key, messages
from hxgw.setting_fields import boolean, integer, seconds

# Router() keyword arguments the proxy passes on from router_settings. model_list is left out on
# purpose (the deploy writes it from the catalogue), and so are the keys in LiteLLM's
# ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG: the proxy sets those itself and drops them from here.
ROUTER_KEYS = (
    "guardrail_list", "redis_url", "redis_host", "redis_port", "redis_password", "redis_db",
    "cache_responses", "cache_kwargs", "caching_groups", "client_ttl", "polling_interval",
    "default_priority", "num_retries", "max_fallbacks", "timeout", "stream_timeout",
    "default_litellm_params", "default_max_parallel_requests", "set_verbose", "debug_level",
    "default_fallbacks", "fallbacks", "context_window_fallbacks", "content_policy_fallbacks",
    "model_group_alias", "enable_pre_call_checks", "enable_tag_filtering", "tag_filtering_match_any",
    "tag_routing_prefix", "plugins", "retry_after", "retry_policy", "model_group_retry_policy",
    "allowed_fails", "allowed_fails_policy", "cooldown_time", "disable_cooldowns",
    "fallback_on_unsupported_params", "routing_strategy", "optional_pre_call_checks",
    "routing_strategy_args", "routing_groups", "provider_budget_config", "alerting_config",
    "deployment_affinity_ttl_seconds", "model_group_affinity_config", "enable_health_check_routing",
    "health_check_staleness_threshold", "health_check_ignore_transient_errors",
    "background_health_check_model_groups", "enable_weighted_failover",
)  # fmt: skip
MANAGED_BY_THE_PROXY = (
    "search_tools", "assistants_config", "router_general_settings", "ignore_invalid_deployments",
    "fallback_access_check", "fallback_budget_check", "auto_router_capability_limit",
)  # fmt: skip
FATAL_AT_START = ("health_check_interval", "health_check_concurrency")
# litellm/router_utils/routing_groups.py VALID_ROUTING_STRATEGIES (with the RoutingStrategy enum).
ROUTING_STRATEGIES = (
    "simple-shuffle", "lar1", "least-busy", "latency-based-routing", "cost-based-routing",
    "usage-based-routing-v2", "usage-based-routing", "provider-budget-routing",
)  # fmt: skip
FALLBACK_KEYS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")
_FALLBACK_FIX = "write it as [{'<model or group>': ['<fallback model or group>', ...]}, ...]"
_PLAIN = "use text, numbers, True/False, None, or lists and dicts of those"


class RouterValues(BaseModel):
    """The types and ranges of the router_settings values LiteLLM checks or computes with. Only
    the keys given are validated (None leaves LiteLLM's own default), so no default here is used."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    routing_strategy: Literal[ROUTING_STRATEGIES] | None = Field(  # type: ignore[valid-type]
        None,
        json_schema_extra=messages(
            f"use one of: {', '.join(ROUTING_STRATEGIES)}",
            wrong_value="{shown}{hint} is not a LiteLLM routing strategy, "
            "and the proxy would exit at start; {fix}",
        ),
    )
    num_retries: int | None = integer(None, 0, 100, "", "e.g. num_retries: 2")
    max_fallbacks: int | None = integer(None, 0, 100, "", "e.g. max_fallbacks: 5")
    allowed_fails: int | None = integer(None, 0, 1000, "", "e.g. allowed_fails: 3")
    retry_after: int | None = integer(None, 0, 3600, "", "e.g. retry_after: 0")
    redis_port: int | None = integer(None, 1, 65535, "", "e.g. redis_port: 6379")
    redis_db: int | None = integer(None, 0, 1000, "", "e.g. redis_db: 0")
    client_ttl: int | None = integer(None, 1, 86400, "", "e.g. client_ttl: 3600")
    default_max_parallel_requests: int | None = integer(
        None, 1, 100000, "", "e.g. default_max_parallel_requests: 8"
    )
    deployment_affinity_ttl_seconds: int | None = integer(
        None, 1, 604800, "", "e.g. deployment_affinity_ttl_seconds: 3600"
    )
    timeout: float | None = seconds(None, 86400, "", "e.g. timeout: 300")
    stream_timeout: float | None = seconds(None, 86400, "", "e.g. stream_timeout: 300")
    polling_interval: float | None = seconds(None, 3600, "", "e.g. polling_interval: 0.03")
    cooldown_time: float | None = Field(
        None,
        ge=0,
        le=86400,
        allow_inf_nan=False,
        json_schema_extra=messages(
            "e.g. cooldown_time: 30",
            "must be a number of seconds, got {got}; write a bare number (no quotes), {fix}",
            "{value} is out of range; it must be from 0 to 86400 seconds, {fix}",
        ),
    )
    debug_level: Literal["DEBUG", "INFO"] | None = Field(
        None,
        json_schema_extra=messages(
            "use 'INFO' or 'DEBUG'", wrong_value="{shown}{hint} is not supported; {fix}"
        ),
    )
    set_verbose: bool | None = boolean("", None)
    cache_responses: bool | None = boolean("", None)
    enable_pre_call_checks: bool | None = boolean("", None)
    enable_tag_filtering: bool | None = boolean("", None)
    tag_filtering_match_any: bool | None = boolean("", None)
    disable_cooldowns: bool | None = boolean("", None)
    fallback_on_unsupported_params: bool | None = boolean("", None)
    enable_health_check_routing: bool | None = boolean("", None)
    health_check_ignore_transient_errors: bool | None = boolean("", None)
    enable_weighted_failover: bool | None = boolean("", None)


def parse_router_settings(raw: Any, model_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Validate router_settings: a dict of Router() arguments the proxy passes on, with values of
    the types LiteLLM needs, otherwise plain data (text, numbers, booleans, None, lists and dicts
    of those; the template JSON-quotes every value). With `model_names` (the catalogue's models
    and groups), fallbacks and aliases must name them. Raise ConfigError listing every problem."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            [
                f"router_settings must be a dict of LiteLLM Router() arguments, got {describe(raw)}; "
                "write router_settings = {'routing_strategy': 'simple-shuffle', ...}"
            ]
        )
    problems, typed = [], {}
    for key, value in raw.items():
        found = _key_problems(key, value)
        problems += found
        if not found and key in RouterValues.model_fields and value is not None:
            typed[key] = value  # its type and range are checked next, once it is plain data
    try:
        RouterValues.model_validate(typed)
    except ValidationError as error:
        for e in error.errors():
            key = field_key(e) or "?"
            problems.append(f"router_settings: {key} {explain(e, RouterValues.model_fields.get(key), key)}")
    problems += _redis_problems(raw)
    problems += _reference_problems(raw, model_names)
    if problems:
        raise ConfigError(problems)
    return dict(raw)


def _key_problems(key: Any, value: Any) -> list[str]:
    """What is wrong with one key and its value as plain data, before the typed checks."""
    if key == "model_list":
        return [
            "router_settings: key 'model_list' is written by the deploy from the catalogue; "
            "remove it and describe models under models and model_groups"
        ]
    if key in FATAL_AT_START:
        return [
            f"router_settings: {key} makes LiteLLM's proxy exit at start (it belongs in "
            "general_settings, which this deploy does not expose); remove it"
        ]
    if key in MANAGED_BY_THE_PROXY:
        return [
            f"router_settings: {key} is set by LiteLLM's proxy itself, which drops it from "
            "router_settings, so it would be silently ignored; remove it"
        ]
    if not isinstance(key, str) or key not in ROUTER_KEYS:
        return [
            f"router_settings: unknown key {shown(key)}{did_you_mean(key, ROUTER_KEYS)}; LiteLLM would "
            "silently ignore it: rename or remove it (keys are LiteLLM 1.108.7 Router() arguments, e.g. "
            "routing_strategy, num_retries, timeout, allowed_fails, cooldown_time, fallbacks, "
            "model_group_alias)"
        ]
    bad = _plain_data_problem(value)
    if bad:
        return [f"router_settings: {key} {bad}; {_PLAIN}"]
    if key in FALLBACK_KEYS and value is not None:
        return [f"router_settings: {key} {why}; {_FALLBACK_FIX}" for why in _fallback_shape(value)]
    if key == "default_fallbacks" and value is not None and not _names(value):
        return [
            f"router_settings: default_fallbacks must be a list of model names, got {describe(value)}; "
            "write default_fallbacks: ['<model or group>', ...] (a bare name makes the proxy exit at start)"
        ]
    if key == "model_group_alias" and value is not None and not _alias_shape(value):
        return [
            f"router_settings: model_group_alias must map alias names to model or group names, got "
            f"{describe(value)}; write model_group_alias: {{'<alias>': '<model or group>'}}"
        ]
    return []


def _fallback_shape(value: Any) -> list[str]:
    """Router.validate_fallbacks' rules (a break makes the proxy exit at start), as problems."""
    if not isinstance(value, (list, tuple)):
        return [f"must be a list of one-key dicts, got {describe(value)}"]
    problems = []
    for index, entry in enumerate(value):
        if not isinstance(entry, Mapping) or len(entry) != 1:
            problems.append(f"[{index}] must be a dict with exactly one key, got {describe(entry)}")
        elif not _names(next(iter(entry.values()))):
            ((source, targets),) = entry.items()
            problems.append(
                f"[{index}] must list the fallbacks of {source!r} as a list of names, got {describe(targets)}"
            )
    return problems


def _names(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(name, str) for name in value)


def _alias_shape(value: Any) -> bool:
    def target_ok(target: Any) -> bool:
        return isinstance(target, str) or (
            isinstance(target, Mapping) and isinstance(target.get("model"), str)
        )

    return isinstance(value, Mapping) and all(isinstance(k, str) and target_ok(t) for k, t in value.items())


def _redis_problems(raw: Mapping[str, Any]) -> list[str]:
    """Redis keys the Router would silently ignore: it uses Redis only with redis_url, or with
    BOTH redis_host and redis_port (Router.__init__, "CACHING"); otherwise each worker keeps its
    own in-memory state and the other keys do nothing."""
    given = {
        key
        for key in ("redis_url", "redis_host", "redis_port", "redis_password", "redis_db")
        if raw.get(key) is not None
    }
    if not given or "redis_url" in given or {"redis_host", "redis_port"} <= given:
        return []
    missing = "redis_port" if "redis_host" in given else "redis_host"
    return [
        f"router_settings: {', '.join(sorted(given))} would be silently ignored: LiteLLM's Router uses "
        f"Redis only with redis_url or with both redis_host and redis_port; add {missing} "
        "(e.g. redis_host: '10.0.0.5', redis_port: 6379) or remove the Redis keys"
    ]


def _reference_problems(raw: Mapping[str, Any], model_names: Sequence[str] | None) -> list[str]:
    """Fallbacks and aliases that name no model or group of the catalogue."""
    if model_names is None:
        return []
    known = list(model_names)
    referenced: list[tuple[str, str]] = []  # (where, name)
    for key in FALLBACK_KEYS:
        value = raw.get(key)
        if isinstance(value, (list, tuple)) and not _fallback_shape(value):
            for entry in value:
                ((source, targets),) = entry.items()
                referenced += [(key, source)] if source != "*" else []
                referenced += [(f"{key} of {source!r}", target) for target in targets]
    if _names(raw.get("default_fallbacks")):
        referenced += [("default_fallbacks", name) for name in raw["default_fallbacks"]]
    aliases = raw.get("model_group_alias")
    problems = []
    if isinstance(aliases, Mapping) and _alias_shape(aliases):
        for alias, target in aliases.items():
            referenced.append(
                (f"model_group_alias {alias!r}", target if isinstance(target, str) else target["model"])
            )
            if alias in known:
                problems.append(
                    f"router_settings: model_group_alias {alias!r} is already a model or group name, "
                    "so the alias would hide it; rename the alias"
                )
    for where, name in referenced:
        if name not in known:
            problems.append(
                f"router_settings: {where} names {name!r}, which is not a model or group of the "
                f"catalogue{did_you_mean(name, known)}; use one of: {', '.join(known)}"
            )
    return problems


def _plain_data_problem(value: Any, depth: int = 0) -> str | None:
    """Why a value cannot be written into config.yaml as plain data, or None if it can."""
    if depth > 8:
        return "is nested too deeply"
    if value is None or isinstance(value, bool) or is_int(value):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"is {value!r}, which YAML cannot hold as a number"
    if isinstance(value, str):
        problem = text_problem(value)
        return f"has text that {problem}" if problem else None
    if isinstance(value, (list, tuple)):
        for item in value:
            problem = _plain_data_problem(item, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"has a non-text dict key {describe(key)}"
            problem = text_problem(key) or _plain_data_problem(item, depth + 1)
            if problem:
                return problem
        return None
    return f"holds {describe(value)}, which is not plain data"
