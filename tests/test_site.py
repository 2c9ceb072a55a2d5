"""End to end: the example site, determinism, the scaffold and the CLI surface."""

import re
from pathlib import Path

import pytest

from tests.conftest import ARTICLES, SHIPPED_CACHE, run_cli


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_example_site_has_every_article_and_its_assets(example_build):
    slugs = sorted(p.stem for p in ARTICLES.glob("*.md"))
    index = (example_build / "index.html").read_text()
    for slug in slugs:
        assert (example_build / slug / "index.html").is_file()
        assert f'href="{slug}/index.html"' in index
    for asset in ("distill.css", "distill.js", "pygments.css"):
        assert (example_build / "static" / asset).is_file()


def summary(log: str) -> tuple[int, int]:
    """(figures, computed) from a build's summary line."""
    found = re.search(r"(\d[\d,]*) figure\(s\) \((\d[\d,]*) computed\)", log)
    assert found, log
    return int(found[1].replace(",", "")), int(found[2].replace(",", ""))


def shipped_keys() -> set[str]:
    return {folder.name for folder in (SHIPPED_CACHE / "objects").glob("*/*") if folder.is_dir()}


def test_the_shipped_cache_holds_the_example_sites_figures_and_nothing_else(example_build):
    """`make site` shows the example site in minutes because its figures ship in git; after a
    change to an engine or a key they must be computed again (`make cache`) and committed."""
    figures, computed = summary((example_build.parent / "build.log").read_text())
    stale = "the shipped cache is out of date: run `make cache` and commit articles/.distillgen/cache"
    assert computed == 0, f"{computed} figure(s) were not in it; {stale}"
    assert len(shipped_keys()) == figures, f"it holds entries no figure uses; {stale}"


@pytest.mark.full
def test_the_example_site_computed_from_nothing_is_the_shipped_one(tmp_path):
    """What `make cache` does, in a cache of its own: every figure computed (the predictions
    checked with --strict) under the keys the shipped cache has."""
    cache = tmp_path / "cache"
    result = run_cli(
        "build", str(ARTICLES), "-o", str(tmp_path / "out"), "--cache-dir", str(cache), "--strict"
    )
    assert result.exit_code == 0, result.output
    figures, computed = summary(result.stderr)
    assert computed == figures
    assert {folder.name for folder in (cache / "objects").glob("*/*")} == shipped_keys()


def test_example_article_uses_every_feature(example_build):
    html = (example_build / "reading-circuits" / "index.html").read_text()
    assert '<nav class="d-contents" id="contents"' in html  # table of contents
    assert '<div class="d-byline">' in html and "November 24, 2026" in html
    assert "<math" in html and 'display="block"' in html  # math typeset at build time
    assert '<pre class="highlight" data-language="markdown">' in html  # Pygments
    assert '<div class="table-wrap"><table>' in html
    assert '<aside class="l-gutter">' in html
    assert '<figure class="l-body-outset" id="fig-colours">' in html
    assert 'data-hover-ref="fn-1"' in html and '<li id="fn-1">' in html
    assert 'data-hover-ref="ref-olah2020zoom"' in html and '<ol class="references">' in html
    assert "@article{" in html  # cite-this-article BibTeX
    assert not re.search(r"https?://(cdn|unpkg|fonts\.googleapis)", html)  # nothing from a CDN
    assert '<script src="../static/distill.js"' in html


def test_building_twice_gives_identical_files(tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    assert run_cli("build", str(ARTICLES), "-o", str(first), "-q").exit_code == 0
    assert run_cli("build", str(ARTICLES), "-o", str(second), "-q").exit_code == 0
    assert files(first) == files(second)
    assert run_cli("build", str(ARTICLES), "-o", str(first), "-q").exit_code == 0  # replaces itself
    assert files(first) == files(second)


def test_new_article_scaffold_builds_cleanly(tmp_path):
    result = run_cli("new", "Curve Detectors, Revisited", "-d", str(tmp_path / "src"))
    assert result.exit_code == 0, result.output
    md = tmp_path / "src" / "curve-detectors-revisited.md"
    assert md.is_file()
    text = md.read_text()
    features = ("{cite}", "{numref}", "```{figure}", "```{note}", "[^", "$$", "| Layer", "```python", "{eq}")
    for feature in (*features, "```{featurevis} mixed4:", "```{circuit} mixed4:", "```{tip}"):
        assert feature in text
    out = tmp_path / "out"
    built = run_cli(
        "build", str(tmp_path / "src"), "-o", str(out), "--cache-dir", str(tmp_path / "cache"), "--strict"
    )
    assert built.exit_code == 0, built.output
    # A new author sees what the tool is for: figures computed from the shipped model.
    page = (out / "curve-detectors-revisited" / "index.html").read_text("utf-8")
    assert page.count('class="unit-cell"') == 4 and '<div class="circuit">' in page
    assert "Equation" not in page and '<span class="equation-number">(1)</span>' in page
    again = run_cli("new", "Curve Detectors, Revisited", "-d", str(tmp_path / "src"))
    assert again.exit_code == 1
    assert "already exists" in again.stderr


@pytest.mark.parametrize("command", [[], ["build"], ["new"], ["serve"], ["directives"], ["models"], ["zoo"]])
def test_help_everywhere(command):
    result = run_cli(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_directives_lists_every_kind_and_its_options():
    listing = run_cli("directives")
    assert listing.exit_code == 0
    for name in ("featurevis", "circuit", "tuning", "examples", "ablation", "universality", "cite", "unit"):
        assert f"{{{name}}}" in listing.output
    ablation = run_cli("directives", "{ablation}")
    assert ablation.exit_code == 0
    assert ":predict:" in ablation.output and "one of examples, tuning, featurevis" in ablation.output
    unknown = run_cli("directives", "tunin")
    assert unknown.exit_code == 1 and "(did you mean 'tuning'?)" in unknown.stderr


def test_quiet_and_verbose(tmp_path):
    quiet = run_cli("build", str(ARTICLES), "-o", str(tmp_path / "q"), "-q")
    assert quiet.output == ""
    verbose = run_cli("build", str(ARTICLES), "-o", str(tmp_path / "v"), "-v")
    assert "checked" in verbose.stderr and "rendered reading-circuits/index.html" in verbose.stderr
    assert re.search(r"built \d+ article\(s\) into .* in [\d.]+s", verbose.stderr)


def test_no_figure_of_the_example_site_writes_machine_text(example_build):
    """Issue 27: what a figure says is prose. Its rendered text has no '>=' or '<=', no '..'
    range and no '(s)' plural: a prediction reads 'at least 50% lower on 120°–150°'."""
    import html
    import re

    machine = re.compile(r">=|<=|\d\.\.[-\d]|\(s\)")
    found = []
    for page in sorted(example_build.rglob("*.html")):
        for figure in re.findall(r"<figure.*?</figure>", page.read_text(encoding="utf-8"), re.S):
            text = html.unescape(re.sub(r"<[^>]+>", " ", figure))
            found += [f"{page.relative_to(example_build)}: {m.group()!r}" for m in machine.finditer(text)]
    assert not found, found[:10]
    page = (example_build / "zoom-in-highlights" / "index.html").read_text(encoding="utf-8")
    assert "at least 50% lower on 120°–150°</strong>" in page
