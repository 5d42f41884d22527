"""Field kinds the settings are declared with (one call states type, default, range, description
and messages), and the validation of one section of host data into ConfigError lines."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, ValidationError

from hxgw.errors import ConfigError
from hxgw.schema import explain, field_key, fix_of, messages, problem, wants_fix


def integer(default: int | None, low: int, high: int, description: str, example: str) -> Any:
    """An integer setting from `low` to `high`; bool, float and quoted numbers are refused."""
    return Field(
        default,
        ge=low,
        le=high,
        description=description,
        json_schema_extra=messages(
            example,
            wrong_type=f"must be an integer from {low} to {high}, got {{got}}; "
            "write a bare number (no quotes, not True/False), {fix}",
            wrong_value=f"{{value}} is out of range; it must be from {low} to {high}, {{fix}}",
        ),
    )


def seconds(default: float | None, high: float, description: str, example: str) -> Any:
    """A positive, finite number of seconds up to `high` (an int is fine, bool and text are not)."""
    return Field(
        default,
        gt=0,
        le=high,
        allow_inf_nan=False,
        description=description,
        json_schema_extra=messages(
            example,
            wrong_type="must be a number of seconds, got {got}; write a bare number (no quotes), {fix}",
            wrong_value=f"{{value}} is out of range; "
            f"it must be more than 0 and at most {high:g} seconds, {{fix}}",
        ),
    )


def boolean(description: str, default: bool | None = False) -> Any:
    """A True/False switch; 'yes', 'true' and 1 are refused rather than guessed."""
    return Field(
        default,
        description=description,
        json_schema_extra=messages(
            "", wrong_type="must be True or False, got {got}; write {key} = True (no quotes)"
        ),
    )


def canonical_ipv4(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise problem(
            f"{text!r} is not an IPv4 address (four numbers 0-255 joined by '.')", add_fix=True
        ) from None


IPv4Text = Annotated[str, AfterValidator(canonical_ipv4)]


def ipv4_text(default: str | None, description: str, fix: str) -> Any:
    """An IPv4 address written as text, kept in canonical form. `default` None = required."""
    extra = messages(fix, wrong_type="must be an IPv4 address string, got {got}; {fix}")
    if default is None:
        return Field(description=description, json_schema_extra=extra)
    return Field(default, description=description, json_schema_extra=extra)


def validate_section(
    schema: type[BaseModel], prefix: str, data: Mapping[str, Any], context: dict | None = None
) -> Any:
    """`schema` validated from the keys it declares in `data` (None = unset), or ConfigError
    with one line per problem: '<prefix>: <key> <what is wrong>; <the fix>'."""
    values = {key: data.get(key) for key in schema.model_fields if data.get(key) is not None}
    try:
        return schema.model_validate(values, context=context)
    except ValidationError as error:
        raise ConfigError([_line(schema, prefix, e) for e in error.errors()]) from None


def _line(schema: type[BaseModel], prefix: str, error) -> str:
    key = field_key(error) or "?"
    field = schema.model_fields.get(key)
    if error["type"] == "missing":
        return f"{prefix}: {key} is not set; {fix_of(field)}"
    body = explain(error, field, key)
    if wants_fix(error):
        body = f"{body}; {fix_of(field)}"  # a shared rule (e.g. not an IPv4 address) + this key's fix
    return f"{prefix}: {key} {body}"
