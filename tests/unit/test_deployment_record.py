"""The deployment record (hxops.deploy_record, templates/record.sh.j2) and `make history`
(hxops.history): the links, the entry a real record.sh appends, the merged timeline."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from hxgw.settings import parse_settings
from hxops import deploy_record, history, release
from tests.unit.helpers import render

COMMIT = "ea7ea0f0123456789abcdef0123456789abcdef0"


@pytest.mark.parametrize(
    ("remote", "link"),
    [
        ("https://github.com/hx/gateway.git", f"https://github.com/hx/gateway/commit/{COMMIT}"),
        (
            "https://user:s3cret@git.example.org/hx/gateway",
            f"https://git.example.org/hx/gateway/commit/{COMMIT}",
        ),
        ("http://git.lan:8080/hx/gateway.git/", f"http://git.lan:8080/hx/gateway/commit/{COMMIT}"),
        ("git@github.com:hx/gateway.git", f"https://github.com/hx/gateway/commit/{COMMIT}"),
        (
            "ssh://git@gitlab.example.org:2222/ops/hx.git",
            f"https://gitlab.example.org/ops/hx/commit/{COMMIT}",
        ),
        ("/srv/git/gateway.git", None),
        ("file:///srv/git/gateway.git", None),
        (None, None),
    ],
)
def test_a_web_remote_gives_a_commit_link_and_never_its_credentials(remote, link) -> None:
    assert deploy_record.commit_link(remote, COMMIT) == link
    assert "s3cret" not in str(deploy_record.commit_link(remote, COMMIT))


def test_no_commit_no_link() -> None:
    assert deploy_record.commit_link("https://github.com/hx/gateway.git", None) is None


def settings_under(base: Path):
    return parse_settings({"base_dir": str(base), "gateway_ip": "192.0.2.1", "litellm_version": "1.108.7"})


def record_for(settings) -> deploy_record.Record:
    plan = SimpleNamespace(host_name="gw-1", settings=settings)
    return deploy_record.Record.of(plan)


def test_the_control_machine_fields_name_the_commit_the_operator_and_no_secret(tmp_path) -> None:
    command = record_for(settings_under(tmp_path / "hx")).command(deploy_record.ROLLED_BACK, "x" * 400)
    script, fields_json = shlex.split(command)
    fields = json.loads(fields_json)
    assert script == str(tmp_path / "hx/scripts/service/api-gateway/record.sh")
    assert fields["outcome"] == "rolled back" and fields["gateway"] == "gw-1"
    assert fields["deployed_litellm"] == "1.108.7"
    assert len(fields["cause"]) == 300
    assert set(fields) == {
        "gateway", "deployed_litellm", "outcome", "cause", "commit", "commit_url", "dirty", "operator", "control",
    }  # fmt: skip
    assert fields["commit"] and len(fields["commit"]) == 40  # this repository's HEAD
    assert isinstance(fields["dirty"], bool)


def fake_gateway(base: Path, version: str) -> tuple:
    """A gateway's files as the deploy lays them out, with a venv that has litellm `version`."""
    settings = settings_under(base)
    venv = Path(settings.venv_root) / "0123456789abcdef"
    (venv / "lib/python3.11/site-packages" / f"litellm-{version}.dist-info").mkdir(parents=True)
    os.symlink(venv, settings.venv_link)
    Path(settings.config_dir).mkdir(parents=True)
    Path(settings.config_file).write_text("model_list: []\n")
    Path(settings.env_file).write_text("LITELLM_MASTER_KEY=sk-never-in-the-record\n")
    unit = base / "hx-litellm-gateway.service"
    unit.write_text("[Service]\n")
    script = base / "record.sh"
    text = render(
        "record.sh.j2", settings=settings, log=deploy_record.record_file(settings), unit_file=str(unit)
    )
    script.write_text(text)
    return settings, script


def test_record_sh_appends_what_serves_now_read_from_the_host(tmp_path) -> None:
    settings, script = fake_gateway(tmp_path, "1.108.6")
    record = record_for(settings)
    for outcome in (deploy_record.UPDATED, deploy_record.ROLLED_BACK):
        args = shlex.split(record.command(outcome, "the gateway did not become ready"))[1:]
        run = subprocess.run(["sh", str(script), *args], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    log = Path(deploy_record.record_file(settings))
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    first, second = (json.loads(line) for line in log.read_text().splitlines())
    assert first["outcome"] == "updated" and second["outcome"] == "rolled back"
    assert first["release"] == "0123456789abcdef" and first["litellm"] == "1.108.6"
    assert first["config_sha256"] == hashlib.sha256(b"model_list: []\n").hexdigest()
    assert first["unit_sha256"] == hashlib.sha256(b"[Service]\n").hexdigest()
    assert first["time"].endswith("Z") and first["time"] <= second["time"]
    assert "sk-never-in-the-record" not in log.read_text()
    assert release.releases_dir(settings) == str(log.parent)


def test_the_timeline_merges_gateways_oldest_first() -> None:
    a = '{"time": "2026-12-01T23:40:00.000Z", "outcome": "updated", "litellm": "1.108.6"}\nnot json\n'
    b = '{"time": "2026-12-01T23:39:00.000Z", "gateway": "gw-b", "outcome": "rolled back", "cause": "boom"}\n'
    entries_a, problems_a = history.parse_record(a, "gw-a")
    entries_b, problems_b = history.parse_record(b + '{"no": "time"}\n', "gw-b")
    assert problems_a == ["gw-a: line 2 of deployments.jsonl is not JSON; skipped"]
    assert problems_b == ["gw-b: line 2 of deployments.jsonl has no time; skipped"]
    timeline = history.merge({"gw-a": entries_a, "gw-b": entries_b})
    assert [(e["gateway"], e["outcome"]) for e in timeline] == [("gw-b", "rolled back"), ("gw-a", "updated")]
    lines = [history.format_entry(e) for e in timeline]
    assert lines[0].startswith("2026-12-01T23:39:00.000Z  gw-b  rolled back")
    assert "(tried litellm ?: boom)" in lines[0]
    assert "litellm 1.108.6" in lines[1]


def test_a_dirty_tree_and_a_link_are_shown() -> None:
    entry = {
        "time": "t", "gateway": "gw", "outcome": "updated", "commit": COMMIT, "dirty": True,
        "commit_url": f"https://github.com/hx/gateway/commit/{COMMIT}",
    }  # fmt: skip
    line = history.format_entry(entry)
    assert f"commit {COMMIT[:12]} (dirty)" in line
    assert line.endswith(f"https://github.com/hx/gateway/commit/{COMMIT}")
