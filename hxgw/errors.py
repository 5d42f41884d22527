"""ConfigError and the small helpers every message about bad deploy data is written with."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any


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


def describe(value: Any) -> str:
    """A short, single-line rendering of a bad value and its type for error messages."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def shown(value: Any) -> str:
    """A bad value for a message: just quoted if it is a string, else with its type."""
    return repr(value) if isinstance(value, str) else describe(value)


def closest(word: str, choices: Sequence[str]) -> str | None:
    """The choice `word` was most likely a typo of, or None."""
    # Swapped letters are the commonest typo, but difflib ranks 'modle' nearer to 'mode'
    # than to 'model', so an anagram of the word wins before difflib is asked.
    for choice in choices:
        if choice != word and choice.lower() == word.lower():
            return choice  # only the case differs
    for choice in choices:
        if choice != word and sorted(choice) == sorted(word):
            return choice
    matches = difflib.get_close_matches(word, list(choices), n=1)
    return matches[0] if matches else None


def did_you_mean(word: Any, choices: Sequence[str]) -> str:
    """' (did you mean 'x'?)' when `word` is text with a close match among `choices`, else ''."""
    match = closest(word, choices) if isinstance(word, str) else None
    return f" (did you mean {match!r}?)" if match else ""


def is_int(value: Any) -> bool:
    """True for real integers; bool is a subclass of int but never a valid count or port."""
    return isinstance(value, int) and not isinstance(value, bool)


def text_problem(text: str) -> str | None:
    """Why free text cannot go into config.yaml as it is, or None if it can.

    Control characters other than newline and tab are refused, and so are characters beyond
    U+FFFF (emoji): the template JSON-escapes them as surrogate pairs, which PyYAML (LiteLLM's
    loader) does not join back, so they would not arrive literally.
    """
    control = sorted({ch for ch in text if not (ch.isprintable() or ch in "\n\t" or ord(ch) > 0xFFFF)})
    if control:
        listed = ", ".join(f"U+{ord(ch):04X}" for ch in control[:5])
        return f"contains control or unprintable characters ({listed})"
    astral = sorted({ch for ch in text if ord(ch) > 0xFFFF})
    if astral:
        listed = ", ".join(f"U+{ord(ch):04X}" for ch in astral[:5])
        return (
            f"contains characters beyond U+FFFF such as emoji ({listed}), which LiteLLM's YAML loader garbles"
        )
    return None
