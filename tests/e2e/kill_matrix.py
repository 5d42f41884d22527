"""`make kill-matrix`: a release change SIGKILLed at every step boundary and at random moments
inside the install and the restart, each followed by a plain re-run (issue 23). Prints the table
of kill points and outcomes (and writes it to reports/kill-matrix.md).

The steps come from the plan itself: one uninterrupted release change lists the operations it
runs (pyinfra's `Starting operation:` lines); each becomes a kill point at its start. The change
alternates between the pin and the release locked beside it, and the target's venv is removed
first, so every point kills a change that installs. Each point passes when: the re-run exits 0
(its validation passed), the target release serves, the record's last line says `updated` with
it, a further run is a no-op, and, killed before its restart, the old release served meanwhile.

Runs on its own fleet (HX_TESTBED_NET, default 1), booted and torn down here:
`HX_TESTBED_NET=1 python -m tests.e2e.kill_matrix [--random N] [--seed S]`.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HX_TESTBED_NET", "1")
os.environ.setdefault("HX_TESTBED_GATEWAY_WORKERS", "1")

from hxgw.settings import locked_litellm_version  # noqa: E402
from hxops.gateway_locks import GATEWAY_LOCK, locks_beside  # noqa: E402
from testbed import fleet  # noqa: E402
from tests.e2e import helpers  # noqa: E402
from tests.e2e import kill_support as kill  # noqa: E402

PINNED = locked_litellm_version(GATEWAY_LOCK.read_text())
OTHER = next(iter(locks_beside()))
GW = helpers.GATEWAY
RELEASE_IN_NAME = re.compile(r" (?=\d+\.\d+\.\d+|[0-9a-f]{16})")
REPORT = helpers.REPO / "reports" / "kill-matrix.md"


def prepare(target: str) -> None:
    """The target's venv is not on the host (so the change installs it)."""
    directory = kill.release_dir(GW, target)
    if directory:
        helpers.ssh(GW, f"rm -rf {directory}", timeout=300)


def step_names(key: str) -> list[str]:
    """The first operation of each step (tasks/*.py) a release change runs, then the restart and
    the validation: from one uninterrupted change (then back)."""
    prepare(OTHER)
    args = ["--limit", GW, "--data", f"litellm_version={OTHER}"]
    done = kill.run_and_kill(args, after=10**6, env_extra={"MASTER_KEY": key})
    helpers.redeploy(GW, env={"MASTER_KEY": key})
    first_of_step: dict[str, str] = {}
    for name in done.operations:
        step = name.split(" | ", 1)[0]
        first_of_step.setdefault(step, name)
    # Inside a step, the boundaries that matter most: the install, the switch, the restart.
    inner = [
        n for n in done.operations if n.split(" | ", 1)[-1].startswith(("Install litellm", "Restart the"))
    ]
    # Names carry the release (its version, its id): cut there, so a point matches both directions.
    return list(dict.fromkeys(RELEASE_IN_NAME.split(n)[0] for n in [*first_of_step.values(), *inner]))


def check(outcome: kill.Outcome, target: str, before: str) -> str:
    """'' when the point converged, else what went wrong."""
    if not outcome.killed.killed:
        return "the run ended before the kill point"
    if not outcome.restart_started and outcome.served_between != before:
        return f"before its restart, {outcome.served_between} served instead of {before}"
    if outcome.lock_free_after is None:
        return "the dead run's lock was still held 30 s after the kill"
    if outcome.rerun.returncode != 0:
        tail = [line for line in outcome.rerun.output.splitlines() if "rror" in line][-2:]
        return "re-run failed: " + " / ".join(tail)[:200]
    if outcome.served_after != target:
        return f"{outcome.served_after} serves, not {target}"
    last = outcome.record_last
    if last.get("outcome") != "updated" or last.get("litellm") != target:
        return f"record's last line: {last.get('outcome')} {last.get('litellm')}"
    changed = outcome.noop.changed(GW) if outcome.noop.operations is not None else ["(no JSON)"]
    if outcome.noop.returncode != 0 or changed:
        return f"further run not a no-op: {changed[:3]}"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--random", type=int, default=3, help="random moments inside the install and the restart, each"
    )
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--only", default="", help="only the step boundaries whose name contains this")
    options = parser.parse_args()
    rng = random.Random(options.seed)
    fleet.up(gateways=1)
    rows = []
    try:
        first = helpers.pyinfra("--limit", GW)
        assert first.returncode == 0, first.output[-3000:]
        key = helpers.master_key(GW)
        steps = step_names(key)
        points = [(step, 0.0) for step in steps if options.only in step]
        for step, limit in (("Install litellm", 12.0), ("Restart the gateway", 8.0)):
            points += [(step, round(rng.uniform(0.2, limit), 1)) for _ in range(options.random)]
        current = PINNED
        for number, (step, after) in enumerate(points, 1):
            target = OTHER if current == PINNED else PINNED
            prepare(target)
            before = kill.serving_version(GW)
            outcome = kill.kill_and_rerun(GW, target, step, after, key)
            problem = check(outcome, target, before)
            current = outcome.served_after if outcome.served_after in (PINNED, OTHER) else current
            row = (
                number,
                f"{after:g} s after `{step[:60].replace(' | ', ': ')}` started",
                f"{outcome.killed.seconds:.1f} s",
                (outcome.killed.last_operation or "-").split(" | ", 1)[-1][:50],
                f"{before} -> {target}",
                outcome.served_between or "nothing",
                "-" if outcome.lock_free_after is None else f"{outcome.lock_free_after:.1f} s",
                f"{outcome.rerun.seconds:.0f} s",
                "converged" if not problem else f"FAILED: {problem}",
            )
            rows.append(row)
            print(" | ".join(str(cell) for cell in row), flush=True)
        helpers.redeploy(GW, env={"MASTER_KEY": key})
    finally:
        if os.environ.get("HX_KEEP_FLEET") != "1":
            fleet.down()
    header = (
        "| # | kill point | killed at | last operation started | change | served after the kill "
        "| lock free after | re-run | outcome |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    table = header + "\n".join("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    Path(REPORT).parent.mkdir(exist_ok=True)
    Path(REPORT).write_text(f"seed {options.seed}\n\n{table}\n")
    print(f"\n{table}\n\n(seed {options.seed}; also in {REPORT})")
    return 1 if any(row[-1] != "converged" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
