"""The gateway host's directory layout and its production ownership (the seed's enhancement #005).

root owns code and config; the service user can read its config (through the group) and write
only its logs; nothing is world-writable.
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass

from hxgw.settings import Settings


@dataclass(frozen=True)
class Entry:
    path: str
    user: str
    group: str
    mode: str
    why: str


def auth_module_file(settings: Settings) -> str:
    """The key check LiteLLM loads from beside config.yaml (templates/hx_auth.py)."""
    return posixpath.join(settings.config_dir, "hx_auth.py")


def clients_file(settings: Settings) -> str:
    """The clients' limits and key hashes hx_auth.py reads (hxgw/clients.py gateway_table)."""
    return posixpath.join(settings.config_dir, "clients.json")


def directories(settings: Settings) -> list[Entry]:
    svc = settings.service_user
    base = settings.base_dir
    return [
        Entry(base, "root", "root", "755", "the gateway's tree"),
        Entry(settings.gateway_dir, "root", "root", "755", "code: venvs and wheels, root-owned"),
        Entry(settings.venv_root, "root", "root", "755", "one venv per release, for rollback"),
        Entry(posixpath.join(base, "config"), "root", "root", "755", "config root"),
        Entry(settings.config_dir, "root", svc, "750", "config.yaml and gateway.env: group-readable"),
        Entry(posixpath.join(base, "scripts"), "root", "root", "755", "scripts root"),
        Entry(posixpath.join(base, "scripts", "service"), "root", "root", "755", "scripts"),
        Entry(settings.scripts_dir, "root", "root", "755", "start/stop/status scripts"),
        Entry(posixpath.join(base, "logs"), "root", "root", "755", "logs root"),
        Entry(settings.log_dir, svc, svc, "750", "the only place the service may write"),
    ]


@dataclass(frozen=True)
class Tree:
    """A subtree whose every entry (its root included) must have this owner and group and none of
    the `forbidden` permission bits (octal, as in `find -perm /MODE`).

    The exact modes of the directories and of the managed files are set by their own operations;
    a Tree states what must hold for everything inside, including files no operation names (the
    venvs, anything an operator dropped in). Symlinks are checked for owner and group only.
    """

    path: str
    user: str
    group: str
    forbidden: str
    why: str


def trees(settings: Settings) -> list[Tree]:
    """The production permission model (the seed's enhancement #005), most specific first: a path
    belongs to the first tree that contains it, so config and logs are carved out of the rest."""
    svc = settings.service_user
    return [
        Tree(
            settings.config_dir, "root", svc, "027", "config and key: root's, readable by the service group"
        ),
        Tree(settings.log_dir, svc, svc, "002", "the service's own files, never world-writable"),
        Tree(settings.base_dir, "root", "root", "022", "code, venvs and scripts: only root writes"),
    ]


def _find(settings: Settings, index: int, *tests: str) -> str:
    """`find TREE [-path CARVED -prune -o]... TESTS`, every word shell-quoted."""
    all_trees = trees(settings)
    tree = all_trees[index]
    # -ignore_readdir_race: a file that vanishes between find reading its name and looking at it
    # (a log rotated, a venv being built) is not an error.
    words = ["find", tree.path, "-ignore_readdir_race"]
    for inner in all_trees[:index]:
        if inner.path.startswith(tree.path + "/"):
            words += ["-path", inner.path, "-prune", "-o"]
    return " ".join(shlex.quote(word) for word in [*words, *tests])


def _owner_drift(tree: Tree) -> list[str]:
    return ["(", "!", "-user", tree.user, "-o", "!", "-group", tree.group, ")"]


def _mode_drift(tree: Tree) -> list[str]:
    return ["(", "!", "-type", "l", "-perm", f"/{tree.forbidden}", ")"]


def drift_scan_command(settings: Settings, limit: int = 20) -> str:
    """One shell command printing `drift <tree index> <path>` for up to `limit` drifted paths per
    tree, then `drift_count <tree index> <n>`. Prints nothing for a clean or absent tree."""
    parts = []
    for index, tree in enumerate(trees(settings)):
        find = _find(settings, index, "(", *_owner_drift(tree), "-o", *_mode_drift(tree), ")", "-print")
        parts.append(
            f"if [ -d {shlex.quote(tree.path)} ]; then {find} 2>/dev/null | "
            f"awk -v t={index} -v n={int(limit)} "
            '\'NR<=n {print "drift " t " " $0} END {if (NR) print "drift_count " t " " NR}\'; fi'
        )
    return "; ".join([*parts, "true"])


def _tolerant(*command: str) -> list[str]:
    """`-exec` words running `command` on the found paths, where a path that vanished since find
    saw it is no error: when the batch fails, each path is retried, and a failure counts only for
    a path that still exists (its error is shown)."""
    cmd = " ".join(shlex.quote(word) for word in command)
    script = (
        f'{cmd} "$@" 2>/dev/null && exit 0; rc=0; for f; do if ! {cmd} "$f" 2>/dev/null; then '
        f'if [ -e "$f" ] || [ -L "$f" ]; then {cmd} "$f" || rc=1; fi; fi; done; exit $rc'
    )
    return ["-exec", "sh", "-c", script, "sh", "{}", "+"]


def drift_repair_command(settings: Settings) -> str:
    """A script that puts every tree back to its model, touching only the entries that drifted:
    chown where the owner or group differs, strip the forbidden bits where any is set. Files that
    vanish while it runs are skipped, not errors (_tolerant)."""
    lines = ["set -e"]
    for index, tree in enumerate(trees(settings)):
        guard = f"[ ! -d {shlex.quote(tree.path)} ] ||"
        chown = _tolerant("chown", "-h", f"{tree.user}:{tree.group}")
        strip = ",".join(
            f"{who}-{_letters(int(digit, 8))}"
            for who, digit in zip("ugo", tree.forbidden.rjust(3, "0"), strict=True)
            if digit != "0"
        )
        lines.append(f"{guard} {_find(settings, index, *_owner_drift(tree), *chown)}")
        lines.append(f"{guard} {_find(settings, index, *_mode_drift(tree), *_tolerant('chmod', strip))}")
    return "\n".join(lines)


def _letters(bits: int) -> str:
    return "".join(letter for bit, letter in ((4, "r"), (2, "w"), (1, "x")) if bits & bit)
