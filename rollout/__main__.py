"""`python -m rollout INVENTORY [--batch-size N] [--dry] [PYINFRA OPTIONS]`: a safe multi-gateway rollout.

The first gateway of the inventory's `gateways` group is the canary: deployed and validated
alone. The others follow `--batch-size` at a time. Every gateway whose deploy restarts it is
drained from the load balancers (group `loadbalancers`, deployed first) before and put back once
it is ready. A gateway that does not come up or fails validation is rolled back to its last
known good release by the deploy itself; the rollout then stops and leaves every later gateway
untouched. An unreachable gateway is skipped and reported as failed; the others go on.
The report lists each host as updated, unchanged, rolled back, failed, unreachable or skipped;
the exit status is 1 if any host was not updated or unchanged.

Options pyinfra understands (--data k=v, --group-data DIR, ...) are passed to every pyinfra run.
--dry shows what would change on every host (with diffs) and changes nothing. --limit GATEWAY
(repeatable, globs allowed) rolls out to those gateways only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rollout import runner

OWN = ("-y", "--yes", "--json", "--diff")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rollout",
        description=__doc__.split("\n\n")[0],
        epilog="Any other option is passed to pyinfra (e.g. --data k=v, --group-data DIR).",
    )
    parser.add_argument("inventory", help="pyinfra inventory with a `gateways` group")
    parser.add_argument("--batch-size", type=int, default=1, help="gateways per batch after the canary")
    parser.add_argument("--dry", action="store_true", help="show what would change, change nothing")
    parser.add_argument(
        "--limit",
        action="append",
        metavar="GATEWAY",
        help="only these gateways (names or globs, repeatable); the load balancers always",
    )
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to wait for 0 sessions")
    parser.add_argument("--ready-timeout", type=float, default=60.0, help="seconds to wait for UP on the LB")
    parser.add_argument("--log-dir", type=Path, help="pyinfra logs (default reports/rollout-<UTC time>)")
    args, passthrough = parser.parse_known_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if not Path(args.inventory).exists():
        parser.error(f"no inventory file {args.inventory}")
    clashing = [a for a in passthrough if a.split("=")[0] in OWN]
    if clashing:
        parser.error(f"the rollout sets {', '.join(clashing)} itself")
    # pyinfra runs from the repository (its group_data/): paths given from elsewhere must hold there.
    for i, arg in enumerate(passthrough[:-1]):
        if arg == "--group-data" and Path(passthrough[i + 1]).exists():
            passthrough[i + 1] = str(Path(passthrough[i + 1]).resolve())
    options = runner.Options(
        inventory=str(Path(args.inventory).resolve()),
        batch_size=args.batch_size,
        limit=args.limit or [],
        dry=args.dry,
        passthrough=passthrough,
        drain_timeout=args.drain_timeout,
        ready_timeout=args.ready_timeout,
        log_dir=args.log_dir,
    )
    try:
        return runner.Rollout(options).run()
    except runner.RolloutError as error:
        print(f"rollout: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
