"""{tuning} mixed4:52,30: units' responses to a sweep of synthetic stimuli, as a line or polar
plot with the stimuli drawn along the axis.

A response is the unit's maximum over positions (see engine/probe.py). Stimulus families are in
stimuli.py (lines and curves by orientation, curvature, gratings by frequency), or an author's
`file.py:function(param)` called as `function(value, size, **params)`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from distillgen.figures import probes
from distillgen.figures.base import DirectiveInput, DirectiveKind, Rendered
from distillgen.figures.context import CheckContext, PlanContext, RenderContext
from distillgen.jobs import Sweep, TuningJob
from distillgen.options import MODEL, Argument, Option, boolean, choice, integer, units_of_one_layer
from distillgen.render.plots import line_plot, polar_plot
from distillgen.units import ModelSpec, UnitRef


@dataclass(frozen=True)
class TuningRequest:
    spec: ModelSpec
    units: tuple[UnitRef, ...]
    sweep: Sweep  # its size is the model's input size, set when planning
    plot: str
    thumbnails: int
    normalize: bool
    directive: DirectiveInput


@dataclass(frozen=True)
class TuningFigure:
    job: TuningJob
    plot: str
    thumbnails: int
    normalize: bool

    @property
    def jobs(self) -> tuple[TuningJob, ...]:
        return (self.job,)


class Tuning(DirectiveKind):
    name = "tuning"
    doc = "Tuning curves: units' responses to a parametric family of stimuli."
    argument = Argument("units of one layer, e.g. mixed4:52,30,27,47", units_of_one_layer)
    options = (
        MODEL,
        *probes.STIMULUS_OPTIONS,
        Option("plot", choice("line", "polar"), "line", "a line plot, or polar (orientation sweeps)"),
        Option(
            "thumbnails",
            integer(0, 64),
            8,
            "at most how many stimuli to draw, one under each tick of the axis",
        ),
        Option("normalize", boolean, False, "divide each unit's curve by its own peak, to compare shapes"),
    )
    numbered = True

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> TuningRequest | None:
        opts = directive.options
        spec = ctx.model_spec(opts["model"], directive.option_line("model"))
        sweep = probes.sweep(directive, ctx) if spec is not None else None
        if spec is None or sweep is None:
            return None
        if opts["plot"] == "polar" and sweep.param != probes.PERIODIC:
            ctx.error(
                directive.option_line("plot"),
                f":plot: polar needs an orientation sweep; '{sweep.param}' is not an angle",
            )
            return None
        return TuningRequest(
            spec, directive.argument, sweep, opts["plot"], opts["thumbnails"], opts["normalize"], directive
        )

    def plan(self, request: TuningRequest, ctx: PlanContext) -> TuningFigure | None:
        at = request.directive
        resolved = ctx.units(request.spec, request.units, at.line, at.option_line("model"))
        if resolved is None:
            return None
        info, units = resolved
        sweep = replace(request.sweep, size=info.input_size)
        job = ctx.attach(
            TuningJob(
                str(request.spec), info.fingerprint, units[0].layer, tuple(u.unit for u in units), sweep
            ),
            info,
        )
        return TuningFigure(job, request.plot, request.thumbnails, request.normalize)

    def render(self, figure: TuningFigure, ctx: RenderContext) -> Rendered:
        job = figure.job
        result = ctx.result(job)
        values = list(result.values)
        series = [
            (f"{job.layer}:{unit}", [row[i] for row in result.responses]) for i, unit in enumerate(job.units)
        ]
        y_label = "peak response"
        if figure.normalize:
            series = [(name, [v / (max(curve) or 1.0) for v in curve]) for name, curve in series]
            y_label = "peak response / the unit's largest"
        title = f"Tuning of {', '.join(name for name, _ in series)} to {_family_name(job)}"
        if figure.plot == "polar":
            svg = polar_plot(values, series, title, mirror=values[-1] - values[0] < 180)
        else:
            svg = line_plot(
                values,
                series,
                probes.axis_label(job.sweep),
                y_label,
                title,
                thumbnails=lambda index: ctx.file_url(job, result.stimuli[index]),
                icons=figure.thumbnails,
                angles=job.sweep.param == probes.PERIODIC,
            )
        return ctx.rendered(ctx.figure(f'<div class="plot">{svg}</div>', "tuning-figure"))


def _family_name(job: TuningJob) -> str:
    return job.sweep.family.rsplit("/", 1)[-1]
