"""{note} / {aside}: a margin note in the gutter (inline on narrow screens). Distill's margin
note, not MyST's boxed note: the argument, when given, is its first line (as docutils reads
an admonition's)."""

from __future__ import annotations

from distillgen.figures.base import DirectiveInput, DirectiveKind, Rendered
from distillgen.figures.context import CheckContext, RenderContext
from distillgen.options import Argument


class Note(DirectiveKind):
    name = "note"
    doc = "A margin note beside the paragraph before it; its body is Markdown."
    argument = Argument("the first line of the note (Markdown)", required=False)

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> DirectiveInput:
        if not directive.body and not directive.argument_tokens:
            ctx.warning(directive.line, f"{{{directive.kind}}} is empty")
        return directive

    def render(self, directive: DirectiveInput, ctx: RenderContext) -> Rendered:
        first = f"<p>{ctx.markdown(directive.argument_tokens)}</p>" if directive.argument_tokens else ""
        return ctx.rendered(f'<aside class="l-gutter">{first}{ctx.markdown(directive.body_tokens)}</aside>')


class Aside(Note):
    name = "aside"
    doc = "Same as {note}."
