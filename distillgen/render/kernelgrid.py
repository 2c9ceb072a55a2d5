"""Kernels drawn as labelled heatmaps on one shared diverging scale, with its legend (svgwrite):
a {weights} figure's, and a unit page's strongest inputs and outputs."""

from __future__ import annotations

import math

import numpy as np

from distillgen.render.colors import STOPS, diverging
from distillgen.render.words import plural

GAP = 12  # CSS pixels between kernels
LABEL_CHAR = 5.6  # CSS pixels a character of a kernel's label takes (9-px monospace, .kernel-label)


def kernel_grid(
    stack: list[tuple[str, np.ndarray]],
    target: str,
    cell: int,
    columns: int,
    scale_id: str,
    outgoing: bool = False,
) -> str:
    """An SVG of labelled heatmaps on one shared scale, and its legend. The labels name the
    kernels' sources; with `outgoing`, `target` is the source and the labels the targets."""
    scale = max(float(np.abs(k).max()) for _, k in stack) or 1.0
    kh, kw = stack[0][1].shape
    columns = min(columns, len(stack))
    # a box is as wide as its label too (9-px monospace: about 5.4 px a character), so the
    # labels of small kernels (1x1: 8 px) do not run together
    box_w, box_h = (
        max(kw * cell, math.ceil(LABEL_CHAR * max(len(label) for label, _ in stack))),
        kh * cell + 16,
    )
    width = max(columns * (box_w + GAP) - GAP, 160)
    rows = -(-len(stack) // columns)
    height = rows * (box_h + GAP) + 36
    import svgwrite  # here: a rebuild that draws nothing never loads it

    drawing = svgwrite.Drawing(
        size=(width, height), viewBox=f"0 0 {width} {height}", profile="full", debug=False
    )
    drawing.attribs.update({"class": "kernel-grid", "role": "img"})
    what = f"Weights out of {target}" if outgoing else f"Weights into {target}"
    described = f"{what}: {plural(len(stack), 'kernel')}; largest magnitude {scale:.3g}"
    drawing.set_desc(title=what, desc=described)
    for index, (label, kernel) in enumerate(stack):
        x, y = (index % columns) * (box_w + GAP), (index // columns) * (box_h + GAP)
        group = drawing.g(class_="kernel")
        edge = f"{target} → {label}" if outgoing else f"{label} → {target}"
        group.set_desc(title=f"{edge}: L2 norm {np.sqrt((kernel**2).sum()):.3g}")
        for (row, col), value in np.ndenumerate(kernel):
            rect = drawing.rect((x + col * cell, y + row * cell), (cell, cell), fill=diverging(value / scale))
            rect.set_desc(title=f"{value:.4g}")
            group.add(rect)
        group.add(drawing.text(label, insert=(x, y + kh * cell + 12), class_="kernel-label"))
        drawing.add(group)
    _legend(drawing, 0, rows * (box_h + GAP) + 4, scale, scale_id)
    return drawing.tostring()


def _legend(drawing, x: float, y: float, scale: float, scale_id: str) -> None:
    gradient = drawing.linearGradient(id=scale_id, start=(0, 0), end=(1, 0))
    for index, colour in enumerate(STOPS):
        gradient.add_stop_color(index / (len(STOPS) - 1), colour)
    drawing.defs.add(gradient)
    drawing.add(drawing.rect((x, y), (120, 10), fill=f"url(#{scale_id})"))
    drawing.add(drawing.text(f"{-scale:.2g}", insert=(x, y + 22), class_="kernel-label"))
    drawing.add(drawing.text("0", insert=(x + 57, y + 22), class_="kernel-label"))
    drawing.add(drawing.text(f"{scale:.2g}", insert=(x + 104, y + 22), class_="kernel-label"))
