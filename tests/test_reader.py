"""The reader's site (issue 19): accessibility (axe), dark mode, search, the site config."""

from __future__ import annotations

import functools
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import run_cli, write

SERIOUS = ("serious", "critical")


def violations(page) -> list[str]:
    """axe-core's serious and critical violations on the open page, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
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
def test_every_page_passes_axe_in_light_mode(browser, example_build):
    pages = sorted(example_build.rglob("*.html"))
    assert len(pages) > 50  # articles, unit pages, the index, search
    context = browser.new_context(color_scheme="light")
    page = context.new_page()
    found = {}
    for path in pages:
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
    context = browser.new_context(color_scheme="dark")
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

    assert state() == ("rgb(255, 255, 255)", "false")
    page.click(".theme-toggle")
    assert state() == ("rgb(22, 24, 29)", "true")
    page.goto((example_build / "index.html").as_uri())  # another page: the choice holds
    assert state() == ("rgb(22, 24, 29)", "true")
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
    page.wait_for_selector(".pagefind-ui__result-link")
    page.wait_for_function(
        "q => document.querySelector('.pagefind-ui__message')?.textContent.includes(q)", arg=query
    )
    return page.eval_on_selector_all(
        ".pagefind-ui__result-link", "els => els.map(e => e.getAttribute('href'))"
    )


@pytest.mark.browser
def test_search_finds_a_unit_page_by_its_address_and_an_article_by_a_phrase(open_page, served):
    page, problems = open_page(f"{served}/search/index.html")
    results = search(page, "mixed4:52")
    assert results[0] == "/units/shapes/mixed4/52.html"
    results = search(page, "switched off by")  # a phrase in the body of one article
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
    assert "distillgen.yml:2: error: 'search' must be true or false, not 'sometimes'" in result.stderr
