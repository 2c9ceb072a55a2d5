"""What a reader does on a built page, in a real browser (headless Chromium)."""

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture
def article(example_build):
    return (example_build / "reading-circuits" / "index.html").as_uri()


@pytest.fixture
def every_page(example_build):
    """The index and every example article (the flagship's experiment figures included)."""
    return [p.as_uri() for p in [example_build / "index.html", *sorted(example_build.glob("*/index.html"))]]


def test_pages_load_without_console_errors(open_page, article, every_page):
    assert len(every_page) >= 4
    for url in every_page:
        page, problems = open_page(url)
        assert page.title()
        assert problems == [], url
    page, _ = open_page(article)
    images = page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth > 0)")
    assert images and all(images)


def test_table_of_contents_links_reach_their_headings(open_page, article):
    page, problems = open_page(article)
    links = page.eval_on_selector_all(".d-contents a", "els => els.map(e => e.getAttribute('href'))")
    assert len(links) >= 4
    for href in links:
        page.click(f'.d-contents a[href="{href}"]')
        assert page.evaluate("location.hash") == href
        top = page.eval_on_selector(href, "el => el.getBoundingClientRect().top")
        assert -1 <= top < 100, f"{href} is at {top}px after clicking its link"
        page.evaluate("window.scrollTo(0, 0)")
    assert problems == []


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (".footnote-ref a", "If you understand a circuit"),
        ('.citation a[href="#ref-erhan2009visualizing"]', "Visualizing higher-layer features"),
    ],
)
def test_hover_cards_for_footnotes_and_citations(open_page, article, selector, expected):
    page, problems = open_page(article)
    card = page.locator(".hover-box")
    page.locator(selector).first.hover()
    card.wait_for(state="visible", timeout=2000)
    assert expected in card.inner_text()
    assert "↩" not in card.inner_text()
    box = card.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 1280
    page.mouse.move(5, 5)
    card.wait_for(state="hidden", timeout=2000)
    assert problems == []


def test_math_is_laid_out_by_the_browser(open_page, article):
    page, _ = open_page(article)
    display = page.eval_on_selector(".math-display math", "m => getComputedStyle(m).display")
    assert display == "block math"  # MathML Core layout, not raw text
    # In W_{j,i} the subscript sits lower than its base and is smaller.
    base, sub = page.eval_on_selector(
        "msub",
        "m => [...m.children].map(c => { const r = c.getBoundingClientRect(); return [r.top, r.height]; })",
    )[:2]
    assert sub[0] > base[0] and sub[1] < base[1]


@pytest.mark.parametrize("width", [1280, 375])
def test_no_horizontal_scroll(open_page, every_page, width):
    for url in every_page:
        page, _ = open_page(url, width)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{url} is {scroll_width}px wide at {width}px"


def test_margin_note_sits_in_the_gutter_on_wide_screens(open_page, article):
    page, _ = open_page(article, 1280)
    note = page.locator("aside.l-gutter").bounding_box()
    text = page.locator(".d-article > p").first.bounding_box()
    assert note["x"] > text["x"] + text["width"]
    page, _ = open_page(article, 375)
    note = page.locator("aside.l-gutter").bounding_box()
    assert note["x"] + note["width"] <= 375
