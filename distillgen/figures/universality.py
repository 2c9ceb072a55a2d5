"""{universality} mixed4 with :other: shapes@1: do two networks learn the same features?

Each unit of the layer is matched to the unit of the other model's layer whose peak responses
over a probe set correlate best with its own. The figure shows the best-matched pairs side by
side (feature visualizations and r) and the distribution of best-match correlations next to a
baseline, so a reader can judge what a high r means: the same statistic against the other
architecture with random weights (`untrained`), or against the other model on the probe
images in a shuffled order (`shuffled`, where any match is chance). Beside them it shows a
trivial predictor: how well each unit's peak response is told by the image's ink density (its
mean darkness, the mean over pixels and channels of 1 − value), as |r|; a best match little
above it says the two units may share no more than a taste for dark images. Prose may quote
the medians: `median`, `baseline` and `ink`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from html import escape

import numpy as np

from distillgen.dictionaries import carrying, is_dictionary
from distillgen.figures import probes
from distillgen.figures.base import DirectiveInput, DirectiveKind, Quantity, Rendered, ValueField
from distillgen.figures.context import CheckContext, FollowUpContext, PlanContext, RenderContext
from distillgen.figures.unitview import THUMBNAIL, featurevis_job, image_html, page_href, unit_card
from distillgen.jobs import (
    Baseline,
    Dataset,
    FeatureVisJob,
    FeatureVisSettings,
    UniversalityJob,
    UniversalityResult,
)
from distillgen.options import MODEL, Argument, Option, choice, integer, layer, text
from distillgen.render.plots import histograms
from distillgen.units import ModelError, ModelInfo, ModelSpec, SpecError, UnitRef, parse_units, untrained
from distillgen.zoo import ZOO


@dataclass(frozen=True)
class UniversalityRequest:
    spec: ModelSpec
    other: ModelSpec
    layer: str
    other_layer: str
    dataset: Dataset
    baseline: Baseline
    pairs: int
    units: str | None
    matching: str
    directive: DirectiveInput


@dataclass(frozen=True)
class Pair:
    mine: FeatureVisJob
    theirs: FeatureVisJob | None  # None: left over by a one-to-one matching into a smaller layer
    r: float | None


@dataclass(frozen=True)
class UniversalityFigure:
    job: UniversalityJob
    settings: FeatureVisSettings  # of each model's feature visualizations
    other_settings: FeatureVisSettings
    units: tuple[int, ...] | None  # :units:, else the best-matched :pairs:
    count: int
    matching: str
    compared: tuple[str, str]  # each layer with its model, size and input size, for the reader
    pairs: tuple[Pair, ...] | None = None  # chosen once the matches are computed

    @property
    def jobs(self) -> tuple:
        shown = [job for pair in self.pairs or () for job in (pair.mine, pair.theirs) if job is not None]
        return (self.job, *shown)


class Universality(DirectiveKind):
    name = "universality"
    doc = "Match a layer's units to another model's by activation correlation, against a baseline."
    values = {
        "median": ValueField("the median correlation of the units with their matches"),
        "baseline": ValueField("the median correlation of the units with their matches in the baseline"),
        "ink": ValueField("the median |r| of the units' peak responses with the images' ink density"),
        "share-above-N": ValueField(
            "the share of the units whose match correlates at r ≥ N/100 (share-above-90: r ≥ 0.9)",
            percent=True,
        ),
        "share-below-N": ValueField(
            "the share of the units whose match correlates below r = N/100", percent=True
        ),
        "r": ValueField("one unit's correlation with its match ('of m4:123')", of_unit=True),
    }
    per_unit = True
    argument = Argument("a layer of the first model, e.g. mixed4", layer)
    options = (
        MODEL,
        Option("other", text, None, "the second model's spec, e.g. shapes@1", required=True),
        Option("other-layer", text, None, "its layer (default: the same name)"),
        Option("baseline", choice("untrained", "shuffled"), "untrained", "what a chance match looks like"),
        Option("pairs", integer(1, 32), 6, "how many best-matched pairs to show"),
        Option("units", text, None, "show these units' matches instead, e.g. '52, 30, 27'"),
        Option(
            "matching",
            choice("best", "one-to-one"),
            "best",
            "each unit's best match (several may share one), or the best one-to-one matching",
        ),
        *probes.DATASET_OPTIONS,
    )
    numbered = True

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> UniversalityRequest | None:
        opts = directive.options
        spec = ctx.model_spec(opts["model"], directive.option_line("model"))
        other = ctx.model_spec(opts["other"], directive.option_line("other"))
        dataset = probes.dataset(directive, ctx)
        if spec is None or other is None or dataset is None:
            return None
        if opts["baseline"] == "untrained":
            try:
                untrained(other)
            except SpecError as exc:
                where = "baseline" if "baseline" in directive.given else "other"
                ctx.error(directive.option_line(where), f"{exc}; use ':baseline: shuffled'")
                return None
        return UniversalityRequest(
            spec,
            other,
            directive.argument,
            opts["other-layer"] or directive.argument,
            dataset,
            opts["baseline"],
            opts["pairs"],
            opts["units"],
            opts["matching"],
            directive,
        )

    def plan(self, request: UniversalityRequest, ctx: PlanContext) -> UniversalityFigure | None:
        at = request.directive
        info = ctx.model_info(request.spec, at.option_line("model"))
        other = ctx.model_info(request.other, at.option_line("other"))
        if info is None or other is None:
            return None
        try:
            layer = info.layer(request.layer).name
        except ModelError as exc:
            ctx.error(at.line, str(exc))
            return None
        try:
            other_layer = other.layer(request.other_layer).name
        except ModelError as exc:
            given = "other-layer" in at.given
            hint = "" if given else "; name the layer to compare with in :other-layer:"
            ctx.error(at.option_line("other-layer" if given else "other"), f"{exc}{hint}")
            return None
        baseline, baseline_fingerprint = "", ""
        if request.baseline == "untrained" and is_dictionary(other, other_layer):
            ctx.error(
                at.option_line("baseline"),
                f"'{other_layer}' is a dictionary: an untrained network has none; use :baseline: shuffled",
            )
            return None
        if request.baseline == "untrained":
            random = untrained(request.other)  # checked: it has one
            base_info = ctx.model_info(random, at.option_line("baseline"))
            if base_info is None:
                return None
            baseline, baseline_fingerprint = str(random), base_info.fingerprint
        units = None
        if request.units:
            try:
                written = ",".join(f"{layer}:{u.strip()}" for u in request.units.split(","))
                units = tuple(ref.unit for ref in info.check_units(parse_units(written)))
            except (ModelError, SpecError) as exc:
                ctx.error(at.option_line("units"), str(exc))
                return None
        settings = (ctx.featurevis_settings(info), ctx.featurevis_settings(other))
        job = ctx.attach(  # last: Pending while a dictionary is untrained (figures/base.py)
            UniversalityJob(
                str(request.spec),
                info.fingerprint,
                layer,
                str(request.other),
                other.fingerprint,
                other_layer,
                request.dataset,
                request.baseline,
                baseline,
                baseline_fingerprint,
            ),
            info,
            other,
        )
        return UniversalityFigure(
            job,
            *settings,
            units,
            request.pairs,
            request.matching,
            (_layer_text(info, layer), _layer_text(other, other_layer)),
        )

    def follow_up(self, figure: UniversalityFigure, ctx: FollowUpContext) -> UniversalityFigure:
        """Once the matches are known, ask for the feature visualizations of the pairs shown."""
        if figure.pairs is not None or not ctx.done(figure.job):
            return figure
        job = figure.job
        partner, r, _ = _matching(ctx.result(job), figure.matching)
        ranked = sorted(range(len(r)), key=lambda u: -r[u] if r[u] is not None else math.inf)
        order = figure.units or [u for u in ranked if r[u] is not None][: figure.count]
        pairs = []
        for unit in order:
            mine = featurevis_job(job.model, job.fingerprint, UnitRef(job.layer, int(unit)), figure.settings)
            mine = carrying(mine, tuple(d for d in job.dictionaries if d.model == job.model))
            if partner[unit] < 0:
                pairs.append(Pair(mine, None, None))
                continue
            match = UnitRef(job.other_layer, partner[unit])
            theirs = featurevis_job(job.other, job.other_fingerprint, match, figure.other_settings)
            theirs = carrying(theirs, tuple(d for d in job.dictionaries if d.model == job.other))
            pairs.append(Pair(mine, theirs, r[unit]))
        return replace(figure, pairs=tuple(pairs))

    def value(self, figure: UniversalityFigure, field: str, ctx: FollowUpContext) -> Quantity | None:
        if not ctx.done(figure.job):
            return None
        result = ctx.result(figure.job)
        if field == "ink":
            ink = _ink(result)
            if not ink:
                raise ValueError("no unit's peak response varies over the probe set")
            median = float(np.median(ink))
            return Quantity(f"{median:.2f}", median)
        _, trained_r, chance_r = _matching(result, figure.matching)
        if field.startswith("share-"):
            found = [x for x in trained_r if x is not None]
            if not found:
                raise ValueError("no unit's peak response varies over the probe set")
            bound = int(field.rpartition("-")[2]) / 100
            above = field.startswith("share-above-")
            share = sum((x >= bound) if above else (x < bound) for x in found) / len(found)
            return Quantity(f"{share:.0%}", share)
        chosen = trained_r if field == "median" else chance_r
        median = float(np.median([x for x in chosen if x is not None]))
        return Quantity(f"{median:.2f}", median)

    def unit_value(
        self, figure: UniversalityFigure, field: str, unit: str, ctx: FollowUpContext
    ) -> Quantity | None:
        """A unit of the first layer: the correlation with its match."""
        if field != "r":
            raise ValueError(f"{field} is the layer's, not a unit's; drop 'of {unit}'")
        layer, _, number = unit.rpartition(":")
        if not ctx.same_layer(figure.job.fingerprint, layer, figure.job.layer):
            raise ValueError(f"the figure matches the units of {figure.job.layer}, not {layer}")
        if not ctx.done(figure.job):
            return None
        _, trained_r, _ = _matching(ctx.result(figure.job), figure.matching)
        if int(number) >= len(trained_r):
            raise ValueError(f"{figure.job.layer} has {len(trained_r)} units, not {int(number) + 1}")
        found = trained_r[int(number)]
        if found is None:
            raise ValueError(f"{unit} never varies over the probe set: it has no correlation")
        return Quantity(f"{found:.2f}", found)

    def render(self, figure: UniversalityFigure, ctx: RenderContext) -> Rendered:
        job = figure.job
        result = ctx.result(job)
        rows = "".join(_pair(ctx, pair) for pair in figure.pairs or ())  # set by follow_up
        matching = figure.matching
        partner, trained_r, chance_r = _matching(result, matching)
        trained = [x for x in trained_r if x is not None]
        chance = [x for x in chance_r if x is not None]
        other_kind = "one-to-one" if matching == "best" else "best"
        other_median = np.median([x for x in _matching(result, other_kind)[1] if x is not None])
        names = _series_names(job)
        ink = _ink(result)
        series = list(zip(names, (trained, chance), strict=True)) + ([(INK_SERIES, ink)] if ink else [])
        plot = histograms(
            series,
            f"{matching}-match correlation",
            f"{matching.capitalize()}-match correlations of {job.layer} units, the baseline, "
            "and |r| with ink density",
        )
        samples = "every position" if result.samples == "positions" else "each image's peak"
        code = {
            name: f"<code>{escape(value)}</code>"
            for name, value in vars(job).items()
            if isinstance(value, str)
        }
        how = {
            "best": "to the unit of {other_layer} in {other} whose activations",
            "one-to-one": "one to one (each unit of {other_layer} in {other} used once) to the unit "
            "whose activations",
        }[matching].format(other_layer=code["other_layer"], other=code["other"])
        summary = (
            f'<p class="universality-summary">Compared: {escape(" and ".join(figure.compared))}. '
            f"Units of {code['layer']} in {code['model']}, matched {how} "
            f"over {result.probe_size} images ({samples}) correlate best: median r = "
            f"{np.median(trained):.2f} ({other_kind} matching: {other_median:.2f}); against the "
            f"baseline ({escape(names[1])}) median r = {np.median(chance):.2f}. The best matches go to "
            f"{len(set(result.best_unit))} distinct units of {code['other_layer']}.{_ink_sentence(ink)}</p>"
        )
        content = f'<table class="universality-pairs">{rows}</table>{summary}<div class="plot">{plot}</div>'
        return ctx.rendered(ctx.figure(content, "universality-figure"))


INK_SERIES = "|r| with ink density"


def _ink(result: UniversalityResult) -> list[float]:
    """Each live unit's |r| with the images' ink density. The absolute value because a unit
    whose response falls with ink (one that fires on blank background) is as well told by this
    trivial statistic as one whose response rises with it; and the best-match r it is set
    beside is a maximum over many partners, so it is positive for all but a dead unit: signed,
    the ink sample would read as weaker than it is. Even as |r| it is one predictor against the
    best of a whole layer, so it errs low: a best match near it means little."""
    return [abs(r) for r in result.ink_r if r is not None]


def _ink_sentence(ink: list[float]) -> str:
    if not ink:
        return " No unit is set against ink density: none responds in a way that varies over the probe."
    return (
        f" A trivial predictor, the image's ink density (its mean darkness), alone correlates with "
        f"the units' peak responses at median |r| = {np.median(ink):.2f}: a match not well above "
        "that may share no more than a taste for dark images."
    )


def _series_names(job: UniversalityJob) -> tuple[str, str]:
    """The plot's two series, told apart by what differs between the two sides: the models
    ('shapes@0 vs shapes@1', a zoo network's seed written out beside another seed of it), or
    the layers of one model ('m4 vs mixed4 of shapes'); then the baseline: the other side with
    random weights, or with the probe images shuffled."""
    mine, theirs = _seeded(job.model, job.other), _seeded(job.other, job.model)
    if job.model != job.other:
        pair = f"{mine} vs {theirs}"
        chance = f"{mine} vs {_seeded(job.baseline_model, job.model)}" if job.baseline == "untrained" else ""
    elif job.layer != job.other_layer:
        pair = f"{job.layer} vs {job.other_layer} of {job.model}"
        untrained = f"{job.layer} of {job.model} vs {job.other_layer} of {job.baseline_model}"
        chance = untrained if job.baseline == "untrained" else ""
    else:
        pair = f"{job.layer} of {job.model} vs itself"
        chance = f"{job.model} vs {job.baseline_model}" if job.baseline == "untrained" else ""
    return pair, chance or f"{pair}, images shuffled"


def _seeded(spec: str, beside: str) -> str:
    """`spec` with its seed written out ('shapes@0') when `beside` is another variant of the
    same zoo network ('shapes@1', 'shapes@untrained'), where the bare name would not say which."""
    name, _, tag = spec.partition("@")
    if name in ZOO and not tag and beside != spec and beside.partition("@")[0] == name:
        return f"{name}@0"
    return spec


def _layer_text(info: ModelInfo, layer: str) -> str:
    """'mixed4 of shapes (96 units, 8×8 maps, 64-pixel input)'."""
    channels, *size = info.layers[layer].shape
    maps = f", {'×'.join(map(str, size))} maps" if size else ""
    return f"{layer} of {info.spec} ({channels} units{maps}, {info.input_size}-pixel input)"


def _matching(result: UniversalityResult, matching: str) -> tuple[tuple[int, ...], tuple, tuple]:
    """Each unit's partner (-1: none), its r, and the baseline's r, for the chosen matching."""
    if matching == "best":
        return result.best_unit, result.best_r, result.baseline_best_r
    return result.one_to_one_unit, result.one_to_one_r, result.baseline_one_to_one_r


def _pair(ctx: RenderContext, pair: Pair) -> str:
    if pair.theirs is None:
        return f'<tr>{_cell(ctx, pair.mine, "")}<td>no partner left</td><td class="correlation"></td></tr>'
    return (
        f"<tr>{_cell(ctx, pair.mine, pair.theirs.model)}{_cell(ctx, pair.theirs, pair.mine.model)}"
        f'<td class="correlation">r = {pair.r:.2f}</td></tr>'
    )


def _cell(ctx: RenderContext, job: FeatureVisJob, beside: str) -> str:
    """A unit of a pair: its image, address and model (with its seed beside another seed)."""
    address = f"{job.layer}:{job.unit}"
    anchor = unit_card(ctx, job, f"{address} ({job.model})")
    image = image_html(ctx, job, 0, THUMBNAIL, f"feature visualization of {address} in {job.model}")
    href = page_href(job)
    linked = f'<a class="pair-image" href="{escape(href)}">{image}</a>' if href else image
    return (
        f'<td data-hover-ref="{anchor}">{linked}<span class="pair-label"><code>{escape(address)}</code> '
        f'<span class="model-name">{escape(_seeded(job.model, beside))}</span></span></td>'
    )
