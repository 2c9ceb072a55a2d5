"""{hover}`term (what it means)`: a term with a hover box, for glossary-style explanations
("tooltips on more things", distill/template#72). The box opens on hover and on keyboard focus."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from html import escape

from distillgen.figures.base import Rendered, RoleKind
from distillgen.figures.context import CheckContext, RenderContext
from distillgen.source import Role


@dataclass(frozen=True)
class HoverTerm:
    term: str
    explanation: str


def split_term(content: str) -> tuple[str, str] | None:
    """`f(x) (a function)` -> ("f(x)", "a function"): the explanation is the last group in
    balanced parentheses; None when there is no term before it or no group at the end."""
    text = content.strip()
    if not text.endswith(")"):
        return None
    depth = 0
    for index in range(len(text) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[index], 0)
        if depth == 0:
            term, explanation = text[:index].strip(), text[index + 1 : -1].strip()
            return (term, explanation) if term and explanation else None
    return None


class Hover(RoleKind):
    name = "hover"
    doc = "A term with a hover box: {hover}`circuit (a subgraph of a network's features and weights)`."

    def check(self, role: Role, ctx: CheckContext) -> HoverTerm | None:
        parsed = split_term(role.content)
        if parsed is None:
            ctx.error(
                role.line,
                f"{{hover}}`{role.content}` needs the explanation in parentheses after the term, "
                "e.g. {hover}`circuit (a subgraph of features and weights)`",
            )
            return None
        return HoverTerm(*parsed)

    def render(self, hover: HoverTerm, ctx: RenderContext) -> Rendered:
        digest = hashlib.sha256(f"{hover.term}\0{hover.explanation}".encode()).hexdigest()[:10]
        anchor = f"hover-{digest}"
        ctx.card(anchor, f"<p>{escape(hover.explanation)}</p>")
        return ctx.rendered(
            f'<span class="hover-term" tabindex="0" data-hover-ref="{anchor}">{escape(hover.term)}</span>'
        )
