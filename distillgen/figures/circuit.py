"""{circuit} mixed4:52 with :inputs: conv2 -> mixed3: a unit and its inputs as an SVG diagram.

`:inputs:` is a chain of earlier layers, earliest first, joined by `->`; each stage is a layer
(its strongest units are drawn) or a list of its units. Nodes are feature visualizations in one
row per stage, the targets in the last row; edges join consecutive rows. Each edge is drawn as
wide as its kernel's L2 norm (relative to the strongest between the same two rows; with one
row of inputs, the figure's strongest), red when the kernel sums to
a positive number and blue when negative, with the kernel itself as a small heatmap on the
edge (between two rows of several units, only up to GLYPHS edges: more would overlap; the hover
card still shows every kernel). templates/static/circuit.js makes it interactive: hovering or
focusing a node highlights its edges and dims the rest; an edge's hover card shows its kernel
enlarged with its numbers.

Which units a layer stage draws depends on the weights into the row after it, so the chain is
resolved from the targets backwards, one stage per compute round (`follow_up`).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
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
GLYPHS = 8  # between two rows of several targets, more edges than this are drawn without glyphs


@dataclass
class Stage:
    """One row of inputs: a layer, and the units drawn from it (chosen, or ranked later)."""

    layer: str
    chosen: list[int] | None  # None: the strongest `:top:` units of the layer
    units: list[int] | None = None  # known once chosen or ranked
    weights: list[WeightsJob] | None = None  # from this layer into each unit of the next row


@directive
class Circuit(DirectiveKind):
    name = "circuit"
    doc = "Target unit(s) and their strongest (or chosen) inputs over one or more layers."
    arguments = "target units, e.g. mixed4:52 or mixed4:52,30"
    options = (
        LABEL,
        LAYOUT,
        MODEL,
        Option(
            "inputs",
            text,
            None,
            "earlier layers, earliest first, joined by '->'; each a layer (its strongest units) "
            "or units of one layer, e.g. 'conv2 -> mixed3:0,15'",
        ),
        Option("top", integer(1, 32), 6, "for a layer stage, how many of its units to draw"),
    )
    numbered = True

    def check(self, directive, article) -> None:
        article_defaults(article)
        inputs = directive.opts["inputs"]
        if inputs is None:
            article.error(directive.line, "{circuit} needs :inputs: (a layer, or units of one layer)")
            return
        stages = []
        try:
            targets = parse_units(directive.args)
            for part in inputs.split("->"):
                part = part.strip()
                chosen = None if _LAYER.match(part) else parse_units(part)
                if chosen is not None and any(ref.layer != chosen[0].layer for ref in chosen):
                    article.error(
                        directive.option_line("inputs"),
                        f"each stage of :inputs: is one layer; split '{part}' with '->'",
                    )
                    return
                layer = part if chosen is None else chosen[0].layer
                stages.append(Stage(layer, None if chosen is None else [ref.unit for ref in chosen]))
        except SpecError as exc:
            article.error(directive.line, str(exc))
            return
        spec = article.model_spec(directive.opts["model"], directive.option_line("model"))
        if spec is not None:
            directive.data.update(spec=spec, targets=targets, stages=stages)

    def plan(self, directive, article) -> None:
        data = directive.data
        spec = data["spec"]
        info = article.model_info(spec, directive.option_line("model"))
        if info is None:
            return
        try:
            targets = info.check_units(data["targets"])
            for stage in data["stages"]:
                stage.layer = info.layer(stage.layer).name
                if stage.chosen is not None:
                    refs = info.check_units([UnitRef(stage.layer, unit) for unit in stage.chosen])
                    stage.chosen = [ref.unit for ref in refs]
        except ModelError as exc:
            article.error(directive.line, str(exc))
            return
        order = list(info.layers)
        later = [*(stage.layer for stage in data["stages"][1:]), *(t.layer for t in targets)]
        for stage, after in zip(data["stages"], later, strict=False):
            if order.index(stage.layer) >= order.index(after):
                article.error(
                    directive.line, f"'{stage.layer}' does not come before '{after}' in the network"
                )
                return
        settings = settings_for(info, {}, article_defaults(article))
        data.update(info=info, settings=settings, targets=targets)
        data["nodes"] = {}
        self._add_nodes(directive, article, targets)
        self._resolve(directive, article)

    def follow_up(self, directive, article) -> None:
        if "nodes" in directive.data:
            self._resolve(directive, article)

    def _resolve(self, directive, article) -> None:
        """Resolve stages from the targets backwards, as far as computed weights allow."""
        data = directive.data
        after = data["targets"]
        for stage in reversed(data["stages"]):
            if stage.weights is None:
                stage.weights = [
                    WeightsJob(str(data["spec"]), data["info"].fingerprint, stage.layer, t.layer, t.unit)
                    for t in after
                ]
                for job in stage.weights:
                    article.need(job, directive.line)
            if stage.units is None:
                if stage.chosen is not None:
                    stage.units = stage.chosen
                elif all(job.key in article.artifacts for job in stage.weights):
                    stacks = [_kernels(article, job) for job in stage.weights]
                    stage.units = strongest_inputs(stacks, directive.opts["top"])
                else:
                    return  # ranked in a later round, once these weights are computed
                self._add_nodes(directive, article, [UnitRef(stage.layer, u) for u in stage.units])
            after = [UnitRef(stage.layer, unit) for unit in stage.units]

    def _add_nodes(self, directive, article, units: list[UnitRef]) -> None:
        data = directive.data
        for unit in units:
            job = featurevis_job(data["spec"], data["info"], unit, data["settings"])
            data["nodes"][str(unit)] = job
            article.need(job, directive.line)

    def render(self, directive, article) -> str:
        data = directive.data
        stages = data["stages"]
        rows = [[f"{s.layer}:{u}" for u in s.units] for s in stages]
        rows.append([str(t) for t in data["targets"]])
        edges = []
        for stage in stages:
            for job in stage.weights:
                stack = _kernels(article, job)
                for channel in stage.units:
                    edges.append((f"{stage.layer}:{channel}", f"{job.layer}:{job.unit}", stack[channel]))
        images = {}
        for address, job in data["nodes"].items():
            artifact = article.artifact(job)
            images[address] = (
                article.artifact_url(artifact, artifact.record["result"]["images"][0]),
                unit_card(article, job, address),
                page_href(job),
            )
        anchor = directive.opts["label"] or f"circuit-{stages[-1].weights[0].key[:8]}"
        cards = {}
        for source, target, kernel in edges:
            card = f"{anchor}-{source}-{target}".replace(":", "-").replace(".", "-")
            cards[(source, target)] = card
            article.card(card, kernel_card(source, target, kernel))
        svg = circuit_svg(rows, edges, images, cards, data["spec"])
        return figure_html(directive, article, f'<div class="circuit">{svg}</div>', "circuit-figure")


def strongest_inputs(stacks: list[np.ndarray], top: int) -> list[int]:
    """The `top` input channels with the strongest kernels (L2 norm) into any of the next
    row's units, taken in turn from each unit's ranking so that every unit gets its best;
    strongest first."""
    norms = [np.sqrt((stack**2).sum(axis=(1, 2))) for stack in stacks]
    rankings = [np.argsort(-n, kind="stable") for n in norms]
    picked: list[int] = []
    for rank in range(len(rankings[0])):
        for ranking in rankings:
            if len(picked) < top and int(ranking[rank]) not in picked:
                picked.append(int(ranking[rank]))
    best = np.max(norms, axis=0)
    return sorted(picked, key=lambda channel: -best[channel])


def _kernels(article, job: WeightsJob) -> np.ndarray:
    return np.load(io.BytesIO(article.artifact(job).file("kernels.npy").read_bytes()))


def circuit_svg(
    rows: list[list[str]],
    edges: list[tuple[str, str, np.ndarray]],
    images: dict[str, tuple[str, str, str]],
    cards: dict[tuple[str, str], str],
    model,
) -> str:
    """The diagram: rows of nodes (inputs first, targets last), edges with width, sign colour
    and a kernel glyph."""
    width = max(len(row) for row in rows) * SPACING
    height = (len(rows) - 1) * ROW_GAP + NODE + 40
    drawing = svgwrite.Drawing(
        size=(width, height), viewBox=f"0 0 {width} {height}", profile="full", debug=False
    )
    drawing.attribs.update({"class": "circuit-svg", "role": "group"})
    targets, inputs = rows[-1], [address for row in rows[:-1] for address in row]
    drawing.set_desc(
        title=f"Circuit into {', '.join(targets)}",
        desc=f"{len(inputs)} input unit(s) of {model} in {len(rows) - 1} layer(s) connected to "
        f"{', '.join(targets)}; edge width is the kernel's L2 norm, red positive and blue negative.",
    )
    position = {}
    for index, row in enumerate(rows):
        offset = (width - len(row) * SPACING) / 2
        for column, address in enumerate(row):
            position[address] = (offset + column * SPACING + SPACING / 2, index * ROW_GAP)
    # Widths and colours are relative to the strongest kernel between the same two rows:
    # expanded weights of different layer pairs are in different units, and one scale for
    # all would draw the earlier rows' edges as hairlines.
    strongest: dict[tuple[int, int], float] = {}
    scale: dict[tuple[int, int], float] = {}
    count: dict[tuple[int, int], int] = {}  # edges between the two rows
    for source, target, kernel in edges:
        pair = _rows_of(rows, source, target)
        count[pair] = count.get(pair, 0) + 1
        strongest[pair] = max(strongest.get(pair, 1e-12), float(np.sqrt((kernel**2).sum())))
        scale[pair] = max(scale.get(pair, 1e-12), float(np.abs(kernel).max()))
    for source, target, kernel in edges:
        (x1, y1), (x2, y2) = position[source], position[target]
        y1 += NODE + 18
        pair = _rows_of(rows, source, target)
        norm = float(np.sqrt((kernel**2).sum()))
        sign = "positive" if kernel.sum() >= 0 else "negative"
        group = drawing.g(class_=f"edge {sign}", data_from=source, data_to=target)
        group.attribs["data-hover-ref"] = cards[(source, target)]
        group.set_desc(title=f"{source} → {target}: L2 norm {norm:.3g}, sum {kernel.sum():.3g}")
        group.add(drawing.line((x1, y1), (x2, y2), stroke_width=round(1 + 7 * norm / strongest[pair], 2)))
        if len(rows[pair[1]]) == 1 or count[pair] <= GLYPHS:
            group.add(_glyph(drawing, kernel, scale[pair], rows[pair[1]], target, (x1, y1), (x2, y2)))
        drawing.add(group)
    for row in rows:
        for address in row:
            x, y = position[address]
            url, card, href = images[address]
            node = drawing.a(href=href, class_="node", data_unit=address)  # focusable, a link
            del node.attribs["target"]  # svgwrite opens links in a new window by default
            node.attribs["data-hover-ref"] = card
            node.set_desc(title=f"{address}: feature visualization; opens its unit page")
            node.add(drawing.image(url, insert=(x - NODE / 2, y), size=(NODE, NODE)))
            node.add(drawing.text(address, insert=(x, y + NODE + 13), class_="node-label"))
            drawing.add(node)
    return drawing.tostring()


def _glyph(drawing, kernel: np.ndarray, scale: float, targets: list[str], target: str, start, end):
    """The kernel as a small heatmap on its edge: halfway along, staggered by the target's
    column when the row has several targets, so glyphs of neighbouring targets do not overlap."""
    (x1, y1), (x2, y2) = start, end
    kh, kw = kernel.shape
    t = 0.5 if len(targets) == 1 else 0.3 + 0.4 * targets.index(target) / (len(targets) - 1)
    gx, gy = x1 + t * (x2 - x1) - kw * GLYPH / 2, y1 + t * (y2 - y1) - kh * GLYPH / 2
    glyph = drawing.g(class_="glyph")
    for (i, j), value in np.ndenumerate(kernel):
        glyph.add(
            drawing.rect((gx + j * GLYPH, gy + i * GLYPH), (GLYPH, GLYPH), fill=diverging(value / scale))
        )
    return glyph


def _rows_of(rows: list[list[str]], source: str, target: str) -> tuple[int, int]:
    return next(i for i, row in enumerate(rows) if source in row), next(
        i for i, row in enumerate(rows) if target in row
    )


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
