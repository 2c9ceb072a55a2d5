"""{unit}`mixed3:5`: an inline chip with the unit's thumbnail and a hover card.

The image is the unit's default feature visualization on the article's model: the same job,
and so the same cached artifact, as a {featurevis} of that unit with default options. A unit of
another model names the model first, as a figure's `:model:` would: {unit}`shapes@1 mixed3:5`.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from distillgen.figures.base import Rendered, RoleKind
from distillgen.figures.context import CheckContext, PlanContext, RenderContext
from distillgen.figures.unitview import featurevis_job, image_html, page_href, unit_card
from distillgen.jobs import FeatureVisJob
from distillgen.options import one_unit
from distillgen.source import Role
from distillgen.units import ModelSpec, SpecError, UnitRef

CHIP = 20  # CSS pixels: the height of a line of text


@dataclass(frozen=True)
class UnitRequest:
    spec: ModelSpec
    unit: UnitRef
    written: str  # as in the text: "mixed3:5" or "shapes@1 mixed3:5"
    address: str  # the unit alone: "mixed3:5"
    line: int


@dataclass(frozen=True)
class UnitChip:
    job: FeatureVisJob
    written: str
    address: str  # the hover card names the model beside it

    @property
    def jobs(self) -> tuple[FeatureVisJob, ...]:
        return (self.job,)


class Unit(RoleKind):
    name = "unit"
    doc = (
        "A unit shown inline with its feature visualization: of the article's model, or of the model "
        "written before it (`shapes@1 mixed3:5`)."
    )

    def check(self, role: Role, ctx: CheckContext) -> UnitRequest | None:
        written = role.content.strip()
        model, _, address = written.rpartition(" ")  # "shapes@1 mixed3:5": a model, then the unit
        try:
            unit = one_unit("names")(address)
        except SpecError as exc:
            ctx.error(role.line, f"{{unit}}: {exc}")
            return None
        except ValueError as exc:  # several units
            ctx.error(role.line, str(exc).replace("{kind}", "{unit}") + "; use {featurevis} for several")
            return None
        spec = ctx.model_spec(model.strip() or None, role.line)
        return None if spec is None else UnitRequest(spec, unit, written, address.strip(), role.line)

    def plan(self, request: UnitRequest, ctx: PlanContext) -> UnitChip | None:
        resolved = ctx.units(request.spec, [request.unit], request.line, request.line)
        if resolved is None:
            return None
        info, (unit,) = resolved
        return UnitChip(
            ctx.attach(
                featurevis_job(request.spec, info.fingerprint, unit, ctx.featurevis_settings(info)), info
            ),
            request.written,
            request.address,
        )

    def render(self, chip: UnitChip, ctx: RenderContext) -> Rendered:
        anchor = unit_card(ctx, chip.job, chip.address)
        img = image_html(ctx, chip.job, 0, CHIP, "")
        href = page_href(chip.job) or ""  # a {unit} shows a channel: it has its page
        return ctx.rendered(
            f'<a class="unit-chip" href="{escape(href)}" data-hover-ref="{anchor}">{img}'
            f"<code>{escape(chip.written)}</code></a>"
        )
