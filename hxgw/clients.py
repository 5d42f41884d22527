"""The fleet's clients (group data `clients`): who may call the gateway with a key of its own,
which models it may use and its limits, each field declared once (README "Clients and keys").

    clients = [{"name": "app", "models": ["hx-chat"], "rpm": 60, "tpm": 100000,
                "max_parallel": 4, "expires": "2027-06-30"}]

Checked before any host is touched: unknown keys and model names get a "did you mean", a name
defined twice, limits that are not positive whole numbers, and an expiry that is not a date.
An expiry already past is a warning, not a refusal: the date passing must not block every later
deploy of the fleet, and LiteLLM refuses the client's keys from then on anyway (401).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hxgw.catalogue_entries import NAME_PATTERN, NAME_RE
from hxgw.errors import ConfigError, closest, describe, did_you_mean, is_int

ALL_MODELS = "*"
# Upper bounds only catch nonsense (a typo'd extra digit), not real fleets.
LIMITS = {"rpm": 10**6, "tpm": 10**10, "max_parallel": 10**4}


class Client(BaseModel):
    """One client of the gateway; its keys come from `make client-key NAME=<name>`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="The client's unique name (its keys are made for this name).")
    models: tuple[str, ...] = Field(
        description="The model and group names it may call, or ['*'] for every one; "
        "/v1/models lists only these."
    )
    rpm: int | None = Field(None, description="Requests per minute, counted across the whole fleet.")
    tpm: int | None = Field(None, description="Tokens per minute, counted across the whole fleet.")
    max_parallel: int | None = Field(None, description="Requests in flight at once.")
    expires: str | None = Field(
        None,
        description="When its keys stop working: 'YYYY-MM-DD' (the end of that day, UTC) or an "
        "ISO time with its zone, e.g. '2027-06-30T12:00:00+00:00'.",
    )

    @property
    def all_models(self) -> bool:
        return ALL_MODELS in self.models

    @property
    def expires_at(self) -> dt.datetime | None:
        return expiry_time(self.expires) if self.expires else None


def expiry_time(text: str) -> dt.datetime:
    """'YYYY-MM-DD' (valid through that day, UTC) or an ISO time with a zone, as aware UTC."""
    if len(text) == 10:
        day = dt.date.fromisoformat(text)
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError("no time zone")
    return when.astimezone(dt.UTC)


def parse_clients(raw: Any, model_names: Sequence[str], now: dt.datetime | None = None) -> tuple[list, list]:
    """(clients, warnings) from group data `clients`, or ConfigError naming every problem."""
    if raw is None:
        return [], []
    if not isinstance(raw, (list, tuple)):
        raise ConfigError(
            [f"clients must be a list of dicts, got {describe(raw)}; write clients = [{{...}}]"]
        )
    now = now or dt.datetime.now(dt.UTC)
    problems, warnings, clients, seen = [], [], [], {}
    for index, entry in enumerate(raw):
        label = f"clients[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(
                f"{label} must be a dict, got {describe(entry)}; write it as {{'name': ..., 'models': [...]}}"
            )
            continue
        name = entry.get("name")
        if isinstance(name, str):
            label = f"client {name!r}"
            if name in seen:
                problems.append(
                    f"client {name!r} is defined twice (clients[{seen[name]}] and clients[{index}]); "
                    "give each client a unique name or remove the duplicate"
                )
            seen.setdefault(name, index)
        found = _entry_problems(label, entry, model_names)
        problems += found
        if found:
            continue
        try:
            client = Client.model_validate({**entry, "models": tuple(entry["models"])})
        except ValidationError as error:  # the checks above cover the schema; this is a backstop
            problems.append(f"{label}: {error.errors()[0]['msg']}")
            continue
        if client.expires_at is not None and client.expires_at <= now:
            warnings.append(
                f"client {client.name!r} expired on {client.expires}: its keys get 401; remove the "
                "client (and its keys) or set a later expires"
            )
        clients.append(client)
    if problems:
        raise ConfigError(problems)
    return clients, warnings


def _entry_problems(label: str, entry: Mapping, model_names: Sequence[str]) -> list[str]:
    allowed = list(Client.model_fields)
    lines = []
    for key in entry:
        if key not in allowed:
            hint = closest(key, allowed) if isinstance(key, str) else None
            fix = f"rename it to {hint!r}" if hint else "remove it"
            lines.append(
                f"unknown key {key!r} in {label}{did_you_mean(key, allowed)}; {fix} "
                f"(allowed keys are: {', '.join(allowed)})"
            )
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        lines.append(
            f"{label} name {name!r} is not a valid name; names must match {NAME_PATTERN}, e.g. 'app'"
        )
    lines += _models_problems(label, entry.get("models"), model_names)
    for key, high in LIMITS.items():
        value = entry.get(key)
        if value is not None and (not is_int(value) or not 1 <= value <= high):
            lines.append(
                f"{label} {key} must be a whole number from 1 to {high}, got {describe(value)}; "
                f"e.g. {key} = 60, or leave it out for no limit"
            )
    expires = entry.get("expires")
    if expires is not None:
        try:
            if not isinstance(expires, str):
                raise TypeError
            expiry_time(expires)
        except (TypeError, ValueError):
            lines.append(
                f"{label} expires must be 'YYYY-MM-DD' or an ISO time with a zone, got {describe(expires)}; "
                "e.g. expires = '2027-06-30'"
            )
    return lines


def _models_problems(label: str, models: Any, model_names: Sequence[str]) -> list[str]:
    fix = f"list names from models/model_groups, or ['{ALL_MODELS}'] for every model"
    if models is None:
        return [f"{label} is missing required key 'models'; {fix}"]
    if not isinstance(models, (list, tuple)) or not models:
        return [f"{label} models must be a non-empty list of model names, got {describe(models)}; {fix}"]
    lines = []
    for model in models:
        if model == ALL_MODELS:
            if len(models) > 1:
                lines.append(
                    f"{label} models: '{ALL_MODELS}' already means every model; write ['{ALL_MODELS}'] alone"
                )
        elif not isinstance(model, str) or model not in model_names:
            lines.append(f"{label} models: unknown model {model!r}{did_you_mean(model, model_names)}; {fix}")
    if len(set(map(str, models))) != len(models):
        lines.append(f"{label} models names a model twice; list each once")
    return lines


def gateway_table(
    clients: Sequence[Client], hashes: Mapping[str, Sequence[tuple[str, str | None]]]
) -> list[dict]:
    """What the gateways hold (clients.json): per client its limits and the sha256 of each key
    with that key's own end (a rotation's old key), never a key."""
    table = []
    for client in clients:
        keys = [
            {"sha256": digest, "expires": _earliest(client.expires_at, until)}
            for digest, until in hashes.get(client.name, ())
        ]
        table.append(
            {
                "name": client.name,
                "models": [] if client.all_models else list(client.models),
                "rpm": client.rpm,
                "tpm": client.tpm,
                "max_parallel": client.max_parallel,
                "keys": keys,
            }
        )
    return table


def _earliest(client_end: dt.datetime | None, key_end: str | None) -> str | None:
    ends = [e for e in (client_end, expiry_time(key_end) if key_end else None) if e is not None]
    return min(ends).isoformat() if ends else None
