"""Unit pages: one per unit an article shows, linked from chips, grid cells and circuit nodes."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest

from tests.conftest import build_article

ARTICLE = """
---
title: Pages
featurevis: {steps: 4, size: 32}
---
# Pages

See {unit}`mixed3:7` and {unit}`conv1:2`.

```{featurevis} mixed4:1
:objective: negative
```

```{circuit} mixed4:52
:inputs: mixed3:7
:label: fig-c
```
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return build_article(tmp_path_factory.mktemp("pages"), "p", ARTICLE)


def test_every_unit_shown_gets_a_page_and_nothing_else(site):
    pages = sorted(str(p.relative_to(site / "units")) for p in (site / "units").rglob("*.html"))
    assert pages == [
        "shapes/conv1/2.html",
        "shapes/mixed3/7.html",
        "shapes/mixed4/52.html",
    ]  # not the negative


def test_a_page_shows_image_diversity_inputs_outputs_and_articles(site):
    page = (site / "units" / "shapes" / "mixed3" / "7.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == 5 and all(
        (site / "units" / "shapes" / "mixed3" / i).resolve().is_file() for i in images
    )
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    titles = [ElementTree.fromstring(svg).find("{http://www.w3.org/2000/svg}title").text for svg in svgs]
    assert titles == ["Weights into mixed3:7", "Weights out of mixed3:7"]
    assert page.count('class="kernel"') == 16  # the 8 strongest inputs (conv2) and outputs (mixed4)
    folder = site / "units" / "shapes" / "mixed3"
    for links in re.findall(r'<p class="unit-links">(.*?)</p>', page, flags=re.S):
        for href in re.findall(r'href="([^"]+)"', links):  # units with pages are links that work
            assert (folder / href).resolve().is_file(), href
    assert '<a href="../../../p/index.html">Pages</a>' in page
    first = (site / "units" / "shapes" / "conv1" / "2.html").read_text()
    assert "first convolutional layer" in first
    last = (site / "units" / "shapes" / "mixed4" / "52.html").read_text()
    assert "No convolutional layer follows" in last


def test_chips_cells_and_nodes_link_to_pages(site, open_page):
    article = (site / "p" / "index.html").read_text()
    assert '<a class="unit-chip" href="../units/shapes/mixed3/7.html"' in article
    page, problems = open_page((site / "p" / "index.html").as_uri())
    page.locator("#fig-c .node").first.click()
    page.wait_for_url("**/units/shapes/mixed3/7.html")
    assert page.locator("h1").inner_text() == "mixed3:7"
    page.locator('a:has-text("Pages")').click()
    page.wait_for_url("**/p/index.html")
    assert problems == []


def test_labels_of_small_kernels_do_not_run_together():
    """Issue 27: a unit page's 1x1 input kernels are 8 px wide, their labels ('conv2:9') about
    40: each box is as wide as its label, so the labels no longer overlap."""
    import re

    import numpy as np

    from distillgen.render.kernelgrid import LABEL_CHAR, kernel_grid

    labels = ["conv2:9", "conv2:12", "conv2:30", "conv2:31"]
    svg = kernel_grid([(label, np.full((1, 1), 0.5)) for label in labels], "mixed3:0", 8, 8, "s")
    found = re.findall(r'<text class="kernel-label" x="([\d.]+)" y="[\d.]+">([^<]+)</text>', svg)
    starts = {text: float(x) for x, text in found}
    for left, right in zip(labels, labels[1:], strict=False):
        assert starts[right] - starts[left] >= LABEL_CHAR * len(left)
