"""{featurevis} mixed3:0-7: a grid of feature visualizations, one per unit, with hover cards."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from html import escape

from distillgen.diagnostics import Code
from distillgen.faithful import Check, measures_of
from distillgen.figures import probes
from distillgen.figures.base import DirectiveInput, DirectiveKind, Rendered
from distillgen.figures.context import CheckContext, FollowUpContext, PlanContext, RenderContext
from distillgen.figures.unitview import THUMBNAIL, featurevis_job, image_html, page_href, unit_card
from distillgen.jobs import OBJECTIVES, Dataset, ExamplesJob, FaithfulnessJob, FeatureVisJob
from distillgen.options import CHECK, FEATUREVIS_SETTINGS, MODEL, Argument, Option, choice, integer
from distillgen.render.words import plural
from distillgen.units import ModelSpec, SpecError, UnitRef, is_layer_name, parse_units

_PAIR = re.compile(r"^\s*(\d+)\s*:\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def direction(value: str) -> tuple[tuple[int, float], ...]:
    """`3: 1, 7: -0.5`: weights of channels (the others are 0)."""
    pairs = []
    for item in value.split(","):
        match = _PAIR.match(item)
        if not match:
            raise ValueError(f"'{item.strip()}' is not channel: weight; write e.g. '3: 1, 7: -0.5'")
        pairs.append((int(match[1]), float(match[2])))
    if not any(weight for _, weight in pairs):
        raise ValueError("the direction is zero")
    return tuple(pairs)


@dataclass(frozen=True)
class FeatureVisRequest:
    spec: ModelSpec
    units: tuple[UnitRef, ...]  # for a direction: its layer, as unit 0
    objective: str
    direction: tuple[tuple[int, float], ...] | None
    diversity: int
    settings: tuple[tuple[str, object], ...]  # the settings options the author wrote
    columns: int | None
    directive: DirectiveInput  # where it is written, for errors at plan time
    checks: tuple[Check, ...] = ()  # what every image must meet (faithful.py)
    examples: int = 0  # natural images under each unit's
    dataset: Dataset | None = None  # what its images are measured on, and its examples from


@dataclass(frozen=True)
class FeatureVisGrid:
    images: tuple[FeatureVisJob, ...]
    measures: tuple[FaithfulnessJob | None, ...]  # each image's (None: a direction)
    examples: tuple[ExamplesJob | None, ...]  # each image's natural ones (:examples:)
    columns: int | None
    checks: tuple[Check, ...] = ()
    line: int = 0
    failed: frozenset[str] = frozenset()  # the images (by key) that failed a check
    checked: bool = False

    @property
    def jobs(self) -> tuple:
        extra = (job for job in (*self.measures, *self.examples) if job is not None)
        return (*self.images, *extra)


class FeatureVis(DirectiveKind):
    name = "featurevis"
    doc = "Feature visualizations of units: images optimized to excite each one."
    argument = Argument("unit addresses such as mixed3:0-7,conv2:3 (a layer name for :objective: direction)")
    options = (
        MODEL,
        Option("objective", choice(*OBJECTIVES), "channel", "what to maximize for each unit"),
        Option("direction", direction, None, "for :objective: direction: 'channel: weight, …'"),
        Option("diversity", integer(2, 16), None, "optimize this many images per unit, pushed apart"),
        *FEATUREVIS_SETTINGS,
        CHECK,
        Option("examples", integer(1, 16), None, "show each unit's N strongest probe images under its image"),
        *probes.DATASET_OPTIONS,
        Option("columns", integer(1, 16), None, "units per row (default: as many as fit)"),
    )
    numbered = True

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> FeatureVisRequest | None:
        opts = directive.options
        if opts["objective"] == "direction":
            if opts["direction"] is None:
                ctx.error(directive.line, "{featurevis} with :objective: direction needs :direction:")
                return None
            if not is_layer_name(directive.argument):
                ctx.error(
                    directive.line,
                    f"a direction is over one layer; write its name, not '{directive.argument}'",
                )
                return None
            units: tuple[UnitRef, ...] = (UnitRef(directive.argument, 0),)
        else:
            if opts["direction"] is not None:
                ctx.error(directive.option_line("direction"), ":direction: needs :objective: direction")
                return None
            try:
                units = tuple(parse_units(directive.argument))
            except SpecError as exc:
                ctx.error(directive.line, str(exc))
                return None
        spec = ctx.model_spec(opts["model"], directive.option_line("model"))
        if spec is None:
            return None
        given = tuple((o.name, opts[o.name]) for o in FEATUREVIS_SETTINGS if o.name in directive.given)
        # its own probe set, else the article's (`featurevis: {dataset: …}`, checked once)
        dataset = probes.dataset(directive, ctx) if probes.DATASET_NAMES & directive.given else ctx.probe()
        if dataset is None:
            return None
        checks = opts["check"] if "check" in directive.given else ctx.front.featurevis.get("check", ())
        return FeatureVisRequest(
            spec,
            units,
            opts["objective"],
            opts["direction"],
            opts["diversity"] or 0,
            given,
            opts["columns"],
            directive,
            checks,
            opts["examples"] or 0,
            dataset,
        )

    def plan(self, request: FeatureVisRequest, ctx: PlanContext) -> FeatureVisGrid | None:
        at = request.directive
        resolved = ctx.units(request.spec, request.units, at.line, at.option_line("model"))
        if resolved is None:
            return None
        info, units = resolved
        settings = ctx.featurevis_settings(info, dict(request.settings))
        fields: dict = {"objective": request.objective, "diversity": request.diversity}
        if request.objective == "direction" and request.direction is not None:  # check made sure
            layer = info.layers[units[0].layer]
            vector = [0.0] * layer.channels
            for channel, weight in request.direction:
                if channel >= layer.channels:
                    ctx.error(
                        at.option_line("direction"),
                        f"channel {channel} is out of range for '{layer.name}' (0-{layer.channels - 1})",
                    )
                    return None
                vector[channel] = weight
            units = [UnitRef(layer.name, -1)]
            fields["direction"] = tuple(vector)
        if request.objective == "neuron" and any(len(info.layers[u.layer].shape) != 3 for u in units):
            ctx.error(at.line, ":objective: neuron needs convolutional layers (with a spatial centre)")
            return None
        images = tuple(
            ctx.attach(
                featurevis_job(request.spec, info.fingerprint, unit, settings, request.dataset, **fields),
                info,
            )
            for unit in units
        )
        examples = tuple(
            ExamplesJob(
                job.model,
                job.fingerprint,
                job.layer,
                job.unit,
                request.dataset,
                request.examples,
                dictionaries=job.dictionaries,
            )
            if request.examples and request.dataset and job.objective != "direction"
            else None
            for job in images
        )
        measures = tuple(measures_of(job, request.dataset) for job in images)
        return FeatureVisGrid(images, measures, examples, request.columns, request.checks, at.line)

    def follow_up(self, grid: FeatureVisGrid, ctx: FollowUpContext) -> FeatureVisGrid:
        """Check every image as soon as its measures exist (before anything is rendered)."""
        if grid.checked or not grid.checks or not all(m is None or ctx.done(m) for m in grid.measures):
            return grid
        failed = set()
        for job, measured in zip(grid.images, grid.measures, strict=True):
            if measured is None:
                continue
            result = ctx.result(measured)
            for image in range(job.images):
                reasons = [r for check in grid.checks if (r := check.failure(result, image)) is not None]
                if reasons:
                    failed.add(job.key)
                    which = (
                        job.address if job.images == 1 else f"{job.address} (image {image + 1}/{job.images})"
                    )
                    ctx.warning(
                        grid.line,
                        f"the feature visualization of {which} fails ':check: "
                        f"{', '.join(c.text for c in grid.checks)}': {'; '.join(reasons)}; try more :steps:, "
                        "another :seed:, or :param: maco, and look at its natural examples (:examples: 8)",
                        Code.PREDICTION,
                    )
        return replace(grid, failed=frozenset(failed), checked=True)

    def render(self, grid: FeatureVisGrid, ctx: RenderContext) -> Rendered:
        cells = []
        for job, examples in zip(grid.images, grid.examples, strict=True):
            address = job.address if job.objective != "direction" else f"{job.layer} direction"
            natural = _natural(ctx, examples) if examples else ""
            failed = " check-failed" if job.key in grid.failed else ""
            for image in range(job.images):
                label = address if job.images == 1 else f"{address} ({image + 1}/{job.images})"
                anchor = unit_card(ctx, job, label, image)
                img = image_html(ctx, job, image, THUMBNAIL, f"feature visualization of {label}")
                href = page_href(job)
                tag, link = ("a", f' href="{escape(href)}"') if href else ("div", ' tabindex="0"')
                cells.append(
                    f'<{tag} class="unit-cell{failed}"{link} data-hover-ref="{anchor}">{img}'
                    f'<span class="unit-label">{escape(label)}</span>{natural}</{tag}>'
                )
        style = f' style="--columns: {grid.columns}"' if grid.columns else ""
        content = f'<div class="unit-grid"{style}>{"".join(cells)}</div>'
        note = ""
        if grid.failed:
            note = (
                f"{plural(len(grid.failed), 'image')} of {len(grid.images)} fail "
                f"{', '.join(c.text for c in grid.checks)} (outlined)."
            )
        elif grid.checks:
            note = f"Every image meets {', '.join(c.text for c in grid.checks)}."
        if any(grid.examples):
            note += " Under each image, its unit's strongest probe images."
        return ctx.rendered(ctx.figure(content, "featurevis", note.strip()))


def _natural(ctx: RenderContext, job: ExamplesJob) -> str:
    """The unit's strongest probe images (crops around its peak), in a row under its image."""
    result = ctx.result(job)
    side = max(12, THUMBNAIL // max(len(result.examples), 1) - 2)
    crops = "".join(
        f'<img src="{escape(ctx.file_url(job, item.crop))}" width="{side}" height="{side}" loading="lazy" '
        f'alt="probe image {item.index}, a natural example of {escape(job.address)}">'
        for item in result.examples
    )
    return f'<span class="natural-row">{crops}</span>'
