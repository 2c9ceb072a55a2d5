"""{ablation} mixed4:48: edit the network and show a unit's response before and after, and
check the author's prediction.

    :edit: zero mixed3:58,63            edges from these units into the target
    :edit: scale 0.5 conv2:7 -> mixed3:56; zero unit mixed3:40
    :on: examples | tuning | featurevis the target's top dataset examples (default), a
                                        stimulus sweep (:stimulus: …), or its feature visualization
    :predict: decrease >= 50%           or increase, decrease, increase >= 20%, no change within 10%

The measured effect is the relative change of the mean response over the probe. A failed
prediction is a warning (an error with --strict), and the figure says so. Edits are hooks in
the engine: no other figure ever sees them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

from distillgen.figures import directive, probes
from distillgen.figures.base import DirectiveKind
from distillgen.figures.figure import figure_html
from distillgen.figures.options import LABEL, LAYOUT, MODEL, Option, choice, integer, text
from distillgen.figures.unitview import article_defaults, settings_for
from distillgen.jobs import AblationJob, Edit
from distillgen.render.plots import line_plot, paired_bars
from distillgen.units import ModelError, SpecError, UnitRef, parse_units

_EDIT = re.compile(
    r"^(?:(?P<zero>zero)|scale\s+(?P<scale>[-+]?(?:\d+\.?\d*|\.\d+)))\s+(?P<unit>unit\s+)?"
    r"(?P<source>[^\s>]+(?:\s*,\s*[^\s>,]+)*)\s*(?:->\s*(?P<into>\S+))?$"
)
_PREDICT = re.compile(
    r"^(?:(?P<direction>increase|decrease)(?:\s*>=\s*(?P<at_least>\d+(?:\.\d+)?)\s*%)?"
    r"|no change within\s+(?P<within>\d+(?:\.\d+)?)\s*%)$"
)


@dataclass(frozen=True)
class Prediction:
    text: str
    direction: str  # "increase", "decrease" or "none"
    threshold: float  # fraction: at least this change, or (for "none") at most

    def holds(self, change: float) -> bool:
        if self.direction == "increase":
            return change > 0 and change >= self.threshold
        if self.direction == "decrease":
            return change < 0 and -change >= self.threshold
        return abs(change) <= self.threshold


def prediction(value: str) -> Prediction:
    match = _PREDICT.match(value.strip())
    if not match:
        raise ValueError(
            f"'{value}' is not a prediction; write increase, decrease, 'decrease >= 50%' "
            "or 'no change within 10%'"
        )
    if match["within"] is not None:
        return Prediction(value.strip(), "none", float(match["within"]) / 100)
    return Prediction(value.strip(), match["direction"], float(match["at_least"] or 0) / 100)


@directive
class Ablation(DirectiveKind):
    name = "ablation"
    doc = "A unit's response before and after editing edges or units, with an optional prediction."
    arguments = "the unit to observe, e.g. mixed4:48"
    options = (
        LABEL,
        LAYOUT,
        MODEL,
        Option(
            "edit", text, None, "'zero UNITS', 'scale F UNITS', '… -> UNIT', 'zero unit UNITS'; join with ';'"
        ),
        Option("on", choice("examples", "tuning", "featurevis"), "examples", "the inputs to measure on"),
        Option("predict", prediction, None, "the expected effect, checked at build time"),
        Option("top", integer(1, 256), 16, "with :on: examples, how many of the target's top examples"),
        *probes.DATASET_OPTIONS,
        *probes.STIMULUS_OPTIONS,
    )
    numbered = True

    def check(self, directive, article) -> None:
        opts = directive.opts
        article_defaults(article)
        if opts["edit"] is None:
            article.error(directive.line, "{ablation} needs :edit:, e.g. ':edit: zero mixed3:58,63'")
            return
        try:
            (target,) = parse_units(directive.args)
        except SpecError as exc:
            article.error(directive.line, str(exc))
            return
        except ValueError:
            article.error(directive.line, "{ablation} observes one unit")
            return
        try:
            edits = [parse_edit(part) for part in filter(None, (p.strip() for p in opts["edit"].split(";")))]
        except (ValueError, SpecError) as exc:
            article.error(directive.option_line("edit"), str(exc))
            return
        used = {
            "examples": {"top", *probes.DATASET_NAMES},
            "tuning": probes.STIMULUS_NAMES,
            "featurevis": set(),
        }
        for name in directive.options.keys() & (probes.DATASET_NAMES | probes.STIMULUS_NAMES | {"top"}):
            if name not in used[opts["on"]]:
                article.warning(directive.option_line(name), f":{name}: has no effect with :on: {opts['on']}")
        spec = article.model_spec(opts["model"], directive.option_line("model"))
        dataset = probes.dataset(directive, article) if opts["on"] == "examples" else None
        if spec is not None and (dataset is not None or opts["on"] != "examples"):
            directive.data.update(spec=spec, target=target, edits=edits, dataset=dataset)

    def plan(self, directive, article) -> None:
        data, opts = directive.data, directive.opts
        info = article.model_info(data["spec"], directive.option_line("model"))
        if info is None:
            return
        try:
            (target,) = info.check_units([data["target"]])
            edits = resolve_edits(info, target, data["edits"])
        except ModelError as exc:
            article.error(directive.option_line("edit"), str(exc))
            return
        probe: dict = {}
        if opts["on"] == "examples":
            probe = {"dataset": data["dataset"], "top": opts["top"]}
        elif opts["on"] == "tuning":
            probe = {"sweep": probes.sweep(directive, article, info.input_size)}
            if probe["sweep"] is None:
                return
        else:
            probe = {"settings": settings_for(info, {}, article_defaults(article))}
        spec = str(data["spec"])
        job = AblationJob(spec, info.fingerprint, target.layer, target.unit, edits, opts["on"], **probe)
        data["job"] = job
        article.need(job, directive.line)

    def follow_up(self, directive, article) -> None:
        """Check the prediction as soon as the result exists (before anything is rendered)."""
        data, predicted = directive.data, directive.opts["predict"]
        job = data.get("job")
        if job is None or job.key not in article.artifacts or "outcome" in data:
            return
        result = article.artifact(job).record["result"]
        change = relative_change(result["mean_before"], result["mean_after"])
        data["outcome"] = change
        if predicted is not None and not predicted.holds(change):
            article.warning(
                directive.line,
                f"prediction failed: '{predicted.text}', but {job.address} changed by {_percent(change)} "
                f"({result['mean_before']:.3g} → {result['mean_after']:.3g}, mean over the probe)",
            )

    def render(self, directive, article) -> str:
        data, opts = directive.data, directive.opts
        job = data["job"]
        result = article.artifact(job).record["result"]
        before, after = result["before"], result["after"]
        title = f"{job.address} before and after: {opts['edit']}"
        if job.probe == "tuning":
            series = [("before", before), ("after", after)]
            plot = line_plot(
                list(job.sweep.values),
                series,
                probes.axis_label(job.sweep),
                "peak response",
                title,
                dashed=("before",),
            )
        else:
            labels = [f"image {i}" if isinstance(i, int) else str(i) for i in result["labels"]]
            plot = paired_bars(labels, before, after, title, f"peak response of {job.address}")
        summary = (
            f'<p class="ablation-summary">Edit: <code>{escape(opts["edit"])}</code>. Mean response of '
            f"<code>{escape(job.address)}</code> over {len(before)} input(s): {result['mean_before']:.3g} → "
            f"{result['mean_after']:.3g} ({_percent(data['outcome'])}).</p>"
        )
        predicted = opts["predict"]
        if predicted is not None:
            held = predicted.holds(data["outcome"])
            verdict = "held" if held else "failed"
            mark = "✓ held" if held else "✗ failed"
            summary += (
                f'<p class="prediction prediction-{verdict}">Prediction: '
                f"<strong>{escape(predicted.text)}</strong> — {mark}.</p>"
            )
        return figure_html(directive, article, f'<div class="plot">{plot}</div>{summary}', "ablation-figure")


def parse_edit(part: str) -> tuple[list[UnitRef], UnitRef | None, float, bool]:
    """'scale 0.5 conv2:7 -> mixed3:56' -> (sources, into, scale, whole unit)."""
    match = _EDIT.match(part)
    if not match:
        raise ValueError(
            f"'{part}' is not an edit; write e.g. 'zero mixed3:58,63', "
            "'scale 0.5 conv2:7 -> mixed3:56' or 'zero unit mixed3:40'"
        )
    sources = parse_units(match["source"])
    into = parse_units(match["into"]) if match["into"] else None
    if len({ref.layer for ref in sources}) > 1 or (into is not None and len(into) != 1):
        raise ValueError(f"in '{part}', edit units of one layer (into at most one unit); split it with ';'")
    if match["unit"] and into is not None:
        raise ValueError(f"'{part}': a whole unit has no '-> target'")
    scale = 0.0 if match["zero"] else float(match["scale"])
    return sources, into[0] if into else None, scale, bool(match["unit"])


def resolve_edits(info, target: UnitRef, parsed: list) -> tuple[Edit, ...]:
    """Edits with canonical layer names and units in range, every edge running forward and
    ending at or before the observed unit; ModelError with a message otherwise."""
    order = list(info.layers)
    edits = []
    for sources, into, scale, whole in parsed:
        sources = info.check_units(sources)
        into = info.check_units([into])[0] if into else None
        source, end = sources[0].layer, (into or target).layer
        if order.index(source) > order.index(end) or (not whole and source == end):
            raise ModelError(f"'{source}' does not come before '{end}' in the network")
        if into is not None and order.index(into.layer) > order.index(target.layer):
            raise ModelError(f"'{into}' comes after the observed unit '{target}'")
        units = tuple(ref.unit for ref in sources)
        if whole:
            edits.append(Edit(source, units, scale=scale, whole=True))
        else:  # into the observed unit itself when no '-> unit' was written
            edits.append(Edit(source, units, into.layer if into else "", into.unit if into else -1, scale))
    return tuple(edits)


def relative_change(before: float, after: float) -> float:
    """(after − before) / |before|; ±inf when a silent unit starts responding."""
    if before == 0:
        return 0.0 if after == 0 else float("inf") * (1 if after > 0 else -1)
    return (after - before) / abs(before)


def _percent(change: float) -> str:
    return (
        f"{change:+.0%}"
        if abs(change) != float("inf")
        else ("from 0 to positive" if change > 0 else "from 0 to negative")
    )
