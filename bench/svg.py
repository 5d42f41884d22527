"""bench/results.svg, written by hand (no plotting library): the latency distributions through the
gateway and straight to the backend, the serving comparison, and the cost curves."""

from __future__ import annotations

from html import escape

WIDTH, PANEL_H, PAD = 760, 260, 50
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _text(
    x: float, y: float, body: str, size: int = 12, anchor: str = "start", weight: str = "normal"
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'font-weight="{weight}" font-family="sans-serif">{escape(body)}</text>'
    )


def _axes(top: float, title: str, x_label: str, y_label: str) -> list[str]:
    left, bottom, right = PAD + 20, top + PANEL_H - 40, WIDTH - 20
    return [
        _text(WIDTH / 2, top + 16, title, 14, "middle", "bold"),
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top + 30}" x2="{left}" y2="{bottom}" stroke="#333"/>',
        _text((left + right) / 2, bottom + 32, x_label, 11, "middle"),
        _text(14, top + 30 + (bottom - top - 30) / 2, y_label, 11, "middle").replace(
            "<text ", f'<text transform="rotate(-90 14 {top + 30 + (bottom - top - 30) / 2:.1f})" '
        ),
    ]


def _scale(value: float, low: float, high: float, a: float, b: float) -> float:
    return a if high <= low else a + (value - low) / (high - low) * (b - a)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    step = (high - low) / count if high > low else 1
    return [low + i * step for i in range(count + 1)]


def latency_panel(top: float, cells: dict) -> list[str]:
    """Cumulative distribution of each cell's latencies (first run): share answered within x ms."""
    out = _axes(
        top,
        "Chat latency, concurrency 1: through the gateway vs straight to the backend",
        "latency (ms)",
        "share of requests",
    )
    left, bottom, right, upper = PAD + 20, top + PANEL_H - 40, WIDTH - 160, top + 30
    series = {label: sorted(c["samples_ms"]) for label, c in cells.items() if c.get("samples_ms")}
    high = max((s[int(len(s) * 0.99) - 1] for s in series.values() if s), default=1.0)
    for tick in _ticks(0, high):
        x = _scale(tick, 0, high, left, right)
        out.append(_text(x, bottom + 14, f"{tick:.0f}", 10, "middle"))
    for share in (0, 0.5, 1):
        out.append(_text(left - 4, _scale(share, 0, 1, bottom, upper) + 4, f"{share:g}", 10, "end"))
    for i, (label, samples) in enumerate(series.items()):
        xs = [_scale(min(ms, high), 0, high, left, right) for ms in samples]
        ys = [_scale((n + 1) / len(samples), 0, 1, bottom, upper) for n in range(len(samples))]
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        out.append(f'<polyline fill="none" stroke="{COLOURS[i]}" stroke-width="2" points="{points}"/>')
        out.append(
            _text(right + 10, upper + 16 + 16 * i, label, 11).replace("<text ", f'<text fill="{COLOURS[i]}" ')
        )
    return out


def bars_panel(top: float, bars: dict[str, float], title: str, unit: str) -> list[str]:
    out = [_text(WIDTH / 2, top + 16, title, 14, "middle", "bold")]
    left, right = 330, WIDTH - 70
    high = max(bars.values(), default=1.0) or 1.0
    height = (PANEL_H - 50) / max(len(bars), 1)
    for i, (label, value) in enumerate(bars.items()):
        y = top + 30 + i * height
        out.append(_text(left - 6, y + height * 0.6, label, 11, "end"))
        out.append(
            f'<rect x="{left}" y="{y + 3:.1f}" width="{_scale(value, 0, high, 0, right - left):.1f}" '
            f'height="{height - 6:.1f}" fill="{COLOURS[i % len(COLOURS)]}"/>'
        )
        out.append(
            _text(
                left + _scale(value, 0, high, 0, right - left) + 4,
                y + height * 0.6,
                f"{value:.0f} {unit}",
                11,
            )
        )
    return out


def cost_panel(top: float, figures: dict) -> list[str]:
    out = _axes(top, "Cost curves: wall time over the number of gateways", "gateways", "seconds (median)")
    left, bottom, right, upper = PAD + 20, top + PANEL_H - 40, WIDTH - 220, top + 30
    curves = {
        "first deploy": "first_deploy_{n}",
        "no-op re-run": "noop_{n}",
        "no-op, no validation": "noop_{n}_no_validation",
        "dry run": "dry_run_{n}",
    }
    # Each curve over the gateway counts it was measured at (1, 3 and, for most, 10).
    curves = {
        k: [(n, v.format(n=n)) for n in (1, 3, 10) if v.format(n=n) in figures] for k, v in curves.items()
    }
    curves = {k: v for k, v in curves.items() if len(v) >= 2}
    most = max((n for v in curves.values() for n, _ in v), default=3)
    high = max((figures[name]["median"] for v in curves.values() for _, name in v), default=1.0)
    for n in sorted({n for v in curves.values() for n, _ in v}):
        out.append(_text(_scale(n, 1, most, left, right), bottom + 14, str(n), 10, "middle"))
    for tick in _ticks(0, high):
        out.append(_text(left - 4, _scale(tick, 0, high, bottom, upper) + 4, f"{tick:.0f}", 10, "end"))
    for i, (label, points) in enumerate(curves.items()):
        xy = [
            (_scale(n, 1, most, left, right), _scale(figures[name]["median"], 0, high, bottom, upper))
            for n, name in points
        ]
        out.append(
            f'<polyline fill="none" stroke="{COLOURS[i]}" stroke-width="2" '
            f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in xy)}"/>'
        )
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLOURS[i]}"/>' for x, y in xy]
        out.append(
            _text(right + 10, upper + 16 + 16 * i, label, 11).replace("<text ", f'<text fill="{COLOURS[i]}" ')
        )
    return out


def render_svg(results: dict) -> str:
    lat = results["latency"]
    cells = {"through the gateway": lat["gateway_c1"], "straight to the backend": lat["direct_c1"]}
    bars = {label: cell["rps"]["median"] for label, cell in results["serving_c16"].items()}
    bars["deployed defaults"] = lat["gateway_c16"]["rps"]["median"]
    panels = [
        *latency_panel(0, cells),
        *bars_panel(
            PANEL_H, bars, "Requests/s through the gateway at concurrency 16, each change alone", "req/s"
        ),
        *cost_panel(2 * PANEL_H, results["figures_s"]),
    ]
    height = 3 * PANEL_H + 20
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}">',
            f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
            *panels,
            _text(WIDTH - 10, height - 6, f"make bench, {results['started']}", 10, "end"),
            "</svg>",
            "",
        ]
    )
