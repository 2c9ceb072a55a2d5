"""The circuit diagram that {circuit} and {attribution} draw, and the graph it draws.

A `Graph` is rows of nodes (a unit's feature visualization, linked to its page; the targets in
the last row) and edges between consecutive rows, each with what its width shows (a kernel's
L2 norm, an attribution's magnitude), its sign and, for weights, its kernel as a glyph. The
same graph is drawn (`circuit_svg`) and exported (`Graph.json`, an article's `graphs.json`),
so the two list the same edges in the same order.

The drawing is made twice, for a desktop column (six nodes a line) and for a phone's (four); a
longer row wraps onto further lines. Each edge ends at its own point of its target. Between
two rows of several units, more than GLYPHS edges show their glyphs only while highlighted.
templates/static/circuit.js makes it interactive: hovering or focusing a node highlights its
edges and dims the rest; an edge's hover card shows its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from html import escape
from typing import Any

import numpy as np

from distillgen.render.colors import STOPS, diverging
from distillgen.render.words import plural, same_precision

NODE, GLYPH_CELL = 64, 2  # CSS pixels: a node's image, a glyph's smallest cell (11x11: 33 px)
GLYPHS = 8  # between two rows of several targets, more edges than this show glyphs when highlighted


@dataclass(frozen=True)
class Node:
    address: str  # "mixed3:5"
    image: str  # its feature visualization's URL
    card: str  # the anchor of its hover card
    page: str  # its unit page's URL ("" when it has none)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    strength: float  # what its width shows, relative to the strongest between the same rows
    positive: bool  # red and solid, else blue and dashed
    title: str  # what a screen reader and a tooltip say of it
    card: str  # the anchor of its hover card
    glyph: np.ndarray | None = None  # a kernel, drawn as a heatmap on the edge
    data: dict[str, Any] = field(default_factory=dict)  # its numbers, for the export


@dataclass(frozen=True)
class Graph:
    """What a circuit-like figure shows: `rows` of addresses (inputs earliest first, the
    targets last), a node per address, the edges; `measure` names what edges carry."""

    model: str
    rows: list[list[str]]
    nodes: dict[str, Node]
    edges: list[Edge]
    measure: str  # "expanded weights", "integrated gradients attribution", …
    width: str  # what an edge's width is, for the diagram's description

    def json(self, figure: dict[str, Any]) -> dict[str, Any]:
        """The graph as `graphs.json` lists it: `figure` (its number, label, kind, …), the
        nodes row by row with their images and pages, the edges in drawing order."""
        nodes = [
            {
                "address": address,
                "layer": address.rsplit(":", 1)[0],
                "unit": int(address.rsplit(":", 1)[1]),
                "row": index,
                "image": self.nodes[address].image,
                "page": self.nodes[address].page or None,
            }
            for index, row in enumerate(self.rows)
            for address in row
        ]
        edges = [{"source": e.source, "target": e.target, **e.data} for e in self.edges]
        return {**figure, "model": self.model, "measure": self.measure, "nodes": nodes, "edges": edges}


@dataclass(frozen=True)
class Layout:
    """How a circuit is drawn for one width: at most `columns` nodes a line (fewer where long
    labels widen the column: the drawing is no wider than `columns` * PITCH); a row with more
    wraps onto further lines. The page shows the wide drawing on a desktop and the narrow one
    on a phone, each at most at its own size, so labels stay 10 px (a diagram scaled as a
    picture read at 5 px)."""

    name: str  # the CSS class that shows it: "wide" or "narrow" ("any-width": always shown)
    columns: int


WIDE, NARROW = Layout("wide", 6), Layout("narrow", 4)  # 480 px: a desktop text column (472-704 px)
PITCH, LABEL, STAGE_GAP = 80, 18, 120  # column pitch, a node's label, room for edges between rows
LABEL_CHAR = 6.1  # CSS pixels a character of a node's label takes (10-px monospace, .node-label)
LINE = NODE + LABEL + 44  # from one wrapped line of a row to the next: node, label, its glyphs
GLYPH_SIDE = 24  # a kernel glyph's smallest side in CSS px


def circuit_svg(graph: Graph) -> str:
    """The diagram, drawn for a desktop column and for a phone's (once, for both, when no row
    is wider than a phone's)."""
    rows = graph.rows
    scales = _scales(rows, graph.edges)
    fits = max(len(row) for row in rows) * _pitch(rows) <= NARROW.columns * PITCH
    layouts = (replace(NARROW, name="any-width"),) if fits else (WIDE, NARROW)
    return "".join(_drawing(layout, graph, scales) for layout in layouts)


@dataclass(frozen=True)
class _PairScale:
    """The edges between two rows: drawn on their own scale (expanded weights of different
    layer pairs are in different units, and one scale for all would draw the earlier rows'
    edges as hairlines)."""

    strongest: float  # the largest strength: the widest edge
    largest: float  # the largest |weight| of a glyph: the ends of the glyphs' colour scale
    edges: int


def _scales(rows: list[list[str]], edges: list[Edge]) -> dict[tuple[int, int], _PairScale]:
    found: dict[tuple[int, int], list[Edge]] = {}
    for edge in edges:
        found.setdefault(_rows_of(rows, edge.source, edge.target), []).append(edge)
    return {
        pair: _PairScale(
            max([1e-12, *(e.strength for e in between)]),
            max([1e-12, *(float(np.abs(e.glyph).max()) for e in between if e.glyph is not None)]),
            len(between),
        )
        for pair, between in found.items()
    }


def _pitch(rows: list[list[str]]) -> float:
    """The column pitch: a node and a gap, or its longest label (10-px monospace) and a gap."""
    return max(PITCH, LABEL_CHAR * max(len(address) for row in rows for address in row) + 8)


def _positions(rows: list[list[str]], layout: Layout) -> tuple[dict[str, tuple[float, float]], float, float]:
    """Each node's centre x and top y, and the drawing's width and height: rows top to bottom,
    each wrapped onto lines of at most `columns` nodes (`_lines`), centred, each line half a
    column off the one above."""
    pitch = _pitch(rows)
    columns = max(1, min(layout.columns, int(layout.columns * PITCH // pitch)))  # as wide at most
    width = min(max(len(row) for row in rows), columns) * pitch
    position = {}
    y = 0.0
    for index, row in enumerate(rows):
        lines = _lines(row, columns)
        for at, line in enumerate(lines):
            offset = (width - len(line) * pitch) / 2
            if at and (len(lines[at - 1]) - len(line)) % 2 == 0:  # a short last line: off too
                offset += pitch / 2
            for column, address in enumerate(line):
                position[address] = (offset + column * pitch + pitch / 2, y)
            if at < len(lines) - 1:
                y += LINE
        if index < len(rows) - 1:
            y += NODE + LABEL + STAGE_GAP
    return position, width, y + NODE + LABEL + 6


def _lines(row: list[str], columns: int) -> list[list[str]]:
    """A row wrapped onto lines of `columns` and `columns - 1` nodes in turn: centred, each
    line sits half a column off the one above, so that the upper line's edges pass between
    the lower line's nodes rather than behind them."""
    if len(row) <= columns:
        return [row]
    lines: list[list[str]] = []
    start = 0
    while start < len(row):
        size = max(1, columns - len(lines) % 2)
        lines.append(row[start : start + size])
        start += size
    return lines


def _ends(edges: list[Edge], position) -> dict[tuple[str, str], float]:
    """Where each edge meets its target: its own point along the target's top, in the order of
    the edges' sources from left to right (so that edges do not cross there)."""
    incoming: dict[str, list[str]] = {}
    for edge in edges:
        incoming.setdefault(edge.target, []).append(edge.source)
    ends = {}
    for target, sources in incoming.items():
        x, _y = position[target]
        ordered = sorted(sources, key=lambda s: (position[s][0], position[s][1]))
        span = NODE - 12
        for index, source in enumerate(ordered):
            share = 0.5 if len(ordered) == 1 else index / (len(ordered) - 1)
            ends[(source, target)] = x - span / 2 + share * span
    return ends


def _drawing(layout: Layout, graph: Graph, scales) -> str:
    import svgwrite  # here: a rebuild that draws nothing never loads it

    rows = graph.rows
    position, width, height = _positions(rows, layout)
    drawing = svgwrite.Drawing(
        size=(width, round(height)), viewBox=f"0 0 {width} {round(height)}", profile="full", debug=False
    )
    drawing.attribs.update({"class": f"circuit-svg {layout.name}", "role": "group"})
    targets, inputs = rows[-1], [address for row in rows[:-1] for address in row]
    drawing.set_desc(
        title=f"Circuit into {', '.join(targets)}",
        desc=f"{plural(len(inputs), 'input unit')} of {graph.model} in {plural(len(rows) - 1, 'layer')} "
        f"connected to {', '.join(targets)}; edge width is {graph.width}, red positive and blue negative.",
    )
    ends = _ends(graph.edges, position)
    for edge in graph.edges:
        (x1, y1), (_x, y2) = position[edge.source], position[edge.target]
        x2 = ends[(edge.source, edge.target)]
        y1 += NODE + LABEL
        pair = _rows_of(rows, edge.source, edge.target)
        scale = scales[pair]
        sign = "positive" if edge.positive else "negative"
        group = drawing.g(class_=f"edge {sign}", data_from=edge.source, data_to=edge.target)
        group.attribs["data-hover-ref"] = edge.card
        group.set_desc(title=edge.title)
        stroke = round(1 + 7 * edge.strength / scale.strongest, 2)
        group.add(drawing.line((x1, y1), (x2, y2), stroke_width=stroke))
        if edge.glyph is not None:
            several = len(rows[pair[1]]) > 1
            # one target: each glyph just under its source; several: staggered by target, and
            # shown only while the edge is highlighted when there are too many to tell apart
            t = 0.3 + 0.4 * rows[pair[1]].index(edge.target) / (len(rows[pair[1]]) - 1) if several else None
            hidden = several and scale.edges > GLYPHS
            group.add(_glyph(drawing, edge.glyph, scale.largest, (x1, y1), (x2, y2), t, hidden))
        drawing.add(group)
    for row in rows:
        for address in row:
            x, y = position[address]
            shown = graph.nodes[address]
            node = drawing.a(href=shown.page, class_="node", data_unit=address)  # focusable, a link
            del node.attribs["target"]  # svgwrite opens links in a new window by default
            node.attribs["data-hover-ref"] = shown.card
            node.set_desc(title=f"{address}: feature visualization; opens its unit page")
            node.add(drawing.image(shown.image, insert=(x - NODE / 2, y), size=(NODE, NODE)))
            node.add(drawing.text(address, insert=(x, y + NODE + 13), class_="node-label"))
            drawing.add(node)
    return drawing.tostring()


def _glyph(drawing, kernel: np.ndarray, scale: float, start, end, t: float | None, hidden: bool):
    """The kernel as a heatmap on its edge, GLYPH_SIDE px a side or more: centred on the edge
    just under its source (`t` None), or at `t` of the way along it; `hidden` until the edge
    is highlighted (its node hovered or focused)."""
    (x1, y1), (x2, y2) = start, end
    kh, kw = kernel.shape
    # cells as tall and as wide as a side of GLYPH_SIDE needs (a 1x7 kernel: 4 x 24 px)
    cw, ch = (max(GLYPH_CELL, -(-GLYPH_SIDE // side)) for side in (kw, kh))
    if t is None:
        t = (4 + kh * ch / 2) / max(y2 - y1, 1)
    gx, gy = x1 + t * (x2 - x1) - kw * cw / 2, y1 + t * (y2 - y1) - kh * ch / 2
    glyph = drawing.g(class_="glyph on-highlight" if hidden else "glyph")
    for (i, j), value in np.ndenumerate(kernel):
        glyph.add(drawing.rect((gx + j * cw, gy + i * ch), (cw, ch), fill=diverging(value / scale)))
    return glyph


GRADIENT = f"background:linear-gradient(to right,{','.join(STOPS)})"  # the diverging scale


def colour_scale(caption: str, low: float, high: float, meaning: str) -> str:
    """A colour scale in HTML (legible at any width): `caption`, then the diverging scale from
    `low` to `high`; `meaning` says what its colours are, for a screen reader."""
    low_text, high_text = same_precision(low, high)
    return (
        f'<div class="colour-scale"><span class="scale-pair">{caption}</span> '
        f'<span class="scale-end">{low_text}</span><span class="scale-bar" style="{GRADIENT}" role="img" '
        f'aria-label="{escape(meaning)}"></span><span class="scale-end">+{high_text}</span></div>'
    )


def glyph_scales(graph: Graph) -> str:
    """Under a diagram of weights: the glyphs' colour scale for each pair of rows, from minus
    to plus the largest weight drawn in either sign."""
    rows = graph.rows
    items = []
    for (upper, lower), scale in sorted(_scales(rows, graph.edges).items()):
        source = rows[upper][0].rsplit(":", 1)[0]
        target = rows[lower][0].rsplit(":", 1)[0]
        caption = f"<code>{escape(source)}</code> → <code>{escape(target)}</code> weights"
        items.append(
            colour_scale(caption, -scale.largest, scale.largest, "blue inhibitory, grey zero, red excitatory")
        )
    return "".join(items)


def _rows_of(rows: list[list[str]], source: str, target: str) -> tuple[int, int]:
    return next(i for i, row in enumerate(rows) if source in row), next(
        i for i, row in enumerate(rows) if target in row
    )
