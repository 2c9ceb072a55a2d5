"""{circuit} mixed4:52 with :inputs: conv2 -> mixed3: a unit and its inputs as an SVG diagram.

`:inputs:` is a chain of earlier layers, earliest first, joined by `->`; each stage is a layer
(its strongest units are drawn) or a list of its units. Nodes are feature visualizations in one
row per stage, the targets in the last row; edges join consecutive rows, each ending at its own
point of its target. Each edge is drawn as wide as its kernel's L2 norm (relative to the
strongest between the same two rows), red when the kernel sums to a positive number and blue
(dashed) when negative, with the kernel itself as a heatmap of at least 24 px on the edge: just
under its source when the next row is one target; staggered along the edges between two rows
of several units, where more than GLYPHS edges show theirs only while highlighted. An HTML
colour scale per pair of rows follows the drawing. The drawing is made twice, for a desktop
column (six nodes a line) and for a phone's (four); a longer row wraps onto further lines.
templates/static/circuit.js makes it interactive: hovering or focusing a node highlights its
edges and dims the rest; an edge's hover card shows its kernel enlarged with its numbers.

Which units a layer stage draws depends on the weights into the row after it, so the chain is
resolved from the targets backwards, one stage per compute round (`follow_up`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from html import escape

import numpy as np

from distillgen import kernels
from distillgen.dictionaries import carrying, trained
from distillgen.figures.base import DirectiveInput, DirectiveKind, Quantity, Rendered, ValueField
from distillgen.figures.context import CheckContext, FollowUpContext, PlanContext, RenderContext
from distillgen.figures.diagram import Edge, Graph, Node, circuit_svg, glyph_scales
from distillgen.figures.unitview import featurevis_job, page_href, unit_card
from distillgen.figures.weights import skip_note
from distillgen.jobs import FeatureVisJob, FeatureVisSettings, WeightsJob
from distillgen.options import MODEL, Argument, Option, integer, text, units
from distillgen.render.colors import diverging
from distillgen.render.words import number, ordinal
from distillgen.units import ModelError, ModelSpec, SpecError, UnitRef, is_layer_name, parse_units

_INK = ";color:#fff"  # numbers on the darkest cells


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
    per_unit = True
    values = {
        "weight": ValueField(
            "an input's kernel L2 norm into the figure's one target (of an input, 'of mixed3:5')",
            of_unit=True,
        ),
        "rank": ValueField(
            "an input's place among every unit of its layer by kernel L2 norm into the target "
            "(1: the heaviest)",
            of_unit=True,
        ),
    }
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
        stages = stages_of(directive.options["inputs"], directive, ctx)
        spec = ctx.model_spec(directive.options["model"], directive.option_line("model"))
        if stages is None or spec is None:
            return None
        opts = directive.options
        return CircuitRequest(spec, directive.argument, stages, opts["top"], opts["label"], directive)

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

    def unit_value(self, plan: CircuitPlan, field: str, unit: str, ctx: FollowUpContext) -> Quantity | None:
        """`weight` or `rank` of a unit of the layer next to the figure's one target, drawn or
        not (its weights into the target are computed for every unit of that layer)."""
        if len(plan.targets) != 1:
            raise ValueError(f"the figure has {len(plan.targets)} targets; quote a circuit of one")
        stage = plan.stages[-1]  # the inputs next to the target: every unit of their layer is weighed
        layer, _, number = unit.rpartition(":")
        if not ctx.same_layer(plan.fingerprint, layer, stage.layer):
            raise ValueError(f"the figure's inputs next to its target are of {stage.layer}, not {layer}")
        (weights,) = stage.kernels
        if not ctx.done(weights):
            return None
        norms = np.asarray(ctx.kernel_norms(weights))
        chosen = int(number)
        if chosen >= len(norms):
            raise ValueError(f"{stage.layer} has {len(norms)} units, not {chosen + 1}")
        if field == "weight":
            return Quantity(f"{norms[chosen]:.3g}", float(norms[chosen]))
        rank = 1 + int(np.sum(norms > norms[chosen]))
        return Quantity(ordinal(rank), rank)

    def render(self, plan: CircuitPlan, ctx: RenderContext) -> Rendered:
        graph = self._graph(plan, ctx)
        key = (
            '<p class="circuit-key">Edge width: the kernel\'s L2 norm. '
            '<span class="key-positive">Red</span>: excitatory (the kernel sums positive); '
            '<span class="key-negative">blue, dashed</span>: inhibitory.</p>'
        )
        scales = f'<div class="circuit-scales">{glyph_scales(graph)}{key}</div>'
        svg = f'<div class="circuit">{circuit_svg(graph)}{scales}</div>'
        note = skip_note(plan.stages[0].layer, plan.targets[0].layer, plan.skips)
        return ctx.rendered(ctx.figure(svg, "circuit-figure", note))

    def graph(self, plan: CircuitPlan, ctx: RenderContext) -> dict:
        return self._graph(plan, ctx).json({"kind": self.name})

    def _graph(self, plan: CircuitPlan, ctx: RenderContext) -> Graph:
        rows = [[f"{s.layer}:{u}" for u in s.chosen] for s in plan.stages]
        rows.append([str(t) for t in plan.targets])
        shown = nodes(ctx, plan.nodes)  # their hover cards first, then the edges'
        anchor = plan.label or f"circuit-{plan.stages[-1].kernels[0].key[:8]}"
        edges = []
        for stage in plan.stages:
            for job in stage.kernels:
                stack = ctx.kernels(job)
                for channel in stage.chosen:
                    source, target = f"{stage.layer}:{channel}", f"{job.layer}:{job.unit}"
                    kernel = stack[channel]
                    card = card_anchor(anchor, source, target)
                    ctx.card(card, kernel_card(source, target, kernel))
                    norm, total = float(np.sqrt((kernel**2).sum())), float(kernel.sum())
                    edges.append(
                        Edge(
                            source,
                            target,
                            norm,
                            total >= 0,
                            f"{source} → {target}: L2 norm {number(norm)}, sum {number(total)}",
                            card,
                            glyph=kernel,
                            data={"l2": norm, "sum": total, "kernel": kernel.tolist()},
                        )
                    )
        return Graph(plan.spec, rows, shown, edges, "expanded weights", "the kernel's L2 norm")


def nodes(ctx: RenderContext, shown) -> dict[str, Node]:
    """Each (address, feature visualization) as a node: its image, hover card and unit page."""
    return {
        address: Node(
            address,
            ctx.file_url(job, ctx.result(job).images[0]),
            unit_card(ctx, job, address),
            page_href(job) or "",
        )
        for address, job in shown
    }


def card_anchor(figure: str, source: str, target: str) -> str:
    """The hover card anchor of an edge of a figure."""
    return f"{figure}-{source}-{target}".replace(":", "-").replace(".", "-")


def stages_of(written: str, directive: DirectiveInput, ctx: CheckContext) -> tuple[Stage, ...] | None:
    """`:inputs:` as written ('conv2 -> mixed3:0,15'): a stage per layer, earliest first, with
    its chosen units or None; None after an error."""
    stages = []
    for part in written.split("->"):
        part = part.strip()
        try:
            chosen = None if is_layer_name(part) else parse_units(part)
        except SpecError as exc:
            ctx.error(directive.option_line("inputs"), str(exc))
            return None
        if chosen is not None and any(ref.layer != chosen[0].layer for ref in chosen):
            ctx.error(
                directive.option_line("inputs"),
                f"each stage of :inputs: is one layer; split '{part}' with '->'",
            )
            return None
        if chosen is not None and len({ref.unit for ref in chosen}) < len(chosen):
            ctx.error(directive.option_line("inputs"), f"'{part}' names a unit twice in :inputs:")
            return None
        layer = part if chosen is None else chosen[0].layer
        stages.append(Stage(layer, None if chosen is None else tuple(ref.unit for ref in chosen)))
    return tuple(stages)


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


def kernel_card(source: str, target: str, kernel: np.ndarray) -> str:
    """The hover card of an edge: the kernel enlarged, each cell with its number."""
    scale = float(np.abs(kernel).max()) or 1.0

    def cell(value: float) -> str:
        ink = _INK if abs(value) > 0.6 * scale else ""
        return f'<td style="background:{diverging(value / scale)}{ink}">{number(value)}</td>'

    rows = "".join("<tr>" + "".join(cell(v) for v in line) + "</tr>" for line in kernel)
    return (
        f"<p><code>{escape(source)}</code> → <code>{escape(target)}</code>: L2 norm "
        f'{number(float(np.sqrt((kernel**2).sum())))}</p><table class="kernel-numbers">{rows}</table>'
    )
