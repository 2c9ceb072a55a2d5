"""{note} / {aside}: a margin note in the gutter (inline on narrow screens)."""

from __future__ import annotations

from distillgen.figures.base import DirectiveInput, DirectiveKind, Rendered
from distillgen.figures.context import CheckContext, RenderContext


class Note(DirectiveKind):
    name = "note"
    doc = "A margin note beside the paragraph before it; its body is Markdown."

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> DirectiveInput:
        if not directive.body:
            ctx.warning(directive.line, f"{{{directive.kind}}} is empty")
        return directive

    def render(self, directive: DirectiveInput, ctx: RenderContext) -> Rendered:
        return ctx.rendered(f'<aside class="l-gutter">{ctx.markdown(directive.body_tokens)}</aside>')


class Aside(Note):
    name = "aside"
    doc = "Same as {note}."
