"""Validate and normalise the model catalogue (backends, models, model groups).

The operator describes the fleet as plain data in pyinfra group data. This module
checks that data at plan time, before any host is touched, and turns it into frozen
dataclasses the rest of the deploy can trust. Every problem found is collected and
raised together in one ConfigError, each line naming the offending entry and the fix.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hxgw import capabilities

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
MODES = ("chat", "embedding")
DEFAULT_TIMEOUT = {"chat": 60.0, "embedding": 30.0}
# LiteLLM: ollama_chat/ posts to /api/chat; embeddings need ollama/, which posts to /api/embed.
LITELLM_PREFIX = {"chat": "ollama_chat/", "embedding": "ollama/"}
EXAMPLE_URL = "http://192.168.10.29:11434"
# Free text for people (LiteLLM's model_info.description): any printable character, quotes, $,
# backticks, '#', ':' and newlines included. It reaches the host only inside config.yaml, JSON-quoted
# by the template, never through a shell.
DESCRIPTION_MAX_LENGTH = 1000

_NAME_RE = re.compile(NAME_PATTERN)
_TAG_RE = re.compile(TAG_PATTERN)
_DNS_LABEL_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_NAME_RULE = (
    f"names must match {NAME_PATTERN} (start with a letter or digit, then letters, digits, "
    "'.', '_', ':' or '-', at most 64 characters)"
)


class ConfigError(ValueError):
    """Invalid deploy data; `problems` holds one self-contained message per mistake."""

    def __init__(self, problems: Sequence[str], header: str | None = None) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        self.header = header or (
            f"invalid deploy configuration ({count} problem{'s' if count != 1 else ''}); "
            "fix every line below and re-run:"
        )
        super().__init__(self.problems, self.header)  # both, so the error pickles intact

    def __str__(self) -> str:
        return "\n".join([self.header, *(f"  - {problem}" for problem in self.problems)])


@dataclass(frozen=True)
class Backend:
    """An Ollama server the gateway forwards to."""

    name: str
    url: str


@dataclass(frozen=True)
class Model:
    """One Ollama model on one backend, published under `name`."""

    name: str
    backend: str
    model: str
    mode: str
    dims: int | None
    timeout: float
    description: str = ""
    capabilities: tuple[str, ...] | None = None  # tools, thinking, vision; None: not declared
    context_length: int | None = None

    @property
    def litellm_model(self) -> str:
        """The provider-prefixed model string LiteLLM expects in litellm_params.model."""
        return LITELLM_PREFIX[self.mode] + self.model


@dataclass(frozen=True)
class Group:
    """A load-balanced model name served by several models of the same mode."""

    name: str
    members: tuple[str, ...]


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

    def backend_of(self, model_name: str) -> Backend:
        """The backend serving a model (KeyError for unknown names and for groups)."""
        return self.backend(self.model(model_name).backend)

    def models_on_backend(self, name: str) -> list[Model]:
        """The models served by backend `name`, in order (KeyError if undefined)."""
        self.backend(name)  # an undefined name is a caller bug, not an empty backend
        return [m for m in self.models if m.backend == name]

    def groups_containing(self, model_name: str) -> list[Group]:
        """The groups that list `model_name` as a member, in order."""
        return [g for g in self.groups if model_name in g.members]

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
                model_info=tuple(capabilities.model_info(vars(model)).items()),
                drop_params=tuple(drop),
            )

        result = [deploy(m.name, m) for m in self.models]
        for group in self.groups:
            members = [self.model(member) for member in group.members]
            drop = capabilities.group_dropped_params([vars(m) for m in members])
            result.extend(deploy(group.name, m, drop) for m in members)
        return result


# --- shared helpers (also used by hxgw.settings) -------------------------------------------


def describe(value: Any) -> str:
    """A short, single-line rendering of a bad value and its type for error messages."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def closest(word: str, choices: Sequence[str]) -> str | None:
    """The choice `word` was most likely a typo of, or None."""
    # Swapped letters are the commonest typo, but difflib ranks 'modle' nearer to 'mode'
    # than to 'model', so an anagram of the word wins before difflib is asked.
    for choice in choices:
        if choice != word and sorted(choice) == sorted(word):
            return choice
    matches = difflib.get_close_matches(word, list(choices), n=1)
    return matches[0] if matches else None


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    match = closest(word, choices)
    return f" (did you mean {match!r}?)" if match else ""


def is_int(value: Any) -> bool:
    """True for real integers; bool is a subclass of int but never a valid count or port."""
    return isinstance(value, int) and not isinstance(value, bool)


def one_of(names: Sequence[str]) -> str:
    """A readable list of names for 'use one of: ...' hints (invalid names left out)."""
    shown = [name for name in names if _NAME_RE.fullmatch(name)]
    return ", ".join(shown) if shown else "(none defined)"


# --- parsing -------------------------------------------------------------------------------

_KEYS = {
    # kind: (required keys, optional keys)
    "backend": (("name", "url"), ()),
    "model": (
        ("name", "backend", "model", "mode"),
        ("dims", "timeout", "description", "capabilities", "context_length"),
    ),
    "group": (("name", "members"), ()),
}
_SECTION_OF = {"backend": "backends", "model": "models", "group": "model_groups"}
_MISSING_KEY_HINT = {
    "name": 'add "name": "<unique-name>"',
    "url": f'add "url": "{EXAMPLE_URL}"',
    "backend": 'add "backend": "<name of an entry in backends>"',
    "model": 'add "model": "<ollama tag>", e.g. "llama3.2:3b"',
    "mode": 'add "mode": "chat" or "mode": "embedding"',
    "members": 'add "members": ["<model name>", ...]',
}


class _Problems:
    """Collects problem lines; every line starts with 'catalogue: '."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, message: str) -> None:
        self.lines.append(f"catalogue: {message}")


def _label(kind: str, index: int, entry: Mapping[str, Any]) -> str:
    """How an entry is named in messages: by its name when usable, else by its index."""
    name = entry.get("name")
    if isinstance(name, str) and _NAME_RE.fullmatch(name):
        return f"{kind} {name!r}"
    return f"{_SECTION_OF[kind]}[{index}]"


def _entries(section: str, kind: str, value: Any, problems: _Problems) -> list[tuple[int, dict]]:
    """The (index, entry) pairs of a section that are dicts; reports everything else."""
    if value is None:
        empty_ok = " (or [] for none)" if section == "model_groups" else ""
        problems.add(f"{section} is not defined; define {section} = [{{...}}, ...]{empty_ok} in group data")
        return []
    if not _is_list(value):
        problems.add(
            f"{section} must be a list of dicts, got {describe(value)}; write {section} = [{{...}}, ...]"
        )
        return []
    result = []
    for index, entry in enumerate(value):
        if isinstance(entry, Mapping):
            result.append((index, dict(entry)))
        else:
            problems.add(
                f"{section}[{index}] must be a dict describing one {kind}, "
                f'got {describe(entry)}; write it as {{"name": ..., ...}}'
            )
    return result


def _check_keys(
    kind: str,
    label: str,
    entry: Mapping[str, Any],
    problems: _Problems,
    hints: Mapping[str, str] | None = None,
) -> None:
    """Reject unknown keys (with a did-you-mean) and report missing required keys."""
    required, optional = _KEYS[kind]
    allowed = sorted(required + optional)
    # A typo most likely stands for a key the entry lacks: 'modle' next to 'mode' is 'model'.
    absent = [key for key in allowed if key not in entry]
    explained: set[str] = set()
    for key in entry:
        if key in allowed:
            continue
        if not isinstance(key, str):
            problems.add(f"{label} has a non-string key {key!r}; keys must be one of: {one_of(allowed)}")
            continue
        suggestion = closest(key, absent) or closest(key, allowed)
        if suggestion:
            explained.add(suggestion)  # its "missing key" line would repeat this one
            problems.add(
                f"unknown key {key!r} in {label} (did you mean {suggestion!r}?); "
                f"rename it to {suggestion!r} (allowed keys are: {one_of(allowed)})"
            )
        else:
            problems.add(f"unknown key {key!r} in {label}; remove it (allowed keys are: {one_of(allowed)})")
    for key in required:
        if key not in entry and key not in explained:
            hint = (hints or {}).get(key, _MISSING_KEY_HINT[key])
            problems.add(f"{label} is missing required key {key!r}; {hint}")


def _check_name(label: str, entry: Mapping[str, Any], problems: _Problems) -> str | None:
    """The entry's name if it is valid, else None (after reporting why)."""
    if "name" not in entry:
        return None  # already reported as a missing key
    name = entry["name"]
    if not isinstance(name, str):
        problems.add(f"{label} name must be a string, got {describe(name)}; {_NAME_RULE}")
        return None
    if not name:
        problems.add(f"{label} has an empty name; {_NAME_RULE}")
        return None
    if not _NAME_RE.fullmatch(name):
        problems.add(f"{label} has invalid name {name!r}; {_NAME_RULE}")
        return None
    return name


def _check_unique(kind: str, named: list[tuple[int, str]], problems: _Problems) -> None:
    """Report names defined more than once within one section."""
    first_index: dict[str, int] = {}
    section = _SECTION_OF[kind]
    for index, name in named:
        if name in first_index:
            problems.add(
                f"{kind} {name!r} is defined twice ({section}[{first_index[name]}] and "
                f"{section}[{index}]); give each {kind} a unique name or remove the duplicate"
            )
        else:
            first_index[name] = index


def _check_url(label: str, url: Any, problems: _Problems) -> str | None:
    """The normalised backend URL (scheme://host:port), or None after reporting why."""
    fix = f"write it as scheme://host:port, e.g. {EXAMPLE_URL!r}"

    def bad(why: str) -> None:
        problems.add(f"{label} url {url!r} {why}; {fix}")

    if not isinstance(url, str):
        problems.add(f"{label} url must be a string, got {describe(url)}; {fix}")
        return None
    if not url or any(ch.isspace() or not ch.isprintable() for ch in url):
        bad("is empty or contains whitespace or control characters")
        return None
    if "://" not in url:
        bad("has no scheme (it must start with http:// or https://)")
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        bad(f"uses scheme {parts.scheme!r}; only http:// and https:// are supported")
        return None
    if "@" in parts.netloc:
        bad("contains user info (user@ or user:password@); credentials do not belong in the URL")
        return None
    if parts.path not in ("", "/"):
        bad(f"has a path {parts.path!r}; give only the server root (LiteLLM appends /api/...)")
        return None
    if "?" in url or "#" in url:
        bad("has a query or fragment; give only scheme://host:port")
        return None
    host = parts.hostname
    if not host or not _valid_host(host):
        bad("has no valid host (an IPv4 address, [IPv6] address or DNS name)")
        return None
    raw_port = "" if parts.netloc.endswith("]") else parts.netloc.rpartition(":")[2]
    if ":" not in parts.netloc.rpartition("]")[2] or not raw_port:
        bad("has no port (Ollama listens on 11434 by default)")
        return None
    if not (raw_port.isascii() and raw_port.isdigit()) or not 1 <= int(raw_port) <= 65535:
        bad(f"has port {raw_port!r}; the port must be a number from 1 to 65535")
        return None
    host_part = parts.netloc.rpartition(":")[0].lower()
    return f"{scheme}://{host_part}:{int(raw_port)}"


def _valid_host(host: str) -> bool:
    """True for an IP address or a syntactically valid DNS name."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(_DNS_LABEL_RE.fullmatch(label) for label in labels)


def _parse_backends(raw: Any, problems: _Problems) -> list[Backend]:
    entries = _entries("backends", "backend", raw, problems)
    if _is_list(raw) and not raw:
        problems.add(
            "backends is empty; define at least one Ollama backend under backends, "
            f'e.g. {{"name": "llm-01", "url": "{EXAMPLE_URL}"}}'
        )
    backends, named = [], []
    for index, entry in entries:
        label = _label("backend", index, entry)
        _check_keys("backend", label, entry, problems)
        name = _check_name(label, entry, problems)
        url = _check_url(label, entry["url"], problems) if "url" in entry else None
        if name is not None:
            named.append((index, name))
            if url is not None:
                backends.append(Backend(name=name, url=url))
    _check_unique("backend", named, problems)
    return backends


def _parse_models(raw: Any, backend_names: list[str], problems: _Problems) -> list[Model]:
    entries = _entries("models", "model", raw, problems)
    if _is_list(raw) and not raw:
        problems.add(
            "models is empty, so the gateway would have nothing to serve; "
            "define at least one model under models"
        )
    backend_hint = {"backend": f'add "backend": "<name>" naming one of: {one_of(backend_names)}'}
    models, named = [], []
    for index, entry in entries:
        label = _label("model", index, entry)
        _check_keys("model", label, entry, problems, hints=backend_hint)
        name = _check_name(label, entry, problems)
        if name is not None:
            named.append((index, name))
        model = _parse_model_fields(label, entry, backend_names, problems)
        if name is not None and model is not None:
            models.append(Model(name=name, **model))
    _check_unique("model", named, problems)
    return models


def _parse_model_fields(
    label: str, entry: Mapping[str, Any], backend_names: list[str], problems: _Problems
) -> dict[str, Any] | None:
    """The validated fields of one model other than its name, or None if any is bad."""
    before = len(problems.lines)

    backend = entry.get("backend")
    if "backend" in entry:
        if not isinstance(backend, str):
            problems.add(
                f"{label} backend must be a backend name (string), got {describe(backend)}; "
                f"use one of: {one_of(backend_names)}"
            )
        elif backend not in backend_names:
            problems.add(
                f"{label} names backend {backend!r}, which is not defined; define it under "
                f"backends or use one of: {one_of(backend_names)}"
                f"{did_you_mean(backend, backend_names)}"
            )

    tag = entry.get("model")
    if "model" in entry:
        tag_rule = (
            f"the Ollama tag must match {TAG_PATTERN} (no spaces, quotes or control characters), "
            "e.g. 'llama3.2:3b'"
        )
        if not isinstance(tag, str):
            problems.add(f"{label} model must be an Ollama tag string, got {describe(tag)}; {tag_rule}")
        elif not _TAG_RE.fullmatch(tag):
            problems.add(f"{label} has invalid Ollama tag {tag!r}; {tag_rule}")

    mode = entry.get("mode")
    mode_ok = isinstance(mode, str) and mode in MODES
    if "mode" in entry and not mode_ok:
        hint = did_you_mean(mode, MODES) if isinstance(mode, str) else ""
        problems.add(f"{label} has mode {mode!r}{hint}; mode must be 'chat' or 'embedding'")

    dims = entry.get("dims")
    if mode_ok and mode == "chat" and dims is not None:
        problems.add(f"{label} is a chat model but sets dims; remove dims (only embedding models have dims)")
    if mode_ok and mode == "embedding":
        if dims is None:
            problems.add(
                f'{label} is an embedding model without dims; add "dims": <vector size>, '
                "e.g. 768 for nomic-embed-text"
            )
        elif not is_int(dims) or dims <= 0:
            problems.add(
                f"{label} dims must be a positive integer, got {describe(dims)}; "
                'write the vector size without quotes, e.g. "dims": 768'
            )

    timeout = entry.get("timeout")
    if timeout is not None and not (
        isinstance(timeout, (int, float))
        and not isinstance(timeout, bool)
        and math.isfinite(timeout)
        and timeout > 0
    ):
        problems.add(
            f"{label} timeout must be a positive number of seconds, got {describe(timeout)}; "
            'e.g. "timeout": 120, or leave it out for the default (60 chat, 30 embedding)'
        )

    description = entry.get("description")
    if description is not None:
        _check_description(label, description, problems)
    for problem in capabilities.model_problems(label, entry):
        problems.add(problem)

    if len(problems.lines) > before or not all(k in entry for k in _KEYS["model"][0]):
        return None
    return {
        "backend": backend,
        "model": tag,
        "mode": mode,
        "dims": dims if mode == "embedding" else None,
        "timeout": float(timeout) if timeout is not None else DEFAULT_TIMEOUT[mode],
        "description": description or "",
        "capabilities": capabilities.declared(entry),
        "context_length": entry.get("context_length"),
    }


def _check_description(label: str, description: Any, problems: _Problems) -> None:
    """Free text: a string of printable characters, newlines and tabs, at most 1000 characters."""
    fix = (
        f"write it as a string of at most {DESCRIPTION_MAX_LENGTH} printable characters "
        "(quotes, $, backticks, '#', ':' and newlines are fine), or leave it out"
    )
    if not isinstance(description, str):
        problems.add(f"{label} description must be text, got {describe(description)}; {fix}")
        return
    if len(description) > DESCRIPTION_MAX_LENGTH:
        problems.add(f"{label} description has {len(description)} characters; {fix}")
        return
    bad = text_problem(description)
    if bad:
        problems.add(f"{label} description {bad}; {fix}")


def text_problem(text: str) -> str | None:
    """Why free text cannot go into config.yaml as it is, or None if it can.

    Control characters other than newline and tab are refused, and so are characters beyond
    U+FFFF (emoji): the template JSON-escapes them as surrogate pairs, which PyYAML (LiteLLM's
    loader) does not join back, so they would not arrive literally.
    """
    control = sorted({ch for ch in text if not (ch.isprintable() or ch in "\n\t" or ord(ch) > 0xFFFF)})
    if control:
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in control[:5])
        return f"contains control or unprintable characters ({shown})"
    astral = sorted({ch for ch in text if ord(ch) > 0xFFFF})
    if astral:
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in astral[:5])
        return (
            f"contains characters beyond U+FFFF such as emoji ({shown}), which LiteLLM's YAML loader garbles"
        )
    return None


def _parse_groups(
    raw: Any, models_by_name: Mapping[str, Mapping[str, Any]], problems: _Problems
) -> list[Group]:
    entries = _entries("model_groups", "group", raw, problems)
    group_names = set(_entries_by_name(raw))
    groups, named = [], []
    for index, entry in entries:
        label = _label("group", index, entry)
        _check_keys("group", label, entry, problems)
        name = _check_name(label, entry, problems)
        if name is not None:
            named.append((index, name))
            if name in models_by_name:
                problems.add(
                    f"group {name!r} collides with model {name!r} (both would be served as "
                    f"{name!r}); rename the group or the model"
                )
        members = _check_members(label, entry, models_by_name, group_names, problems)
        if name is not None and members is not None:
            groups.append(Group(name=name, members=members))
    _check_unique("group", named, problems)
    return groups


def _check_members(
    label: str,
    entry: Mapping[str, Any],
    models_by_name: Mapping[str, Mapping[str, Any]],
    group_names: set[str],
    problems: _Problems,
) -> tuple[str, ...] | None:
    """A group's validated member names, or None after reporting why."""
    if "members" not in entry:
        return None
    members = entry["members"]
    model_names = list(models_by_name)
    if not _is_list(members):
        problems.add(
            f"{label} members must be a list of model names, got {describe(members)}; "
            f'write "members": ["<model name>", ...]'
        )
        return None
    if not members:
        problems.add(
            f"{label} has no members; list at least one model under members "
            f"(one of: {one_of(model_names)}) or remove the group"
        )
        return None
    before = len(problems.lines)
    seen: set[str] = set()
    modes: dict[str, list[str]] = {}
    for position, member in enumerate(members):
        if not isinstance(member, str):
            problems.add(
                f"{label} members[{position}] must be a model name (string), got "
                f"{describe(member)}; use one of: {one_of(model_names)}"
            )
            continue
        if member in seen:
            problems.add(f"{label} lists member {member!r} twice; list each model once")
            continue
        seen.add(member)
        if member not in models_by_name and member in group_names:
            problems.add(
                f"{label} member {member!r} is a group, and groups cannot be nested; "
                f"list its models instead (one of: {one_of(model_names)})"
            )
            continue
        if member not in models_by_name:
            problems.add(
                f"{label} member {member!r} is not a defined model; define it under models "
                f"or use one of: {one_of(model_names)}{did_you_mean(member, model_names)}"
            )
            continue
        mode = models_by_name[member].get("mode")
        if mode in MODES:
            modes.setdefault(mode, []).append(member)
    if len(modes) > 1:
        detail = "; ".join(f"{mode}: {', '.join(names)}" for mode, names in modes.items())
        problems.add(f"{label} mixes chat and embedding members ({detail}); split it into one group per mode")
    if len(problems.lines) > before:
        return None
    return tuple(members)


def parse_catalogue(backends: Any, models: Any, model_groups: Any = ()) -> Catalogue:
    """Validate the raw group data and return the Catalogue, or raise ConfigError listing
    every problem found (one per line)."""
    problems = _Problems()
    parsed_backends = _parse_backends(backends, problems)
    backend_names = _string_names(backends)  # every spelled name, so typos don't cascade
    parsed_models = _parse_models(models, backend_names, problems)
    # Groups are checked against every named model entry, even ones with other problems,
    # so that one bad model does not cascade into "member not defined" noise.
    models_by_name = _entries_by_name(models)
    parsed_groups = _parse_groups(model_groups, models_by_name, problems)
    if problems.lines:
        raise ConfigError(problems.lines)
    return Catalogue(
        backends=tuple(parsed_backends),
        models=tuple(parsed_models),
        groups=tuple(parsed_groups),
    )


def _is_list(value: Any) -> bool:
    """True for a list-like section (list or tuple), False for strings, dicts and scalars."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _string_names(section: Any) -> list[str]:
    """The string names in a raw section, in order, without duplicates."""
    return list(_entries_by_name(section))


def _entries_by_name(section: Any) -> dict[str, Mapping[str, Any]]:
    """Raw entries of a section keyed by their string name (first definition wins)."""
    result: dict[str, Mapping[str, Any]] = {}
    if _is_list(section):
        for entry in section:
            if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                result.setdefault(entry["name"], entry)
    return result
