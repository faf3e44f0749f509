"""Charts as SVG strings drawn here: no script, no network; every text escaped.

Pure functions: numbers in, markup out. Pages put the result inline (`|safe` in templates), which
needs no asset and no Content-Security-Policy exception; colours are attributes, not inline styles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

FONT = "system-ui, -apple-system, 'PingFang SC', 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif"
INK, MUTED, GRID = "#1f2933", "#52606d", "#d9e2ec"
# The SLA colours the pages use too (app.css): red, amber, green, slate.
BREACHED, AT_RISK, ON_TRACK, PAUSED = "#c62828", "#b76e00", "#2e7d32", "#607d8b"
BLUE, TEAL = "#1d5fa8", "#00897b"

Series = tuple[str, str, Sequence[float]]  # name, colour, one value per category
LineSeries = tuple[str, str, Sequence[float | None]]  # None leaves a gap


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def text_width(text: str, size: float) -> float:
    """A fair guess of rendered width: CJK glyphs are square, Latin ones about 0.6 of the size."""
    return sum(size if ord(ch) >= 0x2E80 else size * 0.6 for ch in text)


def fit(text: str, size: float, room: float) -> str:
    """`text`, shortened with an ellipsis to fit `room` pixels."""
    if text_width(text, size) <= room:
        return text
    while text and text_width(text + "…", size) > room:
        text = text[:-1]
    return text + "…"


def number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def _open(width: float, height: float, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'class="chart" role="img" aria-label="{_e(title)}" font-family="{_e(FONT)}" font-size="13" fill="{INK}">',
        f"<title>{_e(title)}</title>",
    ]


def _empty(title: str, message: str, width: float) -> str:
    parts = _open(width, 60, title)
    parts.append(f'<text x="{width / 2:.0f}" y="36" text-anchor="middle" fill="{MUTED}">{_e(message)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _legend(series: Sequence[tuple[str, str]], width: float, y: float) -> tuple[list[str], float]:
    """Swatches and names, wrapped onto as many lines as needed; returns the markup and the height used."""
    parts, x, line = [], 0.0, 0
    for name, colour in series:
        item = 18 + text_width(name, 12) + 16
        if x and x + item > width:
            x, line = 0.0, line + 1
        top = y + line * 20
        parts.append(
            f'<rect x="{x:.1f}" y="{top:.1f}" width="12" height="12" rx="2" fill="{_e(colour)}"/>'
            f'<text x="{x + 17:.1f}" y="{top + 11:.1f}" font-size="12" fill="{MUTED}">{_e(name)}</text>'
        )
        x += item
    return parts, (line + 1) * 20 + 6


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    colour: str = BLUE,
    empty: str = "—",
    width: float = 360,
    fmt: Callable[[float], str] = number,
) -> str:
    """Horizontal bars, one per label, longest first as given; the value is written at the bar's end."""
    return stacked_bars(labels, [(title, colour, values)], title=title, empty=empty, width=width, fmt=fmt, legend=False)


def stacked_bars(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    empty: str = "—",
    width: float = 360,
    fmt: Callable[[float], str] = number,
    legend: bool = True,
) -> str:
    """Horizontal bars split into coloured parts, one part per series; the total is written at the end."""
    if not labels:
        return _empty(title, empty, width)
    for name, _, values in series:
        if len(values) != len(labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(labels)} labels")
    parts: list[str] = []
    top = 4.0
    if legend:
        swatches, used = _legend([(name, colour) for name, colour, _ in series], width, top)
        parts += swatches
        top += used
    label_room = min(width * 0.45, max(text_width(label, 13) for label in labels) + 8)
    totals = [sum(float(values[i]) for _, _, values in series) for i in range(len(labels))]
    widest = max(totals) or 1.0
    value_room = text_width(fmt(widest), 12) + 10
    bar_room = width - label_room - value_room
    row = 26.0
    for i, label in enumerate(labels):
        y = top + i * row
        parts.append(f"<g><title>{_e(label)}: {_e(fmt(totals[i]))}</title>")
        shown = fit(label, 13, label_room - 8)
        parts.append(f'<text x="{label_room - 8:.1f}" y="{y + 17:.1f}" text-anchor="end">{_e(shown)}</text>')
        x = label_room
        for name, colour, values in series:
            value = float(values[i])
            if value <= 0:
                continue
            length = bar_room * value / widest
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 4:.1f}" width="{max(length, 1.5):.1f}" height="18" fill="{_e(colour)}">'
                f"<title>{_e(label)} · {_e(name)}: {_e(fmt(value))}</title></rect>"
            )
            x += length
        parts.append(
            f'<text x="{x + 5:.1f}" y="{y + 17:.1f}" font-size="12" fill="{MUTED}">{_e(fmt(totals[i]))}</text></g>'
        )
    height = top + len(labels) * row + 4
    return "".join([*_open(width, height, title), *parts, "</svg>"])


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[LineSeries],
    *,
    title: str,
    y_max: float = 1.0,
    fmt: Callable[[float], str] = percent,
    empty: str = "—",
    width: float = 360,
    height: float = 230,
) -> str:
    """Lines over categories on x (e.g. weeks), from 0 to `y_max`, with gridlines at quarters."""
    if not x_labels:
        return _empty(title, empty, width)
    for name, _, values in series:
        if len(values) != len(x_labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(x_labels)} labels")
    parts, used = _legend([(name, colour) for name, colour, _ in series], width, 4)
    # Room on the right for half the last x label, which is centred on the last point.
    left, top, bottom = text_width(fmt(y_max), 12) + 10, used + 10, 28.0
    right = max(12.0, text_width(x_labels[-1], 12) / 2 + 4)
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(x_labels) - 1, 1)

    def x_at(i: int) -> float:
        return left + (i * step if len(x_labels) > 1 else plot_w / 2)

    def y_at(value: float) -> float:
        return top + plot_h * (1 - min(max(value / y_max if y_max else 0, 0), 1))

    for quarter in range(5):
        level = y_max * quarter / 4
        y = y_at(level)
        parts.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{width - right:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" font-size="12" fill="{MUTED}">'
            f"{_e(fmt(level))}</text>"
        )
    every = max(1, round(len(x_labels) * 42 / plot_w))  # keep x labels from overlapping
    for i, label in enumerate(x_labels):
        if i % every == 0 or i == len(x_labels) - 1:
            parts.append(
                f'<text x="{x_at(i):.1f}" y="{height - 8:.1f}" text-anchor="middle" font-size="12" '
                f'fill="{MUTED}">{_e(label)}</text>'
            )
    for name, colour, values in series:
        runs: list[list[tuple[float, float]]] = [[]]
        dots = []
        for i, value in enumerate(values):
            if value is None:
                runs.append([])
                continue
            runs[-1].append((x_at(i), y_at(float(value))))
            dots.append(
                f'<circle cx="{x_at(i):.1f}" cy="{y_at(float(value)):.1f}" r="3.5" fill="{_e(colour)}">'
                f"<title>{_e(name)} {_e(x_labels[i])}: {_e(fmt(float(value)))}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                parts.append(f'<polyline points="{points}" fill="none" stroke="{_e(colour)}" stroke-width="2.5"/>')
        parts += dots
    return "".join([*_open(width, height, title), *parts, "</svg>"])
