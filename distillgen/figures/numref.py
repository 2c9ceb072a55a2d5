"""{numref}`label`: a link that reads "Figure 2"; `Fig. %s <label>` sets the text ("%s" and
"{number}" become the number, "{name}" the caption or title, as in Sphinx). {eq}`label`: "(2)"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

from distillgen.figures.base import Rendered, RoleKind
from distillgen.figures.context import CheckContext, RenderContext
from distillgen.source import Role

_EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<label>[^<>]+)>$")


@dataclass(frozen=True)
class Reference:
    written: str  # the role's content, shown as it is if the label does not resolve
    label: str
    text: str | None  # "Fig. %s": the link's own text


class NumRef(RoleKind):
    name = "numref"
    doc = "Reference a labelled figure or heading by its number or title."
    refers_to: str | None = None  # what the label must name ("Equation"); None: anything

    def check(self, role: Role, ctx: CheckContext) -> Reference:
        match = _EXPLICIT.match(role.content.strip())
        text, label = (match["text"], match["label"].strip()) if match else (None, role.content.strip())
        ctx.want(label, role.line, f"{{{role.name}}}`{role.content}`", self.refers_to)
        return Reference(role.content, label, text)

    def render(self, reference: Reference, ctx: RenderContext) -> Rendered:
        target = ctx.target(reference.label)
        if target is None:
            return ctx.rendered(escape(reference.written))
        if reference.text:
            number = str(target.number) if target.number is not None else target.text
            shown = escape(
                reference.text.replace("%s", number)
                .replace("{number}", number)
                .replace("{name}", target.title)
            )
        else:
            shown = escape(target.text) if target.counter else ctx.shown(target)
        return ctx.rendered(f'<a class="figure-ref" href="#{escape(target.anchor)}">{shown}</a>')


class Ref(NumRef):
    name = "ref"
    doc = "Same as {numref}."


class Eq(NumRef):
    name = "eq"
    doc = "Reference a labelled equation by its number: (2)."
    refers_to = "Equation"

    def render(self, reference: Reference, ctx: RenderContext) -> Rendered:
        target = ctx.target(reference.label)
        if target is None or reference.text:
            return super().render(reference, ctx)
        return ctx.rendered(f'<a class="equation-ref" href="#{escape(target.anchor)}">({target.number})</a>')
