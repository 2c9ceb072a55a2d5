"""{value}`fig-ablation.effect`: a number of a labelled figure's result, in the prose, so that
the text cannot drift from the figure. A claim about it is checked like a prediction:

    {value}`fig-ablation.effect`            −92%, linked to the figure, its source on hover
    {value}`fig-ablation.effect <= -50%`    the same, and a warning (an error with --strict)
                                            when the number is not at most −50%
    {value}`fig-tuning.osi of mixed3:59`    one unit's, of a figure of several (tuning)

The fields a figure offers are its kind's `values` (`distillgen directives KIND` lists them);
a percent field is claimed in percent, any other in its own units.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, replace
from html import escape

from distillgen.diagnostics import Code, suggest
from distillgen.figures.base import Quantity, Rendered, RoleKind, ValueField
from distillgen.figures.context import CheckContext, FollowUpContext, PlanContext, RenderContext
from distillgen.render.words import minus
from distillgen.source import Role

# a label may hold dots itself: the field is after the last one
_WRITTEN = re.compile(
    r"^(?P<label>\S+)\.(?P<field>[a-z][a-z0-9-]*)(?:\s+of\s+(?P<unit>(?:[^\s:]+:)?\d+))?"
    r"(?:\s*(?P<op><=|>=|<|>|≤|≥)\s*(?P<bound>[-+−]?\d+(?:\.\d+)?)\s*(?P<percent>%)?)?$"
)
_OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_WORDS = {"<": "below", "<=": "at most", ">": "above", ">=": "at least"}


@dataclass(frozen=True)
class Claim:
    """What the prose says of the number: `op` `bound` (a fraction when written in percent)."""

    op: str  # <, <=, > or >=
    bound: float
    percent: bool

    def holds(self, quantity: Quantity) -> bool:
        return _OPERATORS[self.op](quantity.number, self.bound)

    def prose(self) -> str:
        """'at most −50%'."""
        bound = f"{self.bound * 100:g}%" if self.percent else f"{self.bound:g}"
        return f"{_WORDS[self.op]} {minus(bound)}"


@dataclass(frozen=True)
class ValueRequest:
    written: str  # the role's content, as the author wrote it
    label: str
    field: str
    claim: Claim | None
    line: int
    unit: str = ""  # `fig.preferred of mixed3:59`: one unit of a figure of several
    figure: str = ""  # the figure's kind, once planned
    meaning: str = ""  # what the field is, once planned
    quantity: Quantity | None = None  # once the figure's result is computed
    failed: bool = False  # the figure has no such number (reported once)


class Value(RoleKind):
    name = "value"
    doc = (
        "A number of a labelled figure's result, e.g. {value}`fig-ablation.effect`, or a claim the "
        "build checks: {value}`fig-ablation.effect <= -50%`."
    )

    def check(self, role: Role, ctx: CheckContext) -> ValueRequest | None:
        match = _WRITTEN.match(role.content.strip())
        if match is None:
            ctx.error(
                role.line,
                f"{{value}}`{role.content}` names no value; write LABEL.FIELD, e.g. "
                "{value}`fig-ablation.effect`, or a claim: {value}`fig-ablation.effect <= -50%`",
            )
            return None
        claim = None
        if match["op"]:
            bound = float(match["bound"].replace("−", "-"))
            op = {"≤": "<=", "≥": ">="}.get(match["op"], match["op"])
            claim = Claim(op, bound / 100 if match["percent"] else bound, bool(match["percent"]))
        ctx.want(match["label"], role.line, f"{{value}}`{role.content}`")
        return ValueRequest(
            role.content, match["label"], match["field"], claim, role.line, match["unit"] or ""
        )

    def plan(self, request: ValueRequest, ctx: PlanContext) -> ValueRequest | None:
        found = ctx.figure_values(request.label)
        where = f"{{value}}`{request.written}`"
        if found is None:
            ctx.error(
                request.line,
                f"{where}: '{request.label}' labels no figure; {{value}} quotes a figure's result",
            )
            return None
        kind, values, per_unit = found
        if request.unit and not per_unit:
            ctx.error(
                request.line,
                f"{where}: a {{{kind}}} figure's values are not per unit; drop 'of {request.unit}'",
            )
            return None
        if not values:
            from distillgen.figures import DIRECTIVES  # (the registry imports this module)

            quoted = ", ".join(f"{{{name}}}" for name, other in DIRECTIVES.items() if other.values)
            ctx.error(
                request.line, f"{where}: a {{{kind}}} figure has no values to quote; these have: {quoted}"
            )
            return None
        field = declared(values, request.field)
        if field is None:
            ctx.error(
                request.line,
                f"{where}: a {{{kind}}} figure has no value '{request.field}'"
                f"{suggest(request.field, values)}; it has: {', '.join(values)}",
            )
            return None
        if field.of_unit and not request.unit:
            ctx.error(
                request.line,
                f"{where}: {request.field} is one unit's: "
                f"write {{value}}`{request.label}.{request.field} of LAYER:N`",
            )
            return None
        claim = request.claim
        if claim is not None and claim.percent != field.percent:
            bound = "with %" if field.percent else "without %"
            what = "a percentage" if field.percent else "not a percentage"
            ctx.error(request.line, f"{where}: {request.field} is {what}: write the bound {bound}")
            return None
        return replace(request, figure=kind, meaning=field.meaning)

    def follow_up(self, request: ValueRequest, ctx: FollowUpContext) -> ValueRequest:
        if request.quantity is not None or request.failed:
            return request
        try:
            quantity = ctx.figure_value(request.label, request.field, request.unit)
        except ValueError as exc:
            ctx.error(request.line, f"{{value}}`{request.written}`: {exc}")
            return replace(request, failed=True)
        if quantity is None:
            return request
        if request.claim is not None and not request.claim.holds(quantity):
            ctx.warning(
                request.line,
                f"claim failed: '{request.written}', "
                f"but {request.label}'s {request.field}{' of ' + request.unit if request.unit else ''} is "
                f"{quantity.text} ({quantity.number:.4g})",
                Code.PREDICTION,
            )
        return replace(request, quantity=quantity)

    def render(self, request: ValueRequest, ctx: RenderContext) -> Rendered:
        target = ctx.target(request.label)
        if request.quantity is None or target is None:  # the build stopped before computing it
            return ctx.rendered(f"<code>{escape(request.written)}</code>")
        source = f"{target.text}, {request.meaning}"
        if request.claim is not None:
            verdict = "holds" if request.claim.holds(request.quantity) else "does not hold"
            source += f"; the text claims {request.claim.prose()}, which {verdict}"
        return ctx.rendered(
            f'<a class="value" href="#{escape(target.anchor)}" title="{escape(source)}">'
            f"{escape(request.quantity.text)}</a>"
        )


# A literal number in prose: not part of a word, an address (mixed3:5) or a path
_LITERAL = re.compile(r"(?<![\w.:@#/−-])([-−]?\d+(?:\.\d+)?)(\s?%)?(?![\w:/]|\.\d)")
# A literal this close to a quoted figure's number (relative) restates it; counts closer, since
# small ones in prose are often settings ("its 16 most exciting drawings")
NEAR = {"percent": 0.25, "decimal": 0.25, "count": 0.1}


def _form(text: str, percent: bool) -> str:
    """How a number is written: a percentage, a count (digits alone) or a decimal."""
    return "percent" if percent else "count" if text.lstrip("-−").isdigit() else "decimal"


def declared(values: dict[str, ValueField], name: str) -> ValueField | None:
    """The field `name` of a kind's `values`: declared as it is, or numbered (`response-3` of a
    declared `response-N`)."""
    if name in values:
        return values[name]
    stem, _, number = name.rpartition("-")
    return values.get(f"{stem}-N") if number.isdigit() and int(number) >= 1 else None


def drifted_numbers(text: str, quotes: list[ValueRequest], ctx: FollowUpContext) -> list[str]:
    """Problems with the literal numbers of a paragraph's `text` that quotes figures: a literal
    written as one of a quoted figure's numbers is (a percentage, a count or a decimal), near it
    but not equal to it as written, has drifted from the figure, or was never its number."""
    from distillgen.figures import DIRECTIVES  # (the registry imports this module)

    numbers: list[tuple[str, str, str, Quantity]] = []  # label, field, form, quantity
    for label in dict.fromkeys(quote.label for quote in quotes):
        kind = next(quote.figure for quote in quotes if quote.label == label)
        values = DIRECTIVES[kind].values
        quoted = [(quote.field, quote.unit) for quote in quotes if quote.label == label]
        every = [
            (name, "") for name, field in values.items() if not name.endswith("-N") and not field.of_unit
        ]
        for name, unit in dict.fromkeys([*every, *quoted]):
            field = declared(values, name)
            if field is None:
                continue
            try:
                quantity = ctx.figure_value(label, name, unit)
            except ValueError:
                continue
            if quantity is not None:
                numbers.append((label, name, _form(quantity.text.rstrip("%"), field.percent), quantity))
    problems = []
    for match in _LITERAL.finditer(text):
        written, percent = match[1].replace("−", "-"), bool(match[2])
        literal = float(written) / (100 if percent else 1)
        decimals = len(written.partition(".")[2]) + (2 if percent else 0)
        form = _form(written, percent)
        # a percentage is compared by its size: prose says "drops by 85%" of a −92% change
        size = abs if percent else (lambda x: x)
        literal = size(literal)
        same = [
            (label, name, replace(q, number=size(q.number)))
            for label, name, f, q in numbers
            if f == form and math.isfinite(q.number)
        ]
        if any(round(q.number, decimals) == round(literal, decimals) for _, _, q in same):
            continue
        near = [
            (abs(q.number - literal), label, name, q)
            for label, name, q in same
            if q.number and abs(q.number - literal) <= NEAR[form] * abs(q.number)
        ]
        if near:
            _, label, name, quantity = min(near, key=lambda item: item[0])
            problems.append(
                f"'{match[0].strip()}' is near {label}'s {name}, {quantity.text}, but is not it: quote it "
                f"with {{value}}`{label}.{name}` (or reword it, if it is another number)"
            )
    return problems
