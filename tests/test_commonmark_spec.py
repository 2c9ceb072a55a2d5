"""The CommonMark 0.31.2 spec examples through distillgen, against plain markdown-it-py.

Each example renders as markdown-it-py's CommonMark preset renders it, once the differences
distillgen makes on purpose are normalized (each listed below with its reason), or it is one
of the few examples that end in a diagnostic on purpose (also listed, with the message).
"""

import json
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from tests.conftest import render_snippet

SPEC = json.loads((Path(__file__).parent / "data" / "commonmark" / "spec-0.31.2.json").read_text("utf-8"))

# The reference: plain CommonMark plus the typographer (smart quotes, (c) -> ©, -- -> –), which
# distillgen turns on on purpose because Distill articles are typeset prose.
REFERENCE = MarkdownIt("commonmark", {"typographer": True}).enable(["replacements", "smartquotes"])


def normalize(html: str) -> str:
    """Undo the differences every page has on purpose."""
    # `##` and `###` headings get ids: the table of contents and `[](#intro)` link to them.
    html = re.sub(r'(<h[23]) id="[^"]*"', r"\1", html)
    # Code is highlighted by Pygments at build time: <pre class="highlight" data-language="x">
    # with <span>s per token, quotes left unescaped in text (equivalent HTML).
    html = re.sub(
        r'<pre class="highlight"(?: data-language="([^"]*)")?><code>',
        lambda m: f'<pre><code class="language-{m[1]}">' if m[1] else "<pre><code>",
        html,
    )
    html = re.sub(r"</?span[^>]*>", "", html)
    return html.replace("&quot;", '"')


def reference(markdown: str) -> str:
    return normalize(REFERENCE.render(markdown))


def _scheme_refused(html: str) -> str:
    return re.sub(r'<a href="[^"]*">([^<]*)</a>', lambda m: f"&lt;{m[1]}&gt;", html)


# Examples whose output differs on purpose: a function from markdown-it-py's HTML to ours.
DIFFERENT = {
    # Links are http(s), mailto or relative (safety.py: articles may come from someone else);
    # an autolink with another scheme stays text, as markdown-it keeps `javascript:` links.
    596: ("irc: scheme refused", _scheme_refused),
    598: ("a+b+c: scheme refused", _scheme_refused),
    599: ("made-up-scheme: refused", _scheme_refused),
    601: ("localhost: read as a scheme and refused", _scheme_refused),
    # MyST syntax: a line of `+++` is a block break (a notebook cell boundary), shown as nothing.
    44: ("MyST block break", lambda html: ""),
}

# Examples that end in an error on purpose, with the start of the message.
MISSING_IMAGE = "error: file not found"
OUTSIDE = "resolves to"
DIAGNOSED = {
    # A local image must be a file inside the articles folder (safety.py); the spec's images
    # (moon.jpg, /url, …) do not exist, so the build says which one is missing.
    **dict.fromkeys([517, 520, 531, 573, 576, 577, 578, 580], MISSING_IMAGE),
    475: MISSING_IMAGE,  # raw HTML's <img src="foo"> is published with the page like any image
    **dict.fromkeys([572, 574, 575, 579, 581, 582, 583, 584, 585, 586, 587, 588, 589, 591], OUTSIDE),
    # `#fragment` must name a heading, figure or label of the article: a dead link is an error.
    501: "error: unresolved reference link to '#fragment': no label 'fragment'",
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("commonmark")


@pytest.mark.parametrize("example", SPEC, ids=lambda e: str(e["number"]))
def test_spec_example(example, folder):
    number, markdown = example["number"], example["markdown"]
    html, diagnostics = render_snippet(folder, markdown)
    if number in DIAGNOSED:
        assert html is None and any(DIAGNOSED[number] in d for d in diagnostics), diagnostics
        return
    assert html is not None, diagnostics
    expected = reference(markdown)
    if number in DIFFERENT:
        expected = DIFFERENT[number][1](expected)
    assert normalize(html) == expected


def test_spec_is_complete():
    """The vendored spec is all 652 examples, and every exception names a real example."""
    assert [e["number"] for e in SPEC] == list(range(1, 653))
    assert set(DIFFERENT) | set(DIAGNOSED) <= {e["number"] for e in SPEC}


def test_markdown_it_is_the_spec():
    """The reference is only as good as markdown-it-py: it gives the spec's own HTML for every
    example but three empty block quotes (a newline inside `<blockquote></blockquote>`)."""
    plain = MarkdownIt("commonmark")
    differ = [e["number"] for e in SPEC if plain.render(e["markdown"]) != e["html"]]
    assert differ == [218, 239, 240]
