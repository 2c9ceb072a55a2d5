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
from distillgen.figures.base import DirectiveInput, DirectiveKind, Rendered
from distillgen.figures.context import CheckContext, FollowUpContext, PlanContext, RenderContext
from distillgen.figures.unitview import featurevis_job, page_href, unit_card
from distillgen.figures.weights import skip_note
from distillgen.jobs import FeatureVisJob, FeatureVisSettings, WeightsJob
from distillgen.options import MODEL, Argument, Option, integer, text, units
from distillgen.render.colors import STOPS, diverging
from distillgen.render.words import number, plural, same_precision
from distillgen.units import ModelError, ModelSpec, SpecError, UnitRef, is_layer_name, parse_units

_INK = ";color:#fff"  # numbers on the darkest cells
NODE, GLYPH_CELL = 64, 2  # CSS pixels: a node's image, a glyph's smallest cell (11x11: 33 px)
GLYPHS = 8  # between two rows of several targets, more edges than this show glyphs when highlighted


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


def circuit_svg(
    rows: list[list[str]],
    edges: list[tuple[str, str, np.ndarray]],
    images: dict[str, tuple[str, str, str]],
    cards: dict[tuple[str, str], str],
    model,
) -> str:
    """The diagram, drawn for a desktop column and for a phone's (once, for both, when no row
    is wider than a phone's), and its colour scales."""
    scales = _scales(rows, edges)
    fits = max(len(row) for row in rows) * _pitch(rows) <= NARROW.columns * PITCH
    layouts = (replace(NARROW, name="any-width"),) if fits else (WIDE, NARROW)
    drawings = "".join(_drawing(layout, rows, edges, images, cards, model, scales) for layout in layouts)
    return drawings + colour_scales(rows, scales)


@dataclass(frozen=True)
class _PairScale:
    """The edges between two rows: drawn on their own scale (expanded weights of different
    layer pairs are in different units, and one scale for all would draw the earlier rows'
    edges as hairlines)."""

    strongest: float  # the largest L2 norm: the widest edge
    largest: float  # the largest |weight|: the ends of the glyphs' colour scale
    edges: int


def _scales(rows: list[list[str]], edges) -> dict[tuple[int, int], _PairScale]:
    found: dict[tuple[int, int], list[np.ndarray]] = {}
    for source, target, kernel in edges:
        found.setdefault(_rows_of(rows, source, target), []).append(kernel)
    return {
        pair: _PairScale(
            max(1e-12, *(float(np.sqrt((k**2).sum())) for k in kernels)),
            max(1e-12, *(float(np.abs(k).max()) for k in kernels)),
            len(kernels),
        )
        for pair, kernels in found.items()
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


def _ends(rows, edges, position) -> dict[tuple[str, str], float]:
    """Where each edge meets its target: its own point along the target's top, in the order of
    the edges' sources from left to right (so that edges do not cross there)."""
    incoming: dict[str, list[str]] = {}
    for source, target, _kernel in edges:
        incoming.setdefault(target, []).append(source)
    ends = {}
    for target, sources in incoming.items():
        x, _y = position[target]
        ordered = sorted(sources, key=lambda s: (position[s][0], position[s][1]))
        span = NODE - 12
        for index, source in enumerate(ordered):
            share = 0.5 if len(ordered) == 1 else index / (len(ordered) - 1)
            ends[(source, target)] = x - span / 2 + share * span
    return ends


def _drawing(layout: Layout, rows, edges, images, cards, model, scales) -> str:
    import svgwrite  # here: a rebuild that draws nothing never loads it

    position, width, height = _positions(rows, layout)
    drawing = svgwrite.Drawing(
        size=(width, round(height)), viewBox=f"0 0 {width} {round(height)}", profile="full", debug=False
    )
    drawing.attribs.update({"class": f"circuit-svg {layout.name}", "role": "group"})
    targets, inputs = rows[-1], [address for row in rows[:-1] for address in row]
    drawing.set_desc(
        title=f"Circuit into {', '.join(targets)}",
        desc=f"{plural(len(inputs), 'input unit')} of {model} in {plural(len(rows) - 1, 'layer')} "
        "connected to "
        f"{', '.join(targets)}; edge width is the kernel's L2 norm, red positive and blue negative.",
    )
    ends = _ends(rows, edges, position)
    for source, target, kernel in edges:
        (x1, y1), (_x, y2) = position[source], position[target]
        x2 = ends[(source, target)]
        y1 += NODE + LABEL
        pair = _rows_of(rows, source, target)
        scale = scales[pair]
        norm = float(np.sqrt((kernel**2).sum()))
        sign = "positive" if kernel.sum() >= 0 else "negative"
        group = drawing.g(class_=f"edge {sign}", data_from=source, data_to=target)
        group.attribs["data-hover-ref"] = cards[(source, target)]
        group.set_desc(
            title=f"{source} → {target}: L2 norm {number(norm)}, sum {number(float(kernel.sum()))}"
        )
        group.add(drawing.line((x1, y1), (x2, y2), stroke_width=round(1 + 7 * norm / scale.strongest, 2)))
        several = len(rows[pair[1]]) > 1
        # one target: each glyph just under its source; several: staggered by target, and
        # shown only while the edge is highlighted when there are too many to tell apart
        t = 0.3 + 0.4 * rows[pair[1]].index(target) / (len(rows[pair[1]]) - 1) if several else None
        hidden = several and scale.edges > GLYPHS
        group.add(_glyph(drawing, kernel, scale.largest, (x1, y1), (x2, y2), t, hidden))
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


_GRADIENT = f"background:linear-gradient(to right,{','.join(STOPS)})"  # the glyphs' scale


def colour_scales(rows: list[list[str]], scales: dict[tuple[int, int], _PairScale]) -> str:
    """Under the diagram, in HTML (legible at any width): the glyphs' colour scale for each
    pair of rows, from minus to plus the largest weight drawn in either sign."""
    items = []
    for (upper, lower), scale in sorted(scales.items()):
        source = rows[upper][0].rsplit(":", 1)[0]
        target = rows[lower][0].rsplit(":", 1)[0]
        low, high = same_precision(-scale.largest, scale.largest)
        items.append(
            f'<div class="colour-scale"><span class="scale-pair"><code>{escape(source)}</code> → '
            f"<code>{escape(target)}</code> weights</span> "
            f'<span class="scale-end">{low}</span><span class="scale-bar" style="{_GRADIENT}" role="img" '
            f'aria-label="blue inhibitory, grey zero, red excitatory"></span>'
            f'<span class="scale-end">+{high}</span></div>'
        )
    key = (
        '<p class="circuit-key">Edge width: the kernel\'s L2 norm. <span class="key-positive">Red</span>: '
        'excitatory (the kernel sums positive); <span class="key-negative">blue, dashed</span>: '
        "inhibitory.</p>"
    )
    return f'<div class="circuit-scales">{"".join(items)}{key}</div>'


def _rows_of(rows: list[list[str]], source: str, target: str) -> tuple[int, int]:
    return next(i for i, row in enumerate(rows) if source in row), next(
        i for i, row in enumerate(rows) if target in row
    )


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
