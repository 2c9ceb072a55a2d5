"""Figures laid out for reading (issue 27): a dictionary's splits grouped at a phone's width,
hover cards beside the diagram they explain and above an anchor at the window's bottom, pairs
of universality without dead space, kernels dimmed in the dark theme."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ACTION_TIMEOUT_MS

BROWSER = (pytest.mark.browser, pytest.mark.timeout(120, func_only=True))


def browser_test(test):
    for mark in BROWSER:
        test = mark(test)
    return test


def box(locator) -> dict:
    found = locator.bounding_box(timeout=ACTION_TIMEOUT_MS)
    assert found is not None, locator
    return found


def intersects(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


SPLITS = """() => [...document.querySelectorAll('#fig-dictionary .dictionary-split')].map(group => {
    const r = e => { const b = e.getBoundingClientRect();
                     return {left: b.left, right: b.right, top: b.top, bottom: b.bottom}; };
    const [neuron, ...features] = group.querySelectorAll('.unit-cell');
    const style = getComputedStyle(group);
    return {group: r(group), neuron: r(neuron), features: features.map(r),
            label: neuron.querySelector('.unit-label').textContent,
            bordered: parseFloat(style.borderTopWidth) > 0 && parseFloat(style.borderLeftWidth) > 0};
})"""


@browser_test
@pytest.mark.parametrize("width", [375, 1100])
def test_a_dictionarys_features_stay_in_their_neurons_group(open_page, example_build, width):
    """Each split is one boxed group: its features inside its box, after its neuron's column
    and never under it, where a reader would take them for another neuron's."""
    page, problems = open_page((example_build / "features-are-directions" / "index.html").as_uri(), width)
    splits = page.evaluate(SPLITS)
    assert len(splits) >= 3
    below = None
    for split in splits:
        group, neuron = split["group"], split["neuron"]
        assert split["bordered"], split["label"]
        assert split["features"], split["label"]
        if below is not None:
            assert group["top"] >= below, "groups overlap"
        below = group["bottom"]
        for tile in split["features"]:
            assert group["left"] - 0.5 <= tile["left"] and tile["right"] <= group["right"] + 0.5, split[
                "label"
            ]
            assert group["top"] <= tile["top"] and tile["bottom"] <= group["bottom"] + 0.5, split["label"]
            assert tile["left"] >= neuron["right"], f"a feature of {split['label']} sits under its column"
            assert tile["top"] >= neuron["top"] - 0.5, split["label"]
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    assert problems == []


def visible_circuit(page, figure: str):
    """The circuit's diagram as shown (a circuit may hold a layout for each width)."""
    page.evaluate(f"document.querySelector('#{figure}').scrollIntoView({{block: 'start'}})")
    return page.locator(f"#{figure} svg.circuit-svg >> visible=true").first


@browser_test
@pytest.mark.parametrize("how", ["hover", "focus"])
def test_a_circuit_nodes_card_opens_beside_the_circuit(open_page, example_build, how):
    page, problems = open_page((example_build / "shapes-features" / "index.html").as_uri(), 1100)
    svg = visible_circuit(page, "fig-curve-circuit")
    card = page.locator(".hover-box")
    for index in (0, 4, -1):  # the top row's first and middle nodes, the target
        nodes = svg.locator(".node")
        node = nodes.nth(index % nodes.count())
        if how == "hover":
            node.hover(timeout=ACTION_TIMEOUT_MS)
        else:
            node.focus(timeout=ACTION_TIMEOUT_MS)
        card.wait_for(state="visible", timeout=ACTION_TIMEOUT_MS)
        shown, diagram = box(card), box(svg)
        assert not intersects(shown, diagram), (index, shown, diagram)
        beside = shown["x"] >= diagram["x"] + diagram["width"] or shown["x"] + shown["width"] <= diagram["x"]
        assert beside, (index, shown, diagram)  # to its side on a desktop, not below it
        assert shown["x"] >= 0 and shown["x"] + shown["width"] <= 1100
        assert "activation" in card.inner_text(timeout=ACTION_TIMEOUT_MS)
        page.keyboard.press("Escape")
        card.wait_for(state="hidden", timeout=ACTION_TIMEOUT_MS)
    assert problems == []


@browser_test
def test_an_edges_card_opens_beside_the_circuit_and_below_it_on_a_phone(open_page, example_build):
    for width in (1100, 375):
        page, problems = open_page((example_build / "shapes-features" / "index.html").as_uri(), width)
        svg = visible_circuit(page, "fig-curve-circuit")
        card = page.locator(".hover-box")
        svg.locator(".edge").first.hover(timeout=ACTION_TIMEOUT_MS, force=True)
        card.wait_for(state="visible", timeout=ACTION_TIMEOUT_MS)
        assert card.locator("table.kernel-numbers td").count() >= 9
        shown, diagram = box(card), box(svg)
        assert not intersects(shown, diagram), (width, shown, diagram)
        if width == 375:  # no room beside it: below the whole figure
            assert (
                shown["y"]
                >= box(page.locator("#fig-curve-circuit"))["y"]
                + box(page.locator("#fig-curve-circuit"))["height"]
            )
        assert shown["x"] >= 0 and shown["x"] + shown["width"] <= width
        # the table's numbers fit the card: none is broken or cut off
        fits = card.evaluate("c => c.scrollWidth <= c.clientWidth + 1")
        assert fits
        assert problems == []


@browser_test
@pytest.mark.parametrize("width", [1280, 375])
def test_a_card_near_the_bottom_of_the_window_opens_above_its_anchor(open_page, example_build, width):
    page, problems = open_page((example_build / "reading-circuits" / "index.html").as_uri(), width)
    anchor = page.locator(".citation a").first
    card = page.locator(".hover-box")
    height = page.evaluate("document.documentElement.clientHeight")
    # the anchor 30 px above the window's bottom edge: no room below for the card
    page.evaluate(
        "([el, gap]) => window.scrollBy(0, el.getBoundingClientRect().bottom - (innerHeight - gap))",
        [anchor.element_handle(timeout=ACTION_TIMEOUT_MS), 30],
    )
    anchor.hover(timeout=ACTION_TIMEOUT_MS)
    card.wait_for(state="visible", timeout=ACTION_TIMEOUT_MS)
    at, shown = box(anchor), box(card)
    assert at["y"] + at["height"] <= height  # the anchor is in view, near the bottom
    assert shown["y"] + shown["height"] <= at["y"], (at, shown)  # the card above it
    assert shown["y"] >= 0
    page.mouse.move(1, 1)
    card.wait_for(state="hidden", timeout=ACTION_TIMEOUT_MS)
    # with room below, the card still opens below its anchor
    page.evaluate(
        "el => window.scrollBy(0, el.getBoundingClientRect().top - 100)",
        anchor.element_handle(timeout=ACTION_TIMEOUT_MS),
    )
    anchor.hover(timeout=ACTION_TIMEOUT_MS)
    card.wait_for(state="visible", timeout=ACTION_TIMEOUT_MS)
    at, shown = box(anchor), box(card)
    assert shown["y"] >= at["y"] + at["height"], (at, shown)
    assert problems == []


@browser_test
@pytest.mark.parametrize("width", [1100, 375])
def test_universality_pairs_have_no_dead_space(open_page, example_build, width):
    page, problems = open_page((example_build / "zoom-in-shapes" / "index.html").as_uri(), width)
    gaps = page.eval_on_selector_all(
        "#fig-universality .universality-pairs td[data-hover-ref]",
        """cells => cells.map(td => {
            const image = td.querySelector('img').getBoundingClientRect();
            const label = td.querySelector('code').getBoundingClientRect();
            const model = td.querySelector('.model-name').getBoundingClientRect();
            const cell = td.getBoundingClientRect();
            return [label.top - image.bottom, cell.bottom - model.bottom, image.top - cell.top];
        })""",
    )
    assert len(gaps) == 8
    for between, under, over in gaps:
        assert 0 <= between <= 8 and under <= 12 and over <= 12, (between, under, over)
    assert problems == []


def test_universality_series_name_both_sides_apart(example_build):
    """No legend reads 'shapes vs shapes': the sides differ by seed, model or layer."""
    names = []
    for page in sorted(example_build.glob("*/index.html")):
        for figure in re.findall(r"<figure[^>]*universality-figure.*?</figure>", page.read_text(), re.S):
            series = re.findall(r'<g class="series s\d"[^>]*data-series="([^"]*)"', figure)
            assert "|r| with ink density" in series  # the trivial predictor, beside both sides
            names.extend(name for name in series if name != "|r| with ink density")
    assert len(names) >= 12  # six figures, two series each
    for name in names:
        mine, theirs = re.match(r"(.*?) vs (.*?)(?:, images shuffled)?$", name).groups()
        assert mine != theirs, name
    assert "shapes@0 vs shapes@1" in names and "shapes@0 vs shapes@untrained" in names
    assert "m4 vs mixed4 of shapes" in names and "m4 vs mixed4 of shapes, images shuffled" in names


KERNELS = ".kernel-grid .kernel rect"


@browser_test
def test_kernels_are_dimmed_in_the_dark_theme_only(browser, example_build):
    url = (example_build / "shapes-features" / "index.html").as_uri()
    filters = {}
    for scheme, chosen in (("light", None), ("dark", None), ("light", "dark"), ("dark", "light")):
        context = browser.new_context(color_scheme=scheme, viewport={"width": 1100, "height": 800})
        page = context.new_page()
        page.goto(url)
        if chosen:
            page.evaluate(f"document.documentElement.setAttribute('data-theme', '{chosen}')")
        filters[scheme, chosen] = page.eval_on_selector(KERNELS, "r => getComputedStyle(r).filter")
        context.close()
    dark = filters["dark", None]
    assert "brightness" in dark and filters["light", "dark"] == dark
    assert filters["light", None] == "none" == filters["dark", "light"]


@browser_test
def test_a_phone_shows_a_kernel_grid_laid_out_again_from_the_desktops_cells(browser, example_build):
    # The phone's copy of a grid too wide for it places the desktop's cells again (<use>), so a
    # page holds each cell once; it must still show every kernel, dimmed in the dark theme.
    page_file = next(
        p for p in sorted((example_build / "units").rglob("*.html")) if "kernel-grid narrow" in p.read_text()
    )
    html = page_file.read_text()
    narrow = re.search(r"<svg[^>]*kernel-grid narrow.*?</svg>", html, flags=re.S).group(0)
    targets = re.findall(r'<use href="#([^"]+)"', narrow)
    assert targets and "<rect" not in narrow.split("<defs>")[0]  # no cell of its own
    assert all(html.count(f'id="{target}"') == 1 for target in targets)  # each grid's own cells
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme, viewport={"width": 375, "height": 800})
        page = context.new_page()
        page.goto(page_file.as_uri())
        uses = page.locator("svg.kernel-grid.narrow use")
        assert uses.count() == len(targets)
        for index in range(uses.count()):
            assert uses.nth(index).bounding_box()["width"] > 10  # drawn, where the phone shows it
        dimmed = uses.first.evaluate("u => getComputedStyle(u).filter")
        assert ("brightness" in dimmed) == (scheme == "dark"), dimmed
        context.close()
