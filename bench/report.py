"""bench/results.md from the bench's results: every figure with its target, the load around it,
the floor of a first deploy, the serving comparison and the cost curves."""

from __future__ import annotations

from bench.steps import markdown_table, summary

# The parts of a first deploy that no deploy can skip (step names as pyinfra prints them).
FLOOR_PARTS = {
    "ship the wheelhouse": "Ship the wheelhouse",
    "uv install": "Install litellm",
    "one start to ready": "Restart the gateway and wait for readiness",
    "validation": "Validate the gateway API",
}


def _row(figure: str, data: dict, unit: str, target: str = "", limit: float | None = None, **extra) -> dict:
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
        "load": data.get("load"),
        **extra,
    }


def ratio(a: dict, b: dict) -> dict:
    """Median, min and max of run-by-run ratios a/b."""
    return summary([x / y for x, y in zip(a["runs"], b["runs"], strict=True)])


def floor_of(results: dict) -> tuple[dict, dict]:
    """(seconds of each floor part, the floor): from the first deploys of one gateway, run by run."""
    steps = results["notes"].get("first_deploy_1_gateway_slowest_steps_s", {})
    parts = {}
    for part, prefix in FLOOR_PARTS.items():
        found = [data for name, data in steps.items() if prefix in name]
        if found:
            parts[part] = found[0]
    runs = len(results["figures_s"]["first_deploy_1"]["runs"])
    if not parts or any(len(p["runs"]) != runs for p in parts.values()):
        return parts, {}
    floor = summary([sum(p["runs"][i] for p in parts.values()) for i in range(runs)])
    return parts, floor


def deploy_rows(f: dict, floor: dict) -> list[dict]:
    rows = [_row("first deploy, 1 gateway, to ready and validated", f["first_deploy_1"], "s")]
    if floor:
        rows.append(_row("floor: ship + uv install + one start to ready + validation", floor, "s"))
        rows.append(_row("first deploy / floor", ratio(f["first_deploy_1"], floor), "x", "<= 1.3x", 1.3))
    rows += [
        _row("first deploy, 3 gateways at once", f["first_deploy_3"], "s"),
        _row("3 gateways / 1 gateway (first deploy)", ratio(f["first_deploy_3"], f["first_deploy_1"]), "x"),
    ]
    for n in (1, 3):
        rows += [
            _row(f"no-op re-run, {n} gateway(s) (with validation)", f[f"noop_{n}"], "s"),
            _row(
                f"no-op re-run, {n} gateway(s), without the validation step",
                f[f"noop_{n}_no_validation"],
                "s",
            ),
            _row(f"dry run (--dry), {n} gateway(s)", f[f"dry_run_{n}"], "s"),
        ]
    if "seed_first_deploy_1" in f:
        rows += [
            _row("seed's way: first deploy, 1 gateway (pip install)", f["seed_first_deploy_1"], "s"),
            _row("seed's way: re-run, 1 gateway (pip install + restart)", f["seed_rerun_1"], "s"),
            _row(
                "first deploy / seed's way",
                ratio(f["first_deploy_1"], f["seed_first_deploy_1"]),
                "x",
                "<= 0.3x",
                0.3,
            ),
        ]
    return rows


def serving_rows(lat: dict, serving: dict) -> list[dict]:
    rows = []
    for c in (1, 16):
        gw, direct = lat[f"gateway_c{c}"], lat[f"direct_c{c}"]
        rows += [
            _row(
                f"chat latency p50 through the gateway, concurrency {c}", gw["p50_ms"], "ms", load=gw["load"]
            ),
            _row(
                f"chat latency p50 straight to the backend, concurrency {c}",
                direct["p50_ms"],
                "ms",
                load=direct["load"],
            ),
            _row(
                f"chat latency p99 through the gateway, concurrency {c}", gw["p99_ms"], "ms", load=gw["load"]
            ),
            _row(
                f"chat latency p99 straight to the backend, concurrency {c}",
                direct["p99_ms"],
                "ms",
                load=direct["load"],
            ),
            _row(
                f"requests/s through the gateway, concurrency {c}",
                gw["rps"],
                "req/s",
                rss=gw.get("rss_mb"),
                load=gw["load"],
            ),
            _row(
                f"requests/s straight to the backend, concurrency {c}",
                direct["rps"],
                "req/s",
                load=direct["load"],
            ),
        ]
    c64 = lat["gateway_c64"]
    rows += [
        _row("errors through the gateway, concurrency 64", c64["errors"], "", "0", 0, load=c64["load"]),
        _row(
            "p99 / p50 through the gateway, concurrency 64",
            ratio(c64["p99_ms"], c64["p50_ms"]),
            "x",
            "<= 3x",
            3,
            load=c64["load"],
        ),
        _row(
            "requests/s through the gateway, concurrency 64",
            c64["rps"],
            "req/s",
            rss=c64.get("rss_mb"),
            load=c64["load"],
        ),
    ]
    today = next(iter(serving.values()))
    rows.append(
        _row(
            "req/s at concurrency 16: deployed defaults / today's serving",
            ratio(lat["gateway_c16"]["rps"], today["rps"]),
            "x",
            ">= 1.8x",
            None,
        )
    )
    rows[-1]["met"] = rows[-1]["median"] >= 1.8
    for label, cell in serving.items():
        rows.append(
            _row(
                f"req/s at concurrency 16, {label}",
                cell["rps"],
                "req/s",
                rss=cell.get("rss_mb"),
                load=cell["load"],
            )
        )
        rows.append(_row(f"errors at concurrency 16, {label}", cell["errors"], "", load=cell["load"]))
    return rows


def cost_lines(f: dict) -> list[str]:
    """The cost curves: each figure over 1, 3 and (when measured) 10 gateways, wall and
    control-machine CPU, and what one extra gateway adds (the slope from 1 to the most measured)."""
    lines = [
        "| work | 1 gateway | 3 gateways | 10 gateways | each extra gateway | control CPU, 1 / 3 / 10 "
        "| bound by |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, key, bound in (
        ("no-op re-run (with validation)", "noop_{n}", "hosts: facts and checks over ssh"),
        ("no-op re-run, without validation", "noop_{n}_no_validation", "hosts"),
        ("dry run", "dry_run_{n}", "control: planning"),
        ("first deploy", "first_deploy_{n}", "hosts: install and start share this VM's CPUs"),
    ):
        cells = {n: f[key.format(n=n)] for n in (1, 3, 10) if key.format(n=n) in f}
        last = max(cells)
        extra = (cells[last]["median"] - cells[1]["median"]) / (last - 1)
        target = ""
        if key == "noop_{n}":
            target = " (target <= 0.3 s: " + ("met)" if extra <= 0.3 else "MISSED)")
        wall = " | ".join(f"{cells[n]['median']:.2f} s" if n in cells else "-" for n in (1, 3, 10))
        cpu = " / ".join(f"{cells[n]['control_cpu_s']['median']:.2f}" for n in sorted(cells))
        lines.append(f"| {label} | {wall} | {extra:+.2f} s{target} | {cpu} s | {bound} |")
    return lines


def render_markdown(results: dict) -> list[str]:
    f, lat = results["figures_s"], results["latency"]
    parts, floor = floor_of(results)
    overhead = lat["gateway_c1"]["p50_ms"]["median"] - lat["direct_c1"]["p50_ms"]["median"]
    load = results["machine"]["load_average_1m"]
    return [
        "# Deploy benchmark",
        "",
        f"`make bench` (bench/run.py) on {results['started']}, fleet 198.18.{results['fleet_net']}.0/24, "
        f"{results['machine']['cpus']} CPUs shared with other work (1-minute load: "
        + ", ".join(f"{k} {v:.1f}" for k, v in load.items())
        + f"). Each figure: median of {results['runs']} runs, with min and max, and the 1-minute load "
        f"before its first run and after its last; {lat['gateway_c1']['requests_per_run']} requests per "
        f"latency run. The bench took {results['bench_seconds'] / 60:.1f} min. Picture: "
        "[results.svg](results.svg).",
        "",
        *markdown_table(deploy_rows(f, floor) + serving_rows(lat, results["serving_c16"])),
        "",
        f"Gateway overhead at concurrency 1 (p50 through the gateway minus p50 straight to the backend): "
        f"{overhead:.1f} ms (target <= 5 ms: {'met' if overhead <= 5 else 'MISSED'}).",
        "",
        "Floor parts of the first deploy of one gateway (median s): "
        + (", ".join(f"{part} {data['median']:.1f}" for part, data in parts.items()) or "not found")
        + ".",
        "",
        "## Cost curves",
        "",
        "Wall time over 1, 3 and 10 gateways (first deploys: 1 and 3); control CPU is what pyinfra "
        "spent on the control machine "
        "(the rest of the wall time is the hosts and the network; the hosts are containers on this "
        "same VM, so host-bound rows also compete with the control machine for its CPUs).",
        "",
        *cost_lines(f),
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
