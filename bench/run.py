"""`make bench`: how fast the deploy is, measured side by side on a local fleet of its own.

Brings up a fleet on HX_TESTBED_NET (default 9, so it never tears down a fleet someone is using:
198.18.9.0/24, bridge hxtb9), and measures, each figure the median of --runs runs (min, max):

  1. first deploy of one gateway (the wheelhouse already built), to ready and validated: every
     run on a fresh machine (powered off, its disk wiped, booted again), and its floor (ship +
     uv install + one start to ready + validation, from the same runs' step times);
  2. no-op re-run of one gateway, of three and (at the end, with seven more booted and deployed)
     of ten, with and without the validation step, and dry runs (`--dry`) of one, three and ten:
     the cost curves, with the control machine's CPU for each;
  3. first deploy of three gateways at once, and its ratio to one;
  4. the gateway's own overhead: chat latency p50/p99 through the gateway against straight to
     the fake Ollama backend, at concurrency 1 and 16, and through the gateway at 64 (errors);
  5. each serving change alone at concurrency 16 (workers, access log, log level) against
     today's serving, with the gateway's memory (RSS of its processes); worker recycling is
     refused by the settings for now (hxgw/serving.py), so it has no row;
  6. the seed's way (bench/seed_deploy.py: pip install and a restart on every run) in the same
     session: its first deploy (pip, through the production pip fallback) and its re-run;
  7. alone, with `--only clients` (`make bench ONLY=clients`): a client key against the master
     key at concurrency 1 and 16 (bench/clients.py, bench/results-clients.md).

Every row records the 1-minute load before and after it. Writes bench/results.json,
bench/results.md and bench/results.svg (plus every run's output under bench/runs/, not
committed). Targets are reported, never asserted. The fleet is taken down at the end unless
--keep-fleet. Traffic goes only to the fleet's own 198.18.N.x addresses.
"""

from __future__ import annotations

import os

os.environ.setdefault("HX_TESTBED_NET", "9")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.load import CHAT_BACKEND, latency_cells, serving_cell  # noqa: E402
from bench.pyinfra_runs import load_average, log, pyinfra, settle  # noqa: E402
from bench.report import render_markdown  # noqa: E402
from bench.steps import summary  # noqa: E402
from bench.svg import render_svg  # noqa: E402
from testbed import fleet, rootfs  # noqa: E402

BENCH = REPO / "bench"


# ---------- fresh machines ----------


def gateways() -> list[fleet.Machine]:
    return [m for m in fleet.load_machines() if m.role == "gateway"]


def reset(names: list[str]) -> None:
    """Power the gateways off, wipe their disks (the overlay's upper layer), boot them fresh."""
    machines = fleet.load_machines()
    chosen = [m for m in machines if m.name in names]
    for machine in chosen:
        if machine.pid:
            fleet.stop_pid(machine.pid)
        machine.pid = None
        merged = machine.root / "root"
        if os.path.ismount(merged):
            fleet.run("umount", str(merged), check=False)
        if os.path.ismount(merged):
            fleet.run("umount", "-l", str(merged))
        shutil.rmtree(machine.root)
    lower = rootfs.ensure_rootfs(log=lambda *_: None)
    for machine in chosen:
        fleet.prepare_machine_root(machine, lower)
        fleet.boot(machine)
    fleet.save_machines(machines)
    for machine in chosen:
        fleet.wait_ready(machine)


# ---------- the benchmark ----------


def figure(runs: list) -> dict:
    """Wall seconds of a figure's runs (median, min, max), their control-machine CPU seconds and
    the load before the first and after the last."""
    result = summary([run.seconds for run in runs])
    result["control_cpu_s"] = summary([run.control_cpu for run in runs])
    result["load"] = [runs[0].load[0], runs[-1].load[1]]
    return result


# Each serving change alone, against today's serving (one worker, an access line per request).
# The deployed defaults are measured in the latency cells.
TODAY = ("num_workers=1", "access_log=True")
VARIANTS = {
    "today: 1 worker, access log": TODAY,
    "workers alone: one per CPU": ("access_log=True",),
    "access log alone: off": ("num_workers=1",),
    "log level alone: ERROR": (*TODAY, "log_level=ERROR"),
}


def serving(one: str, gateway, backend, requests: int, runs: int) -> dict:
    """The serving rows: each variant redeployed on `one`, then loaded at concurrency 16."""
    rows = {}
    for label, data in VARIANTS.items():
        pyinfra(f"serving: {label}", "--limit", one, *(a for d in data for a in ("--data", d)))
        rows[label] = serving_cell(gateway, backend, requests, runs, 16)
    pyinfra("serving: the deployed defaults again", "--limit", one)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (default 3, at least 3)")
    parser.add_argument("--requests", type=int, default=200, help="requests per latency cell and run")
    parser.add_argument("--keep-fleet", action="store_true", help="leave the bench fleet up at the end")
    parser.add_argument("--skip-seed", action="store_true", help="leave out the seed's-way comparison")
    parser.add_argument("--skip-ten", action="store_true", help="leave out the 10-gateway cost rows")
    parser.add_argument(
        "--only",
        choices=["clients"],
        help="run only these rows: clients = a client key vs the master key (bench/clients.py)",
    )
    args = parser.parse_args(argv)
    if args.runs < 3:
        parser.error("--runs must be at least 3: every figure is a median with min and max")
    if args.only == "clients":
        from bench import clients

        return clients.main(args.requests, args.runs, args.keep_fleet)

    started_at = datetime.now(UTC)
    wall = time.monotonic()
    loads = {"start": load_average()}
    log(f"fleet net {fleet.NET} ({fleet.SUBNET}.0/24), {os.cpu_count()} CPUs, load {loads['start']:.2f}")
    fleet.up(gateways=3, log=log)
    figures: dict[str, dict] = {}
    notes: dict[str, object] = {}
    try:
        gws = gateways()
        one, names = gws[0].name, [m.name for m in gws]
        backend = next(m for m in fleet.load_machines() if m.name == CHAT_BACKEND)

        # The wheelhouse is built (or found in the cache) at plan time: a dry run builds it.
        pyinfra("warm-up: wheelhouse (dry run)", "--dry", "--limit", one)

        runs: dict[str, list] = {}
        changed_noop = set()
        no_validation = "bench/deploy_without_validation.py"
        for run in range(1, args.runs + 1):
            reset(names)
            for name, label, extra, deploy in (
                ("first_deploy_3", "first-deploy-3-gateways", (), "deploy.py"),
                ("noop_3", "noop-3-gateways", (), "deploy.py"),
                ("noop_3_no_validation", "noop-3-gateways-no-validation", (), no_validation),
                ("noop_1", "noop-1-gateway", ("--limit", one), "deploy.py"),
                ("noop_1_no_validation", "noop-1-gateway-no-validation", ("--limit", one), no_validation),
                ("dry_run_1", "dry-run-1-gateway", ("--dry", "--limit", one), "deploy.py"),
                ("dry_run_3", "dry-run-3-gateways", ("--dry",), "deploy.py"),
            ):
                result = pyinfra(f"{label}-{run}", *extra, deploy=deploy)
                runs.setdefault(name, []).append(result)
                if name == "noop_1":
                    changed_noop.update(result.changed_operations())
        notes["changed_on_noop_rerun"] = sorted(changed_noop)

        slowest = {}
        for run in range(1, args.runs + 1):
            reset([one])
            result = pyinfra(f"first-deploy-1-gateway-{run}", "--limit", one)
            runs.setdefault("first_deploy_1", []).append(result)
            for name, seconds in result.slowest_operations(count=50):
                slowest.setdefault(name, []).append(seconds)
        notes["first_deploy_1_gateway_slowest_steps_s"] = {
            name: summary(values) for name, values in sorted(slowest.items(), key=lambda i: -max(i[1]))
        }
        loads["after_deploys"] = load_average()

        gateway = next(m for m in gws if m.name == one)
        settle()
        latency = latency_cells(gateway, backend, args.requests, args.runs)
        latency["gateway_c64"] = serving_cell(gateway, backend, args.requests, args.runs, 64)
        latency["gateway_c16"]["rss_mb"] = latency["gateway_c64"]["rss_mb"]
        serving_rows = serving(one, gateway, backend, args.requests, args.runs)
        loads["after_latency"] = load_average()

        if not args.skip_seed:
            for run in range(1, args.runs + 1):
                reset([one])
                seed = ("--limit", one, "--data", "installer=pip")
                for name, label in (
                    ("seed_first_deploy_1", "seed-first-deploy-pip"),
                    ("seed_rerun_1", "seed-rerun"),
                ):
                    result = pyinfra(f"{label}-{run}", *seed, deploy="bench/seed_deploy.py")
                    runs.setdefault(name, []).append(result)
            loads["after_seed"] = load_average()

        if not args.skip_ten:
            # Seven more gateways, deployed once (not a figure), then the 10-gateway cost rows.
            fleet.add_gateways(10 - len(gws))
            setup = pyinfra("setup: deploy the seven added gateways (10 in all)")
            notes["first_deploy_7_more_s"] = round(setup.seconds, 1)
            settle()
            for run in range(1, args.runs + 1):
                for name, label, extra, deploy in (
                    ("noop_10", "noop-10-gateways", (), "deploy.py"),
                    ("noop_10_no_validation", "noop-10-gateways-no-validation", (), no_validation),
                    ("dry_run_10", "dry-run-10-gateways", ("--dry",), "deploy.py"),
                ):
                    runs.setdefault(name, []).append(pyinfra(f"{label}-{run}", *extra, deploy=deploy))
            loads["after_ten"] = load_average()
        figures = {name: figure(values) for name, values in runs.items()}
    finally:
        if not args.keep_fleet:
            fleet.down(log=log)

    results = {
        "started": started_at.isoformat(timespec="seconds"),
        "bench_seconds": round(time.monotonic() - wall, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average_1m": loads},
        "fleet_net": fleet.NET,
        "runs": args.runs,
        "figures_s": figures,
        "latency": latency,
        "serving_c16": serving_rows,
        "notes": notes,
    }
    (BENCH / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (BENCH / "results.md").write_text("\n".join(render_markdown(results)) + "\n")
    (BENCH / "results.svg").write_text(render_svg(results))
    log(f"done in {results['bench_seconds']:.0f} s: bench/results.md, bench/results.json, bench/results.svg")
    print((BENCH / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
