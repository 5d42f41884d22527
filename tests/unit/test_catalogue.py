"""Tests for hxgw.catalogue: the valid baseline parses; every bad input is reported with
the offending entry and the fix, all at once."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable

import pytest

from hxgw.catalogue import Backend, Catalogue, ConfigError, Group, Model, parse_catalogue

BACKENDS = [
    {"name": "llm-01", "url": "http://192.168.10.29:11434"},
    {"name": "llm-02", "url": "http://192.168.10.28:11434"},
    {"name": "orc", "url": "http://192.168.10.31:11434"},
]
MODELS = [
    {"name": "emb-premium", "backend": "orc", "model": "mxbai-embed-large", "mode": "embedding", "dims": 1024},
    {"name": "emb-perf", "backend": "orc", "model": "nomic-embed-text", "mode": "embedding", "dims": 768},
    {"name": "emb-light", "backend": "orc", "model": "all-minilm", "mode": "embedding", "dims": 384},
    {"name": "llm01-llama3.2-3b", "backend": "llm-01", "model": "llama3.2:3b", "mode": "chat"},
    {"name": "llm01-qwen3-1.7b", "backend": "llm-01", "model": "qwen3:1.7b", "mode": "chat"},
    {"name": "llm01-mistral-small3.2", "backend": "llm-01", "model": "mistral-small3.2:latest", "mode": "chat", "timeout": 300},
    {"name": "llm02-phi3", "backend": "llm-02", "model": "phi3:latest", "mode": "chat"},
    {"name": "llm02-gemma2-2b", "backend": "llm-02", "model": "gemma2:2b", "mode": "chat"},
]  # fmt: skip
MODEL_GROUPS = [
    {"name": "hx-chat", "members": ["llm01-llama3.2-3b", "llm02-phi3", "llm02-gemma2-2b"]},
    {"name": "hx-chat-fast", "members": ["llm01-qwen3-1.7b"]},
    {"name": "hx-chat-premium", "members": ["llm01-mistral-small3.2"]},
]

Data = dict[str, list]
Mutation = Callable[[Data], None]


def baseline() -> Data:
    """A fresh deep copy of the valid fleet, keyed by parse_catalogue's argument names."""
    return copy.deepcopy({"backends": BACKENDS, "models": MODELS, "model_groups": MODEL_GROUPS})


def parse(data: Data) -> Catalogue:
    return parse_catalogue(data["backends"], data["models"], data["model_groups"])


# --- mutations of the baseline: each returns a function that edits the data in place ---


def set_key(section: str, index: int, key: str, value) -> Mutation:
    def mutate(data: Data) -> None:
        data[section][index][key] = value

    return mutate


def drop_key(section: str, index: int, key: str) -> Mutation:
    def mutate(data: Data) -> None:
        del data[section][index][key]

    return mutate


def rename_key(section: str, index: int, old: str, new: str) -> Mutation:
    def mutate(data: Data) -> None:
        data[section][index][new] = data[section][index].pop(old)

    return mutate


def add_member(index: int, member) -> Mutation:
    def mutate(data: Data) -> None:
        data["model_groups"][index]["members"].append(member)

    return mutate


def set_section(section: str, value) -> Mutation:
    def mutate(data: Data) -> None:
        data[section] = value

    return mutate


def set_entry(section: str, index: int, value) -> Mutation:
    def mutate(data: Data) -> None:
        data[section][index] = value

    return mutate


URL_FIX = "e.g. 'http://192.168.10.29:11434'"
NAME_FIX = "names must match ^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
BACKEND_LIST = "use one of: llm-01, llm-02, orc"

# (case id, mutation of the baseline, substrings that must all appear in ONE problem line:
#  the offending entry and the fix)
BAD_CASES = [
    ("key-typo-model", rename_key("models", 3, "model", "modle"), ["unknown key 'modle' in model 'llm01-llama3.2-3b' (did you mean 'model'?)", "rename it to 'model'"]),
    ("key-typo-timeout", set_key("models", 5, "timeut", 10), ["unknown key 'timeut' in model 'llm01-mistral-small3.2' (did you mean 'timeout'?)", "rename it"]),
    ("key-typo-url", rename_key("backends", 0, "url", "ulr"), ["unknown key 'ulr' in backend 'llm-01' (did you mean 'url'?)", "rename it to 'url'"]),
    ("key-typo-members", rename_key("model_groups", 0, "members", "member"), ["unknown key 'member' in group 'hx-chat' (did you mean 'members'?)", "rename it"]),
    ("key-unknown-no-match", set_key("backends", 1, "zzz", 1), ["unknown key 'zzz' in backend 'llm-02'", "remove it"]),
    ("group-missing-model", add_member(0, "llm02-phi4"), ["group 'hx-chat' member 'llm02-phi4' is not a defined model", "define it under models or use one of:", "did you mean 'llm02-phi3'"]),
    ("model-without-backend", drop_key("models", 6, "backend"), ["model 'llm02-phi3' is missing required key 'backend'", "naming one of: llm-01, llm-02, orc"]),
    ("model-without-mode", drop_key("models", 6, "mode"), ["model 'llm02-phi3' is missing required key 'mode'", '"mode": "chat"']),
    ("backend-without-url", drop_key("backends", 2, "url"), ["backend 'orc' is missing required key 'url'", 'add "url": "http://192.168.10.29:11434"']),
    ("model-missing-backend", set_key("models", 6, "backend", "llm-03"), ["catalogue: model 'llm02-phi3' names backend 'llm-03', which is not defined; define it under backends or use one of: llm-01, llm-02, orc"]),
    ("backend-not-string", set_key("models", 6, "backend", ["llm-01"]), ["model 'llm02-phi3' backend must be a backend name", BACKEND_LIST]),
    ("url-no-scheme", set_key("backends", 0, "url", "192.168.10.29:11434"), ["backend 'llm-01' url", "has no scheme", URL_FIX]),
    ("url-hostname-no-scheme", set_key("backends", 0, "url", "llm01:11434"), ["backend 'llm-01' url", "has no scheme", URL_FIX]),
    ("url-path", set_key("backends", 0, "url", "http://192.168.10.29:11434/api"), ["backend 'llm-01' url", "has a path '/api'", URL_FIX]),
    ("url-port-0", set_key("backends", 1, "url", "http://192.168.10.28:0"), ["backend 'llm-02' url", "port must be a number from 1 to 65535", URL_FIX]),
    ("url-port-70000", set_key("backends", 1, "url", "http://192.168.10.28:70000"), ["backend 'llm-02' url", "port must be a number from 1 to 65535", URL_FIX]),
    ("url-port-text", set_key("backends", 1, "url", "http://192.168.10.28:abc"), ["backend 'llm-02' url", "port must be a number", URL_FIX]),
    ("url-no-port", set_key("backends", 1, "url", "http://192.168.10.28"), ["backend 'llm-02' url", "has no port", URL_FIX]),
    ("url-ftp", set_key("backends", 2, "url", "ftp://192.168.10.31:11434"), ["backend 'orc' url", "scheme 'ftp'", URL_FIX]),
    ("url-userinfo", set_key("backends", 2, "url", "http://admin:pw@192.168.10.31:11434"), ["backend 'orc' url", "user info", URL_FIX]),
    ("url-query", set_key("backends", 2, "url", "http://192.168.10.31:11434?x=1"), ["backend 'orc' url", "query or fragment", URL_FIX]),
    ("url-fragment", set_key("backends", 2, "url", "http://192.168.10.31:11434#top"), ["backend 'orc' url", "query or fragment", URL_FIX]),
    ("url-no-host", set_key("backends", 2, "url", "http://:11434"), ["backend 'orc' url", "no valid host", URL_FIX]),
    ("url-space", set_key("backends", 2, "url", "http://192.168.10.31 :11434"), ["backend 'orc' url", "whitespace", URL_FIX]),
    ("url-not-string", set_key("backends", 2, "url", 11434), ["backend 'orc' url must be a string", URL_FIX]),
    ("model-model-collision", set_key("models", 7, "name", "llm02-phi3"), ["model 'llm02-phi3' is defined twice (models[6] and models[7])", "unique name"]),
    ("group-model-collision", set_key("model_groups", 1, "name", "emb-perf"), ["group 'emb-perf' collides with model 'emb-perf'", "rename the group or the model"]),
    ("group-group-collision", set_key("model_groups", 2, "name", "hx-chat"), ["group 'hx-chat' is defined twice (model_groups[0] and model_groups[2])", "unique name"]),
    ("backend-backend-collision", set_key("backends", 2, "name", "llm-01"), ["backend 'llm-01' is defined twice (backends[0] and backends[2])", "unique name"]),
    ("dims-on-chat", set_key("models", 3, "dims", 4096), ["model 'llm01-llama3.2-3b' is a chat model but sets dims", "remove dims"]),
    ("embedding-without-dims", drop_key("models", 1, "dims"), ["model 'emb-perf' is an embedding model without dims", 'add "dims"']),
    ("dims-bool", set_key("models", 1, "dims", True), ["model 'emb-perf' dims must be a positive integer, got bool True", '"dims": 768']),
    ("dims-string", set_key("models", 1, "dims", "768"), ["model 'emb-perf' dims must be a positive integer, got str '768'", "without quotes"]),
    ("dims-zero", set_key("models", 1, "dims", 0), ["model 'emb-perf' dims must be a positive integer", '"dims": 768']),
    ("mode-typo", set_key("models", 1, "mode", "embeddings"), ["model 'emb-perf' has mode 'embeddings' (did you mean 'embedding'?)", "mode must be 'chat' or 'embedding'"]),
    ("tag-whitespace", set_key("models", 4, "model", "qwen3 1.7b"), ["model 'llm01-qwen3-1.7b' has invalid Ollama tag", "no spaces, quotes or control characters"]),
    ("tag-empty", set_key("models", 4, "model", ""), ["model 'llm01-qwen3-1.7b' has invalid Ollama tag ''", "e.g. 'llama3.2:3b'"]),
    ("tag-newline", set_key("models", 4, "model", "qwen3:1.7b\n"), ["model 'llm01-qwen3-1.7b' has invalid Ollama tag 'qwen3:1.7b\\n'", "control characters"]),
    ("tag-not-string", set_key("models", 4, "model", 3), ["model 'llm01-qwen3-1.7b' model must be an Ollama tag string", "e.g. 'llama3.2:3b'"]),
    ("timeout-negative", set_key("models", 5, "timeout", -1), ["model 'llm01-mistral-small3.2' timeout must be a positive number", '"timeout": 120']),
    ("timeout-bool", set_key("models", 5, "timeout", True), ["model 'llm01-mistral-small3.2' timeout must be a positive number", "got bool True"]),
    ("timeout-string", set_key("models", 5, "timeout", "300"), ["model 'llm01-mistral-small3.2' timeout must be a positive number", "got str '300'"]),
    ("mixed-mode-group", add_member(0, "emb-perf"), ["group 'hx-chat' mixes chat and embedding members", "embedding: emb-perf", "split it into one group per mode"]),
    ("empty-members", set_key("model_groups", 1, "members", []), ["group 'hx-chat-fast' has no members", "list at least one model", "or remove the group"]),
    ("members-string", set_key("model_groups", 1, "members", "llm01-qwen3-1.7b"), ["group 'hx-chat-fast' members must be a list of model names, got str", '"members": ["<model name>", ...]']),
    ("member-twice", add_member(1, "llm01-qwen3-1.7b"), ["group 'hx-chat-fast' lists member 'llm01-qwen3-1.7b' twice", "list each model once"]),
    ("member-not-string", add_member(1, 7), ["group 'hx-chat-fast' members[1] must be a model name", "use one of: emb-premium"]),
    ("member-is-group", add_member(1, "hx-chat"), ["group 'hx-chat-fast' member 'hx-chat' is a group", "list its models instead"]),
    ("name-quote", set_key("models", 3, "name", "llm'01"), ["models[3] has invalid name \"llm'01\"", NAME_FIX]),
    ("name-dollar", set_key("models", 3, "name", "llm$01"), ["models[3] has invalid name 'llm$01'", NAME_FIX]),
    ("name-backtick", set_key("backends", 0, "name", "llm`id`"), ["backends[0] has invalid name 'llm`id`'", NAME_FIX]),
    ("name-hash", set_key("model_groups", 0, "name", "hx#chat"), ["model_groups[0] has invalid name 'hx#chat'", NAME_FIX]),
    ("name-newline", set_key("models", 3, "name", "llm01\nx"), ["models[3] has invalid name 'llm01\\nx'", NAME_FIX]),
    ("name-trailing-newline", set_key("models", 3, "name", "llm01\n"), ["models[3] has invalid name 'llm01\\n'", NAME_FIX]),
    ("name-space", set_key("models", 3, "name", "llm 01"), ["models[3] has invalid name 'llm 01'", NAME_FIX]),
    ("name-leading-dash", set_key("models", 3, "name", "-llm"), ["models[3] has invalid name '-llm'", NAME_FIX]),
    ("name-too-long", set_key("models", 3, "name", "a" * 65), ["models[3] has invalid name 'aaaa", NAME_FIX]),
    ("name-empty", set_key("models", 3, "name", ""), ["models[3] has an empty name", NAME_FIX]),
    ("name-not-string", set_key("backends", 1, "name", 2), ["backends[1] name must be a string, got int 2", NAME_FIX]),
    ("name-missing", drop_key("model_groups", 2, "name"), ["model_groups[2] is missing required key 'name'", '"name": "<unique-name>"']),
    ("empty-models", set_section("models", []), ["models is empty", "define at least one model under models"]),
    ("empty-backends", set_section("backends", []), ["backends is empty", "define at least one Ollama backend"]),
    ("models-undefined", set_section("models", None), ["models is not defined", "define models = [{...}, ...]"]),
    ("models-not-list", set_section("models", {"name": "x"}), ["models must be a list of dicts, got dict", "write models = [{...}, ...]"]),
    ("groups-string", set_section("model_groups", "hx-chat"), ["model_groups must be a list of dicts, got str", "write model_groups = [{...}, ...]"]),
    ("entry-not-dict", set_entry("backends", 1, "llm-02"), ["backends[1] must be a dict describing one backend, got str", '{"name": ..., ...}']),
    ("capability-typo", set_key("models", 4, "capabilities", ["tool"]), ["model 'llm01-qwen3-1.7b' capabilities lists 'tool' (did you mean 'tools'?)", "'thinking', 'vision'"]),
    ("capabilities-string", set_key("models", 4, "capabilities", "tools"), ["model 'llm01-qwen3-1.7b' capabilities must be a list, got str 'tools'", '"capabilities": ["tools"]']),
    ("context-length-zero", set_key("models", 4, "context_length", 0), ["model 'llm01-qwen3-1.7b' context_length must be a positive integer (tokens), got int 0", '"context_length": 8192']),
    ("context-length-text", set_key("models", 4, "context_length", "8k"), ["model 'llm01-qwen3-1.7b' context_length must be a positive integer", "got str '8k'"]),
    ("key-typo-capabilities", set_key("models", 4, "capabilites", ["tools"]), ["unknown key 'capabilites' in model 'llm01-qwen3-1.7b' (did you mean 'capabilities'?)"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [pytest.param(mutation, expected, id=case_id) for case_id, mutation, expected in BAD_CASES],
)
def test_bad_input_names_entry_and_fix(mutation: Mutation, expected: list[str]) -> None:
    data = baseline()
    mutation(data)
    with pytest.raises(ConfigError) as caught:
        parse(data)
    problems = caught.value.problems
    assert any(all(part in line for part in expected) for line in problems), (
        f"no single problem line contains all of {expected!r}; got:\n" + "\n".join(problems)
    )
    # One problem per line: a value with a newline must not split a message.
    assert all("\n" not in line for line in problems)
    assert all(line.startswith("catalogue: ") for line in problems)


def test_case_ids_are_unique() -> None:
    ids = [case_id for case_id, _, _ in BAD_CASES]
    assert len(ids) == len(set(ids))


def test_baseline_parses_to_the_expected_catalogue() -> None:
    catalogue = parse(baseline())
    assert len(catalogue.backends) == 3
    assert len(catalogue.models) == 8
    assert len(catalogue.groups) == 3
    assert len(catalogue.model_names()) == 11
    deployments = catalogue.deployments()
    assert len(deployments) == 8 + 5
    for deployment in deployments:
        prefix = "ollama/" if deployment.mode == "embedding" else "ollama_chat/"
        assert deployment.litellm_model.startswith(prefix)
    assert sum(d.litellm_model.startswith("ollama/") for d in deployments) == 3
    assert sum(d.litellm_model.startswith("ollama_chat/") for d in deployments) == 10


def test_baseline_is_normalised() -> None:
    catalogue = parse(baseline())
    assert catalogue.backends[0] == Backend("llm-01", "http://192.168.10.29:11434")
    assert catalogue.models[0] == Model("emb-premium", "orc", "mxbai-embed-large", "embedding", 1024, 30.0)
    assert catalogue.models[3].timeout == 60.0  # chat default
    assert catalogue.models[3].dims is None
    assert catalogue.models[5].timeout == 300.0
    assert catalogue.groups[0] == Group("hx-chat", ("llm01-llama3.2-3b", "llm02-phi3", "llm02-gemma2-2b"))


def test_deployments_order_and_params() -> None:
    catalogue = parse(baseline())
    deployments = catalogue.deployments()
    assert [d.model_name for d in deployments] == [
        *(m["name"] for m in MODELS),
        "hx-chat",
        "hx-chat",
        "hx-chat",
        "hx-chat-fast",
        "hx-chat-premium",
    ]
    phi3_in_group = deployments[9]
    assert phi3_in_group.litellm_model == "ollama_chat/phi3:latest"
    assert phi3_in_group.api_base == "http://192.168.10.28:11434"
    assert phi3_in_group.backend == "llm-02"
    assert phi3_in_group.timeout == 60.0
    assert deployments[12].timeout == 300.0  # copied from the member
    emb = deployments[1]
    assert (emb.litellm_model, emb.dims, emb.api_base) == (
        "ollama/nomic-embed-text",
        768,
        "http://192.168.10.31:11434",
    )


def test_lookup_helpers() -> None:
    catalogue = parse(baseline())
    assert catalogue.model_names()[:3] == ["emb-premium", "emb-perf", "emb-light"]
    assert catalogue.model_names()[-3:] == ["hx-chat", "hx-chat-fast", "hx-chat-premium"]
    assert catalogue.backend(catalogue.model("llm02-phi3").backend) == Backend(
        "llm-02", "http://192.168.10.28:11434"
    )
    assert [m.name for m in catalogue.models_on_backend("orc")] == [
        "emb-premium",
        "emb-perf",
        "emb-light",
    ]
    with pytest.raises(KeyError):
        catalogue.model("hx-chat")  # a group is not a model: it spans backends
    with pytest.raises(KeyError):
        catalogue.models_on_backend("llm-03")


def test_all_problems_are_reported_together() -> None:
    data = baseline()
    rename_key("models", 3, "model", "modle")(data)
    set_key("models", 6, "backend", "llm-03")(data)
    set_key("backends", 0, "url", "ftp://x:1")(data)
    add_member(0, "nope")(data)
    with pytest.raises(ConfigError) as caught:
        parse(data)
    error = caught.value
    assert len(error.problems) == 4
    lines = str(error).splitlines()
    assert len(lines) == 1 + 4  # header, then one problem per line
    assert "4 problems" in lines[0]
    assert isinstance(error, ValueError)


def test_typo_of_a_required_key_is_reported_once() -> None:
    data = baseline()
    rename_key("models", 3, "model", "modle")(data)
    with pytest.raises(ConfigError) as caught:
        parse(data)
    assert len(caught.value.problems) == 1


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://ollama.example.org:443", "https://ollama.example.org:443"),
        ("HTTP://LLM01:11434/", "http://llm01:11434"),
        ("http://[fd00::1]:11434", "http://[fd00::1]:11434"),
    ],
)
def test_good_urls_are_normalised(url: str, normalised: str) -> None:
    data = baseline()
    set_key("backends", 0, "url", url)(data)
    assert parse(data).backends[0].url == normalised


def test_groups_are_optional() -> None:
    data = baseline()
    catalogue = parse_catalogue(data["backends"], data["models"])
    assert catalogue.groups == ()
    assert len(catalogue.deployments()) == 8


def test_float_timeout_and_slash_in_tag_are_accepted() -> None:
    data = baseline()
    set_key("models", 3, "timeout", 12.5)(data)
    set_key("models", 4, "model", "hf.co/org/model:Q4_K_M")(data)
    catalogue = parse(data)
    assert catalogue.models[3].timeout == 12.5
    assert catalogue.models[4].model == "hf.co/org/model:Q4_K_M"


def test_config_error_survives_pickling() -> None:
    error = ConfigError(["catalogue: a", "catalogue: b"])
    copy_ = pickle.loads(pickle.dumps(error))
    assert copy_.problems == error.problems
    assert str(copy_) == str(error)


def test_capabilities_and_context_length_are_declared_and_carried_to_deployments() -> None:
    data = baseline()
    set_key("models", 4, "capabilities", ["tools", "thinking"])(data)
    set_key("models", 4, "context_length", 40960)(data)
    catalogue = parse(data)
    qwen = catalogue.model("llm01-qwen3-1.7b")
    assert (qwen.capabilities, qwen.context_length) == (("tools", "thinking"), 40960)
    # not declared stays None (not the same as [] for plain chat: hxgw.capabilities)
    assert (catalogue.models[0].capabilities, catalogue.models[0].context_length) == (None, None)
    in_group = [d for d in catalogue.deployments() if d.model_name == "hx-chat-fast"]
    assert [(d.capabilities, d.context_length) for d in in_group] == [(("tools", "thinking"), 40960)]


def test_optional_fields_written_as_none_mean_unset() -> None:
    data = baseline()
    for key in ("description", "capabilities", "context_length", "dims", "timeout"):
        set_key("models", 4, key, None)(data)
    qwen = parse(data).model("llm01-qwen3-1.7b")
    assert (qwen.description, qwen.capabilities, qwen.context_length, qwen.dims, qwen.timeout) == (
        "",
        None,
        None,
        None,
        60.0,
    )
