"""An article's bookkeeping during check, each part a small value the article holds: its labelled
targets and the references to them (`Labels`), the entries it cites (`Citations`), and the
local images its page shows (`LocalImages`). Problems come back as messages; the article
reports them at the line it is checking."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from markdown_it.token import Token

from distillgen.diagnostics import suggest
from distillgen.render.bibliography import Bibliography
from distillgen.safety import image_inside
from distillgen.source.markdown import PAGE_ANCHORS, reserved_id

LINK_LABEL = re.compile(r"^[A-Za-z][\w-]*$")  # what `[](label)` may name besides a file


@dataclass(frozen=True)
class Target:
    """Something a reference can point at."""

    anchor: str
    text: str  # what an empty link or {numref} shows, e.g. "Figure 2", as plain text
    line: int | None
    html: str = ""  # the same as HTML ("(2)" for an equation); escaped `text` when empty
    counter: str | None = None  # "Figure", "Table", "Equation": what it is numbered as
    number: int | None = None
    title: str = ""  # a figure's caption or a heading's text, plain: {name} in {numref}
    # A heading's title as inline tokens: shown with its markup, rendered with the page (its
    # roles are checked in the same walk, after the heading is met).
    title_tokens: tuple[Token, ...] = ()


class Labels:
    """The targets an article defines (figures, headings, equations, `(name)=`), the numbers of
    its counters, and the references made to targets, checked once the whole text was read (a
    reference may come before its label)."""

    def __init__(self) -> None:
        self.targets: dict[str, Target] = {}
        self._identifiers: dict[str, Target] = {}
        self._wanted: list[tuple[str, int | None, str, str | None]] = []
        self._counters: dict[str, int] = {}  # "Figure", "Table", "Equation" -> last number

    def define(self, label: str, text: str, line: int | None, **target) -> str | None:
        """A target named `label` (Target's other fields as keywords); the problem, if any."""
        if label in self.targets:
            return f"duplicate label '{label}' (first defined on line {self.targets[label].line})"
        if reserved_id(label):
            return (
                f"label '{label}' is an id the page itself uses (footnotes, citations, appendix); "
                "choose another"
            )
        self.targets[label] = Target(anchor=label, text=text, line=line, **target)
        return None

    def target(self, label: str) -> Target | None:
        """The target `label` names: exactly, else as MyST matches labels (case and runs of
        spaces do not count)."""
        found = self.targets.get(label)
        if found is None:
            if len(self._identifiers) != len(self.targets):
                self._identifiers = {_identifier(name): t for name, t in reversed(self.targets.items())}
            found = self._identifiers.get(_identifier(label))
        return found

    def link_target(self, href: str) -> Target | None:
        """What a link names: `#label`, or MyST's `label` alone when it is one."""
        if href.startswith("#"):
            return self.target(href[1:])
        return self.target(href) if LINK_LABEL.match(href) else None

    def want(self, label: str, line: int | None, how: str, counter: str | None = None) -> None:
        """A reference to `label` (`how` it was written), numbered as `counter` if given."""
        self._wanted.append((label, line, how, counter))

    def number(self, counter: str) -> int:
        """The next number of `counter` ("Figure", "Table", "Equation"), in reading order."""
        self._counters[counter] = self._counters.get(counter, 0) + 1
        return self._counters[counter]

    def suggest(self, label: str) -> str:
        return suggest(label, [*self.targets, *PAGE_ANCHORS])

    def unresolved(self) -> Iterator[tuple[int | None, str]]:
        """(line, problem) of each reference that names no target, or one of another counter."""
        for label, line, how, counter in self._wanted:
            target = self.target(label)
            if target is None and not reserved_id(label):
                yield line, f"unresolved reference {how}: no label '{label}'{self.suggest(label)}"
            elif target is not None and counter and target.counter != counter:
                what = target.text if target.counter else "not numbered"
                yield line, f"{how} needs a labelled {counter.lower()}, but '{label}' is {what}"


def _identifier(label: str) -> str:
    """MyST's identifier of a label: lower case, runs of spaces as one."""
    return " ".join(label.split()).lower()


class Citations:
    """The entries of the article's bibliography it cites, numbered in order of first use, each
    with its reference's HTML."""

    def __init__(self, bibliography: Bibliography | None, named: bool) -> None:
        self.bibliography = bibliography
        self.named = named  # the front matter names a bibliography (which may not have loaded)
        self.numbers: dict[str, int] = {}  # key -> number
        self.html: dict[str, str] = {}  # key -> the reference list's entry

    def cite(self, key: str) -> tuple[bool, list[str]]:
        """Whether `key` can be cited, and the problems to report (an error when it cannot, a
        warning for an entry shown without a missing field)."""
        if self.bibliography is None:
            unnamed = f"citation '{key}' but the front matter names no 'bibliography'"
            return False, [] if self.named else [unnamed]
        if key not in self.bibliography:
            known = suggest(key, self.bibliography.keys)
            return False, [f"unknown citation key '{key}' in {self.bibliography.path.name}{known}"]
        problems = []
        if key not in self.numbers:
            self.numbers[key] = len(self.numbers) + 1
            html, missing = self.bibliography.entry_html(key)
            self.html[key] = html
            if missing:
                problems.append(f"{missing}; it is shown without the missing field")
        return True, problems


@dataclass(frozen=True)
class Asset:
    """A local file a page shows: where it is, and its URL inside the article's folder."""

    url: str
    path: Path


class LocalImages:
    """The local images an article shows (Markdown and raw HTML images, its teaser, a figure's
    file), each inside the articles folder (or an --allow-root) and an image by its content,
    with a URL in the article's folder that carries its digest."""

    def __init__(self, folder: Path, roots: tuple[Path, ...]) -> None:
        self.folder, self.roots = folder, roots
        self._urls: dict[Path, str] = {}

    def add(self, src: str) -> Asset:
        """The image `src` names; ValueError with the author's message when it cannot be shown."""
        path = image_inside(self.folder, src, self.roots)
        if path not in self._urls:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
            ascii_stem = unicodedata.normalize("NFKD", path.stem).encode("ascii", "ignore").decode()
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", ascii_stem)  # a URL without escapes: échelle -> echelle
            self._urls[path] = f"assets/{stem}-{digest}{path.suffix.lower()}"
        return Asset(self._urls[path], path)

    def urls(self) -> list[str]:
        return list(self._urls.values())

    def url(self, src: str) -> str:
        """The URL of a Markdown or raw HTML image that `add` took; `src` as written in the
        page (percent-escaped)."""
        return self._urls[(self.folder / unquote(src)).resolve()]

    def files(self) -> dict[str, Path]:
        """URL -> file, for the page's copies."""
        return {url: path for path, url in self._urls.items()}
