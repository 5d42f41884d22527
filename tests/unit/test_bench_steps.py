"""The benchmark's arithmetic (bench/steps.py)."""

from __future__ import annotations

import pytest

from bench import steps

# ---------- the benchmark's arithmetic ----------


def test_percentile_nearest_rank():
    values = list(range(1, 201))
    assert steps.percentile(values, 50) == 100
    assert steps.percentile(values, 99) == 198
    assert steps.percentile([5.0], 99) == 5.0
    with pytest.raises(ValueError):
        steps.percentile([], 50)


def test_summary_and_table():
    data = steps.summary([3.0, 1.0, 2.0])
    assert (data["median"], data["min"], data["max"]) == (2.0, 1.0, 3.0)
    row = {"figure": "no-op", "unit": "s", "n": 3, "target": "<= 4 s", "met": True, **data}
    lines = steps.markdown_table([row])
    assert lines[2] == "| no-op | 2.00 s | 1.00 s | 3.00 s | 3 | <= 4 s (met) |  |  |"
    assert "MISSED" in steps.markdown_table([{**row, "met": False}])[2]
    measured = steps.markdown_table([{**row, "load": [1.5, 2.25], "rss": 812.4}])[2]
    assert measured.endswith("| 1.5 -> 2.2 | 812 MB |")
