"""Values that would harm the host: an existing account as the service user, base_dir on a
system path. Pure rules; the settings model calls them at plan time, and the preflight calls
`service_user_account_problem` with the host's own passwd entry.

Why they matter: the deploy makes `service_user` a no-login system account (shell /bin/false,
home /nonexistent) and owns the logs with it, and it enforces root:root ownership and strips
group/world write bits on EVERYTHING under base_dir on every run (hxgw.layout). Pointing either
at something that already exists would rewrite an account or a system tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The account tasks/layout.py creates: anything else by this name is someone else's account.
SERVICE_SHELL = "/bin/false"
SERVICE_HOME = "/nonexistent"
FIRST_REGULAR_UID = 1000  # Debian's FIRST_UID: below it are system accounts (adduser.conf)

# Debian's base-passwd accounts and the services a gateway or its neighbours commonly run.
SYSTEM_ACCOUNTS = frozenset(
    """
    root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc gnats
    nobody _apt systemd-network systemd-resolve systemd-timesync systemd-coredump messagebus
    sshd syslog polkitd tss uuidd dnsmasq avahi ntp chrony _chrony postfix postgres mysql redis
    nginx haproxy ollama docker ubuntu debian admin operator halt shutdown ftp
    """.split()
)

# base_dir may not be these directories themselves: the deploy would take over the whole tree.
SYSTEM_DIRS = frozenset(
    """
    / /bin /boot /dev /etc /home /lib /lib32 /lib64 /libx32 /media /mnt /opt /proc /root /run
    /sbin /srv /sys /tmp /usr /usr/local /usr/local/bin /usr/local/lib /usr/local/sbin
    /usr/local/share /var /var/cache /var/lib /var/log /var/opt /var/spool /var/tmp /var/www
    """.split()
)
# ... nor anything under these: the OS's own files, kernel interfaces, or memory-backed trees
# that vanish at reboot. /usr/local is the place for local software and stays allowed.
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
                "/root", "/run", "/sbin", "/sys", "/usr", "/var/run", "/var/lock", "/dev/shm")  # fmt: skip
ALLOWED_UNDER_SYSTEM_TREES = ("/usr/local",)


def base_dir_problem(path: str) -> str | None:
    """Why an absolute, normalised base_dir would harm the host, or None."""
    fix = "choose a directory of its own, e.g. base_dir = '/opt/hx-gateway'"
    if path in SYSTEM_DIRS:
        return (
            f"{path!r} is a system directory; the deploy owns and re-permissions everything "
            f"under base_dir (root:root, no group/world write) on every run; {fix}"
        )
    if any(path == allowed or path.startswith(allowed + "/") for allowed in ALLOWED_UNDER_SYSTEM_TREES):
        return None
    for tree in SYSTEM_TREES:
        if path.startswith(tree + "/"):
            return f"{path!r} is under {tree}, which belongs to the operating system; {fix}"
    return None


def service_user_name_problem(name: str) -> str | None:
    """Why a service_user name is an account the system already has for another job, or None."""
    if name in SYSTEM_ACCOUNTS or name.startswith("systemd-"):
        return (
            f"{name!r} is an existing system account; the deploy would take it over as the "
            "gateway's no-login service account (shell, home, group) and give it the logs: "
            "use an account of its own, e.g. service_user = 'hx-gateway'"
        )
    return None


def service_user_account_problem(name: str, entry: Mapping[str, Any] | None) -> str | None:
    """Why the host's existing account `name` must not become the service user, or None.

    `entry` is the host's passwd entry for `name` (keys from `getent passwd`: uid, gid, home,
    shell; uid may be absent), or None when the host has no such account (the deploy creates
    it). Only an account shaped like the one the deploy creates (a system uid, shell /bin/false,
    home /nonexistent) is taken as the deploy's own from an earlier run.
    """
    static = service_user_name_problem(name)
    if static or entry is None:
        return static
    uid = entry.get("uid")
    differences = []
    if uid is not None and not 0 < int(uid) < FIRST_REGULAR_UID:
        differences.append(f"uid {uid} is not a system uid")
    if entry.get("shell") != SERVICE_SHELL:
        differences.append(f"shell {entry.get('shell')!r} is not {SERVICE_SHELL!r}")
    if entry.get("home") != SERVICE_HOME:
        differences.append(f"home {entry.get('home')!r} is not {SERVICE_HOME!r}")
    if not differences:
        return None
    return (
        f"service_user {name!r} is an existing account the deploy did not create "
        f"({'; '.join(differences)}); the deploy would change its shell and home and give it the "
        "gateway's logs: set service_user to a name that does not exist yet (e.g. 'hx-gateway') "
        "or remove that account if it is a leftover"
    )


def parse_passwd_line(line: str) -> dict[str, Any] | None:
    """A `getent passwd` line as {name, uid, gid, home, shell}, or None if it is not one."""
    fields = line.rstrip("\n").split(":")
    if len(fields) != 7 or not fields[2].isdigit() or not fields[3].isdigit():
        return None
    return {
        "name": fields[0],
        "uid": int(fields[2]),
        "gid": int(fields[3]),
        "home": fields[5],
        "shell": fields[6],
    }
