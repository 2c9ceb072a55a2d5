"""The site config: `distillgen.yml` at the root of the articles folder, validated in one place.

Optional: without it a site is built as before. Errors are `path:line` like front matter's.

    title: Circuits notes
    description: Small circuits in small networks.
    atlas:
      - model: shapes
        layers: [conv2, mixed3, mixed4]
        featurevis: {steps: 256}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from distillgen.diagnostics import Reporter, suggest
from distillgen.options import FEATUREVIS_SETTINGS
from distillgen.safety import url_problem
from distillgen.source.atlasrequest import LIMITS, AtlasRequest
from distillgen.source.dictionaries import declarations
from distillgen.source.frontmatter import (
    Author,
    FrontMatter,
    Invalid,
    author_value,
    featurevis_options,
    flag_value,
    model_spec_value,
    repeated_keys,
    show_node,
    text_value,
)

CONFIG_NAME = "distillgen.yml"
DEFAULT_TITLE = "distillgen"


@dataclass(frozen=True)
class SiteConfig:
    title: str = DEFAULT_TITLE
    description: str = ""
    url: str = ""  # where the site is published: canonical links, citations, Scholar tags
    authors: tuple[Author, ...] = ()  # for articles whose front matter names none
    affiliation_urls: dict[str, str] = field(default_factory=dict)  # of those authors' affiliations
    model: str | None = None  # the default model of every article's figures
    featurevis: dict[str, Any] = field(default_factory=dict)  # defaults for every article
    dictionaries: dict[str, Any] = field(default_factory=dict)  # name -> Declaration, for every article
    atlas: tuple[AtlasRequest, ...] = ()
    search: bool = True  # a Pagefind index and a search page (render/search.py)

    @property
    def frame(self) -> str:
        """What every page's frame (header, defaults, links) depends on: for the page cache."""
        return repr(dataclasses.replace(self, atlas=()))

    def article_url(self, slug: str) -> str:
        """The article's public address, or '' when the site's `url` is not set."""
        return f"{self.url.rstrip('/')}/{slug}/" if self.url else ""

    def defaults_for(self, front: FrontMatter) -> FrontMatter:
        """The article's front matter with the site's defaults where it is silent."""
        if not front.authors:
            front.authors = list(self.authors)
            front.affiliation_urls = {**self.affiliation_urls, **front.affiliation_urls}
        front.model = front.model or self.model
        front.featurevis = {**self.featurevis, **front.featurevis}
        front.dictionaries = {**self.dictionaries, **front.dictionaries}
        return front


KEYS = {
    "title": "the site's title, on every page and the index",
    "description": "one sentence under the title on the index",
    "url": "where the site is published, e.g. https://example.org/notes (canonical links, citations)",
    "authors": "default authors of articles whose front matter names none (as in front matter)",
    "model": "default model spec for every article's figures",
    "featurevis": "defaults for every article's feature visualizations, e.g. {steps: 256}",
    "atlas": "models to build an atlas of: {model, layers, featurevis, diversity, examples, dataset}",
    "search": "true (default) for a search page over the articles and unit pages, false for none",
    "dictionaries": "sparse dictionaries every article may use, e.g. {m4: {layer: mixed4, features: 384}}",
}
ATLAS_KEYS = {
    "model": "model spec (required), e.g. shapes",
    "layers": "the layers to show, e.g. [conv2, mixed3] (default: every convolutional layer)",
    "featurevis": "feature visualization settings, e.g. {steps: 256}",
    "diversity": f"images in each unit's diversity set (0 for none, default {AtlasRequest.diversity})",
    "examples": f"dataset examples each way per unit (0 for none, default {AtlasRequest.examples})",
    "dataset": "probe set of the examples: 'shapes', 'glyphs' or a folder of images "
    f"(default {AtlasRequest.dataset})",
}


def load_site_config(src: Path, reporter: Reporter) -> SiteConfig:
    """The config in `src`, or the defaults when there is none. Problems are reported; what was
    valid is kept, so that one build lists every mistake."""
    path = src / CONFIG_NAME
    if not path.is_file():
        return SiteConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reporter.error(path, None, f"cannot read the site config: {exc}")
        return SiteConfig()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reporter.error(path, 1 + (mark.line if mark else 0), f"malformed site config: {exc.problem or exc}")
        return SiteConfig()
    if root is None:
        return SiteConfig()
    if not isinstance(root, yaml.MappingNode):
        reporter.error(path, 1, "the site config must be a YAML mapping of keys to values")
        return SiteConfig()

    def line_of(node: yaml.Node) -> int:
        return node.start_mark.line + 1

    for repeated, first in repeated_keys(root):
        reporter.error(
            path, line_of(repeated), f"key '{repeated.value}' is given twice (first on line {line_of(first)})"
        )
    values: dict[str, Any] = {}
    for key_node, value_node in root.value:
        key = str(key_node.value)
        if key in values:
            continue
        if key not in KEYS:
            reporter.error(
                path,
                line_of(key_node),
                f"unknown key '{key}'{suggest(key, KEYS)}; known keys: {', '.join(KEYS)}",
            )
            continue
        try:
            if key == "atlas":
                items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                values[key] = tuple(
                    request
                    for index, item in enumerate(items)
                    if (request := _atlas(item, f"atlas[{index}]", path, reporter)) is not None
                )
            elif key == "search":
                values[key] = flag_value(value_node, key)
            elif key == "url":
                values[key] = _site_url(value_node)
            elif key == "authors":
                if not isinstance(value_node, yaml.SequenceNode):
                    raise Invalid(value_node, "'authors' must be a list")
                urls: dict[str, str] = {}
                values[key] = tuple(
                    author_value(n, f"authors[{i}]", urls=urls) for i, n in enumerate(value_node.value)
                )
                values["affiliation_urls"] = urls
            elif key == "model":
                values[key] = model_spec_value(value_node, path)
            elif key == "dictionaries":
                values[key] = declarations(
                    value_node,
                    path,
                    line_of,
                    lambda bad, message: reporter.error(path, line_of(bad), message),
                )
            elif key == "featurevis":
                if not isinstance(value_node, yaml.MappingNode):
                    raise Invalid(value_node, "'featurevis' must be a mapping, e.g. {steps: 256}")
                values[key] = featurevis_options(
                    value_node, lambda bad, message: reporter.error(path, line_of(bad), message)
                )
            else:
                values[key] = text_value(value_node, key)
        except Invalid as exc:
            reporter.error(path, line_of(exc.node or value_node), str(exc))
    return SiteConfig(**values)


def _atlas(node: yaml.Node, where: str, path: Path, reporter: Reporter) -> AtlasRequest | None:
    if not isinstance(node, yaml.MappingNode):
        raise Invalid(node, f"'{where}' must be a mapping like {{model: shapes, layers: [mixed3]}}")
    fields: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key not in ATLAS_KEYS:
            known = ", ".join(ATLAS_KEYS)
            raise Invalid(key_node, f"unknown key '{where}.{key}'{suggest(key, ATLAS_KEYS)}; known: {known}")
        if key == "model":
            fields[key] = model_spec_value(value_node, path)
        elif key == "layers":
            fields[key] = _layers(value_node, f"{where}.layers")
        elif key == "featurevis":
            if not isinstance(value_node, yaml.MappingNode):
                raise Invalid(value_node, f"'{where}.featurevis' must be a mapping, e.g. {{steps: 256}}")
            fields[key] = featurevis_options(
                value_node,
                lambda bad, message: reporter.error(path, bad.start_mark.line + 1, message),
                FEATUREVIS_SETTINGS,
            )
        elif key in LIMITS:
            fields[key] = _count(value_node, f"{where}.{key}", *LIMITS[key])
        else:
            fields[key] = text_value(value_node, f"{where}.{key}")
    if "model" not in fields:
        raise Invalid(node, f"'{where}' needs a 'model', e.g. model: shapes")
    return AtlasRequest(**fields, base=path.parent, path=path, line=node.start_mark.line + 1)


def _layers(node: yaml.Node, where: str) -> tuple[str, ...]:
    if isinstance(node, yaml.SequenceNode):
        names = [text_value(item, where) for item in node.value]
    else:
        names = text_value(node, where).split(",")
    names = [name.strip() for name in names if name.strip()]
    if not names:
        raise Invalid(node, f"'{where}' names no layer; leave it out to show every convolutional layer")
    return tuple(names)


def _site_url(node: yaml.Node) -> str:
    url = text_value(node, "url")
    if not url.startswith(("https://", "http://")) or url_problem(url):
        raise Invalid(node, f"'url' must be the site's address (https://…), not {show_node(node)}")
    return url


def _count(node: yaml.Node, where: str, low: int, high: int) -> int:
    text = text_value(node, where)
    if not text.isdigit() or not low <= int(text) <= high:
        raise Invalid(node, f"'{where}' must be a whole number from {low} to {high}, not {show_node(node)}")
    return int(text)
