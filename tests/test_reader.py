"""The reader's site (issue 19): accessibility (axe), dark mode, search, the site config."""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import run_cli, write

SERIOUS = ("serious", "critical")


def with_axe(context):
    """The context with axe-core (the copy axe-playwright-python bundles) in every page it
    opens, loaded with the page: not evaluated again, 500 KB of it, after each navigation."""
    from axe_playwright_python.sync_playwright import Axe

    context.add_init_script(script=Axe().axe_script)
    return context


def violations(page) -> list[str]:
    """axe-core's serious and critical violations on the open page (of a `with_axe` context),
    one line each."""
    found = page.evaluate("axe.run({resultTypes: ['violations']})")["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['nodes'][0]['html'][:100]}" for v in found if v["impact"] in SERIOUS
    ]


@pytest.fixture(scope="module")
def served(example_build):
    """The example site over HTTP on loopback, as a static host serves it (search needs it)."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(example_build)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.mark.browser
@pytest.mark.parametrize("half", [0, 1])  # each half well inside a browser test's timeout
def test_every_page_passes_axe_in_light_mode(browser, example_build, half):
    pages = sorted(example_build.rglob("*.html"))
    assert len(pages) > 50  # articles, unit pages, the index, search
    context = with_axe(browser.new_context(color_scheme="light"))
    page = context.new_page()
    found = {}
    for path in pages[half::2]:
        page.goto(path.as_uri())
        if problems := violations(page):
            found[str(path.relative_to(example_build))] = problems
    context.close()
    assert found == {}


@pytest.mark.browser
def test_dark_mode_keeps_every_kind_of_page_legible(browser, example_build):
    """axe checks WCAG AA contrast of every text; one page of each kind, in the dark theme."""
    units = sorted((example_build / "units").rglob("*.html"))
    kinds = [
        example_build / "index.html",
        *sorted(example_build.glob("*/index.html")),  # each article (its plots and circuits) and search
        units[0],
    ]
    context = with_axe(browser.new_context(color_scheme="dark"))
    page = context.new_page()
    for path in kinds:
        page.goto(path.as_uri())
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(22, 24, 29)", path  # the dark theme is the one in use
        assert violations(page) == [], path
    context.close()


@pytest.mark.browser
def test_the_theme_toggle_overrides_the_system_and_is_remembered(browser, example_build):
    context = browser.new_context(color_scheme="light")
    page = context.new_page()
    page.goto((example_build / "reading-circuits" / "index.html").as_uri())

    def state():
        return page.evaluate("getComputedStyle(document.body).backgroundColor"), page.get_attribute(
            ".theme-toggle", "aria-pressed"
        )

    def state_on_arrival(expected):
        # Chromium hands localStorage to another page's process asynchronously: on a busy
        # machine the first load can come before the write (a reader takes longer than that)
        deadline = time.monotonic() + 10
        while (found := state()) != expected and time.monotonic() < deadline:
            page.wait_for_timeout(250)
            page.reload()
        return found

    assert state() == ("rgb(255, 255, 255)", "false")
    page.click(".theme-toggle")
    assert state() == ("rgb(22, 24, 29)", "true")
    page.goto((example_build / "index.html").as_uri())  # another page: the choice holds
    assert state_on_arrival(("rgb(22, 24, 29)", "true")) == ("rgb(22, 24, 29)", "true")
    page.click(".theme-toggle")
    assert state() == ("rgb(255, 255, 255)", "false")
    context.close()


def test_plot_series_differ_by_line_style_as_well_as_colour(example_build):
    """In every plot of the example site, no two series share a line style (colour is never
    all that tells them apart)."""
    plots = 0
    for page in sorted(example_build.glob("*/index.html")):
        for svg in re.findall(r'<svg[^>]*class="plot[^"]*".*?</svg>', page.read_text(), re.S):
            series = re.findall(
                r'<g class="series s\d"[^>]*>.*?<(?:polyline|polygon|rect) ([^>]*)>', svg, re.S
            )
            dashes = [re.search(r'stroke-dasharray="([^"]*)"', attrs) for attrs in series]
            styles = [dash[1] if dash else "solid" for dash in dashes]
            assert len(set(styles)) == len(styles), f"{page}: series share a line style: {styles}"
            plots += len(series) > 1
    assert plots >= 3


def search(page, query: str) -> list[str]:
    page.fill(".pagefind-ui__search-input", query)
    # Pagefind says "N results for <query>" before each result's link loads, and loads the links
    # of its first page of results (5) each on its own, in any order: wait for the message of
    # this search and for every link it will show, so the first link is the best result.
    page.wait_for_function(
        """q => {
            const message = document.querySelector('.pagefind-ui__message')?.textContent || '';
            const count = parseInt(message, 10);
            const links = document.querySelectorAll('.pagefind-ui__result-link').length;
            return message.includes(q) && count > 0 && links >= Math.min(count, 5);
        }""",
        arg=query,
    )
    return page.eval_on_selector_all(
        ".pagefind-ui__result-link", "els => els.map(e => e.getAttribute('href'))"
    )


@pytest.mark.browser
def test_search_finds_a_unit_page_by_its_address_and_an_article_by_a_phrase(open_page, served):
    page, problems = open_page(f"{served}/search/index.html")
    results = search(page, "mixed4:52")
    assert "/units/shapes/mixed4/52.html" in results
    # Pagefind's own ranking puts the unit page first (read from its API: the UI's links fill
    # in as each result loads, and under load the order read from the page was once another)
    ranked = page.evaluate(
        """async q => {
            const pagefind = await import('/pagefind/pagefind.js');
            const found = await pagefind.search(q);
            return Promise.all(found.results.slice(0, 3).map(async r => (await r.data()).url));
        }""",
        "mixed4:52",
    )
    assert ranked[0] == "/units/shapes/mixed4/52.html", ranked
    results = search(page, "sixteen units of the first layer")  # a phrase in the body of one article
    assert results[0].startswith("/shapes-features/")
    page.click(".pagefind-ui__result-link")
    page.wait_for_load_state("load")
    assert page.url.startswith(f"{served}/shapes-features/")
    assert problems == []


@pytest.mark.browser
def test_search_opened_as_a_file_says_it_needs_a_server(open_page, example_build):
    page, problems = open_page((example_build / "search" / "index.html").as_uri())
    assert page.is_visible(".search-note")
    assert problems == []


def test_search_can_be_turned_off_and_its_setting_is_checked(tmp_path: Path):
    src = tmp_path / "src"
    write(src / "a.md", "---\ntitle: A\n---\nText.\n")
    write(src / "distillgen.yml", "title: Notes\nsearch: false\n")
    out = tmp_path / "out"
    result = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 0, result.output
    assert not (out / "search").exists() and not (out / "pagefind").exists()
    assert "search/index.html" not in (out / "a" / "index.html").read_text()
    write(src / "distillgen.yml", "title: Notes\nsearch: sometimes\n")
    result = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 1
    assert "distillgen.yml:2: error: 'search' must be true or false" in result.stderr


# -- Distill parity ------------------------------------------------------------------------------

PARITY_CONFIG = """
title: Circuits Notes
url: https://notes.example.org/circuits
authors:
  - name: Ada Lovelace
    affiliations: [Analytical Engines]
"""

PARITY = """
---
title: A Parity Check
description: Every part of a Distill article.
abstract: The abstract, distinct from the description.
teaser: scale.svg
date: 2026-11-20
updated: 2026-11-25
changelog:
  - {date: 2026-11-25, text: Fixed the second figure.}
doi: 10.1234/parity.1
license: CC-BY 4.0
bibliography: refs.bib
---

## Body

A {hover}`circuit (features connected by weights)` as in {cite}`olah2020zoom`.

```{figure} scale.svg
:layout: l-middle
:alt: a colour scale
A scale.
```

```{appendix} Acknowledgments
We thank the *reviewers*.
```

```{appendix} Author Contributions
Everyone did everything.
```
"""


@pytest.fixture
def parity_site(site, tmp_path) -> Path:
    write(site / "distillgen.yml", PARITY_CONFIG)
    write(site / "parity.md", PARITY)
    out = tmp_path / "out"
    result = run_cli("build", str(site), "-o", str(out), "--cache-dir", str(tmp_path / "cache"), "--strict")
    assert result.exit_code == 0, result.output
    return out


def test_a_page_has_what_a_distill_article_has(parity_site):
    html = (parity_site / "parity" / "index.html").read_text()
    body = html[html.index('<article class="d-article"') : html.index("</article>")]
    appendix = html[html.index('<footer class="d-appendix"') :]
    title_block = html[html.index('<div class="d-title"') : html.index('<div class="d-byline">')]
    # The abstract opens the body; the teaser sits in the title block and is published.
    assert body.index('<p class="abstract">The abstract, distinct from the description.</p>') < body.index(
        "<h2"
    )
    teaser = re.search(r'<figure class="teaser l-page"><img src="(assets/scale-[0-9a-f]+\.svg)"', title_block)
    assert teaser and (parity_site / "parity" / teaser[1]).is_file()
    # Appendix sections leave the body and the table of contents, in the order written.
    assert "Acknowledgments" not in body and "reviewers" not in body
    assert appendix.index(">Acknowledgments</h3>") < appendix.index(">Author Contributions</h3>")
    assert "<em>reviewers</em>" in appendix
    assert '<h3 id="updates">Updates and Corrections</h3>' in appendix
    assert (
        "November 25, 2025" not in appendix
        and "November 25, 2026</time>: Fixed the second figure." in appendix
    )
    assert "CC-BY 4.0" in appendix
    # The citation: short form and BibTeX with journal, year, URL and DOI.
    assert "Lovelace, &#34;A Parity Check&#34;, Circuits Notes, 2026." in appendix
    for field in (
        "journal = {Circuits Notes}",
        "year = {2026}",
        "note = {https://notes.example.org/circuits/parity/}",
        "doi = {10.1234/parity.1}",
    ):
        assert field in appendix
    # Scholar's tags, the canonical link, the site's default author, layouts, the hover term.
    for tag in (
        '<link rel="canonical" href="https://notes.example.org/circuits/parity/">',
        '<meta name="citation_doi" content="10.1234/parity.1">',
        '<meta name="citation_author" content="Ada Lovelace">',
        '<meta name="citation_author_institution" content="Analytical Engines">',
        '<meta name="citation_journal_title" content="Circuits Notes">',
        '<meta name="citation_reference" content="citation_title=Zoom In: An Introduction to Circuits;',
    ):
        assert tag in html
    assert '<figure class="l-middle" id=' in body or '<figure class="l-middle">' in body
    assert '<span class="hover-term" tabindex="0" data-hover-ref="hover-' in body
    index = (parity_site / "index.html").read_text()
    assert re.search(r'<img src="parity/assets/scale-[0-9a-f]+\.svg"', index)  # the teaser on the index


@pytest.mark.browser
def test_a_hover_term_opens_its_box_from_the_keyboard(open_page, parity_site):
    page, problems = open_page((parity_site / "parity" / "index.html").as_uri())
    page.focus(".hover-term")
    page.wait_for_selector(".hover-box:not([hidden])")
    assert page.text_content(".hover-box") == "features connected by weights"
    assert problems == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "See {hover}`circuit`.",
            "parity.md:5: error: {hover}`circuit` needs the explanation in parentheses",
        ),
        ("```{appendix}\nText.\n```", "parity.md:5: error: {appendix} needs"),
    ],
)
def test_parity_mistakes_are_path_line_errors(site, tmp_path, text, expected):
    write(site / "parity.md", f"---\ntitle: P\n---\n\n{text}\n")
    result = run_cli("build", str(site), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert any(line.split("src/", 1)[-1].startswith(expected) for line in result.stderr.splitlines()), (
        result.stderr
    )


@pytest.mark.parametrize(
    ("config", "front", "expected"),
    [
        (
            "url: javascript:alert(1)\n",
            "",
            "distillgen.yml:1: error: 'url' must be the site's address (https://…)",
        ),
        (
            "",
            "changelog:\n  - {date: yesterday, text: X}\n",
            "parity.md:4: error: front matter 'changelog[0].date'",
        ),
        ("", "updated: soon\n", "parity.md:3: error: front matter 'updated' must be a date"),
    ],
)
def test_site_config_and_front_matter_values_are_checked(site, tmp_path, config, front, expected):
    write(site / "distillgen.yml", config or "title: T\n")
    write(site / "parity.md", f"---\ntitle: P\n{front}---\n\nText.\n")
    result = run_cli("build", str(site), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert any(line.split("src/", 1)[-1].startswith(expected) for line in result.stderr.splitlines()), (
        result.stderr
    )


# -- the archive and print --------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_archive(example_build, tmp_path_factory) -> Path:
    """The example site again (its figures cached by `example_build`), with --archive."""
    from tests.conftest import ARTICLES

    out = tmp_path_factory.mktemp("archive") / "build"
    result = run_cli("build", str(ARTICLES), "-o", str(out), "--archive", "-q")
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.browser
def test_the_archive_opens_from_a_disk_with_every_figure_and_no_request(browser, example_archive, tmp_path):
    # Alone in an empty folder: nothing beside it to load, nothing from the network.
    archive = tmp_path / "zoom-in-shapes.html"
    archive.write_bytes((example_archive / "zoom-in-shapes" / "index.archive.html").read_bytes())
    context = browser.new_context()
    requests: list[str] = []
    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url == archive.as_uri()
            else (requests.append(route.request.url), route.abort())
        ),
    )
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(archive.as_uri())
    page.wait_for_load_state("load")
    page.wait_for_function("[...document.images].every(i => i.complete)")
    images = page.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 0)")
    figures = page.evaluate("document.querySelectorAll('figure').length")
    context.close()
    assert requests == [] and problems == []
    assert images and all(images)
    published = (example_archive / "zoom-in-shapes" / "index.html").read_text()
    assert figures == published.count("<figure") and figures >= 10


def test_an_archive_without_a_site_url_keeps_no_relative_link(example_archive):
    html = (example_archive / "zoom-in-shapes" / "index.archive.html").read_text()
    urls = re.findall(r'\s(?:href|src|xlink:href|srcset|poster)="([^"]*)"', html)
    assert len(urls) > 100
    kept = ("data:", "http://", "https://", "mailto:", "#")
    assert [url for url in urls if not url.startswith(kept)] == []
    # Links to unit pages lost their href and kept their text.
    published = (example_archive / "zoom-in-shapes" / "index.html").read_text()
    assert 'href="../units/' in published and 'class="unit-chip"' in html


LINKING = """
---
title: A
---

(start)=
## Start

See [the other article](../b/index.html#part), [this section](index.html#start),
[a place here](#start) and [the web](https://example.com/x).
"""


@pytest.mark.parametrize(
    "config, other",
    [
        (
            "title: T\nurl: https://notes.example.org/site/\n",
            'href="https://notes.example.org/site/b/index.html#part"',
        ),
        ("title: T\n", None),
    ],
)
def test_an_archives_links_to_the_site_are_absolute_or_text(site, tmp_path, config, other):
    write(site / "distillgen.yml", config)
    write(site / "a.md", LINKING)
    write(site / "b.md", "---\ntitle: B\n---\n\n(part)=\n## Part\n\nText.\n")
    out = tmp_path / "out"
    result = run_cli("build", str(site), "-o", str(out), "--cache-dir", str(tmp_path / "cache"), "--archive")
    assert result.exit_code == 0, result.output
    html = (out / "a" / "index.archive.html").read_text()
    body = html[html.index('<article class="d-article"') : html.index("</article>")]
    assert 'href="#start">this section</a>' in body and 'href="#start">a place here</a>' in body
    assert 'href="https://example.com/x">the web</a>' in body
    if other:
        assert f"{other}>the other article</a>" in body
    else:
        assert "<a>the other article</a>" in body
        assert not re.search(r'\s(?:href|src)="(?![a-z]+:|#)', html)


@pytest.mark.browser
def test_a_printed_article_keeps_every_numbered_figure(open_page, example_build, tmp_path):
    from pypdf import PdfReader

    page, _ = open_page((example_build / "zoom-in-shapes" / "index.html").as_uri())
    numbered = page.evaluate("document.querySelectorAll('figure .figure-number').length")
    pdf = tmp_path / "article.pdf"
    page.pdf(path=str(pdf), format="A4", print_background=True)
    text = " ".join(p.extract_text() for p in PdfReader(pdf).pages)
    printed = set(re.findall(r"Figure (\d+)", text))
    assert numbered >= 10
    assert printed >= {str(n) for n in range(1, numbered + 1)}


# -- hostile or odd input (found in review) ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("...md", "the file name '...md' cannot be a page's address"),
        ("search.md", "'search' is a folder of the site itself"),
        ("units.md", "'units' is a folder of the site itself"),
    ],
)
def test_an_article_file_name_cannot_leave_or_take_the_sites_folders(site, tmp_path, name, expected):
    write(site / name, "---\ntitle: T\n---\n\nText.\n")
    out = tmp_path / "out"
    result = run_cli("build", str(site), "-o", str(out), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{name}:1: error: {expected}" in result.stderr
    assert not out.exists() and not (tmp_path / "index.html").exists()


def test_titles_citations_and_ids_cannot_smuggle_markup_or_fields(site, tmp_path):
    write(site / "distillgen.yml", "title: Notes\nurl: https://example.org/n\n")
    write(
        site / "odd.md",
        """
        ---
        title: "A ![pixel](https://tracker.example/p.png) title}, note={forged"
        date: 2026-01-01
        bibliography: refs.bib
        ---

        See {hover}`f(x) (a function of x)` and {cite}`olah2020zoom`.

        ## Updates

        ## Appendix
        """,
    )
    write(
        site / "refs.bib",
        "@article{olah2020zoom, author = {Olah, Chris}, title = {Zoom; citation_doi=10.1/evil}, "
        "journal = {Distill}, year = {2020}}\n",
    )
    out = tmp_path / "out"
    result = run_cli("build", str(site), "-o", str(out), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 0, result.output
    html = (out / "odd" / "index.html").read_text()
    assert "tracker.example" not in html  # the image in the title is its alt text
    assert "<h1>A pixel title}, note={forged</h1>" in html
    assert "note = {forged" not in html and "title = {A pixel title), note=(forged}" in html
    assert ";citation_doi=10.1/evil" not in html and "citation_title=Zoom, citation_doi=10.1/evil" in html
    assert 'data-hover-ref="hover-' in html and ">f(x)</span>" in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_two_builds_racing_to_the_same_search_bundle_both_succeed(tmp_path):
    from distillgen.render.search import _publish

    bundle = tmp_path / "search" / "abc"
    for name in ("first", "second"):  # two builds indexed the same pages: the same bundle
        staging = tmp_path / "search" / f".abc-{name}"
        (staging / "index").mkdir(parents=True)
        (staging / "pagefind-entry.json").write_text(name)
        _publish(staging, bundle)
    assert (bundle / "pagefind-entry.json").read_text() == "first"
    half = tmp_path / "search" / "half"  # a folder in the way that is not a whole bundle
    (half / "index").mkdir(parents=True)
    staging = tmp_path / "search" / ".half-new"
    (staging / "index").mkdir(parents=True)
    with pytest.raises(OSError):
        _publish(staging, half)


def test_search_bundles_no_build_took_for_an_hour_go_but_the_newest(tmp_path):
    # Every edit to a searchable page makes a bundle (25 MB beside an atlas): they must not pile up.
    from distillgen.render.search import ENTRY, MARK, search_bundle

    folder = tmp_path / "search"

    def bundle_of(text: str) -> Path:
        page = f'<html lang="en"><body><main {MARK}><h1>{text}</h1></main></body></html>'
        files, behind = search_bundle({"a/index.html": page}, folder)
        assert not behind
        return files[f"pagefind/{ENTRY}"].parent

    bundles = [bundle_of(f"Version {n}") for n in range(5)]
    now = time.time()
    taken = [now - 3 * 3600, now - 2 * 3600, now - 1800, now - 1200, now - 4 * 3600]  # when each was
    for bundle, moment in zip(bundles, taken, strict=True):
        os.utime(bundle / ENTRY, (moment, moment))
    stale, fresh = folder / ".0123456789ab-stale", folder / ".0123456789ab-fresh"
    for staging in (stale, fresh, folder / "notes"):
        (staging / "index").mkdir(parents=True)
    os.utime(stale, (now - 3 * 3600,) * 2)
    os.utime(folder / "notes", (now - 3 * 3600,) * 2)
    assert bundle_of("Version 1") == bundles[1]  # taken again: now the newest
    newest = bundle_of("Version 9")
    kept = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "notes")
    # the one made, the newest two others, and one taken under an hour ago
    assert kept == sorted([newest, bundles[1], bundles[3], bundles[2]])
    assert not stale.exists() and fresh.is_dir() and (folder / "notes").is_dir()
    assert (bundles[2] / ENTRY).is_file() and (bundles[1] / "pagefind.js").is_file()
