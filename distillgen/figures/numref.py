"""{numref}`label`: a link that reads "Figure 2"; `Fig. %s <label>` sets the text."""

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

    def check(self, role: Role, ctx: CheckContext) -> Reference:
        match = _EXPLICIT.match(role.content.strip())
        text, label = (match["text"], match["label"].strip()) if match else (None, role.content.strip())
        ctx.want(label, role.line, f"{{{role.name}}}`{role.content}`")
        return Reference(role.content, label, text)

    def render(self, reference: Reference, ctx: RenderContext) -> Rendered:
        target = ctx.target(reference.label)
        if target is None:
            return ctx.rendered(escape(reference.written))
        shown = target.text
        if reference.text:
            number = target.text.split()[-1]
            shown = reference.text.replace("%s", number) if "%s" in reference.text else reference.text
        return ctx.rendered(f'<a class="figure-ref" href="#{escape(target.anchor)}">{escape(shown)}</a>')


class Ref(NumRef):
    name = "ref"
    doc = "Same as {numref}."
