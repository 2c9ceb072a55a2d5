"""The build, top to bottom: find articles → parse → check → plan → compute → render → write.

A site is the articles of a folder (with its optional `distillgen.yml`, siteconfig.py) and the
atlases asked for there or on the command line (atlas.py).

Check validates what can be seen in the text; plan checks unit addresses against the models
(described from the cache, so a fully cached build never imports torch); compute fills the
cache with whatever is missing. Then kinds may follow up on results (a circuit ranks its inputs
by the computed weights), round by round, and last the unit pages are planned and computed.
Nothing is written to the output until all of that succeeded,
and the new site replaces the old one in a single rename, so a failed build leaves the
previous `build/` as it was. Writing happens under a lock beside the output
(`.<name>.lock`), so two builds into one folder take turns; staging folders of builds that
died (`.<name>-new-<pid>-*`) are swept then.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Set
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from distillgen import __version__, signed
from distillgen.article import Article
from distillgen.atlas import Atlas, KeptPlans, layer_page, model_page, plan_atlases, settings_text
from distillgen.cache import Cache, Pruned, write_file
from distillgen.checked import CheckedArticles
from distillgen.compute import Need, Options, Outcome, compute, records
from distillgen.diagnostics import BuildFailed, Reporter, Superseded, describe_os_error
from distillgen.forked import Ahead
from distillgen.locks import Busy, alive, held
from distillgen.paths import links_to_page
from distillgen.project import CACHE, Project, slug_problem
from distillgen.render import html as html_rules
from distillgen.render.archive import archive_page
from distillgen.render.page import environment, render_article, render_index, templates_dir
from distillgen.render.reuse import Page, Pages, code_digest, page_key, page_text, source_digest, stamp
from distillgen.render.search import SearchError, bundle_identities, pagefind_version, search_bundle
from distillgen.safety import Grants
from distillgen.source.siteconfig import AtlasRequest, SiteConfig
from distillgen.unitpages import SiteMap, UnitPage, page_context, page_inputs, plan_unit_pages
from distillgen.warm import RenderedAtlas, Warm

# site path -> the file copied there (a page from the page cache names its files by string)
Copies = dict[str, Path | str]
CLOCK_MARGIN_S = 2.0  # FAT's timestamps are 2 s apart
MARKER = ".distillgen-build"  # marks an output folder as ours, so we may replace it


@dataclass
class BuildResult:
    out: Path
    articles: list[Article]
    files: int
    seconds: float
    computed: int = 0  # figures computed in this build
    cached: int = 0  # figures taken from the cache
    rendered: int = 0  # article and unit pages rendered in this build
    reused: int = 0  # pages unchanged since an earlier build, taken from the cache
    atlas_units: int = 0  # units the atlases cover
    atlases: int = 0
    search_behind: bool = False  # Options.quick: the site has the last search index
    pruned: Pruned | None = None  # with `prune`, unless the cache could not be pruned at all


def _fewer_collections(function):
    """Run `function` with the cyclic garbage collector's thresholds raised. A build allocates
    hundreds of thousands of objects that live to its end (the cache's index, the jobs, the
    pages), and at Python's defaults the collector rescans them again and again: it doubled
    loading and consulting a 30,000-entry index. Collections still run, a hundred times less
    often; the defaults come back after the build (serve builds again in the same process).
    What it loads whole from the cache (an atlas's plan) is kept out of them (`signed.loads_frozen`)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        saved = gc.get_threshold()
        gc.set_threshold(100_000, 50, 100)
        try:
            with signed.loads_frozen():
                return function(*args, **kwargs)
        finally:
            gc.set_threshold(*saved)

    return wrapper


@_fewer_collections
def build(
    src: Path | None,
    out: Path,
    reporter: Reporter,
    log: Callable[[str], None] = lambda message: None,
    options: Options | None = None,
    cache_dir: Path | None = None,
    grants: Grants | None = None,
    atlases: tuple[AtlasRequest, ...] = (),
    archive: bool = False,
    warm: Warm | None = None,
    prune: bool = False,
) -> BuildResult:
    """Build the articles in `src` (None: none, only `atlases`) and the atlases its config or
    the caller asks for into `out`; with `archive`, each article also as one self-contained
    file (render/archive.py). `warm`: what the last build of this process checked, which
    `options.quick` takes unchecked, and where this build leaves the same (serve's builds).
    With `prune`, once the site is written, the cache's entries no figure of it uses go."""
    start, started = time.perf_counter(), time.time()
    code_digest.cache_clear()  # the templates as they are now (serve builds again after an edit)
    search_behind = False
    options = options or Options(log=log)
    warm = warm or Warm()
    if not options.quick:  # this build checks everything, and remembers what it found
        warm.artifacts, warm.pages = {}, {}
    project = Project.open(src, reporter, options, cache_dir=cache_dir, grants=grants, vouched=warm.artifacts)
    config, cache, catalog, grants = project.config, project.cache, project.catalog, project.grants
    _check_output(src, out, cache.root, reporter)  # before anything is written to the cache
    # the cache's entries and the output's files checked by a forked child while this build goes
    # on (unless a quick build takes them as this process last checked and wrote them)
    with _looking(out, warm, options, reporter, cache) as looking:
        keep = not (options.recompute or reporter.errors)
        checked = CheckedArticles(
            cache.root / "checked" if keep else None, repr((source_digest(), config, grants))
        )
        articles = project.load_articles(log, checked)
        project.plan(articles)
        roots = (project.home, *grants.roots)
        plans = KeptPlans(cache.root / "plans", source_digest()) if keep else None
        atlas_plans = plan_atlases((*config.atlas, *atlases), catalog, reporter, roots, plans)
        reporter.raise_if_errors()

        with _trusting(warm, options.quick):
            outcome, unit_pages, needs = _compute_figures(project, articles, atlas_plans)
            warm.artifacts = outcome.artifacts  # checked: a build stopped from here leaves them to the next
            _unless_superseded(options)
            # A cache may come from someone else (it can be committed): its pages may only copy files
            # from the cache or the articles' roots, and a build refusing raw HTML renders every page.
            reuse = not options.recompute and grants.raw_html
            # what each payload file of the cache is (absolute path -> its entry's record digest),
            # and then each file of the search bundle
            payloads = warm.payload_paths(outcome.artifacts, options.quick, cache)
            pages_cache = Pages(
                cache.root / "pages" if reuse else None, roots, payloads.keys(), warm.pages, warm.unindexed
            )
            if config.search:
                try:
                    pagefind_version()
                except SearchError as exc:
                    reporter.warning(
                        src, None, f"the site is built without its search page: {exc}", author=False
                    )
                    config = dataclasses.replace(config, search=False)
            site = Site(config, articles, atlas_plans, unit_pages)
            try:
                previous = warm.atlases if options.quick else {}  # a full build renders what it checked
                pages, copies, warm.atlases = _render_site(site, outcome, pages_cache, log, previous)
            finally:  # an interrupted build keeps the pages it rendered
                if not options.quick:  # whose index a quick build leaves to the full build after it
                    pages_cache.save()
            warm.pages, warm.unindexed = pages_cache.used, pages_cache.added
            if config.search:
                try:
                    if options.quick and warm.search is not None:  # the last index, serve's last build's
                        bundle, search_behind = warm.search, True
                    else:
                        folder = cache.root / "search" if reuse else None
                        bundle, search_behind = search_bundle(
                            pages, folder, options.quick, options.superseded
                        )
                    copies.update(bundle)
                    payloads = {**payloads, **bundle_identities(bundle)}  # known by name, not by a stat each
                    warm.search = bundle
                except SearchError as exc:
                    reporter.error(src, None, f"cannot build the search index: {exc} (or set search: false)")
                    reporter.raise_if_errors()
            if archive:
                for article in articles:
                    page = f"{article.slug}/index.html"
                    pages[f"{article.slug}/index.archive.html"] = archive_page(
                        page, page_text(pages[page]), pages, copies, config.url
                    )
            _unless_superseded(options)
            known, warm.output = warm.output, None  # until the output is written
            warm.output = _write_site(out, pages, copies, reporter, options, payloads, known, looking)
        # a few seconds' margin: a file system's clock may be coarser than this process's
        before = started - CLOCK_MARGIN_S
        pruned = _prune_cache(cache, _used(outcome, needs), before, options, reporter) if prune else None
        seconds = time.perf_counter() - start
        return BuildResult(
            out,
            articles,
            len(pages) + len(copies),
            seconds,
            outcome.computed,
            outcome.cached,
            pages_cache.rendered,
            pages_cache.reused,
            sum(len(p) for atlas in atlas_plans for p in atlas.pages.values()),
            len(atlas_plans),
            search_behind,
            pruned,
        )


def _prune_cache(
    cache: Cache, used: Set[str], before: float, options: Options, reporter: Reporter
) -> Pruned | None:
    """The cache without the entries no figure of this build reads (earlier versions of its
    figures, other sites' if it shares the cache), but those written since `before` (the
    build's start: others' work meanwhile). A fault is a warning: the site is built. None when
    nothing could be pruned."""
    try:
        with held(cache.root / ".lock", str(cache.root), wait=options.wait, echo=options.echo):
            pruned = cache.prune(used, before)
    except (Busy, OSError) as exc:
        reason = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        reporter.warning(cache.root, None, f"the cache was not pruned: {reason}", author=False)
        return None
    if pruned.error is not None:
        reason = describe_os_error(pruned.error)
        reporter.warning(
            cache.root, None, f"{pruned.failed} folder(s) could not be removed: {reason}", author=False
        )
    return pruned


def _used(outcome: Outcome, needs: list[Need]) -> set[str]:
    """The keys of every entry the build's figures read: theirs, and those of the jobs they
    were computed from (a folder's ranking, a spectrum), which a build finding the figures
    cached never looks up, but `verify` and a unit added later read."""
    used = set(outcome.artifacts)
    jobs, expanded = [need.job for need in needs], set()
    while jobs:
        job = jobs.pop()
        if job.key not in expanded:
            expanded.add(job.key)
            inputs = job.inputs()
            used.update(each.key for each in inputs)
            jobs.extend(inputs)
    return used


@contextlib.contextmanager
def _looking(
    out: Path, warm: Warm, options: Options, reporter: Reporter, cache: Cache
) -> Iterator[LookAhead | None]:
    if reporter.errors or (options.quick and warm.output is not None):
        yield None
        return
    look = LookAhead(out, warm.output, None if options.recompute else cache)
    try:
        yield look
    finally:
        look.close()


@contextlib.contextmanager
def _trusting(warm: Warm, quick: bool) -> Iterator[None]:
    """Where a quick build uses what it trusts (warm.py): if it fails there, that may be why (a
    cache or its search files removed behind serve's back), so the next build trusts nothing.
    Most of an author's mistakes fail before it (check, plan), and cost the next edit nothing."""
    try:
        yield
    except BaseException:
        if quick:
            warm.distrust()
        raise


def _unless_superseded(options: Options) -> None:
    """Stop here if serve has a newer edit waiting (`Options.superseded`): the full build after
    an edit checks and indexes a whole atlas site, seconds that the next edit should not wait."""
    if options.superseded():
        raise Superseded


@dataclass
class Site:
    """Everything planned that becomes a page."""

    config: SiteConfig
    articles: list[Article]
    atlases: list[Atlas]
    unit_pages: list[UnitPage]


def _compute_figures(
    project: Project, articles: list[Article], atlases: list[Atlas]
) -> tuple[Outcome, list[UnitPage], list[Need]]:
    """Every artifact the articles, the atlases and the unit pages need, and those needs. First
    the figures as planned; then, round by round, what kinds ask for after seeing results (a
    circuit ranks one layer of inputs per round); last the unit pages of every unit shown or in
    an atlas."""
    outcome = project.compute(articles)
    unit_pages, page_needs = plan_unit_pages(articles, atlases, project.catalog)
    page_needs = [n for n in page_needs if n.job.key not in outcome.artifacts]
    outcome.merge(compute(page_needs, project.cache, project.catalog, project.reporter, project.options))
    project.reporter.raise_if_errors()
    return outcome, unit_pages, [*(n for a in articles for n in a.needs), *page_needs]


def _render_site(
    site: Site,
    outcome: Outcome,
    pages_cache: Pages,
    log: Callable[[str], None],
    previous: dict[str, RenderedAtlas] | None = None,
) -> tuple[dict[str, str | Page], Copies, dict[str, RenderedAtlas]]:
    """The site's pages (path -> HTML, or a Page whose HTML is read when needed), the files
    copied into it (path -> source), and each atlas's own pages. A page whose inputs are
    unchanged since an earlier build is taken from `pages_cache`; an atlas's own pages from
    `previous` (this process's last build, warm.py) while it holds them, without a key each."""
    env = environment()
    env.globals["search"] = site.config.search
    config = site.config
    title, frame = config.title, config.frame  # every page's key holds the frame it is drawn in
    artifacts = outcome.artifacts
    pages: dict[str, str | Page] = {}
    copies: Copies = {}

    def render(
        path: str, key: str, make: Callable[[], Page], counted: bool = True, into: RenderedAtlas | None = None
    ) -> None:
        page = pages_cache.get(key, counted)
        if counted:
            log(f"rendered {path}" + (" (unchanged: from the cache)" if page else ""))
        page = page or pages_cache.put(key, make(), counted)
        (into.pages if into else pages)[path] = page
        (into.copies if into else copies).update(page.files)

    def template(name: str, context_and_files: tuple[dict, dict]) -> Page:
        context, files = context_and_files
        html = env.get_template(name).render(version=__version__, site_title=title, **context)
        return Page(html, files)

    for article in site.articles:
        render(
            f"{article.slug}/index.html",
            _article_key(article, outcome, frame),
            functools.partial(_article_page, env, article, outcome, config),
        )
        if article.needs:
            keys = list(dict.fromkeys(need.job.key for need in article.needs))
            render(
                f"{article.slug}/figures.json",
                page_key("figures", article.slug, [stamp(artifacts[key]) for key in keys]),
                functools.partial(_figures_json, article, keys, artifacts),
                counted=False,
            )
        if article.draws_graphs:
            render(
                f"{article.slug}/graphs.json",
                page_key("graphs", _article_key(article, outcome, frame)),
                functools.partial(_graphs_json, article, artifacts),
                counted=False,
            )
    site_map = SiteMap(site.unit_pages)

    def unit_html(unit_page: UnitPage) -> Page:
        return template("unit.html", page_context(unit_page, artifacts, site_map))

    def layer_html(atlas: Atlas, layer: str) -> Page:
        return template("layer.html", layer_page(atlas, layer, artifacts))

    def atlas_html(atlas: Atlas) -> Page:
        return template("atlas.html", model_page(atlas, artifacts))

    def unit(unit_page: UnitPage, into: RenderedAtlas | None = None) -> None:
        key = page_key("unit", frame, page_inputs(unit_page, artifacts, site_map))
        render(unit_page.path, key, functools.partial(unit_html, unit_page), into=into)

    # an atlas's planned pages that are this build's too (no article shows them: those are copies)
    in_build = {id(p) for p in site.unit_pages}
    in_atlases: set[int] = set()
    for_next: dict[str, RenderedAtlas] = {}
    for atlas in site.atlases:
        own = [p for ps in atlas.pages.values() for p in ps if id(p) in in_build]
        in_atlases.update(map(id, own))
        shown = sorted(p.path for ps in atlas.pages.values() for p in ps if id(p) not in in_build)
        context = (frame, code_digest(), site_map.digests.get(atlas.model), shown)
        rendered = (previous or {}).get(atlas.path)
        if rendered is not None and rendered.holds(atlas, context, artifacts):
            pages_cache.take(rendered.entries, len(rendered.pages))
            kept: RenderedAtlas | None = rendered
            rendered = rendered.unread()  # what this build reads of them stays with this build
        else:
            rendered = RenderedAtlas(atlas, context, {key: artifacts[key] for key in atlas.needs})
            # all its pages are made of, as one key: a later process takes them on it, unkeyed
            digests = [artifact.digest for artifact in rendered.artifacts.values()]
            group = page_key("atlas pages", atlas.made_of, context, digests)
            if (taken := pages_cache.take_group(group)) is not None:
                unchanged = "(unchanged: from the cache, as one group)"
                log(f"rendered {len(taken)} page(s) of the atlas {atlas.path} {unchanged}")
                rendered.pages = taken
                rendered.entries = {page.key: pages_cache.used[page.key] for page in taken.values()}
                for page in taken.values():
                    rendered.copies.update(page.files)
                kept, rendered = rendered, rendered.unread()
            else:
                for unit_page in own:
                    unit(unit_page, rendered)
                for layer, layer_pages in atlas.pages.items():
                    path = atlas.layer_path(layer)
                    stamps = [stamp(artifacts[p.image.key]) for p in layer_pages]
                    key = page_key("layer", frame, path, settings_text(atlas), stamps)
                    render(path, key, functools.partial(layer_html, atlas, layer), into=rendered)
                stamps = [stamp(artifacts[p.image.key]) for ps in atlas.pages.values() for p in ps]
                key = page_key("atlas", frame, atlas.path, atlas.request.examples, stamps)
                render(atlas.path, key, functools.partial(atlas_html, atlas), into=rendered)
                pages_cache.keep_group(group, rendered.pages)
                kept = _unread(rendered, pages_cache)
        pages.update(rendered.pages)
        copies.update(rendered.copies)
        if kept is not None:
            for_next[atlas.path] = kept
    for unit_page in site.unit_pages:
        if id(unit_page) not in in_atlases:
            unit(unit_page)
    log(f"rendered {pages_cache.rendered} page(s), {pages_cache.reused} unchanged")
    teasers, teaser_files = _teasers(site.articles, artifacts)
    pages["index.html"] = render_index(env, site.articles, site.atlases, config, teasers)
    copies.update(teaser_files)
    if site.config.search:
        pages["search/index.html"] = env.get_template("search.html").render(
            version=__version__, site_title=title, static="../static", home="../index.html"
        )
    pages["static/pygments.css"] = html_rules.pygments_css()
    static = templates_dir() / "static"
    copies.update({f"static/{p.name}": p for p in sorted(static.iterdir()) if p.is_file()})
    pages[MARKER] = "This folder is written by distillgen build and replaced on every build.\n"
    return pages, copies, for_next


def _unread(rendered: RenderedAtlas, pages_cache: Pages) -> RenderedAtlas | None:
    """An atlas's pages as the page cache holds them, their HTML left on disk, for the next
    build to take: a build that rendered thousands keeps none of their HTML in memory. None
    where the cache lacks one (--no-cache, a full disk): the next build renders them again."""
    unread: dict[str, Page] = {}
    for path, page in rendered.pages.items():
        if (unread_page := pages_cache.unread(page)) is None:
            return None
        unread[path] = unread_page
    entries = {page.key: pages_cache.used[page.key] for page in unread.values()}
    return dataclasses.replace(rendered, pages=unread, entries=entries)


def _figures_json(article: Article, keys: list[str], artifacts: dict) -> Page:
    """The provenance records of every figure the article shows, in order (`figures.json`)."""
    figures = records(keys, artifacts)
    return Page(json.dumps({"article": article.slug, "figures": figures}, indent=2, sort_keys=True))


def _graphs_json(article: Article, artifacts: dict) -> Page:
    """The graph of every circuit-like figure the article shows, in order (`graphs.json`)."""
    graphs = article.graphs(artifacts)
    return Page(json.dumps({"article": article.slug, "graphs": graphs}, indent=2, sort_keys=True))


def _teasers(articles: list[Article], artifacts: dict) -> tuple[dict[str, str], dict[str, Path]]:
    """The index's image of each article (slug -> site path): its teaser, else its first
    feature visualization; and the files the index copies for them."""
    urls: dict[str, str] = {}
    files: dict[str, Path] = {}
    for article in articles:
        job = next((n.job for n in article.needs if links_to_page(n.job)), None)
        if article.teaser is not None:
            urls[article.slug] = f"{article.slug}/{article.teaser.url}"
        elif job is not None:
            artifact = artifacts[job.key]
            name = artifact.result(job).images[0]
            urls[article.slug] = f"index/{job.key[:16]}-{name}"
            files[urls[article.slug]] = artifact.file(name)
    return urls, files


def _article_key(article: Article, outcome: Outcome, frame: str) -> str:
    """Everything an article's page is made of: its source, its bibliography, its local
    images (their URLs carry their content's digest) and the artifacts its figures show."""
    return page_key(
        "article",
        frame,
        article.slug,
        article.doc.source,
        article.citations.bibliography.digest if article.citations.bibliography else None,
        sorted(article.images.urls()),
        [stamp(outcome.artifacts[need.job.key]) for need in article.needs],
    )


def _article_page(env, article: Article, outcome: Outcome, config: SiteConfig) -> Page:
    body, footnotes, references = article.render(outcome.artifacts)
    html = render_article(env, article, body, footnotes, references, config)
    return Page(html, {f"{article.slug}/{url}": path for url, path in article.assets.items()})


def _check_output(src: Path | None, out: Path, cache: Path, reporter: Reporter) -> None:
    out, cache = out.resolve(), cache.resolve()
    src = src.resolve() if src is not None else None
    blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        reporter.error(blocker, None, "is a file, not a folder; choose another -o for the site")
    elif src is not None and (out == src or src.is_relative_to(out) or out in src.parents):
        reporter.error(out, None, "the output folder must not contain the articles; choose another -o")
    elif cache.is_relative_to(out):
        reporter.error(
            cache,
            None,
            f"the cache folder is inside the output folder {out}, which every build replaces "
            "whole; choose another --cache-dir or -o",
        )
    elif out.exists() and not (out / MARKER).exists() and any(out.iterdir()):
        reporter.error(
            out,
            None,
            "output folder exists and was not written by distillgen; "
            "choose another -o or empty it (distillgen replaces its output folder whole)",
        )


def _write_site(
    out: Path,
    pages: dict[str, str | Page],
    copies: Copies,
    reporter: Reporter,
    options: Options,
    payloads: dict[str, str] | None = None,
    known: dict[str, list] | None = None,
    looking: LookAhead | None = None,
) -> dict[str, list]:
    """Write the site under the output's lock; a full or read-only disk is an error naming it.
    The output's files as written: their manifest's (rel path -> size, mtime, inode, identity).

    Every file is known by its identity (a page by its key, or its text's digest; a copied
    file by its source's path and stat), and the manifest beside the output records each
    written file's identity and stat: a file the output still holds untouched under the same
    identity is linked into the new site unread, and when that is every file, and no other is
    there, nothing is written at all. `known`: the output's files as this process last wrote
    them, taken without a walk of the output (serve after an edit, warm.py); `looking`: the
    output looked at by the build's look-ahead since it started (else it is looked at here)."""
    out = out.resolve()
    manifest = manifest_path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        lock = out.with_name(f".{out.name}.lock")
        with held(lock, str(out), wait=options.wait, echo=options.echo):
            sweep_staging(out, options.log)
            wanted = _identities(pages, copies, payloads or {})
            if options.quick and known is not None:  # as this process last wrote it
                looked = False
            elif looking is not None:  # as the build's look-ahead found them (it reads the manifest)
                looked, known = True, looking.held()
            else:  # the output's files as they are now, against their manifest
                looked, known = True, _held(out, known if known is not None else _manifest_read(manifest)[1])
            held_now, unchanged = _compared(known, wanted)
            if len(unchanged) == len(wanted) == len(held_now):
                options.log(f"{out} holds this site already: nothing written")
                if not (options.quick or manifest.exists()):  # a quick build's, left to this one
                    _write_manifest(manifest, known)
                return known
            changed = len(wanted) - len(unchanged) + len(held_now.keys() - wanted.keys())
            if options.in_place and out.is_dir() and changed <= IN_PLACE_MOST:
                manifest.unlink(missing_ok=True)  # stale from here until the site is written
                try:
                    files = update_in_place(out, pages, copies, wanted, held_now, unchanged, known)
                except OSError as exc:  # e.g. a file where a folder now goes: the whole site, then
                    options.log(f"writing {out} in place failed ({exc}); writing it whole")
                else:
                    if not options.quick:  # a quick build leaves it to the full build after it
                        _write_manifest(manifest, files)
                    return files
            if not looked:  # a new site links the files the output holds: they are looked at first
                held_now, unchanged = _compared(_held(out, known), wanted)
            manifest.unlink(missing_ok=True)  # stale from here until the site is written
            write_atomically(out, pages, copies, unchanged)
            files = {rel: [*status, wanted.get(rel)] for rel, status in _files(out).items()}
            _write_manifest(manifest, files)
            return files
    except Busy as exc:
        reporter.error(out, None, f"{exc} (or build without --no-wait, which waits)")
    except OSError as exc:
        reporter.error(out, None, f"cannot write the site: {describe_os_error(exc)}")
    reporter.raise_if_errors()
    raise AssertionError("unreachable: an error was reported")


def _compared(known: dict[str, list], wanted: dict[str, str]) -> tuple[dict[str, str | None], set[str]]:
    """What the output holds (rel path -> identity) and which of the wanted files it holds."""
    held_now = {rel: entry[3] for rel, entry in known.items()}
    return held_now, {rel for rel, identity in wanted.items() if held_now.get(rel) == identity}


def _write_manifest(manifest: Path, files: dict[str, list]) -> None:
    with suppress(OSError):  # without it, the next build reads and compares every file
        write_file(manifest, json.dumps({"files": files}, separators=(",", ":")))


def manifest_path(out: Path) -> Path:
    """Where a build says what it wrote into `out` (beside it, as its lock is): each file's
    size, modification time, inode and identity."""
    out = out.resolve()
    return out.with_name(f".{out.name}.manifest.json")


def _identities(pages: dict[str, str | Page], copies: Copies, payloads: dict[str, str]) -> dict[str, str]:
    """What each file of the site to write is: a page from the cache by its key, unread; a
    copied file by the cache entry it belongs to (`payloads`: absolute path -> identity), else
    by its source as the file system describes it."""
    identities = {}
    for rel, page in pages.items():
        if isinstance(page, Page):
            identities[rel] = page.identity
        else:
            identities[rel] = hashlib.sha256(page.encode()).hexdigest()
    for rel, source in copies.items():
        path = os.fspath(source)  # a page from the cache names its files by absolute path
        identities[rel] = payloads.get(path) or payloads.get(os.path.abspath(path)) or _stat_identity(source)
    return identities


def _stat_identity(source: Path | str) -> str:
    """A file by its absolute path and stat: the same whether the build was given its folder
    as `articles` or as `/home/me/site/articles`."""
    status = os.stat(source)
    return f"{os.path.abspath(source)}:{status.st_size}:{status.st_mtime_ns}:{status.st_ino}"


def _files(out: Path) -> dict[str, list[int]]:
    """Every file under `out` (a link too, not followed): size, modification time and inode."""
    return {rel: [status.st_size, status.st_mtime_ns, status.st_ino] for rel, status in _scan(out)}


def _scan(out: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every file under `out` (a link too, not followed), by its path relative to `out`, with
    its stat. scandir's entries carry their paths, which an atlas's 50,000 files would
    otherwise join one by one (0.19 s -> 0.16 s)."""
    start = len(str(out)) + 1
    folders = [str(out)] if out.is_dir() else []  # no site yet
    while folders:
        try:
            entries = os.scandir(folders.pop())
        except OSError:  # unreadable: its files are not known, as os.walk left them
            continue
        with entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                else:
                    yield entry.path[start:], entry.stat(follow_symlinks=False)


def _held(out: Path, written: dict) -> dict[str, list]:
    """Every file under `out` -> its size, mtime, inode and the identity it was written with
    (None for a file `written`, the manifest, does not describe as it is now: changed, or not
    written by the last build). A file as written keeps its entry of `written`, not a copy."""
    return _applied(written, _changes(out, written))


def _changes(out: Path, written: dict) -> dict[str, list | None]:
    """The files under `out` that `written` does not describe as they are (rel path -> their
    size, mtime, inode and None), and those it names that are gone (-> None): usually none."""
    changes: dict[str, list | None] = {}
    as_written = 0
    for rel, status in _scan(out):
        size, mtime_ns, inode = status.st_size, status.st_mtime_ns, status.st_ino
        entry = written.get(rel)
        if type(entry) is list and len(entry) == 4 and entry[:3] == [size, mtime_ns, inode]:
            as_written += 1
        else:
            changes[rel] = [size, mtime_ns, inode, None]
    if as_written + len(changes.keys() & written.keys()) < len(written):  # some are gone
        changes.update((rel, None) for rel in written if rel not in changes and not (out / rel).is_file())
    return changes


def _applied(written: dict, changes: dict[str, list | None]) -> dict[str, list]:
    if not changes:
        return written
    held_now = {rel: entry for rel, entry in written.items() if rel not in changes}
    held_now.update((rel, entry) for rel, entry in changes.items() if entry is not None)
    return held_now


class LookAhead:
    """What a no-change build checks of the file system, checked by a forked child (forked.py)
    from the build's start, while this process checks and plans the articles and takes the
    atlas's plan: first every entry the cache's index holds (its lookups take the answer
    where it comes sooner than their own check would: `Cache.expect`), then the output's files
    against the manifest (`held`). Each answer is taken only if the child read the index or
    the manifest this process reads: a build writing either replaces it. Against what this
    process last wrote (`known`, serve's), or where a fork does not pay, the output is looked
    at when asked."""

    MANIFEST_SECONDS_PER_BYTE = 3e-8  # to read the manifest and look at each file (~155 bytes)

    def __init__(self, out: Path, known: dict[str, list] | None, cache: Cache | None) -> None:
        self.out, self.known = out.resolve(), known
        self.manifest = manifest_path(self.out)
        works: list[tuple[Callable[[], object], float]] = [] if cache is None else [cache.check_ahead()]
        self._output: int | None = None  # which answer is the output's
        if known is None:
            self._output = len(works)
            look = functools.partial(_look, self.out, self.manifest)
            works.append((look, _size(self.manifest) * self.MANIFEST_SECONDS_PER_BYTE))
        self._ahead = Ahead(*works)
        if cache is not None:
            cache.expect(self._ahead, 0)

    def held(self) -> dict[str, list]:
        """What `_held` finds, for the output as it is now (under the output's lock)."""
        if self.known is not None:
            return _held(self.out, self.known)
        read_as, written = _manifest_read(self.manifest)
        if self._output is not None and self._ahead.forked:
            looked_as, changes = self._ahead.result(self._output)
            if looked_as is not None and looked_as == read_as:
                return _applied(written, changes)
        return _held(self.out, written)

    def close(self) -> None:
        self._ahead.close()


def _look(out: Path, manifest: Path) -> tuple[tuple[int, int, int] | None, dict[str, list | None]]:
    """The manifest's stat as read, and the output's `_changes` against it."""
    read_as, written = _manifest_read(manifest)
    return read_as, {} if read_as is None else _changes(out, written)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _manifest_read(manifest: Path) -> tuple[tuple[int, int, int] | None, dict]:
    """The manifest's stat, and the files the last build wrote as it describes them; (None,
    {}) when it cannot."""
    try:
        with manifest.open("rb") as stream:
            status = os.fstat(stream.fileno())
            written = json.loads(stream.read())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, {}
    if not isinstance(written, dict):
        return None, {}
    return (status.st_size, status.st_mtime_ns, status.st_ino), written


def sweep_staging(out: Path, log: Callable[[str], None]) -> None:
    """Remove what killed builds left beside `out`: their staging folders, and old sites they
    had moved aside. Called with the output's lock held: every build writes only while
    holding it, so none of these belongs to a build still writing (the PID in the name is for
    whoever finds one, and for builds of versions that took no lock: a live PID is spared)."""
    pattern = re.compile(rf"\.{re.escape(out.name)}-(new|old)-(\d+)(?:-.*)?")
    for path in sorted(out.parent.iterdir()):
        match = pattern.fullmatch(path.name)
        if match is None or not path.is_dir():
            continue
        if alive(int(match[2])) and not _older_than(path, STALE_SECONDS):
            continue
        if match[1] == "old" and not out.exists():  # killed between its two renames
            path.rename(out)
            log(f"restored {out} from {path}, left by a build that was stopped")
            continue
        shutil.rmtree(path, ignore_errors=True)
        log(f"removed {path}, left by a build that was stopped")


STALE_SECONDS = 3600  # a staging folder untouched this long is stale even if its PID lives


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return True


def write_atomically(
    out: Path, pages: dict[str, str | Page], copies: Copies, unchanged: Set[str] = frozenset()
) -> None:
    """Write everything into a sibling folder, then swap it in with renames. The folder's
    name carries the PID, so that a later build can tell it was left by a dead one. The files
    `unchanged` names are linked from the output as they are, unread."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-new-{os.getpid()}-", dir=out.parent))
    old: Path | None = None
    try:
        staging.chmod(0o755)
        for rel, page in sorted(pages.items()):
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if rel in unchanged and _link(out / rel, target):
                continue
            content = page_text(page)
            if not _keep(out / rel, target, content.encode("utf-8")):
                target.write_text(content, encoding="utf-8")
        for rel, source in sorted(copies.items()):
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if rel in unchanged and _link(out / rel, target):
                continue
            if not _keep(out / rel, target, Path(source).read_bytes()):
                shutil.copyfile(source, target)
        if out.exists():
            old = out.with_name(f".{out.name}-old-{os.getpid()}")
            out.rename(old)
        staging.rename(out)
    except BaseException:
        if old is not None and not out.exists():
            old.rename(out)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


IN_PLACE_MOST = 256  # files a rebuild in place may change; beyond, a new site is swapped in


def update_in_place(
    out: Path,
    pages: dict[str, str | Page],
    copies: Copies,
    wanted: dict[str, str],
    held_now: dict[str, str | None],
    unchanged: Set[str],
    written: dict,
) -> dict:
    """Remove the files the site no longer has (and the folders that leaves empty), then
    replace those that changed, each whole (written beside it, then renamed over it); the
    manifest's files, updated. Removing first lets a name change case on a disk that ignores
    case, and a folder take the place of a file."""
    files = {rel: entry for rel, entry in written.items() if rel in unchanged}
    for rel in sorted(held_now.keys() - wanted.keys()):
        (out / rel).unlink(missing_ok=True)
        for folder in (out / rel).parents:
            if folder == out:
                break
            with suppress(OSError):  # not empty: it stays, and so do the folders above it
                folder.rmdir()
                continue
            break
    for rel in sorted(wanted.keys() - unchanged):
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        data = page_text(pages[rel]).encode("utf-8") if rel in pages else Path(copies[rel]).read_bytes()
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        try:
            partial.write_bytes(data)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        status = os.lstat(target)
        files[rel] = [status.st_size, status.st_mtime_ns, status.st_ino, wanted[rel]]
    return files


def _link(previous: Path, target: Path) -> bool:
    try:
        os.link(previous, target)
    except OSError:  # links not supported here: the file is written
        return False
    return True


def _keep(previous: Path, target: Path, data: bytes) -> bool:
    """Link the previous build's file into the new one when it already holds `data`: an
    unchanged file keeps its modification time (static hosts and browsers revalidate by it),
    and nothing is written twice."""
    try:
        if previous.stat().st_size != len(data) or previous.read_bytes() != data:
            return False
        os.link(previous, target)
    except OSError:  # no previous file, or links not supported here: write it
        return False
    return True


__all__ = ["CACHE", "BuildFailed", "BuildResult", "build", "slug_problem", "write_atomically"]
