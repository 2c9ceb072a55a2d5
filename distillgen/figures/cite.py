"""{cite}`key1,key2`: numbered citations with a hover card; {cite:t} names the authors."""

from __future__ import annotations

from html import escape

from distillgen.figures.base import Rendered, RoleKind
from distillgen.figures.context import CheckContext, RenderContext
from distillgen.source import Role


class Cite(RoleKind):
    name = "cite"
    doc = "Cite BibTeX entries by key: [1, 2]."

    def check(self, role: Role, ctx: CheckContext) -> tuple[str, ...] | None:
        keys = tuple(key.strip() for key in role.content.split(",") if key.strip())
        if not keys:
            ctx.error(role.line, f"{{{role.name}}} needs at least one citation key")
            return None
        resolved = [ctx.cite(key, role.line) for key in keys]  # each unknown key is reported
        return keys if all(resolved) else None

    def render(self, keys: tuple[str, ...], ctx: RenderContext) -> Rendered:
        links = [
            f'<a href="#ref-{escape(key)}" data-hover-ref="ref-{escape(key)}">{ctx.citation(key)}</a>'
            for key in keys
        ]
        return ctx.rendered(f'<span class="citation">[{", ".join(links)}]</span>')


class CiteParenthetical(Cite):
    name = "cite:p"
    doc = "Same as {cite}."


class CiteTextual(Cite):
    name = "cite:t"
    doc = "Cite naming the authors: Olah et al. [1]."

    def render(self, keys: tuple[str, ...], ctx: RenderContext) -> Rendered:
        parts = []
        for key in keys:
            names = escape(ctx.short_authors(key))
            ref = f"ref-{escape(key)}"
            parts.append(
                f'{names} <span class="citation">[<a href="#{ref}" data-hover-ref="{ref}">'
                f"{ctx.citation(key)}</a>]</span>"
            )
        return ctx.rendered("; ".join(parts))
