"""Validate and normalise the model catalogue (backends, models, model groups).

The operator describes the fleet as plain data in pyinfra group data. Each entry is checked
against its declaration in hxgw.catalogue_entries (pydantic); this module adds what spans
entries: sections that are lists, unknown keys with a "did you mean", unique names, models naming
defined backends, group members naming defined models of one mode. Every problem found is
collected and raised together in one ConfigError, each line naming the entry and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from hxgw import capabilities
from hxgw.catalogue_entries import (  # noqa: F401 - the public names of the catalogue
    CAPABILITIES,
    DEFAULT_TIMEOUT,
    DESCRIPTION_MAX_LENGTH,
    EXAMPLE_URL,
    LITELLM_PREFIX,
    MODES,
    NAME_PATTERN,
    NAME_RE,
    TAG_PATTERN,
    Backend,
    Group,
    Model,
)
from hxgw.errors import ConfigError, closest, describe, did_you_mean, is_int, text_problem  # noqa: F401 - old path
from hxgw.schema import explain, field_key, fields_of, fix_of


@dataclass(frozen=True)
class Deployment:
    """One LiteLLM model_list entry."""

    model_name: str
    litellm_model: str
    api_base: str
    mode: str
    dims: int | None
    timeout: float
    backend: str
    description: str = ""
    capabilities: tuple[str, ...] | None = None  # None: not declared
    context_length: int | None = None
    model_info: tuple[tuple[str, Any], ...] = ()  # LiteLLM model_info flags (hxgw.capabilities)
    drop_params: tuple[str, ...] = ()  # additional_drop_params: what the group's members answer alike


@dataclass(frozen=True)
class Catalogue:
    """The validated fleet: build it with parse_catalogue(), not directly."""

    backends: tuple[Backend, ...]
    models: tuple[Model, ...]
    groups: tuple[Group, ...]

    def model_names(self) -> list[str]:
        """Every name clients can request: models first, then groups, in definition order."""
        return [m.name for m in self.models] + [g.name for g in self.groups]

    def backend(self, name: str) -> Backend:
        """The backend called `name` (KeyError if undefined)."""
        for backend in self.backends:
            if backend.name == name:
                return backend
        raise KeyError(f"no backend named {name!r}")

    def model(self, name: str) -> Model:
        """The model called `name` (KeyError if undefined; groups are not models)."""
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(f"no model named {name!r}")

    def models_on_backend(self, name: str) -> list[Model]:
        """The models served by backend `name`, in order (KeyError if undefined)."""
        self.backend(name)  # an undefined name is a caller bug, not an empty backend
        return [m for m in self.models if m.backend == name]

    def deployments(self) -> list[Deployment]:
        """LiteLLM deployments: one per model, then one per group member under the group name."""

        def deploy(model_name: str, model: Model, drop: Sequence[str] = ()) -> Deployment:
            return Deployment(
                model_name=model_name,
                litellm_model=model.litellm_model,
                api_base=self.backend(model.backend).url,
                mode=model.mode,
                dims=model.dims,
                timeout=model.timeout,
                backend=model.backend,
                description=model.description,
                capabilities=model.capabilities,
                context_length=model.context_length,
                model_info=tuple(capabilities.model_info(vars(model)).items()),
                drop_params=tuple(drop),
            )

        result = [deploy(m.name, m, capabilities.dropped_params([vars(m)])) for m in self.models]
        for group in self.groups:
            members = [self.model(member) for member in group.members]
            drop = capabilities.dropped_params([vars(m) for m in members])
            result.extend(deploy(group.name, m, drop) for m in members)
        return result


def one_of(names: Sequence[str]) -> str:
    """A readable list of names for 'use one of: ...' hints (invalid names left out)."""
    shown = [name for name in names if NAME_RE.fullmatch(name)]
    return ", ".join(shown) if shown else "(none defined)"


_SECTION_OF = {"backend": "backends", "model": "models", "group": "model_groups"}
_SCHEMA = {"backend": Backend, "model": Model, "group": Group}
_ADAPTER = {kind: TypeAdapter(schema) for kind, schema in _SCHEMA.items()}


class _Problems:
    """Collects problem lines; every line starts with 'catalogue: '."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, message: str) -> None:
        self.lines.append(f"catalogue: {message}")


def parse_catalogue(backends: Any, models: Any, model_groups: Any = ()) -> Catalogue:
    """Validate the raw group data and return the Catalogue, or raise ConfigError listing
    every problem found (one per line)."""
    problems = _Problems()
    # Every spelled name counts for references, even of entries with other problems, so that
    # one bad entry does not cascade into "not defined" noise.
    backend_names = list(_entries_by_name(backends))
    models_by_name = _entries_by_name(models)
    hints = {"backends": one_of(backend_names), "models": one_of(list(models_by_name))}
    parsed_backends = _parse_section("backends", "backend", backends, hints, problems)
    parsed_models = _parse_section("models", "model", models, hints, problems)
    for index, entry in _dicts(models):
        backend = entry.get("backend")
        if isinstance(backend, str) and backend not in backend_names:
            problems.add(
                f"{_label('model', index, entry)} names backend {backend!r}, which is not defined; define it "
                f"under backends or use one of: {one_of(backend_names)}{did_you_mean(backend, backend_names)}"
            )
    parsed_groups = _parse_section("model_groups", "group", model_groups, hints, problems)
    group_names = set(_entries_by_name(model_groups))
    for index, entry in _dicts(model_groups):
        _check_group(_label("group", index, entry), entry, models_by_name, group_names, problems)
    if problems.lines:
        raise ConfigError(problems.lines)
    return Catalogue(tuple(parsed_backends), tuple(parsed_models), tuple(parsed_groups))


def spelled_names(models: Any, model_groups: Any = ()) -> list[str]:
    """Every text name the raw models and groups spell, valid or not (for references elsewhere,
    e.g. router_settings fallbacks, checked even when the catalogue has problems of its own)."""
    return [*_entries_by_name(models), *_entries_by_name(model_groups)]


def _parse_section(section: str, kind: str, raw: Any, hints: dict, problems: _Problems) -> list:
    """The valid entries of one section; reports the section's shape, each entry's problems and
    names defined twice."""
    if raw is None:
        empty_ok = " (or [] for none)" if section == "model_groups" else ""
        problems.add(f"{section} is not defined; define {section} = [{{...}}, ...]{empty_ok} in group data")
        return []
    if not _is_list(raw):
        problems.add(
            f"{section} must be a list of dicts, got {describe(raw)}; write {section} = [{{...}}, ...]"
        )
        return []
    if not raw and section == "backends":
        problems.add(
            "backends is empty; define at least one Ollama backend under backends, "
            f'e.g. {{"name": "llm-01", "url": "{EXAMPLE_URL}"}}'
        )
    if not raw and section == "models":
        problems.add(
            "models is empty, so the gateway would have nothing to serve; "
            "define at least one model under models"
        )
    parsed, first_index = [], {}
    for index, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            problems.add(
                f"{section}[{index}] must be a dict describing one {kind}, "
                f'got {describe(entry)}; write it as {{"name": ..., ...}}'
            )
            continue
        label = _label(kind, index, entry)
        try:
            parsed.append(_ADAPTER[kind].validate_python(dict(entry)))
        except ValidationError as error:
            for line in _entry_problems(kind, label, entry, error.errors(), hints):
                problems.add(line)
        name = entry.get("name")
        if isinstance(name, str) and NAME_RE.fullmatch(name):
            if name in first_index:
                problems.add(
                    f"{kind} {name!r} is defined twice ({section}[{first_index[name]}] and "
                    f"{section}[{index}]); give each {kind} a unique name or remove the duplicate"
                )
            first_index.setdefault(name, index)
    return parsed


def _entry_problems(kind: str, label: str, entry: Mapping, errors: list, hints: dict) -> list[str]:
    """pydantic's errors about one entry as messages: unknown keys with a did-you-mean (a typo of
    a required key is reported once, not also as missing), then the rest in field order."""
    fields = fields_of(_SCHEMA[kind])
    allowed = sorted(fields)
    absent = [key for key in allowed if key not in entry]
    lines, explained, missing = [], set(), []
    for error in errors:
        key = field_key(error)
        if error["type"] == "unexpected_keyword_argument":
            if not isinstance(key, str):
                lines.append(f"{label} has a non-string key {key!r}; keys must be one of: {one_of(allowed)}")
                continue
            suggestion = closest(key, absent) or closest(key, allowed)
            if suggestion:
                explained.add(suggestion)
                lines.append(
                    f"unknown key {key!r} in {label} (did you mean {suggestion!r}?); "
                    f"rename it to {suggestion!r} (allowed keys are: {one_of(allowed)})"
                )
            else:
                lines.append(
                    f"unknown key {key!r} in {label}; remove it (allowed keys are: {one_of(allowed)})"
                )
        elif error["type"] == "missing":
            missing.append(key)
        elif key == "members" and len(error["loc"]) > 1:
            lines.append(
                f"{label} members[{error['loc'][1]}] must be a model name (string), got "
                f"{describe(error['input'])}; use one of: {hints['models']}"
            )
        else:
            body = explain(error, fields.get(key), key or "?", **hints)
            lines.append(f"{label} {body}")
    for key in missing:
        if key not in explained:
            fix = fix_of(fields.get(key))
            if kind == "model" and key == "backend":
                fix = f'add "backend": "<name>" naming one of: {hints["backends"]}'
            lines.append(f"{label} is missing required key {key!r}; {fix}")
    return lines


def _check_group(
    label: str,
    entry: Mapping[str, Any],
    models_by_name: Mapping[str, Mapping[str, Any]],
    group_names: set[str],
    problems: _Problems,
) -> None:
    """What a group's members say about the rest of the catalogue (their types are the
    schema's): defined models, listed once, not groups, of one mode; a name no model has."""
    name, members, model_names = entry.get("name"), entry.get("members"), list(models_by_name)
    if isinstance(name, str) and name in models_by_name:
        problems.add(
            f"group {name!r} collides with model {name!r} (both would be served as {name!r}); "
            "rename the group or the model"
        )
    if not _is_list(members):
        return  # reported by the schema (or missing)
    if not members:
        problems.add(
            f"{label} has no members; list at least one model under members "
            f"(one of: {one_of(model_names)}) or remove the group"
        )
    seen: set[str] = set()
    modes: dict[str, list[str]] = {}
    for member in members:
        if not isinstance(member, str):
            continue  # reported by the schema
        if member in seen:
            problems.add(f"{label} lists member {member!r} twice; list each model once")
            continue
        seen.add(member)
        if member not in models_by_name and member in group_names:
            problems.add(
                f"{label} member {member!r} is a group, and groups cannot be nested; "
                f"list its models instead (one of: {one_of(model_names)})"
            )
        elif member not in models_by_name:
            problems.add(
                f"{label} member {member!r} is not a defined model; define it under models "
                f"or use one of: {one_of(model_names)}{did_you_mean(member, model_names)}"
            )
        elif models_by_name[member].get("mode") in MODES:
            modes.setdefault(models_by_name[member]["mode"], []).append(member)
    if len(modes) > 1:
        detail = "; ".join(f"{mode}: {', '.join(names)}" for mode, names in modes.items())
        problems.add(f"{label} mixes chat and embedding members ({detail}); split it into one group per mode")


def _label(kind: str, index: int, entry: Mapping[str, Any]) -> str:
    """How an entry is named in messages: by its name when usable, else by its index."""
    name = entry.get("name")
    if isinstance(name, str) and NAME_RE.fullmatch(name):
        return f"{kind} {name!r}"
    return f"{_SECTION_OF[kind]}[{index}]"


def _is_list(value: Any) -> bool:
    """True for a list-like section (list or tuple), False for strings, dicts and scalars."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _dicts(section: Any) -> list[tuple[int, Mapping[str, Any]]]:
    """The (index, entry) pairs of a section that are dicts."""
    return [(i, e) for i, e in enumerate(section) if isinstance(e, Mapping)] if _is_list(section) else []


def _entries_by_name(section: Any) -> dict[str, Mapping[str, Any]]:
    """Raw entries of a section keyed by their string name (first definition wins)."""
    result: dict[str, Mapping[str, Any]] = {}
    for _, entry in _dicts(section):
        if isinstance(entry.get("name"), str):
            result.setdefault(entry["name"], entry)
    return result
