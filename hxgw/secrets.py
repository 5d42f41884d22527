"""Check and generate the LiteLLM master key.

Error messages never contain the key, not even part of it: they end up in terminals,
CI logs and chat threads. They say the key's length and what is wrong instead.
"""

from __future__ import annotations

import re
import secrets
from typing import NoReturn

from hxgw.catalogue import ConfigError

PREFIX = "sk-"
MIN_LENGTH = 32
MIN_DISTINCT_CHARS = 8
GENERATE_HINT = "python3 -c 'import secrets; print(\"sk-\" + secrets.token_urlsafe(32))'"

# After the prefix only URL-safe base64 characters: nothing an EnvironmentFile or an
# HTTP Authorization header would need quoted or escaped.
_BODY_RE = re.compile(r"^[A-Za-z0-9_-]+$")

# Keys from docs, examples and earlier dev setups; compared case-insensitively.
KNOWN_WEAK_KEYS = frozenset(
    {
        "sk-1234",
        "sk-12345678",
        "sk-hx-dev-1234",
        "sk-production-key",
        "sk-master-key",
        "sk-admin",
        "sk-test",
        "sk-password",
        "sk-changeme",
        "sk-secret",
        "sk-litellm",
        "sk-example",
    }
)


def check_master_key(key: str) -> None:
    """Raise ConfigError listing every weakness of `key`; return None if it is strong."""
    if not isinstance(key, str):
        _fail([f"the master key must be a string, got {type(key).__name__}"])
    what = f"the master key ({len(key)} characters)"
    problems = []
    if key.lower() in KNOWN_WEAK_KEYS:
        problems.append(f"{what} is a well-known default or example value anyone can guess")
    if not key.startswith(PREFIX):
        problems.append(f"{what} does not start with {PREFIX!r}, which LiteLLM expects")
    if len(key) < MIN_LENGTH:
        problems.append(f"{what} is too short; it needs at least {MIN_LENGTH} characters")
    body = key.removeprefix(PREFIX)
    if body and not _BODY_RE.fullmatch(body):
        problems.append(
            f"{what} contains characters other than letters, digits, '_' and '-' "
            "(e.g. whitespace, quotes or '$'), which break EnvironmentFiles and HTTP headers"
        )
    distinct = len(set(body))
    if len(body) > 1 and distinct == 1:
        problems.append(f"{what} is one character repeated")
    elif body and distinct < MIN_DISTINCT_CHARS:
        problems.append(f"{what} uses only {distinct} distinct characters, so it is guessable")
    if problems:
        _fail(problems)


def _fail(problems: list[str]) -> NoReturn:
    fix = f"generate a strong key with: {GENERATE_HINT}"
    raise ConfigError([f"secrets: {problem}; {fix}" for problem in problems])


def generate_master_key() -> str:
    """A fresh random master key that passes check_master_key()."""
    while True:
        key = PREFIX + secrets.token_urlsafe(32)
        try:
            check_master_key(key)
        except ConfigError:  # astronomically unlikely (under 8 distinct characters); retry
            continue
        return key
