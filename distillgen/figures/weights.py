"""{weights} conv2:3 -> mixed3:5, or conv2 -> mixed3:5: kernels as heatmaps with a legend.

Between adjacent layers a kernel is the weight slice; otherwise it is the expanded weight (see
engine/weights.py). One input unit gives one large heatmap; a whole input layer gives small
multiples, strongest first (by the kernel's L2 norm). All heatmaps of a figure share one scale,
normalized to its largest magnitude, as in the Circuits thread.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from distillgen import kernels
from distillgen.figures.base import DirectiveInput, DirectiveKind, Rendered
from distillgen.figures.context import CheckContext, PlanContext, RenderContext
from distillgen.jobs import WeightsJob
from distillgen.options import MODEL, Argument, Option, integer
from distillgen.render.kernelgrid import kernel_grid
from distillgen.units import ModelError, ModelSpec, UnitRef, is_layer_name, parse_units

_ARROW = re.compile(r"^\s*(?P<source>\S+)\s*->\s*(?P<target>\S+)\s*$")
LARGE, SMALL = 24, 8  # CSS pixels per kernel cell: one kernel, small multiples


@dataclass(frozen=True)
class Connection:
    """`source -> target`: a source layer, or one unit of it, into one target unit."""

    source: str
    channel: int | None  # None: every unit of the source layer
    target: UnitRef


def connection(value: str) -> Connection:
    match = _ARROW.match(value)
    if not match:
        raise ValueError(f"write {{kind}} as 'source -> target:unit', not '{value}'")
    targets = parse_units(match["target"])
    if is_layer_name(match["source"]):
        source, channel = match["source"], None
    else:
        sources = parse_units(match["source"])
        if len(sources) != 1:
            targets = []
        else:
            source, channel = sources[0].layer, sources[0].unit
    if len(targets) != 1:
        raise ValueError("{kind} connects one source (unit or layer) to one target unit")
    return Connection(source, channel, targets[0])


@dataclass(frozen=True)
class WeightsRequest:
    spec: ModelSpec
    connection: Connection
    top: int | None
    columns: int
    directive: DirectiveInput


@dataclass(frozen=True)
class WeightsFigure:
    job: WeightsJob
    channel: int | None
    top: int | None
    columns: int
    skips: tuple[str, ...] = ()  # residual blocks whose skip connection is one of the paths

    @property
    def jobs(self) -> tuple[WeightsJob, ...]:
        return (self.job,)


def skip_note(source: str, target: str, skips: tuple[str, ...]) -> str:
    """What a reader must know of expanded weights across residual blocks ("" for none)."""
    if not skips:
        return ""
    named = ", ".join(skips[:-1]) + (" and " if len(skips) > 1 else "") + skips[-1]
    return (
        f"The expanded weights from {source} to {target} add up every path between them, "
        f"the skip connection{'s' if len(skips) > 1 else ''} of {named} among them: each passes "
        "its input on unchanged (or through its 1×1 projection), as a linearization of the "
        "network does."
    )


class Weights(DirectiveKind):
    name = "weights"
    doc = "The kernel(s) from an earlier unit or layer to a later unit, as heatmaps."
    argument = Argument("source -> target, e.g. conv2:3 -> mixed3:5 or conv2 -> mixed3:5", connection)
    options = (
        MODEL,
        Option("top", integer(1, 4096), None, "for a whole layer: show only the N strongest inputs"),
        Option("columns", integer(1, 64), 8, "small multiples per row"),
    )
    numbered = True

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> WeightsRequest | None:
        spec = ctx.model_spec(directive.options["model"], directive.option_line("model"))
        if spec is None:
            return None
        return WeightsRequest(
            spec, directive.argument, directive.options["top"], directive.options["columns"], directive
        )

    def plan(self, request: WeightsRequest, ctx: PlanContext) -> WeightsFigure | None:
        at, wanted = request.directive, request.connection
        info = ctx.model_info(request.spec, at.option_line("model"))
        if info is None:
            return None
        try:
            (target,) = info.check_units([wanted.target])
            if wanted.channel is None:
                source = info.layer(wanted.source).name
            else:
                source = info.check_units([UnitRef(wanted.source, wanted.channel)])[0].layer
            info.check_order(source, target.layer)
            info.check_kernels(source, target.layer)
        except ModelError as exc:
            ctx.error(at.line, str(exc))
            return None
        job = ctx.attach(
            WeightsJob(str(request.spec), info.fingerprint, source, target.layer, target.unit), info
        )
        skips = info.skips_between(source, target.layer)
        return WeightsFigure(job, wanted.channel, request.top, request.columns, skips)

    def render(self, figure: WeightsFigure, ctx: RenderContext) -> Rendered:
        job = figure.job
        stack = ctx.kernels(job)
        if figure.channel is not None:
            channels = [figure.channel]
        else:
            channels = kernels.strongest_first(stack)[: figure.top or len(stack)]
        if not any(stack[c].any() for c in channels):  # engine/weights.py: the unit is out of reach
            source = job.source if figure.channel is None else f"{job.source}:{figure.channel}"
            note = (
                f"No connection: no path in the network leads from {source} to {job.layer}:{job.unit} "
                "(they are in different branches of a concatenation, for example)."
            )
            body = f'<p class="weights-none">{html.escape(note)}</p>'
            return ctx.rendered(ctx.figure(body, "weights-figure"))
        svg = kernel_grid(
            [(f"{job.source}:{c}", stack[c]) for c in channels],
            f"{job.layer}:{job.unit}",
            LARGE if len(channels) == 1 else SMALL,
            figure.columns,
            # the same id only for the same grid: its phone layout <use>s the cells by id
            f"scale-{job.key[:12]}-{figure.channel}-{figure.top}-{figure.columns}",
        )
        note = skip_note(job.source, job.layer, figure.skips)
        return ctx.rendered(ctx.figure(f'<div class="weights">{svg}</div>', "weights-figure", note))
