"""`make bench`: how fast the deploy is, measured side by side on a local fleet of its own.

Brings up a fleet on HX_TESTBED_NET (default 9, so it never tears down a fleet someone is using:
198.18.9.0/24, bridge hxtb9), and measures, each figure the median of --runs runs (min, max):

  1. first deploy of one gateway (the wheelhouse already built), to ready and validated: every
     run on a fresh machine (powered off, its disk wiped, booted again);
  2. no-op re-run of one gateway and of three, with and without the validation step;
  3. dry run (`--dry`) of one gateway;
  4. first deploy of three gateways at once, and its ratio to one;
  5. the gateway's own overhead: chat latency p50/p99 through the gateway against straight to
     the fake Ollama backend, at concurrency 1 and 16, and requests per second with one worker
     (the deployed num_workers) against num_workers=2;
  6. the seed's way (bench/seed_deploy.py: pip install and a restart on every run) in the same
     session: its first deploy (pip, through the production pip fallback) and its re-run.

Writes bench/results.json and bench/results.md (plus every run's output under bench/runs/, not
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

from bench.load import CHAT_BACKEND, latency_cells, workers_rps  # noqa: E402
from bench.pyinfra_runs import load_average, log, pyinfra  # noqa: E402
from bench.steps import markdown_table, summary  # noqa: E402
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (default 3, at least 3)")
    parser.add_argument("--requests", type=int, default=200, help="requests per latency cell and run")
    parser.add_argument("--keep-fleet", action="store_true", help="leave the bench fleet up at the end")
    parser.add_argument("--skip-seed", action="store_true", help="leave out the seed's-way comparison")
    args = parser.parse_args(argv)
    if args.runs < 3:
        parser.error("--runs must be at least 3: every figure is a median with min and max")

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

        first3, noop3, noop3_nv, noop1, noop1_nv, dry1 = [], [], [], [], [], []
        changed_noop = set()
        for run in range(1, args.runs + 1):
            reset(names)
            first3.append(pyinfra(f"first-deploy-3-gateways-{run}").seconds)
            noop3.append(pyinfra(f"noop-3-gateways-{run}").seconds)
            noop3_nv.append(
                pyinfra(
                    f"noop-3-gateways-no-validation-{run}", deploy="bench/deploy_without_validation.py"
                ).seconds
            )
            result = pyinfra(f"noop-1-gateway-{run}", "--limit", one)
            noop1.append(result.seconds)
            changed_noop.update(result.changed_operations())
            noop1_nv.append(
                pyinfra(
                    f"noop-1-gateway-no-validation-{run}",
                    "--limit",
                    one,
                    deploy="bench/deploy_without_validation.py",
                ).seconds
            )
            dry1.append(pyinfra(f"dry-run-1-gateway-{run}", "--dry", "--limit", one).seconds)
        notes["changed_on_noop_rerun"] = sorted(changed_noop)

        first1, slowest = [], {}
        for run in range(1, args.runs + 1):
            reset([one])
            result = pyinfra(f"first-deploy-1-gateway-{run}", "--limit", one)
            first1.append(result.seconds)
            for name, seconds in result.slowest_operations():
                slowest.setdefault(name, []).append(seconds)
        notes["first_deploy_1_gateway_slowest_steps_s"] = {
            name: summary(values) for name, values in sorted(slowest.items(), key=lambda i: -max(i[1]))
        }
        loads["after_deploys"] = load_average()

        gateway = next(m for m in gws if m.name == one)
        latency = latency_cells(gateway, backend, args.requests, args.runs)
        workers = {"1": workers_rps(gateway, args.requests, args.runs)}
        # Left at 2 workers: the seed's runs below start from a fresh machine anyway.
        pyinfra("num_workers=2", "--limit", one, "--data", "num_workers=2")
        workers["2"] = workers_rps(gateway, args.requests, args.runs)
        loads["after_latency"] = load_average()

        seed_first, seed_rerun = [], []
        if not args.skip_seed:
            for run in range(1, args.runs + 1):
                reset([one])
                seed = ("--limit", one, "--data", "installer=pip")
                seed_first.append(
                    pyinfra(f"seed-first-deploy-pip-{run}", *seed, deploy="bench/seed_deploy.py").seconds
                )
                seed_rerun.append(pyinfra(f"seed-rerun-{run}", *seed, deploy="bench/seed_deploy.py").seconds)
            loads["after_seed"] = load_average()

        figures = {
            "first_deploy_1": summary(first1),
            "first_deploy_3": summary(first3),
            "noop_1": summary(noop1),
            "noop_1_no_validation": summary(noop1_nv),
            "noop_3": summary(noop3),
            "noop_3_no_validation": summary(noop3_nv),
            "dry_run_1": summary(dry1),
        }
        if seed_first:
            figures["seed_first_deploy_1"] = summary(seed_first)
            figures["seed_rerun_1"] = summary(seed_rerun)
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
        "workers_c16": workers,
        "notes": notes,
    }
    (BENCH / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (BENCH / "results.md").write_text("\n".join(render_markdown(results)) + "\n")
    log(f"done in {results['bench_seconds']:.0f} s: bench/results.md, bench/results.json")
    print((BENCH / "results.md").read_text())
    return 0


def _row(figure: str, data: dict, unit: str, target: str = "", limit: float | None = None) -> dict:
    met = None if limit is None else data["median"] <= limit
    return {
        "figure": figure,
        "unit": unit,
        "median": data["median"],
        "min": data["min"],
        "max": data["max"],
        "n": len(data["runs"]),
        "target": target,
        "met": met,
    }


def _ratio(a: dict, b: dict) -> dict:
    """Median, min and max of run-by-run ratios a/b."""
    return summary([x / y for x, y in zip(a["runs"], b["runs"], strict=True)])


def render_markdown(results: dict) -> list[str]:
    f, lat, workers = results["figures_s"], results["latency"], results["workers_c16"]
    rows = [
        _row("first deploy, 1 gateway, to ready and validated", f["first_deploy_1"], "s", "<= 45 s", 45),
        _row("first deploy, 3 gateways at once", f["first_deploy_3"], "s"),
        _row(
            "3 gateways / 1 gateway (first deploy)",
            _ratio(f["first_deploy_3"], f["first_deploy_1"]),
            "x",
            "<= 1.5x",
            1.5,
        ),
        _row("no-op re-run, 1 gateway (with validation)", f["noop_1"], "s", "<= 4 s", 4),
        _row(
            "no-op re-run, 1 gateway, without the validation step",
            f["noop_1_no_validation"],
            "s",
            "<= 4 s",
            4,
        ),
        _row("no-op re-run, 3 gateways (with validation)", f["noop_3"], "s", "<= 6 s", 6),
        _row(
            "no-op re-run, 3 gateways, without the validation step",
            f["noop_3_no_validation"],
            "s",
            "<= 6 s",
            6,
        ),
        _row("dry run (--dry), 1 gateway", f["dry_run_1"], "s"),
    ]
    if "seed_first_deploy_1" in f:
        rows += [
            _row("seed's way: first deploy, 1 gateway (pip install)", f["seed_first_deploy_1"], "s"),
            _row("seed's way: re-run, 1 gateway (pip install + restart)", f["seed_rerun_1"], "s"),
        ]
    overhead = lat["gateway_c1"]["p50_ms"]["median"] - lat["direct_c1"]["p50_ms"]["median"]
    for c in (1, 16):
        gw, direct = lat[f"gateway_c{c}"], lat[f"direct_c{c}"]
        rows += [
            _row(f"chat latency p50 through the gateway, concurrency {c}", gw["p50_ms"], "ms"),
            _row(f"chat latency p50 straight to the backend, concurrency {c}", direct["p50_ms"], "ms"),
            _row(f"chat latency p99 through the gateway, concurrency {c}", gw["p99_ms"], "ms"),
            _row(f"chat latency p99 straight to the backend, concurrency {c}", direct["p99_ms"], "ms"),
            _row(f"requests/s through the gateway, concurrency {c}", gw["rps"], "req/s"),
            _row(f"requests/s straight to the backend, concurrency {c}", direct["rps"], "req/s"),
        ]
    rows += [
        _row("requests/s, concurrency 16, num_workers=1 (deployed default)", workers["1"]["rps"], "req/s"),
        _row("requests/s, concurrency 16, num_workers=2", workers["2"]["rps"], "req/s"),
    ]
    load = results["machine"]["load_average_1m"]
    lines = [
        "# Deploy benchmark",
        "",
        f"`make bench` (bench/run.py) on {results['started']}, fleet 198.18.{results['fleet_net']}.0/24, "
        f"{results['machine']['cpus']} CPUs shared with other work (1-minute load: "
        + ", ".join(f"{k} {v:.1f}" for k, v in load.items())
        + f"). Each figure: median of {results['runs']} runs, with min and max; "
        f"{lat['gateway_c1']['requests_per_run']} requests per latency run. "
        f"The bench took {results['bench_seconds'] / 60:.1f} min.",
        "",
        *markdown_table(rows),
        "",
        f"Gateway overhead at concurrency 1 (p50 through the gateway minus p50 straight to the backend): "
        f"{overhead:.1f} ms (target <= 10 ms: {'met' if overhead <= 10 else 'MISSED'}).",
        "",
        "Operations reported as changed on a no-op re-run of one gateway: "
        + (", ".join(results["notes"].get("changed_on_noop_rerun", [])) or "none")
        + ".",
        "",
        "Slowest steps of the first deploy of one gateway (median s): "
        + ", ".join(
            f"{name} {data['median']:.1f}"
            for name, data in list(
                results["notes"].get("first_deploy_1_gateway_slowest_steps_s", {}).items()
            )[:6]
        )
        + ".",
    ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
