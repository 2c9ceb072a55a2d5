"""{figure}: an image file with a numbered caption; {image}: an image alone. Either takes a
local file (copied with the page) or an http(s) URL (linked as it is)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

from distillgen.figures.admonition import CLASS
from distillgen.figures.base import DirectiveInput, DirectiveKind, Rendered
from distillgen.figures.context import CheckContext, RenderContext
from distillgen.labels import Asset
from distillgen.options import Argument, Option, choice, text
from distillgen.safety import url_problem
from distillgen.source.document import plain_text

ALIGN = Option("align", choice("left", "center", "right"), None, "where it sits")
_REMOTE = re.compile(r"^https?://", re.IGNORECASE)
_LENGTH = re.compile(r"^(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>px|%|em|rem)?$")


def css_length(value: str) -> str:
    """`200`, `200px`, `50%`, `20em`: a width or height for CSS (a bare number is pixels)."""
    match = _LENGTH.match(value.strip())
    if match is None:
        raise ValueError(f"expected a length such as 200, 200px or 50%, not '{value}'")
    return match["number"] + (match["unit"] or "px")


@dataclass(frozen=True)
class ImageRequest:
    image: Asset | str  # a local file, or a remote URL
    alt: str
    width: str | None
    height: str | None = None
    align: str | None = None
    classes: str = ""


def image_source(written: str, ctx: CheckContext, line: int) -> Asset | str | None:
    """A local image (checked like every file an article names) or an http(s) URL (checked by
    the URL rule); None after an error."""
    if _REMOTE.match(written):
        if problem := url_problem(written):
            ctx.error(line, problem)
            return None
        return written
    return ctx.asset(written, line)


def image_html(request: ImageRequest, ctx: RenderContext) -> str:
    src = request.image if isinstance(request.image, str) else ctx.file(request.image)
    styles = [
        f"{name}:{value}" for name, value in (("width", request.width), ("height", request.height)) if value
    ]
    style = f' style="{";".join(styles)}"' if styles else ""
    attribute = class_attribute(request.align, request.classes)
    return f'<img src="{escape(src)}" alt="{escape(request.alt)}" loading="lazy"{attribute}{style}>'


def class_attribute(align: str | None, classes: str) -> str:
    """` class="align-center extra"` for an element's `:align:` and `:class:`, or nothing."""
    names = " ".join([*([f"align-{align}"] if align else []), *classes.split()])
    return f' class="{escape(names)}"' if names else ""


ALT = Option("alt", text, "", "text that replaces the image for readers who cannot see it")
WIDTH = Option("width", css_length, None, "display width: CSS pixels, or 50%")


class Figure(DirectiveKind):
    name = "figure"
    doc = "An image file (PNG, JPEG, SVG, WebP) or http(s) URL with a caption."
    argument = Argument("the image's path, relative to the article, or an https:// URL")
    options = (ALT, WIDTH, CLASS)
    numbered = True

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> ImageRequest | None:
        image = image_source(directive.argument, ctx, directive.line)
        if not directive.options["alt"] and not directive.body:
            ctx.warning(directive.line, "{figure} has neither a caption nor ':alt:' text")
        if image is None:
            return None
        alt = directive.options["alt"] or plain_text(directive.body_tokens)
        return ImageRequest(image, alt, directive.options["width"], classes=directive.options["class"])

    def render(self, request: ImageRequest, ctx: RenderContext) -> Rendered:
        return ctx.rendered(ctx.figure(image_html(request, ctx)))


class Image(DirectiveKind):
    name = "image"
    doc = "An image file or http(s) URL on its own, without caption or number."
    argument = Argument("the image's path, relative to the article, or an https:// URL")
    options = (
        ALT,
        WIDTH,
        Option("height", css_length, None, "display height: CSS pixels, or 50%"),
        ALIGN,
        CLASS,
    )

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> ImageRequest | None:
        if directive.body:
            ctx.warning(directive.line, "{image} takes no text; use {figure} for a caption")
        if not directive.options["alt"]:
            ctx.warning(directive.line, "{image} has no ':alt:' text for readers who cannot see it")
        image = image_source(directive.argument, ctx, directive.line)
        if image is None:
            return None
        options = directive.options
        return ImageRequest(
            image, options["alt"], options["width"], options["height"], options["align"], options["class"]
        )

    def render(self, request: ImageRequest, ctx: RenderContext) -> Rendered:
        return ctx.rendered(f'<p class="image">{image_html(request, ctx)}</p>')
