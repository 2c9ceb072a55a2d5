"""{tuning} mixed4:52,30: units' responses to a sweep of synthetic stimuli, as a line or polar
plot with the stimuli drawn along the axis.

A response is the unit's maximum over positions (see engine/probe.py). Stimulus families are in
stimuli.py (lines and curves by orientation, curvature, gratings by frequency), or an author's
`file.py:function(param)` called as `function(value, size, **params)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from html import escape

import numpy as np

from distillgen.figures import probes
from distillgen.figures.base import DirectiveInput, DirectiveKind, Quantity, Rendered, ValueField
from distillgen.figures.context import CheckContext, FollowUpContext, PlanContext, RenderContext
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
    values = {
        "preferred": ValueField("the orientation (°) of the unit's largest response"),
        "osi": ValueField(
            "the orientation selectivity index: (preferred − orthogonal) / (preferred + orthogonal)"
        ),
        "circular-variance": ValueField(
            "1 − the length of the response-weighted mean of the orientations "
            "(0: one orientation, 1: all alike)"
        ),
        "peak": ValueField("the unit's largest response over the sweep"),
    }
    argument = Argument("units of one layer, e.g. mixed4:52,30,27,47", units_of_one_layer)
    options = (
        MODEL,
        *probes.STIMULUS_OPTIONS,
        probes.DRAWS,
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

    def value(self, figure: TuningFigure, field: str, ctx: FollowUpContext) -> Quantity | None:
        job = figure.job
        if len(job.units) != 1:
            raise ValueError(f"the figure shows {len(job.units)} units; quote a figure of one")
        if field != "peak" and job.sweep.param != probes.PERIODIC:
            raise ValueError(f"{field} needs an orientation sweep; '{job.sweep.param}' is not an angle")
        if not ctx.done(job):
            return None
        result = ctx.result(job)
        curve = [row[0] for row in result.responses]
        if field == "peak":
            return Quantity(f"{max(curve):.3g}", max(curve))
        found = selectivity(list(result.values), curve)
        number = {
            "preferred": found.preferred,
            "osi": found.osi,
            "circular-variance": found.circular_variance,
        }[field]
        return Quantity(f"{number:g}°" if field == "preferred" else f"{number:.2f}", number)

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
        measures = ""
        if job.sweep.param == probes.PERIODIC:
            rows = "".join(
                f"<tr><td><code>{escape(job.layer)}:{unit}</code></td><td>{found.preferred:g}°</td>"
                f"<td>{found.osi:.2f}</td><td>{found.circular_variance:.2f}</td></tr>"
                for i, unit in enumerate(job.units)
                for found in [selectivity(values, [row[i] for row in result.responses])]
            )
            measures = (
                '<table class="tuning-selectivity"><thead><tr><th>unit</th><th>preferred</th>'
                '<th title="(preferred − orthogonal) / (preferred + orthogonal)">selectivity (OSI)</th>'
                '<th title="1 − |Σ r·e^(iθ)| / Σ r over the sweep; 0: one orientation, 1: all alike">'
                "circular variance</th></tr></thead><tbody>"
                f"{rows}</tbody></table>"
            )
        content = f'<div class="plot">{svg}</div>{measures}{probes.draws_note(job.sweep)}'
        return ctx.rendered(ctx.figure(content, "tuning-figure"))


def _family_name(job: TuningJob) -> str:
    return job.sweep.family.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Selectivity:
    """How selective a tuning curve over orientation is."""

    preferred: float  # the orientation of the largest response, in degrees
    osi: float  # (r(preferred) − r(preferred + 90°)) / their sum
    circular_variance: float  # 1 − |Σ r·e^(i·2πθ/period)| / Σ r


def selectivity(angles: list[float], responses: list[float]) -> Selectivity:
    """A sweep's selectivity, on its own grid: responses below zero count as zero, the period is
    360° for a sweep that spans more than 180° (arcs, which face one way) and 180° otherwise
    (lines, the same turned half a circle), and the orthogonal response is the sample nearest
    to 90° from the preferred one."""
    r = np.clip(np.asarray(responses, dtype=float), 0, None)
    theta = np.asarray(angles, dtype=float)
    period = 360.0 if theta.max() - theta.min() > 180 else 180.0
    best = int(np.argmax(r))
    apart = np.abs((theta - theta[best] - 90.0 + period / 2) % period - period / 2)
    orthogonal = r[int(np.argmin(apart))]
    total = r.sum()
    osi = float((r[best] - orthogonal) / (r[best] + orthogonal)) if r[best] + orthogonal else 0.0
    vector = np.sum(r * np.exp(2j * math.pi * theta / period))
    variance = float(1 - abs(vector) / total) if total else 1.0
    return Selectivity(float(theta[best]), osi, variance)
