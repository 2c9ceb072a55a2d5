"""One article through the stages: check → plan → follow up → render.

`Article.check()` walks the tokens once in reading order: the core parses each directive's
declared argument and options, gives figures their numbers and labels, and calls the kind's
`check`; citations get numbers in order of first use; references resolve at the end. Then
`plan()` and `follow_up()` turn each kind's request into jobs, and `render()` turns the tokens
into HTML, reading only what the earlier stages returned, so it cannot fail on author input.

Each directive or role that checked cleanly has an `Entry`: its kind and the value the kind's
last stage returned. Kinds see only the small context of their stage (figures/context.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.token import Token
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from distillgen import datasets
from distillgen.compute import Catalog, Need
from distillgen.diagnostics import Code, Reporter, suggest
from distillgen.dictionaries import Dictionaries, Pending
from distillgen.faithful import PROBE_COUNT, measures_of
from distillgen.figures import DIRECTIVES, ROLES
from distillgen.figures.base import DirectiveInput, DirectiveKind, RoleKind, jobs_of
from distillgen.figures.context import CheckContext, FollowUpContext, PlanContext, RenderContext
from distillgen.figures.value import ValueRequest, drifted_numbers
from distillgen.jobs import Dataset, FaithfulnessJob, FeatureVisJob
from distillgen.labels import LINK_LABEL, Asset, Citations, Labels, LocalImages, Target
from distillgen.options import label as valid_label
from distillgen.render.bibliography import Bibliography
from distillgen.render.html import fence_language, inline_html, local_image, raw_images
from distillgen.render.math import split_label, to_mathml
from distillgen.safety import noted
from distillgen.source import Directive, Document, Role
from distillgen.source.document import plain_text, role_of
from distillgen.source.frontmatter import FrontMatter
from distillgen.units import ModelSpec, SpecError, parse_spec
from distillgen.zoo import DEFAULT_DATASET, DEFAULT_MODEL

if TYPE_CHECKING:
    from distillgen.cache import Artifact


@dataclass(frozen=True)
class Heading:
    level: int
    anchor: str
    text: str
    title_tokens: tuple[Token, ...]
    html: str = ""  # the title's inline markup without links (the contents link it): at render


@dataclass(frozen=True)
class Footnote:
    number: int
    html: str


@dataclass(frozen=True)
class Reference:
    key: str
    number: int
    html: str


@dataclass
class Entry:
    """A directive or role that checked cleanly: its kind, where it is, its figure frame, and
    the value its kind's latest stage returned (request, then planned value)."""

    kind: DirectiveKind | RoleKind
    line: int
    value: object
    number: int | None = None
    label: str | None = None
    layout: str = "l-body"
    caption: list[Token] = field(default_factory=list)


class Article:
    def __init__(self, doc: Document, front: FrontMatter, md: MarkdownIt, reporter: Reporter) -> None:
        self.doc = doc
        self.front = front
        self.md = md
        self.reporter = reporter
        self.labels = Labels()
        self.citations = Citations(None, front.bibliography is not None)  # loaded by check
        self.images = LocalImages(doc.path.parent, doc.roots)
        self.headings: list[Heading] = []
        self.catalog: Catalog | None = None
        self.needs: list[Need] = []  # jobs the entries asked for, in the order they asked
        # each feature visualization's faithfulness measures (by its key): on the probe set its
        # figure names, else the default one (faithful.py)
        self.measured: dict[str, FaithfulnessJob] = {}
        self.assets: dict[str, Path] = {}  # URL inside the article's folder -> file, after render
        self.cards: dict[str, str] = {}  # hover cards (id -> HTML), after render
        self.appendix: list[tuple[str, str]] = []  # {appendix} sections (title, HTML), after render
        self.teaser: Asset | None = None  # the front matter's teaser image, after check
        self._entries: dict[int, Entry] = {}  # id(Directive or Role) -> entry, in reading order
        # (label, line, how it was referenced, what it must name: "Equation", or None)
        self._link_labels: list[tuple[str, int | None]] = []  # `[](label)`: a label, or a file
        self._artifacts: dict[str, Artifact] = {}
        self._pending: dict[int, tuple] = {}  # entry -> the DictionaryJobs it waits for
        self.dictionaries: Dictionaries | None = None  # after plan
        self._quotes_checked = False  # the prose's literal numbers, against the figures it quotes

    @property
    def slug(self) -> str:
        return self.doc.slug

    # -- kept between builds (checked.py) --------------------------------------------------
    def __getstate__(self) -> dict:
        """Everything but the shared parser and reporter. Entries are keyed by the `id` of
        their directive or role, which another process does not share: they travel beside
        the object itself, which pickling keeps identical to the one in the tokens."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("md", "reporter")}
        objects = {
            id(token.meta[name]): token.meta[name]
            for token in self.doc.walk()
            for name in ("directive", "role")
            if name in (token.meta or {})
        }
        state["_entries"] = [(objects[key], entry) for key, entry in self._entries.items()]
        return state

    def __setstate__(self, state: dict) -> None:
        entries = state.pop("_entries")
        self.__dict__.update(state, md=None, reporter=None)
        self._entries = {id(item): entry for item, entry in entries}

    # -- what the contexts offer kinds -----------------------------------------------------
    def error(self, line: int | None, message: str) -> None:
        self.reporter.error(self.doc.path, line, message)

    def warning(self, line: int | None, message: str, code: Code | None = None) -> None:
        self.reporter.warning(self.doc.path, line, message, code=code)

    def define(self, label: str, text: str, line: int | None, **target) -> None:
        """A target named `label` (Target's other fields as keywords)."""
        if problem := self.labels.define(label, text, line, **target):
            self.error(line, problem)

    def cite(self, key: str, line: int) -> bool:
        cited, problems = self.citations.cite(key)
        for problem in problems:
            (self.warning if cited else self.error)(line, problem)
        return cited

    def asset(self, src: str, line: int | None) -> Asset | None:
        """A local file the page shows, with its URL relative to the page; None after an error."""
        try:
            return self.images.add(src)
        except ValueError as exc:
            self.error(line, str(exc))
            return None

    @property
    def probe(self) -> Dataset | None:
        """The probe set its feature visualizations are measured on, from its `featurevis:`
        defaults (the site config's among them), resolved once; None after an error."""
        if "_probe" not in self.__dict__:
            given = self.front.featurevis
            line = self.front.lines.get("featurevis")
            try:
                self._probe: Dataset | None = datasets.dataset(
                    given.get("dataset", DEFAULT_DATASET),
                    given.get("count", PROBE_COUNT),
                    given.get("sample-seed", 0),
                    self.doc.path.parent,
                    self.doc.roots,
                    warn=lambda message: self.warning(line, message),
                )
            except datasets.DatasetError as exc:
                self.error(line, f"'featurevis.dataset': {exc}")
                self._probe = None
        return self._probe

    def model_spec(self, written: str | None, line: int) -> ModelSpec | None:
        text = written or self.front.model or DEFAULT_MODEL
        if not written and self.front.model:
            line = self.front.lines.get("model", line)
        try:
            return parse_spec(text, self.doc.path.parent)
        except SpecError as exc:
            self.error(line, str(exc))
            return None

    def shown(self, target: Target) -> str:
        """What an empty link or {ref} to `target` shows, as HTML: a heading's title with its
        markup, "(2)" for an equation, else its text."""
        if target.title_tokens:
            return inline_html(self.md, list(target.title_tokens), {"article": self})
        return target.html or escape(target.text)

    def render_tokens(self, tokens: list[Token]) -> str:
        return self.md.renderer.render(tokens, self.md.options, {"article": self})

    # -- check -----------------------------------------------------------------------------
    def check(self) -> None:
        if self.front.bibliography is not None:
            self.citations.bibliography = Bibliography.load(
                self.front.bibliography,
                self.reporter,
                self.doc.path,
                self.front.lines.get("bibliography", 1),
            )
        if self.front.teaser:
            self.teaser = self.asset(self.front.teaser, self.front.lines.get("teaser"))
        context = CheckContext(self)
        tokens = list(self.doc.walk())
        footnotes = self.doc.env.get("footnotes", {})
        for index, token in enumerate(tokens):
            line = token.meta.get("line")
            if token.type == "directive":
                self._check_directive(token.meta["directive"], context)
            elif token.type == "myst_role":
                self._check_role(token, context)
            elif token.type == "heading_open" and token.attrs.get("id"):
                self._check_heading(token, tokens[index + 1], tokens[index - 1] if index else None)
            elif token.type == "myst_target" and not token.meta.get("heading"):
                if self._valid_target(token.content, line):
                    self.define(token.content, token.content, line)
            elif token.type == "myst_block_break" and token.content:
                self.warning(line, f"the metadata after '+++' is ignored: {token.content}")
            elif token.type in ("math_inline", "math_inline_double", "math_block", "math_block_label"):
                self._check_math(token, line)
            elif token.type == "fence" and (language := fence_language(token.info)):
                try:
                    get_lexer_by_name(language)
                except ClassNotFound:
                    self.warning(line, f"no syntax highlighting for unknown language '{language}'")
            elif token.type == "image":
                if src := local_image(str(token.attrs.get("src", ""))):
                    self.asset(src, line)
            elif token.type in ("html_inline", "html_block"):
                for src in raw_images(token.content):
                    self.asset(src, line)
            elif token.type == "footnote_ref" and token.meta.get("label") is not None:
                name = token.meta["label"]
                if name not in footnotes.get("defined", ()):
                    defined = footnotes.get("defined", ())
                    self.error(
                        line,
                        f"footnote [^{name}] is not defined{suggest(name, defined)}; "
                        f"define it on a line of its own: [^{name}]: The note.",
                    )
            elif token.type == "link_open":
                href = str(token.attrs.get("href", ""))
                empty = tokens[index + 1].type == "link_close"
                if href.startswith("#") and len(href) > 1:
                    self.labels.want(href[1:], line, f"[](#{href[1:]})" if empty else f"link to '{href}'")
                elif LINK_LABEL.match(href):
                    self._link_labels.append((href, line))
        for name, line in footnotes.get("unused", ()):
            self.warning(line, f"footnote [^{name}] is defined but never referenced; it is left out")
        self._resolve_wanted()

    def _check_heading(self, token: Token, inline: Token, before: Token | None) -> None:
        anchor, line = str(token.attrs["id"]), token.meta.get("line")
        text, title = plain_text(inline.children or []), tuple(inline.children or [])
        self.headings.append(Heading(int(token.tag[1]), anchor, text, title))
        if before is not None and before.type == "myst_target" and before.content == anchor:
            if self._valid_target(anchor, before.meta.get("line")):
                self.define(anchor, text, before.meta.get("line"), title=text, title_tokens=title)
        else:
            self.labels.targets.setdefault(anchor, Target(anchor, text, line, title=text, title_tokens=title))

    def _valid_target(self, name: str, line: int | None) -> bool:
        try:
            valid_label(name)
        except ValueError as exc:
            self.error(line, f"bad target ({name})=: {exc}")
            return False
        return True

    def _check_math(self, token: Token, line: int | None) -> None:
        display = token.type.startswith("math_block")
        latex, name = split_label(token.content) if display else (token.content, None)
        try:
            to_mathml(latex, display)
        except ValueError as exc:
            self.error(line, str(exc))
        if token.type == "math_block_label":
            if name is not None:
                self.error(line, f"equation labelled twice: '({token.info})' and '\\label{{{name}}}'")
            name = token.info
        if name is not None and self._valid_target(name, line):
            self.equation(name, line)

    def equation(self, name: str, line: int | None) -> None:
        """A labelled equation: numbered "(1)", referenced by {eq}, {numref} and [](#name)."""
        number = self.labels.number("Equation")
        self.define(name, f"Equation {number}", line, html=f"({number})", counter="Equation", number=number)

    def _check_directive(self, directive: Directive, context: CheckContext) -> None:
        for line, problem in directive.problems:
            self.error(line, f"{{{directive.kind}}}: {problem}")
        if not directive.kind:
            self.error(
                directive.line,
                "a ':::' fence needs a directive, e.g. ':::{note}'; write code between ``` fences",
            )
            return
        kind = DIRECTIVES.get(directive.kind)
        if kind is None:
            self.error(directive.line, _unknown("directive", directive.kind, DIRECTIVES))
            return
        if not directive.braces:
            self.warning(
                directive.line,
                f"write '{directive.fence}{{{directive.kind}}}': MyST reads a "
                f"directive's name in braces (this is read as {{{directive.kind}}})",
            )
        parsed = self._parse_input(kind, directive)
        number = self.labels.number(kind.counter) if kind.numbered else None
        label = None  # other kinds with a :label: define it themselves (an equation's number)
        if kind.numbered:
            label = parsed.options.get("label") if parsed is not None else _valid_label(directive)
        caption_tokens = directive.args_tokens if kind.caption_from == "argument" else directive.body_tokens
        caption = plain_text(caption_tokens)
        if label:  # even when another option is bad: no spurious "unresolved reference" errors
            text = f"{kind.counter} {number}" if number else label
            line = directive.option_line("label")
            self.define(
                label, text, line, counter=kind.counter if number else None, number=number, title=caption
            )
        if parsed is None:
            return
        request = kind.check(parsed, context)
        if request is not None:
            layout = parsed.options.get("layout", "l-body")
            entry = Entry(kind, directive.line, request, number, label, layout, caption_tokens)
            self._entries[id(directive)] = entry

    def _parse_input(self, kind: DirectiveKind, directive: Directive) -> DirectiveInput | None:
        """The directive's argument and options parsed by the kind's declarations; None after
        reporting every problem."""
        declared = {option.name: option for option in kind.declared_options()}
        options, ok = {}, True
        for key, raw in directive.options.items():
            line = directive.option_line(key)
            option = declared.get(key)
            if option is None:
                known = ", ".join(declared) or "none"
                self.error(
                    line,
                    f"unknown option ':{key}:' for {{{kind.name}}}{suggest(key, declared)}; "
                    f"its options are: {known}",
                )
                ok = False
                continue
            try:
                options[key] = option.parse(raw)
            except ValueError as exc:
                self.error(line, f"bad value for ':{key}:' in {{{kind.name}}}: {exc}")
                ok = False
        for option in declared.values():
            if option.required and option.name not in directive.options:
                self.error(directive.line, f"{{{kind.name}}} needs :{option.name}: ({option.doc})")
                ok = False
            options.setdefault(option.name, option.default)
        argument = None
        if kind.argument is None and directive.args:
            self.error(directive.line, f"{{{kind.name}}} takes no argument, got '{directive.args}'")
            ok = False
        elif kind.argument is not None and not directive.args and kind.argument.required:
            self.error(directive.line, f"{{{kind.name}}} needs an argument: {kind.argument.doc}")
            ok = False
        elif kind.argument is not None and directive.args:
            try:
                argument = kind.argument.parse(directive.args)
            except ValueError as exc:  # "{kind} is about one unit, not 2" names the kind
                self.error(directive.line, str(exc).replace("{kind}", f"{{{kind.name}}}"))
                ok = False
        if not ok:
            return None
        return DirectiveInput(
            kind=kind.name,
            argument=argument,
            written=directive.args,
            options=options,
            given=frozenset(directive.options),
            body=directive.body,
            body_tokens=directive.body_tokens,
            path=directive.path,
            line=directive.line,
            option_lines=directive.option_lines,
            argument_tokens=directive.args_tokens,
        )

    def _check_role(self, token: Token, context: CheckContext) -> None:
        role = role_of(token, self.doc.path)
        kind = ROLES.get(role.name)
        if kind is None:
            self.error(role.line, _unknown("role", role.name, ROLES))
            token.meta["unknown"] = True
            return
        request = kind.check(role, context)
        if request is not None:
            self._entries[id(role)] = Entry(kind, role.line, request)

    def _resolve_wanted(self) -> None:
        for line, problem in self.labels.unresolved():
            self.error(line, problem)
        for href, line in self._link_labels:
            if self.labels.target(href) is None and not noted(self.doc.path.parent / unquote(href)).exists():
                self.warning(
                    line,
                    f"link to '{href}' names neither a label of this article{self.labels.suggest(href)} "
                    "nor a file next to it",
                )

    # -- plan and follow up ----------------------------------------------------------------
    def plan(self, catalog: Catalog) -> None:
        """Kinds check addresses against their models and say which jobs they need."""
        self.catalog = catalog
        self._quotes_checked = False  # again in every build: a kept article comes checked, not followed up
        self.dictionaries = Dictionaries(
            self.front.dictionaries,
            catalog,
            self.front.model,
            lambda declared, line, message: self.reporter.error(declared.path, line, message),
            self.doc.roots,
            lambda declared, line, message: self.reporter.warning(declared.path, line, message),
        )
        for name in self.front.dictionaries:  # every declaration checked, used or not
            self.dictionaries.resolve(name)
        for key in list(self._entries):
            self._plan_entry(key)

    def _plan_entry(self, key: int) -> None:
        """Plan one entry; one whose jobs read a dictionary not trained yet waits for it
        (`Pending`): the dictionary is computed in the next round, and the entry planned again
        in `follow_up`."""
        entry = self._entries[key]
        try:
            planned = entry.kind.plan(entry.value, PlanContext(self))
        except Pending as pending:
            self._pending[key] = pending.jobs
            self._need(pending.jobs, entry.line)
            return
        if planned is None:  # an error was reported; the build stops before compute
            del self._entries[key]
            return
        entry.value = planned
        self._need(jobs_of(planned), entry.line)

    @property
    def artifacts(self) -> dict[str, Artifact]:
        """The artifacts computed so far (for the dictionaries' weights while planning)."""
        return self._artifacts

    def follow_up(self, artifacts: dict[str, Artifact]) -> None:
        """After a compute round: kinds may extend their jobs from results, or check them;
        entries that waited for a dictionary are planned now that it is trained."""
        self._artifacts = artifacts
        for key, jobs in list(self._pending.items()):
            if all(job.key in artifacts for job in jobs):
                del self._pending[key]
                self._plan_entry(key)
        context = FollowUpContext(self, artifacts)
        # figures first, then roles: a {value} role reads a figure's result, wherever it is
        for key, entry in sorted(self._entries.items(), key=lambda item: isinstance(item[1].kind, RoleKind)):
            if key in self._pending:
                continue
            before = {job.key for job in jobs_of(entry.value)}
            entry.value = entry.kind.follow_up(entry.value, context)
            self._need(tuple(job for job in jobs_of(entry.value) if job.key not in before), entry.line)
        self._check_quoted_numbers(context)

    def _check_quoted_numbers(self, context: FollowUpContext) -> None:
        """Once every {value} has its number (once a build): the literal numbers of each
        paragraph that quotes a figure are checked against that figure's numbers."""
        if self._quotes_checked:
            return
        quoting = []  # (the paragraph's words, its quotes)
        for token in self.doc.walk():
            children = (token.children or []) if token.type == "inline" else []
            quotes = [
                entry.value
                for child in children
                if child.type == "myst_role"
                and (entry := self._entries.get(id(child.meta.get("role")))) is not None
                and isinstance(entry.value, ValueRequest)
            ]
            if quotes:
                quoting.append((" ".join(c.content for c in children if c.type == "text"), quotes))
        every = [quote for _, quotes in quoting for quote in quotes]
        if any(quote.quantity is None and not quote.failed for quote in every):
            return
        self._quotes_checked = True
        for text, quotes in quoting:
            for problem in drifted_numbers(text, quotes, context):
                self.warning(quotes[0].line, problem)

    def labelled(self, label: str) -> Entry | None:
        """The directive `label` names (as references resolve labels); None for a heading,
        an equation or no label."""
        target = self.labels.target(label)
        if target is None:
            return None
        for entry in self._entries.values():
            if entry.label is not None and self.labels.target(entry.label) is target:
                return entry
        return None

    def planned(self, entry: Entry) -> bool:
        """Whether the entry is planned (not waiting for a dictionary to train)."""
        return not any(self._entries.get(key) is entry for key in self._pending)

    def figures(self) -> list[tuple[str, int, object]]:
        """Each figure that computes something, in reading order: its kind's name, its line and
        its latest planned value (whose `jobs` are its artifacts)."""
        return [
            (e.kind.name, e.line, e.value)
            for key, e in self._entries.items()
            if key not in self._pending and jobs_of(e.value)
        ]

    def _need(self, jobs: tuple, line: int) -> None:
        """Ask for `jobs`, and for the faithfulness measures of every feature visualization
        among them that none of them measures."""
        for job in jobs:
            if isinstance(job, FaithfulnessJob):
                self.measured.setdefault(job.image, job)
        measures = [
            measured
            for job in jobs
            if isinstance(job, FeatureVisJob)
            and job.key not in self.measured
            and (measured := measures_of(job, self.probe)) is not None
        ]
        for measured in measures:
            self.measured[measured.image] = measured
        self.needs += [Need(job, self.doc.path, line) for job in (*jobs, *measures)]

    # -- render ----------------------------------------------------------------------------
    def render(self, artifacts: dict[str, Artifact]) -> tuple[str, list[Footnote], list[Reference]]:
        """The body's HTML, footnotes and references; `assets` and `cards` are filled."""
        self._artifacts = artifacts
        self.assets = self.images.files()  # Markdown images
        self.cards = {}
        self.appendix = []
        body, footnote_tokens = _split_footnotes(self.doc.tokens)
        html = self.render_tokens(body)
        env = {"article": self}
        self.headings = [
            replace(h, html=inline_html(self.md, list(h.title_tokens), env)) for h in self.headings
        ]
        footnotes = [Footnote(n, self.render_tokens(t)) for n, t in footnote_tokens]
        citations = self.citations
        references = [Reference(key, n, citations.html[key]) for key, n in citations.numbers.items()]
        return html, footnotes, references

    @property
    def draws_graphs(self) -> bool:
        """Whether a figure of it draws a graph (a circuit, an attribution): `graphs`."""
        return any(
            isinstance(e.kind, DirectiveKind) and type(e.kind).graph is not DirectiveKind.graph
            for e in self._entries.values()
        )

    def graphs(self, artifacts: dict[str, Artifact]) -> list[dict]:
        """The graph of each circuit-like figure, in reading order, with its number, label and
        line: what `graphs.json` holds. Its URLs (images, unit pages) are the page's."""
        self._artifacts = artifacts
        found = []
        for key, entry in self._entries.items():
            if key in self._pending or not isinstance(entry.kind, DirectiveKind):
                continue
            context = RenderContext(
                self, artifacts, entry.number, entry.label, entry.layout, entry.caption, entry.kind.counter
            )
            graph = entry.kind.graph(entry.value, context)
            if graph is not None:
                found.append({"figure": entry.number, "label": entry.label, "line": entry.line, **graph})
        return found

    def render_entry(self, item: Directive | Role) -> str:
        """A directive's or role's HTML (called by render/html.py's rules); its files and hover
        cards join the page's."""
        entry = self._entries[id(item)]
        context = RenderContext(
            self, self._artifacts, entry.number, entry.label, entry.layout, entry.caption, entry.kind.counter
        )
        rendered = entry.kind.render(entry.value, context)
        self.assets.update(rendered.files)
        for anchor, html in rendered.cards.items():
            self.cards.setdefault(anchor, html)
        self.appendix += rendered.appendix
        return rendered.html


def _valid_label(directive: Directive) -> str | None:
    """The :label: as written when it is valid, for a directive whose other options are not."""
    from distillgen.options import label

    try:
        return label(directive.options["label"]) if "label" in directive.options else None
    except ValueError:
        return None


# `[](label)`: MyST's reference without '#'; a path or URL has a dot, slash or colon.
def _unknown(what: str, name: str, known: dict) -> str:
    return f"unknown {what} '{{{name}}}'{suggest(name, known)}; known: {', '.join(sorted(known))}"


def _split_footnotes(tokens: list[Token]) -> tuple[list[Token], list[tuple[int, list[Token]]]]:
    """The body without its footnote block, and each footnote's own tokens."""
    body: list[Token] = []
    notes: list[tuple[int, list[Token]]] = []
    current: list[Token] | None = None
    inside = False
    for token in tokens:
        if token.type == "footnote_block_open":
            inside = True
        elif token.type == "footnote_block_close":
            inside = False
        elif token.type == "footnote_open":
            current = []
            notes.append((token.meta["id"] + 1, current))
        elif token.type == "footnote_close":
            current = None
        elif token.type == "footnote_anchor":
            continue
        elif current is not None:
            current.append(token)
        elif not inside and token.type != "front_matter":
            body.append(token)
    return body, notes
