"""Charts drawn on the server as SVG: bars, stacked bars and a line.

Each chart is a ``Chart``: the SVG (with a <title> and <desc>, and its numbers written on it)
and the same numbers as a table, so the page reads without JavaScript, without CSS and with a
screen reader. Colours are SVG presentation attributes, which the Content-Security-Policy
allows; layout lives in static/css/admin.css.
"""

from dataclasses import dataclass, field
from itertools import count

from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

# Colours that stay apart for the common kinds of colour blindness (Okabe and Ito).
PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#999999"]
WIDTH = 640
PLOT_TOP = 16
PLOT_LEFT = 48
PLOT_RIGHT = 16
PLOT_BOTTOM = 40  # room for the labels under the bars
_ids = count(1)


@dataclass
class Chart:
    """One chart: its SVG and the same numbers as a table (header row, then rows)."""

    title: str
    svg: str
    header: list
    rows: list = field(default_factory=list)
    empty: bool = False
    note: str = ""  # said under the chart, e.g. what the bars leave out


def _nice_max(value):
    """A round number at or above ``value`` for the top of the axis (1, 2, 4, 5 × 10^n)."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 4, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _number(value, unit=""):
    if value is None:
        return "–"
    text = f"{int(value)}" if float(value).is_integer() else f"{value:.1f}"
    return f"{text}{unit}"


def _svg(title, description, height, body):
    chart_id = f"chart-{next(_ids)}"
    return format_html(
        '<svg class="chart" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'aria-labelledby="{id}-title {id}-desc" xmlns="http://www.w3.org/2000/svg">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>{body}</svg>',
        w=WIDTH,
        h=height,
        id=chart_id,
        title=title,
        desc=description,
        body=mark_safe("".join(body)),  # noqa: S308 - every part below is escaped
    )


def _axis(height, top, unit):
    """The value axis: gridlines at 0, ½ and the top, labelled."""
    plot_height = height - PLOT_TOP - PLOT_BOTTOM
    parts = []
    for fraction in (0, 0.5, 1):
        y = PLOT_TOP + plot_height * (1 - fraction)
        parts.append(
            f'<line x1="{PLOT_LEFT}" x2="{WIDTH - PLOT_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#ccc" stroke-width="1"/>'
            f'<text x="{PLOT_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#555">{escape(_number(top * fraction, unit))}</text>'
        )
    return parts


def _label(x, y, text, anchor="middle", size=11, colour="#333"):
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'fill="{colour}">{escape(text)}</text>'
    )


def _legend(names, y):
    parts, x = [], PLOT_LEFT
    for index, name in enumerate(names):
        colour = PALETTE[index % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(_label(x + 14, y, str(name), anchor="start"))
        x += 30 + 7.5 * len(str(name))
    return parts


def stacked_bar_chart(*, title, description, labels, series, unit=""):
    """Vertical bars, one per label, each split into ``series`` ([(name, values)]); a single
    series is a plain bar chart."""
    height = 240 + (20 if len(series) > 1 else 0)
    totals = [sum(values[i] or 0 for _name, values in series) for i in range(len(labels))]
    top = _nice_max(max(totals, default=0))
    plot_height = 240 - PLOT_TOP - PLOT_BOTTOM
    slot = (WIDTH - PLOT_LEFT - PLOT_RIGHT) / max(len(labels), 1)
    bar = min(slot * 0.7, 48)
    body = _axis(240, top, unit)
    for i, label in enumerate(labels):
        x = PLOT_LEFT + slot * i + (slot - bar) / 2
        y = PLOT_TOP + plot_height
        for index, (name, values) in enumerate(series):
            value = values[i] or 0
            if not value:
                continue
            h = plot_height * value / top
            y -= h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[index % len(PALETTE)]}">'
                f"<title>{escape(f'{label}, {name}: {_number(value, unit)}')}</title></rect>"
            )
        if totals[i]:
            body.append(_label(x + bar / 2, y - 4, _number(totals[i], unit), size=10))
        body.append(_label(x + bar / 2, PLOT_TOP + plot_height + 16, str(label), size=10))
    if len(series) > 1:
        body += _legend([name for name, _values in series], 250)
    header = ["", *(name for name, _values in series)]
    if len(series) > 1:
        header.append(_("Total"))
    rows = []
    for i, label in enumerate(labels):
        row = [str(label), *(_number(values[i], unit) for _name, values in series)]
        if len(series) > 1:
            row.append(_number(totals[i], unit))
        rows.append(row)
    return Chart(
        title=title,
        svg=_svg(title, description, height, body),
        header=header,
        rows=rows,
        empty=not any(totals),
    )


def bar_chart(*, title, description, labels, values, name, unit=""):
    """Vertical bars, one value per label."""
    return stacked_bar_chart(
        title=title, description=description, labels=labels, series=[(name, values)], unit=unit
    )


def horizontal_bar_chart(*, title, description, labels, values, name, unit="", rest=None):
    """One horizontal bar per label, longest first as given; for long names (packages).

    ``rest`` is (label, value) for what the bars leave out: a row of the table and a note,
    not a bar, so that it does not flatten the bars it would dwarf."""
    row_height = 26
    left = 220
    height = PLOT_TOP + row_height * max(len(labels), 1) + 8
    top = _nice_max(max(values, default=0))
    span = WIDTH - left - PLOT_RIGHT - 48
    body = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = PLOT_TOP + row_height * i
        text = str(label) if len(str(label)) <= 32 else f"{str(label)[:31]}…"
        body.append(_label(left - 8, y + 15, text, anchor="end"))
        w = span * (value or 0) / top
        body.append(
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_height - 8}" '
            f'fill="{PALETTE[0]}"><title>{escape(f"{label}: {_number(value, unit)}")}</title>'
            "</rect>"
        )
        body.append(_label(left + w + 6, y + 15, _number(value, unit), anchor="start"))
    rows = [[str(label), _number(value, unit)] for label, value in zip(labels, values, strict=True)]
    note = ""
    if rest is not None:
        rows.append([str(rest[0]), _number(rest[1], unit)])
        note = f"{rest[0]}: {_number(rest[1], unit)}"
    return Chart(
        title=title,
        svg=_svg(title, description, height, body),
        header=["", name],
        rows=rows,
        empty=not any(values),
        note=note,
    )


def line_chart(*, title, description, labels, values, name, unit=""):
    """A line through the values (``None`` leaves a gap), each point labelled."""
    height = 240
    top = _nice_max(max((v for v in values if v is not None), default=0))
    plot_height = height - PLOT_TOP - PLOT_BOTTOM
    slot = (WIDTH - PLOT_LEFT - PLOT_RIGHT) / max(len(labels), 1)
    body = _axis(height, top, unit)
    segments, current = [], []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = PLOT_LEFT + slot * i + slot / 2
        body.append(_label(x, PLOT_TOP + plot_height + 16, str(label), size=10))
        if value is None:
            if current:
                segments.append(current)
            current = []
            continue
        y = PLOT_TOP + plot_height * (1 - value / top)
        current.append((x, y))
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{PALETTE[0]}">'
            f"<title>{escape(f'{label}: {_number(value, unit)}')}</title></circle>"
        )
        body.append(_label(x, y - 8, _number(value, unit), size=10))
    if current:
        segments.append(current)
    for points in segments:
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            # after the three gridlines, under the points
            body.insert(
                3,
                f'<polyline points="{path}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>',
            )
    return Chart(
        title=title,
        svg=_svg(title, description, height, body),
        header=["", name],
        rows=[
            [str(label), _number(value, unit)] for label, value in zip(labels, values, strict=True)
        ],
        empty=all(v is None for v in values),
    )
