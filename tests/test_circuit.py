"""{circuit}: inputs ranked by expanded weights, a well-formed interactive SVG, errors."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import numpy as np
import pytest
from playwright.sync_api import expect

from distillgen.engine.models import load_model
from distillgen.engine.weights import expanded_weights
from tests.conftest import build_article, run_cli, write

SVG = "{http://www.w3.org/2000/svg}"
ARTICLE = """
---
title: Circuit
featurevis: {steps: 4, size: 32}
---
# A circuit

```{circuit} mixed4:52
:inputs: mixed3
:top: 12
:label: fig-circuit
A curve detector and its twelve strongest inputs.
```

```{circuit} mixed4:52,30
:inputs: mixed3:43,31
Two chosen inputs into two targets.
```

```{circuit} mixed4:52
:inputs: conv2 -> mixed3
:top: 3
Two layers of inputs, each ranked by its weights into the row below it.
```

```{circuit} mixed4:52
:inputs: mixed3
:top: 16
:label: fig-sixteen
Sixteen inputs.
```
"""


@pytest.fixture(scope="module")
def circuit_site(tmp_path_factory):
    return build_article(tmp_path_factory.mktemp("circuit"), "c", ARTICLE) / "c" / "index.html"


def svgs(page: str, layout: str = "wide") -> list[str]:
    """The page's circuit diagrams as drawn for a desktop ("wide") or a phone ("narrow"), or
    for both (a diagram no wider than a phone's column is drawn once)."""
    return re.findall(rf'<svg[^>]*class="circuit-svg (?:{layout}|any-width)".*?</svg>', page, flags=re.S)


def test_inputs_are_the_strongest_expanded_weights(circuit_site):
    ranked, chosen, _, _ = svgs(circuit_site.read_text())
    root = ElementTree.fromstring(ranked)  # well-formed XML
    assert root.find(f"{SVG}title").text == "Circuit into mixed4:52"
    inputs = [a.get("data-unit") for a in root.iter(f"{SVG}a") if a.get("class") == "node"][:-1]
    kernels = expanded_weights(load_model("shapes"), "mixed3", "mixed4", [52])[0]
    norms = np.sqrt((kernels**2).sum(axis=(1, 2)))
    assert inputs == [f"mixed3:{c}" for c in np.argsort(-norms, kind="stable")[:12]]
    edges = [g for g in root.iter(f"{SVG}g") if g.get("class", "").startswith("edge")]
    assert len(edges) == 12
    widths = [float(g.find(f"{SVG}line").get("stroke-width")) for g in edges]
    assert widths == sorted(widths, reverse=True) and widths[0] == 8.0  # width follows the norm
    for edge in edges:  # red when the kernel sums positive, blue when negative
        channel = int(edge.get("data-from").split(":")[1])
        assert edge.get("class") == ("edge positive" if kernels[channel].sum() >= 0 else "edge negative")
    two = ElementTree.fromstring(chosen)
    assert len([a for a in two.iter(f"{SVG}a") if a.get("class") == "node"]) == 4
    assert len([g for g in two.iter(f"{SVG}g") if g.get("class", "").startswith("edge")]) == 4


def nodes(root) -> list[str]:
    return [a.get("data-unit") for a in root.iter(f"{SVG}a") if a.get("class") == "node"]


def test_a_chain_of_layers_ranks_each_row_by_its_weights_into_the_next(circuit_site):
    root = ElementTree.fromstring(svgs(circuit_site.read_text())[2])
    model = load_model("shapes")
    into_target = expanded_weights(model, "mixed3", "mixed4", [52])[0]
    mixed3 = [int(c) for c in np.argsort(-np.sqrt((into_target**2).sum(axis=(1, 2))), kind="stable")[:3]]
    stacks = expanded_weights(model, "conv2", "mixed3", mixed3)
    norms = np.stack([np.sqrt((k**2).sum(axis=(1, 2))) for k in stacks])
    conv2 = []  # each mixed3 unit's strongest conv2 input in turn, then the second strongest...
    for rank in range(norms.shape[1]):
        for ranking in np.argsort(-norms, axis=1, kind="stable"):
            if len(conv2) < 3 and int(ranking[rank]) not in conv2:
                conv2.append(int(ranking[rank]))
    conv2.sort(key=lambda c: -norms[:, c].max())
    assert nodes(root) == [*(f"conv2:{c}" for c in conv2), *(f"mixed3:{c}" for c in mixed3), "mixed4:52"]
    edges = [(g.get("data-from"), g.get("data-to")) for g in root.iter(f"{SVG}g") if g.get("data-from")]
    assert sorted(edges) == sorted(
        [
            *((f"conv2:{a}", f"mixed3:{b}") for a in conv2 for b in mixed3),
            *((f"mixed3:{b}", "mixed4:52") for b in mixed3),
        ]
    )
    assert "6 input units of shapes in 2 layers" in root.find(f"{SVG}desc").text
    strongest: dict[str, float] = {}  # each pair of rows is drawn on its own scale
    for g in root.iter(f"{SVG}g"):
        if g.get("data-from"):
            pair = g.get("data-from").split(":")[0]
            strongest[pair] = max(strongest.get(pair, 0.0), float(g.find(f"{SVG}line").get("stroke-width")))
    assert strongest == {"conv2": 8.0, "mixed3": 8.0}
    glyphs = {
        g.get("data-from").split(":")[0]: g.find(f"{SVG}g").get("class")
        for g in root.iter(f"{SVG}g")
        if g.get("data-from")
    }
    # 9 edges between two rows of 3: their glyphs show only while the edge is highlighted
    assert glyphs == {"conv2": "glyph on-highlight", "mixed3": "glyph"}


def test_the_diagram_is_deterministic(circuit_site, tmp_path):
    src = write(tmp_path / "src" / "c.md", ARTICLE).parent
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 0
    assert svgs((tmp_path / "out" / "c" / "index.html").read_text()) == svgs(circuit_site.read_text())


@pytest.mark.browser
def test_circuit_in_the_browser(circuit_site, open_page):
    page, problems = open_page(circuit_site.as_uri())
    svg = page.locator("#fig-circuit svg.wide")
    node = svg.locator(".node").nth(2)
    unit = node.get_attribute("data-unit")
    node.hover()
    assert "focused" in svg.get_attribute("class")
    active = svg.locator(".edge.active")
    assert active.count() == 1 and active.first.get_attribute("data-from") == unit
    expect(svg.locator(".edge:not(.active)").first).to_have_css("opacity", "0.1")  # after the fade
    page.mouse.move(0, 0)
    assert svg.locator(".edge.active").count() == 0
    svg.locator(".node").last.focus()  # the target, by keyboard: all its edges light up
    assert svg.locator(".edge.active").count() == 12
    svg.locator(".edge").first.hover()
    card = page.locator(".hover-box")
    card.wait_for(state="visible")
    assert "→" in card.inner_text() and card.locator("table.kernel-numbers td").count() >= 9
    assert problems == []


@pytest.mark.browser
def test_twelve_inputs_fit_a_phone(circuit_site, open_page):
    page, problems = open_page(circuit_site.as_uri(), width=375)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    box = page.locator("#fig-circuit svg.narrow").bounding_box()
    assert box["width"] <= 375
    assert not page.locator("#fig-circuit svg.wide").is_visible()
    assert problems == []


@pytest.mark.browser
@pytest.mark.parametrize("width", [1100, 375])
def test_sixteen_inputs_are_readable(circuit_site, open_page, width):
    """Each edge meets the target at its own point, carries its kernel at 24 px or more, and
    the figure has its colour scale; the node labels read at 10 px or more."""
    page, problems = open_page(circuit_site.as_uri(), width=width)
    figure = page.locator("#fig-sixteen")
    svg = figure.locator("svg.wide" if width > 600 else "svg.narrow")
    assert svg.is_visible()
    drawn = svg.evaluate(
        """svg => [...svg.querySelectorAll('.edge')].map(edge => {
            const line = edge.querySelector('line'), glyph = edge.querySelector('.glyph');
            const box = glyph.getBoundingClientRect();
            return {end: [line.getAttribute('x2'), line.getAttribute('y2')].join(','),
                    glyph: [box.width, box.height]};
        })"""
    )
    assert len(drawn) == 16
    assert len({edge["end"] for edge in drawn}) == 16  # no two edges end at one point
    assert all(round(min(edge["glyph"]), 2) >= 24 for edge in drawn), drawn  # (to subpixel rounding)
    labels = svg.evaluate(  # the rendered font size: the label's size times the drawing's scale
        """svg => [...svg.querySelectorAll('.node-label')].map(t =>
            parseFloat(getComputedStyle(t).fontSize) * Math.hypot(t.getScreenCTM().a, t.getScreenCTM().b))"""
    )
    assert min(labels) >= 10, labels
    scales = figure.locator(".colour-scale")
    assert scales.count() == 1 and scales.first.is_visible()
    assert "mixed3" in scales.first.inner_text() and figure.locator(".scale-bar").is_visible()
    assert problems == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("```{circuit} mixed4:52\n```", "{circuit} needs :inputs:"),
        ("```{circuit} mixed3:1\n:inputs: mixed4\n```", "'mixed4' does not come before 'mixed3'"),
        (
            "```{circuit} mixed4:1\n:inputs: mixed3:1,conv2:2\n```",
            "each stage of :inputs: is one layer; split 'mixed3:1,conv2:2' with '->'",
        ),
        ("```{circuit} mixed4:1\n:inputs: mixed3 -> conv2\n```", "'mixed3' does not come before 'conv2'"),
        ("```{circuit} mixed4:1\n:inputs: mixd3\n```", "unknown layer 'mixd3'"),
    ],
)
def test_circuit_mistakes_are_path_line_errors(tmp_path, body, message):
    src = write(tmp_path / "src" / "c.md", f"---\ntitle: C\n---\n\n{body}\n").parent
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c"))
    assert result.exit_code == 1 and message in result.stderr, result.stderr
    assert re.search(rf"{re.escape(str(src / 'c.md'))}:\d+: error: ", result.stderr)
