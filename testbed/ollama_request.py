"""What Ollama's JSON binding refuses before it looks at the model (stdlib only; imported by
plain name by fake_ollama.py): `keep_alive` (api/types.go Duration.UnmarshalJSON, which hands a
string to Go's time.ParseDuration) and `think` (api/types.go, per release). Every handler binds
with gin's ShouldBindJSON and answers a binding error 400 with the error's text
(server/routes.go ChatHandler/GenerateHandler/EmbedHandler, v0.12.10), even for an unknown model.
"""

from __future__ import annotations

import json
import math
import re

from ollama_contract import OllamaError

# Go's time.ParseDuration units (src/time/format.go unitMap), in seconds.
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_NUMBER = re.compile(r"(\d*)(?:\.(\d*))?")
_GO_TYPES = {bool: "bool", dict: "map[string]interface {}", list: "[]interface {}"}


def go_quote(text: str) -> str:
    """Go's strconv.Quote for the texts met here (json.dumps, but keeping non-ASCII)."""
    return json.dumps(text, ensure_ascii=False)


def go_parse_duration(text: str) -> float:
    """time.ParseDuration in seconds: [-+]? then (number unit)+, "0" alone allowed; no unit
    ("300") is an error, as are unknown units and an empty string."""
    s, sign = text, 1.0
    if s[:1] in ("-", "+"):
        sign, s = (-1.0 if s[0] == "-" else 1.0), s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise OllamaError(400, f"time: invalid duration {go_quote(text)}")
    total = 0.0
    while s:
        m = _GO_NUMBER.match(s)
        whole, frac = m.group(1), m.group(2)
        if not whole and not frac:
            raise OllamaError(400, f"time: invalid duration {go_quote(text)}")
        s = s[m.end() :]
        unit = re.match(r"[^0-9.]*", s).group()
        if not unit:
            raise OllamaError(400, f"time: missing unit in duration {go_quote(text)}")
        if unit not in _GO_UNITS:
            raise OllamaError(400, f"time: unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        total += float(f"{whole or 0}.{frac or 0}") * _GO_UNITS[unit]
        s = s[len(unit) :]
    return sign * total


def keep_alive_seconds(value) -> float | None:
    """api/types.go Duration.UnmarshalJSON (v0.12.10 lines 979-1007): a JSON number is seconds,
    a string goes to time.ParseDuration, a negative duration keeps the model (math.inf here),
    any other type is "Unsupported type: '<Go type>'". None: the request left it unset."""
    if value is None:
        return None
    if isinstance(value, str):
        seconds = go_parse_duration(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise OllamaError(400, f"Unsupported type: '{_GO_TYPES.get(type(value), type(value).__name__)}'")
    return math.inf if seconds < 0 else seconds


def think_value(think, version: tuple[int, ...], struct: str = "ChatRequest"):
    """The request's `think` as the release imitated binds it (None: unset or ignored).

    - before 0.9.0 there is no `think` field: Go's decoder ignores it;
    - 0.9.0-0.10.x: `Think *bool` (api/types.go, v0.10.1 line 91): anything but a boolean is a
      json.UnmarshalTypeError;
    - 0.11.0 on: ThinkValue.UnmarshalJSON (v0.12.10 lines 938-959): a boolean, or one of
      "high", "medium", "low" ("max" too from 0.21.3, commit c2ebb4d57), else 400
      `invalid think value: "x" (must be ...)`; another JSON type gets `think must be ...`."""
    if think is None or version < (0, 9, 0):
        return None
    if isinstance(think, bool):
        return think
    if version < (0, 11, 0):
        kind = "string" if isinstance(think, str) else "number" if isinstance(think, (int, float)) else "bool"
        where = f"Go struct field {struct}.think"
        raise OllamaError(400, f"json: cannot unmarshal {kind} into {where} of type bool")
    levels = ("high", "medium", "low", "max") if version >= (0, 21, 3) else ("high", "medium", "low")
    allowed = ", ".join(go_quote(x) for x in levels) + ", true, or false"
    if isinstance(think, str):
        if think not in levels:
            raise OllamaError(400, f"invalid think value: {go_quote(think)} (must be {allowed})")
        return think
    raise OllamaError(400, f"think must be a boolean or string ({allowed})")


def think_string_refused(think, model: dict, version: tuple[int, ...]) -> None:
    """0.11.0-0.17.6: a think level (a string) only for harmony (gpt-oss) models, else 400
    `think value "high" is not supported for this model` (server/routes.go v0.12.10 lines 337-340
    in GenerateHandler, 2050-2053 in ChatHandler; gone in v0.17.7)."""
    harmony = model["base"].startswith("gpt-oss")
    if isinstance(think, str) and (0, 11, 0) <= version < (0, 17, 7) and not harmony:
        raise OllamaError(400, f"think value {go_quote(think)} is not supported for this model")
