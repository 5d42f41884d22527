"""Drop-in operations that cost no round trip when this run's snapshot shows nothing to do.

pyinfra 3 caches no fact: every operation gathers its own facts (a `files.template` runs three
commands to find out that nothing changed), at plan time when its change is asked for and again
when it runs. The precheck takes ONE snapshot of every path the deploy manages
(hxops.facts.GatewayHost). Each operation here takes the arguments of the pyinfra operation it
stands for, plus that `snapshot`, and compares every attribute the pyinfra operation manages:
when the snapshot already shows the wanted state it yields nothing (the run lists it as "No
change"); otherwise it hands over to pyinfra's own operation, which gathers fresh facts, shows
`--diff` and repairs the drift. A path the snapshot does not cover (no snapshot, a path added
later) is always handed over. tests/unit/test_snapshot_ops.py holds each attribute's drift test.

The snapshot is taken at the start of this run's plan, like every other plan-time decision of the
deploy (the restart, the installed releases): it is current unless something else changes the
host while the deploy runs. An operation here that changes a path drops it from the snapshot, so a
later operation on the same path asks the host; an operation outside this module that changes a
covered path must not be followed by one of these on that path.
"""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from io import StringIO

from pyinfra import host, state
from pyinfra.api import FileUploadCommand, OperationError, QuoteString, StringCommand, operation
from pyinfra.api.util import get_template
from pyinfra.facts.files import Sha1File
from pyinfra.operations import files, server
from pyinfra.operations.util import files as file_utils

from hxops.facts import Account, Snapshot


def snapshot_of(snapshot: Snapshot | None, path: str) -> dict | None:
    """The snapshot's entry for `path` ({"type": None} when absent), None when not covered."""
    return snapshot.entry(path) if snapshot else None


def forget(snapshot: Snapshot | None, path: str, executing: bool = True) -> None:
    """This run changes `path`: from now on the snapshot no longer answers for it, so a later
    operation on the same path (config.yaml's content, then its mode) asks the host afresh.
    Only once the change really runs: while planning (change detection, will_change) the host
    is still as the snapshot saw it."""
    if executing and snapshot:
        snapshot.forget(path)


def mode_int(mode) -> int | None:
    """pyinfra's representation of a mode: "640" -> 640 (the octal digits, read as decimal)."""
    if mode is None:
        return None
    if isinstance(mode, int):
        return mode
    text = str(mode)
    if not text.isdigit():
        raise OperationError(f"mode {mode!r} is not an octal mode such as '640'")
    return int(text)


def attributes_match(entry: dict, user: str | None, group: str | None, mode) -> bool:
    """Owner, group and mode of a snapshot entry are as wanted (None: not managed)."""
    return (
        (user is None or entry.get("user") == user)
        and (group is None or entry.get("group") == group)
        and (mode is None or entry.get("mode") == mode_int(mode))
    )


def directory_fix(entry: dict, path: str, user: str | None, group: str | None, mode) -> list[StringCommand]:
    """The commands that bring an absent or drifted directory to the wanted state.

    Pure: decided from the snapshot entry alone. Not for a path that is something else than a
    directory (the caller hands that to files.directory, which refuses it clearly).
    """
    steps = []
    if entry["type"] is None:
        steps.append(StringCommand("mkdir", "-p", QuoteString(path)))
    if mode is not None and (entry["type"] is None or entry.get("mode") != mode_int(mode)):
        steps.append(file_utils.chmod(path, mode_int(mode)))
    if (user or group) and (entry["type"] is None or not attributes_match(entry, user, group, None)):
        steps.append(file_utils.chown(path, user, group))
    return steps


def joined(steps: list[StringCommand]) -> StringCommand:
    """One command (one round trip) for several: `a && b && c`."""
    bits: list = []
    for step in steps:
        bits += ["&&", step] if bits else [step]
    return StringCommand(*bits)


def user_drift(
    snapshot: Snapshot,
    user: str,
    group: str | None = None,
    groups: list[str] | None = None,
    home: str | None = None,
    shell: str | None = None,
    comment: str | None = None,
) -> list[str]:
    """What server.user would change on an existing account, from the snapshot (pure).

    Every attribute server.user compares on an existing account (pyinfra 3.10): presence, home,
    shell, primary group, supplementary groups and comment. (uid and system apply only when it
    creates the account, as in server.user.) ["absent"] when there is no such account.
    """
    account: Account | None = snapshot.passwd.get(user)
    if account is None:
        return ["absent"]
    drift = []
    if home is not None and account.home != home:
        drift.append("home")
    if shell is not None and account.shell != shell:
        drift.append("shell")
    if group is not None and snapshot.groups.get(group) != account.gid:
        drift.append("group")
    if groups and set(account.groups) != set(groups):  # server.user: `if groups:`
        drift.append("groups")
    if comment is not None and account.comment != comment:
        drift.append("comment")
    return drift


def render(src, data: dict) -> str:
    """Render a template exactly as files.template does (same loader, same injected names)."""
    data = dict(data)
    data.setdefault("host", host)
    data.setdefault("state", state)
    data.setdefault("inventory", state.inventory)
    return get_template(src).render(data)


def content_matches(entry: dict | None, text: str) -> bool:
    return bool(
        entry
        and entry["type"] == "file"
        and entry.get("sha1") == hashlib.sha1(text.encode("utf-8")).hexdigest()
    )


@operation()
def directory(path: str, user: str | None = None, group: str | None = None, mode=None, snapshot=None):
    """files.directory(path, user, group, mode): presence, owner, group, mode; one command when
    the snapshot shows drift."""
    entry = snapshot_of(snapshot, path)
    if entry is None or entry["type"] not in (None, "directory"):
        forget(snapshot, path, state.is_executing)
        yield from files.directory._inner(path=path, user=user, group=group, mode=mode)
        return
    steps = directory_fix(entry, path, user, group, mode)
    if steps:
        forget(snapshot, path, state.is_executing)
        yield joined(steps)
    else:
        host.noop(f"directory {path} already exists")


@operation()
def template(
    src, dest: str, user: str | None = None, group: str | None = None, mode=None, snapshot=None, **data
):
    """files.template(src, dest, user, group, mode, **data): content (the snapshot's sha1 of
    the rendering), owner, group, mode."""
    entry = snapshot_of(snapshot, dest)
    if (
        entry is not None
        and content_matches(entry, render(src, data))
        and attributes_match(entry, user, group, mode)
    ):
        host.noop(f"file {dest} is already up to date")
        return
    forget(snapshot, dest, state.is_executing)
    text = render(src, data)
    if not state.is_executing or host.get_fact(Sha1File, path=dest) == _sha1(text):
        # Planning (files.template shows --diff), or only the owner or mode drifted.
        yield from files.template._inner(src=src, dest=dest, user=user, group=group, mode=mode, **data)
        return
    yield from replace_atomically(dest, text, user, group, mode)


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def replace_atomically(dest: str, text: str, user=None, group=None, mode=None):
    """Commands that write `text` to `dest` so that a reader (the gateway, systemd, a shell) only
    ever sees the old file or the new one, never a part: upload beside it, give it the wanted
    owner and mode (else the old file's), rename over it. pyinfra's SFTP upload writes `dest` in
    place (its temporary file only under sudo), so a killed run could leave half a config."""
    d, t = (
        shlex.quote(dest),
        shlex.quote(posixpath.join(posixpath.dirname(dest), f".{posixpath.basename(dest)}.hx-new")),
    )
    yield StringCommand(f"rm -f {t}")
    yield FileUploadCommand(
        StringIO(text), posixpath.join(posixpath.dirname(dest), f".{posixpath.basename(dest)}.hx-new")
    )
    keep = f"if [ -e {d} ]; then chown --reference={d} {t} && chmod --reference={d} {t}; fi"
    steps = [keep]
    if user or group:
        steps.append(f"chown {shlex.quote(user or '')}{':' + shlex.quote(group) if group else ''} {t}")
    if mode is not None:
        steps.append(f"chmod {mode_int(mode)} {t}")
    steps.append(f"mv -f {t} {d}")
    yield StringCommand(" && ".join(f"{{ {step}; }}" for step in steps))


@operation()
def file(path: str, user: str | None = None, group: str | None = None, mode=None, snapshot=None):
    """files.file(path, user, group, mode) for a file that must exist (its content is not read)."""
    entry = snapshot_of(snapshot, path)
    if entry is not None and entry["type"] == "file" and attributes_match(entry, user, group, mode):
        host.noop(f"file {path} already exists")
        return
    forget(snapshot, path, state.is_executing)
    yield from files.file._inner(path=path, user=user, group=group, mode=mode)


@operation()
def link(path: str, target: str, user: str | None = None, group: str | None = None, snapshot=None):
    """files.link(path, target, user, group): a symlink to `target`, switched atomically (a new
    link beside it renamed over it: the path always names the old target or the new one, where
    files.link removes it first)."""
    entry = snapshot_of(snapshot, path)
    if (
        entry is not None
        and entry["type"] == "link"
        and entry.get("target") == target
        and attributes_match(entry, user, group, None)
    ):
        host.noop(f"link {path} already exists")
        return
    forget(snapshot, path, state.is_executing)
    if entry is not None and entry["type"] == "link" and entry.get("target") == target:
        yield from files.link._inner(path=path, target=target, user=user, group=group)  # owner only
        return
    p, new = shlex.quote(path), shlex.quote(f"{path}.hx-new")
    yield StringCommand(
        f"if [ -L {p} ] || [ ! -e {p} ]; then ln -sfn {shlex.quote(target)} {new} && mv -Tf {new} {p}; "
        f'else echo "{path} exists and is not a link: move it away" >&2; exit 1; fi'
    )
    if user or group:
        yield file_utils.chown(path, user, group, dereference=False)


@operation()
def group(group: str, system: bool = False, snapshot=None):
    """server.group(group, system): presence (`system` applies only when it creates the group,
    as in server.group)."""
    if snapshot is not None and snapshot.covers_accounts and group in snapshot.groups:
        host.noop(f"group {group} exists")
        return
    yield from server.group._inner(group=group, system=system)


@operation()
def user(
    user: str,
    group: str | None = None,
    groups: list[str] | None = None,
    home: str | None = None,
    shell: str | None = None,
    comment: str | None = None,
    system: bool = False,
    create_home: bool = False,
    ensure_home: bool = True,
    snapshot=None,
):
    """server.user(...) for a service account, compared on every attribute server.user manages
    (user_drift). ensure_home=True always hands over: the snapshot does not look at the home."""
    if snapshot is not None and snapshot.covers_accounts and not ensure_home:
        if not user_drift(snapshot, user, group, groups, home, shell, comment):
            host.noop(f"user {user} exists")
            return
    yield from server.user._inner(
        user=user,
        group=group,
        groups=groups,
        home=home,
        shell=shell,
        comment=comment,
        system=system,
        create_home=create_home,
        ensure_home=ensure_home,
    )
