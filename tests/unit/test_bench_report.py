"""bench/report.py and bench/svg.py render what the bench measured: the cost curves over 1, 3 and
10 gateways, the per-gateway slope against its target, and a picture with every curve."""

from bench.report import cost_lines, render_markdown
from bench.steps import summary
from bench.svg import render_svg


def figure(*runs: float, cpu: float = 1.0) -> dict:
    data = summary(list(runs))
    data["control_cpu_s"] = summary([cpu] * len(runs))
    data["load"] = [1.0, 1.2]
    return data


def cell(rps: float, p50: float, p99: float) -> dict:
    return {
        "rps": summary([rps] * 3),
        "p50_ms": summary([p50] * 3),
        "p99_ms": summary([p99] * 3),
        "errors": summary([0, 0, 0]),
        "load": [1.0, 1.0],
        "requests_per_run": 200,
        "rss_mb": 900.0,
    }


def results(with_ten: bool) -> dict:
    figures = {
        "first_deploy_1": figure(30, 31, 32),
        "first_deploy_3": figure(50, 51, 52),
        "noop_1": figure(3.0, 3.1, 3.2),
        "noop_3": figure(3.4, 3.5, 3.6),
        "noop_1_no_validation": figure(2.0, 2.0, 2.0),
        "noop_3_no_validation": figure(2.4, 2.4, 2.4),
        "dry_run_1": figure(2.5, 2.5, 2.5),
        "dry_run_3": figure(2.9, 2.9, 2.9),
    }
    if with_ten:
        # 1 -> 10 gateways: +4.5 s over 9 extra gateways = 0.5 s each, over the 0.3 s target.
        figures |= {
            "noop_10": figure(7.6, 7.6, 7.6, cpu=3.0),
            "noop_10_no_validation": figure(4.7, 4.7, 4.7),
            "dry_run_10": figure(4.3, 4.3, 4.3),
        }
    gateway = cell(40, 10.0, 20.0)
    return {
        "started": "2026-12-02T00:00:00+00:00",
        "bench_seconds": 1800.0,
        "machine": {"cpus": 2, "python": "3.11", "load_average_1m": {"start": 1.0}},
        "fleet_net": 9,
        "runs": 3,
        "figures_s": figures,
        "latency": {
            "gateway_c1": cell(100, 8.0, 12.0),
            "direct_c1": cell(300, 3.0, 5.0),
            "gateway_c16": gateway,
            "direct_c16": cell(700, 15.0, 60.0),
            "gateway_c64": cell(35, 100.0, 250.0),
        },
        "serving_c16": {"today: 1 worker, access log": cell(20, 400.0, 900.0)},
        "notes": {"changed_on_noop_rerun": []},
    }


def test_the_cost_curves_cover_ten_gateways_and_judge_the_slope_over_them():
    lines = cost_lines(results(with_ten=True)["figures_s"])
    noop = next(line for line in lines if line.startswith("| no-op re-run (with validation)"))
    assert "| 3.10 s | 3.50 s | 7.60 s | +0.50 s (target <= 0.3 s: MISSED) |" in noop
    assert "1.00 / 1.00 / 3.00 s" in noop
    first = next(line for line in lines if line.startswith("| first deploy"))
    assert "| 31.00 s | 51.00 s | - | +10.00 s |" in first  # first deploys stop at 3


def test_without_the_ten_gateway_rows_the_slope_is_from_one_to_three():
    lines = cost_lines(results(with_ten=False)["figures_s"])
    noop = next(line for line in lines if line.startswith("| no-op re-run (with validation)"))
    assert "| 3.10 s | 3.50 s | - | +0.20 s (target <= 0.3 s: met) |" in noop


def test_the_report_and_the_picture_render_every_curve():
    data = results(with_ten=True)
    text = "\n".join(render_markdown(data))
    assert "Gateway overhead at concurrency 1" in text and "5.0 ms (target <= 5 ms: met)" in text
    svg = render_svg(data)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert svg.count("<polyline") == 4  # first deploy, no-op, no-op without validation, dry run
    assert ">10</text>" in svg  # the x axis reaches ten gateways
