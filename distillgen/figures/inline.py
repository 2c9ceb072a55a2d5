"""MyST's inline HTML roles: {sub}`2`, {sup}`th`, {abbr}`CSS (Cascading Style Sheets)`."""

from __future__ import annotations

import re
from html import escape

from distillgen.figures.base import Rendered, RoleKind
from distillgen.figures.context import CheckContext, RenderContext
from distillgen.source import Role

# MyST's reading: the title is in the last parentheses at the end.
_ABBREVIATION = re.compile(r"^(?P<text>.*?)\s*\((?P<title>[^()]*)\)\s*$", re.S)


class Subscript(RoleKind):
    name = "sub"
    doc = "Subscript text: H{sub}`2`O."
    tag = "sub"

    def check(self, role: Role, ctx: CheckContext) -> str | None:
        if not role.content.strip():
            ctx.warning(role.line, f"{{{role.name}}} is empty")
        return role.content

    def render(self, content: str, ctx: RenderContext) -> Rendered:
        return ctx.rendered(f"<{self.tag}>{escape(content)}</{self.tag}>")


class SubscriptLong(Subscript):
    name = "subscript"
    doc = "Same as {sub}."


class Superscript(Subscript):
    name = "sup"
    doc = "Superscript text: 4{sup}`th`."
    tag = "sup"


class SuperscriptLong(Superscript):
    name = "superscript"
    doc = "Same as {sup}."


class Abbreviation(RoleKind):
    name = "abbr"
    doc = "An abbreviation with its expansion on hover: {abbr}`CSS (Cascading Style Sheets)`."

    def check(self, role: Role, ctx: CheckContext) -> tuple[str, str]:
        match = _ABBREVIATION.match(role.content)
        return (match["text"], match["title"].strip()) if match else (role.content, "")

    def render(self, abbreviation: tuple[str, str], ctx: RenderContext) -> Rendered:
        text, title = abbreviation
        attribute = f' title="{escape(title)}"' if title else ""
        return ctx.rendered(f"<abbr{attribute}>{escape(text)}</abbr>")
