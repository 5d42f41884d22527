"""`python -m testbed up|down|status|power-off|power-on|fault`: drive the local fleet."""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request

from testbed import fleet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a fresh fleet (cleans any earlier one first)")
    up.add_argument("--gateways", type=int, default=1, help="gateway machines (.39, .40, ...)")
    up.add_argument("--lb", action="store_true", help="add the HAProxy machine hx-lb (.10)")
    up.add_argument("--cache", action="store_true", help="add the Redis machine hx-cache (.12)")
    up.add_argument(
        "--monitoring",
        action="store_true",
        help="add Prometheus's machine hx-mon (.14) and its pager hx-pager (.15)",
    )
    sub.add_parser("down", help="stop everything and leave nothing behind")
    sub.add_parser("status", help="each machine, its address and its health")
    for name in ("power-off", "power-on"):
        cmd = sub.add_parser(name, help=f"{name} one machine or backend")
        cmd.add_argument("machine")
    fault = sub.add_parser("fault", help="set a backend's fault knobs, e.g. '{\"latency_ms\": 200}'")
    fault.add_argument("backend")
    fault.add_argument("knobs", help="JSON for the fake backend's POST /_fault")
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            started = time.monotonic()
            fleet.up(
                gateways=args.gateways, loadbalancer=args.lb, cache=args.cache, monitoring=args.monitoring
            )
            print_status()
            print(f"ready in {time.monotonic() - started:.1f}s")
        elif args.command == "down":
            fleet.down()
        elif args.command == "status":
            return 0 if print_status() else 1
        elif args.command == "power-off":
            fleet.power_off(args.machine)
        elif args.command == "power-on":
            fleet.power_on(args.machine)
        elif args.command == "fault":
            machine = fleet.find(args.backend)
            request = urllib.request.Request(
                f"http://{machine.address}:{fleet.OLLAMA_PORT}/_fault",
                data=args.knobs.encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                print(response.read().decode())
    except fleet.FleetError as error:
        print(f"testbed: {error}", file=sys.stderr)
        return 1
    return 0


def print_status() -> bool:
    rows = fleet.status()
    if not rows:
        print("the fleet is not up (run `make testbed-up`)")
        return False
    print(f"{'machine':24} {'role':13} {'address':14} {'pid':>8}  health")
    for row in rows:
        print(
            f"{row['name']:24} {row['role']:13} {row['address']:14} {row['pid'] or '-':>8}  {row['health']}"
        )
    return all(r["health"] in ("running", "receiving") or r["health"].startswith("ollama") for r in rows)


if __name__ == "__main__":
    sys.exit(main())
