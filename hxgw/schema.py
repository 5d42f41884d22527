"""Turn pydantic's validation errors into this project's messages: the key, the value, the fix.

A field states its messages once, next to its type and default, with `messages(...)`:
`wrong_type` when the value has the wrong type, `wrong_value` when it has the right type but
breaks a constraint (range, pattern, literal choice), and `fix`, the sentence that says what to
write instead. Templates may use {key}, {value} (repr), {shown} (repr, with the type when not
text), {got} (type and repr), {hint} (" (did you mean 'x'?)" for a literal choice) and {fix}.
A validator that checks meaning raises `problem(text)`: its text is used as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError

from hxgw.errors import describe, did_you_mean, shown

# The pydantic error types that mean "wrong type" rather than "wrong value of the right type".
_TYPE_ERRORS = {
    "string_type",
    "int_type",
    "float_type",
    "bool_type",
    "list_type",
    "tuple_type",
    "dict_type",
    "int_from_float",
    "dataclass_type",
    "model_type",
}
_OWN = "hx_problem"


def problem(text: str, add_fix: bool = False) -> PydanticCustomError:
    """The error a validator raises for a value that is wrong in meaning; `text` is the message
    after the key (e.g. "'/etc/hx' is under /etc; ..."). A rule shared by several fields says
    only what is wrong and asks for the field's own fix with `add_fix`."""
    return PydanticCustomError(_OWN, "{text}", {"text": text, "add_fix": add_fix})


def wants_fix(error: ErrorDetails) -> bool:
    """True when the error's text leaves the fix to the field (see problem())."""
    return error["type"] == _OWN and bool((error.get("ctx") or {}).get("add_fix"))


def messages(fix: str, wrong_type: str | None = None, wrong_value: str | None = None) -> dict:
    """A field's message templates, for Field(json_schema_extra=messages(...))."""
    return {"hx_messages": {"fix": fix, "wrong_type": wrong_type, "wrong_value": wrong_value}}


def escape(text: str) -> str:
    """`text` made safe to embed in a message template (braces doubled)."""
    return text.replace("{", "{{").replace("}", "}}")


def fix_of(field: FieldInfo | None) -> str:
    """The field's fix sentence ('' if it declares none)."""
    return _templates(field).get("fix") or ""


def explain(error: ErrorDetails, field: FieldInfo | None, key: str, **hints: str) -> str:
    """The message body for one pydantic error about `key` (without the key's label); `hints`
    fill the template's other names (e.g. {backends}, a list the caller knows)."""
    if error["type"] == _OWN:
        return error["msg"]
    templates = _templates(field)
    value = error.get("input")
    category = "wrong_type" if error["type"] in _TYPE_ERRORS else "wrong_value"
    template = (
        templates.get(category) or templates.get("wrong_value") or "{shown} is not valid: {reason}; {fix}"
    )
    choices = _literal_choices(field)
    return template.format(
        key=key,
        value=repr(value),
        shown=shown(value),
        got=describe(value),
        hint=did_you_mean(value, choices) if choices else "",
        fix=templates.get("fix") or "",
        reason=error["msg"].lower(),
        **hints,
    )


def field_key(error: ErrorDetails) -> str | None:
    """The top-level field an error is about (None for the whole entry)."""
    loc = error.get("loc") or ()
    return loc[0] if loc and isinstance(loc[0], str) else None


def fields_of(schema: Any) -> Mapping[str, FieldInfo]:
    """The declared fields of a pydantic model or pydantic dataclass."""
    return getattr(schema, "model_fields", None) or schema.__pydantic_fields__


def _templates(field: FieldInfo | None) -> dict:
    extra = field.json_schema_extra if field is not None else None
    return extra.get("hx_messages", {}) if isinstance(extra, dict) else {}


def _literal_choices(field: FieldInfo | None) -> tuple[str, ...]:
    """The allowed words of a Literal field (or of a list of Literals), else ()."""
    if field is None:
        return ()
    annotation = field.annotation
    for _ in range(3):  # Literal, tuple[Literal, ...], Literal | None
        args = get_args(annotation)
        if args and all(isinstance(arg, str) for arg in args):
            return args
        nested = [arg for arg in args if get_args(arg)]
        if not nested:
            return ()
        annotation = nested[0]
    return ()
