"""{weights} conv2:3 -> mixed3:5, or conv2 -> mixed3:5: kernels as heatmaps with a legend.

Between adjacent layers a kernel is the weight slice; otherwise it is the expanded weight (see
engine/weights.py). One input unit gives one large heatmap; a whole input layer gives small
multiples, strongest first (by the kernel's L2 norm). All heatmaps of a figure share one scale,
normalized to its largest magnitude, as in the Circuits thread.
"""

from __future__ import annotations

import io
import re

import numpy as np
import svgwrite

from distillgen.figures import directive
from distillgen.figures.base import DirectiveKind
from distillgen.figures.figure import figure_html
from distillgen.figures.options import LABEL, LAYOUT, MODEL, Option, integer
from distillgen.figures.unitview import comes_before
from distillgen.jobs import WeightsJob
from distillgen.render.colors import STOPS, diverging
from distillgen.units import ModelError, SpecError, UnitRef, parse_units

_ARROW = re.compile(r"^\s*(?P<source>\S+)\s*->\s*(?P<target>\S+)\s*$")
_LAYER = re.compile(r"^[A-Za-z_][\w.]*$")
LARGE, SMALL, GAP = 24, 8, 12  # CSS pixels per kernel cell (one kernel, small multiples), gap


@directive
class Weights(DirectiveKind):
    name = "weights"
    doc = "The kernel(s) from an earlier unit or layer to a later unit, as heatmaps."
    arguments = "source -> target, e.g. conv2:3 -> mixed3:5 or conv2 -> mixed3:5"
    options = (
        LABEL,
        LAYOUT,
        MODEL,
        Option("top", integer(1, 4096), None, "for a whole layer: show only the N strongest inputs"),
        Option("columns", integer(1, 64), 8, "small multiples per row"),
    )
    numbered = True

    def check(self, directive, article) -> None:
        match = _ARROW.match(directive.args)
        if not match:
            article.error(
                directive.line, f"write {{weights}} as 'source -> target:unit', not '{directive.args}'"
            )
            return
        try:
            (target,) = parse_units(match["target"])
            if _LAYER.match(match["source"]):
                source, channel = match["source"], None
            else:
                (ref,) = parse_units(match["source"])
                source, channel = ref.layer, ref.unit
        except SpecError as exc:
            article.error(directive.line, str(exc))
            return
        except ValueError:
            article.error(directive.line, "{weights} connects one source (unit or layer) to one target unit")
            return
        spec = article.model_spec(directive.opts["model"], directive.option_line("model"))
        if spec is not None:
            directive.data.update(spec=spec, source=source, channel=channel, target=target)

    def plan(self, directive, article) -> None:
        data = directive.data
        info = article.model_info(data["spec"], directive.option_line("model"))
        if info is None:
            return
        try:
            (target,) = info.check_units([data["target"]])
            if data["channel"] is None:
                source = info.layer(data["source"]).name
            else:
                source = info.check_units([UnitRef(data["source"], data["channel"])])[0].layer
        except ModelError as exc:
            article.error(directive.line, str(exc))
            return
        if not comes_before(article, directive.line, info, source, target.layer):
            return
        spec = data["spec"]
        data["job"] = WeightsJob(str(spec), info.fingerprint, source, target.layer, target.unit)
        article.need(data["job"], directive.line)

    def render(self, directive, article) -> str:
        data, opts = directive.data, directive.opts
        job = data["job"]
        kernels = np.load(io.BytesIO(article.artifact(job).file("kernels.npy").read_bytes()))
        if data["channel"] is not None:
            channels = [data["channel"]]
        else:
            norms = np.sqrt((kernels**2).sum(axis=(1, 2)))
            channels = [int(c) for c in np.argsort(-norms, kind="stable")][: opts["top"] or len(kernels)]
        svg = kernel_grid(
            [(f"{job.source}:{c}", kernels[c]) for c in channels],
            f"{job.layer}:{job.unit}",
            LARGE if len(channels) == 1 else SMALL,
            opts["columns"],
            f"scale-{job.key[:12]}",
        )
        return figure_html(directive, article, f'<div class="weights">{svg}</div>', "weights-figure")


def kernel_grid(
    kernels: list[tuple[str, np.ndarray]],
    target: str,
    cell: int,
    columns: int,
    scale_id: str,
    outgoing: bool = False,
) -> str:
    """An SVG of labelled heatmaps on one shared scale, and its legend. The labels name the
    kernels' sources; with `outgoing`, `target` is the source and the labels the targets."""
    scale = max(float(np.abs(k).max()) for _, k in kernels) or 1.0
    kh, kw = kernels[0][1].shape
    columns = min(columns, len(kernels))
    box_w, box_h = kw * cell, kh * cell + 16
    width = max(columns * (box_w + GAP) - GAP, 160)
    rows = -(-len(kernels) // columns)
    height = rows * (box_h + GAP) + 36
    drawing = svgwrite.Drawing(
        size=(width, height), viewBox=f"0 0 {width} {height}", profile="full", debug=False
    )
    drawing.attribs.update({"class": "kernel-grid", "role": "img"})
    what = f"Weights out of {target}" if outgoing else f"Weights into {target}"
    drawing.set_desc(title=what, desc=f"{what}: {len(kernels)} kernel(s); largest magnitude {scale:.3g}")
    for index, (label, kernel) in enumerate(kernels):
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
