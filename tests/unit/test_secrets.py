"""Tests for hxgw.secrets: weak master keys are refused without ever echoing the key."""

from __future__ import annotations

import pytest

from hxgw.catalogue import ConfigError
from hxgw.secrets import GENERATE_HINT, check_master_key, generate_master_key

GOOD_KEY = "sk-" + "Q7x_v2Lm-9KpRt4ZbW8nYc3HdF6jGs1A"  # 35 chars, varied

# (case id, rejected key, substring expected in one problem line)
BAD_CASES = [
    ("short", "sk-Q7x_v2Lm9Kp", "is too short; it needs at least 32 characters"),
    ("no-prefix", "Q7x_v2Lm-9KpRt4ZbW8nYc3HdF6jGs1AeX", "does not start with 'sk-'"),
    ("wrong-prefix-case", "SK-Q7x_v2Lm-9KpRt4ZbW8nYc3HdF6jGs1A", "does not start with 'sk-'"),
    ("litellm-default", "sk-1234", "well-known default or example value"),
    ("hx-dev-default", "sk-hx-dev-1234", "well-known default or example value"),
    ("production-key", "sk-production-key", "well-known default or example value"),
    ("master-key", "SK-MASTER-KEY", "well-known default or example value"),
    ("admin", "sk-admin", "well-known default or example value"),
    ("test", "sk-Test", "well-known default or example value"),
    ("password", "sk-password", "well-known default or example value"),
    ("repeated-char", "sk-" + "a" * 40, "is one character repeated"),
    ("repeated-digit", "sk-" + "0" * 45, "is one character repeated"),
    ("few-distinct", "sk-" + "abab" * 10, "uses only 2 distinct characters"),
    ("dollar", "sk-Q7x_v2Lm$9KpRt4ZbW8nYc3HdF6jGs1A", "contains characters other than"),
    ("single-quote", "sk-Q7x_v2Lm'9KpRt4ZbW8nYc3HdF6jGs1A", "contains characters other than"),
    ("double-quote", 'sk-Q7x_v2Lm"9KpRt4ZbW8nYc3HdF6jGs1A', "contains characters other than"),
    ("newline", "sk-Q7x_v2Lm9KpRt4ZbW8nYc3HdF6jGs1A\n", "contains characters other than"),
    ("space", "sk-Q7x_v2Lm 9KpRt4ZbW8nYc3HdF6jGs1A", "contains characters other than"),
    ("plus-slash", "sk-Q7x+v2Lm/9KpRt4ZbW8nYc3HdF6jGs1A", "contains characters other than"),
]


@pytest.mark.parametrize(
    ("key", "expected"), [pytest.param(key, exp, id=case_id) for case_id, key, exp in BAD_CASES]
)
def test_weak_key_is_rejected_with_a_fix(key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_master_key(key)
    problems = caught.value.problems
    assert any(expected in line and GENERATE_HINT in line for line in problems), problems
    assert any(f"({len(key)} characters)" in line for line in problems)


@pytest.mark.parametrize("key", [key for _, key, _ in BAD_CASES])
def test_message_never_contains_the_key(key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_master_key(key)
    text = str(caught.value) + repr(caught.value) + "".join(caught.value.problems)
    for form in {key, key.strip(), key.lower(), key.upper(), repr(key)}:
        assert form not in text
    body = key.removeprefix("sk-")
    assert body.strip() not in text


def test_case_ids_are_unique() -> None:
    ids = [case_id for case_id, _, _ in BAD_CASES]
    assert len(ids) == len(set(ids))


def test_good_key_passes() -> None:
    check_master_key(GOOD_KEY)


def test_hint_command_is_the_documented_one() -> None:
    assert GENERATE_HINT == "python3 -c 'import secrets; print(\"sk-\" + secrets.token_urlsafe(32))'"


def test_non_string_is_rejected() -> None:
    with pytest.raises(ConfigError, match="must be a string"):
        check_master_key(None)  # type: ignore[arg-type]


def test_generated_keys_pass_and_differ() -> None:
    keys = {generate_master_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert key.startswith("sk-")
        check_master_key(key)
