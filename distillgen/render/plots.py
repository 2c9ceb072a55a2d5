"""Small SVG plots (svgwrite) for the experiment figures: line and polar plots of tuning curves,
paired bars for before/after, overlaid histograms. Deterministic, with a `title`/`desc` and a
`title` on every data point, so a reader can hover over a value (or hear it).

Every chart is drawn twice, for a desktop column (WIDE) and for a phone's (NARROW), and the
page's CSS shows the one that fits (`.plot .wide`, `.plot .narrow`): a chart scaled down as a
picture would shrink its text to 6 px on a phone. Each is shown at most at its own size, so its
text is the size written here, 11–12 px. Legends sit in a band above the plotting area, never
on the data; bar series have box swatches, line series line swatches with their dashes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from distillgen.render.words import minus, number, plural

if TYPE_CHECKING:
    import svgwrite

# Okabe–Ito: distinguishable with every common colour-vision deficiency. The page's CSS sets
# the same colours per theme (class s0…s7); these attributes are the fallback outside a page.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
# ... and each series has its own line style too, so that colour is never all that tells
# two curves apart (a reader with no colour vision, a greyscale print).
DASHES = ("", "7,3", "2,3", "9,3,2,3", "4,2,4,6", "1,2", "12,4", "5,2,1,2")
BASELINE_DASH = "5,4"  # a `dashed` series: a baseline, e.g. the untrained network
BEFORE = "#999999"
TICK, LABEL = 11, 12  # font sizes (CSS px) of tick labels, and of axis titles and legends
ICON = 24  # a stimulus drawn under its tick

Series = tuple[str, list[float]]  # a label and one value per x


@dataclass(frozen=True)
class Layout:
    """The width a chart is drawn for, and its margins."""

    name: str  # "wide" or "narrow": the CSS class that shows it ("any-width": always shown)
    width: int
    left: int
    right: int
    plot_height: int
    x_ticks: int  # about how many ticks a numeric x axis gets (a histogram's: two more)
    y_ticks: int


WIDE = Layout("wide", 480, 56, 16, 200, 6, 5)  # a desktop text column is 472-704 px
NARROW = Layout("narrow", 330, 48, 10, 170, 4, 4)
# The polar plot fits a phone's column as it is, so it is drawn once, for any width; only this
# layout's name and width are read.
POLAR = Layout("any-width", 330, 8, 8, 250, 0, 0)


def _both(draw: Callable[[Layout], str]) -> str:
    return draw(WIDE) + draw(NARROW)


def _drawing(layout: Layout, height: float, title: str, desc: str, css: str) -> svgwrite.Drawing:
    import svgwrite  # here: a rebuild that draws nothing never loads it

    width = layout.width
    drawing = svgwrite.Drawing(
        size=(width, round(height)), viewBox=f"0 0 {width} {round(height)}", profile="full", debug=False
    )
    drawing.attribs.update({"class": f"plot {css} {layout.name}", "role": "img"})
    drawing.set_desc(title=title, desc=desc)
    return drawing


def text_width(text: str, size: float) -> float:
    """About how wide `text` is set in the page's sans-serif at `size` px (an average glyph is
    a little over half the size): enough to flow legends and to know when labels fit."""
    return 0.56 * size * len(text)


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round numbers that span [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    step = 10 ** math.floor(math.log10((hi - lo) / count))
    for multiple in (1, 2, 5, 10):
        if (hi - lo) / (step * multiple) <= count:
            step *= multiple
            break
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def tick_labels(ticks: Sequence[float], unit: str = "") -> list[str]:
    """The ticks of one axis with one number of decimals (that of the finest step), a
    typographic minus, and `unit` (e.g. °) after each."""
    steps = [abs(b - a) for a, b in zip(ticks, ticks[1:], strict=False) if b != a]
    finest = min(steps, default=1.0)
    decimals = max(0, -math.floor(math.log10(finest) + 1e-9)) if finest < 1 else 0
    return [minus(f"{tick:.{decimals}f}") + unit for tick in ticks]


def angle_ticks(xs: Sequence[float], layout: Layout) -> list[float]:
    """Multiples of 45° in the sweep `xs`, or of 90° over more than a half turn in a narrow
    chart or where the sweep does not hold the multiples of 45° (steps of 30°): each tick is
    one of the sweep's angles, with its stimulus under it."""
    lo, hi = xs[0], xs[-1]

    def multiples(step: int) -> list[float]:
        return [float(t) for t in range(math.ceil(lo / step) * step, int(hi) + 1, step)]

    held = all(any(abs(x - t) < 1e-6 for x in xs) for t in multiples(45))
    return multiples(90 if (hi - lo > 180 and layout is NARROW) or not held else 45)


@dataclass(frozen=True)
class Entry:
    """One row of a legend: a series' name and how it is drawn."""

    name: str
    css: str  # the swatch's class: the series' theme colour, or before/after
    colour: str
    box: bool = False  # a filled box (bars), else a line with `dash`
    dash: str = ""


@dataclass(frozen=True)
class _Placed:
    """An entry of a legend where it is drawn: its offsets in the band, and its name's lines
    (a name longer than the band breaks between words)."""

    entry: Entry
    x: float
    y: float
    lines: list[str]


LEGEND_ROW, LEGEND_LINE = 18, 15  # a row of entries; each further line of a long name


def _legend_layout(entries: Sequence[Entry], width: float) -> tuple[list[_Placed], float]:
    """The legend's entries flowed into rows no wider than `width`, and the band's height."""
    placed: list[_Placed] = []
    x = y = row_height = 0.0
    for entry in entries:
        lines = _lines(entry.name, width - 24)
        item = 24 + max(text_width(line, LABEL) for line in lines) + 16
        if x and x + item > width:
            x, y, row_height = 0.0, y + row_height, 0.0
        placed.append(_Placed(entry, x, y, lines))
        x += item
        row_height = max(row_height, LEGEND_ROW + LEGEND_LINE * (len(lines) - 1))
    return placed, y + row_height


def _legend(drawing, entries: Sequence[Entry], x: float, y: float, width: float) -> None:
    """The legend as a band at (x, y), `width` wide (`_legend_height` high)."""
    if not entries:
        return
    legend = drawing.g(class_="legend")
    for item in _legend_layout(entries, width)[0]:
        entry, left, top = item.entry, x + item.x, y + item.y
        if entry.box:
            legend.add(
                drawing.rect((left, top + 3), (18, 10), fill=entry.colour, class_=f"swatch {entry.css}")
            )
        else:
            style = {"stroke_dasharray": entry.dash} if entry.dash else {}
            legend.add(
                drawing.line(
                    (left, top + 8),
                    (left + 18, top + 8),
                    stroke=entry.colour,
                    stroke_width=3,
                    class_=entry.css,
                    **style,
                )
            )
        label = drawing.text("", insert=(left + 24, top + 12), class_="legend-label")
        for index, line in enumerate(item.lines):
            label.add(drawing.tspan(line, x=[left + 24], dy=[0 if index == 0 else LEGEND_LINE]))
        legend.add(label)
    drawing.add(legend)


def _legend_height(entries: Sequence[Entry], width: float) -> float:
    return _legend_layout(entries, width)[1] if entries else 0.0


def _series_entries(names: Sequence[str], dashed: Sequence[str] = (), box: bool = False) -> list[Entry]:
    return [
        Entry(
            name,
            f"s-line s{index % len(PALETTE)}" if not box else f"s-box s{index % len(PALETTE)}",
            PALETTE[index % len(PALETTE)],
            box=box,
            dash="" if box else _dash_pattern(name, index, dashed),
        )
        for index, name in enumerate(names)
    ]


@dataclass(frozen=True)
class _Frame:
    """Where the plotting area of a chart lies, and the chart's height."""

    left: float
    top: float
    width: float
    height: float
    total: float


def _frame(
    layout: Layout,
    legend: Sequence[Entry],
    below: float,
    y_ticks: Sequence[str] = (),
    x_last: str = "",
    y_title: str = "",
) -> _Frame:
    """Legend band on top, then the plotting area, then `below` px (ticks, icons, x title).
    The left margin holds the widest of `y_ticks` beside `y_title`'s lines; the right one half
    of `x_last`, the last x tick's label, centred on the axis's end."""
    title = 7 + TITLE_LINE * len(_lines(y_title, layout.plot_height))
    left = max(layout.left, title + max((text_width(t, TICK) for t in y_ticks), default=0) + 8)
    right = max(layout.right, text_width(x_last, TICK) / 2 + 2)
    plot_w = layout.width - left - right
    top = 8 + _legend_height(legend, plot_w) + (6 if legend else 0)
    return _Frame(left, top, plot_w, layout.plot_height, top + layout.plot_height + below)


def _lines(text: str, width: float) -> list[str]:
    """`text` broken between words into lines of at most `width` px of axis-title text."""
    lines: list[str] = []
    for word in text.split():
        if lines and text_width(f"{lines[-1]} {word}", LABEL) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines or [""]


TITLE_LINE = 15


def _title_height(text: str, layout: Layout) -> float:
    return 3 + TITLE_LINE * len(_lines(text, layout.width - layout.left - layout.right))


def _x_title(drawing, text: str, frame: _Frame):
    """The x axis's title at the chart's foot, on as many lines as its width needs."""
    lines = _lines(text, frame.width)
    x = frame.left + frame.width / 2
    title = drawing.text("", insert=(x, frame.total - 5 - TITLE_LINE * (len(lines) - 1)), class_="axis-label")
    for index, line in enumerate(lines):
        title.add(drawing.tspan(line, x=[x], dy=[0 if index == 0 else TITLE_LINE]))
    return title


def _y_axis(drawing, frame: _Frame, ticks: list[float], y_at, label: str) -> None:
    axes = drawing.g(class_="axes")
    for tick, text in zip(ticks, tick_labels(ticks), strict=True):
        axes.add(
            drawing.line((frame.left, y_at(tick)), (frame.left + frame.width, y_at(tick)), class_="grid")
        )
        axes.add(drawing.text(text, insert=(frame.left - 6, y_at(tick) + 4), class_="tick y-tick"))
    middle = frame.top + frame.height / 2
    lines = _lines(label, frame.height)
    title = drawing.text("", insert=(14, middle), class_="axis-label")
    for index, line in enumerate(lines):
        title.add(drawing.tspan(line, x=[14], dy=[0 if index == 0 else TITLE_LINE]))
    title.rotate(-90, center=(14, middle))
    axes.add(title)
    drawing.add(axes)


def line_plot(
    xs: list[float],
    series: list[Series],
    x_label: str,
    y_label: str,
    title: str,
    thumbnails: Callable[[int], str] | None = None,
    icons: int = 0,
    dashed: tuple[str, ...] = (),
    angles: bool = False,
) -> str:
    """Curves over a shared x axis. With `thumbnails` (index of an x → its stimulus image's
    URL), up to `icons` stimuli are drawn under the x ticks. `angles`: x is in degrees."""
    return _both(
        lambda layout: _line_plot(
            layout, xs, series, x_label, y_label, title, thumbnails, icons, dashed, angles
        )
    )


def _line_plot(layout, xs, series, x_label, y_label, title, thumbnails, icons, dashed, angles) -> str:
    legend = _series_entries([name for name, _ in series], dashed)
    if angles:
        x_ticks = angle_ticks(xs, layout)
    elif len(xs) <= layout.x_ticks + 1 and all(float(x).is_integer() for x in xs):
        x_ticks = list(xs)  # a few whole numbers (conditions, counts): each its own tick, no 1.5
    else:
        x_ticks = _ticks(xs[0], xs[-1], layout.x_ticks)
    x_ticks = [t for t in x_ticks if xs[0] - 1e-9 <= t <= xs[-1] + 1e-9]
    stimuli = _icons(xs, x_ticks, icons) if thumbnails else []
    x_texts = tick_labels(x_ticks, "°" if angles else "")
    y_hi = max(max(values) for _, values in series)
    y_lo = min(0.0, min(min(values) for _, values in series))
    y_ticks = _ticks(y_lo, y_hi, layout.y_ticks)
    y_lo, y_hi = min(y_lo, y_ticks[0]), max(y_hi, y_ticks[-1])
    below = 20 + (ICON + 4 if stimuli else 0) + _title_height(x_label, layout)
    last = x_texts[-1] if x_ticks and abs(x_ticks[-1] - xs[-1]) < 1e-9 else ""
    frame = _frame(layout, legend, below, tick_labels(y_ticks), last, y_label)
    drawing = _drawing(
        layout,
        frame.total,
        title,
        f"{y_label} against {x_label} for {', '.join(s for s, _ in series)}",
        "line-plot",
    )

    def x_at(x: float) -> float:
        return frame.left + (x - xs[0]) / ((xs[-1] - xs[0]) or 1) * frame.width

    def y_at(y: float) -> float:
        return frame.top + frame.height - (y - y_lo) / ((y_hi - y_lo) or 1) * frame.height

    _y_axis(drawing, frame, y_ticks, y_at, y_label)
    axes = drawing.g(class_="axes")
    base = frame.top + frame.height
    for tick, text in zip(x_ticks, x_texts, strict=True):
        axes.add(drawing.line((x_at(tick), base), (x_at(tick), base + 4), class_="axis"))
        axes.add(drawing.text(text, insert=(x_at(tick), base + 16), class_="tick x-tick"))
    axes.add(drawing.line((frame.left, base), (frame.left + frame.width, base), class_="axis"))
    axes.add(_x_title(drawing, x_label, frame))
    drawing.add(axes)
    for index in stimuli:
        url = thumbnails(index)
        drawing.add(drawing.image(url, insert=(x_at(xs[index]) - ICON / 2, base + 22), size=(ICON, ICON)))
    for index, (name, values) in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        group = _series(drawing, name, index)
        points = [(round(x_at(x), 2), round(y_at(y), 2)) for x, y in zip(xs, values, strict=True)]
        group.add(
            drawing.polyline(points, stroke=colour, fill="none", class_="curve", **_dash(name, index, dashed))
        )
        for (px, py), x, y in zip(points, xs, values, strict=True):
            dot = drawing.circle((px, py), 3, fill=colour, class_="point")
            dot.set_desc(title=f"{name} at {number(x)}{'°' if angles else ''}: {number(y)}")
            group.add(dot)
        drawing.add(group)
    _legend(drawing, legend, frame.left, 8, frame.width)
    return drawing.tostring()


def _icons(xs: list[float], ticks: list[float], most: int) -> list[int]:
    """The x index to draw a stimulus for at each tick that is one of the sweep's values (to
    a hundredth of a step), at most `most`, spread evenly over those ticks."""
    step = min((abs(b - a) for a, b in zip(xs, xs[1:], strict=False) if b != a), default=1.0)
    nearest = sorted(
        {
            i
            for tick in ticks
            for i in [min(range(len(xs)), key=lambda i: abs(xs[i] - tick))]
            if abs(xs[i] - tick) < step / 100
        }
    )
    if len(nearest) <= most:
        return nearest
    if most <= 0:
        return []
    return sorted({nearest[round(i * (len(nearest) - 1) / max(most - 1, 1))] for i in range(most)})


def polar_plot(angles: list[float], series: list[Series], title: str, mirror: bool) -> str:
    """Responses by orientation (degrees, clockwise from the right as in the image); with
    `mirror`, a sweep over 0–180° (a line looks the same turned by 180°) is drawn twice. One
    layout, narrow enough for a phone: the legend above, the rings under it."""
    legend = _series_entries([name for name, _ in series])
    width = POLAR.width
    radius = 110
    top = 8 + _legend_height(legend, width - 16) + 10
    cx, cy = width / 2, top + 14 + radius
    height = cy + radius + 40
    drawing = _drawing(
        POLAR,
        height,
        title,
        f"responses by orientation for {', '.join(s for s, _ in series)}",
        "polar-plot",
    )
    peak = max(max(values) for _, values in series) or 1.0
    grid = drawing.g(class_="axes")
    for fraction in (0.25, 0.5, 0.75, 1.0):
        grid.add(drawing.circle((cx, cy), radius * fraction, class_="grid", fill="none"))
    grid.add(drawing.text(f"outer ring: {number(peak)}", insert=(8, height - 8), class_="tick"))
    for degrees in range(0, 360, 45):
        theta = math.radians(degrees)
        end = (cx + radius * math.cos(theta), cy + radius * math.sin(theta))
        grid.add(drawing.line((cx, cy), end, class_="grid"))
        label = drawing.text(
            f"{degrees}°",
            insert=(cx + 1.16 * radius * math.cos(theta), cy + 1.16 * radius * math.sin(theta) + 4),
            class_="tick x-tick",
        )
        grid.add(label)
    drawing.add(grid)
    for index, (name, values) in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        pairs = list(zip(angles, values, strict=True))
        if mirror:
            pairs += [(a + 180, v) for a, v in pairs]
        group = _series(drawing, name, index)
        points = [
            (
                round(cx + radius * v / peak * math.cos(math.radians(a)), 2),
                round(cy + radius * v / peak * math.sin(math.radians(a)), 2),
            )
            for a, v in pairs
        ]
        group.add(
            drawing.polygon(
                points, stroke=colour, fill=colour, fill_opacity=0.08, class_="curve", **_dash(name, index)
            )
        )
        for (px, py), (a, v) in zip(points, pairs, strict=True):
            dot = drawing.circle((px, py), 2.5, fill=colour, class_="point")
            dot.set_desc(title=f"{name} at {number(a % 360)}°: {number(v)}")
            group.add(dot)
        drawing.add(group)
    _legend(drawing, legend, 8, 8, width - 16)
    return drawing.tostring()


def paired_bars(labels: list[str], before: list[float], after: list[float], title: str, y_label: str) -> str:
    """Before (grey) and after (colour) for each probe input; the inputs along x, named when
    their names fit under their bars."""
    return _both(lambda layout: _paired_bars(layout, labels, before, after, title, y_label))


def _paired_bars(layout: Layout, labels, before, after, title, y_label) -> str:
    legend = [
        Entry("before", "before", BEFORE, box=True),
        Entry("after", "after", PALETTE[1], box=True),
    ]
    y_hi = max(max(before), max(after), 1e-9)
    y_lo = min(0.0, min(before), min(after))
    ticks = _ticks(y_lo, y_hi, layout.y_ticks)
    y_lo, y_hi = min(y_lo, ticks[0]), max(y_hi, ticks[-1])
    slot = _frame(layout, [], 0, tick_labels(ticks), y_title=y_label).width / len(labels)
    named = all(text_width(label, TICK) <= slot - 4 for label in labels)
    x_title = "probe inputs" if named else f"{plural(len(labels), 'probe input')} (hover a pair for its name)"
    frame = _frame(layout, legend, 20 + _title_height(x_title, layout), tick_labels(ticks), y_title=y_label)
    drawing = _drawing(
        layout, frame.total, title, f"{y_label} before and after, for {len(labels)} inputs", "bar-plot"
    )

    def y_at(y: float) -> float:
        return frame.top + frame.height - (y - y_lo) / ((y_hi - y_lo) or 1) * frame.height

    _y_axis(drawing, frame, ticks, y_at, y_label)
    bar = max(1.0, slot * 0.38)
    base = frame.top + frame.height
    for index, (label, b, a) in enumerate(zip(labels, before, after, strict=True)):
        x = frame.left + index * slot + slot / 2
        group = drawing.g(class_="pair")
        group.set_desc(title=f"{label}: before {number(b)}, after {number(a)}")
        for offset, value, css, colour in ((-bar, b, "before", BEFORE), (0, a, "after", PALETTE[1])):
            top, bottom = sorted((y_at(value), y_at(0)))
            group.add(drawing.rect((x + offset, top), (bar, max(bottom - top, 0.5)), fill=colour, class_=css))
        drawing.add(group)
        if named:
            drawing.add(drawing.text(label, insert=(x, base + 16), class_="tick x-tick"))
    drawing.add(drawing.line((frame.left, y_at(0)), (frame.left + frame.width, y_at(0)), class_="axis"))
    drawing.add(_x_title(drawing, x_title, frame))
    _legend(drawing, legend, frame.left, 8, frame.width)
    return drawing.tostring()


def histograms(
    samples: list[Series],
    x_label: str,
    title: str,
    bins: int = 20,
    lo: float = -1.0,
    hi: float = 1.0,
    share: bool = False,
    counted: str = "unit",
    y_label: str = "",
) -> str:
    """Overlaid histograms of several samples on one axis [lo, hi]; with `share`, each bar is
    the share of its own sample (samples of different sizes side by side). `counted` is what
    a sample's values belong to, for the y axis's title ("units", "share of units") unless
    `y_label` says otherwise."""
    y_label = y_label or (f"share of {counted}s" if share else f"{counted}s")
    return _both(
        lambda layout: _histograms(layout, samples, x_label, title, bins, lo, hi, share, counted, y_label)
    )


def _histograms(layout: Layout, samples, x_label, title, bins, lo, hi, share, counted, y_label) -> str:
    legend = _series_entries([name for name, _ in samples], box=True)
    edges = np.linspace(lo, hi, bins + 1)
    counts = [np.histogram(np.clip(values, lo, hi), edges)[0] for _, values in samples]
    if share:
        counts = [c / max(len(values), 1) for c, (_, values) in zip(counts, samples, strict=True)]
    top = max(float(c.max()) for c in counts) or 1
    ticks = _ticks(0, top, 4)
    top = max(top, ticks[-1])
    x_ticks = _ticks(lo, hi, layout.x_ticks + 2)
    x_texts = tick_labels(x_ticks)
    last = x_texts[-1] if abs(x_ticks[-1] - hi) < 1e-9 else ""
    frame = _frame(layout, legend, 20 + _title_height(x_label, layout), tick_labels(ticks), last, y_label)
    drawing = _drawing(
        layout,
        frame.total,
        title,
        f"distributions of {x_label}: {', '.join(s for s, _ in samples)}",
        "histogram",
    )

    def x_at(x: float) -> float:
        return frame.left + (x - lo) / (hi - lo) * frame.width

    def y_at(y: float) -> float:
        return frame.top + frame.height - y / top * frame.height

    _y_axis(drawing, frame, ticks, y_at, y_label)
    base = frame.top + frame.height
    for tick, text in zip(x_ticks, x_texts, strict=True):
        drawing.add(drawing.text(text, insert=(x_at(tick), base + 16), class_="tick x-tick"))
    for index, ((name, _values), count) in enumerate(zip(samples, counts, strict=True)):
        colour = PALETTE[index % len(PALETTE)]
        group = _series(drawing, name, index)
        for left, right, n in zip(edges[:-1], edges[1:], count, strict=True):
            if n:
                rect = drawing.rect(
                    (x_at(left), y_at(n)),
                    (x_at(right) - x_at(left), y_at(0) - y_at(n)),
                    fill=colour,
                    fill_opacity=0.55,
                    stroke=colour,
                    class_="bar",
                    **_dash(name, index),
                )
                amount = f"{n:.0%} of them" if share else plural(int(n), counted)
                rect.set_desc(title=f"{name}: {amount} with {x_label} in [{number(left)}, {number(right)})")
                group.add(rect)
        drawing.add(group)
    drawing.add(drawing.line((frame.left, base), (frame.left + frame.width, base), class_="axis"))
    drawing.add(_x_title(drawing, x_label, frame))
    _legend(drawing, legend, frame.left, 8, frame.width)
    return drawing.tostring()


def _series(drawing, name: str, index: int):
    """The group of one series: class s<N> gives it the theme's N-th colour."""
    group = drawing.g(class_=f"series s{index % len(PALETTE)}", data_series=name)
    group.set_desc(title=name)
    return group


def _dash_pattern(name: str, index: int, dashed: Sequence[str] = ()) -> str:
    return BASELINE_DASH if name in dashed else DASHES[index % len(DASHES)]


def _dash(name: str, index: int, dashed: Sequence[str] = ()) -> dict:
    pattern = _dash_pattern(name, index, dashed)
    return {"stroke_dasharray": pattern} if pattern else {}
