"""Pages from jinja2 templates: one per article, and the index."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from distillgen import __version__
from distillgen.render.words import number, plural
from distillgen.source.frontmatter import FrontMatter
from distillgen.source.siteconfig import SiteConfig

if TYPE_CHECKING:  # what a page shows of an article (render/ is imported by article.py)
    from distillgen.article import Article, Footnote, Heading, Reference


def templates_dir() -> Path:
    return Path(str(files("distillgen.templates")))


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["longdate"] = lambda d: f"{d:%B} {d.day}, {d.year}"
    env.filters["plural"] = plural  # {{ layers | length | plural("layer") }}: "1 layer", "3 layers"
    env.filters["number"] = number  # {{ value | number }}: three significant digits, "−0.125"
    env.globals["search"] = False  # whether the site has a search page: the build sets it
    return env


@dataclass
class Section:
    anchor: str
    text: str
    html: str  # the title's inline markup (escaped by the renderer)
    children: list[Heading] = field(default_factory=list)


def table_of_contents(headings: list[Heading]) -> list[Section]:
    toc: list[Section] = []
    for heading in headings:
        if heading.level == 2 or not toc:
            toc.append(Section(heading.anchor, heading.text, heading.html))
        if heading.level == 3:
            toc[-1].children.append(heading)
    return toc


def render_article(
    env: jinja2.Environment,
    article: Article,
    body: str,
    footnotes: list[Footnote],
    references: list[Reference],
    config: SiteConfig,
) -> str:
    url = config.article_url(article.slug)
    bibliography = article.citations.bibliography
    scholar_references = [bibliography.scholar_reference(r.key) for r in references] if bibliography else []
    return env.get_template("article.html").render(
        version=__version__,
        static="../static",
        home="../index.html",
        site_title=config.title,
        url=url,
        front=article.front,
        teaser=article.teaser.url if article.teaser else None,
        toc=table_of_contents(article.headings),
        body=body,
        appendix=article.appendix,
        footnotes=footnotes,
        references=references,
        scholar_references=scholar_references,
        cite_short=citation_text(article.front, config.title, url),
        cite_bibtex=citation_bibtex(article.front, article.slug, config.title, url),
        cards=article.cards,
        figures_json="figures.json" if article.needs else None,
    )


def render_index(
    env: jinja2.Environment,
    articles: list[Article],
    atlases: list,
    config: SiteConfig,
    teasers: dict[str, str],
) -> str:
    """The site's front page: its articles, newest first, each with its teaser image (`teasers`:
    slug -> URL), then its atlases (atlas.py)."""
    ordered = sorted(articles, key=lambda a: (a.front.date or dt.date.min, a.slug), reverse=True)
    return env.get_template("index.html").render(
        version=__version__,
        static="static",
        home="index.html",
        site_title=config.title,
        description=config.description,
        url=config.url,
        articles=ordered,
        teasers=teasers,
        atlases=atlases,
    )


def citation_text(front: FrontMatter, journal: str, url: str = "") -> str:
    """Distill's short form: 'Olah, et al., "Zoom In", Distill, 2020.', and the article's URL
    when the site has one."""
    names = [a.name if is_group(a.name) else a.name.split()[-1] for a in front.authors]
    who = f"{names[0]}, et al., " if len(names) > 2 else f"{' & '.join(names)}, " if names else ""
    year = f", {front.date.year}" if front.date else ""
    return f'{who}"{front.title}", {journal}{year}.' + (f" {url}" if url else "")


def citation_bibtex(front: FrontMatter, slug: str, journal: str, url: str) -> str:
    first = front.authors[0].name.split()[-1].lower() if front.authors else slug
    if front.authors and is_group(front.authors[0].name):  # 'The Circuits Team': circuits
        first = next((w for w in front.authors[0].name.lower().split() if w != "the"), first)
    word = next((w for w in re.findall(r"[a-z]+", front.title.lower()) if len(w) > 3), "article")
    year = str(front.date.year) if front.date else ""
    fields = [  # each value's text kept inside its braces (_bibtex); a group's name in its own
        ("author", " and ".join(_bibtex_name(a.name) for a in front.authors)),
        *((key, _bibtex(value)) for key, value in (("title", front.title), ("journal", journal))),
        ("year", year),
        ("note", _bibtex(url)),
        ("doi", _bibtex(front.doi or "")),
    ]
    body = ",\n".join(f"  {key} = {{{value}}}" for key, value in fields if value)
    return f"@article{{{re.sub(r'[^a-z0-9]', '', first)}{year}{word},\n{body}\n}}"


def _bibtex(value: str) -> str:
    """A field's text that stays inside its braces: a title like `X}, note={Y` is text, not a
    second field (braces become parentheses; BibTeX has no escape for an unbalanced one)."""
    return value.replace("{", "(").replace("}", ")")


def _bibtex_name(name: str) -> str:
    """A person as BibTeX writes one ('Olah, Chris'); a group as one name in braces, which
    BibTeX never splits ('{The Circuits Team}')."""
    if is_group(name):
        return "{" + _bibtex(name) + "}"
    parts = _bibtex(name).split()
    return " ".join(parts) if len(parts) < 2 else f"{parts[-1]}, {' '.join(parts[:-1])}"


# Words that make a name a group's or an organisation's, not a person's.
_GROUP_WORDS = {
    *("team", "group", "authors", "contributors", "collaboration", "consortium", "lab"),
    *("laboratory", "project", "committee", "institute", "university", "foundation", "inc", "ltd"),
}


def is_group(name: str) -> bool:
    """Whether an author's name is a group's ('The Circuits Team', 'distillgen authors'): it
    starts with 'The', or holds a word of a group; such a name is cited whole, never as a
    family name."""
    words = re.findall(r"[A-Za-z]+", name.lower())
    return bool(words) and (words[0] == "the" or any(word in _GROUP_WORDS for word in words))
