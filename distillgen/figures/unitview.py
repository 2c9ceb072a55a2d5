"""Shared by the kinds that show units: the featurevis job of a unit, its image and hover card
(larger image, address, model, objective value), and the link to its unit page."""

from __future__ import annotations

from html import escape

from distillgen.faithful import default_probe, sample, summary
from distillgen.figures.context import RenderContext
from distillgen.jobs import Dataset, FeatureVisJob, FeatureVisSettings
from distillgen.paths import links_to_page, unit_page_path
from distillgen.render.words import number
from distillgen.units import ModelSpec, UnitRef

THUMBNAIL = 96  # CSS pixels of a unit in a grid
CARD = 224  # CSS pixels of a unit in its hover card


def featurevis_job(
    spec: ModelSpec | str,
    fingerprint: str,
    unit: UnitRef,
    settings: FeatureVisSettings,
    probe: Dataset | None = None,
    **extra,
) -> FeatureVisJob:
    """A unit's feature visualization; MACO's keeps the magnitudes of `probe` (default: the
    default probe set)."""
    spectrum = sample(probe or default_probe()) if settings.param == "maco" else None
    return FeatureVisJob(
        str(spec), fingerprint, unit.layer, unit.unit, settings=settings, spectrum=spectrum, **extra
    )


def card_anchor(job: FeatureVisJob, image: int = 0) -> str:
    return f"unit-{job.key[:12]}-{image}"


def image_html(ctx: RenderContext, job: FeatureVisJob, image: int, size: int, alt: str) -> str:
    url = ctx.file_url(job, ctx.result(job).images[image])
    return f'<img src="{escape(url)}" width="{size}" height="{size}" alt="{escape(alt)}">'


def unit_card(ctx: RenderContext, job: FeatureVisJob, label: str, image: int = 0) -> str:
    """Add the unit's hover card to the page; returns its anchor for data-hover-ref."""
    anchor = card_anchor(job, image)
    value = ctx.result(job).values[image]
    objective = "activation" if job.objective == "channel" else f"{job.objective} objective"
    img = image_html(ctx, job, image, CARD, f"feature visualization of {label}").replace(
        "<img ", '<img loading="lazy" ', 1
    )
    measures = ctx.measures(job)
    measured = f'<p class="unit-card-measures">{escape(summary(measures, image))}</p>' if measures else ""
    ctx.card(
        anchor,
        f'{img}<p class="unit-card-address"><code>{escape(label)}</code> · {escape(job.model)}</p>'
        f'<p class="unit-card-value">{objective} {number(value)} after {job.settings.steps} steps</p>'
        f"{measured}",
    )
    return anchor


def page_href(job: FeatureVisJob) -> str | None:
    """The unit page of a featurevis job's unit, relative to an article page (or None)."""
    return "../" + unit_page_path(job.model, job.layer, job.unit) if links_to_page(job) else None
