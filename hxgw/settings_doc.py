"""`python -m hxgw.settings_doc`: the README's settings tables, generated from the declarations
(hxgw.settings, hxgw.loadbalancer_settings, hxgw.cache_settings, hxgw.catalogue_entries), so
they cannot drift."""

from __future__ import annotations

import dataclasses
import typing

from pydantic.fields import FieldInfo

from hxgw.cache_settings import CacheSettings
from hxgw.catalogue_entries import Backend, Group, Model
from hxgw.clients import Client
from hxgw.loadbalancer_settings import LoadBalancerSettings
from hxgw.monitoring_settings import MonitoringSettings
from hxgw.schema import fields_of
from hxgw.setting_fields import canonical_ipv4
from hxgw.settings import Settings

SECTIONS = (
    ("Gateway host data (`group_data/all.py`, `inventory.py`, `--data key=value`)", Settings),
    ("Load balancer host data (hosts of the `loadbalancers` group)", LoadBalancerSettings),
    ("Cache host data (the host of the `caches` group)", CacheSettings),
    ("Monitoring host data (the host of the `monitoring` group)", MonitoringSettings),
    ("An entry of `backends`", Backend),
    ("An entry of `models`", Model),
    ("An entry of `model_groups`", Group),
    ("An entry of `clients`", Client),
)


def type_name(annotation: typing.Any) -> str:
    """A short, readable type: 'int', "'uv' \\| 'pip'", 'list of ...', 'str or None'."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(repr(arg) for arg in args)
    if origin is tuple:
        return f"list of {type_name(args[0])}"
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(type_name(arg) for arg in args)
    if origin is typing.Annotated or hasattr(annotation, "__metadata__"):
        return type_name(args[0])
    return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


def default_of(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    default = field.default
    if default in ((), "") and not isinstance(default, bool):
        return "empty"
    if default is dataclasses.MISSING:
        return "required"
    return f"`{default!r}`"


def field_type(field: FieldInfo) -> str:
    if any(getattr(rule, "func", None) is canonical_ipv4 for rule in field.metadata):
        return "IPv4 address (text)"
    return type_name(field.annotation)


def table(schema: typing.Any) -> list[str]:
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, field in fields_of(schema).items():
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{key}` | {field_type(field)} | {default_of(field)} | {description} |")
    return lines


def markdown() -> str:
    parts: list[str] = []
    for title, schema in SECTIONS:
        parts += [f"**{title}**", "", *table(schema), ""]
    return "\n".join(parts).rstrip() + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
