"""{figure}: an image file with a numbered caption."""

from __future__ import annotations

from html import escape

from distillgen.figures import directive
from distillgen.figures.base import DirectiveKind
from distillgen.figures.options import LABEL, LAYOUT, Option, integer, text


def figure_html(directive, article, content: str, extra_class: str = "") -> str:
    """The <figure> frame shared by every numbered kind: layout, anchor, number, caption."""
    label = directive.opts.get("label")
    anchor = f' id="{escape(label)}"' if label else ""
    classes = " ".join(c for c in (directive.opts.get("layout", "l-body"), extra_class) if c)
    caption = article.render_tokens(directive.body_tokens).strip()
    number = f'<span class="figure-number">Figure {directive.number}</span>' if directive.number else ""
    figcaption = f"<figcaption>{number}{caption}</figcaption>" if number or caption else ""
    return f'<figure class="{classes}"{anchor}>{content}{figcaption}</figure>'


@directive
class Figure(DirectiveKind):
    name = "figure"
    doc = "An image file (PNG, JPEG, SVG, WebP) with a caption."
    arguments = "the image's path, relative to the article"
    options = (
        LABEL,
        LAYOUT,
        Option("alt", text, "", "text that replaces the image for readers who cannot see it"),
        Option("width", integer(1, 4000), None, "display width in CSS pixels"),
    )
    numbered = True

    def check(self, directive, article) -> None:
        article.asset(directive.args, directive.line)
        if not directive.opts["alt"] and not directive.body:
            article.warning(directive.line, "{figure} has neither a caption nor ':alt:' text")

    def render(self, directive, article) -> str:
        alt = directive.opts["alt"] or _plain_text(directive.body_tokens)
        width = directive.opts["width"]
        style = f' style="width:{width}px"' if width else ""
        img = (
            f'<img src="{escape(article.asset_url(directive.args))}" alt="{escape(alt)}"'
            f' loading="lazy"{style}>'
        )
        return figure_html(directive, article, img)


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
