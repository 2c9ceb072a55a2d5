"""{math}: display math as a directive, numbered when labelled; {math}`…`: inline math."""

from __future__ import annotations

from dataclasses import dataclass

from distillgen.figures.base import DirectiveInput, DirectiveKind, Rendered, RoleKind
from distillgen.figures.context import CheckContext, RenderContext
from distillgen.options import LABEL
from distillgen.render.html import equation_html
from distillgen.render.math import split_label, to_mathml
from distillgen.source import Role


@dataclass(frozen=True)
class Equation:
    mathml: str
    label: str | None


class MathDirective(DirectiveKind):
    name = "math"
    doc = "Display math (TeX); with :label: (or \\label{…}) it is numbered and {eq} refers to it."
    options = (LABEL,)

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> Equation | None:
        latex, written = split_label(directive.body)
        label = directive.options["label"]
        if written and label:
            ctx.error(
                directive.line, f"equation labelled twice: ':label: {label}' and '\\label{{{written}}}'"
            )
            return None
        label = label or written
        if label:
            ctx.equation(label, directive.option_line("label"))
        try:
            return Equation(to_mathml(latex, True), label)
        except ValueError as exc:
            ctx.error(directive.line, str(exc))
            return None

    def render(self, equation: Equation, ctx: RenderContext) -> Rendered:
        target = ctx.target(equation.label) if equation.label else None
        return ctx.rendered(equation_html(equation.mathml, target))


class MathRole(RoleKind):
    name = "math"
    doc = "Inline math (TeX), the same as $…$."

    def check(self, role: Role, ctx: CheckContext) -> str | None:
        try:
            return to_mathml(role.content, False)
        except ValueError as exc:
            ctx.error(role.line, str(exc))
            return None

    def render(self, mathml: str, ctx: RenderContext) -> Rendered:
        return ctx.rendered(mathml)
