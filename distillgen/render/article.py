"""One article through the check and render passes.

`Article.check()` walks the tokens once in reading order: kinds validate their options and
arguments, figures get numbers, citations get numbers in order of first use, references are
collected and resolved at the end. `Article.render()` then turns the same tokens into HTML;
it only reads what the check pass decided, so it cannot fail on author input.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from distillgen.cache import Artifact
from distillgen.compute import Catalog, Need
from distillgen.diagnostics import Reporter, suggest
from distillgen.figures import DIRECTIVES, ROLES
from distillgen.render.bibliography import Bibliography
from distillgen.render.math import to_mathml
from distillgen.safety import image_inside
from distillgen.source import Document
from distillgen.source.document import role_of
from distillgen.source.frontmatter import FrontMatter
from distillgen.units import ModelError, ModelInfo, ModelSpec, SpecError, parse_spec

DEFAULT_MODEL = "shapes"

# Anchors every article page has (see templates/article.html).
PAGE_ANCHORS = ("contents", "appendix", "footnotes", "references", "citation")


@dataclass(frozen=True)
class Target:
    """Something a reference can point at."""

    anchor: str
    text: str  # what an empty link or {numref} shows, e.g. "Figure 2"
    line: int


@dataclass(frozen=True)
class Heading:
    level: int
    anchor: str
    text: str


@dataclass(frozen=True)
class Footnote:
    number: int
    html: str


@dataclass(frozen=True)
class Reference:
    key: str
    number: int
    html: str


class Article:
    def __init__(self, doc: Document, front: FrontMatter, md: MarkdownIt, reporter: Reporter) -> None:
        self.doc = doc
        self.front = front
        self.md = md
        self.reporter = reporter
        self.bibliography: Bibliography | None = None
        self.targets: dict[str, Target] = {}
        self.citations: dict[str, int] = {}  # key -> number, in order of first use
        self.reference_html: dict[str, str] = {}
        self.headings: list[Heading] = []
        self.assets: dict[str, Path] = {}  # URL inside the article's folder -> source file
        self._asset_urls: dict[Path, str] = {}
        self._wanted: list[tuple[str, int, str]] = []  # (label, line, how it was referenced)
        self._figures = 0
        self._checked: list[tuple[object, object]] = []  # (kind, directive or role) that passed check
        self.catalog: Catalog | None = None
        self.needs: list[Need] = []  # jobs this article's figures asked for, in reading order
        self.artifacts: dict[str, Artifact] = {}  # job key -> artifact, filled before render
        self.cards: dict[str, str] = {}  # hover cards (id -> HTML), written once at the page's end
        self.shared: dict[str, object] = {}  # state kinds share across one article's directives

    @property
    def slug(self) -> str:
        return self.doc.slug

    # -- reporting, for kinds --------------------------------------------------------------
    def error(self, line: int | None, message: str) -> None:
        self.reporter.error(self.doc.path, line, message)

    def warning(self, line: int | None, message: str) -> None:
        self.reporter.warning(self.doc.path, line, message)

    # -- services for kinds during check ---------------------------------------------------
    def define(self, label: str, text: str, line: int) -> None:
        if label in self.targets:
            first = self.targets[label].line
            self.error(line, f"duplicate label '{label}' (first defined on line {first})")
            return
        self.targets[label] = Target(anchor=label, text=text, line=line)

    def want(self, label: str, line: int, how: str) -> None:
        """Record a reference; it is resolved when the whole article has been seen."""
        self._wanted.append((label, line, how))

    def cite(self, key: str, line: int) -> bool:
        if self.bibliography is None:
            if self.front.bibliography is None:
                self.error(line, f"citation '{key}' but the front matter names no 'bibliography'")
            return False
        if key not in self.bibliography:
            self.error(
                line,
                f"unknown citation key '{key}' in {self.bibliography.path.name}"
                f"{suggest(key, self.bibliography.keys)}",
            )
            return False
        if key not in self.citations:
            self.citations[key] = len(self.citations) + 1
            html, problem = self.bibliography.entry_html(key)
            self.reference_html[key] = html
            if problem:
                self.warning(line, f"{problem}; it is shown without the missing field")
        return True

    def asset(self, src: str, line: int) -> str | None:
        """Register a local file the page shows; returns its URL relative to the page."""
        try:  # inside the articles folder (or an --allow-root), an image by its content
            path = image_inside(self.doc.path.parent, src, self.doc.roots)
        except ValueError as exc:
            self.error(line, str(exc))
            return None
        if path in self._asset_urls:
            return self._asset_urls[path]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        url = f"assets/{path.stem}-{digest}{path.suffix.lower()}"
        self.assets[url] = path
        self._asset_urls[path] = url
        return url

    def model_spec(self, text: str | None, line: int) -> ModelSpec | None:
        """A directive's `:model:`, else the front matter's `model:`, else the shapes network."""
        written = text or self.front.model or DEFAULT_MODEL
        if not text and self.front.model:
            line = self.front.lines.get("model", line)
        try:
            return parse_spec(written, self.doc.path.parent)
        except SpecError as exc:
            self.error(line, str(exc))
            return None

    # -- services for kinds during plan ----------------------------------------------------
    def model_info(self, spec: ModelSpec, line: int) -> ModelInfo | None:
        """The model's layers and units (from the cache, or by loading it); None after an error."""
        try:
            return self.catalog.info(spec)
        except (ModelError, SpecError) as exc:
            self.error(line, str(exc))
            return None

    def need(self, job, line: int) -> None:
        """Ask for a job's artifact; `artifact(job)` hands it over during render."""
        self.needs.append(Need(job, self.doc.path, line))

    # -- services for kinds during render --------------------------------------------------
    def render_tokens(self, tokens: list[Token]) -> str:
        return self.md.renderer.render(tokens, self.md.options, {"article": self})

    def artifact(self, job) -> Artifact:
        return self.artifacts[job.key]

    def artifact_url(self, artifact: Artifact, name: str) -> str:
        """Copy a file of an artifact into the article's folder; its URL relative to the page."""
        url = f"figures/{artifact.key[:16]}-{name}"
        self.assets[url] = artifact.file(name)
        return url

    def card(self, anchor: str, html: str) -> None:
        """A hover card that `data-hover-ref="{anchor}"` elements show (see distill.js)."""
        self.cards.setdefault(anchor, html)

    def asset_url(self, src: str) -> str:
        return self._asset_urls[(self.doc.path.parent / src).resolve()]

    # -- the two passes ----------------------------------------------------------------------
    def check(self) -> None:
        if self.front.bibliography is not None:
            self.bibliography = Bibliography.load(
                self.front.bibliography,
                self.reporter,
                self.doc.path,
                self.front.lines.get("bibliography", 1),
            )
        tokens = list(self.doc.walk())
        for index, token in enumerate(tokens):
            line = token.meta.get("line")
            if token.type == "directive":
                self._check_directive(token)
            elif token.type == "myst_role":
                self._check_role(token)
            elif token.type == "heading_open" and token.attrs.get("id"):
                text = tokens[index + 1].content
                self.headings.append(Heading(int(token.tag[1]), str(token.attrs["id"]), text))
                self.targets.setdefault(str(token.attrs["id"]), Target(str(token.attrs["id"]), text, line))
            elif token.type in ("math_inline", "math_inline_double", "math_block", "math_block_label"):
                try:
                    to_mathml(token.content, token.type.startswith("math_block"))
                except ValueError as exc:
                    self.error(line, str(exc))
                if token.type == "math_block_label":
                    self.define(token.info, "equation", line)
            elif token.type == "fence" and token.info.strip():
                language = token.info.split()[0]
                try:
                    get_lexer_by_name(language)
                except ClassNotFound:
                    self.warning(line, f"no syntax highlighting for unknown language '{language}'")
            elif token.type == "image":
                src = str(token.attrs.get("src", ""))
                if src and "://" not in src and not src.startswith("data:"):
                    self.asset(src, line)
            elif token.type == "link_open":
                href = str(token.attrs.get("href", ""))
                if href.startswith("#") and len(href) > 1:
                    empty = tokens[index + 1].type == "link_close"
                    self.want(href[1:], line, f"[](#{href[1:]})" if empty else f"link to '{href}'")
        self._resolve_wanted()

    def _check_directive(self, token: Token) -> None:
        directive = token.meta["directive"]
        kind = DIRECTIVES.get(directive.kind)
        if kind is None:
            self.error(directive.line, _unknown("directive", directive.kind, DIRECTIVES))
            return
        options_ok = kind.parse_options(directive, self)
        if kind.numbered:
            self._figures += 1
            directive.number = self._figures
        if directive.opts.get("label"):  # even when another option is bad: no spurious errors
            text = f"Figure {directive.number}" if directive.number else directive.opts["label"]
            self.define(directive.opts["label"], text, directive.option_line("label"))
        if options_ok:
            errors = len(self.reporter.errors)
            kind.check(directive, self)
            if len(self.reporter.errors) == errors:
                self._checked.append((kind, directive))

    def _check_role(self, token: Token) -> None:
        role = role_of(token, self.doc.path)
        kind = ROLES.get(role.name)
        if kind is None:
            self.error(role.line, _unknown("role", role.name, ROLES))
            token.meta["unknown"] = True
            return
        errors = len(self.reporter.errors)
        kind.check(role, self)
        if len(self.reporter.errors) == errors:
            self._checked.append((kind, role))

    def plan(self, catalog: Catalog) -> None:
        """Let computing kinds check addresses against their models and ask for jobs."""
        self.catalog = catalog
        for kind, item in self._checked:
            kind.plan(item, self)

    def follow_up(self) -> None:
        """After each compute round: kinds whose further jobs depend on results ask for them."""
        for kind, item in self._checked:
            kind.follow_up(item, self)

    def _resolve_wanted(self) -> None:
        known = [*self.targets, *PAGE_ANCHORS]
        for label, line, how in self._wanted:
            if label not in self.targets and label not in PAGE_ANCHORS and not label.startswith("fn-"):
                self.error(line, f"unresolved reference {how}: no label '{label}'{suggest(label, known)}")

    def render(self) -> tuple[str, list[Footnote], list[Reference]]:
        body, footnote_tokens = _split_footnotes(self.doc.tokens)
        html = self.render_tokens(body)
        footnotes = [Footnote(n, self.render_tokens(t)) for n, t in footnote_tokens]
        references = [Reference(key, n, self.reference_html[key]) for key, n in self.citations.items()]
        return html, footnotes, references


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
