"""Pure helpers of the benchmark: deploy.py's steps, and the statistics of the result table."""

from __future__ import annotations

import ast
import math
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def deploy_tasks(deploy_file: Path = REPO / "deploy.py") -> tuple[str, ...]:
    """The TASKS tuple of deploy.py, read without running it (the bench variants follow it)."""
    tree = ast.parse(deploy_file.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "TASKS" for target in node.targets
        ):
            return tuple(ast.literal_eval(node.value))
    raise RuntimeError(f"{deploy_file} has no TASKS = (...) tuple")


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
    return f"{value:g} {unit}"


def markdown_table(rows: list[dict]) -> list[str]:
    """rows: {"figure", "unit", "median", "min", "max", "n", "target", "met"} -> markdown lines."""
    lines = [
        "| figure | median | min | max | runs | target |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        target = row.get("target") or ""
        if target and row.get("met") is not None:
            target += " (met)" if row["met"] else " (MISSED)"
        lines.append(
            f"| {row['figure']} | {fmt(row['median'], row['unit'])} | {fmt(row.get('min'), row['unit'])} "
            f"| {fmt(row.get('max'), row['unit'])} | {row.get('n', '')} | {target} |"
        )
    return lines
