"""Kernels drawn as labelled heatmaps on one shared diverging scale, with its legend (svgwrite):
a {weights} figure's, and a unit page's strongest inputs and outputs."""

from __future__ import annotations

import math

import numpy as np

from distillgen.render.colors import STOPS, diverging
from distillgen.render.words import number, plural

GAP = 12  # CSS pixels between kernels
LABEL_CHAR = 6.1  # CSS pixels a character of a kernel's label takes (10-px monospace, .kernel-label)
WIDE, NARROW = 472, 330  # CSS pixels: the narrowest desktop text column, and a phone's


def kernel_grid(
    stack: list[tuple[str, np.ndarray]],
    target: str,
    cell: int,
    columns: int,
    scale_id: str,
    outgoing: bool = False,
) -> str:
    """An SVG of labelled heatmaps on one shared scale, and its legend. The labels name the
    kernels' sources; with `outgoing`, `target` is the source and the labels the targets.
    The grid has at most the columns a desktop's text column holds, and one wider than a
    phone's column is drawn again with fewer columns (the page's CSS shows one), so that its
    labels are never scaled down with it."""
    # a box is as wide as its label too, so the labels of small kernels (1x1: 8 px) do not
    # run together
    kh, kw = stack[0][1].shape
    box_w = max(kw * cell, math.ceil(LABEL_CHAR * max(len(label) for label, _ in stack)))
    columns = min(columns, len(stack))
    columns = min(columns, max(1, (WIDE + GAP) // (box_w + GAP)))
    fitting = max(1, (NARROW + GAP) // (box_w + GAP))
    if fitting >= columns:
        return _grid(stack, target, cell, columns, box_w, scale_id, outgoing, "")
    return _grid(stack, target, cell, columns, box_w, scale_id, outgoing, "wide") + _grid(
        stack, target, cell, fitting, box_w, f"{scale_id}-narrow", outgoing, "narrow"
    )


def _grid(
    stack, target: str, cell: int, columns: int, box_w: int, scale_id: str, outgoing: bool, css: str
) -> str:
    scale = max(float(np.abs(k).max()) for _, k in stack) or 1.0
    kh, kw = stack[0][1].shape
    box_h = kh * cell + 17
    width = max(columns * (box_w + GAP) - GAP, 160)
    rows = -(-len(stack) // columns)
    height = rows * (box_h + GAP) + 36
    import svgwrite  # here: a rebuild that draws nothing never loads it

    drawing = svgwrite.Drawing(
        size=(width, height), viewBox=f"0 0 {width} {height}", profile="full", debug=False
    )
    drawing.attribs.update({"class": f"kernel-grid {css}".strip(), "role": "img"})
    what = f"Weights out of {target}" if outgoing else f"Weights into {target}"
    described = f"{what}: {plural(len(stack), 'kernel')}; largest magnitude {number(scale)}"
    drawing.set_desc(title=what, desc=described)
    for index, (label, kernel) in enumerate(stack):
        x, y = (index % columns) * (box_w + GAP), (index // columns) * (box_h + GAP)
        group = drawing.g(class_="kernel")
        edge = f"{target} → {label}" if outgoing else f"{label} → {target}"
        group.set_desc(title=f"{edge}: L2 norm {number(float(np.sqrt((kernel**2).sum())))}")
        for (row, col), value in np.ndenumerate(kernel):
            rect = drawing.rect((x + col * cell, y + row * cell), (cell, cell), fill=diverging(value / scale))
            rect.set_desc(title=number(value, 4))
            group.add(rect)
        group.add(drawing.text(label, insert=(x, y + kh * cell + 13), class_="kernel-label"))
        drawing.add(group)
    _legend(drawing, 0, rows * (box_h + GAP) + 4, scale, scale_id)
    return drawing.tostring()


def _legend(drawing, x: float, y: float, scale: float, scale_id: str) -> None:
    gradient = drawing.linearGradient(id=scale_id, start=(0, 0), end=(1, 0))
    for index, colour in enumerate(STOPS):
        gradient.add_stop_color(index / (len(STOPS) - 1), colour)
    drawing.defs.add(gradient)
    drawing.add(drawing.rect((x, y), (120, 10), fill=f"url(#{scale_id})"))
    drawing.add(drawing.text(number(-scale, 2), insert=(x, y + 22), class_="kernel-label"))
    drawing.add(drawing.text("0", insert=(x + 57, y + 22), class_="kernel-label"))
    drawing.add(drawing.text(number(scale, 2), insert=(x + 104, y + 22), class_="kernel-label"))
