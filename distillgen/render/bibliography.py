"""BibTeX files read with pybtex, formatted as HTML in the order entries are first cited.

A `.bib` file may come from anywhere (a publisher, a colleague's export), so every string in it
is escaped and every link built from it follows the site's URL rule (safety.py): an entry whose
`url` is not http(s), mailto or relative loses the link, with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from html import escape
from pathlib import Path

import pybtex.errors
from pybtex.backends.html import Backend as HtmlBackend
from pybtex.database import BibliographyData, Entry, parse_file
from pybtex.database.input.bibtex import Parser as BibtexParser
from pybtex.exceptions import PybtexError
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels.number import LabelStyle as NumberLabels
from pybtex.style.names.plain import NameStyle as PlainNames
from pybtex.style.sorting.none import SortingStyle as Unsorted
from pybtex.style.template import FieldIsMissing, field, join, node, sentence

from distillgen.diagnostics import Reporter
from distillgen.safety import url_problem


@node
def _names(children, context, role, **kwargs):
    """pybtex's `names`, but BibTeX's `and others` reads "et al." (pybtex prints "others")."""
    try:
        persons = context["entry"].persons[role]
    except KeyError:
        raise FieldIsMissing(role, context["entry"]) from None
    style = context["style"]
    named = [
        style.format_name(person, style.abbreviate_names) for person in persons if not _is_others(person)
    ]
    if len(named) < len(persons):
        return join[join(sep=", ")[named], " et al."].format_data(context)
    return join(**kwargs)[named].format_data(context)


def _is_others(person) -> bool:
    return str(person) == "others"


class _Style(UnsrtStyle):
    """unsrt, but titles keep the authors' capitalization (unsrt lowercases them), and `and
    others` is "et al.". Its parts are given as classes: pybtex looks a name up among the
    installed packages' entry points, a quarter of a second on every bibliography."""

    def __init__(self) -> None:
        super().__init__(label_style=NumberLabels, name_style=PlainNames, sorting_style=Unsorted)

    def format_title(self, e, which_field, as_sentence=True):
        title = field(which_field)
        return sentence[title] if as_sentence else title

    def format_names(self, role, as_sentence=True):
        formatted = _names(role, sep=", ", sep2=" and ", last_sep=", and ")
        return sentence[formatted] if as_sentence else formatted


class _Backend(HtmlBackend):
    """pybtex's HTML backend escapes text but writes link targets as they are: a DOI of
    `"><script>…` would end the attribute. Escape them, and link only what the URL rule allows."""

    @staticmethod
    def format_href(url, text, external=False):
        if not text:
            return ""
        if url_problem(url):  # entries' `url` fields were checked, with a warning, when cited
            return text
        return f'<a href="{escape(url)}">{text}</a>'


_URL_COMMAND = re.compile(r"^\\url\{\s*(.*?)\s*\}$")
_ARXIV_OLD = re.compile(r"^[a-z-]+(\.[A-Z]{2})?/\d{7}(v\d+)?$")  # hep-th/9901001: an arXiv id with a slash
_ENTRY_START = re.compile(r"^\s*@\w+\s*[{(]\s*([^,\s]+)\s*,", re.MULTILINE)


class Bibliography:
    def __init__(self, path: Path, data: BibliographyData, reporter: Reporter | None = None) -> None:
        self.path = path
        self._data = data
        self._style = _Style()
        self._backend = _Backend()
        self._reporter = reporter
        self._lines: dict[str, list[int]] | None = None  # entry key -> its lines, read when first needed
        self.digest = ""  # of the file as loaded: what a page citing it is made of

    def __getstate__(self) -> dict:
        """Kept with its checked article (checked.py) without the build's reporter: its
        warnings are given while citing, at check, and replayed from there."""
        return {**self.__dict__, "_reporter": None}

    @classmethod
    def load(cls, path: Path, reporter: Reporter, cited_from: Path, line: int) -> Bibliography | None:
        if not path.is_file():
            reporter.error(cited_from, line, f"bibliography file not found: {path}")
            return None
        try:
            with pybtex.errors.capture() as problems:
                data = parse_file(str(path), bib_format=BibtexParser)
        except (PybtexError, UnicodeDecodeError) as exc:
            reporter.error(path, getattr(exc, "lineno", None) or 1, f"cannot read BibTeX: {exc}")
            return None
        bibliography = cls(path, data, reporter)
        with contextlib.suppress(OSError):
            bibliography.digest = hashlib.sha256(path.read_bytes()).hexdigest()
        for problem in problems:
            repeated = re.match(r"repeated bibliography entry: (\S+)", str(problem))
            at = bibliography._line_of(repeated[1], occurrence=1) if repeated else None
            reporter.warning(path, at, f"{problem} (the first definition is used)")
        return bibliography

    @property
    def keys(self) -> list[str]:
        return list(self._data.entries)

    def __contains__(self, key: str) -> bool:
        return key in self._data.entries

    def entry_html(self, key: str) -> tuple[str, str | None]:
        """The formatted entry, and a problem to report when the entry lacks fields its type needs.

        Published bibliographies often do (an @inproceedings without booktitle); the entry is then
        shown in a plainer form with the fields it has.
        """
        entry = self._without_unsafe_url(key, self._clean(self._data.entries[key]))
        try:
            with pybtex.errors.capture():
                formatted = self._style.format_entry(key, entry)
            return formatted.text.render(self._backend), None
        except PybtexError as exc:
            return self._plain_html(entry), f"BibTeX entry '{key}' is incomplete ({exc})"

    def _plain_html(self, entry: Entry) -> str:
        people = entry.persons.get("author") or []
        given_first = [  # "Laurens van der Maaten", as the formatted entries write names
            _plain(" ".join([*p.first_names, *p.middle_names, *p.prelast_names, *p.last_names]) or str(p))
            for p in people
            if not _is_others(p)
        ]
        names = _listed(given_first, any(_is_others(p) for p in people))
        fields = entry.fields
        venue = fields.get("journal") or fields.get("booktitle") or fields.get("publisher")
        parts = [names, _plain(fields.get("title", "")), _plain(venue or ""), fields.get("year", "")]
        html = ". ".join(escape(part) for part in parts if part) + "."
        if (url := fields.get("url")) and not url_problem(url):
            html += f' URL: <a href="{escape(url)}">{escape(url)}</a>.'
        return html

    def scholar_reference(self, key: str) -> str:
        """The entry as Google Scholar's `citation_reference` meta tag reads it."""
        entry = self._data.entries[key]
        fields = entry.fields
        parts = [("citation_title", _plain(fields.get("title", "")))]
        people = [person for person in entry.persons.get("author") or [] if not _is_others(person)]
        parts += [("citation_author", _plain(str(person))) for person in people]
        parts += [
            ("citation_journal_title", _plain(fields.get("journal") or fields.get("booktitle") or "")),
            ("citation_publication_date", fields.get("year", "")),
            ("citation_doi", fields.get("doi", "")),
        ]
        # `;` separates the tag's fields: a title holding one must not add a field of its own
        return ";".join(f"{name}={value.replace(';', ',')}" for name, value in parts if value)

    def short_authors(self, key: str) -> str:
        """'Olah et al.' / 'Cammarata and Olah' / the title when there are no authors."""
        entry = self._data.entries[key]
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        # 'van der Maaten': the name particles belong to the surname here
        names = [_plain(" ".join([*p.prelast_names, *p.last_names])) for p in people if not _is_others(p)]
        if not names:
            return _plain(entry.fields.get("title", key))
        if len(names) < len(people):  # `and others`
            return f"{names[0]} et al."
        if len(names) == 1:
            return names[0]
        if len(names) == 2:
            return f"{names[0]} and {names[1]}"
        return f"{names[0]} et al."

    def _without_unsafe_url(self, key: str, entry: Entry) -> Entry:
        """The entry, without its `url` field (and with a warning) when the site may not link it."""
        url = entry.fields.get("url")
        problem = url_problem(url) if url else None
        if problem is None:
            return entry
        if self._reporter is not None:
            self._reporter.warning(
                self.path, self._line_of(key), f"entry '{key}': url {problem}; the link is left out"
            )
        fields = {name: value for name, value in entry.fields.items() if name != "url"}
        return Entry(entry.type, fields=fields, persons=entry.persons)

    def _line_of(self, key: str, occurrence: int = 0) -> int | None:
        """The line where entry `key` starts (pybtex does not keep it), or where it is written
        again (`occurrence` 1); None when not found."""
        if self._lines is None:
            text = self.path.read_text(encoding="utf-8", errors="replace")
            self._lines = {}
            for m in _ENTRY_START.finditer(text):
                self._lines.setdefault(m[1].lower(), []).append(text.count("\n", 0, m.start(1)) + 1)
        lines = self._lines.get(key.lower(), [])
        return lines[occurrence] if occurrence < len(lines) else None

    @staticmethod
    def _clean(entry: Entry) -> Entry:
        fields = dict(entry.fields)
        # Real bibliographies wrap URLs in \url{...}; pybtex would keep the command verbatim.
        url = fields.get("url")
        if url and (m := _URL_COMMAND.match(url.strip())):
            fields["url"] = m[1]
        # unsrt links every `eprint` to arxiv.org; a bioRxiv (or other) eprint is a DOI or URL.
        eprint = fields.get("eprint", "").strip()
        archive = (fields.get("archiveprefix") or fields.get("eprinttype") or "arxiv").strip().lower()
        if eprint and (archive != "arxiv" or "/" in eprint and not _ARXIV_OLD.match(eprint)):
            del fields["eprint"]
            if re.match(r"^https?://", eprint):
                fields.setdefault("url", eprint)
            elif eprint.startswith("10."):
                fields.setdefault("doi", eprint)
        cleaned = Entry(entry.type, fields=fields, persons=entry.persons)
        cleaned.key = entry.key  # pybtex names the entry in its errors
        return cleaned


def _listed(names: list[str], others: bool) -> str:
    """'A', 'A and B', 'A, B and C', or 'A, B et al.'."""
    if others:
        return ", ".join(names) + " et al."
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)


def _plain(latex: str) -> str:
    return str(Text.from_latex(latex))
