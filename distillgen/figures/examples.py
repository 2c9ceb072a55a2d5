"""{examples} mixed4:52: the probe images that excite a unit most (and, with :negative:, least),
each whole with a box around the unit's peak and as the crop of its receptive field there."""

from __future__ import annotations

from html import escape

from distillgen.figures import directive, probes
from distillgen.figures.base import DirectiveKind
from distillgen.figures.figure import figure_html
from distillgen.figures.options import LABEL, LAYOUT, MODEL, Option, boolean, integer
from distillgen.jobs import ExamplesJob
from distillgen.units import ModelError, SpecError, parse_units

SHOWN = 96  # CSS pixels of each image


@directive
class Examples(DirectiveKind):
    name = "examples"
    doc = "Dataset examples: the images that excite a unit most, and where."
    arguments = "one unit, e.g. mixed4:52"
    options = (
        LABEL,
        LAYOUT,
        MODEL,
        *probes.DATASET_OPTIONS,
        Option("top", integer(1, 64), 8, "how many examples"),
        Option("negative", boolean, False, "also show the images that excite it least"),
    )
    numbered = True

    def check(self, directive, article) -> None:
        try:
            units = parse_units(directive.args)
        except SpecError as exc:
            article.error(directive.line, str(exc))
            return
        if len(units) != 1:
            article.error(directive.line, f"{{examples}} is about one unit, not {len(units)}")
            return
        spec = article.model_spec(directive.opts["model"], directive.option_line("model"))
        dataset = probes.dataset(directive, article)
        if spec is not None and dataset is not None:
            directive.data.update(spec=spec, unit=units[0], dataset=dataset)

    def plan(self, directive, article) -> None:
        data, opts = directive.data, directive.opts
        info = article.model_info(data["spec"], directive.option_line("model"))
        if info is None:
            return
        try:
            (unit,) = info.check_units([data["unit"]])
        except ModelError as exc:
            article.error(directive.line, str(exc))
            return
        data["jobs"] = [
            ExamplesJob(
                str(data["spec"]),
                info.fingerprint,
                unit.layer,
                unit.unit,
                data["dataset"],
                opts["top"],
                negative,
            )
            for negative in (False, True)[: 1 + opts["negative"]]
        ]
        for job in data["jobs"]:
            article.need(job, directive.line)

    def render(self, directive, article) -> str:
        rows = []
        for job in directive.data["jobs"]:
            artifact = article.artifact(job)
            result = artifact.record["result"]
            what = "least" if job.negative else "most"
            cells = "".join(_example(article, artifact, item, result) for item in result["examples"])
            rows.append(
                f'<p class="examples-heading">The {len(result["examples"])} of {result["probe_size"]} '
                f"images that excite <code>{escape(job.address)}</code> {what}</p>"
                f'<div class="examples-grid">{cells}</div>'
            )
        return figure_html(
            directive, article, f'<div class="examples">{"".join(rows)}</div>', "examples-figure"
        )


def _example(article, artifact, item: dict, result: dict) -> str:
    whole = article.artifact_url(artifact, item["image"])
    crop = article.artifact_url(artifact, item["crop"])
    x0, y0, x1, y1 = item["box"]
    side, size = result["receptive_field"], result["image_size"]
    box = (
        f'<svg class="example-whole" viewBox="0 0 {size} {size}" width="{SHOWN}" height="{SHOWN}" role="img">'
        f"<title>dataset image {item['index']}; the box ({side} px) holds 90% of the unit's input "
        "gradient at its peak</title>"
        f'<image href="{escape(whole)}" width="{size}" height="{size}"/>'
        f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" class="example-box" fill="none" '
        'stroke="#ff3b30" stroke-width="1.5"/></svg>'
    )
    return (
        f'<div class="example">{box}<img class="example-crop" src="{escape(crop)}" width="{SHOWN}" '
        f'height="{SHOWN}" alt="the crop of image {item["index"]} around the peak" loading="lazy">'
        f'<span class="example-value">{item["value"]:.3g}</span></div>'
    )
