"""A project: what `build`, `verify`, `atlas`, the notebook and any plugin start from.

A project is an articles folder (or none, for an atlas alone) with its site config
(`distillgen.yml`, whose defaults every article gets: siteconfig.py), the cache beside it (or
`--cache-dir`), the catalog of models described from that cache, the compute options and the
reporter its problems go to. Opening one and running its stages in this order is the pipeline
every caller shares, so a figure is keyed the same whoever asks for it:

    project = Project.open(src, reporter, options)
    articles = project.load_articles(log)      # parse and check every *.md
    project.plan(articles)                     # units against the models
    outcome = project.compute(articles)        # the figures, round by round
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from distillgen.article import Article
from distillgen.cache import Artifact, Cache
from distillgen.checked import CheckedArticles
from distillgen.compute import Catalog, Options, Outcome, compute
from distillgen.diagnostics import Code, Reporter
from distillgen.dictionaries import check_names
from distillgen.render import html as html_rules
from distillgen.render.reuse import source_digest
from distillgen.safety import Grants, recording_reads, refuse_raw_html
from distillgen.source.document import parse_text
from distillgen.source.frontmatter import parse_front_matter
from distillgen.source.markdown import make_parser
from distillgen.source.siteconfig import SiteConfig, load_site_config

CACHE = Path(".distillgen") / "cache"  # default cache location, inside the articles' folder


# The site's own top-level folders: an article's file name may not take one.
RESERVED_SLUGS = ("index", "search", "static", "units", "pagefind")
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def slug_problem(slug: str) -> str | None:
    """Why an article's file name cannot name its folder in the site, or None."""
    if not _SLUG.fullmatch(slug):
        return (
            f"the file name '{slug}.md' cannot be a page's address: use letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    if slug.lower() in RESERVED_SLUGS:
        return f"'{slug}' is a folder of the site itself ({', '.join(RESERVED_SLUGS)}); rename the file"
    return None


@dataclass
class Project:
    src: Path | None  # the articles folder; None: no articles (an atlas alone)
    config: SiteConfig
    cache: Cache
    catalog: Catalog
    reporter: Reporter
    options: Options = field(default_factory=Options)
    grants: Grants = field(default_factory=Grants)

    @classmethod
    def open(
        cls,
        src: Path | None,
        reporter: Reporter,
        options: Options | None = None,
        *,
        cache_dir: Path | None = None,
        grants: Grants | None = None,
        readonly: bool = False,
        vouched: dict[str, Artifact] | None = None,
    ) -> Project:
        """The project of `src` (its config's problems go to `reporter`); nothing is written.
        `readonly`: `verify`'s cache, whose damaged entries are reported and never moved; its
        catalog may describe an author's model (verify runs the models anyway). `vouched`:
        cache entries taken unchecked (warm.py)."""
        options = options or Options()
        config = load_site_config(src, reporter) if src is not None else SiteConfig()
        cache = Cache(
            cache_dir or (src if src is not None else Path.cwd()) / CACHE,
            warn=lambda path, message: reporter.warning(path, None, message, author=False, code=Code.CACHE),
            readonly=readonly,
            trust=None if readonly else source_digest(),
            vouched=vouched,
        )
        catalog = Catalog(cache, frozen=options.frozen and not readonly)
        return cls(src, config, cache, catalog, reporter, options, grants or Grants())

    @property
    def home(self) -> Path:
        """Where the cache and an atlas's files are: the articles folder, else the working one."""
        return self.src if self.src is not None else Path.cwd()

    def load_articles(
        self, log: Callable[[str], None] = lambda message: None, checked: CheckedArticles | None = None
    ) -> list[Article]:
        """Every article of the folder, checked (or taken from `checked`, unchanged)."""
        if self.src is None:
            return []
        return load_articles(self.src, self.reporter, log, self.grants, self.config, checked)

    def article(self, source: str, path: Path) -> Article | None:
        """One article from its text, as if it were the file `path` of the folder (the
        notebook's one-figure articles); None after reporting why it cannot be read."""
        md = html_rules.install(make_parser())
        return _check_article(path, source, md, self.reporter, self.grants, self.config)

    def plan(self, articles: list[Article]) -> None:
        """Every article's figures against the models (BuildFailed after errors)."""
        self.reporter.raise_if_errors()
        for article in articles:
            article.plan(self.catalog)
        self.reporter.raise_if_errors()

    def compute(self, articles: list[Article]) -> Outcome:
        """Every artifact the (planned) articles' figures show."""
        return compute_articles(articles, self.cache, self.catalog, self.reporter, self.options)


def load_articles(
    src: Path,
    reporter: Reporter,
    log: Callable[[str], None],
    grants: Grants | None = None,
    config: SiteConfig | None = None,
    checked: CheckedArticles | None = None,
) -> list[Article]:
    """Parse and check every `*.md` in `src` (with the site config's defaults), or take it
    from `checked` when it is unchanged since it was checked there; problems go to
    `reporter`."""
    grants = grants or Grants()
    config = config or SiteConfig()
    checked = checked or CheckedArticles(None, "")
    if not src.is_dir():
        reporter.error(src, None, "source folder not found")
        return []
    paths = sorted(src.glob("*.md"))
    if not paths:
        reporter.error(src, None, "no articles (*.md files) in this folder")
    md = html_rules.install(make_parser())
    articles = []
    for path in paths:
        try:
            # utf-8-sig drops a byte order mark, which would otherwise hide the front matter's '---'
            source = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            reporter.error(path, None, f"cannot read article: {exc}")
            continue
        if problem := slug_problem(path.stem):
            reporter.error(path, 1, problem)
            continue
        article = checked.get(path, source, md, reporter)
        if article is None:
            first = len(reporter.diagnostics)
            with recording_reads() as reads:
                article = _check_article(path, source, md, reporter, grants, config)
            if article is None:
                continue
            checked.put(path, source, article, reporter.diagnostics[first:], reads)
            log(f"checked {path}")
        else:
            log(f"checked {path} (unchanged: taken from the cache)")
        articles.append(article)
    return articles


def _check_article(
    path: Path, source: str, md, reporter: Reporter, grants: Grants, config: SiteConfig
) -> Article | None:
    doc = parse_text(source, path, md, roots=(path.parent, *grants.roots))
    if doc.front_matter_text is None and doc.source.startswith("---"):
        reporter.error(path, 1, "front matter opened with '---' is never closed by a second '---'")
        return None
    if not grants.raw_html:
        refuse_raw_html(doc, reporter)
    front = parse_front_matter(doc.front_matter_text, path, doc.front_matter_line, reporter, doc.roots)
    article = Article(doc, config.defaults_for(front), md, reporter)
    article.check()
    return article


def compute_articles(
    articles: list[Article], cache: Cache, catalog: Catalog, reporter: Reporter, options: Options
) -> Outcome:
    """Every artifact the articles' figures show (planned articles): the figures as planned,
    then, round by round, what kinds ask for after seeing results. BuildFailed after errors."""

    def compute_round(needs) -> Outcome:
        outcome = compute(needs, cache, catalog, reporter, options)
        reporter.raise_if_errors()
        return outcome

    check_names([a.dictionaries for a in articles if a.dictionaries is not None])
    reporter.raise_if_errors()
    outcome = compute_round([n for a in articles for n in a.needs])
    while True:
        for article in articles:
            article.follow_up(outcome.artifacts)
        reporter.raise_if_errors()  # e.g. a failed prediction under --strict
        more = [n for a in articles for n in a.needs if n.job.key not in outcome.artifacts]
        if not more:
            return outcome
        outcome.merge(compute_round(more))
