"""Front matter: the YAML header of an article, validated in one place.

Errors name the key (`authors[1].url`) and point at the line where it is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from distillgen.diagnostics import Reporter, suggest
from distillgen.options import FEATUREVIS_SETTINGS
from distillgen.safety import resolve_inside, url_problem
from distillgen.units import SpecError, parse_spec


@dataclass(frozen=True)
class Author:
    name: str
    url: str | None = None
    affiliations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """One entry of "Updates and Corrections"."""

    date: dt.date
    text: str


@dataclass
class FrontMatter:
    title: str
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
    # 1-based line of each top-level key, for later errors about a key's value.
    lines: dict[str, int] = field(default_factory=dict)

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
    "authors": "a list of names or of {name, url, affiliations}",
    "date": "publication date, YYYY-MM-DD",
    "updated": "date of the last update, YYYY-MM-DD (shown under Updates and Corrections)",
    "changelog": "a list of {date: YYYY-MM-DD, text: what changed}, for Updates and Corrections",
    "doi": "the article's DOI, e.g. 10.23915/distill.00024",
    "bibliography": "path of a BibTeX file, relative to the article",
    "license": "licence of the text, e.g. CC-BY 4.0",
    "model": "default model spec for the article's figures",
    "featurevis": "defaults for {featurevis} and {unit}, e.g. {steps: 256, size: 64}",
}
AUTHOR_KEYS = ("name", "url", "affiliations", "affiliation")


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
        try:
            _set(fm, key, value_node, path, first_line, roots or (path.parent,))
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
    fm: FrontMatter, key: str, node: yaml.Node, path: Path, first_line: int, roots: tuple[Path, ...]
) -> None:
    if key == "authors":
        if not isinstance(node, yaml.SequenceNode):
            raise Invalid(node, "'authors' must be a list")
        fm.authors = [author_value(n, f"authors[{i}]") for i, n in enumerate(node.value)]
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
    else:
        setattr(fm, key, text_value(node, key))
        if key == "title" and not fm.title.strip():
            raise Invalid(node, "'title' must not be empty")


def featurevis_options(node: yaml.MappingNode, report: Callable[[yaml.Node, str], None]) -> dict[str, Any]:
    """`featurevis: {steps: 256, size: 64}`, parsed by the same parsers as {featurevis}'s
    options; each bad key is reported, the good ones are kept."""
    declared = {option.name: option for option in FEATUREVIS_SETTINGS}
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


def author_value(node: yaml.Node, where: str) -> Author:
    if isinstance(node, yaml.ScalarNode):
        return Author(name=text_value(node, where))
    if not isinstance(node, yaml.MappingNode):
        raise Invalid(node, f"'{where}' must be a name or a mapping with 'name'")
    fields: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        if key_node.value not in AUTHOR_KEYS:
            raise Invalid(
                key_node,
                f"unknown key '{where}.{key_node.value}'{suggest(key_node.value, AUTHOR_KEYS)}",
            )
        fields[key_node.value] = value_node
    if "name" not in fields:
        raise Invalid(node, f"'{where}' needs a 'name'")
    affiliations: tuple[str, ...] = ()
    for key in ("affiliations", "affiliation"):
        if key not in fields:
            continue
        value = fields[key]
        if isinstance(value, yaml.SequenceNode):
            affiliations = tuple(text_value(v, f"{where}.{key}") for v in value.value)
        else:
            affiliations = (text_value(value, f"{where}.{key}"),)
    url = _url(fields["url"], f"{where}.url") if "url" in fields else None
    return Author(text_value(fields["name"], f"{where}.name"), url, affiliations)


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
