"""Shared by the kinds that show units: featurevis jobs with an article's defaults, the hover
card of a rendered unit (larger image, address, model, objective value), and where its unit
page lives."""

from __future__ import annotations

import hashlib
import re
from dataclasses import fields
from html import escape
from pathlib import Path

from distillgen.diagnostics import suggest
from distillgen.figures.options import Option, boolean, choice, integer, number
from distillgen.jobs import FeatureVisJob, FeatureVisSettings
from distillgen.units import ModelInfo, ModelSpec, UnitRef

THUMBNAIL = 96  # CSS pixels of a unit in a grid
CARD = 224  # CSS pixels of a unit in its hover card


# Options that set FeatureVisSettings: a {featurevis} option each, and keys of the front
# matter's `featurevis:` mapping, which sets them for the whole article.
SETTINGS = (
    Option("steps", integer(1, 10000), 512, "optimizer steps"),
    Option("size", integer(16, 512), None, "image side in pixels (default: the model's, at most 128)"),
    Option("lr", number(0, 10), 0.05, "Adam learning rate"),
    Option("seed", integer(0, 2**31 - 1), 0, "random seed of the initial image and transforms"),
    Option("fft", boolean, True, "parameterize the image in Fourier space (lucent's fft)"),
    Option("decorrelate", boolean, True, "decorrelate colours (lucent's decorrelate)"),
    Option("transforms", choice("standard", "none"), "standard", "lucent's standard transforms, or none"),
)
assert {o.name for o in SETTINGS} == {f.name for f in fields(FeatureVisSettings)}


def article_defaults(article) -> dict:
    """The front matter's `featurevis:` settings, parsed once per article."""
    if "featurevis" not in article.shared:
        declared = {option.name: option for option in SETTINGS}
        values = {}
        for name, (raw, line) in article.front.featurevis.items():
            if name not in declared:
                article.error(
                    line,
                    f"unknown key 'featurevis.{name}'{suggest(name, declared)}; known: {', '.join(declared)}",
                )
                continue
            try:
                values[name] = declared[name].parse(raw)
            except ValueError as exc:
                article.error(line, f"bad value for 'featurevis.{name}': {exc}")
        article.shared["featurevis"] = values
    return article.shared["featurevis"]


def settings_for(info: ModelInfo, given: dict, defaults: dict) -> FeatureVisSettings:
    """A figure's own options, else the article's, else the built-in defaults."""
    chosen = {
        option.name: given.get(option.name, defaults.get(option.name, option.default)) for option in SETTINGS
    }
    chosen["size"] = chosen["size"] or min(info.input_size, 128)  # lucent's 128 at most: quick builds
    return FeatureVisSettings(**chosen)


def featurevis_job(
    spec: ModelSpec, info: ModelInfo, unit: UnitRef, settings: FeatureVisSettings, **extra
) -> FeatureVisJob:
    return FeatureVisJob(str(spec), info.fingerprint, unit.layer, unit.unit, settings=settings, **extra)


def card_anchor(job: FeatureVisJob, image: int = 0) -> str:
    return f"unit-{job.key[:12]}-{image}"


def image_html(article, job: FeatureVisJob, image: int, size: int, alt: str) -> str:
    artifact = article.artifact(job)
    url = article.artifact_url(artifact, artifact.record["result"]["images"][image])
    return f'<img src="{escape(url)}" width="{size}" height="{size}" alt="{escape(alt)}">'


def unit_card(article, job: FeatureVisJob, label: str, image: int = 0) -> str:
    """Register the unit's hover card on the page; returns its anchor for data-hover-ref."""
    anchor = card_anchor(job, image)
    value = article.artifact(job).record["result"]["values"][image]
    objective = "activation" if job.objective == "channel" else f"{job.objective} objective"
    img = image_html(article, job, image, CARD, f"feature visualization of {label}").replace(
        "<img ", '<img loading="lazy" ', 1
    )
    article.card(
        anchor,
        f'{img}<p class="unit-card-address"><code>{escape(label)}</code> · {escape(job.model)}</p>'
        f'<p class="unit-card-value">{objective} {value:.3g} after {job.settings.steps} steps</p>',
    )
    return anchor


def comes_before(article, line: int, info: ModelInfo, source: str, target: str) -> bool:
    """Whether layer `source` runs before `target`; an error at `line` when it does not."""
    order = list(info.layers)
    if order.index(source) < order.index(target):
        return True
    article.error(line, f"'{source}' does not come before '{target}' in the network")
    return False


def page_href(job) -> str | None:
    """The unit page of a featurevis job's unit, relative to an article page (or None)."""
    return "../" + unit_page_path(job.model, job.layer, job.unit) if links_to_page(job) else None


def unit_page_path(model: str, layer: str, unit: int) -> str:
    """The page's path inside the site."""
    return f"units/{model_folder(model)}/{layer}/{unit}.html"


def model_folder(model: str) -> str:
    if re.fullmatch(r"[\w@.:-]+", model):
        return model.replace(":", "-")
    digest = hashlib.sha256(model.encode()).hexdigest()[:8]  # file specs: absolute paths
    return f"{re.sub(r'[^A-Za-z0-9]+', '-', Path(model.split(':')[0]).stem)}-{digest}"


def links_to_page(job) -> bool:
    """Featurevis jobs that show one unit as itself get a page (not negatives, directions)."""
    return isinstance(job, FeatureVisJob) and job.objective == "channel" and not job.diversity
