"""`make bench-metrics`: what Prometheus metrics cost, on a fleet of its own (HX_TESTBED_NET, default 9).

1. One gateway (the default serving) without a `monitoring` group: chat through the gateway at
   concurrency 16, req/s and p50 (bench/load.py's serving cell: median, min, max of --runs runs).
2. hx-mon added and everything deployed again: the gateway now runs LiteLLM's Prometheus callback,
   the backend probe and node exporter, and Prometheus scrapes it at production's intervals (15 s);
   the same cell again. Target: req/s within 5 % of row 1.
3. Nine more gateways (10 in all, one worker each) deployed into the monitoring, some traffic on each, then
   Prometheus's memory on hx-mon (RSS) and its head series, after --settle seconds of scraping.

Writes bench/metrics-results.json and bench/metrics-results.md; targets are reported, never
asserted. The fleet is taken down at the end unless --keep-fleet.
"""

from __future__ import annotations

import os

os.environ.setdefault("HX_TESTBED_NET", "9")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.load import CHAT_BACKEND, cell, serving_cell, targets  # noqa: E402
from bench.pyinfra_runs import load_average, log, pyinfra, settle  # noqa: E402
from testbed import fleet, monitoring  # noqa: E402

BENCH = REPO / "bench"
# Production's intervals (hxgw/monitoring_settings.py defaults), not the test fleet's 1 s.
PRODUCTION = ("scrape_interval_s=15", "evaluation_interval_s=15", "backend_probe_interval_s=15")


def prometheus_memory(monitor: fleet.Machine) -> dict:
    rss_kb = fleet.ssh_command(monitor, "ps -o rss= -C prometheus | awk '{s+=$1} END {print s}'").stdout
    query = "http://127.0.0.1:9090/api/v1/query?query=prometheus_tsdb_head_series"
    series = fleet.ssh_command(monitor, f"curl -s '{query.replace('127.0.0.1', monitor.address)}'").stdout
    return {
        "rss_mb": round(int(rss_kb.strip() or 0) / 1024, 1),
        "head_series": int(float(json.loads(series)["data"]["result"][0]["value"][1])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/metrics_cost.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per cell (default 3)")
    parser.add_argument("--requests", type=int, default=200, help="requests per cell and run")
    parser.add_argument("--gateways", type=int, default=10, help="gateways for the memory row (default 10)")
    parser.add_argument("--settle", type=float, default=60, help="seconds of scraping before the memory row")
    parser.add_argument("--keep-fleet", action="store_true", help="leave the bench fleet up at the end")
    args = parser.parse_args(argv)
    # The bench's own token file: nothing in the operator's ~/.config changes.
    os.environ.setdefault("HX_METRICS_TOKEN_FILE", str(BENCH / "runs" / "metrics-token"))
    started, wall = datetime.now(UTC), time.monotonic()
    fleet.up(gateways=1, log=log)
    rows: dict[str, dict] = {}
    try:
        gateway = next(m for m in fleet.load_machines() if m.role == "gateway")
        backend = fleet.find(CHAT_BACKEND)
        pyinfra("metrics off: one gateway, no monitoring group", "--limit", gateway.name)
        settle()
        rows["metrics_off_c16"] = serving_cell(gateway, backend, args.requests, args.runs, 16)
        monitor, _pager = monitoring.add_monitoring()
        data = [a for d in PRODUCTION for a in ("--data", d)]
        pyinfra("metrics on: the gateway and hx-mon", "--limit", gateway.name, "--limit", monitor.name, *data)
        settle()
        rows["metrics_on_c16"] = serving_cell(gateway, backend, args.requests, args.runs, 16)
        fleet.add_gateways(args.gateways - 1)
        # One worker each: ten gateways of two workers did not all start within start.sh's 180 s
        # on a 2-CPU machine (2026-12-07); Prometheus's memory depends on the targets, not on that.
        pyinfra(f"{args.gateways} gateways into the monitoring", *data, "--data", "num_workers=1")
        for machine in (m for m in fleet.load_machines() if m.role == "gateway"):
            cell(targets(machine, backend)["gateway"], 20, 1, 4)  # every gateway's series exist
        time.sleep(args.settle)
        rows[f"prometheus_{args.gateways}_gateways"] = {**prometheus_memory(monitor), "load": load_average()}
    finally:
        if not args.keep_fleet:
            fleet.down(log=log)
    off, on = rows["metrics_off_c16"]["rps"]["median"], rows["metrics_on_c16"]["rps"]["median"]
    results = {
        "started": started.isoformat(timespec="seconds"),
        "bench_seconds": round(time.monotonic() - wall, 1),
        "cpus": os.cpu_count(),
        "rows": rows,
        "rps_change_pct": round(100 * (on - off) / off, 1),
    }
    for row in rows.values():
        row.pop("samples_ms", None)
    (BENCH / "metrics-results.json").write_text(json.dumps(results, indent=2) + "\n")
    (BENCH / "metrics-results.md").write_text(render(results, args.gateways))
    print(render(results, args.gateways))
    return 0


def render(results: dict, gateways: int) -> str:
    rows = results["rows"]

    def rps_p50(row: dict) -> str:
        rps, p50 = row["rps"], row["p50_ms"]
        return (
            f"{rps['median']:.1f} ({rps['min']:.1f}-{rps['max']:.1f}) | {p50['median']:.1f} "
            f"({p50['min']:.1f}-{p50['max']:.1f}) | {row['errors']['max']:.0f} | {row['rss_mb']:.0f} | "
            f"{row['load'][0]:.2f} -> {row['load'][1]:.2f}"
        )

    memory = rows[f"prometheus_{gateways}_gateways"]
    return "\n".join(
        [
            f"# Metrics cost ({results['started']}, {results['cpus']} CPUs, "
            f"{results['bench_seconds']:.0f} s)",
            "",
            "Chat through one gateway at concurrency 16 (median (min-max) of the runs), "
            "`make bench-metrics`.",
            "",
            "| row | req/s | p50 ms | errors | gateway RSS MB | load 1m |",
            "| --- | --- | --- | --- | --- | --- |",
            f"| metrics off | {rps_p50(rows['metrics_off_c16'])} |",
            f"| metrics on (scraped every 15 s) | {rps_p50(rows['metrics_on_c16'])} |",
            "",
            f"req/s with metrics on: {results['rps_change_pct']:+.1f} % (target: no worse than -5 %).",
            "",
            f"Prometheus with {gateways} gateways (plus hx-mon's own targets): RSS {memory['rss_mb']} MB, "
            f"{memory['head_series']} head series.",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
