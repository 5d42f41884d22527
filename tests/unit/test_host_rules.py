"""Tests for hxgw.host_rules: the pure rule the preflight applies to the host's own passwd entry
for service_user, and the base_dir places that belong to the operating system."""

from __future__ import annotations

import pytest

from hxgw.host_rules import base_dir_problem, parse_passwd_line, service_user_account_problem

OURS = parse_passwd_line("hx-gateway:x:998:998::/nonexistent:/bin/false")


def test_an_absent_account_or_the_deploys_own_is_fine() -> None:
    assert service_user_account_problem("hx-gateway", None) is None
    assert OURS == {
        "name": "hx-gateway",
        "uid": 998,
        "gid": 998,
        "home": "/nonexistent",
        "shell": "/bin/false",
    }
    assert service_user_account_problem("hx-gateway", OURS) is None
    assert (
        service_user_account_problem(
            "hx-gateway", {"gid": 998, "home": "/nonexistent", "shell": "/bin/false"}
        )
        is None
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("alice:x:1000:1000:Alice:/home/alice:/bin/bash", ["uid 1000 is not a system uid", "shell '/bin/bash'", "home '/home/alice'"]),
        ("svc:x:120:120::/var/lib/svc:/usr/sbin/nologin", ["shell '/usr/sbin/nologin' is not '/bin/false'", "home '/var/lib/svc'"]),
        ("toor:x:0:0::/nonexistent:/bin/false", ["uid 0 is not a system uid"]),
    ],
)  # fmt: skip
def test_someone_elses_account_is_refused(line: str, expected: list[str]) -> None:
    entry = parse_passwd_line(line)
    problem = service_user_account_problem(entry["name"], entry)
    assert problem is not None
    assert f"service_user {entry['name']!r} is an existing account the deploy did not create" in problem
    assert all(part in problem for part in expected), problem
    assert "set service_user to a name that does not exist yet" in problem


def test_a_system_account_is_refused_even_before_the_host_is_asked() -> None:
    assert "existing system account" in service_user_account_problem("www-data", None)
    assert "existing system account" in service_user_account_problem("sshd", OURS)


def test_passwd_lines_that_are_not_entries() -> None:
    assert parse_passwd_line("") is None
    assert parse_passwd_line("a:x:notanumber:1::/:/bin/sh") is None


@pytest.mark.parametrize(
    "path", ["/opt/hx", "/srv/hx", "/usr/local/hx", "/var/lib/hx", "/home/ops/hx", "/tmp/x/gw"]
)
def test_base_dirs_of_their_own_are_fine(path: str) -> None:
    assert base_dir_problem(path) is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/etc", "system directory"), ("/usr/local", "system directory"), ("/etc/hx", "under /etc"),
     ("/usr/share/hx", "under /usr"), ("/boot/hx", "under /boot"), ("/proc/hx", "under /proc"),
     ("/root/hx", "under /root"), ("/dev/shm/hx", "under /dev"), ("/var/run/hx", "under /var/run")],
)  # fmt: skip
def test_system_places_are_refused(path: str, expected: str) -> None:
    problem = base_dir_problem(path)
    assert problem is not None and expected in problem and "base_dir = '/opt/hx-gateway'" in problem
