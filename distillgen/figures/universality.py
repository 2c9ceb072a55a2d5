"""{universality} mixed4 with :other: shapes@1: do two networks learn the same features?

Each unit of the layer is matched to the unit of the other model's layer whose peak responses
over a probe set correlate best with its own. The figure shows the best-matched pairs side by
side (feature visualizations and r) and the distribution of best-match correlations next to a
baseline, so a reader can judge what a high r means: the same statistic against the other
architecture with random weights (`untrained`), or against the other model on the probe
images in a shuffled order (`shuffled`, where any match is chance).
"""

from __future__ import annotations

import dataclasses
from html import escape

import numpy as np

from distillgen.figures import directive, probes
from distillgen.figures.base import DirectiveKind
from distillgen.figures.figure import figure_html
from distillgen.figures.options import LABEL, LAYOUT, MODEL, Option, choice, integer, text
from distillgen.figures.unitview import (
    THUMBNAIL,
    article_defaults,
    featurevis_job,
    image_html,
    page_href,
    settings_for,
    unit_card,
)
from distillgen.jobs import UniversalityJob
from distillgen.render.plots import histograms
from distillgen.units import ModelError, SpecError, UnitRef, parse_units

_UNTRAINED_KINDS = ("shapes", "lucent", "torchvision")


@directive
class Universality(DirectiveKind):
    name = "universality"
    doc = "Match a layer's units to another model's by activation correlation, against a baseline."
    arguments = "a layer of the first model, e.g. mixed4"
    options = (
        LABEL,
        LAYOUT,
        MODEL,
        Option("other", text, None, "the second model's spec, e.g. shapes@1"),
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

    def check(self, directive, article) -> None:
        opts = directive.opts
        article_defaults(article)
        if opts["other"] is None:
            article.error(directive.line, "{universality} needs :other: (the model to compare with)")
            return
        spec = article.model_spec(opts["model"], directive.option_line("model"))
        other = article.model_spec(opts["other"], directive.option_line("other"))
        dataset = probes.dataset(directive, article)
        if None in (spec, other, dataset):
            return
        if opts["baseline"] == "untrained" and other.kind not in _UNTRAINED_KINDS:
            where = "baseline" if "baseline" in directive.options else "other"
            article.error(
                directive.option_line(where),
                f"'{other}' has no untrained variant to compare with; use ':baseline: shuffled'",
            )
            return
        directive.data.update(spec=spec, other=other, dataset=dataset)

    def plan(self, directive, article) -> None:
        data, opts = directive.data, directive.opts
        info = article.model_info(data["spec"], directive.option_line("model"))
        other = article.model_info(data["other"], directive.option_line("other"))
        if info is None or other is None:
            return
        try:
            layer = info.layer(directive.args).name
            other_layer = other.layer(opts["other-layer"] or directive.args).name
        except ModelError as exc:
            article.error(directive.line, str(exc))
            return
        baseline, baseline_fingerprint = "", ""
        if opts["baseline"] == "untrained":
            untrained = dataclasses.replace(data["other"], untrained=True)
            base_info = article.model_info(untrained, directive.option_line("baseline"))
            if base_info is None:
                return
            baseline, baseline_fingerprint = str(untrained), base_info.fingerprint
        job = UniversalityJob(
            str(data["spec"]),
            info.fingerprint,
            layer,
            str(data["other"]),
            other.fingerprint,
            other_layer,
            data["dataset"],
            opts["baseline"],
            baseline,
            baseline_fingerprint,
        )
        units = None
        if opts["units"]:
            try:
                refs = info.check_units(
                    parse_units(",".join(f"{layer}:{u.strip()}" for u in opts["units"].split(",")))
                )
            except (ModelError, SpecError) as exc:
                article.error(directive.option_line("units"), str(exc))
                return
            units = [ref.unit for ref in refs]
        data.update(job=job, info=info, other_info=other, units=units)
        article.need(job, directive.line)

    def follow_up(self, directive, article) -> None:
        """Once the matches are known, ask for the feature visualizations of the best pairs."""
        data = directive.data
        job = data.get("job")
        if job is None or job.key not in article.artifacts or "pairs" in data:
            return
        result = article.artifact(job).record["result"]
        partner, r, _ = _matching(result, directive.opts["matching"])
        ranked = np.argsort([-x if x is not None else np.inf for x in r], kind="stable")
        order = data["units"] or [u for u in ranked if r[u] is not None][: directive.opts["pairs"]]
        defaults = article_defaults(article)
        pairs = []
        for unit in order:
            mine = featurevis_job(
                data["spec"],
                data["info"],
                UnitRef(job.layer, int(unit)),
                settings_for(data["info"], {}, defaults),
            )
            article.need(mine, directive.line)
            if partner[unit] < 0:  # left over by a one-to-one matching into a smaller layer
                pairs.append((mine, None, None))
                continue
            match = UnitRef(job.other_layer, partner[unit])
            theirs = featurevis_job(
                data["other"], data["other_info"], match, settings_for(data["other_info"], {}, defaults)
            )
            pairs.append((mine, theirs, r[unit]))
            article.need(theirs, directive.line)
        data["pairs"] = pairs

    def render(self, directive, article) -> str:
        data = directive.data
        job = data["job"]
        result = article.artifact(job).record["result"]
        rows = "".join(_pair(article, mine, theirs, r) for mine, theirs, r in data["pairs"])
        matching = directive.opts["matching"]
        partner, trained, chance = _matching(result, matching)
        trained = [x for x in trained if x is not None]
        chance = [x for x in chance if x is not None]
        other_kind = "one-to-one" if matching == "best" else "best"
        other_median = np.median([x for x in _matching(result, other_kind)[1] if x is not None])
        baseline = job.baseline_model if job.baseline == "untrained" else f"{job.other}, images shuffled"
        plot = histograms(
            [(f"{job.model} vs {job.other}", trained), (f"{job.model} vs {baseline}", chance)],
            f"{matching}-match correlation",
            f"{matching.capitalize()}-match correlations of {job.layer} units, and the baseline",
        )
        samples = "every position" if result["samples"] == "positions" else "each image's peak"
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
            f'<p class="universality-summary">Units of {code["layer"]} in {code["model"]}, matched {how} '
            f"over {result['probe_size']} images ({samples}) correlate best: median r = "
            f"{np.median(trained):.2f} ({other_kind} matching: {other_median:.2f}); against the "
            f"baseline ({escape(baseline)}) median r = {np.median(chance):.2f}. The best matches go to "
            f"{len(set(result['best_unit']))} distinct units of {code['other_layer']}.</p>"
        )
        content = f'<table class="universality-pairs">{rows}</table>{summary}<div class="plot">{plot}</div>'
        return figure_html(directive, article, content, "universality-figure")


def _matching(result: dict, matching: str) -> tuple[list[int], list, list]:
    """Each unit's partner (-1: none), its r, and the baseline's r, for the chosen matching."""
    if matching == "best":
        return result["best_unit"], result["best_r"], result["baseline_best_r"]
    return result["one_to_one_unit"], result["one_to_one_r"], result["baseline_one_to_one_r"]


def _pair(article, mine, theirs, r: float | None) -> str:
    if theirs is None:
        return f'<tr>{_cell(article, mine)}<td>no partner left</td><td class="correlation"></td></tr>'
    return f'<tr>{_cell(article, mine)}{_cell(article, theirs)}<td class="correlation">r = {r:.2f}</td></tr>'


def _cell(article, job) -> str:
    address = f"{job.layer}:{job.unit}"
    anchor = unit_card(article, job, f"{address} ({job.model})")
    image = image_html(article, job, 0, THUMBNAIL, f"feature visualization of {address} in {job.model}")
    href = page_href(job)
    linked = f'<a href="{escape(href)}">{image}</a>' if href else image
    return (
        f'<td data-hover-ref="{anchor}">{linked}<br><code>{escape(address)}</code> '
        f'<span class="model-name">{escape(job.model)}</span></td>'
    )
