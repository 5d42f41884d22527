"""LiteLLM releases never to install, read from requirements/refused-litellm.toml.

Each entry names the versions (a PEP 440 specifier, so one "<1.84.0" covers a whole advisory),
a reason and a link. `make lock` and the deploy's plan both ask `refusal(version)`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

REFUSED_FILE = Path(__file__).resolve().parent.parent / "requirements" / "refused-litellm.toml"


@dataclass(frozen=True)
class RefusedVersions:
    versions: str  # PEP 440 specifier, e.g. "==1.82.7" or "<1.84.0"
    reason: str
    link: str

    def matches(self, version: str) -> bool:
        return SpecifierSet(self.versions).contains(version, prereleases=True)


def load_refused(path: Path = REFUSED_FILE) -> list[RefusedVersions]:
    """Every entry of the refused list; a malformed entry raises ValueError naming it and the fix."""
    entries = []
    for number, raw in enumerate(tomllib.loads(path.read_text()).get("refused", []), 1):
        where = f"{path.name}: [[refused]] entry {number}"
        missing = [key for key in ("versions", "reason", "link") if not str(raw.get(key) or "").strip()]
        if missing:
            raise ValueError(
                f"{where} has no {', '.join(missing)}; every entry needs versions, reason and link"
            )
        try:
            SpecifierSet(raw["versions"])
        except InvalidSpecifier:
            raise ValueError(
                f"{where}: versions {raw['versions']!r} is not a PEP 440 specifier; "
                "write e.g. '==1.82.7' or '<1.84.0'"
            ) from None
        entries.append(RefusedVersions(raw["versions"], raw["reason"], raw["link"]))
    return entries


def refusal(version: str, path: Path = REFUSED_FILE) -> str | None:
    """Why `version` must never be installed (every matching entry), or None if it may be."""
    reasons = [f"{entry.reason} ({entry.link})" for entry in load_refused(path) if entry.matches(version)]
    if not reasons:
        return None
    return f"litellm {version} is refused (requirements/refused-litellm.toml): " + "; ".join(reasons)
