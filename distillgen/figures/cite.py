"""{cite}`key1,key2`: numbered citations with a hover card; {cite:t} names the authors."""

from __future__ import annotations

from html import escape

from distillgen.figures import role
from distillgen.figures.base import RoleKind


def _keys(content: str) -> list[str]:
    return [key.strip() for key in content.split(",") if key.strip()]


@role
class Cite(RoleKind):
    name = "cite"
    doc = "Cite BibTeX entries by key: [1, 2]."

    def check(self, role, article) -> None:
        keys = _keys(role.content)
        if not keys:
            article.error(role.line, f"{{{role.name}}} needs at least one citation key")
        for key in keys:
            article.cite(key, role.line)

    def render(self, role, article) -> str:
        links = [
            f'<a href="#ref-{escape(key)}" data-hover-ref="ref-{escape(key)}">{article.citations[key]}</a>'
            for key in _keys(role.content)
            if key in article.citations
        ]
        return f'<span class="citation">[{", ".join(links)}]</span>'


@role
class CiteParenthetical(Cite):
    name = "cite:p"
    doc = "Same as {cite}."


@role
class CiteTextual(Cite):
    name = "cite:t"
    doc = "Cite naming the authors: Olah et al. [1]."

    def render(self, role, article) -> str:
        parts = []
        for key in _keys(role.content):
            if key in article.citations:
                names = escape(article.bibliography.short_authors(key))
                ref = f"ref-{escape(key)}"
                parts.append(
                    f'{names} <span class="citation">[<a href="#{ref}" data-hover-ref="{ref}">'
                    f"{article.citations[key]}</a>]</span>"
                )
        return "; ".join(parts)
