"""{attribution} mixed4:20 with :inputs: conv2 -> mixed3: what carries a unit on given inputs.

    :inputs: conv2 -> mixed3:14,40     earlier layers, earliest first, as {circuit} takes them
    :on: examples | tuning | featurevis | figures/cat.png, dog.png
                                       the target's top dataset examples (default), a stimulus
                                       sweep, its feature visualization, or image files
    :method: integrated | gradient     integrated gradients (default) or activation × gradient
    :steps: 64  :reference: black      integrated gradients' quadrature points and start input
    :top: 6                            units drawn of each layer stage
    :tolerance: 5%                     completeness: how far the attributions into a layer may
                                       sum from the target's change through it
    :predict: decrease >= 30%          zeroing the edges drawn into the target has this effect;
                                       the build runs that ablation and checks it

Where {circuit} shows what the weights say whatever the input, this shows what carries the
unit's activation on inputs a reader can see (engine/attribution.py): the units of each layer
with the largest attribution, drawn as a circuit whose edges are attributions, beside the
ranking the weights give; where on each input the attribution lies; the share the drawn units
carry. Integrated gradients are checked for completeness like a prediction: a warning when a
layer's attributions miss the change by more than the tolerance, an error under --strict.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path

import numpy as np

from distillgen import kernels, safety
from distillgen.diagnostics import Code, suggest
from distillgen.dictionaries import carrying, trained
from distillgen.figures import probes
from distillgen.figures.ablation import Prediction, percent, prediction_subsets, predictions
from distillgen.figures.base import DirectiveInput, DirectiveKind, Quantity, Rendered, ValueField
from distillgen.figures.circuit import Stage, card_anchor, nodes, stages_of
from distillgen.figures.context import CheckContext, FollowUpContext, PlanContext, RenderContext
from distillgen.figures.diagram import Edge, Graph, circuit_svg
from distillgen.figures.unitview import featurevis_job
from distillgen.jobs import (
    METHODS,
    REFERENCES,
    AblationJob,
    AttributionJob,
    AttributionResult,
    AttributionStage,
    Dataset,
    Edit,
    FeatureVisJob,
    FeatureVisSettings,
    ImageFile,
    Probe,
    Sweep,
    WeightsJob,
)
from distillgen.options import MODEL, Argument, Option, choice, integer, one_unit, text
from distillgen.render.words import minus, number, ordinal, plural
from distillgen.units import ModelError, ModelInfo, ModelSpec, UnitRef

PROBES = ("examples", "tuning", "featurevis")  # :on: takes these, or image files
RASTER = ("PNG", "JPEG", "GIF", "WebP")  # what a model can be shown (an SVG is a drawing program)
SHOWN_INPUTS = 2  # inputs whose maps are open; the others' are behind a disclosure


def share(value: str) -> float:
    """'5%' or '0.05': a fraction in (0, 1]."""
    written = value.strip()
    try:
        fraction = float(written[:-1]) / 100 if written.endswith("%") else float(written)
    except ValueError:
        raise ValueError(f"'{value}' is not a share; write e.g. '5%' or 0.05") from None
    if not 0 < fraction <= 1:
        raise ValueError(f"'{value}' is not between 0 and 100%")
    return fraction


@dataclass(frozen=True)
class AttributionRequest:
    spec: ModelSpec
    target: UnitRef
    stages: tuple[Stage, ...]
    on: Probe
    dataset: Dataset | None  # for :on: examples
    sweep: Sweep | None  # for :on: tuning
    files: tuple[tuple[ImageFile, str], ...]  # for image files: each with its absolute path
    options: dict  # method, steps, reference, top, examples, tolerance
    predict: tuple[Prediction, ...]
    directive: DirectiveInput


@dataclass(frozen=True)
class AttributionFigure:
    job: AttributionJob
    weights: WeightsJob | None  # the last stage into the target: the ranking by weights
    settings: FeatureVisSettings  # of the nodes' feature visualizations
    predict: tuple[Prediction, ...]
    line: int
    label: str | None
    dictionaries: tuple = ()  # jobs.Attached: the trained dictionaries among its layers
    nodes: tuple[tuple[str, FeatureVisJob], ...] = ()  # address -> its feature visualization
    ablation: AblationJob | None = None  # zeroing the drawn edges into the target (:predict:)
    changes: tuple[float, ...] = ()  # each prediction's measured change, once checked

    @property
    def jobs(self) -> tuple:
        own = (self.job, *((self.weights,) if self.weights else ()))
        return (*own, *(job for _, job in self.nodes), *((self.ablation,) if self.ablation else ()))


class Attribution(DirectiveKind):
    name = "attribution"
    doc = "What carries a unit's activation on given inputs: an attribution circuit, maps and shares."
    values = {
        "share": ValueField(
            "the share of the unit's activation (for integrated gradients, of its change from the "
            "reference) that the drawn units of the layer before it carry",
            percent=True,
        ),
        "ablation": ValueField(
            "the relative change of the unit when the drawn edges into it are zeroed (:predict:)",
            percent=True,
        ),
        "error": ValueField(
            "the completeness error of the layer before the unit (how far its attributions' sum "
            "is from the change they explain)",
            percent=True,
        ),
        "change": ValueField(
            "what the layer before the unit accounts for: the unit's mean change from the reference "
            "(integrated gradients), or its activation"
        ),
        "carried": ValueField("the drawn units' attributions summed (mean over the inputs)"),
        "attribution": ValueField(
            "an input unit's attribution, mean over the inputs ('of mixed3:5')", of_unit=True
        ),
        "lowest": ValueField("an input unit's smallest attribution on one input", of_unit=True),
        "highest": ValueField("an input unit's largest attribution on one input", of_unit=True),
        "rank": ValueField(
            "an input unit's place in its layer by |mean attribution| (1: the largest)", of_unit=True
        ),
        "weight-rank": ValueField(
            "an input unit's place in its layer by kernel L2 norm into the unit", of_unit=True
        ),
    }
    per_unit = True
    argument = Argument("the target unit, e.g. mixed4:20", one_unit("attributes"))
    options = (
        MODEL,
        Option(
            "inputs",
            text,
            None,
            "earlier layers, earliest first, joined by '->'; each a layer (its units that carry "
            "the most) or units of one layer, e.g. 'conv2 -> mixed3:0,15'",
            required=True,
        ),
        Option(
            "on",
            text,
            "examples",
            "examples (the target's top dataset examples), tuning (a stimulus sweep), featurevis, "
            "or image files in the articles folder, joined by ','",
        ),
        Option("method", choice(*METHODS), "integrated", "integrated gradients, or activation × gradient"),
        Option("steps", integer(1, 1024), 64, "integrated gradients' quadrature points"),
        Option("reference", choice(*REFERENCES), "black", "the input integrated gradients start from"),
        Option("top", integer(1, 32), 6, "for a layer stage, how many of its units to draw"),
        Option("examples", integer(1, 64), 8, "with :on: examples, how many of the target's top examples"),
        Option("tolerance", share, 0.05, "completeness: the error a layer's attributions may have"),
        Option(
            "predict",
            predictions,
            (),
            "the effect of zeroing the edges drawn into the target, checked by running that "
            "ablation; e.g. 'decrease >= 30%'",
        ),
        *probes.DATASET_OPTIONS,
        *probes.STIMULUS_OPTIONS,
    )
    numbered = True

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> AttributionRequest | None:
        opts = directive.options
        stages = stages_of(opts["inputs"], directive, ctx)
        if stages is None:
            return None
        written = opts["on"].strip()
        on: Probe = written if written in PROBES else "images"
        probes.warn_unused(directive, ctx, written, "examples")
        for name in ("steps", "reference", "tolerance"):
            if name in directive.given and opts["method"] == "gradient":
                ctx.warning(directive.option_line(name), f":{name}: has no effect with :method: gradient")
        spec = ctx.model_spec(opts["model"], directive.option_line("model"))
        dataset = probes.dataset(directive, ctx, streamed=True) if on == "examples" else None
        sweep = probes.sweep(directive, ctx) if on == "tuning" else None
        files = _image_files(written, directive.option_line("on"), ctx) if on == "images" else ()
        missing = {"examples": dataset is None, "tuning": sweep is None, "images": files is None}.get(
            on, False
        )
        if spec is None or missing:
            return None
        if any(p.preference for p in opts["predict"]):
            ctx.error(
                directive.option_line("predict"),
                "a preference prediction ('preference A over B …') is an {ablation}'s: "
                "write it on an {ablation} of the edges",
            )
            return None
        predict = prediction_subsets(opts["predict"], sweep, directive, ctx)
        if predict is not None and any(p.direction == "beyond" for p in predict):
            ctx.error(
                directive.option_line("predict"), "'beyond controls' is an {ablation}'s (with :control:)"
            )
            return None
        if predict is None:
            return None
        chosen = {
            name: opts[name] for name in ("method", "steps", "reference", "top", "examples", "tolerance")
        }
        return AttributionRequest(
            spec, directive.argument, stages, on, dataset, sweep, files or (), chosen, predict, directive
        )

    def plan(self, request: AttributionRequest, ctx: PlanContext) -> AttributionFigure | None:
        at = request.directive
        info = ctx.model_info(request.spec, at.option_line("model"))
        if info is None:
            return None
        try:
            (target,) = info.check_units([request.target])
        except ModelError as exc:
            ctx.error(at.line, str(exc))
            return None
        try:
            stages = _resolved(info, request.stages, target)
        except ModelError as exc:
            ctx.error(at.option_line("inputs"), str(exc))
            return None
        opts = request.options
        probe: dict = {}
        if request.on == "examples":
            probe = {"dataset": request.dataset, "top": opts["examples"]}
        elif request.on == "tuning" and request.sweep is not None:
            probe = {"sweep": replace(request.sweep, size=info.input_size)}
        elif request.on == "featurevis":
            probe = {"settings": ctx.featurevis_settings(info)}
        else:
            probe = {"files": tuple(f for f, _ in request.files), "paths": tuple(p for _, p in request.files)}
        job = AttributionJob(
            str(request.spec),
            info.fingerprint,
            target.layer,
            target.unit,
            stages,
            opts["top"],
            opts["method"],
            # activation × gradient takes no path: one key whatever these say (a warning said so)
            opts["steps"] if opts["method"] == "integrated" else 1,
            opts["reference"] if opts["method"] == "integrated" else "black",
            opts["tolerance"],
            request.on,
            **probe,
        )
        last = stages[-1].layer
        weights = None
        try:  # the ranking the weights give, where weights join the layers (not through attention)
            info.check_kernels(last, target.layer)
            weights = WeightsJob(str(request.spec), info.fingerprint, last, target.layer, target.unit)
        except ModelError:
            pass
        dictionaries = trained(info, job.layers())  # Pending while one is untrained: nothing below runs
        return AttributionFigure(
            carrying(job, dictionaries),
            carrying(weights, dictionaries) if weights else None,
            ctx.featurevis_settings(info),
            request.predict,
            at.line,
            at.options["label"],
            dictionaries,
        )

    def follow_up(self, figure: AttributionFigure, ctx: FollowUpContext) -> AttributionFigure:
        """Once the attribution exists: its nodes' feature visualizations, its completeness
        checked, and the ablation that checks its prediction; once that exists, the prediction."""
        if not ctx.done(figure.job):
            return figure
        job, result = figure.job, ctx.result(figure.job)
        if not figure.nodes:
            _check(figure, result, ctx)
            refs = [UnitRef(s.layer, u) for s in result.stages for u in s.units] + [
                UnitRef(job.layer, job.unit)
            ]
            shown = tuple(
                (
                    str(ref),
                    carrying(
                        featurevis_job(job.model, job.fingerprint, ref, figure.settings), figure.dictionaries
                    ),
                )
                for ref in dict.fromkeys(refs)
            )
            ablation = _ablation(figure, result) if figure.predict else None
            return replace(figure, nodes=shown, ablation=ablation)
        if figure.ablation is not None and not figure.changes and ctx.done(figure.ablation):
            outcome = ctx.result(figure.ablation)
            before, after = list(outcome.before), list(outcome.after)
            changes = tuple(predicted.change(before, after) for predicted in figure.predict)
            edited = f"zeroing the edges from {_units(result.stages[-1])} into {job.layer}:{job.unit}"
            for predicted, change in zip(figure.predict, changes, strict=True):
                if not predicted.holds(change):
                    mean_before, mean_after = predicted.means(before, after)
                    ctx.warning(
                        figure.line,
                        f"prediction failed: '{predicted.text}', but {edited} changed it by "
                        f"{percent(change)} ({mean_before:.3g} → {mean_after:.3g}, mean over the inputs)",
                        Code.PREDICTION,
                    )
            return replace(figure, changes=changes)
        return figure

    def value(self, figure: AttributionFigure, field: str, ctx: FollowUpContext) -> Quantity | None:
        if not ctx.done(figure.job):
            return None
        if field == "ablation":
            if figure.ablation is None:
                raise ValueError("the figure has no :predict:, so nothing is ablated")
            if not ctx.done(figure.ablation):
                return None
            effect = ctx.result(figure.ablation).effect
            return Quantity(minus(percent(effect)), effect)
        job, stage = figure.job, ctx.result(figure.job).stages[-1]
        whole = stage.change if job.method == "integrated" else stage.total
        if field == "error":
            return Quantity(f"{stage.error:.1%}", stage.error)
        if field in ("change", "carried"):
            number = whole if field == "change" else sum(stage.values)
            return Quantity(_signed(number), number)
        share = sum(stage.values) / whole if whole else 0.0
        return Quantity(minus(f"{share:.0%}"), share)

    def unit_value(
        self, figure: AttributionFigure, field: str, unit: str, ctx: FollowUpContext
    ) -> Quantity | None:
        """An input unit's attribution (mean, lowest, highest over the inputs) or rank, read
        from every unit's numbers in `attribution.npz` (the layer before the target)."""
        if field not in PER_UNIT:
            raise ValueError(f"{field} is the figure's, not an input unit's; drop 'of {unit}'")
        if not ctx.done(figure.job):
            return None
        last = len(figure.job.stages) - 1
        layer, _, number = unit.rpartition(":")
        stage_layer = ctx.result(figure.job).stages[-1].layer
        if not ctx.same_layer(figure.job.fingerprint, layer, stage_layer):
            raise ValueError(f"the figure attributes to {stage_layer}, not {layer}")
        summary = ctx.derived(
            figure.job, "per-unit", lambda: _per_unit(ctx.file(figure.job, "attribution.npz"), last)
        )
        chosen = int(number)
        if chosen >= len(summary["mean"]):
            raise ValueError(f"{stage_layer} has {len(summary['mean'])} units, not {chosen + 1}")
        if field == "weight-rank":
            if figure.weights is None:
                raise ValueError(
                    "no fixed weights join the layer to the unit (attention), so nothing ranks them"
                )
            if not ctx.done(figure.weights):
                return None
            norms = np.asarray(ctx.kernel_norms(figure.weights))
            rank = 1 + int(np.sum(norms > norms[chosen]))
            return Quantity(ordinal(rank), rank)
        if field == "rank":
            sizes = np.abs(np.asarray(summary["mean"]))
            rank = 1 + int(np.sum(sizes > sizes[chosen]))
            return Quantity(ordinal(rank), rank)
        found = summary[{"attribution": "mean", "lowest": "low", "highest": "high"}[field]][chosen]
        return Quantity(_signed(found), found)

    def render(self, figure: AttributionFigure, ctx: RenderContext) -> Rendered:
        job, result = figure.job, ctx.result(figure.job)
        graph = self._graph(figure, ctx)
        key = (
            '<p class="circuit-key">Edge width: the size of the attribution. '
            '<span class="key-positive">Red</span>: it raises the target; '
            '<span class="key-negative">blue, dashed</span>: it lowers it.</p>'
        )
        parts = [
            f'<div class="circuit">{circuit_svg(graph)}<div class="circuit-scales">{key}</div></div>',
            _carried(job, result),
            _ranking(figure, result, ctx),
            _maps(job, result, ctx),
            *_predictions(figure),
        ]
        return ctx.rendered(ctx.figure("".join(parts), "attribution-figure", _note(job, result)))

    def graph(self, figure: AttributionFigure, ctx: RenderContext) -> dict:
        job = figure.job
        return self._graph(figure, ctx).json(
            {"kind": self.name, "method": job.method, "steps": job.steps, "reference": job.reference}
        )

    def _graph(self, figure: AttributionFigure, ctx: RenderContext) -> Graph:
        job, result = figure.job, ctx.result(figure.job)
        target = f"{job.layer}:{job.unit}"
        rows = [[f"{s.layer}:{u}" for u in s.units] for s in result.stages] + [[target]]
        shown = nodes(ctx, figure.nodes)
        anchor = figure.label or f"attribution-{job.key[:8]}"
        pairs = []  # (source, target, attribution, the target's own attribution)
        for before, stage in zip(result.stages, result.stages[1:], strict=False):
            for i, source in enumerate(before.units):
                for j, unit in enumerate(stage.units):
                    pairs.append(
                        (
                            f"{before.layer}:{source}",
                            f"{stage.layer}:{unit}",
                            stage.edges[i][j],
                            stage.values[j],
                        )
                    )
        last = result.stages[-1]
        whole = last.change if job.method == "integrated" else last.total
        for unit, value in zip(last.units, last.values, strict=True):
            pairs.append((f"{last.layer}:{unit}", target, value, whole))
        edges = []
        for source, into, value, of in pairs:
            card = card_anchor(anchor, source, into)
            portion = f" ({value / of:.0%} of {into}'s)" if of else ""
            ctx.card(
                card,
                f"<p><code>{escape(source)}</code> → <code>{escape(into)}</code>: attribution "
                f"{_signed(value)}{escape(portion)}</p>",
            )
            title = f"{source} → {into}: attribution {_signed(value)}{portion}"
            edges.append(Edge(source, into, abs(value), value >= 0, title, card, data={"attribution": value}))
        method = "integrated gradients" if job.method == "integrated" else "activation × gradient"
        return Graph(job.model, rows, shown, edges, f"{method} attribution", "the size of the attribution")


def _image_files(written: str, line: int, ctx: CheckContext) -> tuple[tuple[ImageFile, str], ...] | None:
    """`:on:` as image files: each inside the articles folder, a picture by its content that
    decodes; None after an error."""
    from PIL import Image  # here: a build that names no image file never loads it

    files = []
    for name in filter(None, (part.strip() for part in written.split(","))):
        if not any(mark in name for mark in "./\\") and "," not in written:  # a word, not a file
            ctx.error(
                line,
                f"bad value for ':on:': '{name}' is not one of {', '.join(PROBES)}{suggest(name, PROBES)}, "
                "nor an image file",
            )
            return None
        try:
            path = safety.image_inside(ctx.folder, name, ctx.roots)
            data = path.read_bytes()
        except ValueError as exc:
            ctx.error(line, f"bad value for ':on:': {exc}")
            return None
        kind = safety.image_kind(data[:4096])
        if kind not in RASTER:
            ctx.error(line, f"bad value for ':on:': '{name}' is an {kind}, a drawing; export it as a PNG")
            return None
        try:
            with Image.open(io.BytesIO(data)) as picture:
                picture.load()
        except Exception as exc:  # PIL raises many kinds for a damaged file
            ctx.error(line, f"bad value for ':on:': '{name}' does not decode as an image ({exc})")
            return None
        files.append((ImageFile(name, hashlib.sha256(data).hexdigest()), str(path)))
    if not files:
        ctx.error(line, f"bad value for ':on:': write one of {', '.join(PROBES)}, or image files")
        return None
    return tuple(files)


def _resolved(info: ModelInfo, stages: tuple[Stage, ...], target: UnitRef) -> tuple[AttributionStage, ...]:
    """The stages with canonical layer names and units in range, each before the next and the
    last before the target; ModelError otherwise."""
    resolved = []
    for written in stages:
        layer = info.layer(written.layer).name
        units = written.units
        if units is not None:
            units = tuple(r.unit for r in info.check_units([UnitRef(layer, u) for u in units]))
        resolved.append(AttributionStage(layer, units))
    later = [*(stage.layer for stage in resolved[1:]), target.layer]
    for stage, after in zip(resolved, later, strict=True):
        info.check_order(stage.layer, after)
    return tuple(resolved)


def _check(figure: AttributionFigure, result: AttributionResult, ctx: FollowUpContext) -> None:
    """Completeness (integrated gradients), and layers that carry nothing of the target."""
    job = figure.job
    for stage in result.stages:
        if all(value == 0 for value in stage.ranked):
            ctx.warning(
                figure.line,
                f"no unit of {stage.layer} carries any of {job.layer}:{job.unit}'s activation on these "
                f"inputs: {job.layer}:{job.unit} does not read {stage.layer} (another branch?)",
            )
        elif job.method == "integrated" and stage.error > job.tolerance:
            ctx.warning(
                figure.line,
                f"incomplete attribution: the attributions of {stage.layer}'s units sum to "
                f"{_signed(stage.total)}, but {job.layer}:{job.unit} changes by {_signed(stage.change)} "
                f"from the {job.reference} image through {stage.layer} (error {stage.error:.1%}, tolerance "
                f"{job.tolerance:.0%}); raise :steps: (now {job.steps}) or :tolerance:",
                Code.PREDICTION,
            )


def _ablation(figure: AttributionFigure, result: AttributionResult) -> AblationJob:
    """The ablation that checks :predict:: the edges drawn into the target zeroed, on the same
    inputs."""
    job, last = figure.job, result.stages[-1]
    ablation = AblationJob(
        job.model,
        job.fingerprint,
        job.layer,
        job.unit,
        (Edit(last.layer, last.units),),
        job.probe,
        dataset=job.dataset,
        top=job.top,
        sweep=job.sweep,
        settings=job.settings,
        files=job.files,
        paths=job.paths,
    )
    return carrying(ablation, figure.dictionaries)


def _units(stage) -> str:
    return f"{stage.layer}:{','.join(map(str, stage.units))}"


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "") + number(value)


def _carried(job: AttributionJob, result: AttributionResult) -> str:
    """The share of the target's activation the drawn units of each layer carry, and the
    completeness of integrated gradients."""
    lines = []
    target = f"<code>{escape(job.layer)}:{job.unit}</code>"
    for stage in reversed(result.stages):
        drawn = sum(stage.values)
        everything = f"all {stage.size} units"
        layer = f"<code>{escape(stage.layer)}</code>"
        if job.method == "integrated":
            whole = stage.change
            of = f"the change of {target} from the {job.reference} image through {layer}"
        else:
            whole = stage.total
            of = f"the attribution of {everything} of {layer} to {target}"
        portion = f" ({drawn / whole:.0%})" if whole else ""
        line = (
            f"The {plural(len(stage.units), 'unit')} drawn of {layer} carry {_signed(drawn)} of {of}, "
            f"{_signed(whole)}{portion}."
        )
        if job.method == "integrated":
            verdict = "within" if stage.error <= job.tolerance else "beyond"
            line += (
                f" Completeness: {everything} sum to {_signed(stage.total)}, an error of "
                f"{stage.error:.1%} ({verdict} the {job.tolerance:.0%} tolerance)."
            )
        lines.append(f"<p>{line}</p>")
    return f'<div class="attribution-summary">{"".join(lines)}</div>'


PER_UNIT = ("attribution", "lowest", "highest", "rank", "weight-rank")


def _per_unit(path: Path, stage: int) -> dict[str, list[float]]:
    """Each unit of a stage: its attribution's mean, lowest and highest over the inputs."""
    every = np.load(path)[f"all_{stage}"].astype(np.float64)  # [inputs, units]
    return {
        "mean": every.mean(axis=0).tolist(),
        "low": every.min(axis=0).tolist(),
        "high": every.max(axis=0).tolist(),
    }


def _ranking(figure: AttributionFigure, result: AttributionResult, ctx: RenderContext) -> str:
    """The last stage's units as the attribution ranks them beside the weights' ranking."""
    last = result.stages[-1]
    rank = {unit: index + 1 for index, unit in enumerate(last.ranking)}
    value = {
        **dict(zip(last.ranking, last.ranked, strict=True)),
        **dict(zip(last.units, last.values, strict=True)),
    }
    by_weight: dict[int, int] = {}
    if figure.weights is not None:
        norms = kernels.norms(ctx.kernels(figure.weights)).tolist()
        order = sorted(range(len(norms)), key=lambda unit: -norms[unit])
        by_weight = {unit: index + 1 for index, unit in enumerate(order)}
    top = len(last.units)
    listed = list(dict.fromkeys([*last.units, *(u for u, r in by_weight.items() if r <= top)]))
    rows = []
    for unit in listed:
        attribution = f"{_signed(value[unit])}" if unit in value else "—"
        by_attribution = str(rank[unit]) if unit in rank else f"> {len(last.ranking)}"
        weight = str(by_weight[unit]) if by_weight else "—"
        disagree = (
            " disagree" if by_weight and (unit in last.units) != (by_weight.get(unit, top + 1) <= top) else ""
        )
        rows.append(
            f'<tr class="rank-row{disagree}"><td><code>{escape(last.layer)}:{unit}</code></td>'
            f"<td>{attribution}</td><td>{by_attribution}</td><td>{weight}</td></tr>"
        )
    caption = (
        f"<code>{escape(last.layer)}</code>'s units by attribution and by the L2 norm of their "
        f"expanded weights into <code>{escape(figure.job.layer)}:{figure.job.unit}</code>; "
        "highlighted: drawn by one, not the other"
        if by_weight
        else f"<code>{escape(last.layer)}</code>'s units by attribution (no fixed weights join "
        f"<code>{escape(last.layer)}</code> to the target: attention mixes tokens by their content)"
    )
    return (
        f'<table class="attribution-ranking"><caption>{caption}</caption><thead><tr><th>unit</th>'
        "<th>attribution</th><th>rank</th><th>rank by weight</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _maps(job: AttributionJob, result: AttributionResult, ctx: RenderContext) -> str:
    """For each input: the input and where the target's attribution lies on it, then, stage by
    stage from the target back, where each drawn unit's does, as heatmaps over the input."""
    target = f"{job.layer}:{job.unit}"
    last = result.stages[-1]
    order = list(range(len(result.labels)))
    if job.probe == "tuning":  # a sweep in its order: show the stimuli it answers most first
        order.sort(key=lambda i: -result.activation[i])
    blocks = []
    for index in order:
        image = ctx.file_url(job, result.images[index])
        heats = iter(zip(result.maps[index], result.scales[index], strict=True))
        name = _label(result.labels[index], job.sweep)
        first = [
            f'<div class="attribution-map"><img src="{escape(image)}" alt="input {escape(name)}">'
            f'<span class="map-caption">input {escape(name)}</span></div>',
            _heat(
                ctx, job, image, next(heats), f"{target} through {last.layer}", _signed(last.totals[index])
            ),
        ]
        rows = [f'<div class="map-row">{"".join(first)}</div>']
        stage_rows = []
        for stage in result.stages:
            cells = [
                _heat(ctx, job, image, next(heats), f"{stage.layer}:{unit}", _signed(value))
                for unit, value in zip(stage.units, stage.per_input[index], strict=True)
            ]
            stage_rows.append(
                f'<p class="map-title"><code>{escape(stage.layer)}</code></p>'
                f'<div class="map-row">{"".join(cells)}</div>'
            )
        rows += reversed(stage_rows)  # the target's own inputs first
        blocks.append(
            f'<div class="attribution-input"><p class="map-title">Input {escape(name)}: '
            f"<code>{escape(target)}</code> peaks at {number(result.activation[index])}</p>"
            f"{''.join(rows)}</div>"
        )
    shown, rest = blocks[:SHOWN_INPUTS], blocks[SHOWN_INPUTS:]
    more = (
        f"<details><summary>Maps on the other {plural(len(rest), 'input')}</summary>{''.join(rest)}</details>"
        if rest
        else ""
    )
    key = (
        '<p class="circuit-key">Where on each input the attribution lies, at each layer\'s resolution: '
        '<span class="key-positive">red</span> raises the target, <span class="key-negative">blue</span> '
        "lowers it, each map on its own scale; under each, its sum.</p>"
    )
    return f'<div class="attribution-maps">{key}{"".join(shown)}{more}</div>'


def _heat(
    ctx: RenderContext, job: AttributionJob, image: str, heat: tuple[str, float], name: str, total: str
) -> str:
    """One map: the input with the attribution's heatmap over it, and its name and sum."""
    overlay, scale = ctx.file_url(job, heat[0]), heat[1]
    return (
        f'<div class="attribution-map"><div class="map-stack"><img src="{escape(image)}" alt="">'
        f'<img class="map-heat" src="{escape(overlay)}" alt="attribution of {escape(name)} on this input, '
        f'at most {escape(number(scale))} at a position"></div>'
        f'<span class="map-caption"><code>{escape(name)}</code> {escape(total)}</span></div>'
    )


def _label(label: int | float | str, sweep: Sweep | None) -> str:
    """An input as a reader knows it: a probe image's number, a stimulus's value, a file."""
    if isinstance(label, float) and sweep is not None:
        return f"{sweep.param} {label:g}{'°' if sweep.param == probes.PERIODIC else ''}"
    return f"#{label}" if isinstance(label, int) else str(label)


def _predictions(figure: AttributionFigure) -> list[str]:
    lines = []
    for predicted, change in zip(figure.predict, figure.changes, strict=False):
        held = predicted.holds(change)
        verdict, mark = ("held", "✓ held") if held else ("failed", "✗ failed")
        lines.append(
            f'<p class="prediction prediction-{verdict}" title="{escape(predicted.text)}">'
            "Prediction: zeroing the edges drawn into the target, "
            f"<strong>{escape(predicted.prose())}</strong> "
            f"(measured {escape(percent(change))}) — {mark}.</p>"
        )
    return lines


def _note(job: AttributionJob, result: AttributionResult) -> str:
    if job.method == "integrated":
        how = f"Integrated gradients from a {job.reference} image ({job.steps} steps)"
    else:
        how = "Activation × gradient"
    inputs = {
        "examples": f"the target's {plural(len(result.labels), 'strongest probe image')}",
        "tuning": f"{plural(len(result.labels), 'stimulus', 'stimuli')}",
        "featurevis": "its feature visualization",
        "images": plural(len(result.labels), "image file"),
    }[job.probe]
    return (
        f"{how} over {inputs}, averaged; the target is the unit's peak over positions. An edge "
        "into an inner unit is the attribution of that unit's share of the target."
    )
