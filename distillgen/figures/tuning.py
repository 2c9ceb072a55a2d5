"""{tuning} mixed4:52,30: units' responses to a sweep of synthetic stimuli, as a line or polar
plot with the stimuli drawn along the axis.

A response is the unit's maximum over positions (see engine/probe.py). Stimulus families are in
stimuli.py (lines and curves by orientation, curvature, gratings by frequency), or an author's
`file.py:function(param)` called as `function(value, size, **params)`.
"""

from __future__ import annotations

from distillgen.figures import directive, probes
from distillgen.figures.base import DirectiveKind
from distillgen.figures.figure import figure_html
from distillgen.figures.options import LABEL, LAYOUT, MODEL, Option, boolean, choice, integer
from distillgen.jobs import TuningJob
from distillgen.render.plots import line_plot, polar_plot
from distillgen.units import ModelError, SpecError, parse_units


@directive
class Tuning(DirectiveKind):
    name = "tuning"
    doc = "Tuning curves: units' responses to a parametric family of stimuli."
    arguments = "units of one layer, e.g. mixed4:52,30,27,47"
    options = (
        LABEL,
        LAYOUT,
        MODEL,
        *probes.STIMULUS_OPTIONS,
        Option("plot", choice("line", "polar"), "line", "a line plot, or polar (orientation sweeps)"),
        Option("thumbnails", integer(0, 64), 8, "how many stimuli to draw along the axis"),
        Option("normalize", boolean, False, "divide each unit's curve by its own peak, to compare shapes"),
    )
    numbered = True

    def check(self, directive, article) -> None:
        try:
            units = parse_units(directive.args)
        except SpecError as exc:
            article.error(directive.line, str(exc))
            return
        if len({ref.layer for ref in units}) > 1:
            article.error(directive.line, "{tuning} plots units of one layer; use one figure per layer")
            return
        spec = article.model_spec(directive.opts["model"], directive.option_line("model"))
        if spec is not None:
            directive.data.update(spec=spec, units=units)

    def plan(self, directive, article) -> None:
        data = directive.data
        info = article.model_info(data["spec"], directive.option_line("model"))
        if info is None:
            return
        try:
            units = info.check_units(data["units"])
        except ModelError as exc:
            article.error(directive.line, str(exc))
            return
        sweep = probes.sweep(directive, article, info.input_size)
        if sweep is None:
            return
        if directive.opts["plot"] == "polar" and sweep.param != probes.PERIODIC:
            article.error(
                directive.option_line("plot"),
                f":plot: polar needs an orientation sweep; '{sweep.param}' is not an angle",
            )
            return
        job = TuningJob(
            str(data["spec"]), info.fingerprint, units[0].layer, tuple(u.unit for u in units), sweep
        )
        data["job"] = job
        article.need(job, directive.line)

    def render(self, directive, article) -> str:
        job = directive.data["job"]
        artifact = article.artifact(job)
        result = artifact.record["result"]
        values = result["values"]
        series = [
            (f"{job.layer}:{unit}", [row[i] for row in result["responses"]])
            for i, unit in enumerate(job.units)
        ]
        y_label = "peak response"
        if directive.opts["normalize"]:
            series = [(name, [v / (max(values) or 1.0) for v in values]) for name, values in series]
            y_label = "peak response / the unit's largest"
        title = f"Tuning of {', '.join(name for name, _ in series)} to {_family_name(job)}"
        if directive.opts["plot"] == "polar":
            svg = polar_plot(values, series, title, mirror=values[-1] - values[0] < 180)
        else:
            count = min(directive.opts["thumbnails"], len(values))
            picks = sorted({round(i * (len(values) - 1) / max(count - 1, 1)) for i in range(count)})
            thumbnails = [(values[i], article.artifact_url(artifact, result["stimuli"][i])) for i in picks]
            svg = line_plot(values, series, probes.axis_label(job.sweep), y_label, title, thumbnails)
        return figure_html(directive, article, f'<div class="plot">{svg}</div>', "tuning-figure")


def _family_name(job: TuningJob) -> str:
    return job.sweep.family.rsplit("/", 1)[-1]
