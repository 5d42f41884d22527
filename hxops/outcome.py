"""The deploy's own structured account of each host, for callers such as the rollout.

With the host data `outcome_dir` (the rollout passes `--data outcome_dir=DIR`), the deploy keeps
DIR/<host>.json for every host it plans, so a caller never reads pyinfra's log or relies on an
operation's name to learn what happened. Keys (each present once it is known):

  planned      true: the host connected and its plan started (no file: never planned)
  restart      the plan (re)starts the gateway (decided at plan time, also under --dry)
  refused      why a step refused the host (nothing changed on it)
  restarted    the (re)start ran
  rolled_back  true: the last known good release serves again; false: the rollback was not possible
  cause        why the host failed: the gateway's own error, or the validation's first failure
  degraded     validation checks degraded (a backend the host cannot reach)
  failures     validation checks that failed

Plan-time records come from the host's own planning greenlet, run-time ones from its operation:
one writer per file at a time.
"""

from __future__ import annotations

import json
from pathlib import Path

KEY = "outcome_dir"


def path_for(host) -> Path | None:
    directory = host.data.get(KEY)
    return Path(str(directory)) / f"{host.name}.json" if directory else None


def record(host, **fields) -> None:
    """Merge `fields` into this host's outcome document (nothing when no outcome_dir is set)."""
    path = path_for(host)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(fields)
    path.write_text(json.dumps(current, sort_keys=True))


def read(directory: Path, host_name: str) -> dict | None:
    """A host's outcome document, or None when the deploy never planned the host."""
    path = Path(directory) / f"{host_name}.json"
    return json.loads(path.read_text()) if path.exists() else None
