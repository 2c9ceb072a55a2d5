"""BibTeX files read with pybtex, formatted as HTML in the order entries are first cited."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import pybtex.errors
from pybtex.backends.html import Backend as HtmlBackend
from pybtex.database import BibliographyData, Entry, parse_file
from pybtex.exceptions import PybtexError
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.template import field, sentence

from distillgen.diagnostics import Reporter


class _Style(UnsrtStyle):
    """unsrt, but titles keep the authors' capitalization (unsrt lowercases them)."""

    def format_title(self, e, which_field, as_sentence=True):
        title = field(which_field)
        return sentence[title] if as_sentence else title


_URL_COMMAND = re.compile(r"^\\url\{\s*(.*?)\s*\}$")


class Bibliography:
    def __init__(self, path: Path, data: BibliographyData) -> None:
        self.path = path
        self._data = data
        self._style = _Style()
        self._backend = HtmlBackend()

    @classmethod
    def load(cls, path: Path, reporter: Reporter, cited_from: Path, line: int) -> Bibliography | None:
        if not path.is_file():
            reporter.error(cited_from, line, f"bibliography file not found: {path}")
            return None
        try:
            with pybtex.errors.capture() as problems:
                data = parse_file(str(path), bib_format="bibtex")
        except (PybtexError, UnicodeDecodeError) as exc:
            reporter.error(path, getattr(exc, "lineno", None) or 1, f"cannot read BibTeX: {exc}")
            return None
        for problem in problems:
            reporter.warning(path, None, f"{problem} (the first definition is used)")
        return cls(path, data)

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
        entry = self._clean(self._data.entries[key])
        try:
            with pybtex.errors.capture():
                formatted = self._style.format_entry(key, entry)
            return formatted.text.render(self._backend), None
        except PybtexError as exc:
            return self._plain_html(entry), f"BibTeX entry '{key}' is incomplete ({exc})"

    def _plain_html(self, entry: Entry) -> str:
        people = entry.persons.get("author") or []
        names = ", ".join(_plain(str(person)) for person in people)
        fields = entry.fields
        venue = fields.get("journal") or fields.get("booktitle") or fields.get("publisher")
        parts = [names, _plain(fields.get("title", "")), _plain(venue or ""), fields.get("year", "")]
        html = ". ".join(escape(part) for part in parts if part) + "."
        if url := fields.get("url"):
            html += f' URL: <a href="{escape(url)}">{escape(url)}</a>.'
        return html

    def short_authors(self, key: str) -> str:
        """'Olah et al.' / 'Cammarata and Olah' / the title when there are no authors."""
        entry = self._data.entries[key]
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [_plain(" ".join(p.last_names)) for p in people]
        if not names:
            return _plain(entry.fields.get("title", key))
        if len(names) == 1:
            return names[0]
        if len(names) == 2:
            return f"{names[0]} and {names[1]}"
        return f"{names[0]} et al."

    @staticmethod
    def _clean(entry: Entry) -> Entry:
        # Real bibliographies wrap URLs in \url{...}; pybtex would keep the command verbatim.
        url = entry.fields.get("url")
        if url and (m := _URL_COMMAND.match(url.strip())):
            entry = Entry(entry.type, fields={**entry.fields, "url": m[1]}, persons=entry.persons)
        return entry


def _plain(latex: str) -> str:
    return str(Text.from_latex(latex))
