"""The catalogue's entries (a backend, a model, a model group), each field declared once on
pydantic v2 with its type, default, description and messages. hxgw.catalogue validates the
sections with them and adds what spans entries (unique names, references, groups)."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from hxgw.errors import text_problem
from hxgw.schema import escape, messages, problem

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
MODES = ("chat", "embedding")
CAPABILITIES = ("tools", "thinking", "vision")
DEFAULT_TIMEOUT = {"chat": 60.0, "embedding": 30.0}
# LiteLLM: ollama_chat/ posts to /api/chat; embeddings need ollama/, which posts to /api/embed.
LITELLM_PREFIX = {"chat": "ollama_chat/", "embedding": "ollama/"}
EXAMPLE_URL = "http://192.168.10.29:11434"
# Free text for people (LiteLLM's model_info.description): any printable character, quotes, $,
# backticks, '#', ':' and newlines included. It reaches the host only inside config.yaml, JSON-quoted
# by the template, never through a shell.
DESCRIPTION_MAX_LENGTH = 1000

NAME_RE = re.compile(NAME_PATTERN)
_DNS_LABEL_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
NAME_RULE = (
    f"names must match {NAME_PATTERN} (start with a letter or digit, then letters, digits, "
    "'.', '_', ':' or '-', at most 64 characters)"
)
_URL_FIX = f"write it as scheme://host:port, e.g. {EXAMPLE_URL!r}"
_TAG_FIX = (
    f"the Ollama tag must match {TAG_PATTERN} (no spaces, quotes or control characters), e.g. 'llama3.2:3b'"
)
_DESCRIPTION_FIX = (
    f"write it as a string of at most {DESCRIPTION_MAX_LENGTH} printable characters "
    "(quotes, $, backticks, '#', ':' and newlines are fine), or leave it out"
)
_ENTRY = ConfigDict(extra="forbid")


def _name_field(description: str):
    return Field(
        strict=True,
        description=description,
        json_schema_extra=messages(
            'add "name": "<unique-name>"',
            wrong_type=f"name must be a string, got {{got}}; {escape(NAME_RULE)}",
        ),
    )


def check_name(name: str) -> str:
    """An entry's name: what clients request or entries refer to, so one safe token."""
    if not name:
        raise problem(f"has an empty name; {NAME_RULE}")
    if not NAME_RE.fullmatch(name):
        raise problem(f"has invalid name {name!r}; {NAME_RULE}")
    return name


EntryName = Annotated[str, AfterValidator(check_name)]


@dataclass(frozen=True, config=_ENTRY)
class Backend:
    """An Ollama server the gateway forwards to."""

    name: EntryName = _name_field("Unique name of the Ollama server.")
    url: str = Field(
        strict=True,
        description="Its root URL, scheme://host:port (normalised).",
        json_schema_extra=messages(
            f'add "url": "{EXAMPLE_URL}"', wrong_type=f"url must be a string, got {{got}}; {escape(_URL_FIX)}"
        ),
    )

    @field_validator("url")
    @classmethod
    def _normalised_url(cls, url: str) -> str:
        return normalise_url(url)


@dataclass(frozen=True, config=_ENTRY)
class Model:
    """One Ollama model on one backend, published under `name`."""

    name: EntryName = _name_field("The model name clients request.")
    backend: str = Field(
        strict=True,
        description="The name of the entry in backends that serves it.",
        json_schema_extra=messages(
            'add "backend": "<name of an entry in backends>"',
            wrong_type="backend must be a backend name (string), got {got}; use one of: {backends}",
        ),
    )
    model: str = Field(
        strict=True,
        pattern=TAG_PATTERN,
        description="The Ollama tag, e.g. 'llama3.2:3b'.",
        json_schema_extra=messages(
            'add "model": "<ollama tag>", e.g. "llama3.2:3b"',
            wrong_type=f"model must be an Ollama tag string, got {{got}}; {escape(_TAG_FIX)}",
            wrong_value=f"has invalid Ollama tag {{value}}; {escape(_TAG_FIX)}",
        ),
    )
    mode: Literal["chat", "embedding"] = Field(
        description="'chat' or 'embedding'.",
        json_schema_extra=messages(
            'add "mode": "chat" or "mode": "embedding"',
            wrong_value="has mode {value}{hint}; mode must be 'chat' or 'embedding'",
        ),
    )
    dims: int | None = Field(
        None,
        strict=True,
        gt=0,
        description="Embedding models only: the vector size.",
        json_schema_extra=messages(
            "",
            wrong_value="dims must be a positive integer, got {got}; "
            'write the vector size without quotes, e.g. "dims": 768',
        ),
    )
    timeout: float | None = Field(
        None,
        strict=True,
        gt=0,
        allow_inf_nan=False,
        description="Seconds per request (default 60 for chat, 30 for embedding).",
        json_schema_extra=messages(
            "",
            wrong_value="timeout must be a positive number of seconds, got {got}; "
            'e.g. "timeout": 120, or leave it out for the default (60 chat, 30 embedding)',
        ),
    )
    description: str = Field(
        "",
        strict=True,
        description="Free text for people (LiteLLM's model_info.description).",
        json_schema_extra=messages(
            "", wrong_type=f"description must be text, got {{got}}; {escape(_DESCRIPTION_FIX)}"
        ),
    )
    capabilities: tuple[Literal["tools", "thinking", "vision"], ...] | None = Field(
        None,
        description="What the model can do beyond plain chat: 'tools', 'thinking', 'vision' "
        "([] for plain chat; left out: not declared, so groups cannot be checked for it).",
        json_schema_extra=messages(
            "",
            wrong_type='capabilities must be a list, got {got}; write e.g. "capabilities": ["tools"]',
            wrong_value="capabilities lists {value}{hint}, which is not one of "
            "'tools', 'thinking', 'vision'; "
            "fix or remove it",
        ),
    )
    context_length: int | None = Field(
        None,
        strict=True,
        gt=0,
        description="The context window in tokens, when known.",
        json_schema_extra=messages(
            "",
            wrong_value="context_length must be a positive integer (tokens), got {got}; "
            'e.g. "context_length": 8192, or leave it out',
        ),
    )

    @field_validator("description", "capabilities", mode="before")
    @classmethod
    def _none_is_unset(cls, value, info):
        # Written out as None in group data, these optional fields mean "not given", as dims does.
        return {"description": "", "capabilities": None}[info.field_name] if value is None else value

    @field_validator("description")
    @classmethod
    def _printable_description(cls, text: str) -> str:
        if len(text) > DESCRIPTION_MAX_LENGTH:
            raise problem(f"description has {len(text)} characters; {_DESCRIPTION_FIX}")
        bad = text_problem(text)
        if bad:
            raise problem(f"description {bad}; {_DESCRIPTION_FIX}")
        return text

    @model_validator(mode="after")
    def _dims_match_mode(self) -> Model:
        if self.mode == "chat" and self.dims is not None:
            raise problem("is a chat model but sets dims; remove dims (only embedding models have dims)")
        if self.mode == "embedding" and self.dims is None:
            raise problem(
                'is an embedding model without dims; add "dims": <vector size>, e.g. 768 for nomic-embed-text'
            )
        if self.capabilities and self.mode == "embedding":
            raise problem(
                f"is an embedding model with capabilities {list(self.capabilities)}; remove capabilities "
                "(tools, thinking and vision are for chat models)"
            )
        if self.capabilities and len(set(self.capabilities)) != len(self.capabilities):
            raise problem("lists a capability twice; list each once")
        if self.timeout is None:
            object.__setattr__(self, "timeout", DEFAULT_TIMEOUT[self.mode])  # frozen: set once, here
        else:
            object.__setattr__(self, "timeout", float(self.timeout))
        return self

    @property
    def litellm_model(self) -> str:
        """The provider-prefixed model string LiteLLM expects in litellm_params.model."""
        return LITELLM_PREFIX[self.mode] + self.model


@dataclass(frozen=True, config=_ENTRY)
class Group:
    """A load-balanced model name served by several models of the same mode."""

    name: EntryName = _name_field("The group name clients request.")
    members: tuple[str, ...] = Field(
        description="The names of its models (all chat or all embedding).",
        json_schema_extra=messages(
            'add "members": ["<model name>", ...]',
            wrong_type="members must be a list of model names, got {got}; "
            'write "members": ["<model name>", ...]',
        ),
    )


def normalise_url(url: str) -> str:
    """The backend URL as scheme://host:port, or a problem saying what is wrong with it."""

    def bad(why: str) -> Exception:
        return problem(f"url {url!r} {why}; {_URL_FIX}")

    if not url or any(ch.isspace() or not ch.isprintable() for ch in url):
        raise bad("is empty or contains whitespace or control characters")
    if "://" not in url:
        raise bad("has no scheme (it must start with http:// or https://)")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise bad(f"uses scheme {parts.scheme!r}; only http:// and https:// are supported")
    if "@" in parts.netloc:
        raise bad("contains user info (user@ or user:password@); credentials do not belong in the URL")
    if parts.path not in ("", "/"):
        raise bad(f"has a path {parts.path!r}; give only the server root (LiteLLM appends /api/...)")
    if "?" in url or "#" in url:
        raise bad("has a query or fragment; give only scheme://host:port")
    host = parts.hostname
    if not host or not _valid_host(host):
        raise bad("has no valid host (an IPv4 address, [IPv6] address or DNS name)")
    raw_port = "" if parts.netloc.endswith("]") else parts.netloc.rpartition(":")[2]
    if ":" not in parts.netloc.rpartition("]")[2] or not raw_port:
        raise bad("has no port (Ollama listens on 11434 by default)")
    if not (raw_port.isascii() and raw_port.isdigit()) or not 1 <= int(raw_port) <= 65535:
        raise bad(f"has port {raw_port!r}; the port must be a number from 1 to 65535")
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
