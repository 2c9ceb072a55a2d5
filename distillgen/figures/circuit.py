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

from dataclasses import dataclass, replace
from html import escape

import numpy as np

from distillgen import kernels
from distillgen.dictionaries import carrying, trained
from distillgen.figures.base import DirectiveInput, DirectiveKind, Rendered
from distillgen.figures.context import CheckContext, FollowUpContext, PlanContext, RenderContext
from distillgen.figures.unitview import featurevis_job, page_href, unit_card
from distillgen.figures.weights import skip_note
from distillgen.jobs import FeatureVisJob, FeatureVisSettings, WeightsJob
from distillgen.options import MODEL, Argument, Option, integer, text, units
from distillgen.render.colors import diverging
from distillgen.render.words import plural
from distillgen.units import ModelError, ModelSpec, SpecError, UnitRef, is_layer_name, parse_units

_INK = ";color:#fff"  # numbers on the darkest cells
NODE, SPACING, ROW_GAP, GLYPH = 64, 84, 150, 4  # CSS pixels: image, column pitch, rows, kernel cell
GLYPHS = 8  # between two rows of several targets, more edges than this are drawn without glyphs


@dataclass(frozen=True)
class Stage:
    """One row of inputs: a layer, the units chosen from it (None: its strongest `:top:`,
    ranked once the weights into the next row are computed), and those weights."""

    layer: str
    units: tuple[int, ...] | None
    weights: tuple[WeightsJob, ...] | None = None  # from this layer into each unit of the next row

    @property
    def chosen(self) -> tuple[int, ...]:
        """Its units, once chosen or ranked (every stage is, before a circuit renders)."""
        if self.units is None:
            raise ValueError(f"the units of {self.layer} are not ranked yet")
        return self.units

    @property
    def kernels(self) -> tuple[WeightsJob, ...]:
        """Its weights into the next row, once asked for."""
        if self.weights is None:
            raise ValueError(f"the weights out of {self.layer} are not planned yet")
        return self.weights


@dataclass(frozen=True)
class CircuitRequest:
    spec: ModelSpec
    targets: tuple[UnitRef, ...]
    stages: tuple[Stage, ...]  # earliest first, as written
    top: int
    label: str | None
    directive: DirectiveInput


@dataclass(frozen=True)
class CircuitPlan:
    spec: str
    fingerprint: str
    settings: FeatureVisSettings
    targets: tuple[UnitRef, ...]
    stages: tuple[Stage, ...]
    top: int
    label: str | None
    nodes: tuple[tuple[str, FeatureVisJob], ...] = ()  # address -> its feature visualization
    jobs: tuple = ()
    dictionaries: tuple = ()  # jobs.Attached: the trained dictionaries among its layers
    skips: tuple[str, ...] = ()  # residual blocks whose skip connection is one of the paths

    @property
    def resolved(self) -> bool:
        return all(stage.units is not None for stage in self.stages)


class Circuit(DirectiveKind):
    name = "circuit"
    doc = "Target unit(s) and their strongest (or chosen) inputs over one or more layers."
    argument = Argument("target units, e.g. mixed4:52 or mixed4:52,30", units)
    options = (
        MODEL,
        Option(
            "inputs",
            text,
            None,
            "earlier layers, earliest first, joined by '->'; each a layer (its strongest units) "
            "or units of one layer, e.g. 'conv2 -> mixed3:0,15'",
            required=True,
        ),
        Option("top", integer(1, 32), 6, "for a layer stage, how many of its units to draw"),
    )
    numbered = True

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> CircuitRequest | None:
        stages = []
        for part in directive.options["inputs"].split("->"):
            part = part.strip()
            try:
                chosen = None if is_layer_name(part) else parse_units(part)
            except SpecError as exc:
                ctx.error(directive.line, str(exc))
                return None
            if chosen is not None and any(ref.layer != chosen[0].layer for ref in chosen):
                ctx.error(
                    directive.option_line("inputs"),
                    f"each stage of :inputs: is one layer; split '{part}' with '->'",
                )
                return None
            layer = part if chosen is None else chosen[0].layer
            stages.append(Stage(layer, None if chosen is None else tuple(ref.unit for ref in chosen)))
        spec = ctx.model_spec(directive.options["model"], directive.option_line("model"))
        if spec is None:
            return None
        opts = directive.options
        return CircuitRequest(spec, directive.argument, tuple(stages), opts["top"], opts["label"], directive)

    def plan(self, request: CircuitRequest, ctx: PlanContext) -> CircuitPlan | None:
        at = request.directive
        info = ctx.model_info(request.spec, at.option_line("model"))
        if info is None:
            return None
        try:
            targets = tuple(info.check_units(list(request.targets)))
            stages = []
            for stage in request.stages:
                layer = info.layer(stage.layer).name
                chosen = stage.units
                if chosen is not None:
                    chosen = tuple(r.unit for r in info.check_units([UnitRef(layer, u) for u in chosen]))
                stages.append(Stage(layer, chosen))
            later = [*(stage.layer for stage in stages[1:]), *(t.layer for t in targets)]
            for stage, after in zip(stages, later, strict=False):
                info.check_order(stage.layer, after)
                info.check_kernels(stage.layer, after)
        except ModelError as exc:
            ctx.error(at.line, str(exc))
            return None
        plan = CircuitPlan(
            str(request.spec),
            info.fingerprint,
            ctx.featurevis_settings(info),
            targets,
            tuple(stages),
            request.top,
            request.label,
            dictionaries=trained(info, [*(s.layer for s in stages), *(t.layer for t in targets)]),
            skips=tuple(
                dict.fromkeys(
                    skip
                    for stage, after in zip(stages, later, strict=False)
                    for skip in info.skips_between(stage.layer, after)
                )
            ),
        )
        return _resolve(_with_nodes(plan, targets), None)

    def follow_up(self, plan: CircuitPlan, ctx: FollowUpContext) -> CircuitPlan:
        return plan if plan.resolved else _resolve(plan, ctx)

    def render(self, plan: CircuitPlan, ctx: RenderContext) -> Rendered:
        rows = [[f"{s.layer}:{u}" for u in s.chosen] for s in plan.stages]
        rows.append([str(t) for t in plan.targets])
        edges = []
        for stage in plan.stages:
            for job in stage.kernels:
                stack = ctx.kernels(job)
                for channel in stage.chosen:
                    edges.append((f"{stage.layer}:{channel}", f"{job.layer}:{job.unit}", stack[channel]))
        images = {}
        for address, node in plan.nodes:  # a node's unit has its page (a channel's featurevis)
            images[address] = (
                ctx.file_url(node, ctx.result(node).images[0]),
                unit_card(ctx, node, address),
                page_href(node) or "",
            )
        anchor = plan.label or f"circuit-{plan.stages[-1].kernels[0].key[:8]}"
        cards = {}
        for source, target, kernel in edges:
            card = f"{anchor}-{source}-{target}".replace(":", "-").replace(".", "-")
            cards[(source, target)] = card
            ctx.card(card, kernel_card(source, target, kernel))
        svg = circuit_svg(rows, edges, images, cards, plan.spec)
        note = skip_note(plan.stages[0].layer, plan.targets[0].layer, plan.skips)
        return ctx.rendered(ctx.figure(f'<div class="circuit">{svg}</div>', "circuit-figure", note))


def _resolve(plan: CircuitPlan, results: FollowUpContext | None) -> CircuitPlan:
    """Resolve stages from the targets backwards, as far as computed weights allow: each
    stage asks for the weights into the row after it, then is ranked by them (in a later
    round, once they are computed) unless its units were chosen; its units become nodes."""
    stages = list(plan.stages)
    after = plan.targets
    for index in reversed(range(len(stages))):
        stage = stages[index]
        weights = stage.weights
        if weights is None:
            weights = tuple(
                carrying(
                    WeightsJob(plan.spec, plan.fingerprint, stage.layer, t.layer, t.unit), plan.dictionaries
                )
                for t in after
            )
            stage = replace(stage, weights=weights)
            plan = replace(plan, jobs=plan.jobs + weights)
        units = stage.units
        if units is None:
            if results is None or not all(results.done(job) for job in weights):
                stages[index] = stage
                break  # ranked in a later round, once these weights are computed
            norms = [results.kernel_norms(job) for job in weights]
            units = tuple(strongest_inputs(norms, plan.top))
            stage = replace(stage, units=units)
        stages[index] = stage
        plan = _with_nodes(plan, [UnitRef(stage.layer, unit) for unit in units])
        after = tuple(UnitRef(stage.layer, unit) for unit in units)
    return replace(plan, stages=tuple(stages))


def _with_nodes(plan: CircuitPlan, refs) -> CircuitPlan:
    """The plan with a feature visualization node for each unit not drawn yet."""
    known = dict(plan.nodes)
    added = [
        (
            str(ref),
            carrying(featurevis_job(plan.spec, plan.fingerprint, ref, plan.settings), plan.dictionaries),
        )
        for ref in refs
        if str(ref) not in known
    ]
    return replace(plan, nodes=plan.nodes + tuple(added), jobs=plan.jobs + tuple(job for _, job in added))


def strongest_inputs(norms: list[list[float]], top: int) -> list[int]:
    """The `top` input channels with the strongest kernels (their L2 `norms`) into any of the
    next row's units, taken in turn from each unit's ranking so that every unit gets its best;
    strongest first."""
    rankings = [kernels.ranked(channel_norms) for channel_norms in norms]
    picked: list[int] = []
    for rank in range(len(rankings[0])):
        for ranking in rankings:
            if len(picked) < top and ranking[rank] not in picked:
                picked.append(ranking[rank])
    best = [max(column) for column in zip(*norms, strict=True)]
    return sorted(picked, key=lambda channel: -best[channel])


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
    import svgwrite  # here: a rebuild that draws nothing never loads it

    drawing = svgwrite.Drawing(
        size=(width, height), viewBox=f"0 0 {width} {height}", profile="full", debug=False
    )
    drawing.attribs.update({"class": "circuit-svg", "role": "group"})
    targets, inputs = rows[-1], [address for row in rows[:-1] for address in row]
    drawing.set_desc(
        title=f"Circuit into {', '.join(targets)}",
        desc=f"{plural(len(inputs), 'input unit')} of {model} in {plural(len(rows) - 1, 'layer')} "
        "connected to "
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
