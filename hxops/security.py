"""pyinfra pieces of the gateway's security model: the permission-drift fact and the key upload.

Neither ever puts the master key into a command, a fact's output, an operation argument or a
diff: pyinfra prints all of those with -v, --debug or --diff.
"""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from io import StringIO

from pyinfra import host, logger, state
from pyinfra.api import FactBase, FileUploadCommand, StringCommand, operation
from pyinfra.facts.files import Sha256File

from hxgw.layout import drift_scan_command, trees
from hxgw.settings import Settings

KEY_VARIABLE = "LITELLM_MASTER_KEY"


class LayoutDrift(FactBase):
    """
    The paths under base_dir that break the permission model (hxgw.layout.trees), in ONE command:
    {tree path: {"count": n, "examples": [up to 20 paths]}}; {} when everything is as modelled.
    """

    def command(self, settings: Settings) -> str:
        return drift_scan_command(settings)

    @staticmethod
    def default():
        return {}

    def process(self, output):
        found: dict[int, dict] = {}
        for line in output:
            kind, _, rest = line.partition(" ")
            index, _, value = rest.partition(" ")
            if kind not in ("drift", "drift_count") or not index.isdigit():
                continue
            entry = found.setdefault(int(index), {"count": 0, "examples": []})
            if kind == "drift":
                entry["examples"].append(value)
            elif value.isdigit():
                entry["count"] = int(value)
        return found


def drift_by_tree(facts: dict, settings: Settings) -> dict[str, dict]:
    """LayoutDrift's answer keyed by tree path instead of index."""
    paths = [tree.path for tree in trees(settings)]
    return {paths[index]: entry for index, entry in (facts or {}).items() if index < len(paths)}


def key_file_content(key: str) -> str:
    return f"{KEY_VARIABLE}={key}\n"


@operation()
def master_key_file(path: str, group: str, key_source, what: str = "the master key from MASTER_KEY"):
    """
    Write the EnvironmentFile holding the master key, only when its content differs.

    `key_source` is a callable returning the key, so the key is never an operation argument.
    See secret_file for how it travels and is compared.
    """
    yield from secret_file._inner(path, group, lambda: key_file_content(key_source()), what=what)


@operation()
def secret_file(path: str, group: str, content_source, what: str = "the secret"):
    """
    Write a root:`group` 640 file holding a secret (`content_source()` returns its whole text),
    only when its content differs.

    The content goes over SFTP into a root-only temporary file next to the target (created empty
    with mode 600 first, so it is never readable by anyone else, not even for a moment), then gets
    its owner and mode and is renamed over the target. Compared by sha256 (the host's sha256sum),
    never by content; --diff says only that the secret will change. Owner and mode of an unchanged
    file are left to a separate operation, so a permission repair does not restart the service.
    """
    content = content_source()
    wanted = hashlib.sha256(content.encode()).hexdigest()
    if host.get_fact(Sha256File, path=path) == wanted:
        held = what.removesuffix(" from MASTER_KEY").removesuffix(" of the fleet")
        host.noop(f"{path} already holds {held}")
        return
    if state.config.DIFF:
        logger.info(f"    Will replace {path} with {what} (value not shown)")
    temporary = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.new")
    q = shlex.quote
    yield StringCommand(f"rm -f {q(temporary)} && install -m 600 -o root -g root /dev/null {q(temporary)}")
    yield FileUploadCommand(StringIO(content), temporary, remote_temp_filename=temporary)
    yield StringCommand(
        f"chown root:{q(group)} {q(temporary)} && chmod 640 {q(temporary)} && mv -f {q(temporary)} {q(path)}"
    )
