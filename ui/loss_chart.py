"""The Training tab's loss chart, drawn as an SVG string for a `gr.HTML`.

Gradio's LinePlot could not do what this chart must: epochs are whole numbers (its axis put
ticks at 1.2, 1.4 … on a short run), the legend has no title (it showed the column name,
"curve"), and before the first epoch it says so instead of drawing an empty grid. Drawing
it ourselves also ends the redraw dance that plot needed to show new data.

`loss_chart_svg` is a pure function of the losses: tests read its output without a browser.
Points carry `data-epoch` / `data-curve` attributes, so a test can count what is drawn.
"""

from __future__ import annotations

import html
import math

import pandas as pd

CURVE_COLOURS = {"train": "#2563eb", "validation": "#ea580c"}
WIDTH, HEIGHT = 760, 300
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 36, 70  # the plot area's margins (axis labels, title, legend)
MAX_X_TICKS = 10
Y_TICKS = 5
_TEXT = "fill: var(--body-text-color, #374151); font-family: inherit"
_GRID = "stroke: var(--border-color-primary, #e5e7eb)"


def epoch_ticks(first: int, last: int, most: int = MAX_X_TICKS) -> list[int]:
    """Whole-number ticks between `first` and `last` (inclusive), at a step of 1, 2, 5, 10,
    20, 50 … epochs: the smallest that gives at most `most` ticks."""
    step = 1
    for scale in (1, 10, 100, 1000, 10000, 100000):
        for base in (1, 2, 5):
            step = base * scale
            if (last - first) // step + 1 <= most:
                return [t for t in range(first, last + 1) if t % step == 0 or step == 1]
    return [first, last]


def value_ticks(low: float, high: float, count: int = Y_TICKS) -> tuple[list[float], int]:
    """About `count` round values covering [low, high], and the decimals they need."""
    span = max(high - low, 1e-12)
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = [start + i * step for i in range(int(math.ceil((high - start) / step)) + 1)]
    return ticks, max(0, -int(math.floor(math.log10(step))))


def _x(epoch: float, first: float, last: float) -> float:
    width = WIDTH - LEFT - RIGHT
    return LEFT + (epoch - first) / (last - first) * width if last > first else LEFT + width / 2


def _y(value: float, low: float, high: float) -> float:
    return TOP + (high - value) / (high - low) * (HEIGHT - TOP - BOTTOM)


def _text(x: float, y: float, content: str, anchor: str = "middle", size: int = 12, extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" style="{_TEXT}"{extra}>'
            f"{html.escape(content)}</text>")


def loss_chart_svg(losses: pd.DataFrame, total_epochs: int, empty_text: str = "no epochs yet") -> str:
    """The chart of `losses` (columns epoch, loss, curve) on an x axis from epoch 1 to the run's
    planned end; with no losses, the axis and `empty_text`."""
    last_epoch = int(losses["epoch"].max()) if len(losses) else 0
    first, last = 1, max(1, int(total_epochs or 0), last_epoch)
    bottom = HEIGHT - BOTTOM
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
             f'aria-label="Loss per epoch" class="loss-chart">',
             _text(WIDTH / 2, 20, "Loss per epoch", size=14, extra=' font-weight="600"'),
             f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" style="{_GRID}"/>']
    for tick in epoch_ticks(first, last):
        x = _x(tick, first, last)
        parts.append(f'<g class="x-tick"><line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" style="{_GRID}"/>'
                     + _text(x, bottom + 16, str(tick)) + "</g>")
    parts.append(_text(LEFT + (WIDTH - LEFT - RIGHT) / 2, bottom + 34, "epoch"))
    if losses.empty:
        parts.append(_text(LEFT + (WIDTH - LEFT - RIGHT) / 2, TOP + (bottom - TOP) / 2, empty_text, size=15,
                           extra=' class="empty-state" opacity="0.75"'))
        return "".join(parts) + "</svg>"
    parts += _curves(losses, first, last)
    return "".join(parts) + "</svg>"


def _curves(losses: pd.DataFrame, first: int, last: int) -> list[str]:
    """The y axis, one line with its points per curve, and the legend (no title: the names say it)."""
    low, high = float(losses["loss"].min()), float(losses["loss"].max())
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 0.5
    ticks, decimals = value_ticks(low - pad, high + pad)
    low, high = ticks[0], ticks[-1]
    parts = []
    for tick in ticks:
        y = _y(tick, low, high)
        parts.append(f'<g class="y-tick"><line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                     f'style="{_GRID}"/>' + _text(LEFT - 8, y + 4, f"{tick:.{decimals}f}", anchor="end") + "</g>")
    parts.append(_text(16, TOP + (HEIGHT - BOTTOM - TOP) / 2, "loss",
                       extra=f' transform="rotate(-90 16 {TOP + (HEIGHT - BOTTOM - TOP) / 2:.1f})"'))
    curves = [c for c in CURVE_COLOURS if c in set(losses["curve"])]
    for curve in curves:
        rows = losses[losses["curve"] == curve].sort_values("epoch")
        points = [(_x(e, first, last), _y(v, low, high), int(e), float(v)) for e, v in zip(rows["epoch"], rows["loss"])]
        colour = CURVE_COLOURS[curve]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}" data-curve="{curve}" data-epoch="{e}">'
                  f"<title>epoch {e} · {curve} {v:.4g}</title></circle>" for x, y, e, v in points]
    legend_x = WIDTH / 2 - 60 * len(curves) + 10
    for index, curve in enumerate(curves):
        x = legend_x + index * 120
        parts.append(f'<g class="legend-item"><circle cx="{x:.1f}" cy="{HEIGHT - 14}" r="5" '
                     f'fill="{CURVE_COLOURS[curve]}"/>' + _text(x + 10, HEIGHT - 10, curve, anchor="start") + "</g>")
    return parts
