"""The host snapshot (hxops.facts) and the decisions hxops.ops takes from it: what makes a re-run
that changes nothing cost one remote command."""

from __future__ import annotations

import hashlib

import pytest

from hxgw.settings import parse_settings
from hxops import facts as hxfacts
from hxops import ops

SETTINGS = parse_settings({"base_dir": "/opt/hx", "gateway_ip": "198.18.0.39", "litellm_version": "1.108.7"})


# ---------- the snapshot ----------


def snapshot(lines: list[str]) -> hxfacts.HostFacts:
    return hxfacts.GatewayHost().process(lines)


def test_managed_paths_cover_the_layout_the_rendered_files_and_the_key_file():
    paths, rendered = hxfacts.managed_paths(SETTINGS)
    assert "/opt/hx" in paths and "/opt/hx/logs/services" in paths
    assert SETTINGS.venv_link in paths and SETTINGS.env_file in paths
    assert set(rendered) <= set(paths)
    assert SETTINGS.config_file in rendered
    assert "/etc/systemd/system/hx-litellm-gateway.service" in rendered
    assert SETTINGS.env_file not in rendered  # the key file's content is never hashed


def test_snapshot_command_is_one_command_and_quotes_paths():
    command = hxfacts.GatewayHost().command(
        "/opt/hx",
        4000,
        "u.service",
        "/opt/hx/gateway/venv",
        "/opt/hx/gateway/venvs",
        "/opt/hx/e",
        paths=["/opt/hx", "/opt/h x"],
        hashed=["/opt/hx/c.yaml"],
        account="hx-gateway",
    )
    assert "'/opt/h x'" in command
    assert "sha1sum /opt/hx/c.yaml" in command
    assert "getent passwd hx-gateway" in command
    assert command.endswith("true")


def test_snapshot_without_paths_adds_nothing():
    assert hxfacts.snapshot_commands((), (), "") == []


def test_snapshot_parses_present_absent_files_links_accounts_and_addresses():
    facts = snapshot(
        [
            "want /opt/hx",
            "want /opt/hx/config/c.yaml",
            "want /opt/hx/gateway/venv",
            "want /opt/hx/absent",
            "stat directory|root|root|755|/opt/hx",
            "stat regular file|root|hx-gateway|640|/opt/hx/config/c.yaml",
            "stat symbolic link|root|root|777|/opt/hx/gateway/venv",
            "target /opt/hx/gateway/venv /opt/hx/gateway/venvs/abc",
            "sha1 0123abcd  /opt/hx/config/c.yaml",
            "passwd hx-gateway:x:999:998::/nonexistent:/bin/false",
            "group hx-gateway:x:998:",
            "addr 127.0.0.1",
            "addr 198.18.0.39",
            "os debian 12",
        ]
    )
    paths = facts.snapshot.paths
    assert paths["/opt/hx"] == {"type": "directory", "user": "root", "group": "root", "mode": 755}
    assert paths["/opt/hx/config/c.yaml"]["sha1"] == "0123abcd"
    assert paths["/opt/hx/config/c.yaml"]["mode"] == 640
    assert paths["/opt/hx/gateway/venv"]["type"] == "link"
    assert paths["/opt/hx/gateway/venv"]["target"] == "/opt/hx/gateway/venvs/abc"
    assert paths["/opt/hx/absent"] == {"type": None}
    assert facts.snapshot.passwd["hx-gateway"] == hxfacts.Account(999, 998, "", "/nonexistent", "/bin/false")
    assert facts.snapshot.groups == {"hx-gateway": 998}
    assert facts.snapshot.addresses == ["127.0.0.1", "198.18.0.39"]
    assert facts.os_id == "debian"  # the rest of the fact is parsed as before


def test_snapshot_ignores_malformed_lines():
    found = snapshot(["stat garbage", "sha1 abc  /not/wanted", "passwd broken", "group x:y:z"]).snapshot
    assert found.paths == {} and found.passwd == {} and found.groups == {}


# ---------- the decisions ----------


def test_directory_in_place_needs_nothing():
    entry = {"type": "directory", "user": "root", "group": "hx", "mode": 750}
    assert ops.directory_fix(entry, "/d", "root", "hx", "750") == []


def test_absent_directory_is_created_owned_and_moded_in_one_command():
    steps_ = ops.directory_fix({"type": None}, "/opt/h x", "root", "hx", "750")
    assert (
        ops.joined(steps_).get_raw_value()
        == "mkdir -p '/opt/h x' && chmod 750 '/opt/h x' && chown root:hx '/opt/h x'"
    )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"type": "directory", "user": "root", "group": "hx", "mode": 777}, "chmod 750 /d"),
        ({"type": "directory", "user": "nobody", "group": "hx", "mode": 750}, "chown root:hx /d"),
        (
            {"type": "directory", "user": "root", "group": "root", "mode": 755},
            "chmod 750 /d && chown root:hx /d",
        ),
    ],
)
def test_drifted_directory_gets_only_the_repair_it_needs(entry, expected):
    assert ops.joined(ops.directory_fix(entry, "/d", "root", "hx", "750")).get_raw_value() == expected


def test_attributes_match_ignores_what_is_not_managed():
    entry = {"type": "file", "user": "root", "group": "hx", "mode": 640}
    assert ops.attributes_match(entry, None, None, None)
    assert ops.attributes_match(entry, "root", "hx", "640")
    assert not ops.attributes_match(entry, "root", "hx", "644")
    assert not ops.attributes_match(entry, "root", "root", None)


def test_content_matches_on_sha1_of_the_rendering():
    text = "port: 4000\n"
    entry = {"type": "file", "sha1": hashlib.sha1(text.encode()).hexdigest()}
    assert ops.content_matches(entry, text)
    assert not ops.content_matches(entry, text + "x")
    assert not ops.content_matches({"type": None}, text)
    assert not ops.content_matches({"type": "file"}, text)  # no hash taken: never trusted
    assert not ops.content_matches(None, text)


def test_a_path_the_snapshot_does_not_cover_is_not_trusted():
    facts = hxfacts.Snapshot(paths={"/a": {"type": None}})
    assert ops.snapshot_of(facts, "/a") == {"type": None}
    assert ops.snapshot_of(facts, "/b") is None
    assert ops.snapshot_of(None, "/a") is None


def test_mode_int_is_pyinfras_representation():
    assert ops.mode_int("640") == 640 and ops.mode_int(755) == 755 and ops.mode_int(None) is None
    with pytest.raises(Exception, match="octal"):
        ops.mode_int("rw-r--r--")


def test_snapshot_covers_every_entry_of_the_globbed_directories():
    command = "; ".join(hxfacts.snapshot_commands([], [], "", ["/opt/hx"], ["/opt/hx/s s"]))
    assert "for p in /opt/hx/* '/opt/hx/s s'/*; do" in command  # the glob stays unquoted
    assert "sha1sum '/opt/hx/s s'/*" in command and "sha1sum /opt/hx/*" not in command
    globbed, hashed = hxfacts.snapshot_globs(SETTINGS)
    assert globbed == ["/opt/hx"] and hashed == [SETTINGS.scripts_dir]
    facts = snapshot(
        [
            "want /opt/hx/s s/rollback.sh",
            "stat regular file|root|root|700|/opt/hx/s s/rollback.sh",
            "sha1 ab12  /opt/hx/s s/rollback.sh",
        ]
    )
    assert facts.snapshot.paths["/opt/hx/s s/rollback.sh"] == {
        "type": "file",
        "user": "root",
        "group": "root",
        "mode": 700,
        "sha1": "ab12",
    }


def test_a_changed_path_is_forgotten_so_later_operations_ask_the_host():
    facts = hxfacts.Snapshot(paths={"/c.yaml": {"type": "file"}, "/d": {"type": None}})
    ops.forget(facts, "/c.yaml")
    ops.forget(facts, "/never-covered")
    assert ops.snapshot_of(facts, "/c.yaml") is None and ops.snapshot_of(facts, "/d") == {"type": None}
    ops.forget(None, "/x")  # no snapshot at all
    ops.forget(facts, "/d", executing=False)  # planning: the host has not changed yet
    assert ops.snapshot_of(facts, "/d") == {"type": None}
