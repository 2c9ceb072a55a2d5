"""Hostile input (DESIGN.md, "Security rules"): articles, .bib files and models from someone else.

Injections are checked in a real browser (no dialog may open, even when every link is
clicked); refusals as author errors (`path:line: error:`, exit 1, no traceback, the previous
build intact).
"""

from __future__ import annotations

import gc
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from distillgen.render.math import to_mathml
from distillgen.source.markdown import make_parser
from tests.conftest import ARTICLES, run_cli, write


def build(src: Path, out: Path, *args: str):
    return run_cli("build", str(src), "-o", str(out), "--cache-dir", str(src.parent / "cache"), *args)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def previous(site, tmp_path):
    """A site with one good article, built into tmp_path/out: (src, out, what out held)."""
    write(site / "good.md", "---\ntitle: Good\n---\n\nText.\n")
    out = tmp_path / "out"
    assert build(site, out).exit_code == 0
    return site, out, snapshot(out)


def assert_refused(previous, result, expected: str) -> None:
    """Exit 1 with `expected` (a `name.md:line: error: …` start) and the old build untouched."""
    _src, out, before = previous
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line.split("src/", 1)[-1] for line in result.stderr.splitlines()]
    assert any(line.startswith(expected) for line in lines), result.stderr
    assert snapshot(out) == before


# -- in the browser ---------------------------------------------------------------------------


# Injected before any script of every page: alert, confirm and prompt report their message to
# the test instead of opening a modal dialog. A real dialog blocks the page until Playwright
# answers it, and one opening while a page closes could hang the suite (it did, once, in CI).
RECORD_DIALOGS = """
for (const name of ["alert", "confirm", "prompt"]) {
  window[name] = (message) => { window.recordDialog(String(message)); return null; };
}
"""

# Clicks link `i` as a reader would: its own handlers and a `javascript:` URL run, but a link
# that leaves the page (another file, a web address, mailto:) has its navigation cancelled and
# its destination returned as the browser resolved it. Following links is not the point, and
# it is what hung the suite: Chromium can leave `page.close()` waiting for ever on a
# navigation that is committing (Playwright issues 41900, 42366).
CLICK_IN_PLACE = """
i => {
  const link = document.querySelectorAll('a[href]')[i];
  const here = location.href.split('#')[0];
  const inPage = link.href.split('#')[0] === here && link.hash !== '';
  const runsScript = link.protocol === 'javascript:';
  if (!inPage && !runsScript) {
    addEventListener('click', event => event.preventDefault(), {capture: true, once: true});
  }
  link.click();
  return {href: link.href, runsScript, inPage};
}
"""


@dataclass(frozen=True)
class Clicked:
    dialogs: list[str]  # the messages of every alert, confirm or prompt that was called
    destinations: list[str]  # where the links that leave the page lead, as the browser reads them


def click_every_link(browser, url: str) -> Clicked:
    """Open `url`, hover its citations and click each of its links in place (the network
    blocked, every action under the browser fixture's timeout): the dialogs they opened and
    where they lead."""
    context = browser.new_context()
    context.route(re.compile(r"^(https?|wss?)://"), lambda route: route.abort())
    dialogs: list[str] = []
    destinations: list[str] = []
    context.expose_function("recordDialog", lambda message: dialogs.append(message))
    context.add_init_script(RECORD_DIALOGS)
    context.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        page = context.new_page()
        page.goto(url)
        for citation in page.locator(".citation a").all():  # hover cards copy the reference HTML
            citation.hover()
        count = page.locator("a[href]").count()
        assert count > 0
        for index in range(count):
            clicked = page.evaluate(CLICK_IN_PLACE, index)
            page.wait_for_timeout(50)  # a dialog's message reaches the test asynchronously
            if not (clicked["runsScript"] or clicked["inPage"]):
                destinations.append(clicked["href"])
            if clicked["runsScript"] or page.url.split("#")[0] != url.split("#")[0]:
                page.goto(url)  # a javascript: URL or a script may have replaced the document
    finally:
        context.close()
    return Clicked(dialogs, destinations)


LINKS_OF_EVERY_KIND = """<!doctype html><html lang="en"><head><title>Links</title></head><body>
<p id="top"><a href="mailto:a@example.com">mail</a> <a href="{other}">another file</a>
<a href="file:///etc/hostname">a file outside</a> <a href="javascript:alert('js')">script</a>
<a href="#top">same page</a> <a href="https://example.com/">the web</a>
<a href="data:text/html,x">data</a> <a href="page.pdf" download>a download</a></p>
</body></html>
"""


@pytest.mark.browser
@pytest.mark.timeout(120, func_only=True)  # twenty rounds take seconds; a hang fails in two minutes
def test_clicking_every_kind_of_link_never_hangs(browser, tmp_path):
    other = write(tmp_path / "other.html", "<!doctype html><title>Other</title><p>Other.</p>\n")
    page = write(tmp_path / "links.html", LINKS_OF_EVERY_KIND.format(other=other.name))
    for _ in range(20):
        clicked = click_every_link(browser, page.as_uri())
        assert clicked.dialogs == ["js"]  # the javascript: link ran, and only it
        assert clicked.destinations == [
            "mailto:a@example.com",
            other.as_uri(),
            "file:///etc/hostname",
            "https://example.com/",
            "data:text/html,x",
            (tmp_path / "page.pdf").as_uri(),
        ]


EVIL_BIB = """
@article{evil,
  author = {Mallory, Eve and {<img src=x onerror=alert('bib-author')>}},
  title = {Evil <script>alert('bib-title')</script>},
  journal = {J}, year = {2020},
  doi = {"><script>alert('bib-doi')</script>},
  eprint = {"><img src=x onerror=alert('bib-eprint')>},
  url = {javascript:alert('bib-url')}
}
@misc{sneaky,
  title = {Sneaky},
  url = {\\url{  JavaScript:alert('bib-url2') }}
}
"""

EVIL_ARTICLE = """
---
title: Evil
authors:
  - name: Mallory
    url: https://example.com/"><script>alert('author-url')</script>
doi: 10.1/"><script>alert('doi')</script>
bibliography: evil.bib
---

Text {cite}`evil`, {cite:t}`evil`, {cite}`sneaky`. [markdown](javascript:alert('md'))
[entity](&#106;avascript:alert('entity')) [reference][r] [data](data:text/html;base64,PHNjcmlwdD5hbGVydCgnZGF0YScpPC9zY3JpcHQ+)
and a fine [link](https://example.com) and [mail](mailto:a@example.com).

[r]: JavaScript:alert('ref')
"""


@pytest.mark.browser
def test_bib_and_link_injections_stay_text_in_the_browser(browser, tmp_path):
    src = tmp_path / "src"
    write(src / "evil.bib", EVIL_BIB)
    write(src / "evil.md", EVIL_ARTICLE)
    result = build(src, tmp_path / "out")
    assert result.exit_code == 0, result.output
    # The .bib's javascript: links are dropped with a warning at the entry's line.
    assert re.search(
        r"evil\.bib:1: warning: entry 'evil': url 'javascript:.*the link is left out", result.stderr
    )
    assert "evil.bib:9: warning: entry 'sneaky': url" in result.stderr

    page_file = tmp_path / "out" / "evil" / "index.html"
    clicked = click_every_link(browser, page_file.as_uri())
    assert clicked.dialogs == []
    # Every link a reader can click leads to the web, an e-mail or a page of the site, as the
    # browser itself resolves it (entities, case and whitespace included).
    for url in clicked.destinations:
        assert url.startswith(("http://", "https://", "mailto:", page_file.parent.parent.as_uri())), url
    html = page_file.read_text()
    assert "doi:\"&gt;&lt;script&gt;alert('bib-doi')" in html  # the DOI is shown as the text it is


# -- 2. URLs in the front matter --------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "java\\tscript:alert(1)", "data:text/html,x", "file:///etc"]
)
def test_an_author_url_that_is_not_http_is_an_error(previous, url):
    src, out, _ = previous
    write(src / "a.md", f'---\ntitle: A\nauthors:\n  - name: Eve\n    url: "{url}"\n---\n\nText.\n')
    assert_refused(
        previous,
        build(src, out),
        "a.md:5: error: front matter 'authors[0].url': '",
    )


def test_one_url_rule_for_markdown_links():
    md = make_parser()
    html = md.render("[a](https://x) [b](mailto:a@x) [c](page.html) [d](ftp://x) [e](javascript:x)")
    assert re.findall(r'href="([^"]*)"', html) == ["https://x", "mailto:a@x", "page.html"]


# -- 3. raw HTML ------------------------------------------------------------------------------


RAW = """
---
title: Raw
---

<script>alert('raw')</script>

Inline <b onclick="x()">bold</b> text.

```{note}
<i>in a note</i>
```
"""


@pytest.mark.browser
def test_raw_html_runs_by_default_as_documented(browser, tmp_path):
    src = write(tmp_path / "src" / "raw.md", RAW).parent
    assert build(src, tmp_path / "out").exit_code == 0
    page = (tmp_path / "out" / "raw" / "index.html").as_uri()
    assert "raw" in click_every_link(browser, page).dialogs


def test_no_raw_html_refuses_every_block_and_tag(previous):
    src, out, _ = previous
    write(src / "raw.md", RAW)
    result = build(src, out, "--no-raw-html")
    prefix = "raw.md:{}: error: raw HTML is not allowed in this build (--no-raw-html): {}"
    assert_refused(previous, result, prefix.format(5, "<script>alert('raw')</script>"))
    assert_refused(previous, result, prefix.format(7, '<b onclick="x()">'))
    assert_refused(previous, result, prefix.format(10, "<i>"))


# -- 4. files outside the project ------------------------------------------------------------


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder beside the articles folder, holding an image and a secret."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "secret.txt").write_text("password")
    (folder / "pic.svg").write_text((ARTICLES / "weight-colours.svg").read_text())
    return folder


@pytest.mark.parametrize(
    ("body", "line", "written"),
    [
        (
            "```{figure} ../../../../../../../../etc/passwd\nCap.\n```",
            5,
            "../../../../../../../../etc/passwd",
        ),
        ("```{figure} /etc/passwd\nCap.\n```", 5, "/etc/passwd"),
        ("![a picture](../elsewhere/pic.svg)", 5, "../elsewhere/pic.svg"),
        ("```{figure} link.svg\nCap.\n```", 5, "link.svg"),
        ("```{examples} mixed4:52\n:dataset: ../elsewhere\n```", 6, "../elsewhere"),
    ],
)
def test_files_outside_the_articles_folder_are_refused(previous, outside, body, line, written):
    src, out, _ = previous
    (src / "link.svg").symlink_to(outside / "pic.svg")
    write(src / "a.md", "---\ntitle: A\n---\n\n" + body + "\n")
    result = build(src, out)
    assert_refused(previous, result, f"a.md:{line}: error: '{written}' resolves to ")
    assert "outside" in result.stderr and "--allow-root" in result.stderr


def test_a_bibliography_outside_and_a_symlinked_dataset_image_are_refused(previous, outside):
    src, out, _ = previous
    (outside / "refs.bib").write_text((src / "refs.bib").read_text())
    (src / "pictures").mkdir()
    (src / "pictures" / "a.png").symlink_to(outside / "secret.txt")
    write(src / "a.md", "---\ntitle: A\nbibliography: ../elsewhere/refs.bib\n---\n")
    write(src / "b.md", "---\ntitle: B\n---\n\n```{examples} mixed4:52\n:dataset: pictures\n```\n")
    result = build(src, out)
    assert_refused(previous, result, "a.md:3: error: front matter 'bibliography': '../elsewhere/refs.bib'")
    assert_refused(previous, result, "b.md:6: error: 'a.png' resolves to ")


def test_a_stimulus_file_outside_is_refused(previous, outside):
    src, out, _ = previous
    (outside / "stim.py").write_text("def f(value, size):\n    return None\n")
    write(
        src / "a.md",
        "---\ntitle: A\n---\n\n```{tuning} mixed4:52\n:stimulus: ../elsewhere/stim.py:f(x)\n```\n",
    )
    assert_refused(previous, build(src, out), "a.md:6: error: '../elsewhere/stim.py' resolves to ")


def test_a_symlink_loop_is_an_error_not_a_traceback(previous):
    src, out, _ = previous
    (src / "a.svg").symlink_to(src / "b.svg")
    (src / "b.svg").symlink_to(src / "a.svg")
    write(src / "a.md", "---\ntitle: A\n---\n\n![loop](a.svg)\n")
    assert_refused(previous, build(src, out), "a.md:5: error: cannot follow 'a.svg': ")


def test_allow_root_lets_the_owner_grant_another_folder(site, outside, tmp_path):
    write(site / "a.md", "---\ntitle: A\n---\n\n```{figure} ../elsewhere/pic.svg\nCap.\n```\n")
    assert build(site, tmp_path / "out").exit_code == 1
    result = build(site, tmp_path / "out", "--allow-root", str(outside))
    assert result.exit_code == 0, result.output
    assert [p.suffix for p in (tmp_path / "out" / "a" / "assets").iterdir()] == [".svg"]


def test_atlas_and_verify_take_allow_root_as_build_does(site, tmp_path):
    """A dataset folder outside the articles (an atlas: outside the working directory) is
    refused with the --allow-root that lets it in, and every command that reads it takes one:
    atlas and verify had none, so the suggestion named an option they refused."""
    import numpy as np
    from PIL import Image

    from distillgen.zoo.shapes_data import shapes_batch

    photos = tmp_path / "photos"
    photos.mkdir()
    for index, picture in enumerate(shapes_batch(6, seed=3, size=64)[0]):
        pixels = (picture.transpose(1, 2, 0) * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(photos / f"{index}.png")
    suggestion = f"--allow-root {photos.resolve()}"
    write(site / "a.md", "---\ntitle: A\n---\n\n```{examples} mixed4:52\n:dataset: ../photos\n:top: 2\n```\n")
    assert build(site, tmp_path / "out", "--allow-root", str(photos)).exit_code == 0

    cache = ("--cache-dir", str(site.parent / "cache"), "--device", "cpu")
    refused = run_cli("verify", str(site), *cache)
    assert refused.exit_code == 1 and suggestion in refused.stderr, refused.output
    verified = run_cli("verify", str(site), *cache, "--allow-root", str(photos))
    assert verified.exit_code == 0, verified.output
    assert "examples" in verified.stdout

    atlas = ("atlas", "shapes", "--layers", "conv2", "--featurevis", "steps=2", "--featurevis", "size=32")
    atlas += ("--diversity", "0", "--examples", "2", "--dataset", str(photos), "-o", str(tmp_path / "atlas"))
    atlas += ("--cache-dir", str(tmp_path / "atlas-cache"))
    refused = run_cli(*atlas)
    assert refused.exit_code == 1 and suggestion in refused.stderr, refused.output
    built = run_cli(*atlas, "--allow-root", str(photos))
    assert built.exit_code == 0, built.output
    page = (tmp_path / "atlas" / "units" / "shapes" / "conv2" / "0.html").read_text()
    assert "The 2 of 6 probe images that excite it most" in page


@pytest.mark.parametrize("name", ["fake.png", "fake.svg"])
def test_a_file_that_is_not_an_image_is_refused_where_an_image_is_expected(previous, name):
    src, out, _ = previous
    (src / name).write_text("<html><script>alert(1)</script></html>")
    write(src / "a.md", f"---\ntitle: A\n---\n\n![picture]({name})\n")
    assert_refused(
        previous, build(src, out), f"a.md:5: error: '{name}' is not an image (PNG, JPEG, GIF, WebP or SVG"
    )


def test_real_images_of_every_format_are_accepted(site, tmp_path):
    from PIL import Image

    for suffix in ("png", "jpeg", "gif", "webp"):
        Image.new("RGB", (4, 4), "red").save(site / f"pic.{suffix}")
    body = " ".join(f"![{s}](pic.{s})" for s in ("png", "jpeg", "gif", "webp")) + " ![svg](scale.svg)"
    write(site / "a.md", "---\ntitle: A\n---\n\n" + body + "\n")
    result = build(site, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out" / "a" / "assets").iterdir())) == 5


# -- 5. author code ---------------------------------------------------------------------------


MODEL_THAT_TELLS = """
from pathlib import Path
Path(__file__).with_name("model-code-ran").touch()

def build():
    raise RuntimeError("never reached under --frozen")
"""


def test_frozen_never_runs_model_code(previous):
    src, out, _ = previous
    write(src / "model.py", MODEL_THAT_TELLS)
    write(src / "a.md", "---\ntitle: A\nmodel: model.py:build\n---\n\n```{featurevis} conv:0\n```\n")
    result = build(src, out, "--frozen")
    assert_refused(previous, result, "a.md:6: error: the description of model '")
    assert "--frozen does not run model code" in result.stderr
    assert not (src / "model-code-ran").exists()


def test_readme_says_that_building_runs_model_code():
    readme = (ARTICLES.parent / "README.md").read_text()
    assert "runs its model code" in readme and "--no-raw-html" in readme and "--allow-root" in readme


# -- 6. smaller -------------------------------------------------------------------------------


def test_a_byte_order_mark_does_not_hide_the_front_matter(site, tmp_path):
    (site / "a.md").write_bytes("\ufeff---\ntitle: With BOM\n---\n\nText.\n".encode())
    result = build(site, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "<title>With BOM" in (tmp_path / "out" / "a" / "index.html").read_text()


def test_a_front_matter_key_given_twice_is_an_error(previous):
    src, out, _ = previous
    write(src / "a.md", "---\ntitle: A\nauthors:\n  - name: X\n    name: Y\ntitle: B\n---\n")
    result = build(src, out)
    assert_refused(
        previous, result, "a.md:6: error: front matter key 'title' is given twice (first on line 2)"
    )
    assert_refused(
        previous, result, "a.md:5: error: front matter key 'name' is given twice (first on line 4)"
    )


def test_a_pickled_model_is_refused_in_one_line_without_advice_to_unpickle(tmp_path):
    import torch

    from distillgen.engine.models import ModelError, _load_state_dict

    torch.save(torch.nn.Linear(2, 2), tmp_path / "whole.pt")
    with pytest.raises(ModelError) as error:
        _load_state_dict(tmp_path / "whole.pt")
    message = str(error.value)
    assert "\n" not in message and "weights_only=False" not in message
    assert "torch.nn.modules.linear.Linear" in message
    assert "torch.save(model.state_dict(), 'whole.pt')" in message


def test_refusing_torchscript_prints_no_deprecation_warning(tmp_path):
    import torch

    from distillgen.engine.models import ModelError, _load_torchscript
    from distillgen.units import parse_spec

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2)).save(str(tmp_path / "net.pt"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ModelError, match="is TorchScript"):
            _load_torchscript(parse_spec("net.pt", tmp_path))
    assert [str(w.message) for w in caught] == []


def test_a_tex_error_quotes_a_short_part_of_the_formula():
    with pytest.raises(ValueError) as error:
        to_mathml(r"\left( " + "a + " * 20000, False)
    message = str(error.value)
    assert len(message) < 200 and "…$" in message and r"a \left has no matching \right" in message


# -- 7. large articles --------------------------------------------------------------------------


def test_repeated_headings_are_numbered_in_linear_time():
    md = make_parser()

    def seconds(count: int) -> float:
        """The best of 5 parses, without the garbage collector, whose full passes over a
        growing heap (and a busy machine's pauses) made one run of 8,000 take 21 times 1,000's."""
        text = "## Results\n\nText.\n\n" * count
        best = float("inf")
        gc.collect()
        gc.disable()
        try:
            for _ in range(5):
                start = time.perf_counter()
                tokens = md.parse(text)
                best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
        ids = [t.attrs["id"] for t in tokens if t.type == "heading_open"]
        assert ids[:3] == ["results", "results-1", "results-2"] and len(set(ids)) == count
        return best

    # Linear: 8 times the headings take about 8 to 11 times as long; the anchors plugin's rule,
    # which tried every suffix of a repeated title in turn, took about 50 times as long.
    assert seconds(8000) / seconds(1000) < 20
