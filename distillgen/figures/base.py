"""What a directive or role kind is. Subclass, declare, register; the core never changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from distillgen.diagnostics import suggest
from distillgen.figures.options import Option

if TYPE_CHECKING:
    from distillgen.render.article import Article
    from distillgen.source import Directive, Role


class DirectiveKind:
    """One kind of fenced directive, e.g. ```` ```{figure} path ````."""

    name: ClassVar[str]
    doc: ClassVar[str]
    arguments: ClassVar[str] = ""  # what the argument is; "" means the kind takes none
    options: ClassVar[tuple[Option, ...]] = ()
    numbered: ClassVar[bool] = False  # takes a "Figure N" number

    def check(self, directive: Directive, article: Article) -> None:
        """Validate the arguments beyond option types; report through `article`."""

    def plan(self, directive: Directive, article: Article) -> None:
        """For kinds that compute: check addresses against the model (`article.model_info`)
        and ask for jobs with `article.need()`. Runs after `check` succeeded, for every
        article, before anything is computed."""

    def follow_up(self, directive: Directive, article: Article) -> None:
        """For kinds whose jobs depend on computed results (a circuit picks the inputs to draw
        from the computed weights): read `article.artifact()` and `need()` more jobs. Runs
        after every compute round, until no kind asks for more; so it must ask only once for
        each job, and may also check results (an ablation's prediction)."""

    def render(self, directive: Directive, article: Article) -> str:
        raise NotImplementedError

    def parse_options(self, directive: Directive, article: Article) -> bool:
        """Fill `directive.opts` from the declared options; False if any was invalid."""
        declared = {option.name: option for option in self.options}
        ok = True
        for key, raw in directive.options.items():
            line = directive.option_line(key)
            option = declared.get(key)
            if option is None:
                known = ", ".join(declared) or "none"
                article.error(
                    line,
                    f"unknown option ':{key}:' for {{{self.name}}}{suggest(key, declared)}; "
                    f"its options are: {known}",
                )
                ok = False
                continue
            try:
                directive.opts[key] = option.parse(raw)
            except ValueError as exc:
                article.error(line, f"bad value for ':{key}:' in {{{self.name}}}: {exc}")
                ok = False
        for option in self.options:
            directive.opts.setdefault(option.name, option.default)
        if not self.arguments and directive.args:
            article.error(directive.line, f"{{{self.name}}} takes no argument, got '{directive.args}'")
            ok = False
        elif self.arguments and not directive.args:
            article.error(directive.line, f"{{{self.name}}} needs an argument: {self.arguments}")
            ok = False
        return ok


class RoleKind:
    """One kind of inline role, e.g. {cite}`key`."""

    name: ClassVar[str]
    doc: ClassVar[str]

    def check(self, role: Role, article: Article) -> None:
        """Validate the content; report through `article`."""

    def plan(self, role: Role, article: Article) -> None:
        """Like `DirectiveKind.plan`."""

    def follow_up(self, role: Role, article: Article) -> None:
        """Like `DirectiveKind.follow_up`."""

    def render(self, role: Role, article: Article) -> str:
        raise NotImplementedError
