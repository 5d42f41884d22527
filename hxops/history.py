"""`make history` (`python -m hxops.history [INVENTORY] [--json]`): the fleet's deployment record.

Reads base_dir/releases/deployments.jsonl (hxops.deploy_record) from every host of the inventory's
`gateways` group over pyinfra's own SSH connector, with the inventory's SSH data exactly as the
deploy uses it, and prints one timeline, oldest first, merged across gateways; `--json` prints
the entries as a JSON list for tools. The inventory defaults to the local fleet's
(testbed/inventory.py). Reading changes nothing on any host. A gateway that cannot be reached is
named on stderr and makes the exit status 1; the others are still printed.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import shlex
import sys

from hxops.deploy_record import NOT_ROLLED_BACK, RECORD_NAME, ROLLED_BACK
from hxops.gateway_locks import REPO

DEFAULT_INVENTORY = "testbed/inventory.py"


def parse_record(text: str, gateway: str) -> tuple[list[dict], list[str]]:
    """The entries of one gateway's record and a problem line for each line that is not an entry
    (pure). An entry without a gateway name gets the host's."""
    entries, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"{gateway}: line {number} of {RECORD_NAME} is not JSON; skipped")
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("time"), str):
            problems.append(f"{gateway}: line {number} of {RECORD_NAME} has no time; skipped")
            continue
        entry.setdefault("gateway", gateway)
        entries.append(entry)
    return entries, problems


def merge(records: dict[str, list[dict]]) -> list[dict]:
    """Every gateway's entries in one timeline, oldest first (ISO UTC times sort as text)."""
    merged = [entry for entries in records.values() for entry in entries]
    return sorted(merged, key=lambda e: (e["time"], e.get("gateway", "")))


def format_entry(entry: dict) -> str:
    """One line for people: when, where, what happened, what serves, from which commit, by whom."""
    commit = (entry.get("commit") or "?")[:12] + (" (dirty)" if entry.get("dirty") else "")
    parts = [
        entry["time"],
        entry.get("gateway", "?"),
        entry.get("outcome", "?"),
        f"litellm {entry.get('litellm') or '?'}",
        f"release {entry.get('release') or '?'}",
        f"config {(entry.get('config_sha256') or '?')[:12]}",
        f"unit {(entry.get('unit_sha256') or '?')[:12]}",
        f"commit {commit}",
        f"by {entry.get('operator', '?')}@{entry.get('control', '?')}",
    ]
    line = "  ".join(parts)
    if entry.get("outcome") in (ROLLED_BACK, NOT_ROLLED_BACK):
        line += f"  (tried litellm {entry.get('deployed_litellm', '?')}: {entry.get('cause', '?')})"
    if entry.get("commit_url"):
        line += f"  {entry['commit_url']}"
    return line


def read_fleet(inventory_path: str) -> tuple[dict[str, list[dict]], list[str], list[str]]:
    """Each gateway's entries, the problems met, and the gateways whose record could not be read."""
    from pyinfra.api import Config, State
    from pyinfra.context import ctx_host, ctx_state
    from pyinfra_cli.inventory import make_inventory

    records: dict[str, list[dict]] = {}
    problems: list[str] = []
    unread: list[str] = []
    state = State()
    with ctx_state.use(state):
        inventory = make_inventory(inventory_path, cwd=str(REPO))
        state.init(inventory, Config())
        for host in inventory.get_group("gateways", default=[]):
            base_dir = host.data.get("base_dir")
            if not base_dir:
                problems.append(f"{host.name}: no base_dir in its host data; skipped")
                continue
            path = posixpath.join(str(base_dir), "releases", RECORD_NAME)
            with ctx_host.use(host):
                host.connect(raise_exceptions=False)
                if not host.connected:
                    problems.append(f"{host.name}: cannot connect; its record is missing from the timeline")
                    unread.append(host.name)
                    continue
                quoted = shlex.quote(path)
                ok, output = host.run_shell_command(f"if [ -f {quoted} ]; then cat {quoted}; fi", _timeout=60)
                host.disconnect()
            if not ok:
                problems.append(f"{host.name}: could not read {path}: {output.stderr_lines[-1:]}")
                unread.append(host.name)
                continue
            entries, bad = parse_record("\n".join(output.stdout_lines), host.name)
            records[host.name] = entries
            problems.extend(bad)
    return records, problems, unread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make history", description=__doc__.splitlines()[0])
    parser.add_argument("inventory", nargs="?", default=DEFAULT_INVENTORY, help="pyinfra inventory")
    parser.add_argument("--json", action="store_true", help="print the entries as a JSON list")
    args = parser.parse_args(argv)
    records, problems, unread = read_fleet(args.inventory)
    timeline = merge(records)
    if args.json:
        print(json.dumps(timeline, indent=2, sort_keys=True))
    else:
        for entry in timeline:
            print(format_entry(entry))
        if not timeline:
            print(f"no deployment recorded yet on {', '.join(records) or 'any gateway'}")
    for problem in problems:
        print(f"history: {problem}", file=sys.stderr)
    return 1 if unread else 0


if __name__ == "__main__":
    sys.exit(main())
