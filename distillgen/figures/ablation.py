"""{ablation} mixed4:48: edit the network and show a unit's response before and after, and
check the author's prediction.

    :edit: zero mixed3:58,63            edges from these units into the target
    :edit: scale 0.5 conv2:7 -> mixed3:56; zero unit mixed3:40
    :edit: zero top 3 by weight from mixed3   edges chosen by a stated rule (edgerule.py)
    :on: examples | tuning | featurevis the target's top dataset examples (default), a
                                        stimulus sweep (:stimulus: …), or its feature visualization
    :predict: decrease >= 50%           or increase, decrease, increase >= 20%, no change within 10%
    :predict: decrease >= 50% on left-facing; no change within 10% on right-facing
                                        with :on: tuning, each part on a subset of the sweep: a
                                        name the stimulus family defines, or a range 'on 90..270'
    :predict: preference left-facing over right-facing decrease >= 0.3
                                        with :on: tuning, the change of the unit's preference for
                                        one subset over another (or increase, 'increase >= 0.2',
                                        'no change within 0.1'), in index points: no %
    :predict: beyond controls           with :control:, the effect lies outside its controls' band

The measured effect is the relative change of the mean response over the probe (or over the
part's subset). A preference part reads the unit's preference index for subset A over subset B,
P = (mean_A − mean_B) / (mean_A + mean_B) of the responses clipped at 0 (from −1, only B, to
1, only A; 0 when both are silent), before and after the edit: its effect is P_after − P_before,
in index points (from −2 to 2). A failed prediction is a warning (an error with --strict), and
the figure says so. Edits are hooks in the engine: no other figure ever sees them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from html import escape

import numpy as np

from distillgen import stimuli
from distillgen.diagnostics import Code, suggest
from distillgen.figures import probes
from distillgen.figures.base import DirectiveInput, DirectiveKind, Quantity, Rendered, ValueField
from distillgen.figures.context import CheckContext, FollowUpContext, PlanContext, RenderContext
from distillgen.figures.controls import Band, Control, control, draw
from distillgen.figures.edgerule import EdgeRule, choose, edge_rule
from distillgen.jobs import AblationJob, Dataset, Edit, Probe, Sweep, WeightsJob, relative_change
from distillgen.options import MODEL, Argument, Option, choice, integer, one_unit, text
from distillgen.render.plots import line_plot, paired_bars
from distillgen.render.words import minus, plural, same_precision
from distillgen.units import ModelError, ModelSpec, SpecError, UnitRef, parse_units

_EDIT = re.compile(
    r"^(?:(?P<zero>zero)|scale\s+(?P<scale>[-+]?(?:\d+\.?\d*|\.\d+)))\s+(?P<unit>unit\s+)?"
    r"(?P<source>[^\s>]+(?:\s*,\s*[^\s>,]+)*)\s*(?:->\s*(?P<into>\S+))?$"
)
_PREDICT = re.compile(
    r"^(?P<effect>(?P<direction>increase|decrease)(?:\s*>=\s*(?P<at_least>\d+(?:\.\d+)?)\s*%)?"
    r"|no change within\s+(?P<within>\d+(?:\.\d+)?)\s*%)(?:\s+on\s+(?P<subset>\S+))?$"
    r"|^(?P<beyond>beyond controls)$"
)
_RULE_EDIT = re.compile(
    r"^(?:(?P<zero>zero)|scale\s+(?P<scale>[-+]?(?:\d+\.?\d*|\.\d+)))\s+(?P<rule>top\s.*)$"
)
# 'preference A over B EFFECT': the effect in index points; a '%' is caught to say so
_PREFERENCE = re.compile(
    r"^preference\s+(?P<subset>\S+)\s+over\s+(?P<over>\S+)\s+"
    r"(?:(?P<direction>increase|decrease)(?:\s*>=\s*(?P<at_least>\d+(?:\.\d+)?))?"
    r"|no change within\s+(?P<within>\d+(?:\.\d+)?))(?P<percent>\s*%)?$"
)
# An ablation over a sweep holds every draw of every value at once (its edits run on them all):
# 4,096 images of 224 px are 2.4 GB. A tuning figure renders its sweep in batches, at any size.
SWEEP_IMAGES = 4096
_RANGE = re.compile(r"^(?P<first>[-+]?\d+(?:\.\d+)?)\.\.(?P<last>[-+]?\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class Prediction:
    """One expected effect, on every probe input or (`subset`) on a part of a stimulus sweep;
    or (`over`) on the unit's preference for one part of the sweep over another."""

    text: str
    direction: str  # "increase", "decrease", "none", or "beyond" (every :control:'s effect)
    threshold: float  # fraction: at least this change, or (for "none") at most; a preference's in points
    subset: str | None = None  # as written after 'on': a family's name for values, or 'A..B'; preference: A
    inputs: tuple[int, ...] | None = None  # the subset's positions in the sweep, once checked
    over: str | None = None  # a preference's B, as written
    over_inputs: tuple[int, ...] | None = None  # its positions in the sweep, once checked

    @property
    def preference(self) -> bool:
        """Whether this part reads the unit's preference for `subset` over `over`."""
        return self.over is not None

    def holds(self, change: float, band: Band | None = None) -> bool:
        if self.direction == "beyond":
            return band is not None and band.beyond(change)
        if self.direction == "increase":
            return change > 0 and change >= self.threshold
        if self.direction == "decrease":
            return change < 0 and -change >= self.threshold
        return abs(change) <= self.threshold

    def means(self, before: list[float], after: list[float]) -> tuple[float, float]:
        """The mean response before and after the edit over this prediction's inputs."""
        chosen = range(len(before)) if self.inputs is None else self.inputs
        return sum(before[i] for i in chosen) / len(chosen), sum(after[i] for i in chosen) / len(chosen)

    def preferences(self, before: list[float], after: list[float]) -> tuple[float, float]:
        """A preference part's index before and after the edit (checked: both subsets resolved)."""
        assert self.inputs is not None and self.over_inputs is not None
        return (
            preference_index(before, self.inputs, self.over_inputs),
            preference_index(after, self.inputs, self.over_inputs),
        )

    def change(self, before: list[float], after: list[float]) -> float:
        """The relative change of the mean response; a preference part's change of its index."""
        if self.preference:
            preferred_before, preferred_after = self.preferences(before, after)
            return preferred_after - preferred_before
        return relative_change(*self.means(before, after))

    def prose(self, angles: bool = False) -> str:
        """As a reader reads it: 'at least 50% lower on 120°–150°', 'unchanged within 10%'
        (what the author wrote, `decrease >= 50% on 120..150`, is the directive's syntax); a
        preference's effect alone, in index points: 'at least 0.3 lower' (`between` says of what)."""
        amount = f"{self.threshold:g}" if self.preference else f"{self.threshold * 100:g}%"
        if self.direction == "beyond":
            return "beyond every control's effect"
        if self.direction == "none":
            effect = f"unchanged within {amount}"
        else:
            word = "higher" if self.direction == "increase" else "lower"
            effect = f"at least {amount} {word}" if self.threshold else word
        if self.subset is None or self.preference:
            return effect
        return f"{effect} on {_subset_prose(self.subset, angles)}"

    def between(self, angles: bool = False) -> str:
        """A preference's subsets as a reader reads them: 'for the left-facing over the
        right-facing stimuli', 'for 300°–345° over the right-facing stimuli'."""
        first, second = (_subset_prose(written or "", angles) for written in (self.subset, self.over))
        if first.startswith("the ") and second.startswith("the "):
            first = first.removesuffix(" stimuli")  # 'the left-facing over the right-facing stimuli'
        return f"for {first} over {second}"


def _subset_prose(written: str, angles: bool) -> str:
    """A subset as a reader reads it: '120°–150°', 'the left-facing stimuli'."""
    if match := _RANGE.match(written):
        unit = "°" if angles else ""
        first, last = (minus(match[end]) for end in ("first", "last"))
        return f"{first}{unit}–{last}{unit}"
    return f"the {written} stimuli"


def preference_index(responses: Sequence[float], a: Sequence[int], b: Sequence[int]) -> float:
    """The preference for the inputs at positions `a` over those at `b`: (mean_A − mean_B) /
    (mean_A + mean_B) of the responses clipped at 0, from −1 (only B) to 1 (only A); 0 when
    the unit answers neither."""
    mean_a = sum(max(float(responses[i]), 0.0) for i in a) / len(a)
    mean_b = sum(max(float(responses[i]), 0.0) for i in b) / len(b)
    total = mean_a + mean_b
    return 0.0 if total == 0 else (mean_a - mean_b) / total


def index_text(value: float) -> str:
    """A preference index as the figure prints it: '0.42', '−0.10' (never '−0.00')."""
    text = f"{value:.2f}"
    return minus("0.00" if text == "-0.00" else text)


def points_text(change: float) -> str:
    """A change of a preference index in index points: '+0.12', '−0.52', '0.00'."""
    text = f"{change:+.2f}"
    return minus("0.00" if text[1:] == "0.00" else text)


def predictions(value: str) -> tuple[Prediction, ...]:
    """':predict:' as written: one or more predictions joined with ';'."""
    parts = [part.strip() for part in value.split(";")]
    if not all(parts):
        raise ValueError(f"'{value}' has an empty prediction; join predictions with ';'")
    return tuple(_prediction(part) for part in parts)


def _prediction(text: str) -> Prediction:
    if text.split(maxsplit=1)[0] == "preference":
        return _preference(text)
    match = _PREDICT.match(text)
    if not match:
        raise ValueError(
            f"'{text}' is not a prediction; write increase, decrease, 'decrease >= 50%' "
            "or 'no change within 10%', optionally followed by 'on SUBSET' of a stimulus sweep, "
            "'preference SUBSET over SUBSET decrease >= 0.3' (a stimulus sweep's), "
            "or 'beyond controls' (with :control:)"
        )
    if match["beyond"]:
        return Prediction(text, "beyond", 0.0)
    if match["within"] is not None:
        return Prediction(text, "none", float(match["within"]) / 100, match["subset"])
    return Prediction(text, match["direction"], float(match["at_least"] or 0) / 100, match["subset"])


def _preference(text: str) -> Prediction:
    """'preference left-facing over right-facing decrease >= 0.3' (the effect in index points)."""
    match = _PREFERENCE.match(text)
    if not match:
        raise ValueError(
            f"'{text}' is not a preference prediction; write 'preference A over B' and its effect, "
            "'decrease >= 0.3' (or increase, decrease, 'increase >= 0.2', 'no change within 0.1'), "
            "with A and B each a named subset of the stimulus sweep or a range, e.g. 'preference "
            "left-facing over right-facing decrease >= 0.3'"
        )
    written = match["within"] if match["within"] is not None else match["at_least"] or "0"
    if match["percent"]:
        number = re.search(r"(\d+(?:\.\d+)?)\s*%$", text)
        meant = text[: number.start()] + f"{float(number[1]) / 100:g}" if number else text.rstrip("% ")
        raise ValueError(
            f"'{text}': a preference index runs from −1 to 1 and changes in index points, not "
            f"percent; write the change without %, e.g. '{meant}'"
        )
    threshold = float(written)
    if threshold > 2:
        raise ValueError(
            f"'{text}': a preference index runs from −1 to 1, so it changes by at most 2, not {written}"
        )
    direction = "none" if match["within"] is not None else match["direction"]
    return Prediction(text, direction, threshold, match["subset"], over=match["over"])


def subset_inputs(prediction: Prediction, sweep: Sweep) -> tuple[int, ...]:
    """The positions in `sweep` of the prediction's subset; ValueError with a message for the
    author when the subset is unknown or selects nothing."""
    return _positions(prediction.subset or "", sweep, "on ")  # called for a prediction with a subset


def preference_inputs(prediction: Prediction, sweep: Sweep) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The positions in `sweep` of a preference's two subsets; ValueError with a message for
    the author when either is unknown or selects nothing, or both select the same values."""
    first, second = prediction.subset or "", prediction.over or ""
    a, b = _positions(first, sweep, ""), _positions(second, sweep, "")
    if set(a) == set(b):
        values = ", ".join(f"{sweep.values[i]:g}" for i in a)
        raise ValueError(
            f"'{prediction.text}': '{first}' and '{second}' select the same swept values ({values}); "
            "a preference compares two different subsets of the sweep"
        )
    return a, b


def _positions(written: str, sweep: Sweep, before: str) -> tuple[int, ...]:
    """The positions in `sweep` of a subset as written (`before` it: 'on ' in 'on 90..270')."""
    if match := _RANGE.match(written):
        first, last = float(match["first"]), float(match["last"])
        if first <= last:
            chosen = [i for i, v in enumerate(sweep.values) if first <= v <= last]
        elif sweep.param == probes.PERIODIC:  # an angle range across 0: 270..90
            chosen = [i for i, v in enumerate(sweep.values) if v >= first or v <= last]
        else:
            backwards = f"{match['last']}..{match['first']}"
            raise ValueError(f"'{before}{written}': the range runs backwards; write '{before}{backwards}'")
    else:
        named = stimuli.SUBSETS.get(sweep.family, {})
        if written not in named:
            known = ", ".join(named) if named else f"none for '{sweep.family}'"
            raise ValueError(
                f"unknown subset '{written}' of the stimulus '{sweep.family}'{suggest(written, named)}; "
                f"write a range of the swept {sweep.param}, e.g. '{before}90..270', "
                f"or a named subset ({known})"
            )
        chosen = [i for i, v in enumerate(sweep.values) if named[written](v)]
    if not chosen:
        values = ", ".join(f"{v:g}" for v in sweep.values)
        raise ValueError(f"'{before}{written}' selects none of the swept values ({values})")
    return tuple(chosen)


@dataclass(frozen=True)
class AblationRequest:
    spec: ModelSpec
    target: UnitRef
    edits: tuple  # parse_edit's values, resolved against the model when planning
    edit: str  # as written, for the figure
    on: Probe
    dataset: Dataset | None  # for :on: examples
    top: int
    sweep: Sweep | None  # for :on: tuning
    predict: tuple[Prediction, ...]  # with their subsets' inputs
    directive: DirectiveInput
    control: Control | None = None


@dataclass(frozen=True)
class AblationFigure:
    job: AblationJob
    edit: str
    predict: tuple[Prediction, ...]
    line: int
    change: float | None = None  # the measured relative change over every input, once computed
    changes: tuple[float, ...] = ()  # each prediction's, over its inputs
    control: Control | None = None
    weights: WeightsJob | None = None  # the kernels the controls are matched by
    controls: tuple[AblationJob, ...] = ()  # drawn once the kernels are computed
    matched: tuple[float, ...] = ()  # the edited edges' total kernel norm, then each control's
    band: Band | None = None  # once every control is computed
    rule: EdgeRule | None = None  # `:edit: zero top 3 by weight from mixed3`: `job` waits for the kernels

    @property
    def jobs(self) -> tuple[AblationJob | WeightsJob, ...]:
        edit = () if self.waiting else (self.job,)
        return (*edit, *((self.weights,) if self.weights else ()), *self.controls)

    @property
    def waiting(self) -> bool:
        """Whether its edges are still to be chosen by its rule."""
        return self.rule is not None and not self.job.edits[0].units


_ORDINALS = ((1, "first"), (2, "second"), (3, "third"))


class Ablation(DirectiveKind):
    name = "ablation"
    doc = "A unit's response before and after editing edges or units, with an optional prediction."
    values = {
        "effect": ValueField("the relative change of the unit's mean response over its inputs", percent=True),
        **{
            f"predicted-{n}": ValueField(
                f"the relative change of the unit's mean response over its {ordinal} :predict: part's inputs "
                "(not a preference part's: see preference-N)",
                percent=True,
            )
            for n, ordinal in _ORDINALS
        },
        # A preference part's numbers are index points (from −1 to 1; changes from −2 to 2), not
        # percentages: fields of their own, so that a claim or the drift check reads them as decimals.
        **{
            f"preference-{n}": ValueField(
                f"the change (after − before, in index points) of the unit's preference index for its "
                f"{ordinal} :predict: part's first subset over its second (a 'preference A over B' part)"
            )
            for n, ordinal in _ORDINALS
        },
        **{
            f"preference-{when}-{n}": ValueField(
                f"the unit's preference index (mean_A − mean_B) / (mean_A + mean_B) of its responses "
                f"clipped at 0, for its {ordinal} :predict: part's first subset A over its second B, "
                f"{when} the edit"
            )
            for when in ("before", "after")
            for n, ordinal in _ORDINALS
        },
        **{
            f"control-{which}": ValueField(f"the {word} of the :control: edits' effects", percent=True)
            for which, word in (("median", "median"), ("low", "lowest"), ("high", "highest"))
        },
        "before": ValueField("the unit's mean response over its inputs before the edit"),
        "after": ValueField("the unit's mean response over its inputs after the edit"),
    }
    argument = Argument("the unit to observe, e.g. mixed4:48", one_unit("observes"))
    options = (
        MODEL,
        Option(
            "edit",
            text,
            None,
            "'zero UNITS', 'scale F UNITS', '… -> UNIT', 'zero unit UNITS'; join with ';'",
            required=True,
        ),
        Option("on", choice("examples", "tuning", "featurevis"), "examples", "the inputs to measure on"),
        Option(
            "predict",
            predictions,
            (),
            "the expected effect, checked at build time; with :on: tuning, 'EFFECT on SUBSET' "
            "of the sweep, or 'preference A over B decrease >= 0.3' (the unit's preference for one "
            "subset over another, in index points); join several with ';'",
        ),
        Option("top", integer(1, 256), 16, "with :on: examples, how many of the target's top examples"),
        Option(
            "control",
            control,
            None,
            "'random N [seed S]': N edits of other edges (or units) into the unit of matched kernel "
            "weight, the band the effect is read against",
        ),
        *probes.DATASET_OPTIONS,
        *probes.STIMULUS_OPTIONS,
        probes.DRAWS,
    )
    numbered = True

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> AblationRequest | None:
        opts = directive.options
        try:
            edits = tuple(
                parse_edit(part) for part in filter(None, (p.strip() for p in opts["edit"].split(";")))
            )
        except (ValueError, SpecError) as exc:
            ctx.error(directive.option_line("edit"), str(exc))
            return None
        if len(edits) > 1 and any(isinstance(sources, EdgeRule) for sources, *_ in edits):
            ctx.error(
                directive.option_line("edit"),
                f"'{opts['edit']}': an edit chosen by a rule ('top 3 by weight from mixed3') is the "
                "figure's only edit",
            )
            return None
        probes.warn_unused(directive, ctx, opts["on"], "top")
        spec = ctx.model_spec(opts["model"], directive.option_line("model"))
        dataset = probes.dataset(directive, ctx, streamed=True) if opts["on"] == "examples" else None
        sweep = probes.sweep(directive, ctx) if opts["on"] == "tuning" else None
        if sweep is not None and len(sweep.values) * sweep.draws > SWEEP_IMAGES:
            ctx.error(
                directive.option_line("draws"),
                f"an ablation holds its sweep's images in memory: {len(sweep.values)} values × "
                f"{sweep.draws} draws is more than {SWEEP_IMAGES:,} images; "
                "lower :draws: or the :range: count",
            )
            return None
        probe_missing = {"examples": dataset is None, "tuning": sweep is None, "featurevis": False}[
            opts["on"]
        ]
        if spec is None or probe_missing:
            return None
        predict = prediction_subsets(opts["predict"], sweep, directive, ctx)
        if predict is None:
            return None
        if opts["control"] is not None and (len(edits) != 1 or edits[0][1] is not None):
            ctx.error(
                directive.option_line("control"),
                f"a control is matched to one edit of edges or units that feed the observed unit "
                f"('zero mixed3:56,40', 'zero unit m3:94'), not '{opts['edit']}'",
            )
            return None
        if opts["control"] is None and any(p.direction == "beyond" for p in predict):
            ctx.error(directive.option_line("predict"), "'beyond controls' needs :control: random N")
            return None
        return AblationRequest(
            spec,
            directive.argument,
            edits,
            opts["edit"],
            opts["on"],
            dataset,
            opts["top"],
            sweep,
            predict,
            directive,
            opts["control"],
        )

    def plan(self, request: AblationRequest, ctx: PlanContext) -> AblationFigure | None:
        at = request.directive
        info = ctx.model_info(request.spec, at.option_line("model"))
        if info is None:
            return None
        try:
            (target,) = info.check_units([request.target])
            edits = resolve_edits(info, target, request.edits)
        except ModelError as exc:
            ctx.error(at.option_line("edit"), str(exc))
            return None
        probe: dict = {}
        if request.on == "examples":
            probe = {"dataset": request.dataset, "top": request.top}
        elif request.on == "tuning" and request.sweep is not None:  # check made it
            probe = {"sweep": replace(request.sweep, size=info.input_size)}
        else:
            probe = {"settings": ctx.featurevis_settings(info)}
        job = ctx.attach(
            AblationJob(
                str(request.spec), info.fingerprint, target.layer, target.unit, edits, request.on, **probe
            ),
            info,
        )
        weights = None
        rule = request.edits[0][0] if isinstance(request.edits[0][0], EdgeRule) else None
        if request.control is not None or rule is not None:
            (edit,) = edits
            weights = ctx.attach(
                WeightsJob(str(request.spec), info.fingerprint, edit.source, target.layer, target.unit), info
            )
        return AblationFigure(
            job, request.edit, request.predict, at.line, control=request.control, weights=weights, rule=rule
        )

    def follow_up(self, figure: AblationFigure, ctx: FollowUpContext) -> AblationFigure:
        """Check the prediction as soon as the result exists (before anything is rendered);
        draw the controls once the kernels are there, and read the edit against them."""
        if figure.waiting:
            return self._chosen(figure, ctx) if figure.weights and ctx.done(figure.weights) else figure
        figure = self._checked(figure, ctx)
        if figure.weights is None or figure.control is None:
            return figure
        if not figure.controls and ctx.done(figure.weights):
            return self._drawn(figure, ctx)
        if figure.controls and figure.band is None and all(ctx.done(job) for job in figure.controls):
            band = Band(tuple(ctx.result(job).effect for job in figure.controls))
            for predicted in figure.predict:
                if (
                    predicted.direction == "beyond"
                    and figure.change is not None
                    and not band.beyond(figure.change)
                ):
                    ctx.warning(
                        figure.line,
                        f"prediction failed: 'beyond controls', but {figure.job.address} changed by "
                        f"{percent(figure.change)} and its {len(band.effects)} controls by "
                        f"{percent(band.low)} to {percent(band.high)}",
                        Code.PREDICTION,
                    )
            return replace(figure, band=band)
        return figure

    def _chosen(self, figure: AblationFigure, ctx: FollowUpContext) -> AblationFigure:
        """The figure with the edges its rule chooses, read from the computed kernels."""
        weights, (edit,) = figure.weights, figure.job.edits
        assert weights is not None and figure.rule is not None  # a figure waiting for its rule
        try:
            units = choose(np.asarray(ctx.kernel_norms(weights)), _kernel_sums(weights, ctx), figure.rule)
        except ValueError as exc:
            ctx.error(figure.line, f":edit: {exc}")
            return replace(figure, weights=None, rule=None, control=None)  # nothing more to do
        return replace(figure, job=replace(figure.job, edits=(replace(edit, units=units),)))

    def _drawn(self, figure: AblationFigure, ctx: FollowUpContext) -> AblationFigure:
        """The figure with its control jobs, drawn by `controls.draw`'s rule."""
        weights, (edit,) = figure.weights, figure.job.edits
        assert weights is not None and figure.control is not None  # a figure with a :control:
        norms = np.asarray(ctx.kernel_norms(weights))
        try:
            sets = draw(norms, _kernel_sums(weights, ctx), edit.units, figure.control)
        except ValueError as exc:
            ctx.error(figure.line, f":control: {exc}")
            return replace(figure, weights=None)  # drawn no more
        jobs = tuple(replace(figure.job, edits=(replace(edit, units=units, rule=""),)) for units in sets)
        matched = (float(norms[list(edit.units)].sum()), *(float(norms[list(units)].sum()) for units in sets))
        return replace(figure, controls=jobs, matched=matched)

    def _checked(self, figure: AblationFigure, ctx: FollowUpContext) -> AblationFigure:
        """The figure with its change, its predictions checked (but 'beyond controls')."""
        if figure.change is not None or not ctx.done(figure.job):
            return figure
        result = ctx.result(figure.job)
        before, after = list(result.before), list(result.after)
        changes = tuple(predicted.change(before, after) for predicted in figure.predict)
        for predicted, change in zip(figure.predict, changes, strict=True):
            if predicted.preference and not predicted.holds(change):
                preferred_before, preferred_after = predicted.preferences(before, after)
                ctx.warning(
                    figure.line,
                    f"prediction failed: '{predicted.text}', but {figure.job.address}'s preference index "
                    f"for {predicted.subset} over {predicted.over} changed by {points_text(change)} "
                    f"({index_text(preferred_before)} → {index_text(preferred_after)}, over "
                    f"{len(predicted.inputs or ())} and {len(predicted.over_inputs or ())} inputs)",
                    Code.PREDICTION,
                )
            elif predicted.direction != "beyond" and not predicted.holds(change):
                mean_before, mean_after = predicted.means(before, after)
                over = "the probe" if predicted.inputs is None else f"{len(predicted.inputs)} inputs"
                ctx.warning(
                    figure.line,
                    f"prediction failed: '{predicted.text}', but {figure.job.address} changed by "
                    f"{percent(change)} ({mean_before:.3g} → {mean_after:.3g}, mean over {over})",
                    Code.PREDICTION,
                )
        change = result.effect
        return replace(figure, change=change, changes=changes)

    def value(self, figure: AblationFigure, field: str, ctx: FollowUpContext) -> Quantity | None:
        if not ctx.done(figure.job):
            return None
        result = ctx.result(figure.job)
        if field == "effect":
            return Quantity(minus(percent(result.effect)), result.effect)
        if field.startswith("control-"):
            if figure.control is None and not figure.controls:
                raise ValueError("the figure has no :control:")
            if figure.band is None:
                return None
            found = getattr(figure.band, field.removeprefix("control-"))
            return Quantity(minus(percent(found)), found)
        if field.startswith(("predicted-", "preference-")):
            return _part_value(figure, field, list(result.before), list(result.after))
        before, after = same_precision(result.mean_before, result.mean_after)  # as the figure prints them
        if field == "before":
            return Quantity(before, result.mean_before)
        return Quantity(after, result.mean_after)

    def render(self, figure: AblationFigure, ctx: RenderContext) -> Rendered:
        job = figure.job
        result = ctx.result(job)
        before, after = list(result.before), list(result.after)
        title = f"{job.address} before and after: {figure.edit}"
        angles = job.sweep is not None and job.sweep.param == probes.PERIODIC
        if job.probe == "tuning" and job.sweep is not None:
            series = [("before", before), ("after", after)]
            plot = line_plot(
                list(job.sweep.values),
                series,
                probes.axis_label(job.sweep),
                f"peak response of {job.address}",
                title,
                dashed=("before",),
                angles=angles,
            )
        else:
            labels = [f"image {i}" if isinstance(i, int) else str(i) for i in result.labels]
            plot = paired_bars(labels, before, after, title, f"peak response of {job.address}")
        inputs = plural(len(before), "input")
        mean_before, mean_after = same_precision(result.mean_before, result.mean_after)
        chosen = ""
        if figure.rule is not None:
            (edit,) = job.edits
            units = ",".join(str(unit) for unit in edit.units)
            chosen = f" (the rule chose <code>{escape(edit.source)}:{units}</code>)"
        summary = (
            f'<p class="ablation-summary">Edit: <code>{escape(figure.edit)}</code>{chosen}. Mean response of '
            f"<code>{escape(job.address)}</code> over {inputs}: {mean_before} → "
            f"{mean_after} ({minus(percent(result.effect))}).</p>"
        )
        if job.sweep is not None:
            summary += probes.draws_note(job.sweep)
        if figure.band is not None and figure.change is not None:
            summary += _controls(figure, figure.band, figure.change)
        for predicted, change in zip(figure.predict, figure.changes, strict=True):
            held = predicted.holds(change, figure.band)
            verdict = "held" if held else "failed"
            mark = "✓ held" if held else "✗ failed"
            if predicted.preference:
                preferred = " → ".join(index_text(p) for p in predicted.preferences(before, after))
                summary += (
                    f'<p class="prediction prediction-{verdict}" title="{escape(predicted.text)}">'
                    f"Preference {escape(predicted.between(angles))}: {escape(preferred)} "
                    f"({escape(points_text(change))}), <strong>{escape(predicted.prose(angles))}</strong>"
                    f" — {mark}.</p>"
                )
                continue
            measured = (
                ""
                if predicted.inputs is None
                else (f" (measured {minus(percent(change))} over {plural(len(predicted.inputs), 'input')})")
            )
            summary += (
                f'<p class="prediction prediction-{verdict}" title="{escape(predicted.text)}">Prediction: '
                f"<strong>{escape(predicted.prose(angles))}</strong>{escape(measured)} — {mark}.</p>"
            )
        content = f'<div class="plot">{plot}</div>{summary}'
        return ctx.rendered(ctx.figure(content, "ablation-figure"))


def _kernel_sums(weights: WeightsJob, ctx: FollowUpContext) -> np.ndarray:
    """Each source unit's kernel summed: its sign says whether the edge excites or inhibits."""
    return np.asarray(ctx.derived(weights, "sums", lambda: ctx.kernels(weights).sum(axis=(1, 2)).tolist()))


def _part_value(figure: AblationFigure, field: str, before: list[float], after: list[float]) -> Quantity:
    """predicted-N (a relative change, in percent) or preference[-before|-after]-N (index
    points) of the figure's Nth :predict: part; ValueError for a part that has no such number."""
    part = int(field.rpartition("-")[2])
    if part > len(figure.predict):
        raise ValueError(f"the figure's :predict: has {plural(len(figure.predict), 'part')}")
    predicted = figure.predict[part - 1]
    if field.startswith("predicted-"):
        if predicted.preference:
            raise ValueError(
                f"the figure's :predict: part {part} is a preference, in index points, not a percentage: "
                f"quote preference-{part} (its change), preference-before-{part} or preference-after-{part}"
            )
        change = predicted.change(before, after)
        return Quantity(minus(percent(change)), change)
    if not predicted.preference:
        raise ValueError(
            f"the figure's :predict: part {part} ('{predicted.text}') is not a preference: "
            f"quote predicted-{part}, its relative change"
        )
    preferred_before, preferred_after = predicted.preferences(before, after)
    if field.startswith("preference-before-"):
        return Quantity(index_text(preferred_before), preferred_before)
    if field.startswith("preference-after-"):
        return Quantity(index_text(preferred_after), preferred_after)
    change = preferred_after - preferred_before
    return Quantity(points_text(change), change)


def _controls(figure: AblationFigure, band: Band, effect: float) -> str:
    """What the controls did, by the rule that drew them (controls.py)."""
    (edit,) = figure.job.edits
    edited, totals = figure.matched[0], figure.matched[1:]
    sizes = [len(job.edits[0].units) for job in figure.controls]
    seed = figure.control.seed if figure.control else 0
    verdict = "outside" if band.beyond(effect) else "inside"
    low, high, median = (minus(percent(x)) for x in (band.low, band.high, band.median))
    what, which = ("units", "units of") if edit.whole else ("edges", "edges from")
    return (
        f'<p class="ablation-controls">Controls: {plural(len(sizes), "edit")} of other {which} '
        f"<code>{escape(edit.source)}</code> whose kernels into the unit have the edited {what}' sign, "
        f"drawn in a random order (seed {seed}), each kept when it brought their total kernel norm "
        f"closer to the edit's {edited:.3g} (theirs "
        f"{min(totals):.3g} to {max(totals):.3g}, {min(sizes)} to {max(sizes)} {what}): effects from {low} "
        f"to {high}, median {median}. The edit's {minus(percent(effect))} lies {verdict} that band.</p>"
    )


def prediction_subsets(
    predict: tuple[Prediction, ...], sweep: Sweep | None, directive: DirectiveInput, ctx: CheckContext
) -> tuple[Prediction, ...] | None:
    """The predictions with their subsets resolved to positions in the sweep; None after an
    error (a subset, and a preference between two, needs `:on: tuning`)."""
    line, resolved = directive.option_line("predict"), []
    for prediction in predict:
        if prediction.subset is None:
            resolved.append(prediction)
            continue
        if sweep is None:
            needs = (
                f"a preference between subsets ('{prediction.subset}' over '{prediction.over}') needs "
                ":on: tuning, whose stimulus sweep they are parts of"
                if prediction.preference
                else f"a prediction on a subset ('on {prediction.subset}') needs "
                ":on: tuning, whose stimulus sweep it is a part of"
            )
            ctx.error(line, f"'{prediction.text}': {needs}")
            return None
        try:
            if prediction.preference:
                a, b = preference_inputs(prediction, sweep)
                resolved.append(replace(prediction, inputs=a, over_inputs=b))
            else:
                resolved.append(replace(prediction, inputs=subset_inputs(prediction, sweep)))
        except ValueError as exc:
            ctx.error(line, str(exc))
            return None
    return tuple(resolved)


def parse_edit(part: str) -> tuple[list[UnitRef] | EdgeRule, UnitRef | None, float, bool]:
    """'scale 0.5 conv2:7 -> mixed3:56' -> (sources, into, scale, whole unit); the sources of
    'zero top 3 by weight from mixed3' are its rule (edges into the observed unit)."""
    if ruled := _RULE_EDIT.match(part):
        rule = edge_rule(ruled["rule"])
        assert rule is not None  # the pattern saw 'top '
        return rule, None, 0.0 if ruled["zero"] else float(ruled["scale"]), False
    match = _EDIT.match(part)
    if not match:
        raise ValueError(
            f"'{part}' is not an edit; write e.g. 'zero mixed3:58,63', "
            "'scale 0.5 conv2:7 -> mixed3:56', 'zero unit mixed3:40' or 'zero top 3 by weight from mixed3'"
        )
    sources = parse_units(match["source"])
    into = parse_units(match["into"]) if match["into"] else None
    if len({ref.layer for ref in sources}) > 1 or (into is not None and len(into) != 1):
        raise ValueError(f"in '{part}', edit units of one layer (into at most one unit); split it with ';'")
    if match["unit"] and into is not None:
        raise ValueError(f"'{part}': a whole unit has no '-> target'")
    scale = 0.0 if match["zero"] else float(match["scale"])
    return sources, into[0] if into else None, scale, bool(match["unit"])


def resolve_edits(info, target: UnitRef, parsed: Sequence) -> tuple[Edit, ...]:
    """Edits with canonical layer names and units in range, every edge running forward and
    ending at or before the observed unit; ModelError with a message otherwise."""
    order = list(info.layers)
    edits = []
    for sources, into, scale, whole in parsed:
        if isinstance(sources, EdgeRule):  # its units are chosen once the kernels are computed
            source = info.layer(sources.layer).name
            if order.index(source) >= order.index(target.layer):
                raise ModelError(f"'{source}' does not come before '{target.layer}' in the network")
            edits.append(Edit(source, (), scale=scale, rule=sources.text))
            continue
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


def percent(change: float) -> str:
    """'+12%', '−0.4' as '0%' (a change that rounds to nothing has no sign), or in words from 0."""
    if abs(change) == float("inf"):
        return "from 0 to positive" if change > 0 else "from 0 to negative"
    text = f"{change:+.0%}"
    return "0%" if text[1:] == "0%" else text
