"""{dictionary} m4: a dictionary's quality, and its features beside the neurons they share.

Measures (fraction of variance unexplained, mean L0, dead features) and each feature's density
as a histogram; then the same evidence for neurons and features: how pure the top probe images
of each are by the probe set's classes, as two distributions; last the polysemantic neurons
that features of different classes split, each with those features (feature visualizations,
chosen once the dictionary is trained: `follow_up`).

A feature *shares* a neuron when its decoder direction loads on that neuron by at least
`SHARE` of its length (cosine with the neuron's axis).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, replace
from html import escape

import numpy as np

from distillgen.dictionaries import carrying, trained
from distillgen.figures.base import DirectiveInput, DirectiveKind, Quantity, Rendered, ValueField
from distillgen.figures.context import CheckContext, FollowUpContext, PlanContext, RenderContext
from distillgen.figures.unitview import THUMBNAIL, featurevis_job, image_html, page_href, unit_card
from distillgen.jobs import Attached, DictionaryJob, DictionaryResult, FeatureVisJob, FeatureVisSettings
from distillgen.options import Argument, Option, integer
from distillgen.render.plots import histograms
from distillgen.render.words import plural
from distillgen.units import UnitRef, is_layer_name, parse_spec

SHARE = 0.3  # a feature shares a neuron when its decoder direction's cosine with it is at least this
CARRIED = 0.5  # a feature "no neuron carries": its largest cosine with any neuron is below this
PURE = 0.5  # a feature counts for a class when at least this share of its top images is of it


@dataclass(frozen=True)
class DictionaryRequest:
    name: str
    neurons: int
    features: int
    directive: DirectiveInput


@dataclass(frozen=True)
class Split:
    neuron: int
    image: FeatureVisJob
    features: tuple[tuple[int, float, FeatureVisJob], ...]  # feature, loading, its image


@dataclass(frozen=True)
class DictionaryFigure:
    name: str
    job: DictionaryJob
    attached: Attached
    settings: FeatureVisSettings
    neurons: int
    features: int
    splits: tuple[Split, ...] | None = None  # chosen once the dictionary is trained

    @property
    def jobs(self) -> tuple:
        images = [job for s in self.splits or () for job in (s.image, *(f[2] for f in s.features))]
        return (self.job, *images)


def decoder(attached: Attached) -> np.ndarray:
    """The dictionary's decoder rows [F, C] (numpy only: the figure runs without torch)."""
    with np.load(io.BytesIO(base64.b64decode(attached.weights)), allow_pickle=False) as data:
        return np.asarray(data["decoder"], np.float64)


def loadings(attached: Attached) -> np.ndarray:
    """Each feature's decoder direction on each neuron's axis (cosine): [F, C]."""
    rows = decoder(attached)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def splits(result: DictionaryResult, loading: np.ndarray, neurons: int, per_neuron: int) -> list:
    """The neurons that live features of different classes share, the least pure neuron first
    (then the most classes): [(neuron, [(feature, loading), …])]."""
    live = np.asarray(result.density) > 0
    if not result.feature_purity:
        return []
    found = []
    for neuron in range(loading.shape[1]):
        order = np.argsort(-loading[:, neuron], kind="stable")
        sharing = [int(i) for i in order if live[i] and loading[i, neuron] >= SHARE][:per_neuron]
        classes = {result.feature_class[i] for i in sharing if result.feature_purity[i] >= PURE}
        if len(classes) >= 2:
            found.append((result.neuron_purity[neuron], -len(classes), neuron, sharing))
    found.sort()
    return [
        (neuron, [(i, float(loading[i, neuron])) for i in sharing]) for *_, neuron, sharing in found[:neurons]
    ]


class Dictionary(DirectiveKind):
    name = "dictionary"
    per_unit = True
    doc = "A dictionary's quality, and its features beside the neurons: purity, polysemantic neurons split."
    values = {
        "fvu": ValueField("the fraction of variance the dictionary leaves unexplained"),
        "l0": ValueField("the mean number of features active at a position"),
        "features": ValueField("how many features the dictionary has"),
        "dead": ValueField("how many features never fire on the probe set"),
        "live": ValueField("how many features fire on the probe set"),
        "neuron-purity": ValueField(
            "the median purity of the layer's neurons (the share of their top probe images in "
            "their most common class)"
        ),
        "feature-purity": ValueField("the median purity of the live features"),
        "pure-neurons": ValueField("the share of the layer's neurons that are entirely pure", percent=True),
        "pure-features": ValueField("the share of the live features that are entirely pure", percent=True),
        "uncarried": ValueField("how many live features load on no neuron by the carrying threshold"),
        "pure-uncarried": ValueField("how many of those are at least 90% pure"),
        "purity": ValueField(
            "one neuron's or feature's purity: the share of its top drawings of its most common class "
            "('of mixed4:8', 'of m4:123')",
            percent=True,
            of_unit=True,
        ),
        "loading-N": ValueField(
            "one feature's Nth largest cosine with a neuron's axis ('loading-1 of m4:123': its largest)",
            of_unit=True,
        ),
    }
    argument = Argument("the name of a dictionary declared in the front matter's 'dictionaries:', e.g. m4")
    options = (
        Option(
            "neurons",
            integer(0, 16),
            3,
            "how many polysemantic neurons to show with the features that split them",
        ),
        Option("features", integer(1, 8), 4, "features shown per neuron"),
    )
    numbered = True

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> DictionaryRequest | None:
        name = directive.argument.strip()
        if not is_layer_name(name) or "." in name:
            ctx.error(
                directive.line,
                f"'{name}' is not a dictionary name; write the name it is declared by, e.g. m4",
            )
            return None
        opts = directive.options
        return DictionaryRequest(name, opts["neurons"], opts["features"], directive)

    def plan(self, request: DictionaryRequest, ctx: PlanContext) -> DictionaryFigure | None:
        at = request.directive
        resolved = ctx.dictionary(request.name, at.line)
        if resolved is None:
            return None
        info = ctx.model_info(parse_spec(resolved.job.model), at.line)
        if info is None:
            return None
        (attached,) = trained(info, [request.name])  # Pending until it is trained
        return DictionaryFigure(
            request.name,
            resolved.job,
            attached,
            ctx.featurevis_settings(info),
            request.neurons,
            request.features,
        )

    def follow_up(self, figure: DictionaryFigure, ctx: FollowUpContext) -> DictionaryFigure:
        if figure.splits is not None or not ctx.done(figure.job):
            return figure
        job = figure.job
        found = ctx.derived(  # kept with the dictionary's cache entry: a rebuild loads no weights
            job,
            f"splits {figure.neurons} {figure.features}",
            lambda: splits(ctx.result(job), loadings(figure.attached), figure.neurons, figure.features),
        )
        chosen = []
        for neuron, features in found:
            image = featurevis_job(job.model, job.fingerprint, UnitRef(job.layer, neuron), figure.settings)
            shown = tuple(
                (
                    feature,
                    loading,
                    carrying(
                        featurevis_job(
                            job.model, job.fingerprint, UnitRef(figure.name, feature), figure.settings
                        ),
                        (figure.attached,),
                    ),
                )
                for feature, loading in features
            )
            chosen.append(Split(neuron, image, shown))
        return replace(figure, splits=tuple(chosen))

    def value(self, figure: DictionaryFigure, field: str, ctx: FollowUpContext) -> Quantity | None:
        if not ctx.done(figure.job):
            return None
        result = ctx.result(figure.job)
        density = np.asarray(result.density)
        counts = {"features": len(density), "dead": result.dead, "live": int((density > 0).sum())}
        if field in counts:
            return Quantity(str(counts[field]), counts[field])
        if field in ("fvu", "l0"):
            found = result.fvu if field == "fvu" else result.mean_l0
            return Quantity(f"{found:.3f}" if field == "fvu" else f"{found:.2f}", found)
        if not result.feature_purity:
            raise ValueError("its probe set has no classes (a folder of images), so no purity")
        found = ctx.derived(figure.job, "purity", lambda: _purity(figure, result))[field]  # once, kept
        if field.startswith("pure-") and field != "pure-uncarried":
            return Quantity(f"{found:.0%}", found)
        return Quantity(f"{found:.2f}" if "purity" in field else str(found), found)

    def unit_value(
        self, figure: DictionaryFigure, field: str, unit: str, ctx: FollowUpContext
    ) -> Quantity | None:
        """A feature's loadings (its decoder direction's cosines with the neurons' axes), or a
        neuron's or a feature's purity."""
        layer, _, number = unit.rpartition(":")
        if field == "purity":
            neuron = layer != figure.name and ctx.same_layer(figure.job.fingerprint, layer, figure.job.layer)
            if layer != figure.name and not (layer and neuron):
                raise ValueError(
                    f"name a neuron of {figure.job.layer} or a feature of {figure.name}, not {unit}"
                )
            if not ctx.done(figure.job):
                return None
            result = ctx.result(figure.job)
            if not result.feature_purity:
                raise ValueError("its probe set has no classes (a folder of images), so no purity")
            purities = result.neuron_purity if neuron else result.feature_purity
            if int(number) >= len(purities):
                raise ValueError(f"{layer} has {len(purities)} units, not {int(number) + 1}")
            found = float(purities[int(number)])
            return Quantity(f"{found:.0%}", found)
        if not field.startswith("loading-"):
            raise ValueError(f"{field} is the dictionary's, not a feature's; drop 'of {unit}'")
        if layer not in ("", figure.name):
            raise ValueError(f"the figure's features are {figure.name}'s, not {layer}'s")
        if not ctx.done(figure.job):
            return None
        loading = loadings(figure.attached)
        feature, place = int(number), int(field.rpartition("-")[2])
        if feature >= len(loading) or place > loading.shape[1]:
            raise ValueError(f"{figure.name} has {len(loading)} features of {loading.shape[1]} neurons")
        found = float(np.sort(loading[feature])[::-1][place - 1])
        return Quantity(f"{found:.2f}", found)

    def render(self, figure: DictionaryFigure, ctx: RenderContext) -> Rendered:
        job, result = figure.job, ctx.result(figure.job)
        density = np.asarray(result.density)
        live = density > 0
        features = len(density)
        measures = (
            f'<table class="dictionary-measures"><tbody>'
            f"<tr><th>dictionary</th><td><code>{escape(figure.name)}</code>: {features} features on "
            f"<code>{escape(job.layer)}</code> ({result.channels} neurons), k = {job.settings.k}</td></tr>"
            f"<tr><th>fraction of variance unexplained</th><td>{result.fvu:.3f}</td></tr>"
            f"<tr><th>mean L0</th><td>{result.mean_l0:.2f} active features per position</td></tr>"
            f"<tr><th>dead features</th><td>{result.dead} of {features}</td></tr>"
            f"<tr><th>trained on</th><td>{result.samples:,} positions of {job.dataset.count} probe images, "
            f"{job.settings.steps} steps</td></tr></tbody></table>"
        )
        logs = np.log10(density[live]) if live.any() else np.zeros(0)
        plots = [
            histograms(
                [("live features", list(logs))],
                "log10 density (share of positions where active)",
                f"Feature density of {figure.name}",
                bins=24,
                lo=-6.0,
                hi=0.0,
                counted="feature",
            )
        ]
        text = ""
        if result.feature_purity:
            top = result.top  # purity is a multiple of 1/top, at least ceil(top / classes)/top
            least = -(-top // len(result.classes))
            neuron_purity = np.asarray(result.neuron_purity)
            feature_purity = np.asarray(result.feature_purity)[live]
            plots.append(
                histograms(
                    [
                        (f"neurons ({len(neuron_purity)})", list(neuron_purity)),
                        (f"live features ({int(live.sum())})", list(feature_purity)),
                    ],
                    f"purity: share of the top {top} images in their most common class",
                    f"Purity of {job.layer}'s neurons and of {figure.name}'s features",
                    bins=top - least + 1,  # one bin per possible value
                    lo=(least - 0.5) / top,
                    hi=(top + 0.5) / top,
                    share=True,
                    y_label="share of each group",
                )
            )
            summary = _purity(figure, result)
            text = (
                f'<p class="dictionary-summary">Median purity: neurons {summary["neuron-purity"]:.2f}, '
                f"features {summary['feature-purity']:.2f}; entirely pure: "
                f"{summary['pure-neurons']:.0%} of neurons, {summary['pure-features']:.0%} of "
                f"features. {summary['uncarried']} live features load on no neuron by {CARRIED} or more "
                f"(no neuron carries them); {summary['pure-uncarried']} of those are at least 90% pure.</p>"
            )
        rows = "".join(_split(ctx, figure, result, split) for split in figure.splits or ())
        if not result.classes:
            text = (
                '<p class="dictionary-summary">The probe set has no classes (a folder of images): '
                "the purity of neurons and features, and the neurons that features of different "
                "classes split, are not measured.</p>"
            )
        elif figure.splits == () and figure.neurons:
            rows = '<p class="dictionary-summary">No neuron is shared by features of different classes.</p>'
        content = (
            f'{measures}<div class="plot">{"".join(plots)}</div>{text}'
            f'<div class="dictionary-splits">{rows}</div>'
        )
        return ctx.rendered(ctx.figure(content, "dictionary-figure"))


def _purity(figure: DictionaryFigure, result) -> dict[str, float | int]:
    """The purity medians and the uncarried features' counts the figure states (and {value}
    quotes), from a result with classes."""
    live = np.asarray(result.density) > 0
    feature_purity = np.asarray(result.feature_purity)
    uncarried = live & (loadings(figure.attached).max(axis=1) < CARRIED)
    neuron_purity = np.asarray(result.neuron_purity)
    return {
        "neuron-purity": float(np.median(neuron_purity)),
        "feature-purity": float(np.median(feature_purity[live])),
        "pure-neurons": float((neuron_purity == 1).mean()),
        "pure-features": float((feature_purity[live] == 1).mean()),
        "uncarried": int(uncarried.sum()),
        "pure-uncarried": int((uncarried & (feature_purity >= 0.9)).sum()),
    }


def _cell(ctx: RenderContext, job: FeatureVisJob, label: str, *note: str) -> str:
    """A unit's tile: its image, address and the note's lines under it."""
    anchor = unit_card(ctx, job, label)
    img = image_html(ctx, job, 0, THUMBNAIL, f"feature visualization of {label}")
    href = page_href(job)
    tag, link = ("a", f' href="{escape(href)}"') if href else ("div", ' tabindex="0"')
    return (
        f'<{tag} class="unit-cell"{link} data-hover-ref="{anchor}">{img}'
        f'<span class="unit-label">{escape(label)}</span>'
        f'<span class="unit-note">{"<br>".join(map(escape, note))}</span></{tag}>'
    )


def _split(ctx: RenderContext, figure: DictionaryFigure, result: DictionaryResult, split: Split) -> str:
    """One neuron and the features that split it, as one group: the neuron, then "splits into"
    and its features, which wrap inside the group (never under another neuron's)."""
    classes = result.classes
    neuron = split.neuron
    address = f"{figure.job.layer}:{neuron}"
    note = f"{result.neuron_purity[neuron]:.0%} {classes[result.neuron_class[neuron]]}"
    cells = []
    for feature, loading, job in split.features:
        purity, kind = result.feature_purity[feature], classes[result.feature_class[feature]]
        label = f"{figure.name}:{feature}"
        cells.append(_cell(ctx, job, label, f"{purity:.0%} {kind}", f"cos {loading:.2f}"))
    into = f"splits into {plural(len(cells), 'feature')}"
    return (
        f'<div class="dictionary-split" role="group" aria-label="{escape(address)} {into}">'
        f'<div class="split-neuron">{_cell(ctx, split.image, address, note)}</div>'
        f'<div class="split-features"><p class="split-into">{escape(address)} {into}:</p>'
        f'<div class="split-cells">{"".join(cells)}</div></div></div>'
    )
