"""Authoring fidelity (issue 15): what MyST and CommonMark authors write renders as MyST renders
it, or is a `path:line` diagnostic naming the construct. One test per bug found."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.conftest import ARTICLES, run_cli, write
from tests.conftest import render_snippet as _render


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    shutil.copy(ARTICLES / "weight-colours.svg", folder / "scale.svg")
    return folder


def render(folder, markdown: str, front: str = "title: T\n"):
    """(HTML or None, diagnostics with the folder's path cut to 'a.md:…')."""
    html, diagnostics = _render(folder, markdown, front)
    return html, [d.replace(f"{folder}/", "") for d in diagnostics]


def build(folder, tmp_path, text: str, *extra: str):
    write(folder / "a.md", text)
    out = tmp_path / "out"
    result = run_cli("build", str(folder), "-o", str(out), "--cache-dir", str(tmp_path / "cache"), *extra)
    return result, out / "a" / "index.html"


# -- MyST syntax that was silently wrong --------------------------------------------------------


def test_yaml_option_block_is_read(folder):
    html, problems = render(
        folder,
        "```{figure} scale.svg\n---\nlabel: fig-a\nwidth: 120\n---\nThe caption.\n```\n\nSee [](#fig-a).\n",
    )
    assert problems == []
    assert '<figure class="l-body" id="fig-a">' in html and 'style="width:120px"' in html
    assert '<a href="#fig-a">Figure 1</a>' in html and "label:" not in html


def test_bad_yaml_option_block_is_an_error_at_its_line(folder):
    _, problems = render(folder, "```{figure} scale.svg\n---\nlabel: [a, b\n---\nCap.\n```\n")
    assert any(p.startswith("a.md:6: error: {figure}: malformed option block") for p in problems), problems
    _, problems = render(folder, "```{note}\n---\nText with no end.\n```\n")
    assert (
        "a.md:5: error: {note}: the option block opened with '---' is never closed by a second '---'"
        in problems
    )


def test_note_with_a_thematic_break_keeps_its_text(folder):
    html, problems = render(folder, "```{note}\nBefore.\n\n---\n\nAfter.\n```\n")
    assert problems == []
    assert "<p>Before.</p>\n<hr />\n<p>After.</p>" in html


def test_options_after_a_blank_line_are_options_not_caption(folder):
    html, problems = render(
        folder, "```{figure} scale.svg\n\n:label: fig-a\n\n:layout: l-page\nCaption.\n```\n"
    )
    assert problems == []
    assert '<figure class="l-page" id="fig-a">' in html
    assert "label" not in re.search(r"<figcaption>.*</figcaption>", html, re.S)[0]


def test_footnotes_inside_directive_bodies_in_reading_order(folder):
    html, problems = render(
        folder,
        "A[^a].\n\n```{note}\nIn a note[^b].\n```\n\nB[^c].\n\n[^a]: Note A.\n[^b]: Note B.\n[^c]: Note C.\n",
    )
    assert problems == []
    numbers = re.findall(r'data-hover-ref="fn-(\d)">', html)
    assert numbers == ["1", "2", "3"] and "[^b]" not in html


def test_footnotes_list_in_the_page(folder, tmp_path):
    result, page = build(
        folder, tmp_path, "---\ntitle: T\n---\n\n```{tip}\nSee[^x].\n```\n\n[^x]: The *note*.\n"
    )
    assert result.exit_code == 0, result.output
    assert '<li id="fn-1"><p>The <em>note</em>.' in page.read_text("utf-8")


def test_undefined_and_unused_footnotes_are_reported(folder):
    _, problems = render(folder, "Text[^oen] and[^one].\n\n[^one]: One.\n[^two]: Two.\n")
    assert (
        "a.md:4: error: footnote [^oen] is not defined (did you mean 'one'?); define it on a line of its own: [^oen]: The note."
        in problems
    )
    _, problems = render(folder, "Text[^one].\n\n[^one]: One.\n[^two]: Two.\n")
    assert problems == ["a.md:7: warning: footnote [^two] is defined but never referenced; it is left out"]


def test_targets_comments_and_block_breaks(folder):
    html, problems = render(
        folder,
        "(intro)=\n## The *intro*\n\n% a comment --> <script>\nText.\n\n+++\n\n(para)=\nA paragraph.\n\n"
        "See [](intro), {ref}`intro` and [](para).\n",
    )
    assert problems == []
    assert '<h2 id="intro">The <em>intro</em></h2>' in html
    assert "comment" not in html and "+++" not in html and "<script>" not in html
    assert '<a href="#intro">The <em>intro</em></a>' in html
    assert '<a class="figure-ref" href="#intro">The <em>intro</em></a>' in html
    assert '<span id="para"></span>' in html and '<a href="#para">para</a>' in html


def test_link_to_neither_label_nor_file_is_a_warning(folder):
    _, problems = render(folder, "(intro)=\n## Intro\n\nSee [the intro](intr).\n")
    assert problems == [
        "a.md:7: warning: link to 'intr' names neither a label of this article (did you mean 'intro'?) nor a file next to it"
    ]


def test_block_break_metadata_is_warned(folder):
    _, problems = render(folder, '+++ {"slide": true}\n')
    assert problems == ["a.md:4: warning: the metadata after '+++' is ignored: {\"slide\": true}"]


def test_colon_fence_without_braces(folder):
    html, problems = render(folder, ":::note\nA margin note.\n:::\n")
    assert '<aside class="l-gutter"><p>A margin note.</p>' in html
    assert problems == [
        "a.md:4: warning: write ':::{note}': MyST reads a directive's name in braces (this is read as {note})"
    ]
    _, problems = render(folder, ":::\ncode?\n:::\n")
    assert problems == [
        "a.md:4: error: a ':::' fence needs a directive, e.g. ':::{note}'; write code between ``` fences"
    ]


def test_numref_with_number_and_name(folder):
    html, problems = render(
        folder,
        "```{figure} scale.svg\n:name: fig-a\nThe *scale*.\n```\n\n"
        "{numref}`Fig. {number} <fig-a>`, {numref}`%s: {name} <fig-a>`.\n",
    )
    assert problems == []
    assert '<a class="figure-ref" href="#fig-a">Fig. 1</a>' in html
    assert '<a class="figure-ref" href="#fig-a">1: The scale.</a>' in html


def test_equations_are_numbered_and_referenced(folder):
    html, problems = render(
        folder,
        "$$ a = b $$ (eq-one)\n\n```{math}\n:label: eq-two\nc = d\n```\n\n$$\ne = f \\label{eq-three}\n$$\n\n"
        "{eq}`eq-two`, {numref}`eq-three`, [](#eq-one).\n",
    )
    assert problems == []
    assert [m for m in re.findall(r'id="(eq-\w+)">.*?\((\d)\)</span>', html)] == [
        ("eq-one", "1"),
        ("eq-two", "2"),
        ("eq-three", "3"),
    ]
    assert '<a class="equation-ref" href="#eq-two">(2)</a>' in html
    assert (
        '<a class="figure-ref" href="#eq-three">Equation 3</a>' in html
        and '<a href="#eq-one">(1)</a>' in html
    )


def test_eq_role_to_a_figure_is_an_error(folder):
    _, problems = render(folder, "```{figure} scale.svg\n:label: fig-a\nCap.\n```\n\n{eq}`fig-a`\n")
    assert "a.md:9: error: {eq}`fig-a` needs a labelled equation, but 'fig-a' is Figure 1" in problems


# -- math -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tex", "message"),
    [
        ("$\\frac{1}$", "\\frac is missing an argument"),
        ("$\\alpah + 1$", "unknown command \\alpah (did you mean '\\alpha'?)"),
        ("$a & b$", "'&' outside an environment with columns"),
        ("$x \\label{eq}$", "\\label works in display math"),
        ("$\\sqrt{}$", "\\sqrt is missing its argument"),
    ],
)
def test_tex_the_converter_would_misrender_is_an_error(folder, tex, message):
    _, problems = render(folder, f"Text {tex}.\n")
    assert (
        len(problems) == 1
        and problems[0].startswith("a.md:4: error: cannot typeset")
        and message in problems[0]
    )


def test_aligned_typesets_as_columns(folder):
    html, problems = render(folder, "$$\n\\begin{aligned} a &= b \\\\ c &= d \\end{aligned}\n$$\n")
    assert problems == [] and "<mtable" in html and "<mi>&amp;</mi>" not in html


def test_dollar_amounts_stay_prose(folder):
    html, problems = render(folder, "It costs $5 and $10, or $x$ in math.\n")
    assert problems == []
    assert "It costs $5 and $10, or <math" in html and html.count("<math") == 1


# -- front matter -----------------------------------------------------------------------------


def test_myst_authors_and_affiliations_in_the_byline(folder, tmp_path):
    front = """---
title: The *curve* detectors
doi: https://doi.org/10.23915/distill.00024.003
affiliations:
  - id: oai
    name: OpenAI
    url: https://openai.com
authors:
  - name: Chris Olah
    affiliations: [oai]
    email: chris@example.org
    orcid: 0000-0002-1825-0097
    corresponding: true
    equal_contributor: true
  - name: Nick Cammarata
    affiliations:
      - name: Thoughtful Lab
        url: https://lab.example.org
---

Text.
"""
    result, page = build(folder, tmp_path, front, "--strict")
    assert result.exit_code == 0, result.output
    html = page.read_text("utf-8")
    assert '<a href="https://openai.com">OpenAI</a>' in html
    assert '<a href="https://lab.example.org">Thoughtful Lab</a>' in html
    assert (
        'href="https://orcid.org/0000-0002-1825-0097"' in html and 'href="mailto:chris@example.org"' in html
    )
    assert '<sup class="equal" title="equal contribution">*</sup>' in html
    assert '<a href="https://doi.org/10.23915/distill.00024.003">10.23915/distill.00024.003</a>' in html
    assert "<h1>The <em>curve</em> detectors</h1>" in html and "<title>The curve detectors</title>" in html


def test_front_matter_mistakes_in_myst_authors(folder):
    _, problems = render(
        folder, "Text.\n", "title: T\nauthors:\n  - name: A\n    orcid: 1234\n    emial: a@b.c\n"
    )
    assert problems == ["a.md:6: error: front matter unknown key 'authors[0].emial' (did you mean 'email'?)"]
    _, problems = render(folder, "Text.\n", "title: T\ndoi: not a doi\n")
    assert problems == [
        "a.md:3: error: front matter 'doi' must be a DOI like 10.23915/distill.00024, not 'not a doi'"
    ]


def test_byte_order_mark_keeps_the_front_matter(folder, tmp_path):
    (folder / "a.md").write_text("\ufeff---\ntitle: With BOM\n---\n\nText.\n", encoding="utf-8")
    result = run_cli("build", str(folder), "-o", str(tmp_path / "out"), "--strict")
    assert result.exit_code == 0, result.output
    assert "<h1>With BOM</h1>" in (tmp_path / "out" / "a" / "index.html").read_text("utf-8")


# -- ids and references -----------------------------------------------------------------------


def test_headings_named_like_the_page_get_their_own_ids(folder, tmp_path):
    result, page = build(
        folder,
        tmp_path,
        "---\ntitle: T\n---\n\n## References\n\n## Appendix\n\n## Citation\n\n## Fn 1\n\nText[^a].\n\n[^a]: A.\n",
    )
    assert result.exit_code == 0, result.output
    ids = re.findall(r'id="([^"]+)"', page.read_text("utf-8"))
    assert len(ids) == len(set(ids)), ids
    assert {"references-1", "appendix-1", "citation-1", "section-fn-1"} <= set(ids)


@pytest.mark.parametrize("label", ["fn-1", "ref-olah", "references", "fnref-2"])
def test_labels_the_page_uses_are_refused(folder, label):
    _, problems = render(folder, f"```{{figure}} scale.svg\n:label: {label}\nCap.\n```\n")
    assert (
        f"a.md:5: error: label '{label}' is an id the page itself uses (footnotes, citations, appendix); choose another"
        in problems
    )


def test_heading_markup_in_contents_and_references(folder, tmp_path):
    result, page = build(
        folder,
        tmp_path,
        "---\ntitle: T\n---\n\n## The `code` and *emphasis*\n\nSee {ref}`the-code-and-emphasis`.\n\n"
        "## H{sub}`2`O [in water](https://example.org)\n",
    )
    assert result.exit_code == 0, result.output
    html = page.read_text("utf-8")
    assert '<a href="#the-code-and-emphasis">The <code>code</code> and <em>emphasis</em></a>' in html
    assert (
        'href="#the-code-and-emphasis">The <code>code</code> and <em>emphasis</em></a>'
        in html.split("<article")[1]
    )
    assert '<a href="#ho-in-water">H<sub>2</sub>O in water</a>' in html  # a role; no link in a link
    assert "*emphasis*" not in html


def test_images_named_with_spaces_and_accents_and_raw_img(folder, tmp_path):
    for name in ("my scale.svg", "échelle.svg", "raw.svg"):
        shutil.copy(folder / "scale.svg", folder / name)
    text = '---\ntitle: T\n---\n\n![a](<my scale.svg>) ![b](échelle.svg)\n\n<img src="raw.svg" alt="raw">\n'
    result, page = build(folder, tmp_path, text, "--strict")
    assert result.exit_code == 0, result.output
    html = page.read_text("utf-8")
    sources = re.findall(r'src="(assets/[^"]+)"', html)
    assert [s.split("-")[0] for s in sources] == ["assets/my", "assets/echelle", "assets/raw"], sources
    assert all((page.parent / s).is_file() for s in sources)


def test_raw_img_of_a_missing_file_is_an_error(folder):
    _, problems = render(folder, '<img src="nope.png">\n')
    assert problems[0].startswith("a.md:4: error: file not found: 'nope.png'")


def test_figure_with_an_https_url_is_linked_not_looked_up(folder):
    html, problems = render(folder, "```{figure} https://example.org/a.png\n:alt: A.\nCap.\n```\n")
    assert problems == [] and '<img src="https://example.org/a.png" alt="A."' in html
    _, problems = render(folder, "```{figure} javascript:alert(1)\nCap.\n```\n")
    assert problems and "error" in problems[0]


# -- line numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "construct",
    [
        "`code\nspan`",
        "$$a\n= b$$",
        '[link](https://x.org "a\ntitle")',
        '<span\nclass="x">html</span>',
        "![alt\ntext](scale.svg)",
    ],
)
def test_line_numbers_after_a_multiline_inline_construct(folder, construct):
    _, problems = render(folder, f"Text {construct} then {{nope}}`x`.\n")
    assert problems[0].startswith("a.md:5: error: unknown role '{nope}'"), problems


def test_line_numbers_in_image_alt_text(folder):
    _, problems = render(folder, "![alt\n{nope}`x`](scale.svg)\n")
    assert problems[0].startswith("a.md:5: error: unknown role '{nope}'"), problems


# -- bibliography -----------------------------------------------------------------------------

BIB = r"""@article{maaten2008,
  author = {van der Maaten, Laurens and Hinton, Geoffrey and others},
  title = {Visualizing Data using t-SNE}, journal = {JMLR}, year = {2008}
}
@misc{bio2020,
  author = {Smith, Ada and Doe, Jane}, title = {A preprint}, year = {2020},
  eprint = {10.1101/2020.01.01.123}, archivePrefix = {bioRxiv}
}
@misc{bio2021,
  author = {Smith, Ada}, title = {Another}, year = {2021},
  eprint = {https://www.biorxiv.org/content/10.1101/2021.02.02}
}
@inproceedings{short2019,
  author = {Smith, Ada and van Doe, Jane and Roe, Richard}, title = {Incomplete}, year = {2019}
}
@article{maaten2008,
  author = {Someone}, title = {Again}
}
"""


def test_bibliography_entries_as_authors_expect(folder, tmp_path):
    (folder / "refs.bib").write_text(BIB, encoding="utf-8")
    text = (
        "---\ntitle: T\nbibliography: refs.bib\n---\n\n"
        "{cite:t}`maaten2008` {cite}`bio2020,bio2021,short2019`\n"
    )
    result, page = build(folder, tmp_path, text)
    assert result.exit_code == 0, result.output
    html = page.read_text("utf-8")
    assert "van der Maaten et al. <span" in html  # name particles kept; and others -> et al.
    assert "Geoffrey Hinton et al." in html and "others" not in html
    assert "arxiv.org" not in html
    assert 'href="https://doi.org/10.1101/2020.01.01.123"' in html
    assert 'href="https://www.biorxiv.org/content/10.1101/2021.02.02"' in html
    assert "Ada Smith, Jane van Doe and Richard Roe. Incomplete. 2019." in html
    assert "refs.bib:16: warning: repeated bibliography entry: maaten2008" in result.stderr


# -- common MyST directives and roles ---------------------------------------------------------


def test_admonitions(folder):
    html, problems = render(
        folder,
        "```{warning}\nCareful.\n```\n\n```{admonition} A *title*\n:class: tip\nBody.\n```\n\n"
        ":::{important} First line.\nMore.\n:::\n",
    )
    assert problems == []
    assert '<aside class="admonition warning"><p class="admonition-title">Warning</p><p>Careful.</p>' in html
    assert (
        '<aside class="admonition tip"><p class="admonition-title">A <em>title</em></p><p>Body.</p>' in html
    )
    assert '<p class="admonition-title">Important</p><p>First line.</p><p>More.</p>' in html
    _, problems = render(folder, "```{admonition}\nNo title.\n```\n")
    assert problems == ["a.md:4: error: {admonition} needs an argument: the title (Markdown)"]


def test_image_directive(folder, tmp_path):
    result, page = build(
        folder,
        tmp_path,
        "---\ntitle: T\n---\n\n```{image} scale.svg\n:alt: A scale.\n:width: 50%\n:align: center\n```\n",
    )
    assert result.exit_code == 0, result.output
    assert re.search(
        r'<img src="assets/scale-\w+\.svg" alt="A scale\." loading="lazy" class="align-center" style="width:50%">',
        page.read_text("utf-8"),
    )


def test_code_block_with_line_numbers_and_emphasis(folder):
    html, problems = render(
        folder,
        "```{code-block} python\n:linenos:\n:lineno-start: 10\n:emphasize-lines: 2\n:caption: Two lines\n"
        "a = 1\nb = 2\n```\n",
    )
    assert problems == []
    assert '<figure class="code"><figcaption>Two lines</figcaption>' in html
    lines = html.split("<code>")[1].split("</code>")[0].split("\n")
    assert lines[0].startswith('<span class="lineno">10</span>')
    assert lines[1].startswith('<span class="hll"><span class="lineno">11</span>')
    _, problems = render(folder, "```{code-block} python\n:emphasize-lines: two\nx\n```\n")
    assert problems[0].startswith("a.md:5: error: bad value for ':emphasize-lines:' in {code-block}")


def test_list_table(folder):
    html, problems = render(
        folder,
        "```{list-table} The *caption*\n:header-rows: 1\n:label: tbl-a\n\n* - Layer\n  - Units\n* - conv2\n  - **16**\n```\n\n"
        "See {numref}`tbl-a`.\n",
    )
    assert problems == []
    assert "<thead><tr><th>Layer</th><th>Units</th></tr></thead>" in html
    assert "<tbody><tr><td>conv2</td><td><strong>16</strong></td></tr></tbody>" in html
    assert '<span class="figure-number">Table 1</span>The <em>caption</em>' in html
    assert '<a class="figure-ref" href="#tbl-a">Table 1</a>' in html
    _, problems = render(folder, "```{list-table}\n* - a\n  - b\n* - c\n```\n")
    assert problems == ["a.md:4: error: {list-table} rows have different numbers of cells: 2, 1"]


def test_inline_html_roles(folder):
    html, problems = render(folder, "H{sub}`2`O, 4{sup}`th`, {abbr}`MLP (multi-layer <perceptron>)`.\n")
    assert problems == []
    assert "H<sub>2</sub>O, 4<sup>th</sup>, " in html
    assert '<abbr title="multi-layer &lt;perceptron&gt;">MLP</abbr>' in html


def test_the_rest_of_myst_is_an_unknown_directive(folder):
    _, problems = render(folder, "```{tabbed} One\nText.\n```\n")
    assert problems[0].startswith("a.md:4: error: unknown directive '{tabbed}'")


def test_a_group_author_is_cited_as_one_name_and_the_citation_carries_the_url(tmp_path):
    src = write(tmp_path / "src" / "distillgen.yml", "title: Notes\nurl: https://example.org/notes\n").parent
    write(
        src / "zoom.md",
        "---\ntitle: Zooming In\ndate: 2026-12-06\nauthors:\n  - name: The Circuits Team\n---\n\nText.\n",
    )
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 0, result.output
    html = (tmp_path / "out" / "zoom" / "index.html").read_text()
    assert ">The Circuits Team, &#34;Zooming In&#34;, Notes, 2026. https://example.org/notes/zoom/<" in html
    assert "author = {{The Circuits Team}}" in html and html.count("Circuits Team") >= 2
    assert "Team, The Circuits" not in html and ">Team, &#34;" not in html
