"""The refused LiteLLM versions (requirements/refused-litellm.toml) and `make lock`'s refusals.

The deploy's refusal at plan level (pyinfra --dry with @fake) is in test_bad_input's matrix
(version-compromised, version-advisory); the lock script is driven here through its CLI on a copy
of the files it rewrites, so the repository's own lock is never touched.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hxgw.errors import ConfigError
from hxgw.refused_versions import REFUSED_FILE, load_refused, refusal
from hxgw.settings import locked_litellm_version, parse_settings
from hxops.lock_gateway import GATEWAY_IN, GATEWAY_LOCK, GROUP_DATA

REPO = Path(__file__).resolve().parents[2]


def test_every_entry_has_a_specifier_a_reason_and_a_link() -> None:
    entries = load_refused()
    assert len(entries) >= 3
    for entry in entries:
        assert entry.versions and len(entry.reason) > 20, entry
        assert entry.link.startswith("https://"), entry


@pytest.mark.parametrize("version", ["1.82.7", "1.82.8"])
def test_the_compromised_releases_are_refused_as_such(version) -> None:
    reason = refusal(version)
    assert reason is not None
    assert f"litellm {version} is refused" in reason
    assert "supply-chain compromise" in reason
    assert "https://github.com/BerriAI/litellm/issues/24518" in reason


@pytest.mark.parametrize(
    ("version", "advisories"),
    [
        ("1.83.6", ["GHSA-4xpc-pv4p-pm3w", "GHSA-v4p8-mg3p-g94g"]),  # every matching advisory is named
        ("1.83.14", ["GHSA-4xpc-pv4p-pm3w"]),
        ("1.40.0", ["GHSA-4xpc-pv4p-pm3w", "GHSA-g26j-5385-hhw3"]),
    ],
)
def test_a_version_in_an_advisory_range_is_refused_with_each_advisory(version, advisories) -> None:
    reason = refusal(version)
    assert reason is not None
    for advisory in advisories:
        assert advisory in reason


@pytest.mark.parametrize("version", ["1.84.0", "1.108.7", "1.110.2"])
def test_releases_past_every_advisory_are_allowed(version) -> None:
    assert refusal(version) is None


def test_the_pinned_release_is_not_refused() -> None:
    assert refusal(locked_litellm_version((REPO / GATEWAY_LOCK).read_text())) is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('versions = "==1.0.0"\nlink = "https://example.org"', "has no reason"),
        ('versions = "==1.0.0"\nreason = "bad"', "has no link"),
        ('versions = "1.0.0"\nreason = "bad"\nlink = "https://example.org"', "is not a PEP 440 specifier"),
    ],
)
def test_a_malformed_entry_is_named_with_the_fix(tmp_path, entry, message) -> None:
    path = tmp_path / "refused.toml"
    path.write_text(f"[[refused]]\n{entry}\n")
    with pytest.raises(ValueError, match=message) as caught:
        load_refused(path)
    assert "entry 1" in str(caught.value)


def repo_copy(tmp_path: Path) -> Path:
    for relative in (GATEWAY_IN, GATEWAY_LOCK, GROUP_DATA):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / relative, tmp_path / relative)
    return tmp_path


def make_lock(root: Path, version: str) -> subprocess.CompletedProcess:
    """`make lock LITELLM=version` as its recipe runs it, on the copy at `root`."""
    command = [sys.executable, "-m", "hxops.lock_gateway", version, "--root", str(root)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("1.82.8", ["litellm 1.82.8 is refused", "supply-chain compromise", "pick another release"]),
        ("1.83.10", ["litellm 1.83.10 is refused", "CVE-2026-49468", "GHSA-4xpc-pv4p-pm3w"]),
        ("latest", ["LITELLM='latest' is not X.Y.Z", "make lock LITELLM=1.108.7"]),
    ],
)
def test_make_lock_refuses_and_changes_nothing(tmp_path, version, expected) -> None:
    root = repo_copy(tmp_path)
    before = {path: (root / path).read_text() for path in (GATEWAY_IN, GATEWAY_LOCK, GROUP_DATA)}
    result = make_lock(root, version)
    assert result.returncode == 2, result.stdout + result.stderr
    for part in expected:
        assert part in result.stderr
    assert {path: (root / path).read_text() for path in before} == before


def test_refused_file_is_the_one_the_readme_names() -> None:
    readme = (REPO / "README.md").read_text()
    assert REFUSED_FILE.relative_to(REPO).as_posix() in readme


@pytest.mark.parametrize(
    ("version", "locked", "expected"),
    [
        # Refused even when the lock holds it (a hand-edited lock): never offered to re-lock.
        (
            "1.82.7",
            "1.82.7",
            ["litellm_version '1.82.7': litellm 1.82.7 is refused", "make lock LITELLM=X.Y.Z"],
        ),
        # A lock that pins a listed release is refused whatever the data says.
        (
            "1.110.2",
            "1.83.0",
            ["requirements/gateway.lock pins litellm 1.83.0 is refused", "GHSA-4xpc-pv4p-pm3w"],
        ),
    ],
)
def test_the_plan_refuses_a_listed_version_in_the_data_or_the_lock(version, locked, expected) -> None:
    data = {"base_dir": "/opt/hx", "gateway_ip": "192.0.2.1", "litellm_version": version}
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, locked_litellm_version=locked)
    (line,) = caught.value.problems
    for part in expected:
        assert part in line
