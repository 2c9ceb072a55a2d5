"""Small SVG plots (svgwrite) for the experiment figures: line and polar plots of tuning curves,
paired bars for before/after, overlaid histograms. Deterministic, with a `title`/`desc` and a
`title` on every data point, so a reader can hover over a value (or hear it)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from distillgen.render.words import plural

if TYPE_CHECKING:
    import svgwrite

# Okabe–Ito: distinguishable with every common colour-vision deficiency. The page's CSS sets
# the same colours per theme (class s0…s7); these attributes are the fallback outside a page.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
# ... and each series has its own line style too, so that colour is never all that tells
# two curves apart (a reader with no colour vision, a greyscale print).
DASHES = ("", "7,3", "2,3", "9,3,2,3", "4,2,4,6", "1,2", "12,4", "5,2,1,2")
BASELINE_DASH = "5,4"  # a `dashed` series: a baseline, e.g. the untrained network
WIDTH, HEIGHT = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 12, 40

Series = tuple[str, list[float]]  # a label and one value per x


def _drawing(width: float, height: float, title: str, desc: str, css: str) -> svgwrite.Drawing:
    import svgwrite  # here: a rebuild that draws nothing never loads it

    drawing = svgwrite.Drawing(
        size=(width, height), viewBox=f"0 0 {width} {height}", profile="full", debug=False
    )
    drawing.attribs.update({"class": f"plot {css}", "role": "img"})
    drawing.set_desc(title=title, desc=desc)
    return drawing


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


def _number(value: float) -> str:
    return f"{value:.3g}"


def line_plot(
    xs: list[float],
    series: list[Series],
    x_label: str,
    y_label: str,
    title: str,
    thumbnails: Sequence[tuple[float, str]] = (),
    dashed: tuple[str, ...] = (),
) -> str:
    """Curves over a shared x axis; `thumbnails` (x, image URL) are drawn under the axis."""
    thumb = 28 if thumbnails else 0
    height = HEIGHT + thumb
    drawing = _drawing(
        WIDTH,
        height,
        title,
        f"{y_label} against {x_label} for {', '.join(s for s, _ in series)}",
        "line-plot",
    )
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    y_hi = max(max(values) for _, values in series)
    y_lo = min(0.0, min(min(values) for _, values in series))
    y_ticks = _ticks(y_lo, y_hi)
    y_lo, y_hi = min(y_lo, y_ticks[0]), max(y_hi, y_ticks[-1])

    def x_at(x: float) -> float:
        return LEFT + (x - xs[0]) / ((xs[-1] - xs[0]) or 1) * plot_w

    def y_at(y: float) -> float:
        return TOP + plot_h - (y - y_lo) / ((y_hi - y_lo) or 1) * plot_h

    axes = drawing.g(class_="axes")
    for tick in y_ticks:
        axes.add(drawing.line((LEFT, y_at(tick)), (LEFT + plot_w, y_at(tick)), class_="grid"))
        axes.add(drawing.text(_number(tick), insert=(LEFT - 6, y_at(tick) + 4), class_="tick y-tick"))
    for tick in _ticks(xs[0], xs[-1], 6):
        if xs[0] <= tick <= xs[-1]:
            axes.add(
                drawing.text(_number(tick), insert=(x_at(tick), TOP + plot_h + 14), class_="tick x-tick")
            )
    axes.add(drawing.line((LEFT, TOP + plot_h), (LEFT + plot_w, TOP + plot_h), class_="axis"))
    axes.add(drawing.text(x_label, insert=(LEFT + plot_w / 2, height - 4), class_="axis-label"))
    label = drawing.text(y_label, insert=(12, TOP + plot_h / 2), class_="axis-label")
    label.rotate(-90, center=(12, TOP + plot_h / 2))
    axes.add(label)
    drawing.add(axes)
    for x, url in thumbnails:
        drawing.add(
            drawing.image(url, insert=(x_at(x) - thumb / 2, TOP + plot_h + 18), size=(thumb - 4, thumb - 4))
        )
    for index, (name, values) in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        group = _series(drawing, name, index)
        points = [(round(x_at(x), 2), round(y_at(y), 2)) for x, y in zip(xs, values, strict=True)]
        style = _dash(name, index, dashed)
        group.add(drawing.polyline(points, stroke=colour, fill="none", class_="curve", **style))
        for (px, py), x, y in zip(points, xs, values, strict=True):
            dot = drawing.circle((px, py), 3, fill=colour, class_="point")
            dot.set_desc(title=f"{name} at {_number(x)}: {_number(y)}")
            group.add(dot)
        drawing.add(group)
    _legend(drawing, [name for name, _ in series], LEFT + 8, TOP + 4, dashed)
    return drawing.tostring()


def polar_plot(angles: list[float], series: list[Series], title: str, mirror: bool) -> str:
    """Responses by orientation (degrees, clockwise from the right as in the image); with
    `mirror`, a sweep over 0–180° (a line looks the same turned by 180°) is drawn twice."""
    size, legend_w = 260, 140
    radius, cx, cy = 110, 130, 130
    drawing = _drawing(
        size + legend_w,
        size,
        title,
        f"responses by orientation for {', '.join(s for s, _ in series)}",
        "polar-plot",
    )
    peak = max(max(values) for _, values in series) or 1.0
    grid = drawing.g(class_="axes")
    for fraction in (0.25, 0.5, 0.75, 1.0):
        grid.add(drawing.circle((cx, cy), radius * fraction, class_="grid", fill="none"))
    grid.add(drawing.text(f"outer ring: {_number(peak)}", insert=(4, size - 6), class_="tick"))
    for degrees in range(0, 360, 45):
        theta = math.radians(degrees)
        end = (cx + radius * math.cos(theta), cy + radius * math.sin(theta))
        grid.add(drawing.line((cx, cy), end, class_="grid"))
        grid.add(
            drawing.text(
                f"{degrees}°",
                insert=(cx + 1.1 * radius * math.cos(theta) - 8, cy + 1.1 * radius * math.sin(theta) + 4),
                class_="tick",
            )
        )
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
            dot.set_desc(title=f"{name} at {_number(a % 360)}°: {_number(v)}")
            group.add(dot)
        drawing.add(group)
    _legend(drawing, [name for name, _ in series], size + 8, 12)
    return drawing.tostring()


def paired_bars(labels: list[str], before: list[float], after: list[float], title: str, y_label: str) -> str:
    """Before (grey) and after (colour) for each probe input."""
    drawing = _drawing(
        WIDTH, HEIGHT, title, f"{y_label} before and after, for {len(labels)} inputs", "bar-plot"
    )
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    y_hi = max(max(before), max(after), 1e-9)
    y_lo = min(0.0, min(before), min(after))
    ticks = _ticks(y_lo, y_hi)
    y_lo, y_hi = min(y_lo, ticks[0]), max(y_hi, ticks[-1])

    def y_at(y: float) -> float:
        return TOP + plot_h - (y - y_lo) / ((y_hi - y_lo) or 1) * plot_h

    for tick in ticks:
        drawing.add(drawing.line((LEFT, y_at(tick)), (LEFT + plot_w, y_at(tick)), class_="grid"))
        drawing.add(drawing.text(_number(tick), insert=(LEFT - 6, y_at(tick) + 4), class_="tick y-tick"))
    slot = plot_w / len(labels)
    bar = max(1.0, slot * 0.38)
    for index, (label, b, a) in enumerate(zip(labels, before, after, strict=True)):
        x = LEFT + index * slot + slot / 2
        group = drawing.g(class_="pair")
        group.set_desc(title=f"{label}: before {_number(b)}, after {_number(a)}")
        for offset, value, css, colour in ((-bar, b, "before", "#999999"), (0, a, "after", PALETTE[1])):
            top, bottom = sorted((y_at(value), y_at(0)))
            group.add(drawing.rect((x + offset, top), (bar, max(bottom - top, 0.5)), fill=colour, class_=css))
        drawing.add(group)
    drawing.add(drawing.line((LEFT, y_at(0)), (LEFT + plot_w, y_at(0)), class_="axis"))
    drawing.add(drawing.text(y_label, insert=(LEFT + plot_w / 2, HEIGHT - 8), class_="axis-label"))
    _legend(
        drawing,
        ["before", "after"],
        LEFT + plot_w - 110,
        TOP + 4,
        colours=("#999999", PALETTE[1]),
        classes=("before-line", "after-line"),
    )
    return drawing.tostring()


def histograms(
    samples: list[Series],
    x_label: str,
    title: str,
    bins: int = 20,
    lo: float = -1.0,
    hi: float = 1.0,
    share: bool = False,
) -> str:
    """Overlaid histograms of several samples on one axis [lo, hi]; with `share`, each bar is
    the share of its own sample (samples of different sizes side by side)."""
    drawing = _drawing(
        WIDTH, HEIGHT, title, f"distributions of {x_label}: {', '.join(s for s, _ in samples)}", "histogram"
    )
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    edges = np.linspace(lo, hi, bins + 1)
    counts = [np.histogram(np.clip(values, lo, hi), edges)[0] for _, values in samples]
    if share:
        counts = [c / max(len(values), 1) for c, (_, values) in zip(counts, samples, strict=True)]
    top = max(float(c.max()) for c in counts) or 1
    ticks = _ticks(0, top, 4)
    top = max(top, ticks[-1])

    def x_at(x: float) -> float:
        return LEFT + (x - lo) / (hi - lo) * plot_w

    def y_at(y: float) -> float:
        return TOP + plot_h - y / top * plot_h

    for tick in ticks:
        drawing.add(drawing.line((LEFT, y_at(tick)), (LEFT + plot_w, y_at(tick)), class_="grid"))
        drawing.add(drawing.text(_number(tick), insert=(LEFT - 6, y_at(tick) + 4), class_="tick y-tick"))
    for tick in _ticks(lo, hi, 8):
        drawing.add(drawing.text(_number(tick), insert=(x_at(tick), TOP + plot_h + 14), class_="tick x-tick"))
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
                amount = f"{n:.0%} of them" if share else plural(n, "unit")
                rect.set_desc(title=f"{name}: {amount} with {x_label} in [{left:.2f}, {right:.2f})")
                group.add(rect)
        drawing.add(group)
    drawing.add(drawing.line((LEFT, y_at(0)), (LEFT + plot_w, y_at(0)), class_="axis"))
    drawing.add(drawing.text(x_label, insert=(LEFT + plot_w / 2, HEIGHT - 4), class_="axis-label"))
    _legend(drawing, [name for name, _ in samples], LEFT + 8, TOP + 4)
    return drawing.tostring()


def _series(drawing, name: str, index: int):
    """The group of one series: class s<N> gives it the theme's N-th colour."""
    group = drawing.g(class_=f"series s{index % len(PALETTE)}", data_series=name)
    group.set_desc(title=name)
    return group


def _dash(name: str, index: int, dashed=()) -> dict:
    pattern = BASELINE_DASH if name in dashed else DASHES[index % len(DASHES)]
    return {"stroke_dasharray": pattern} if pattern else {}


def _legend(drawing, names: list[str], x: float, y: float, dashed=(), colours=PALETTE, classes=()) -> None:
    legend = drawing.g(class_="legend")
    for index, name in enumerate(names):
        colour = colours[index % len(colours)]
        css = classes[index] if classes else f"s-line s{index % len(PALETTE)}"
        row = y + index * 16
        style = _dash(name, index, dashed) if not classes else {}
        line = drawing.line(
            (x, row + 6), (x + 18, row + 6), stroke=colour, stroke_width=3, class_=css, **style
        )
        legend.add(line)
        legend.add(drawing.text(name, insert=(x + 24, row + 10), class_="legend-label"))
    drawing.add(legend)
