"""MyST's admonitions: {admonition} with a title, and {tip}, {warning}, {important}, … whose
argument is the first line of their text (as docutils reads them)."""

from __future__ import annotations

from html import escape

from distillgen.figures.base import DirectiveInput, DirectiveKind, Rendered
from distillgen.figures.context import CheckContext, RenderContext
from distillgen.options import Argument, Option, text

CLASS = Option("class", text, "", "extra CSS classes, separated by spaces")


class Admonition(DirectiveKind):
    name = "admonition"
    doc = "A boxed aside in the text with a title of your own: {admonition} Title."
    argument = Argument("the title (Markdown)")
    options = (CLASS,)

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> DirectiveInput:
        if not directive.body and not directive.argument_tokens:
            ctx.warning(directive.line, f"{{{directive.kind}}} is empty")
        return directive

    def render(self, directive: DirectiveInput, ctx: RenderContext) -> Rendered:
        classes = " ".join(["admonition", *directive.options["class"].split()])
        title = ctx.markdown(directive.argument_tokens)
        return ctx.rendered(
            f'<aside class="{escape(classes)}"><p class="admonition-title">{title}</p>'
            f"{ctx.markdown(directive.body_tokens)}</aside>"
        )


class _Titled(Admonition):
    """An admonition whose title is its kind ("Tip"); the argument starts its text."""

    title = ""
    argument = Argument("the first line of the text (Markdown)", required=False)

    def render(self, directive: DirectiveInput, ctx: RenderContext) -> Rendered:
        classes = " ".join(["admonition", self.name, *directive.options["class"].split()])
        first = f"<p>{ctx.markdown(directive.argument_tokens)}</p>" if directive.argument_tokens else ""
        return ctx.rendered(
            f'<aside class="{escape(classes)}"><p class="admonition-title">{self.title}</p>'
            f"{first}{ctx.markdown(directive.body_tokens)}</aside>"
        )


def _titled(name: str, title: str) -> type[_Titled]:
    doc = f"A boxed '{title}' in the text; the argument is the first line of its text."
    return type(name.capitalize(), (_Titled,), {"name": name, "title": title, "doc": doc})


TITLED: tuple[type[_Titled], ...] = tuple(
    _titled(name, title)
    for name, title in (
        ("attention", "Attention"),
        ("caution", "Caution"),
        ("danger", "Danger"),
        ("error", "Error"),
        ("hint", "Hint"),
        ("important", "Important"),
        ("seealso", "See also"),
        ("tip", "Tip"),
        ("warning", "Warning"),
    )
)
