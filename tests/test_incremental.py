"""Incremental rendering: a rebuild renders only the pages whose inputs changed, and leaves
every unchanged file of the site as it was (same file, same modification time)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from tests.conftest import computed_once, run_cli, write

FIRST = """
---
title: First
featurevis: {steps: 4, size: 32}
---
The unit {unit}`mixed3:2` and its neighbours.

```{featurevis} mixed3:0-1
:label: fig-units
Two units.
```
"""

SECOND = """
---
title: Second
featurevis: {steps: 4, size: 32}
---
Another article, about {unit}`conv2:1`.
"""


def sources(root: Path) -> tuple[Path, Path, Path]:
    src = root / "src"
    write(src / "first.md", FIRST)
    write(src / "second.md", SECOND)
    return src, root / "out", root / "cache"


def build(src: Path, out: Path, cache: Path):
    result = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(cache))
    assert result.exit_code == 0, result.output
    rendered, total = map(int, re.search(r"(\d+) of (\d+) page\(s\) rendered", result.stderr).groups())
    return rendered, total


# each test renders every page first and computes nothing
computed, site = computed_once(sources, build)


def files(out: Path) -> dict[str, tuple[int, int]]:
    """Each file of the site: (inode, modification time in ns)."""
    return {
        str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in out.rglob("*")
        if p.is_file()
    }


def contents(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_a_rebuild_with_nothing_changed_renders_and_rewrites_nothing(site):
    src, out, cache = site
    rendered, total = build(src, out, cache)
    assert rendered == total > 2  # two articles and the unit pages of the four units they show
    before = files(out)
    assert build(src, out, cache) == (0, total)
    assert files(out) == before


def test_editing_one_article_renders_only_its_page(site):
    src, out, cache = site
    _, total = build(src, out, cache)
    before = files(out)
    write(src / "second.md", SECOND + "\nOne more line.\n")
    assert build(src, out, cache) == (1, total)
    after = files(out)
    changed = {path for path in after if after[path] != before.get(path)}
    # The search index covers every article's text, so it changes with any of them.
    assert {path for path in changed if not path.startswith("pagefind/")} == {"second/index.html"}
    assert "One more line." in (out / "second" / "index.html").read_text()


def test_pages_taken_from_the_cache_equal_a_clean_build(site, tmp_path):
    src, out, cache = site
    build(src, out, cache)
    write(src / "first.md", FIRST.replace("Two units.", "Two units of mixed3."))
    build(src, out, cache)  # one page rendered again, the others taken from the cache
    clean_cache = tmp_path / "clean-cache"
    shutil.copytree(cache, clean_cache, ignore=shutil.ignore_patterns("pages"))  # figures, no pages
    rendered, total = build(src, tmp_path / "clean", clean_cache)
    assert rendered == total
    assert contents(out) == contents(tmp_path / "clean")


def test_a_cached_page_never_publishes_a_file_from_outside_the_project(site, tmp_path):
    # The cache can be committed, so it may come from someone else: a page entry naming a
    # file outside the cache and the articles is rendered again instead of copying that file.
    src, out, cache = site
    _, total = build(src, out, cache)
    secret = write(tmp_path / "elsewhere" / "secret.txt", "not for the site")
    index = cache / "pages" / "index.json"
    data = json.loads(index.read_text())
    for entry in data["pages"].values():
        entry["files"]["stolen.txt"] = str(secret)
    index.write_text(json.dumps(data))
    assert build(src, tmp_path / "again", cache) == (total, total)
    assert not (tmp_path / "again" / "stolen.txt").exists()


def test_a_cached_page_never_writes_outside_the_output(site, tmp_path):
    # A page entry from someone else's cache naming a site path that climbs out of the output
    # ("../") is rendered again: the file it names is not written there.
    src, out, cache = site
    build(src, out, cache)
    index = cache / "pages" / "index.json"
    data = json.loads(index.read_text())
    for entry in data["pages"].values():
        if entry["files"]:
            source = next(iter(entry["files"].values()))  # a file the page may copy
            entry["files"]["../escaped.png"] = source
    index.write_text(json.dumps(data))
    again = tmp_path / "sub" / "again"
    assert build(src, again, cache)[0] > 0
    assert not (again.parent / "escaped.png").exists()


def test_a_build_refusing_raw_html_renders_every_page(site):
    src, out, cache = site
    _, total = build(src, out, cache)
    result = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(cache), "--no-raw-html")
    assert result.exit_code == 0, result.output
    assert f"{total} of {total} page(s) rendered" in result.stderr


def test_pages_are_known_from_one_index_and_a_damaged_one_costs_a_render(site, tmp_path):
    # An atlas has thousands of pages: a rebuild reads one index of them, not a file each.
    # Damaged or gone, it only makes the next build render every page again, into the same site.
    src, out, cache = site
    _, total = build(src, out, cache)
    assert build(src, out, cache) == (0, total)
    assert sorted(p.name for p in (cache / "pages").glob("*.json")) == ["index.json"]
    before = contents(out)
    (cache / "pages" / "index.json").write_text('{"version": 1, "pages": [1, 2')
    assert build(src, out, cache) == (total, total)
    assert contents(out) == before
    assert build(src, out, cache) == (0, total)  # and the index is whole again


def test_the_page_index_keeps_only_pages_a_build_uses(site):
    # Every edit and every new version of distillgen keys pages anew: the index drops the
    # pages no build uses any more, so that reading it does not grow with a site's history.
    src, out, cache = site
    index = cache / "pages" / "index.json"
    build(src, out, cache)
    before = set(json.loads(index.read_text())["pages"])
    write(src / "first.md", FIRST.replace("Two units.", "Two units, edited."))
    assert build(src, out, cache)[0] == 1
    after = set(json.loads(index.read_text())["pages"])
    assert len(after) == len(before) and len(after - before) == 1  # the article's page, replaced


def test_a_page_left_out_of_the_index_leaves_the_cache_an_hour_later(site):
    # A build that took a page a moment ago may still copy it: its HTML stays an hour, then goes
    # at the next build that changes the index; files that are no page of ours are left alone.
    src, out, cache = site
    pages = cache / "pages"
    index = pages / "index.json"
    build(src, out, cache)
    before = set(json.loads(index.read_text())["pages"])
    write(src / "first.md", FIRST.replace("Two units.", "Two units, edited."))
    build(src, out, cache)
    (dropped,) = before - set(json.loads(index.read_text())["pages"])
    assert (pages / f"{dropped}.html").is_file()
    hours_ago = time.time() - 3 * 3600
    leftover, notes = pages / f"{'e' * 64}.html", pages / "notes.html"  # a killed build's; the author's
    leftover.write_text("<p>old</p>")
    notes.write_text("<p>kept</p>")
    for path in pages.glob("*.html"):  # every page old, those the index holds too
        os.utime(path, (hours_ago, hours_ago))
    held = set(json.loads(index.read_text())["pages"])
    write(src / "first.md", FIRST.replace("Two units.", "Two units, edited again."))
    build(src, out, cache)
    assert not (pages / f"{dropped}.html").exists() and not leftover.exists() and notes.is_file()
    indexed = set(json.loads(index.read_text())["pages"])
    (just_dropped,) = held - indexed  # old, but only now out of the index: it stays its hour
    assert (pages / f"{just_dropped}.html").is_file()
    assert all((pages / f"{key}.html").is_file() for key in indexed)
    assert len(list(pages.glob("*.html"))) == len(indexed) + 2  # that page, and notes
    write(src / "first.md", FIRST)
    build(src, out, cache)
    assert (pages / f"{just_dropped}.html").is_file()  # an hour from when it left the index
