"""Whose account is `service_user`? The gateway must run as the account the deploy created.

Pure: decided from the host's passwd entry (hxops.facts.Account or anything with uid, home,
shell and comment). A `service_user` that names an existing account the deploy did not create
(root, www-data, an operator's login) would have its shell, home and group rewritten and the
gateway's files handed to it: refused before anything on the host changes.
"""

from __future__ import annotations

# The deploy creates the account with these (tasks/layout.py); the comment marks it as ours.
COMMENT = "HX gateway service (managed by the hx deploy)"
HOME = "/nonexistent"
SHELL = "/bin/false"
SYSTEM_UIDS = range(100, 1000)  # Debian's `useradd --system` range


def created_by_the_deploy(name: str, account, log_dir_owner: str | None) -> bool:
    """The account carries the deploy's comment, or owns the gateway's log directory (which only
    the deploy hands to it: an account whose attributes drifted is still ours), or is one an
    earlier deploy made before the comment existed: a system account with no comment, home
    /nonexistent and shell /bin/false."""
    if account.comment == COMMENT or log_dir_owner == name:
        return True
    legacy = account.uid in SYSTEM_UIDS and account.home == HOME and account.shell == SHELL
    return not account.comment and legacy


def service_user_problem(name: str, account, log_dir_owner: str | None = None) -> str | None:
    """None when `name` is free or is the deploy's own account; else what is wrong and the fix.
    `log_dir_owner`: the owner of the gateway's log directory on the host (None: no such dir)."""
    if account is None or created_by_the_deploy(name, account, log_dir_owner):
        return None
    return (
        f"service_user {name!r} is an existing account the deploy did not create (uid {account.uid}, "
        f"home {account.home}, shell {account.shell}): the deploy would rewrite it and hand it the "
        "gateway's files. Set service_user to a new name (the default is hx-gateway)"
    )
