"""Pure helpers of the benchmark: the statistics of the result table."""

from __future__ import annotations

import math
import statistics


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p50 of 200 samples is the 100th smallest, p99 the 198th)."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict:
    """median, min and max of the runs of one figure, and the runs themselves."""
    if not values:
        raise ValueError("no runs")
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": list(values),
    }


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "req/s":
        return f"{value:.0f} req/s"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "":
        return f"{value:g}"
    return f"{value:g} {unit}"


def markdown_table(rows: list[dict]) -> list[str]:
    """rows: {"figure", "unit", "median", "min", "max", "n", "target", "met"}, optionally "load"
    (1-minute load before, after) and "rss" (MB of the gateway's processes) -> markdown lines."""
    lines = [
        "| figure | median | min | max | runs | target | load before -> after | gateway RSS |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for row in rows:
        target = row.get("target") or ""
        if target and row.get("met") is not None:
            target += " (met)" if row["met"] else " (MISSED)"
        load = f"{row['load'][0]:.1f} -> {row['load'][1]:.1f}" if row.get("load") else ""
        rss = f"{row['rss']:.0f} MB" if row.get("rss") else ""
        lines.append(
            f"| {row['figure']} | {fmt(row['median'], row['unit'])} | {fmt(row.get('min'), row['unit'])} "
            f"| {fmt(row.get('max'), row['unit'])} | {row.get('n', '')} | {target} | {load} | {rss} |"
        )
    return lines
