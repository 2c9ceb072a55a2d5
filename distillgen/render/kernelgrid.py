"""Kernels drawn as labelled heatmaps on one shared diverging scale, with its legend (SVG text):
a {weights} figure's, and a unit page's strongest inputs and outputs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

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
    even: bool = False,
) -> str:
    """An SVG of labelled heatmaps on one shared scale, and its legend. The labels name the
    kernels' sources; with `outgoing`, `target` is the source and the labels the targets.
    The grid has at most the columns a desktop's text column holds, and one wider than a
    phone's column is drawn again with fewer columns (the page's CSS shows one), so that its
    labels are never scaled down with it. With `even` (a unit page's grids, whose columns no
    author chose), a grid whose phone layout takes no more rows than the desktop's is laid out
    once, the phone's way: 8 kernels as 5 + 3 rather than 7 + 1."""
    # a box is as wide as its label too, so the labels of small kernels (1x1: 8 px) do not
    # run together
    kh, kw = stack[0][1].shape
    box_w = max(kw * cell, math.ceil(LABEL_CHAR * max(len(label) for label, _ in stack)))
    columns = min(columns, len(stack))
    columns = min(columns, max(1, (WIDE + GAP) // (box_w + GAP)))
    fitting = max(1, (NARROW + GAP) // (box_w + GAP))
    scale = max(float(np.abs(k).max()) for _, k in stack) or 1.0
    kernels = [_Kernel.of(label, kernel, target, outgoing, scale) for label, kernel in stack]
    what = f"Weights out of {target}" if outgoing else f"Weights into {target}"
    head = (what, f"{what}: {plural(len(stack), 'kernel')}; largest magnitude {number(scale)}")
    grid = _Layout(cell, kh * cell, box_w, scale, head)
    if fitting >= columns or (even and -(-len(kernels) // fitting) <= -(-len(kernels) // columns)):
        return _grid(kernels, grid, min(columns, fitting), scale_id, "")
    return _grid(kernels, grid, columns, scale_id, "wide") + _grid(
        kernels, grid, fitting, f"{scale_id}-narrow", "narrow", drawn=(scale_id, columns)
    )


@dataclass(frozen=True)
class _Kernel:
    """A kernel as its grid draws it, wherever it is placed: its label, its title, and its
    cells (row, column, colour, value as text), worked out once for both layouts."""

    label: str
    title: str
    cells: list[tuple[int, int, str, str]]

    @classmethod
    def of(cls, label: str, kernel: np.ndarray, target: str, outgoing: bool, scale: float) -> _Kernel:
        edge = f"{target} → {label}" if outgoing else f"{label} → {target}"
        title = f"{edge}: L2 norm {number(float(np.sqrt((kernel**2).sum())))}"
        cells = [
            (row, col, diverging(value / scale), number(float(value), 4))
            for (row, col), value in np.ndenumerate(kernel)
        ]
        return cls(label, title, cells)


@dataclass(frozen=True)
class _Layout:
    """What both layouts of a grid share: cell size, a kernel's heatmap height and box width,
    the scale, and the drawing's title and description."""

    cell: int
    height: int
    box_w: int
    scale: float
    head: tuple[str, str]


def _grid(
    kernels: list[_Kernel],
    grid: _Layout,
    columns: int,
    scale_id: str,
    css: str,
    drawn: tuple[str, int] | None = None,
) -> str:
    """One layout of the grid, `columns` kernels a row, as SVG text: written directly, since a
    unit page draws two grids (and an atlas thousands of pages), and svgwrite took 7 ms a grid.
    Every text is escaped. The phone's layout of a grid `drawn` for the desktop already (its
    scale id and columns) shows that layout's cells again with `<use>`: a kernel's cells, each
    with its value as a title, are most of a unit page's elements, and the page holds them once
    (as an icon sprite: the desktop's drawing is hidden on a phone, not gone). Its titles and
    labels are its own."""
    cell, box_h = grid.cell, grid.height + 17
    width = max(columns * (grid.box_w + GAP) - GAP, 160)
    rows = -(-len(kernels) // columns)
    height = rows * (box_h + GAP) + 36
    title, desc = grid.head
    classes = f"kernel-grid {css}".strip()
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{classes}" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>'
        f"<desc>{escape(desc)}</desc>"
    ]
    for index, kernel in enumerate(kernels):
        x, y = (index % columns) * (grid.box_w + GAP), (index // columns) * (box_h + GAP)
        cells_id = f"{escape(drawn[0] if drawn else scale_id)}-k{index}"
        parts.append(f'<g class="kernel"><title>{escape(kernel.title)}</title>')
        if drawn is None:
            parts.append(f'<g id="{cells_id}">')
            parts.extend(
                f'<rect x="{x + col * cell}" y="{y + row * cell}" width="{cell}" height="{cell}" '
                f'fill="{fill}"><title>{value}</title></rect>'
                for row, col, fill, value in kernel.cells
            )
            parts.append("</g>")
        else:  # the desktop's cells, moved to this layout's place
            wide_columns = drawn[1]
            dx = x - (index % wide_columns) * (grid.box_w + GAP)
            dy = y - (index // wide_columns) * (box_h + GAP)
            parts.append(f'<use href="#{cells_id}" x="{dx}" y="{dy}"/>')
        label_y = y + grid.height + 13
        parts.append(f'<text class="kernel-label" x="{x}" y="{label_y}">{escape(kernel.label)}</text></g>')
    parts.append(_legend(0, rows * (box_h + GAP) + 4, grid.scale, scale_id))
    parts.append("</svg>")
    return "".join(parts)


def _legend(x: float, y: float, scale: float, scale_id: str) -> str:
    """The shared scale under the grid: a gradient bar from minus to plus its largest weight."""
    stops = "".join(
        f'<stop offset="{index / (len(STOPS) - 1)}" stop-color="{colour}"/>'
        for index, colour in enumerate(STOPS)
    )
    ends = [(x, number(-scale, 2)), (x + 57, "0"), (x + 104, number(scale, 2))]
    labels = "".join(f'<text class="kernel-label" x="{at}" y="{y + 22}">{text}</text>' for at, text in ends)
    return (
        f'<defs><linearGradient id="{escape(scale_id)}" x1="0" y1="0" x2="1" y2="0">{stops}</linearGradient>'
        f'</defs><rect x="{x}" y="{y}" width="120" height="10" fill="url(#{escape(scale_id)})"/>{labels}'
    )
