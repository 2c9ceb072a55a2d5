"""{note} / {aside}: a margin note in the gutter (inline on narrow screens)."""

from __future__ import annotations

from distillgen.figures import directive
from distillgen.figures.base import DirectiveKind


@directive
class Note(DirectiveKind):
    name = "note"
    doc = "A margin note beside the paragraph before it; its body is Markdown."

    def check(self, directive, article) -> None:
        if not directive.body:
            article.warning(directive.line, f"{{{directive.kind}}} is empty")

    def render(self, directive, article) -> str:
        return f'<aside class="l-gutter">{article.render_tokens(directive.body_tokens)}</aside>'


@directive
class Aside(Note):
    name = "aside"
    doc = "Same as {note}."
