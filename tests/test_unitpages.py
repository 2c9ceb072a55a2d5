"""Unit pages: one per unit an article shows, linked from chips, grid cells and circuit nodes."""

from __future__ import annotations

import hashlib
import re
import shutil
from xml.etree import ElementTree

import pytest

from tests.conftest import build_article, run_cli, write

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
    # its image, the 4 probe images that excite it most beside it, and its diversity set
    assert len(images) == 9 and all(
        (site / "units" / "shapes" / "mixed3" / i).resolve().is_file() for i in images
    )
    assert page.count("-crop") == 4 and "The 4 of 1000 probe images that excite it most" in page
    assert re.search(r"Measured on 1000 images of shapes: specificity \d+ of 64 units", page)
    # each grid as a desktop shows it (and again with fewer columns, for a phone)
    svgs = [svg for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S) if "kernel-grid narrow" not in svg]
    titles = [ElementTree.fromstring(svg).find("{http://www.w3.org/2000/svg}title").text for svg in svgs]
    assert titles == ["Weights into mixed3:7", "Weights out of mixed3:7"]
    assert sum(svg.count('class="kernel"') for svg in svgs) == 16  # the 8 strongest inputs and outputs
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
    page.locator('#articles + ul a:has-text("Pages")').click()  # the caption links to it too
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


# Issue 27, "pages that agree": a unit's page showed the first article's image of the unit
# (in site order), made with that article's settings, while another article linking to it shows
# an image made with its own. A page shows each distinct image, labelled and linked.

AGREE = {
    "a": "---\ntitle: Three steps\nfeaturevis: {steps: 3, size: 32}\n---\n```{featurevis} mixed3:7\n```\n",
    "b": "---\ntitle: Five steps\nfeaturevis: {steps: 5, size: 32}\n---\n```{featurevis} mixed3:7\n```\n",
    "c": "---\ntitle: Five again\nfeaturevis: {steps: 5, size: 32}\n---\nSee {unit}`mixed3:7`.\n",
}


def build_folder(src, out, cache):
    result = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(cache))
    assert result.exit_code == 0, result.output
    rendered = re.search(r"(\d+) of \d+ page\(s\) rendered", result.stderr)
    computed = re.search(r"\((\d+) computed\)", result.stderr)
    return int(rendered[1]), int(computed[1])


@pytest.fixture(scope="module")
def agree(tmp_path_factory):
    root = tmp_path_factory.mktemp("agree")
    for name, text in AGREE.items():
        write(root / "src" / f"{name}.md", text)
    build_folder(root / "src", root / "out", root / "cache")
    return root


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def article_image(out, slug: str):
    src = re.search(r'<img[^>]* src="(figures/[^"]+\.png)"', (out / slug / "index.html").read_text())[1]
    return out / slug / src


def unit_images(page) -> list[tuple[str, str]]:
    """(image path, caption) of each feature visualization a unit page shows."""
    html = page.read_text()
    found = re.findall(
        r'<figure class="l-body unit-image">\s*<div class="unit-image-pair">\s*<img src="([^"]+)"'
        r'.*?<figcaption class="unit-image-caption">(.*?)</figcaption>',
        html,
        re.S,
    )
    return [((page.parent / src).resolve(), caption) for src, caption in found]


def test_a_unit_page_shows_the_image_an_article_with_other_settings_shows(agree):
    out = agree / "out"
    page = out / "units" / "shapes" / "mixed3" / "7.html"
    shown = {digest(path): caption for path, caption in unit_images(page)}
    five = digest(article_image(out, "b"))
    assert five in shown, "the page does not show the image 'Five steps' shows"
    assert "Made with 5 steps, 32 px, learning rate 0.05, seed 0" in shown[five]
    assert '<a href="../../../b/index.html">Five steps</a>' in shown[five]


def test_articles_with_different_settings_give_one_labelled_image_each(agree):
    out = agree / "out"
    images = unit_images(out / "units" / "shapes" / "mixed3" / "7.html")
    assert [digest(path) for path, _ in images] == [digest(article_image(out, s)) for s in ("a", "b")]
    (_, three), (_, five) = images
    assert "Made with 3 steps, 32 px," in three and '<a href="../../../a/index.html">Three steps</a>' in three
    assert "Five" not in three
    # 'Five again' shows the same image (the same job) as 'Five steps': one image, both linked
    assert "Made with 5 steps, 32 px," in five and "Three" not in five
    assert (
        'Shown in <a href="../../../b/index.html">Five steps</a> and '
        '<a href="../../../c/index.html">Five again</a>.' in five
    )


def test_a_unit_page_follows_what_its_articles_show_and_a_rebuild_renders_nothing(agree, tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    shutil.copytree(agree / "src", src)
    build_folder(src, out, agree / "cache")
    assert build_folder(src, out, agree / "cache") == (0, 0)  # nothing changed: nothing rendered
    (src / "c.md").write_text(AGREE["c"].replace("steps: 5", "steps: 6"))
    rendered, computed = build_folder(src, out, agree / "cache")
    assert computed >= 1 and rendered >= 1
    images = unit_images(out / "units" / "shapes" / "mixed3" / "7.html")
    assert len(images) == 3  # the unit page's key changed with what it shows: drawn again
    assert "Made with 6 steps," in images[2][1] and "Five again" in images[2][1]
    assert "Five again" not in images[1][1]
