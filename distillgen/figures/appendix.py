"""{appendix} Acknowledgments: a section the page moves to the appendix, as Distill does for
acknowledgments and author contributions: out of the body and the table of contents."""

from __future__ import annotations

from distillgen.figures.base import DirectiveInput, DirectiveKind, Rendered
from distillgen.figures.context import CheckContext, RenderContext
from distillgen.options import Argument, text


class Appendix(DirectiveKind):
    name = "appendix"
    doc = "A section of the appendix, e.g. Acknowledgments or Author Contributions; its body is Markdown."
    argument = Argument("the section's title, e.g. Acknowledgments", text)

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> DirectiveInput:
        if not directive.body:
            ctx.warning(directive.line, f"{{appendix}} '{directive.argument}' is empty")
        return directive

    def render(self, directive: DirectiveInput, ctx: RenderContext) -> Rendered:
        ctx.appendix(directive.argument, ctx.markdown(directive.body_tokens))
        return ctx.rendered("")  # nothing in the body
