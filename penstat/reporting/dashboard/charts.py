"""Charts as inline SVG, drawn in Python from published values (no JavaScript library).

Every chart is an image with a title and a description (role="img"); the numbers it
draws are in the table beside it (penstat.reporting.dashboard.render). A withheld value
(flag `c`) is never drawn as zero: a line breaks there and a point is left out, marked
`c` on the axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from penstat.reporting.dashboard.flags import Cell

PALETTE = {"small": "#1b7837", "medium": "#2166ac", "large": "#b2182b", "all": "#333333"}
OTHER_COLOURS = ("#762a83", "#e08214", "#35978f", "#8c510a", "#c51b7d", "#4d4d4d", "#5aae61")


def colour(name: str, index: int) -> str:
    return PALETTE.get(name, OTHER_COLOURS[index % len(OTHER_COLOURS)])


def _nice_range(low: float, high: float) -> tuple[float, float, float]:
    """Axis bounds and tick step enclosing [low, high] (Heckbert's nice numbers)."""
    if not math.isfinite(low) or not math.isfinite(high):
        low, high = 0.0, 1.0
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    raw = (high - low) / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def _tick(value: float, step: float) -> str:
    return f"{value:.0f}" if step >= 1 else f"{value:.{max(0, -math.floor(math.log10(step)))}f}"


def _frame(title: str, desc: str, width: int, height: int, body: list[str]) -> str:
    ident = "chart-" + "".join(ch if ch.isalnum() else "-" for ch in title.lower())[:40]
    return (f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" aria-labelledby="{ident}-t {ident}-d">'
            f'<title id="{ident}-t">{escape(title)}</title>'
            f'<desc id="{ident}-d">{escape(desc)}</desc>' + "".join(body) + "</svg>")


@dataclass(frozen=True)
class Series:
    name: str
    points: list[Cell]  # one per x label, in order


def line_chart(title: str, x_labels: Sequence[str], series: Sequence[Series], *,
               reference: float | None = None, scale: float = 1.0, unit: str = "",
               width: int = 720, height: int = 300) -> str:
    """Lines over x; a dashed reference line (e.g. density 100); provisional points (flag
    `p`) hollow and their months shaded; a withheld or missing point breaks its line."""
    left, right, top, bottom = 52, 110, 12, 34
    values = [c.value * scale for s in series for c in s.points
              if isinstance(c.value, int | float)]
    if reference is not None:
        values.append(reference)
    low, high, step = _nice_range(min(values, default=0.0), max(values, default=1.0))
    n = max(len(x_labels), 2)
    w, h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + w * i / (n - 1)

    def y(v: float) -> float:
        return top + h * (1 - (v - low) / (high - low))

    body: list[str] = []
    provisional = sorted({i for s in series for i, c in enumerate(s.points) if "p" in c.flags})
    for i in provisional:
        body.append(f'<rect class="provisional" x="{x(i) - w / (2 * (n - 1)):.1f}" y="{top}" '
                    f'width="{w / (n - 1):.1f}" height="{h}" fill="#f2e6c9"/>')
    tick = low
    while tick <= high + step / 2:
        body.append(f'<line x1="{left}" x2="{left + w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                    'stroke="#e5e5e5"/>'
                    f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" '
                    f'font-size="11">{_tick(tick, step)}</text>')
        tick += step
    every = max(1, math.ceil(len(x_labels) / 8))
    for i, label in enumerate(x_labels):
        if i % every == 0 or i == len(x_labels) - 1:
            body.append(f'<text x="{x(i):.1f}" y="{height - 12}" text-anchor="middle" '
                        f'font-size="11">{escape(label)}</text>')
    if reference is not None:
        body.append(f'<line class="reference" x1="{left}" x2="{left + w}" y1="{y(reference):.1f}" '
                    f'y2="{y(reference):.1f}" stroke="#000" stroke-dasharray="6 4"/>'
                    f'<text x="{left + w + 4}" y="{y(reference) + 4:.1f}" font-size="11">'
                    f'{_tick(reference, 1)}</text>')
    for k, s in enumerate(series):
        stroke = colour(s.name, k)
        runs: list[list[tuple[float, float]]] = [[]]
        for i, cell in enumerate(s.points):
            if isinstance(cell.value, int | float):
                runs[-1].append((x(i), y(cell.value * scale)))
            elif runs[-1]:
                runs.append([])
        for run in runs:
            if len(run) > 1:
                pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in run)
                body.append(f'<polyline fill="none" stroke="{stroke}" stroke-width="2" '
                            f'points="{pts}"/>')
        for i, cell in enumerate(s.points):
            if isinstance(cell.value, int | float):
                hollow = "p" in cell.flags
                body.append(f'<circle cx="{x(i):.1f}" cy="{y(cell.value * scale):.1f}" r="2.5" '
                            f'fill="{"#fff" if hollow else stroke}" stroke="{stroke}"/>')
        last = next((c for c in reversed(s.points) if isinstance(c.value, int | float)), None)
        if last is not None:
            body.append(f'<text x="{left + w + 26}" y="{y(last.value * scale) + 4:.1f}" '
                        f'font-size="11" fill="{stroke}">{escape(s.name)}</text>')
    desc = (f"{', '.join(s.name for s in series)} from {x_labels[0] if x_labels else ''} to "
            f"{x_labels[-1] if x_labels else ''}{' in ' + unit if unit else ''}"
            + (f"; dashed line at {reference:g}" if reference is not None else "")
            + ("; shaded months and hollow points are provisional" if provisional else ""))
    return _frame(title, desc, width, height, body)


@dataclass(frozen=True)
class Interval:
    label: str
    raw: Cell
    estimate: Cell
    low: Cell
    high: Cell


def interval_chart(title: str, items: Sequence[Interval], *, scale: float = 100.0,
                   unit: str = "%", width: int = 720, row: int = 26) -> str:
    """One row per group: the raw rate (open square) and the adjusted rate (dot) with its
    interval; a withheld value is written `c`, not drawn."""
    left, right, top = 190, 30, 24
    height = top + row * len(items) + 30
    values = [c.value * scale for it in items for c in (it.raw, it.estimate, it.low, it.high)
              if isinstance(c.value, int | float)]
    low, high, step = _nice_range(min(values, default=0.0), max(values, default=1.0))
    w = width - left - right

    def x(v: float) -> float:
        return left + w * (v - low) / (high - low)

    adjusted = any(isinstance(it.estimate.value, int | float) or it.estimate.withheld
                   for it in items)
    legend = "\u25a1 raw rate" + ("   \u25cf adjusted rate with 95 % interval" if adjusted else "")
    body = [f'<text x="{left}" y="14" font-size="11">{legend}</text>']
    tick = low
    while tick <= high + step / 2:
        body.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" '
                    f'y2="{top + row * len(items)}" stroke="#e5e5e5"/>'
                    f'<text x="{x(tick):.1f}" y="{height - 10}" text-anchor="middle" '
                    f'font-size="11">{_tick(tick, step)}{unit}</text>')
        tick += step
    for i, it in enumerate(items):
        cy = top + row * i + row / 2
        body.append(f'<text x="{left - 8}" y="{cy + 4:.1f}" text-anchor="end" font-size="12">'
                    f'{escape(it.label)}</text>')
        nums = {k: c.value * scale for k, c in (("raw", it.raw), ("est", it.estimate),
                                                 ("low", it.low), ("high", it.high))
                if isinstance(c.value, int | float)}
        if "low" in nums and "high" in nums:
            body.append(f'<line x1="{x(nums["low"]):.1f}" x2="{x(nums["high"]):.1f}" '
                        f'y1="{cy:.1f}" y2="{cy:.1f}" stroke="#2166ac" stroke-width="2"/>')
        if "est" in nums:
            body.append(f'<circle cx="{x(nums["est"]):.1f}" cy="{cy:.1f}" r="4" fill="#2166ac"/>')
        if "raw" in nums:
            body.append(f'<rect x="{x(nums["raw"]) - 4:.1f}" y="{cy - 4:.1f}" width="8" '
                        'height="8" fill="none" stroke="#b2182b" stroke-width="1.5"/>')
        if any(c.withheld for c in (it.raw, it.estimate)):
            body.append(f'<text x="{left + 4}" y="{cy + 4:.1f}" font-size="12" '
                        'class="withheld">c</text>')
    return _frame(title, f"{len(items)} groups: raw and adjusted rates in {unit}", width,
                  height, body)


def sparkline(points: Sequence[Cell], *, width: int = 110, height: int = 24,
              reference: float | None = 100.0) -> str:
    values = [c.value for c in points if isinstance(c.value, int | float)]
    if not values:
        return ""
    low = min([*values, reference] if reference is not None else values)
    high = max([*values, reference] if reference is not None else values)
    span = (high - low) or 1.0
    n = max(len(points), 2)

    def xy(i: int, v: float) -> str:
        x = 2 + (width - 4) * i / (n - 1)
        return f"{x:.1f},{height - 2 - (height - 4) * (v - low) / span:.1f}"

    body = []
    if reference is not None:
        ry = height - 2 - (height - 4) * (reference - low) / span
        body.append(f'<line x1="0" x2="{width}" y1="{ry:.1f}" y2="{ry:.1f}" stroke="#999" '
                    'stroke-dasharray="2 2"/>')
    run: list[str] = []
    for i, c in enumerate([*points, Cell(None)]):
        if isinstance(c.value, int | float):
            run.append(xy(i, c.value))
        else:
            if len(run) > 1:
                body.append(f'<polyline fill="none" stroke="#2166ac" points="{" ".join(run)}"/>')
            run = []
    return (f'<svg class="spark" role="img" aria-label="density by month" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}">' + "".join(body) + "</svg>")


@dataclass(frozen=True)
class FunnelPoint:
    label: str
    size: float
    rate: float


def funnel_plot(title: str, points: Sequence[FunnelPoint], centre: float, *,
                scale: float = 100.0, width: int = 720, height: int = 340) -> str:
    """Rates against cohort size with 95 % and 99.8 % control limits around the national
    rate, p +/- z sqrt(p (1 - p) / n) (Spiegelhalter, "Funnel plots for comparing
    institutional performance", Statistics in Medicine 24, 2005)."""
    left, right, top, bottom = 52, 20, 12, 34
    w, h = width - left - right, height - top - bottom
    sizes = [p.size for p in points if p.size > 0] or [1.0]
    n_max = max(sizes) * 1.05
    n_min = max(1.0, min(sizes) * 0.8)

    def limit(n: float, z: float, sign: int) -> float:
        return min(1.0, max(0.0, centre + sign * z * math.sqrt(centre * (1 - centre) / n)))

    lows = [limit(n_min, 3.09, -1), *(p.rate for p in points)]
    highs = [limit(n_min, 3.09, 1), *(p.rate for p in points)]
    low, high, step = _nice_range(min(lows) * scale, max(highs) * scale)

    def x(n: float) -> float:
        return left + w * (n - n_min) / (n_max - n_min)

    def y(v: float) -> float:
        return top + h * (1 - (v * scale - low) / (high - low))

    body: list[str] = []
    tick = low
    while tick <= high + step / 2:
        body.append(f'<line x1="{left}" x2="{left + w}" y1="{y(tick / scale):.1f}" '
                    f'y2="{y(tick / scale):.1f}" stroke="#e5e5e5"/><text x="{left - 6}" '
                    f'y="{y(tick / scale) + 4:.1f}" text-anchor="end" font-size="11">'
                    f'{_tick(tick, step)}</text>')
        tick += step
    grid = [n_min + (n_max - n_min) * i / 60 for i in range(61)]
    for z, dash in ((1.96, "4 3"), (3.09, "1 3")):
        for sign in (-1, 1):
            pts = " ".join(f"{x(n):.1f},{y(limit(n, z, sign)):.1f}" for n in grid)
            body.append(f'<polyline fill="none" stroke="#666" stroke-dasharray="{dash}" '
                        f'points="{pts}"/>')
    body.append(f'<line x1="{left}" x2="{left + w}" y1="{y(centre):.1f}" y2="{y(centre):.1f}" '
                'stroke="#000"/>')
    for p in points:
        body.append(f'<circle cx="{x(p.size):.1f}" cy="{y(p.rate):.1f}" r="3" fill="#2166ac">'
                    f'<title>{escape(p.label)}: {p.rate * scale:.1f} (n = {p.size:g})</title>'
                    '</circle>')
    body.append(f'<text x="{left + w / 2}" y="{height - 6}" text-anchor="middle" '
                'font-size="11">cohort size</text>')
    return _frame(title, f"{len(points)} facilities; lines: national rate, 95 % and 99.8 % "
                  "control limits", width, height, body)
