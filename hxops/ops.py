"""Drop-in operations that cost no round trip when this run's snapshot shows nothing to do.

pyinfra 3 caches no fact: every operation gathers its own facts (a `files.template` runs three
commands to find out that nothing changed), at plan time when its change is asked for and again
when it runs. The precheck takes ONE snapshot of every path the deploy manages
(hxops.facts.GatewayHost). Each operation here takes the same arguments as the pyinfra operation
it stands for: when the snapshot already shows the wanted state it yields nothing (the run lists
it as "No change", as before); otherwise it hands over to pyinfra's own operation, which gathers
fresh facts, shows `--diff` and repairs the drift as before. A path the snapshot does not cover
(a task file run on its own, a path added later) is always handed over.

The snapshot is taken at the start of this run's plan, like every other plan-time decision of the
deploy (restart_needed, the installed releases): it is current unless something else changes the
host while the deploy runs. An operation here that changes a path drops it from the snapshot, so a
later operation on the same path asks the host; an operation outside this module that changes a
covered path must not be followed by one of these on that path.
"""

from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager

from pyinfra import host, state
from pyinfra.api import OperationError, QuoteString, StringCommand, operation
from pyinfra.api.util import get_template
from pyinfra.operations import files, server
from pyinfra.operations.util import files as file_utils

from hxops import plan

# pyinfra 3.10 plans its hosts in parallel greenlets of one process, and numbers each operation
# from ONE shared state.current_op_file_number plus the caller's line numbers.
_PLANNING = threading.Lock()  # gevent's cooperative lock under pyinfra (monkey-patched)


@contextmanager
def one_task_at_a_time():
    """Plan one task file of one host at a time, with its own op-order number.

    deploy.py gives each task file its own number (state.current_op_file_number). A host whose
    greenlet yields inside a task (any fact's round trip) while another host's greenlet moves the
    shared number on would create its next operations under the other task's number: the same
    operation then gets different hashes on different hosts, and pyinfra runs it for one host and
    then for the others (seen: the restart of a three-gateway first deploy ran as two operations,
    one gateway after the other), or finds a cycle. Hosts still interleave between task files,
    and their operations still run in parallel.
    """
    with _PLANNING:
        yield


def _facts() -> dict:
    return plan.for_host(host).facts or {}


def snapshot_of(facts: dict, path: str) -> dict | None:
    """The snapshot's entry for `path` ({"type": None} when absent), None when not covered."""
    return (facts.get("paths") or {}).get(path)


def forget(facts: dict, path: str, executing: bool = True) -> None:
    """This run changes `path`: from now on the snapshot no longer answers for it, so a later
    operation on the same path (config.yaml's content, then its mode) asks the host afresh.
    Only once the change really runs: while planning (change detection, will_change) the host
    is still as the snapshot saw it."""
    if executing:
        (facts.get("paths") or {}).pop(path, None)


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


def user_matches(facts: dict, user: str, group: str | None, home: str | None, shell: str | None) -> bool:
    """The account exists with the home, shell and primary group that server.user would check."""
    entry = (facts.get("passwd") or {}).get(user)
    if entry is None:
        return False
    if group is not None and (facts.get("groups") or {}).get(group) != entry["gid"]:
        return False
    return (home is None or entry["home"] == home) and (shell is None or entry["shell"] == shell)


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
def directory(path: str, user: str | None = None, group: str | None = None, mode=None):
    """files.directory(path, user, group, mode), one command when the snapshot shows drift."""
    facts = _facts()
    entry = snapshot_of(facts, path)
    if entry is None or entry["type"] not in (None, "directory"):
        forget(facts, path, state.is_executing)
        yield from files.directory._inner(path=path, user=user, group=group, mode=mode)
        return
    steps = directory_fix(entry, path, user, group, mode)
    if steps:
        forget(facts, path, state.is_executing)
        yield joined(steps)
    else:
        host.noop(f"directory {path} already exists")


@operation()
def template(src, dest: str, user: str | None = None, group: str | None = None, mode=None, **data):
    """files.template(src, dest, user, group, mode, **data): compared with the snapshot's sha1."""
    facts = _facts()
    entry = snapshot_of(facts, dest)
    if (
        entry is not None
        and content_matches(entry, render(src, data))
        and attributes_match(entry, user, group, mode)
    ):
        host.noop(f"file {dest} is already up to date")
        return
    forget(facts, dest, state.is_executing)
    yield from files.template._inner(src=src, dest=dest, user=user, group=group, mode=mode, **data)


@operation()
def file(path: str, user: str | None = None, group: str | None = None, mode=None):
    """files.file(path, user, group, mode) for a file that must exist (its content is not read)."""
    facts = _facts()
    entry = snapshot_of(facts, path)
    if entry is not None and entry["type"] == "file" and attributes_match(entry, user, group, mode):
        host.noop(f"file {path} already exists")
        return
    forget(facts, path, state.is_executing)
    yield from files.file._inner(path=path, user=user, group=group, mode=mode)


@operation()
def link(path: str, target: str, user: str | None = None, group: str | None = None):
    """files.link(path, target, user, group): a symlink to `target`."""
    facts = _facts()
    entry = snapshot_of(facts, path)
    if (
        entry is not None
        and entry["type"] == "link"
        and entry.get("target") == target
        and attributes_match(entry, user, group, None)
    ):
        host.noop(f"link {path} already exists")
        return
    forget(facts, path, state.is_executing)
    yield from files.link._inner(path=path, target=target, user=user, group=group)


@operation()
def group(group: str, system: bool = False):
    """server.group(group, system)."""
    facts = _facts()
    if "groups" in facts and group in facts["groups"]:
        host.noop(f"group {group} exists")
        return
    yield from server.group._inner(group=group, system=system)


@operation()
def user(
    user: str,
    group: str | None = None,
    home: str | None = None,
    shell: str | None = None,
    system: bool = False,
    create_home: bool = False,
    ensure_home: bool = True,
):
    """server.user(...) for a service account: compared on its home, shell and primary group."""
    facts = _facts()
    if "passwd" in facts and user_matches(facts, user, group, home, shell):
        host.noop(f"user {user} exists")
        return
    yield from server.user._inner(
        user=user,
        group=group,
        home=home,
        shell=shell,
        system=system,
        create_home=create_home,
        ensure_home=ensure_home,
    )
