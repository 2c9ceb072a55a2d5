"""Figures, cross-references, citations and footnotes in built pages."""

import re
import shutil

import pybtex.errors
import pytest
from pybtex.database import parse_file

from tests.conftest import CORPUS_BIB, run_cli, write


def build(src, tmp_path, *extra):
    out = tmp_path / "out"
    result = run_cli("build", str(src), "-o", str(out), *extra)
    return result, out


def page(out, slug="a"):
    return (out / slug / "index.html").read_text(encoding="utf-8")


def test_figures_are_numbered_and_references_resolve(site, tmp_path):
    write(
        site / "a.md",
        """
        ---
        title: A
        ---

        See {numref}`fig-two`, [](#fig-one), {numref}`Panel %s <fig-two>` and [the intro](#intro).

        ## Intro

        ```{figure} scale.svg
        :label: fig-one
        First.
        ```

        ```{figure} scale.svg
        :label: fig-two
        :layout: l-page
        Second.
        ```
        """,
    )
    result, out = build(site, tmp_path, "--strict")
    assert result.exit_code == 0, result.output
    html = page(out)
    assert '<a class="figure-ref" href="#fig-two">Figure 2</a>' in html
    assert '<a href="#fig-one">Figure 1</a>' in html
    assert '<a class="figure-ref" href="#fig-two">Panel 2</a>' in html
    assert '<a href="#intro">the intro</a>' in html
    assert '<figure class="l-page" id="fig-two">' in html
    assert '<span class="figure-number">Figure 2</span>' in html
    # The image is copied into the article folder under a content-hashed name.
    (asset,) = (out / "a" / "assets").iterdir()
    assert re.fullmatch(r"scale-[0-9a-f]{10}\.svg", asset.name)
    assert f'src="assets/{asset.name}"' in html


def test_citations_are_numbered_in_order_of_first_use(site, tmp_path):
    write(
        site / "a.md",
        """
        ---
        title: A
        bibliography: refs.bib
        ---

        First {cite}`cammarata2020curve`, then {cite}`olah2020zoom,cammarata2020curve`,
        and by name {cite:t}`olah2020zoom`.
        """,
    )
    result, out = build(site, tmp_path, "--strict")
    assert result.exit_code == 0, result.output
    html = page(out)
    assert '[<a href="#ref-cammarata2020curve" data-hover-ref="ref-cammarata2020curve">1</a>]' in html
    assert (
        '[<a href="#ref-olah2020zoom" data-hover-ref="ref-olah2020zoom">2</a>, '
        '<a href="#ref-cammarata2020curve" data-hover-ref="ref-cammarata2020curve">1</a>]'
    ) in html
    assert 'Olah et al. <span class="citation">' in html
    references = html[html.index('<ol class="references">') :]
    assert references.index("ref-cammarata2020curve") < references.index("ref-olah2020zoom")
    # Titles keep the authors' capitalization.
    assert "Zoom In: An Introduction to Circuits" in references


def test_footnotes_go_to_the_appendix(site, tmp_path):
    write(
        site / "a.md",
        """
        ---
        title: A
        ---

        Text.[^b] More.[^a]

        [^a]: Second note.
        [^b]: First *note*.
        """,
    )
    result, out = build(site, tmp_path, "--strict")
    assert result.exit_code == 0, result.output
    html = page(out)
    assert '<a href="#fn-1" id="fnref-1" data-hover-ref="fn-1">1</a>' in html
    appendix = html[html.index('id="appendix"') :]
    assert re.search(r'<li id="fn-1"><p>First <em>note</em>.</p>\s*<a class="footnote-backref"', appendix)
    assert '<li id="fn-2"><p>Second note.</p>' in appendix
    body = html[: html.index('id="appendix"')]
    assert "Second note." not in body


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS_BIB.glob("*.bib")))
def test_published_circuits_bibliographies_load_and_format(site, tmp_path, name):
    """Real authors' BibTeX: accents, @misc, \\url{...}, repeated keys, missing fields."""
    shutil.copy(CORPUS_BIB / name, site / "real.bib")
    with pybtex.errors.capture():
        keys = list(parse_file(str(site / "real.bib")).entries)
    write(site / "a.md", f"---\ntitle: A\nbibliography: real.bib\n---\n\nAll {{cite}}`{','.join(keys)}`.\n")
    result, out = build(site, tmp_path)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    html = page(out)
    assert html.count('<li id="ref-') == len(keys)
    assert "\\url" not in html and "{\\" not in html  # LaTeX was turned into text


def test_accents_in_real_bibliography_become_unicode(site, tmp_path):
    shutil.copy(CORPUS_BIB / "circuits-early-overview.bib", site / "real.bib")
    write(site / "a.md", "---\ntitle: A\nbibliography: real.bib\n---\n\n{cite}`kindermans2017patternnet`\n")
    result, out = build(site, tmp_path)
    assert result.exit_code == 0, result.output
    assert "Schütt" in page(out).replace('<span class="bibtex-protected">ü</span>', "ü")
