"""{tuning} mixed4:52,30: units' responses to a sweep of synthetic stimuli, as a line or polar
plot with the stimuli drawn along the axis.

A response is the unit's maximum over positions (see engine/probe.py). Stimulus families are in
stimuli.py (lines and curves by orientation, curvature, gratings by frequency), or an author's
`file.py:function(param)` called as `function(value, size, **params)`.

`:population: true` (orientation sweeps only) asks whether the layer is more orientation-selective
than chance: the same sweep over every unit of the figure's layer, in the model and in the same
architecture with random weights (`shapes@untrained`, units.untrained), drawn as overlaid
histograms of their OSI below the figure, with each one's median and share of units at OSI ≥ 0.5;
prose quotes the medians as `population-osi` and `baseline-osi`. A model that is untrained itself,
or that distillgen cannot initialize (an author's model file), has no baseline: an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from html import escape

import numpy as np

from distillgen.dictionaries import is_dictionary
from distillgen.figures import probes
from distillgen.figures.base import DirectiveInput, DirectiveKind, Quantity, Rendered, ValueField
from distillgen.figures.context import CheckContext, FollowUpContext, PlanContext, RenderContext
from distillgen.jobs import Sweep, TuningJob, TuningResult
from distillgen.options import MODEL, Argument, Option, boolean, choice, integer, units_of_one_layer
from distillgen.render.plots import histograms, line_plot, polar_plot
from distillgen.render.words import plural
from distillgen.units import ModelError, ModelSpec, SpecError, UnitRef, untrained

SELECTIVE = 0.5  # the OSI from which the population summary counts a unit as orientation-selective


@dataclass(frozen=True)
class TuningRequest:
    spec: ModelSpec
    units: tuple[UnitRef, ...]
    sweep: Sweep  # its size is the model's input size, set when planning
    plot: str
    thumbnails: int
    normalize: bool
    directive: DirectiveInput
    baseline: ModelSpec | None = None  # with :population:, the model's untrained copy


@dataclass(frozen=True)
class TuningFigure:
    job: TuningJob
    plot: str
    thumbnails: int
    normalize: bool
    # with :population:, the sweep over every unit of the layer: in the model, in its untrained copy
    population: TuningJob | None = None
    baseline: TuningJob | None = None

    @property
    def jobs(self) -> tuple[TuningJob, ...]:
        every = (self.job, self.population, self.baseline)
        return tuple({job.key: job for job in every if job is not None}.values())  # one of all units


class Tuning(DirectiveKind):
    name = "tuning"
    per_unit = True
    doc = "Tuning curves: units' responses to a parametric family of stimuli."
    values = {
        "preferred": ValueField(
            "the swept value (an orientation in °, a frequency, a curvature) of the unit's largest response"
        ),
        "osi": ValueField(
            "the orientation selectivity index: (preferred − orthogonal) / (preferred + orthogonal)"
        ),
        "circular-variance": ValueField(
            "1 − the length of the response-weighted mean of the orientations "
            "(0: one orientation, 1: all alike)"
        ),
        "peak": ValueField("the unit's largest response over the sweep"),
        "trough": ValueField("the unit's smallest response over the sweep"),
        "response-N": ValueField("the unit's response to the sweep's Nth stimulus (response-1 is the first)"),
        "population-osi": ValueField(
            "the median OSI over the layer's units that respond to the sweep (:population: true)"
        ),
        "baseline-osi": ValueField(
            "the same median in the untrained copy of the model, with random weights (:population: true)"
        ),
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
        Option(
            "population",
            boolean,
            False,
            "add a histogram of the OSI of every unit of the layer, against the untrained model's "
            "(orientation sweeps)",
        ),
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
        baseline = None
        if opts["population"]:
            baseline = _baseline(spec, sweep, directive, ctx)
            if baseline is None:
                return None
        return TuningRequest(
            spec,
            directive.argument,
            sweep,
            opts["plot"],
            opts["thumbnails"],
            opts["normalize"],
            directive,
            baseline,
        )

    def plan(self, request: TuningRequest, ctx: PlanContext) -> TuningFigure | None:
        at = request.directive
        resolved = ctx.units(request.spec, request.units, at.line, at.option_line("model"))
        if resolved is None:
            return None
        info, units = resolved
        sweep = replace(request.sweep, size=info.input_size)
        layer = units[0].layer
        job = ctx.attach(
            TuningJob(str(request.spec), info.fingerprint, layer, tuple(u.unit for u in units), sweep), info
        )
        figure = TuningFigure(job, request.plot, request.thumbnails, request.normalize)
        if request.baseline is None:
            return figure
        line = at.option_line("population")
        if is_dictionary(info, layer):
            ctx.error(line, f"'{layer}' is a dictionary: an untrained network has none for :population:")
            return None
        base_info = ctx.model_info(request.baseline, line)
        if base_info is None:
            return None
        try:
            base_info.layer(layer)
        except ModelError as exc:
            ctx.error(line, f"{exc} (the untrained model's, for :population:)")
            return None
        every = tuple(range(info.layers[layer].shape[0]))
        population = ctx.attach(TuningJob(str(request.spec), info.fingerprint, layer, every, sweep), info)
        baseline = ctx.attach(
            TuningJob(str(request.baseline), base_info.fingerprint, layer, every, sweep), base_info
        )
        return replace(figure, population=population, baseline=baseline)

    def value(self, figure: TuningFigure, field: str, ctx: FollowUpContext) -> Quantity | None:
        job = figure.job
        if field in ("population-osi", "baseline-osi"):
            population = figure.population if field == "population-osi" else figure.baseline
            if population is None:
                raise ValueError(f"{field} needs ':population: true' on the figure")
            if not ctx.done(population):
                return None
            osi, _silent = population_osi(ctx.result(population))
            if not osi:
                raise ValueError(f"no unit of {population.layer} in {population.model} responds to the sweep")
            median = float(np.median(osi))
            return Quantity(f"{median:.2f}", median)
        if len(job.units) != 1:
            unit = f"{job.layer}:{job.units[0]}"
            raise ValueError(
                f"the figure shows {len(job.units)} units; name one: {{value}}`LABEL.{field} of {unit}`"
            )
        return _unit_value(job, 0, field, ctx)

    def unit_value(
        self, figure: TuningFigure, field: str, unit: str, ctx: FollowUpContext
    ) -> Quantity | None:
        job = figure.job
        layer, _, number = unit.rpartition(":")
        if not ctx.same_layer(job.fingerprint, layer, job.layer) or int(number) not in job.units:
            shown = ", ".join(f"{job.layer}:{u}" for u in job.units)
            raise ValueError(f"the figure shows {shown}, not {unit}")
        return _unit_value(job, job.units.index(int(number)), field, ctx)

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
        population = _population_html(figure, ctx) if figure.population and figure.baseline else ""
        content = f'<div class="plot">{svg}</div>{measures}{population}{probes.draws_note(job.sweep)}'
        return ctx.rendered(ctx.figure(content, "tuning-figure"))


def _baseline(
    spec: ModelSpec, sweep: Sweep, directive: DirectiveInput, ctx: CheckContext
) -> ModelSpec | None:
    """The untrained copy `:population: true` compares the model with; None after an error."""
    line = directive.option_line("population")
    if sweep.param != probes.PERIODIC:
        ctx.error(line, f":population: true needs an orientation sweep; '{sweep.param}' is not an angle")
        return None
    if spec.untrained:
        ctx.error(
            line,
            f":population: true compares a model with its untrained copy, and '{spec}' is one already; "
            "give the trained model",
        )
        return None
    try:
        return untrained(spec)
    except SpecError as exc:
        ctx.error(line, f":population: true compares a model with its untrained copy, but {exc}")
        return None


def population_osi(result: TuningResult) -> tuple[list[float], int]:
    """The OSI of each unit of a sweep that responds to it, and how many never do. A unit whose
    responses are all ≤ 0 (a dead ReLU, common with random weights) has no preferred orientation:
    selectivity() gives it OSI 0, which would count it as broadly tuned and pull the median down
    for want of a response, not of selectivity; it is left out and counted as silent instead."""
    values = list(result.values)
    osi: list[float] = []
    silent = 0
    for unit in range(len(result.responses[0]) if result.responses else 0):
        curve = [row[unit] for row in result.responses]
        if max(curve) <= 0:
            silent += 1
        else:
            osi.append(selectivity(values, curve).osi)
    return osi, silent


def _population_html(figure: TuningFigure, ctx: RenderContext) -> str:
    """Overlaid histograms of the OSI of the layer's units, trained and untrained, and a line
    comparing their medians and their shares of selective units."""
    assert figure.population is not None and figure.baseline is not None
    layer = figure.population.layer
    sides = [
        (f"{layer} of {job.model}", *population_osi(ctx.result(job)))
        for job in (figure.population, figure.baseline)
    ]
    plot = histograms(
        [(name, osi) for name, osi, _ in sides],
        "orientation selectivity (OSI)",
        f"OSI of the units of {layer}, trained and with random weights",
        bins=20,
        lo=0.0,
        hi=1.0,
        share=True,
    )

    def median(osi: list[float]) -> str:
        return f"{np.median(osi):.2f}" if osi else "none (no unit responds)"

    def selective(osi: list[float]) -> str:
        return f"{sum(x >= SELECTIVE for x in osi) / len(osi):.0%}" if osi else "none"

    (_, osi, silent), (_, base_osi, base_silent) = sides
    units = plural(len(figure.population.units), "unit")
    model, base = (f"<code>{escape(job.model)}</code>" for job in (figure.population, figure.baseline))
    summary = (
        f'<p class="tuning-population">Over the {units} of <code>{escape(layer)}</code>: median OSI '
        f"{median(osi)} in {model} against {median(base_osi)} in {base} (random weights); OSI ≥ "
        f"{SELECTIVE} in {selective(osi)} against {selective(base_osi)} of the units that respond. "
        f"Units that never respond to the sweep are left out: {silent} silent in {model}, "
        f"{base_silent} in {base}.</p>"
    )
    return f'<div class="plot">{plot}</div>{summary}'


def _unit_value(job: TuningJob, column: int, field: str, ctx: FollowUpContext) -> Quantity | None:
    """`field` of the figure's unit in `column` of its result."""
    angles = job.sweep.param == probes.PERIODIC
    if field in ("osi", "circular-variance") and not angles:
        raise ValueError(f"{field} needs an orientation sweep; '{job.sweep.param}' is not an angle")
    if field.startswith("response-") and int(field.rpartition("-")[2]) > len(job.sweep.values):
        raise ValueError(f"the sweep has {len(job.sweep.values)} stimuli")
    if field in ("population-osi", "baseline-osi"):
        raise ValueError(f"{field} is the layer's, not a unit's")
    if not ctx.done(job):
        return None
    result = ctx.result(job)
    curve = [row[column] for row in result.responses]
    if field.startswith("response-"):
        number = curve[int(field.rpartition("-")[2]) - 1]
        return Quantity(f"{number:.3g}", number)
    if field in ("peak", "trough"):
        number = max(curve) if field == "peak" else min(curve)
        return Quantity(f"{number:.3g}", number)
    if field == "preferred" and not angles:  # a frequency, a curvature: where the peak is
        number = result.values[int(np.argmax(curve))]
        return Quantity(f"{number:g}", number)
    found = selectivity(list(result.values), curve)
    number = {
        "preferred": found.preferred,
        "osi": found.osi,
        "circular-variance": found.circular_variance,
    }[field]
    return Quantity(f"{number:g}°" if field == "preferred" else f"{number:.2f}", number)


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
