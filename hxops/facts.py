"""pyinfra facts of the gateway deploy.

`GatewayHost` gathers everything the pre-checks, the preflight and the idempotence decisions need
in ONE remote command, so a no-op re-run pays for one round trip instead of a dozen.
"""

from __future__ import annotations

import json
import shlex

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


class GatewayHost(FactBase):
    """
    One snapshot of a gateway host: binaries, OS, Python, disk, port 4000's owner, the service,
    the installed venv and the master key's presence (never its value).
    """

    def command(
        self, base_dir: str, port: int, unit: str, venv_link: str, venv_root: str, env_file: str
    ) -> str:
        base, link, env = shlex.quote(base_dir), shlex.quote(venv_link), shlex.quote(env_file)
        root = shlex.quote(venv_root)
        unit_q = shlex.quote(unit)
        binaries = " ".join(REQUIRED_BINARIES)
        return "; ".join(
            [
                f'for b in {binaries}; do command -v $b >/dev/null 2>&1 && echo "bin $b"; done',
                '( . /etc/os-release 2>/dev/null && echo "os $ID $VERSION_ID" )',
                'python3 -c \'import sys, platform; print("python", "%d.%d.%d" % sys.version_info[:3], '
                'platform.machine(), platform.libc_ver()[1] or "-")\' 2>/dev/null',
                f'd={base}; while [ ! -d "$d" ]; do d=$(dirname "$d"); done; '
                'echo "disk_kb $(df -Pk "$d" | awk \'NR==2 {print $4}\')"',
                # Each listener on the port, with whether it runs inside our unit's cgroup.
                f"for p in $(ss -ltnpH \"sport = :{int(port)}\" 2>/dev/null | grep -o 'pid=[0-9]*' | "
                "cut -d= -f2 | sort -u); do "
                f'if grep -q {unit_q} /proc/$p/cgroup 2>/dev/null; then echo "port_owner $p ours"; '
                'else echo "port_owner $p $(cat /proc/$p/comm 2>/dev/null)"; fi; done',
                f'echo "service $(systemctl show -p ActiveState --value {unit_q} 2>/dev/null) '
                f'$(systemctl show -p MainPID --value {unit_q} 2>/dev/null)"',
                f'echo "venv $(cat {link}/.hx-release 2>/dev/null || echo -)"',
                f'for f in {root}/*/.hx-release; do [ -f "$f" ] && echo "release $(cat "$f")"; done',
                f"test -s {env} && echo 'env_file present'",
                "dpkg-query -W -f='${Status}\\n' python3-venv 2>/dev/null | grep -q 'install ok installed' "
                "&& echo 'pkg python3-venv'",
                "true",
            ]
        )

    def process(self, output):
        facts = {
            "binaries": set(),
            "port_owners": [],
            "packages": set(),
            "env_file": False,
            "releases": set(),
        }
        for line in output:
            key, _, rest = line.partition(" ")
            fields = rest.split()
            if key == "bin":
                facts["binaries"].add(rest.strip())
            elif key == "os" and fields:
                facts["os_id"], facts["os_version"] = fields[0], (fields[1] if len(fields) > 1 else "")
            elif key == "python" and len(fields) == 3:
                facts["python"] = tuple(int(p) for p in fields[0].split("."))
                facts["machine"], facts["glibc"] = fields[1], fields[2]
            elif key == "disk_kb" and fields and fields[0].isdigit():
                facts["disk_free_mb"] = int(fields[0]) // 1024
            elif key == "port_owner" and len(fields) >= 1:
                facts["port_owners"].append(
                    {"pid": int(fields[0]), "ours": fields[1:] == ["ours"], "command": " ".join(fields[1:])}
                )
            elif key == "service":
                facts["service_state"] = fields[0] if fields else "unknown"
                facts["service_pid"] = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
            elif key == "venv":
                facts["venv_release"] = None if rest.strip() == "-" else rest.strip()
            elif key == "release":
                facts["releases"].add(rest.strip())
            elif key == "env_file":
                facts["env_file"] = True
            elif key == "pkg":
                facts["packages"].add(rest.strip())
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
