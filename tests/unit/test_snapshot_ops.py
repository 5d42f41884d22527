"""hxops.ops decides from the snapshot, attribute by attribute, as the pyinfra operation it stands
for would: any drift hands over to pyinfra's operation (which repairs it: tests/e2e/test_snapshot_ops.py).
And hxgw.accounts: a service_user that is somebody else's account is refused."""

from __future__ import annotations

import hashlib

import pytest

from hxgw import accounts
from hxops import ops
from hxops.facts import Account, Snapshot

OURS = Account(999, 998, accounts.COMMENT, "/nonexistent", "/bin/false", ("adm",))
SNAPSHOT = Snapshot(passwd={"hx": OURS}, groups={"hx": 998, "other": 5}, covers_accounts=True)
WANTED = {
    "group": "hx",
    "groups": ["adm"],
    "home": "/nonexistent",
    "shell": "/bin/false",
    "comment": accounts.COMMENT,
}


def test_the_account_as_wanted_has_no_drift():
    assert ops.user_drift(SNAPSHOT, "hx", **WANTED) == []


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("home", "/home/hx"),
        ("shell", "/bin/bash"),
        ("group", "other"),
        ("groups", ["adm", "sudo"]),
        ("comment", "x"),
    ],
)
def test_each_attribute_server_user_manages_is_compared(attribute, value):
    assert ops.user_drift(SNAPSHOT, "hx", **{**WANTED, attribute: value}) == [attribute]


def test_an_absent_account_and_unmanaged_attributes():
    assert ops.user_drift(SNAPSHOT, "nobody") == ["absent"]
    assert ops.user_drift(SNAPSHOT, "hx") == []  # nothing asked for, nothing compared
    assert ops.user_drift(SNAPSHOT, "hx", groups=[]) == []  # server.user: `if groups:`


@pytest.mark.parametrize(
    ("entry", "drift"),
    [
        ({"type": None}, "mkdir"),
        ({"type": "directory", "user": "root", "group": "hx", "mode": 700}, "chmod"),
        ({"type": "directory", "user": "nobody", "group": "hx", "mode": 750}, "chown"),
        ({"type": "directory", "user": "root", "group": "root", "mode": 750}, "chown"),
    ],
)
def test_directory_presence_mode_owner_and_group(entry, drift):
    command = ops.joined(ops.directory_fix(entry, "/d", "root", "hx", "750")).get_raw_value()
    assert drift in command


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "file", "user": "nobody", "group": "hx", "mode": 640},
        {"type": "file", "user": "root", "group": "root", "mode": 640},
        {"type": "file", "user": "root", "group": "hx", "mode": 600},
    ],
)
def test_file_and_template_owner_group_and_mode(entry):
    assert ops.attributes_match(
        {"type": "file", "user": "root", "group": "hx", "mode": 640}, "root", "hx", "640"
    )
    assert not ops.attributes_match(entry, "root", "hx", "640")


def test_template_content_and_link_target():
    text = "x: 1\n"
    entry = {"type": "file", "sha1": hashlib.sha1(text.encode()).hexdigest()}
    assert ops.content_matches(entry, text) and not ops.content_matches(entry, "x: 2\n")
    assert not ops.content_matches({"type": "link", "sha1": entry["sha1"]}, text)  # presence as a file


def test_a_snapshot_without_accounts_never_answers_for_them():
    assert not Snapshot().covers_accounts  # hxops.ops.user/group then ask the host


def test_service_user_that_is_free_or_ours_passes():
    assert accounts.service_user_problem("hx", None) is None
    assert accounts.service_user_problem("hx", OURS) is None
    legacy = Account(998, 998, "", "/nonexistent", "/bin/false")  # made before the comment existed
    assert accounts.service_user_problem("hx", legacy) is None
    drifted = Account(998, 998, "drifted", "/tmp", "/bin/bash")  # still owns the gateway's logs
    assert accounts.service_user_problem("hx", drifted, log_dir_owner="hx") is None


@pytest.mark.parametrize(
    "account",
    [
        Account(0, 0, "root", "/root", "/bin/bash"),
        Account(33, 33, "www-data", "/var/www", "/usr/sbin/nologin"),
        Account(65534, 65534, "nobody", "/nonexistent", "/usr/sbin/nologin"),
        Account(1000, 1000, "", "/nonexistent", "/bin/false"),  # a login uid
    ],
)
def test_service_user_that_is_somebody_elses_account_is_refused(account):
    problem = accounts.service_user_problem("www-data", account, log_dir_owner=None)
    assert problem.startswith("service_user 'www-data' is an existing account the deploy did not create")
    assert "Set service_user to a new name" in problem
