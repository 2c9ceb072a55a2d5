"""{unit}`mixed3:5`: an inline chip with the unit's thumbnail and a hover card.

The image is the unit's default feature visualization on the article's model: the same job,
and so the same cached artifact, as a {featurevis} of that unit with default options.
"""

from __future__ import annotations

from html import escape

from distillgen.figures import role
from distillgen.figures.base import RoleKind
from distillgen.figures.unitview import (
    article_defaults,
    featurevis_job,
    image_html,
    page_href,
    settings_for,
    unit_card,
)
from distillgen.units import ModelError, SpecError, parse_units

CHIP = 20  # CSS pixels: the height of a line of text


@role
class Unit(RoleKind):
    name = "unit"
    doc = "A unit of the article's model, shown inline with its feature visualization."

    def check(self, role, article) -> None:
        article_defaults(article)
        try:
            units = parse_units(role.content)
        except SpecError as exc:
            article.error(role.line, f"{{unit}}: {exc}")
            return
        if len(units) != 1:
            article.error(
                role.line, f"{{unit}} names one unit, not {len(units)}; use {{featurevis}} for several"
            )
            return
        spec = article.model_spec(None, role.line)
        if spec is not None:
            role.data.update(spec=spec, unit=units[0])

    def plan(self, role, article) -> None:
        info = article.model_info(role.data["spec"], role.line)
        if info is None:
            return
        try:
            (unit,) = info.check_units([role.data["unit"]])
        except ModelError as exc:
            article.error(role.line, str(exc))
            return
        settings = settings_for(info, {}, article_defaults(article))
        role.data["job"] = featurevis_job(role.data["spec"], info, unit, settings)
        article.need(role.data["job"], role.line)

    def render(self, role, article) -> str:
        job = role.data["job"]
        anchor = unit_card(article, job, role.content.strip())
        img = image_html(article, job, 0, CHIP, "")
        return (
            f'<a class="unit-chip" href="{escape(page_href(job))}" data-hover-ref="{anchor}">{img}'
            f"<code>{escape(role.content.strip())}</code></a>"
        )
