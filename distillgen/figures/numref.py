"""{numref}`label`: a link that reads "Figure 2"; `Fig. %s <label>` sets the text."""

from __future__ import annotations

import re
from html import escape

from distillgen.figures import role
from distillgen.figures.base import RoleKind

_EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<label>[^<>]+)>$")


def _parse(content: str) -> tuple[str | None, str]:
    match = _EXPLICIT.match(content.strip())
    if match:
        return match["text"], match["label"].strip()
    return None, content.strip()


@role
class NumRef(RoleKind):
    name = "numref"
    doc = "Reference a labelled figure or heading by its number or title."

    def check(self, role, article) -> None:
        _, label = _parse(role.content)
        article.want(label, role.line, f"{{{role.name}}}`{role.content}`")

    def render(self, role, article) -> str:
        text, label = _parse(role.content)
        target = article.targets.get(label)
        if target is None:
            return escape(role.content)
        shown = target.text
        if text:
            number = target.text.split()[-1]
            shown = text.replace("%s", number) if "%s" in text else text
        return f'<a class="figure-ref" href="#{escape(target.anchor)}">{escape(shown)}</a>'


@role
class Ref(NumRef):
    name = "ref"
    doc = "Same as {numref}."
