"""Accessible SVG charts with no dependencies: a (stacked) bar chart and a line chart. Pure
and deterministic: the same data gives the same markup, byte for byte.

Accessibility: the root has ``role="img"`` and ``aria-labelledby`` naming its ``<title>`` and
``<desc>``; every bar group and every point carries a ``<title>`` with its period and value
(a tooltip, and what a screen reader reads); colours are the colour-blind-safe Okabe–Ito
hues, darkened to at least 3:1 contrast on white, and a legend names every series in text.
Every piece of text is escaped (:func:`html.escape`), so a family or destination name can
never inject markup into the console page.

Markup the tests (and a console's CSS) can rely on: one ``<g class="bar">`` per period in a
bar chart, one ``<rect class="segment">`` per non-zero value inside it; one
``<circle class="point">`` per known value in a line chart, and a ``<path class="line">``
per unbroken run (an unknown value breaks the line rather than drawing it at 0);
``<text class="x-label">`` and ``<text class="y-label">`` on the axes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 720, 340
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 40, 96  # margins: y labels, -, title, x labels + legend
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
MAX_X_LABELS = 12
PALETTE = ("#0072B2", "#B84A00", "#007A5A", "#8E3A80", "#1A1A1A", "#5A5A00")
TEXT = "#1A1A1A"
GRID = "#C8C8C8"
NO_DATA = "Inga data för perioden"

Format = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class Series:
    """One named row of values, one per period label; None where unknown."""

    name: str
    values: Sequence[float | None]
    colour: str = PALETTE[0]


def plain(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}".replace(".", ",")


def percent(value: float) -> str:
    return f"{plain(value)} %"


def nice_step(value: float, *, integer: bool = False) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value`` (1 for ≤ 0);
    a whole number when ``integer`` (counts get no 2.5 ticks)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    steps = [power * m for m in (1, 2, 2.5, 5, 10)]
    if integer:
        steps = [s for s in steps if s >= 1 and s == int(s)] or [1]
    return float(next(s for s in steps if s >= value))


def axis(largest: float, *, integer: bool = False) -> tuple[float, float]:
    """(top, tick step) of a 0-based value axis with at most 4 steps above 0."""
    step = nice_step(largest / 4, integer=integer)
    return max(step, step * math.ceil(largest / step)), step


def _n(value: float) -> str:
    return f"{value:.1f}"


def _x(i: int, count: int) -> float:
    """Centre of the i-th of ``count`` slots."""
    return LEFT + PLOT_W * (i + 0.5) / count


def _y(value: float, top: float) -> float:
    return TOP + PLOT_H - PLOT_H * value / top


def _open(chart_id: str, title: str, desc: str) -> list[str]:
    cid = escape(chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'aria-labelledby="{cid}-title {cid}-desc" '
        f'font-family="system-ui, sans-serif" font-size="12" fill="{TEXT}">',
        f'<title id="{cid}-title">{escape(title)}</title>',
        f'<desc id="{cid}-desc">{escape(desc)}</desc>',
        '<rect x="0" y="0" width="100%" height="100%" fill="#FFFFFF"/>',
        f'<text class="chart-title" x="{LEFT}" y="22" font-size="15" font-weight="bold">'
        f"{escape(title)}</text>",
    ]


def _axes(labels: Sequence[str], top: float, step: float, fmt: Format, y_title: str) -> list[str]:
    parts = []
    for k in range(round(top / step) + 1):
        value = step * k
        y = _n(_y(value, top))
        parts.append(f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="{GRID}"/>')
        parts.append(
            f'<text class="y-label" x="{LEFT - 6}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(fmt(value))}</text>'
        )
    base = _n(TOP + PLOT_H)
    parts.append(
        f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="{TEXT}"/>'
    )
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="{TEXT}"/>')
    parts.append(
        f'<text class="y-title" x="14" y="{_n(TOP + PLOT_H / 2)}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_n(TOP + PLOT_H / 2)})">{escape(y_title)}</text>'
    )
    step = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    for i, label in enumerate(labels):
        if i % step:
            continue
        x = _n(_x(i, len(labels)))
        parts.append(
            f'<text class="x-label" x="{x}" y="{_n(TOP + PLOT_H + 18)}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    parts, x, y = [], float(LEFT), HEIGHT - 24
    for s in series:
        parts.append(
            f'<rect class="legend-key" x="{_n(x)}" y="{y - 10}" width="12" height="12" '
            f'fill="{escape(s.colour)}"/>'
        )
        parts.append(f'<text class="legend" x="{_n(x + 16)}" y="{y}">{escape(s.name)}</text>')
        x += 28 + 7 * len(s.name)
    return parts


def _no_data(parts: list[str]) -> None:
    parts.append(
        f'<text class="no-data" x="{_n(LEFT + PLOT_W / 2)}" y="{_n(TOP + PLOT_H / 2)}" '
        f'text-anchor="middle" font-size="14">{escape(NO_DATA)}</text>'
    )


def bar_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    y_title: str,
    fmt: Format = plain,
    integer: bool = True,
) -> str:
    """Bars stacked per label (one series gives plain bars). Unknown values count as 0;
    ``integer``: the values are counts, ticked in whole numbers."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    top, step = axis(max(totals, default=0), integer=integer)
    parts = _open(chart_id, title, desc) + _axes(labels, top, step, fmt, y_title)
    width = PLOT_W / max(len(labels), 1) * 0.7
    for i, label in enumerate(labels):
        x = _n(_x(i, len(labels)) - width / 2)
        tip = f"{label}: {fmt(totals[i])}" + "".join(
            f", {s.name} {fmt(s.values[i] or 0)}" for s in series if len(series) > 1
        )
        parts.append(f'<g class="bar" data-period="{escape(label)}"><title>{escape(tip)}</title>')
        base = 0.0
        for s in series:
            value = s.values[i] or 0
            if value <= 0:
                continue
            y, height = _y(base + value, top), PLOT_H * value / top
            parts.append(
                f'<rect class="segment" data-series="{escape(s.name)}" x="{x}" y="{_n(y)}" '
                f'width="{_n(width)}" height="{_n(height)}" fill="{escape(s.colour)}"/>'
            )
            base += value
        parts.append("</g>")
    if not any(totals):
        _no_data(parts)
    if len(series) > 1:
        parts += _legend(series)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def line_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    y_title: str,
    y_max: float | None = None,
    fmt: Format = plain,
) -> str:
    """One line per series over a 0-based axis up to ``y_max`` (ticked in quarters;
    default: a round number at or above the largest value); a None breaks the line."""
    known = [v for s in series for v in s.values if v is not None]
    top, step = (y_max, y_max / 4) if y_max is not None else axis(max(known, default=0))
    parts = _open(chart_id, title, desc) + _axes(labels, top, step, fmt, y_title)
    for s in series:
        runs: list[list[str]] = [[]]
        for i, value in enumerate(s.values):
            if value is None:
                runs.append([])
                continue
            runs[-1].append(f"{_n(_x(i, len(labels)))} {_n(_y(value, top))}")
        for run in runs:
            if len(run) > 1:
                parts.append(
                    f'<path class="line" data-series="{escape(s.name)}" '
                    f'd="M {" L ".join(run)}" fill="none" stroke="{escape(s.colour)}" '
                    'stroke-width="2.5"/>'
                )
        for i, value in enumerate(s.values):
            if value is None:
                continue
            parts.append(
                f'<circle class="point" data-series="{escape(s.name)}" '
                f'data-period="{escape(labels[i])}" cx="{_n(_x(i, len(labels)))}" '
                f'cy="{_n(_y(value, top))}" r="3.5" fill="{escape(s.colour)}">'
                f"<title>{escape(f'{labels[i]}, {s.name}: {fmt(value)}')}</title></circle>"
            )
    if not known:
        _no_data(parts)
    parts += _legend(series)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
