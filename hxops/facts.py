"""pyinfra facts of the gateway deploy.

`GatewayHost` gathers everything the pre-checks, the preflight and the idempotence decisions need
in ONE remote command, so a no-op re-run pays for one round trip instead of a dozen: besides the
host's OS, Python, disk and service, it snapshots every path the deploy manages (type, owner,
mode, sha1 of the rendered files, link target), the service account and the host's IPv4
addresses. hxops.ops decides "already as wanted" from that snapshot without further commands.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from dataclasses import dataclass, field

from pyinfra.api import FactBase

# Binaries the deploy relies on, each with the Debian package that provides it. `ip` first:
# the identity guard needs it (the seed's enhancement #002).
REQUIRED_BINARIES = {
    "ip": "iproute2",
    "ss": "iproute2",
    "python3": "python3",
    "systemctl": "systemd",
    "curl": "curl",
    "tar": "tar",
    "sha256sum": "coreutils",
}


def managed_paths(settings) -> tuple[list[str], list[str]]:
    """The paths the deploy manages on a gateway (for the snapshot) and the files among them whose
    content it renders (their sha1 is compared with the rendering). The master key's file is
    covered for its owner and mode only: its content is never hashed or read. Whatever else sits
    in base_dir or in the scripts directory is covered too (see snapshot_globs)."""
    from hxgw.layout import auth_module_file, clients_file, directories

    rendered = [
        settings.config_file,
        settings.log_config_file,
        auth_module_file(settings),
        clients_file(settings),
        f"/etc/systemd/system/{settings.unit_name}",
        *(posixpath.join(settings.scripts_dir, s) for s in ("start.sh", "stop.sh", "status.sh")),
    ]
    paths = [entry.path for entry in directories(settings)]
    # redis.env (the `caches` group's password, tasks/redis_client.py): owner and mode only, like the key.
    redis_env = posixpath.join(settings.config_dir, "redis.env")
    paths += [settings.venv_link, settings.env_file, redis_env, *rendered]
    return paths, rendered


def snapshot_globs(settings) -> tuple[list[str], list[str]]:
    """Directories whose entries the snapshot covers whatever their names: (stat only, stat and
    sha1 of the files). Steps added later (the releases directory, rollback.sh) get their
    no-change answer from the snapshot without being listed here."""
    return [settings.base_dir], [settings.scripts_dir]


def snapshot_commands(paths, hashed, account: str, globbed=(), globbed_hashed=()) -> list[str]:
    """Shell for the snapshot: one `want` line per requested path, `stat` of those that exist,
    `sha1sum` of the rendered files, link targets, the service account and IPv4 addresses.
    For each directory in `globbed` (and `globbed_hashed`, whose files are hashed too) every
    entry in it is covered the same way."""
    if not paths and not account and not globbed and not globbed_hashed:
        return []
    quoted = " ".join(shlex.quote(p) for p in paths)
    # Unquoted `/*`, so the shell expands it; an empty directory leaves the pattern, never stat'ed.
    globs = " ".join(f"{shlex.quote(d)}/*" for d in (*globbed, *globbed_hashed))
    hashed_globs = " ".join(f"{shlex.quote(d)}/*" for d in globbed_hashed)
    every = f"{quoted} {globs}".strip()
    commands = []
    if every:
        commands += [
            f"printf 'want %s\\n' {quoted}" if paths else "true",
            f'for p in {globs}; do [ -e "$p" ] || [ -L "$p" ] && echo "want $p"; done' if globs else "true",
            f"stat -c 'stat %F|%U|%G|%a|%n' {every} 2>/dev/null",
            f'for p in {every}; do [ -L "$p" ] && echo "target $p $(readlink "$p")"; done',
        ]
    files = f"{' '.join(shlex.quote(p) for p in hashed)} {hashed_globs}".strip()
    if files:
        commands.append(f"sha1sum {files} 2>/dev/null | sed 's/^/sha1 /'")
    if account:
        name = shlex.quote(account)
        commands += [
            f"getent passwd {name} | sed 's/^/passwd /'",
            f"getent group {name} | sed 's/^/group /'",
            # The account's supplementary groups (server.user's `groups`): names, primary first.
            f"id -Gn {name} 2>/dev/null | sed 's/^/ingroups {name} /'",
        ]
    commands.append("ip -o -4 addr show 2>/dev/null | awk '{print \"addr\", $4}'")
    return commands


_FILE_TYPES = {"directory": "directory", "regular file": "file", "regular empty file": "file"}


@dataclass(frozen=True)
class Account:
    """A passwd entry (server.user's attributes); `groups` are the supplementary groups."""

    uid: int
    gid: int
    comment: str
    home: str
    shell: str
    groups: tuple[str, ...] = ()


@dataclass
class Snapshot:
    """The paths the deploy manages and the service account, as the host had them at plan time.

    `paths` maps a covered path to its stat: {"type": None} when absent, else type, user, group,
    mode (pyinfra's integer form, "755" -> 755), sha1 of a hashed file, target of a link.
    A path not in `paths` is not covered: hxops.ops then asks the host.
    """

    paths: dict[str, dict] = field(default_factory=dict)
    passwd: dict[str, Account] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    addresses: list[str] = field(default_factory=list)
    covers_accounts: bool = False  # False: the account lines were not asked for (nothing known)

    def entry(self, path: str) -> dict | None:
        return self.paths.get(path)

    def forget(self, path: str) -> None:
        self.paths.pop(path, None)


def parse_snapshot_line(snapshot: Snapshot, key: str, rest: str) -> bool:
    """Fold one snapshot line into `snapshot`; False when the line is not part of the snapshot."""
    paths = snapshot.paths
    if key == "want":
        paths.setdefault(rest.strip(), {"type": None})
    elif key == "stat":
        parts = rest.split("|", 4)
        if len(parts) == 5 and parts[3].isdigit():
            kind, user, group, mode, path = parts
            entry = paths.setdefault(path, {"type": None})
            entry.update(
                type="link" if kind == "symbolic link" else _FILE_TYPES.get(kind, "other"),
                user=user,
                group=group,
                mode=int(mode),  # "755" -> 755: pyinfra's own representation of a mode
            )
    elif key == "sha1":
        digest, _, path = rest.partition("  ")
        if path and path in paths:
            paths[path]["sha1"] = digest.strip()
    elif key == "target":
        path, _, target = rest.partition(" ")
        if path in paths:
            paths[path]["target"] = target
    elif key == "passwd":
        fields = rest.strip().split(":")
        if len(fields) == 7 and fields[2].isdigit() and fields[3].isdigit():
            old = snapshot.passwd.get(fields[0])
            snapshot.passwd[fields[0]] = Account(
                int(fields[2]), int(fields[3]), fields[4], fields[5], fields[6], old.groups if old else ()
            )
    elif key == "group":
        fields = rest.strip().split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            snapshot.groups[fields[0]] = int(fields[2])
    elif key == "ingroups":
        # `id -Gn` lists the primary group first; server.user's `groups` are the others.
        name, *groups = rest.split() or [""]
        groups = groups[1:]
        if name in snapshot.passwd:
            account = snapshot.passwd[name]
            snapshot.passwd[name] = Account(
                account.uid, account.gid, account.comment, account.home, account.shell, tuple(groups)
            )
    elif key == "addr":
        address = rest.strip().split("/")[0]
        if address:
            snapshot.addresses.append(address)
    else:
        return False
    return True


@dataclass(frozen=True)
class PortOwner:
    pid: int
    ours: bool  # the process runs inside the gateway unit's cgroup
    command: str


@dataclass
class HostFacts:
    """What the plan decides on, from ONE remote command (GatewayHost). Never the key's value."""

    binaries: set[str] = field(default_factory=set)
    os_id: str = "unknown"
    os_version: str = ""
    python: tuple[int, ...] | None = None
    machine: str = ""
    glibc: str = ""
    disk_free_mb: int = 0
    cpus: int = 0  # what the serving defaults follow (hxgw.serving); 0: unknown
    memory_mb: int = 0
    port_owners: list[PortOwner] = field(default_factory=list)
    service_state: str = "unknown"
    service_pid: int = 0
    venv_release: str | None = None  # the release the venv link points at
    releases: set[str] = field(default_factory=set)  # every installed release
    release_times: dict[str, int] = field(default_factory=dict)  # release -> install time (epoch s)
    env_file: bool = False  # the master key's file exists (its content is never read)
    packages: set[str] = field(default_factory=set)
    snapshot: Snapshot = field(default_factory=Snapshot)


class GatewayHost(FactBase):
    """
    One snapshot of a gateway host: binaries, OS, Python, disk, port 4000's owner, the service,
    the installed venv and the master key's presence (never its value).
    """

    def command(
        self,
        base_dir: str,
        port: int,
        unit: str,
        venv_link: str,
        venv_root: str,
        env_file: str,
        paths: tuple | list = (),
        hashed: tuple | list = (),
        account: str = "",
        globbed: tuple | list = (),
        globbed_hashed: tuple | list = (),
    ) -> str:
        base, link, env = shlex.quote(base_dir), shlex.quote(venv_link), shlex.quote(env_file)
        root = shlex.quote(venv_root)
        unit_q = shlex.quote(unit)
        binaries = " ".join(REQUIRED_BINARIES)
        return "; ".join(
            [
                *snapshot_commands(paths, hashed, account, globbed, globbed_hashed),
                f'for b in {binaries}; do command -v $b >/dev/null 2>&1 && echo "bin $b"; done',
                '( . /etc/os-release 2>/dev/null && echo "os $ID $VERSION_ID" )',
                'python3 -c \'import sys, platform; print("python", "%d.%d.%d" % sys.version_info[:3], '
                'platform.machine(), platform.libc_ver()[1] or "-")\' 2>/dev/null',
                f'd={base}; while [ ! -d "$d" ]; do d=$(dirname "$d"); done; '
                'echo "disk_kb $(df -Pk "$d" | awk \'NR==2 {print $4}\')"',
                'echo "cpus $(nproc 2>/dev/null)"; awk \'/^MemTotal:/ {print "mem_kb", $2}\' /proc/meminfo',
                # Each listener on the port, with whether it runs inside our unit's cgroup.
                f"for p in $(ss -ltnpH \"sport = :{int(port)}\" 2>/dev/null | grep -o 'pid=[0-9]*' | "
                "cut -d= -f2 | sort -u); do "
                f'if grep -q {unit_q} /proc/$p/cgroup 2>/dev/null; then echo "port_owner $p ours"; '
                'else echo "port_owner $p $(cat /proc/$p/comm 2>/dev/null)"; fi; done',
                f'echo "service $(systemctl show -p ActiveState --value {unit_q} 2>/dev/null) '
                f'$(systemctl show -p MainPID --value {unit_q} 2>/dev/null)"',
                f'echo "venv $(cat {link}/.hx-release 2>/dev/null || echo -)"',
                # Each installed release with when it was installed (tasks/prune.py keeps the newest).
                # A venv counts with its proxy too: one half-built by a deploy before the atomic
                # install (hxgw.install) could carry its marker without it.
                f'for f in {root}/*/.hx-release; do [ -f "$f" ] && '
                '[ -x "${f%/.hx-release}/bin/litellm" ] && '
                'echo "release $(cat "$f") $(stat -c %Y "$f")"; done',
                f"test -s {env} && echo 'env_file present'",
                "dpkg-query -W -f='${Status}\\n' python3-venv 2>/dev/null | grep -q 'install ok installed' "
                "&& echo 'pkg python3-venv'",
                "true",
            ]
        )

    def process(self, output) -> HostFacts:
        facts = HostFacts()
        facts.snapshot.covers_accounts = True
        for line in output:
            key, _, rest = line.partition(" ")
            fields = rest.split()
            if parse_snapshot_line(facts.snapshot, key, rest):
                continue
            if key == "bin":
                facts.binaries.add(rest.strip())
            elif key == "os" and fields:
                facts.os_id, facts.os_version = fields[0], (fields[1] if len(fields) > 1 else "")
            elif key == "python" and len(fields) == 3:
                facts.python = tuple(int(p) for p in fields[0].split("."))
                facts.machine, facts.glibc = fields[1], fields[2]
            elif key == "disk_kb" and fields and fields[0].isdigit():
                facts.disk_free_mb = int(fields[0]) // 1024
            elif key == "cpus" and fields and fields[0].isdigit():
                facts.cpus = int(fields[0])
            elif key == "mem_kb" and fields and fields[0].isdigit():
                facts.memory_mb = int(fields[0]) // 1024
            elif key == "port_owner" and len(fields) >= 1:
                facts.port_owners.append(
                    PortOwner(int(fields[0]), fields[1:] == ["ours"], " ".join(fields[1:]))
                )
            elif key == "service":
                facts.service_state = fields[0] if fields else "unknown"
                facts.service_pid = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
            elif key == "venv":
                facts.venv_release = None if rest.strip() == "-" else rest.strip()
            elif key == "release" and fields:
                facts.releases.add(fields[0])
                if len(fields) > 1 and fields[1].isdigit():
                    facts.release_times[fields[0]] = int(fields[1])
            elif key == "env_file":
                facts.env_file = True
            elif key == "pkg":
                facts.packages.add(rest.strip())
        return facts


class BackendProbe(FactBase):
    """
    Reach each Ollama backend FROM the gateway host: `/api/version` and the models in
    `/api/tags`. Returns {name: {"ok": bool, "version": str|None, "models": [...], "error": str}}.
    """

    def command(self, backends_json: str) -> str:
        backends = json.loads(backends_json)
        parts = []
        for backend in backends:
            url = shlex.quote(backend["url"])
            parts.append(
                f'echo "@@ {backend["name"]} version"; curl -sS -m 3 {url}/api/version 2>&1; echo; '
                f'echo "@@ {backend["name"]} tags"; curl -sS -m 5 {url}/api/tags 2>&1; echo'
            )
        return "; ".join(parts) + "; true"

    def process(self, output):
        sections: dict[tuple[str, str], str] = {}
        current = None
        for line in output:
            if line.startswith("@@ "):
                _, name, what = line.split(" ", 2)
                current = (name, what)
                sections[current] = ""
            elif current:
                sections[current] += line
        result = {}
        for name in {name for name, _ in sections}:
            entry = {"ok": False, "version": None, "models": [], "error": ""}
            try:
                entry["version"] = json.loads(sections.get((name, "version"), ""))["version"]
                tags = json.loads(sections.get((name, "tags"), ""))
                entry["models"] = sorted(m.get("name", "") for m in tags.get("models", []))
                entry["ok"] = True
            except (ValueError, KeyError, TypeError, AttributeError):
                entry["error"] = (sections.get((name, "version")) or "no answer").strip()[:200]
            result[name] = entry
        return result
