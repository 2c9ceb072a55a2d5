"""{figure}: an image file with a numbered caption."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from distillgen.figures.base import DirectiveInput, DirectiveKind, Rendered
from distillgen.figures.context import Asset, CheckContext, RenderContext
from distillgen.options import Argument, Option, integer, text


@dataclass(frozen=True)
class FigureRequest:
    image: Asset
    alt: str
    width: int | None


class Figure(DirectiveKind):
    name = "figure"
    doc = "An image file (PNG, JPEG, SVG, WebP) with a caption."
    argument = Argument("the image's path, relative to the article")
    options = (
        Option("alt", text, "", "text that replaces the image for readers who cannot see it"),
        Option("width", integer(1, 4000), None, "display width in CSS pixels"),
    )
    numbered = True

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> FigureRequest | None:
        image = ctx.asset(directive.argument, directive.line)
        if not directive.options["alt"] and not directive.body:
            ctx.warning(directive.line, "{figure} has neither a caption nor ':alt:' text")
        if image is None:
            return None
        alt = directive.options["alt"] or _plain_text(directive.body_tokens)
        return FigureRequest(image, alt, directive.options["width"])

    def render(self, request: FigureRequest, ctx: RenderContext) -> Rendered:
        style = f' style="width:{request.width}px"' if request.width else ""
        img = (
            f'<img src="{escape(ctx.file(request.image))}" alt="{escape(request.alt)}" loading="lazy"{style}>'
        )
        return ctx.rendered(ctx.figure(img))


def _plain_text(tokens) -> str:
    """The caption's words without markup, for an image's alt text."""
    words = []
    for token in tokens:
        for child in token.children or []:
            if child.type in ("text", "code_inline"):
                words.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                words.append(" ")
    return "".join(words).strip()
