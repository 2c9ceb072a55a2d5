"""{examples} mixed4:52: the probe images that excite a unit most (and, with :negative:, least),
each whole with a box around the unit's peak and as the crop of its receptive field there."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from distillgen.figures import probes
from distillgen.figures.base import DirectiveInput, DirectiveKind, Rendered
from distillgen.figures.context import CheckContext, PlanContext, RenderContext
from distillgen.jobs import Dataset, Example, ExamplesJob, ExamplesResult
from distillgen.options import MODEL, Argument, Option, boolean, integer, one_unit
from distillgen.render.words import number
from distillgen.units import ModelSpec, UnitRef

SHOWN = 96  # CSS pixels of each image


@dataclass(frozen=True)
class ExamplesRequest:
    spec: ModelSpec
    unit: UnitRef
    dataset: Dataset
    top: int
    negative: bool
    directive: DirectiveInput


@dataclass(frozen=True)
class ExamplesFigure:
    jobs: tuple[ExamplesJob, ...]  # the most exciting images, then (with :negative:) the least


class Examples(DirectiveKind):
    name = "examples"
    doc = "Dataset examples: the images that excite a unit most, and where."
    argument = Argument("one unit, e.g. mixed4:52", one_unit("is about"))
    options = (
        MODEL,
        *probes.DATASET_OPTIONS,
        Option("top", integer(1, 64), 8, "how many examples"),
        Option("negative", boolean, False, "also show the images that excite it least"),
    )
    numbered = True

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> ExamplesRequest | None:
        opts = directive.options
        spec = ctx.model_spec(opts["model"], directive.option_line("model"))
        dataset = probes.dataset(directive, ctx, streamed=True)
        if spec is None or dataset is None:
            return None
        return ExamplesRequest(spec, directive.argument, dataset, opts["top"], opts["negative"], directive)

    def plan(self, request: ExamplesRequest, ctx: PlanContext) -> ExamplesFigure | None:
        at = request.directive
        resolved = ctx.units(request.spec, [request.unit], at.line, at.option_line("model"))
        if resolved is None:
            return None
        info, (unit,) = resolved
        jobs = tuple(
            ctx.attach(
                ExamplesJob(
                    str(request.spec),
                    info.fingerprint,
                    unit.layer,
                    unit.unit,
                    request.dataset,
                    request.top,
                    negative,
                ),
                info,
            )
            for negative in (False, True)[: 1 + request.negative]
        )
        return ExamplesFigure(jobs)

    def render(self, figure: ExamplesFigure, ctx: RenderContext) -> Rendered:
        rows = []
        for job in figure.jobs:
            result = ctx.result(job)
            what = "least" if job.negative else "most"
            cells = "".join(_example(ctx, job, item, result) for item in result.examples)
            rows.append(
                f'<p class="examples-heading">The {len(result.examples)} of {result.probe_size} '
                f"images that excite <code>{escape(job.address)}</code> {what}</p>"
                f'<div class="examples-grid">{cells}</div>'
            )
        content = f'<div class="examples">{"".join(rows)}</div>'
        return ctx.rendered(ctx.figure(content, "examples-figure"))


def _example(ctx: RenderContext, job: ExamplesJob, item: Example, result: ExamplesResult) -> str:
    whole = ctx.file_url(job, item.image)
    crop = ctx.file_url(job, item.crop)
    x0, y0, x1, y1 = item.box
    side, size = result.receptive_field, result.image_size
    box = (
        f'<svg class="example-whole" viewBox="0 0 {size} {size}" width="{SHOWN}" height="{SHOWN}" role="img">'
        f"<title>dataset image {item.index}; the box ({side} px) holds 90% of the unit's input "
        "gradient at its peak</title>"
        f'<image href="{escape(whole)}" width="{size}" height="{size}"/>'
        f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" class="example-box" fill="none" '
        'stroke="#ff3b30" stroke-width="1.5"/></svg>'
    )
    return (
        f'<div class="example">{box}<img class="example-crop" src="{escape(crop)}" width="{SHOWN}" '
        f'height="{SHOWN}" alt="the crop of image {item.index} around the peak" loading="lazy">'
        f'<span class="example-value">{number(item.value)}</span></div>'
    )
