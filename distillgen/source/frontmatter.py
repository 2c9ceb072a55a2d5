"""Front matter: the YAML header of an article, validated in one place.

Errors name the key (`authors[1].url`) and point at the line where it is written.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token

from distillgen.diagnostics import Reporter, suggest
from distillgen.options import FEATUREVIS_DEFAULTS
from distillgen.safety import resolve_inside, url_problem
from distillgen.source.dictionaries import declarations
from distillgen.source.document import plain_text
from distillgen.units import SpecError, parse_spec


@dataclass(frozen=True)
class Author:
    name: str
    url: str | None = None
    affiliations: tuple[str, ...] = ()  # names (an `affiliations:` entry's id is replaced by its name)
    email: str | None = None
    orcid: str | None = None  # 0000-0002-1825-0097
    corresponding: bool = False
    equal_contributor: bool = False


@dataclass(frozen=True)
class Change:
    """One entry of "Updates and Corrections"."""

    date: dt.date
    text: str


@dataclass
class FrontMatter:
    title: str  # plain text, for <title>, the index and citations
    title_html: str = ""  # the title's Markdown as HTML (raw HTML escaped), for the heading
    description: str = ""
    abstract: str = ""  # a paragraph at the top of the article, distinct from the description
    teaser: str | None = None  # an image for the title block and the index, as written
    updated: dt.date | None = None
    changelog: list[Change] = field(default_factory=list)
    authors: list[Author] = field(default_factory=list)
    date: dt.date | None = None
    doi: str | None = None
    bibliography: Path | None = None
    license: str | None = None
    model: str | None = None
    # option -> value: defaults for the article's feature visualizations (FEATUREVIS_SETTINGS)
    featurevis: dict[str, Any] = field(default_factory=dict)
    # name -> Declaration (source/dictionaries.py): sparse dictionaries whose features are units
    dictionaries: dict[str, Any] = field(default_factory=dict)
    # 1-based line of each top-level key, for later errors about a key's value.
    lines: dict[str, int] = field(default_factory=dict)
    affiliation_urls: dict[str, str] = field(default_factory=dict)  # affiliation name -> its url

    @property
    def affiliations(self) -> list[str]:
        """Every distinct affiliation in order of first mention."""
        seen: dict[str, None] = {}
        for author in self.authors:
            seen.update(dict.fromkeys(author.affiliations))
        return list(seen)


KEYS = {
    "title": "the article's title (required)",
    "description": "one sentence shown under the title and in the index",
    "abstract": "a paragraph that opens the article (and its Scholar abstract)",
    "teaser": "an image shown in the title block and on the index, relative to the article",
    "authors": "a list of names or of {name, url, affiliations, email, orcid, corresponding, …}",
    "affiliations": "MyST's list of {id, name, url}: authors' affiliations may name them by id",
    "date": "publication date, YYYY-MM-DD",
    "updated": "date of the last update, YYYY-MM-DD (shown under Updates and Corrections)",
    "changelog": "a list of {date: YYYY-MM-DD, text: what changed}, for Updates and Corrections",
    "doi": "the article's DOI, e.g. 10.23915/distill.00024",
    "bibliography": "path of a BibTeX file, relative to the article",
    "license": "licence of the text, e.g. CC-BY 4.0",
    "model": "default model spec for the article's figures",
    "featurevis": "defaults for {featurevis} and {unit}, e.g. {steps: 256, size: 64}",
    "dictionaries": "sparse dictionaries whose features are units, e.g. {m4: {layer: mixed4, k: 8}}",
}
AUTHOR_KEYS = (
    "name",
    "url",
    "affiliations",
    "affiliation",
    "email",
    "orcid",
    "corresponding",
    "equal_contributor",
)
# MyST's other author and affiliation keys: accepted, not shown (Distill's byline has no place).
AUTHOR_IGNORED = (
    "id",
    "roles",
    "github",
    "twitter",
    "note",
    "deceased",
    "phone",
    "fax",
    "userId",
    "collaborations",
)
AFFILIATION_KEYS = ("id", "name", "institution", "department", "url")
AFFILIATION_IGNORED = (
    *("address", "city", "state", "postal_code", "country", "ror", "isni", "ringgold", "email", "phone"),
    *("fax", "collaboration", "doi"),
)
_DOI = re.compile(r"^10\.[^/\s]+/.+$")  # a prefix, a slash, a suffix (escaped where shown)
_DOI_PREFIX = re.compile(r"^(https?://(dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
_ORCID = re.compile(r"^(https?://orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The title is Markdown (emphasis, code); raw HTML in it is shown as text.
_TITLE = MarkdownIt("commonmark", {"html": False, "typographer": True}).enable(
    ["replacements", "smartquotes"]
)


class Invalid(Exception):
    def __init__(self, node: yaml.Node | None, message: str) -> None:
        super().__init__(message)
        self.node = node


def parse_front_matter(
    text: str | None,
    path: Path,
    first_line: int,
    reporter: Reporter,
    roots: tuple[Path, ...] | None = None,
) -> FrontMatter:
    """Validate the YAML header. Problems are reported; what was valid is still returned, so
    the rest of the article can be checked and the author sees every error in one build.

    `roots`: the folders a `bibliography:` may be in (default: the article's own folder)."""
    fallback = FrontMatter(title=path.stem)
    if text is None:
        reporter.error(path, 1, "missing front matter: start the file with '---', 'title: …', '---'")
        return fallback
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = first_line + (mark.line if mark else 0)
        reporter.error(path, line, f"malformed front matter: {exc.problem or exc}")
        return fallback
    if root is None or not isinstance(root, yaml.MappingNode):
        reporter.error(path, first_line, "front matter must be a YAML mapping of keys to values")
        return fallback

    def line_of(node: yaml.Node | None) -> int:
        return first_line + (node.start_mark.line if node is not None else 0)

    for repeated, first in repeated_keys(root):
        reporter.error(
            path,
            line_of(repeated),
            f"front matter key '{repeated.value}' is given twice (first on line {line_of(first)}); keep one",
        )
    fm = FrontMatter(title=path.stem)
    affiliations: dict[str, tuple[str, str | None]] = {}  # id -> (name, url), read before authors
    for key_node, value_node in root.value:
        if key_node.value == "affiliations":
            try:
                affiliations = _affiliations(value_node)
            except Invalid as exc:
                reporter.error(path, line_of(exc.node or value_node), f"front matter {exc}")
    for key_node, value_node in root.value:
        key = key_node.value
        if key in fm.lines:
            continue  # a repeated key, reported above; the first one counts
        fm.lines[key] = line_of(key_node)
        if key not in KEYS:
            reporter.warning(
                path,
                line_of(key_node),
                f"unknown front matter key '{key}'{suggest(key, KEYS)}; known keys: " + ", ".join(KEYS),
            )
            continue
        if key == "featurevis" and isinstance(value_node, yaml.MappingNode):
            fm.featurevis = featurevis_options(
                value_node, lambda node, message: reporter.error(path, line_of(node), message)
            )
            continue
        if key == "dictionaries":
            fm.dictionaries = declarations(
                value_node, path, line_of, lambda node, message: reporter.error(path, line_of(node), message)
            )
            continue
        if key == "affiliations":
            continue  # read above
        try:
            _set(fm, key, value_node, path, first_line, roots or (path.parent,), affiliations)
        except Invalid as exc:
            reporter.error(path, line_of(exc.node or value_node), f"front matter {exc}")
    if "title" not in fm.lines:
        reporter.error(path, first_line, "front matter needs a 'title'")
    return fm


def repeated_keys(node: yaml.Node) -> list[tuple[yaml.Node, yaml.Node]]:
    """(repeated key, first key) for every mapping key written twice, at any depth. YAML's
    loaders keep the last value silently; an author who wrote 'title' twice meant one of them."""
    found = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in first:
                    found.append((key_node, first[key_node.value]))
                first.setdefault(key_node.value, key_node)
            found.extend(repeated_keys(value_node))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found.extend(repeated_keys(item))
    return found


def _set(
    fm: FrontMatter,
    key: str,
    node: yaml.Node,
    path: Path,
    first_line: int,
    roots: tuple[Path, ...],
    affiliations: dict[str, tuple[str, str | None]],
) -> None:
    if key == "authors":
        if not isinstance(node, yaml.SequenceNode):
            raise Invalid(node, "'authors' must be a list")
        fm.authors = [
            author_value(n, f"authors[{i}]", affiliations, fm.affiliation_urls)
            for i, n in enumerate(node.value)
        ]
    elif key == "doi":
        fm.doi = _doi(node)
    elif key in ("date", "updated"):
        setattr(fm, key, _date(node, key))
    elif key == "changelog":
        if not isinstance(node, yaml.SequenceNode):
            raise Invalid(node, "'changelog' must be a list of {date: YYYY-MM-DD, text: what changed}")
        fm.changelog = [_change(item, f"changelog[{i}]") for i, item in enumerate(node.value)]
    elif key == "bibliography":
        fm.bibliography = _inside(node, key, path.parent, roots)
    elif key == "model":
        fm.model = model_spec_value(node, path)
    elif key == "featurevis":  # a mapping is read by _featurevis
        raise Invalid(node, "'featurevis' must be a mapping of options, e.g. {steps: 256, size: 64}")
    elif key == "title":
        written = text_value(node, key)
        if not written.strip():
            raise Invalid(node, "'title' must not be empty")
        children = _TITLE.parseInline(written)[0].children or []
        # The heading is linked from the index, and a title is text: links and images (which
        # would load from anywhere, unchecked) become their text.
        shown = [
            Token("text", "", 0, content=plain_text(c.children or [])) if c.type == "image" else c
            for c in children
            if c.type not in ("link_open", "link_close")
        ]
        renderer: RendererHTML = _TITLE.renderer  # type: ignore[assignment]  # markdown-it's HTML one
        fm.title_html = renderer.renderInline(shown, _TITLE.options, {})
        fm.title = plain_text(children) or written
    else:
        setattr(fm, key, text_value(node, key))


def _name(node: yaml.Node, where: str) -> str:
    name = text_value(node, where).strip()
    if not name:
        raise Invalid(node, f"'{where}' must not be empty")
    return name


def _doi(node: yaml.Node) -> str:
    """The DOI itself: `https://doi.org/10.…` and `doi:10.…` as authors paste them are read too."""
    written = text_value(node, "doi").strip()
    doi = _DOI_PREFIX.sub("", written)
    if not _DOI.match(doi):
        raise Invalid(node, f"'doi' must be a DOI like 10.23915/distill.00024, not '{written}'")
    return doi


def featurevis_options(
    node: yaml.MappingNode, report: Callable[[yaml.Node, str], None], options=FEATUREVIS_DEFAULTS
) -> dict[str, Any]:
    """`featurevis: {steps: 256, size: 64, check: specific}`, parsed by the same parsers as
    {featurevis}'s options (an atlas's: its settings, FEATUREVIS_SETTINGS); each bad key is
    reported, the good ones are kept."""
    declared = {option.name: option for option in options}
    values = {}
    for name_node, value_node in node.value:
        name = str(name_node.value)
        if name not in declared:
            known = ", ".join(declared)
            report(name_node, f"unknown key 'featurevis.{name}'{suggest(name, declared)}; known: {known}")
        elif not isinstance(value_node, yaml.ScalarNode):
            report(value_node, f"'featurevis.{name}' must be a single value")
        else:
            try:
                values[name] = declared[name].parse(str(value_node.value))
            except ValueError as exc:
                report(value_node, f"bad value for 'featurevis.{name}': {exc}")
    return values


def model_spec_value(node: yaml.Node, path: Path) -> str:
    """The spec as written, after checking it parses and that a model file it names exists."""
    text = text_value(node, "model")
    try:
        spec = parse_spec(text, path.parent)
    except SpecError as exc:
        raise Invalid(node, f"'model': {exc}") from None
    for file in (spec.name, spec.weights) if spec.kind in ("python", "torchscript") else ():
        if file and not Path(file).is_file():
            raise Invalid(node, f"'model': file not found: {file}")
    return text


def _date(node: yaml.Node, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text_value(node, where))
    except ValueError:
        raise Invalid(node, f"'{where}' must be a date like 2026-11-24, not {show_node(node)}") from None


def _change(node: yaml.Node, where: str) -> Change:
    if not isinstance(node, yaml.MappingNode):
        raise Invalid(node, f"'{where}' must be a mapping like {{date: 2026-11-24, text: Fixed a typo}}")
    fields = {str(k.value): v for k, v in node.value}
    unknown = [name for name in fields if name not in ("date", "text")]
    if unknown or set(fields) != {"date", "text"}:
        raise Invalid(node, f"'{where}' needs exactly 'date' and 'text'")
    return Change(_date(fields["date"], f"{where}.date"), text_value(fields["text"], f"{where}.text"))


def author_value(
    node: yaml.Node,
    where: str,
    known: dict[str, tuple[str, str | None]] | None = None,
    urls: dict[str, str] | None = None,
) -> Author:
    """One author, as a name or as MyST's author object; `known`: the `affiliations:` list by
    id, whose names replace the ids; each affiliation's url goes into `urls`."""
    known = known if known is not None else {}
    urls = urls if urls is not None else {}
    if isinstance(node, yaml.ScalarNode):
        return Author(name=_name(node, where))
    fields = _fields(node, where, AUTHOR_KEYS, AUTHOR_IGNORED, "a name or a mapping with 'name'")
    if "name" not in fields:
        raise Invalid(node, f"'{where}' needs a 'name'")
    affiliations: list[str] = []
    for key in ("affiliations", "affiliation"):
        if key not in fields:
            continue
        value = fields[key]
        for index, item in enumerate(value.value if isinstance(value, yaml.SequenceNode) else [value]):
            if isinstance(item, yaml.MappingNode):  # written in place: {name: …, url: …}
                name, url = _affiliation(item, f"{where}.{key}[{index}]")
            else:
                name, url = known.get(text_value(item, f"{where}.{key}"), (text_value(item, where), None))
            affiliations.append(name)
            if url:
                urls.setdefault(name, url)
    email = text_value(fields["email"], f"{where}.email") if "email" in fields else None
    if email is not None and not _EMAIL.match(email):
        raise Invalid(
            fields["email"], f"'{where}.email' must be an address like ada@example.org, not '{email}'"
        )
    orcid = None
    if "orcid" in fields:
        match = _ORCID.match(text_value(fields["orcid"], f"{where}.orcid").strip())
        if match is None:
            raise Invalid(fields["orcid"], f"'{where}.orcid' must be an ORCID iD like 0000-0002-1825-0097")
        orcid = match[2]
    return Author(
        _name(fields["name"], f"{where}.name"),
        _url(fields["url"], f"{where}.url") if "url" in fields else None,
        tuple(affiliations),
        email,
        orcid,
        flag_value(fields.get("corresponding"), f"{where}.corresponding"),
        flag_value(fields.get("equal_contributor"), f"{where}.equal_contributor"),
    )


def _affiliations(node: yaml.Node) -> dict[str, tuple[str, str | None]]:
    """MyST's top-level `affiliations:` list, by id (or by name when it has none)."""
    if not isinstance(node, yaml.SequenceNode):
        raise Invalid(node, "'affiliations' must be a list of {id, name, url}")
    found: dict[str, tuple[str, str | None]] = {}
    for index, item in enumerate(node.value):
        if isinstance(item, yaml.ScalarNode):
            found[text_value(item, "affiliations")] = (text_value(item, "affiliations"), None)
            continue
        name, url = _affiliation(item, f"affiliations[{index}]")
        fields = _fields(item, f"affiliations[{index}]", AFFILIATION_KEYS, AFFILIATION_IGNORED, "a mapping")
        found[text_value(fields["id"], "id") if "id" in fields else name] = (name, url)
    return found


def _affiliation(node: yaml.Node, where: str) -> tuple[str, str | None]:
    fields = _fields(node, where, AFFILIATION_KEYS, AFFILIATION_IGNORED, "a name or a mapping with 'name'")
    parts = [
        text_value(fields[k], f"{where}.{k}") for k in ("name", "department", "institution") if k in fields
    ]
    if not parts:
        raise Invalid(node, f"'{where}' needs a 'name' or an 'institution'")
    name = parts[0] if "name" in fields else ", ".join(parts)
    return name, _url(fields["url"], f"{where}.url") if "url" in fields else None


def _fields(
    node: yaml.Node, where: str, keys: tuple[str, ...], ignored: tuple[str, ...], what: str
) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise Invalid(node, f"'{where}' must be {what}")
    fields = {}
    for key_node, value_node in node.value:
        if key_node.value in ignored:
            continue
        if key_node.value not in keys:
            raise Invalid(key_node, f"unknown key '{where}.{key_node.value}'{suggest(key_node.value, keys)}")
        fields[key_node.value] = value_node
    return fields


def flag_value(node: yaml.Node | None, where: str) -> bool:
    if node is None:
        return False
    if not isinstance(node, yaml.ScalarNode) or not node.tag.endswith(":bool"):
        raise Invalid(node, f"'{where}' must be true or false")
    return node.value.lower() in ("true", "yes", "on")


def _url(node: yaml.Node, where: str) -> str:
    """A URL the page will link to: http, https, mailto or relative (safety.py)."""
    url = text_value(node, where)
    if problem := url_problem(url):
        raise Invalid(node, f"'{where}': {problem}; write an https:// address")
    return url


def _inside(node: yaml.Node, key: str, base: Path, roots: tuple[Path, ...]) -> Path:
    """A file the key names, inside the folders the build may read (safety.py)."""
    try:
        return resolve_inside(base, text_value(node, key), roots)
    except ValueError as exc:
        raise Invalid(node, f"'{key}': {exc}") from None


def text_value(node: yaml.Node, where: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or node.tag.endswith(":null"):
        raise Invalid(node, f"'{where}' must be text, not {show_node(node)}")
    return str(node.value)


def show_node(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    return f"'{node.value}'" if node.value else "nothing"
