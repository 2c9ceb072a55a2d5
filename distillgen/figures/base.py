"""The contract every directive and role kind is written against: typed stages.

    DirectiveInput ── check(input, CheckContext) -> Request | None     None: an error was reported
    Request ───────── plan(request, PlanContext) -> Planned | None     Planned.jobs: what to compute
    Planned ───────── follow_up(planned, FollowUpContext) -> Planned   after each compute round
    Planned ───────── render(planned, RenderContext) -> Rendered       HTML + files + hover cards

Requests and planned values are the kind's own frozen dataclasses; a stage never mutates what
an earlier stage returned, and reads nothing but its arguments and its context. The core
(article.py) parses the declared argument and options before `check`, so a kind only checks
what its declarations cannot say. A kind that computes nothing keeps the default `plan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from markdown_it.token import Token

from distillgen.options import LABEL, LAYOUT, Argument, Option

if TYPE_CHECKING:
    from distillgen.figures.context import CheckContext, FollowUpContext, PlanContext, RenderContext
    from distillgen.source import Role


@dataclass(frozen=True)
class DirectiveInput:
    """A directive as written, its argument and options parsed by the kind's declarations."""

    kind: str
    argument: Any  # the declared Argument's value; None for kinds that take none
    written: str  # the argument as written
    options: Mapping[str, Any]  # every declared option: parsed, or its default
    given: frozenset[str]  # the options the author wrote
    body: str
    body_tokens: list[Token]
    path: Path
    line: int
    option_lines: Mapping[str, int] = field(default_factory=dict)
    argument_tokens: list[Token] = field(default_factory=list)  # the argument as inline Markdown

    def option_line(self, name: str) -> int:
        return self.option_lines.get(name, self.line)


@dataclass(frozen=True)
class Rendered:
    """What rendering one directive or role gives the page."""

    html: str
    files: Mapping[str, Path] = field(default_factory=dict)  # URL in the article's folder -> file
    cards: Mapping[str, str] = field(default_factory=dict)  # hover card anchor -> HTML
    appendix: tuple[tuple[str, str], ...] = ()  # (title, HTML) sections for the appendix


@dataclass(frozen=True)
class ValueField:
    """A number prose may quote of a figure's result ({value}`label.field`)."""

    meaning: str  # what it is, for the reader's hover and the author's errors
    percent: bool = False  # a fraction, written and claimed in percent
    of_unit: bool = False  # only of one unit of the figure: `{value}`label.field of mixed3:5``


@dataclass(frozen=True)
class Quantity:
    """One number of a figure's result as prose reads it ({value} roles): its text as the
    figure prints it, and the number a claim about it compares."""

    text: str  # "−91%", "0.88", "13"
    number: float  # a fraction for a percent field


def jobs_of(planned: object) -> tuple:
    """The jobs a planned value asks for: its `jobs` field, in order (none without one)."""
    return tuple(getattr(planned, "jobs", ()))


class DirectiveKind:
    """One kind of fenced directive, e.g. ```` ```{figure} path ````."""

    name: ClassVar[str]
    doc: ClassVar[str]
    argument: ClassVar[Argument | None] = None  # None: the kind takes no argument
    per_unit: ClassVar[bool] = False  # prose may quote its values of one unit of several
    options: ClassVar[tuple[Option, ...]] = ()
    numbered: ClassVar[bool] = False  # takes a "Figure N" number, a :label: and a :layout:
    counter: ClassVar[str] = "Figure"  # what a numbered kind is numbered as: "Table 2"
    caption_from: ClassVar[str] = "body"  # or "argument": where a numbered kind's caption is
    # What prose may quote of a figure of this kind ({value}`label.field`): field -> what it is
    values: ClassVar[dict[str, ValueField]] = {}

    @classmethod
    def declared_options(cls) -> tuple[Option, ...]:
        return (LABEL, LAYOUT, *cls.options) if cls.numbered else cls.options

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> object | None:
        """The validated request, or None after reporting the author's mistake."""
        return directive

    def plan(self, request: Any, ctx: PlanContext) -> object | None:
        """For kinds that compute: resolve units against the model and return a value whose
        `jobs` are what to compute; None after reporting an error.

        Check everything the author wrote *before* `ctx.attach` (or `dictionaries.trained`):
        while a dictionary the figure reads is untrained they raise `Pending`, the figure is
        set aside and planned again only after the dictionary trained, so a mistake checked
        after them would be reported only after that training."""
        return request

    def follow_up(self, planned: Any, ctx: FollowUpContext) -> object:
        """After every compute round, until no kind asks for more: the same value, or one whose
        `jobs` extend the old ones with jobs chosen from results (a circuit's inputs); may
        also check results (an ablation's prediction)."""
        return planned

    def render(self, planned: Any, ctx: RenderContext) -> Rendered:
        raise NotImplementedError

    def value(self, planned: Any, field: str, ctx: FollowUpContext) -> Quantity | None:
        """The figure's `field` (one of `values`) once its result is computed; None before.
        ValueError (its message for the author) when this figure has no such number."""
        return None

    def unit_value(self, planned: Any, field: str, unit: str, ctx: FollowUpContext) -> Quantity | None:
        """`field` of one of the figure's units (`unit` as written: `59` or `mixed3:59`), for a
        kind whose `values` are per unit (`per_unit`); as `value` otherwise."""
        raise ValueError(f"a {{{self.name}}} figure's values are not per unit")

    def graph(self, planned: Any, ctx: RenderContext) -> dict[str, Any] | None:
        """A circuit-like figure's graph as its article's `graphs.json` lists it (nodes with
        addresses and images, edges with their numbers: `diagram.Graph.json`); None for a
        figure that draws none."""
        return None


class RoleKind:
    """One kind of inline role, e.g. {cite}`key`: the same stages, from the role's content."""

    name: ClassVar[str]
    doc: ClassVar[str]
    counter: ClassVar[str | None] = None

    def check(self, role: Role, ctx: CheckContext) -> object | None:
        return role

    def plan(self, request: Any, ctx: PlanContext) -> object | None:
        return request

    def follow_up(self, planned: Any, ctx: FollowUpContext) -> object:
        return planned

    def render(self, planned: Any, ctx: RenderContext) -> Rendered:
        raise NotImplementedError
