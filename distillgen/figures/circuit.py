"""{circuit} mixed4:52 with :inputs: mixed3: a unit and its strongest inputs as an SVG diagram.

Nodes are feature visualizations, inputs in a row above their targets. Each edge is drawn as
wide as its kernel's L2 norm (relative to the figure's strongest), red when the kernel sums to
a positive number and blue when negative, with the kernel itself as a small heatmap on the
edge. templates/static/circuit.js makes it interactive: hovering or focusing a node highlights
its edges and dims the rest; an edge's hover card shows its kernel enlarged with its numbers.

With a layer as `:inputs:`, which units to draw depends on the computed weights: they are
ranked in `follow_up`, and the chosen inputs' feature visualizations computed after.
"""

from __future__ import annotations

import io
import re
from html import escape

import numpy as np
import svgwrite

from distillgen.figures import directive
from distillgen.figures.base import DirectiveKind
from distillgen.figures.figure import figure_html
from distillgen.figures.options import LABEL, LAYOUT, MODEL, Option, integer, text
from distillgen.figures.unitview import (
    article_defaults,
    featurevis_job,
    page_href,
    settings_for,
    unit_card,
)
from distillgen.jobs import WeightsJob
from distillgen.render.colors import diverging
from distillgen.units import ModelError, SpecError, UnitRef, parse_units

_LAYER = re.compile(r"^[A-Za-z_][\w.]*$")
_INK = ";color:#fff"  # numbers on the darkest cells
NODE, SPACING, ROW_GAP, GLYPH = 64, 84, 150, 4  # CSS pixels: image, column pitch, rows, kernel cell


@directive
class Circuit(DirectiveKind):
    name = "circuit"
    doc = "Target unit(s) and their strongest (or chosen) inputs, with the kernels between them."
    arguments = "target units, e.g. mixed4:52 or mixed4:52,30"
    options = (
        LABEL,
        LAYOUT,
        MODEL,
        Option("inputs", text, None, "an earlier layer (its strongest units) or a list of its units"),
        Option("top", integer(1, 32), 6, "with a layer as :inputs:, how many inputs per target"),
    )
    numbered = True

    def check(self, directive, article) -> None:
        article_defaults(article)
        inputs = directive.opts["inputs"]
        if inputs is None:
            article.error(directive.line, "{circuit} needs :inputs: (a layer, or units of one layer)")
            return
        try:
            targets = parse_units(directive.args)
            chosen = None if _LAYER.match(inputs) else parse_units(inputs)
        except SpecError as exc:
            article.error(directive.line, str(exc))
            return
        layer = inputs if chosen is None else chosen[0].layer
        if chosen is not None and any(ref.layer != layer for ref in chosen):
            article.error(directive.option_line("inputs"), ":inputs: must all be units of one layer")
            return
        spec = article.model_spec(directive.opts["model"], directive.option_line("model"))
        if spec is not None:
            directive.data.update(spec=spec, targets=targets, layer=layer, chosen=chosen)

    def plan(self, directive, article) -> None:
        data = directive.data
        spec = data["spec"]
        info = article.model_info(spec, directive.option_line("model"))
        if info is None:
            return
        try:
            targets = info.check_units(data["targets"])
            source = info.layer(data["layer"]).name
            chosen = info.check_units(data["chosen"]) if data["chosen"] else None
        except ModelError as exc:
            article.error(directive.line, str(exc))
            return
        order = list(info.layers)
        for target in targets:
            if order.index(source) >= order.index(target.layer):
                article.error(
                    directive.line, f"'{source}' does not come before '{target.layer}' in the network"
                )
                return
        settings = settings_for(info, {}, article_defaults(article))
        data.update(info=info, settings=settings, source=source)
        data["weights"] = [WeightsJob(str(spec), info.fingerprint, source, t.layer, t.unit) for t in targets]
        data["nodes"] = {str(t): featurevis_job(spec, info, t, settings) for t in targets}
        for job in data["weights"]:
            article.need(job, directive.line)
        if chosen is not None:
            self._draw_inputs(directive, article, [ref.unit for ref in chosen])

    def follow_up(self, directive, article) -> None:
        data = directive.data
        if data["chosen"] is not None:
            return
        picked: dict[int, float] = {}
        for job in data["weights"]:
            norms = np.sqrt((_kernels(article, job) ** 2).sum(axis=(1, 2)))
            for channel in np.argsort(-norms, kind="stable")[: directive.opts["top"]]:
                picked[int(channel)] = max(picked.get(int(channel), 0.0), float(norms[channel]))
        self._draw_inputs(directive, article, sorted(picked, key=lambda c: -picked[c]))

    def _draw_inputs(self, directive, article, channels: list[int]) -> None:
        data = directive.data
        data["inputs"] = channels
        for channel in channels:
            unit = UnitRef(data["source"], channel)
            data["nodes"][str(unit)] = featurevis_job(data["spec"], data["info"], unit, data["settings"])
        for job in data["nodes"].values():
            article.need(job, directive.line)

    def render(self, directive, article) -> str:
        data = directive.data
        kernels = {(job.layer, job.unit): _kernels(article, job) for job in data["weights"]}
        inputs = [f"{data['source']}:{c}" for c in data["inputs"]]
        targets = [f"{job.layer}:{job.unit}" for job in data["weights"]]
        edges = []
        for (layer, unit), stack in kernels.items():
            for channel in data["inputs"]:
                edges.append((f"{data['source']}:{channel}", f"{layer}:{unit}", stack[channel]))
        images = {}
        for address, job in data["nodes"].items():
            artifact = article.artifact(job)
            images[address] = (
                article.artifact_url(artifact, artifact.record["result"]["images"][0]),
                unit_card(article, job, address),
                page_href(job),
            )
        anchor = directive.opts["label"] or f"circuit-{data['weights'][0].key[:8]}"
        cards = {}
        for source, target, kernel in edges:
            card = f"{anchor}-{source}-{target}".replace(":", "-").replace(".", "-")
            cards[(source, target)] = card
            article.card(card, kernel_card(source, target, kernel))
        svg = circuit_svg(inputs, targets, edges, images, cards, data["spec"])
        return figure_html(directive, article, f'<div class="circuit">{svg}</div>', "circuit-figure")


def _kernels(article, job: WeightsJob) -> np.ndarray:
    return np.load(io.BytesIO(article.artifact(job).file("kernels.npy").read_bytes()))


def circuit_svg(
    inputs: list[str],
    targets: list[str],
    edges: list[tuple[str, str, np.ndarray]],
    images: dict[str, tuple[str, str, str]],
    cards: dict[tuple[str, str], str],
    model,
) -> str:
    """The diagram: rows of nodes, edges with width, sign colour and a kernel glyph."""
    width = max(len(inputs), len(targets)) * SPACING
    height = ROW_GAP + NODE + 40
    drawing = svgwrite.Drawing(
        size=(width, height), viewBox=f"0 0 {width} {height}", profile="full", debug=False
    )
    drawing.attribs.update({"class": "circuit-svg", "role": "group"})
    drawing.set_desc(
        title=f"Circuit into {', '.join(targets)}",
        desc=f"{len(inputs)} input unit(s) of {model} connected to {', '.join(targets)}; "
        "edge width is the kernel's L2 norm, red positive and blue negative.",
    )

    def centre(address: str, row: list[str], y: float) -> tuple[float, float]:
        offset = (width - len(row) * SPACING) / 2
        return offset + row.index(address) * SPACING + SPACING / 2, y

    strongest = max((float(np.sqrt((k**2).sum())) for _, _, k in edges), default=1.0) or 1.0
    scale = max((float(np.abs(k).max()) for _, _, k in edges), default=1.0) or 1.0
    for source, target, kernel in edges:
        (x1, y1), (x2, y2) = centre(source, inputs, NODE + 18), centre(target, targets, ROW_GAP)
        norm = float(np.sqrt((kernel**2).sum()))
        sign = "positive" if kernel.sum() >= 0 else "negative"
        group = drawing.g(class_=f"edge {sign}", data_from=source, data_to=target)
        group.attribs["data-hover-ref"] = cards[(source, target)]
        group.set_desc(title=f"{source} → {target}: L2 norm {norm:.3g}, sum {kernel.sum():.3g}")
        group.add(drawing.line((x1, y1), (x2, y2), stroke_width=round(1 + 7 * norm / strongest, 2)))
        kh, kw = kernel.shape
        gx, gy = (x1 + x2) / 2 - kw * GLYPH / 2, (y1 + y2) / 2 - kh * GLYPH / 2
        for (row, col), value in np.ndenumerate(kernel):
            group.add(
                drawing.rect(
                    (gx + col * GLYPH, gy + row * GLYPH), (GLYPH, GLYPH), fill=diverging(value / scale)
                )
            )
        drawing.add(group)
    for row, y in ((inputs, 0), (targets, ROW_GAP)):
        for address in row:
            x, _ = centre(address, row, y)
            url, card, href = images[address]
            node = drawing.a(href=href, class_="node", data_unit=address)  # focusable, a link
            del node.attribs["target"]  # svgwrite opens links in a new window by default
            node.attribs["data-hover-ref"] = card
            node.set_desc(title=f"{address}: feature visualization; opens its unit page")
            node.add(drawing.image(url, insert=(x - NODE / 2, y), size=(NODE, NODE)))
            node.add(drawing.text(address, insert=(x, y + NODE + 13), class_="node-label"))
            drawing.add(node)
    return drawing.tostring()


def kernel_card(source: str, target: str, kernel: np.ndarray) -> str:
    """The hover card of an edge: the kernel enlarged, each cell with its number."""
    scale = float(np.abs(kernel).max()) or 1.0

    def cell(value: float) -> str:
        ink = _INK if abs(value) > 0.6 * scale else ""
        return f'<td style="background:{diverging(value / scale)}{ink}">{value:.3g}</td>'

    rows = "".join("<tr>" + "".join(cell(v) for v in line) + "</tr>" for line in kernel)
    return (
        f"<p><code>{escape(source)}</code> → <code>{escape(target)}</code>: L2 norm "
        f'{np.sqrt((kernel**2).sum()):.3g}</p><table class="kernel-numbers">{rows}</table>'
    )
