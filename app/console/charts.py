"""Charts drawn on the server as SVG: no chart library to pin and serve, no script, nothing for the CSP to allow.

Why server-side: the console's pages are rendered there anyway, an inline <svg> needs neither script nor a
style attribute (the CSP forbids both), and it prints and screenshots as it looks. Readable without colour:
every bar carries its value as text, series differ by pattern (solid, hatched, dotted) as well as by colour,
the legend names each, and the figures are also in a table next to the chart (the caller's template) for
screen readers and for copying. Colours come from console.css classes (`chart-s0`…), not from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, BAR_HEIGHT, GAP, LABEL_WIDTH, VALUE_WIDTH = 640, 18, 6, 180, 80
PATTERNS = 3  # series 0 solid, 1 hatched, 2 dotted (defined once per chart in <defs>)


@dataclass(frozen=True)
class Series:
    """One named row of figures, one per category (None: no figure, drawn as "—")."""

    name: str
    values: Sequence[float | None]


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{text}{unit}"


def _defs(chart_id: str) -> str:
    return (f'<defs><pattern id="{chart_id}-p1" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><rect width="6" height="6" class="chart-bg"/>'
            f'<rect width="3" height="6" class="chart-ink"/></pattern>'
            f'<pattern id="{chart_id}-p2" width="5" height="5" patternUnits="userSpaceOnUse">'
            f'<rect width="5" height="5" class="chart-bg"/><circle cx="2.5" cy="2.5" r="1.5" class="chart-ink"/>'
            f'</pattern></defs>')


def bar_chart(chart_id: str, title: str, categories: Sequence[str], series: Sequence[Series],
              unit: str = "") -> Markup:
    """Horizontal bars, one group per category and one bar per series in it, each labelled with its value.

    `chart_id` makes the SVG's ids unique on the page (and names it for tests: `#<chart_id>`)."""
    if any(len(one.values) != len(categories) for one in series):
        raise ValueError("every series needs one value per category")
    top = max((value or 0) for one in series for value in one.values) if series and categories else 0
    scale = (WIDTH - LABEL_WIDTH - VALUE_WIDTH) / top if top else 0
    legend_height = 22 if len(series) > 1 else 0
    group = len(series) * (BAR_HEIGHT + 2) + GAP
    height = legend_height + max(1, len(categories)) * group + GAP
    parts = [f'<svg id="{escape(chart_id)}" class="chart" role="img" viewBox="0 0 {WIDTH} {height}" '
             f'aria-labelledby="{escape(chart_id)}-title" xmlns="http://www.w3.org/2000/svg">',
             f'<title id="{escape(chart_id)}-title">{escape(title)}</title>', _defs(escape(chart_id))]
    if legend_height:
        x = LABEL_WIDTH
        for index, one in enumerate(series):
            parts.append(f'<rect x="{x}" y="4" width="14" height="14" {_fill(chart_id, index)}/>'
                         f'<text x="{x + 20}" y="16" class="chart-label">{escape(one.name)}</text>')
            x += 40 + 14 * len(one.name)
    if not categories:
        parts.append(f'<text x="{LABEL_WIDTH}" y="{legend_height + 16}" class="chart-label">暂无数据</text>')
    for row, category in enumerate(categories):
        y0 = legend_height + row * group + GAP
        parts.append(f'<text x="{LABEL_WIDTH - 8}" y="{y0 + BAR_HEIGHT - 4}" text-anchor="end" '
                     f'class="chart-label">{escape(category)}</text>')
        for index, one in enumerate(series):
            value = one.values[row]
            y = y0 + index * (BAR_HEIGHT + 2)
            width = max(1.0, (value or 0) * scale) if value else 0
            label = f"{one.name}:{_number(value, unit)}" if len(series) > 1 else _number(value, unit)
            parts.append(f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" '
                         f'{_fill(chart_id, index)}><title>{escape(category)} {escape(label)}</title></rect>'
                         f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + BAR_HEIGHT - 4}" '
                         f'class="chart-value">{escape(_number(value, unit))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _fill(chart_id: str, index: int) -> str:
    pattern = index % PATTERNS
    series_class = f"chart-s{index % PATTERNS}"
    if pattern == 0:
        return f'class="{series_class}"'
    return f'class="{series_class}" fill="url(#{escape(chart_id)}-p{pattern})"'
