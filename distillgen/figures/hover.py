"""{hover}`term (what it means)`: a term with a hover box, for glossary-style explanations
("tooltips on more things", distill/template#72). The box opens on hover and on keyboard focus."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from html import escape

from distillgen.figures.base import Rendered, RoleKind
from distillgen.figures.context import CheckContext, RenderContext
from distillgen.source import Role

_TERM = re.compile(r"(?P<term>.*?\S)\s*\((?P<explanation>.+)\)\s*", re.S)


@dataclass(frozen=True)
class HoverTerm:
    term: str
    explanation: str


class Hover(RoleKind):
    name = "hover"
    doc = "A term with a hover box: {hover}`circuit (a subgraph of a network's features and weights)`."

    def check(self, role: Role, ctx: CheckContext) -> HoverTerm | None:
        match = _TERM.fullmatch(role.content)
        if match is None:
            ctx.error(
                role.line,
                f"{{hover}}`{role.content}` needs the explanation in parentheses after the term, "
                "e.g. {hover}`circuit (a subgraph of features and weights)`",
            )
            return None
        return HoverTerm(match["term"], match["explanation"].strip())

    def render(self, hover: HoverTerm, ctx: RenderContext) -> Rendered:
        digest = hashlib.sha256(f"{hover.term}\0{hover.explanation}".encode()).hexdigest()[:10]
        anchor = f"hover-{digest}"
        ctx.card(anchor, f"<p>{escape(hover.explanation)}</p>")
        return ctx.rendered(
            f'<span class="hover-term" tabindex="0" data-hover-ref="{anchor}">{escape(hover.term)}</span>'
        )
