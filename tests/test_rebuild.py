"""Rebuilds that do not grow with the site (issue 32): a build trusts what the file system
says is unchanged (the cache's index, checked articles kept between builds, the output's
manifest) and checks in full only what changed, so damage behind its back is still found."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest

from distillgen import cache as cache_module
from distillgen import site as site_module
from distillgen.cli import run_build
from distillgen.site import manifest_path
from distillgen.warm import Warm
from tests.conftest import computed_once, run_cli, serve_build, write
from tests.test_forked import counted_forks
from tests.test_incremental import SECOND, contents

FIRST = """
---
title: First
featurevis: {steps: 4, size: 32}
bibliography: refs.bib
---
The unit {unit}`mixed3:2` and its neighbours, as {cite}`olah2020zoom` drew them.

```{featurevis} mixed3:0-1
:label: fig-units
Two units.
```

```{circuit} mixed4:3
:inputs: mixed3
:top: 2
```

A link to [](missing-notes).
"""

BIB = """
@article{olah2020zoom,
  title = {Zoom In: An Introduction to Circuits},
  author = {Olah, Chris and Cammarata, Nick},
  journal = {Distill},
  year = {2020},
}
"""

_opened: list[str] | None = None  # paths opened while `opened_files` records


def _audit(event: str, args: tuple) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _opened.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed: this one records only when asked


@contextmanager
def opened_files():
    """Every file opened inside (by Python: reads, writes, numpy's and PIL's loads)."""
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


def sources(root: Path) -> tuple[Path, Path, Path]:
    """The two articles and their bibliography in root/src; (src, out, cache) under root."""
    src = root / "src"
    write(src / "first.md", FIRST)
    write(src / "second.md", SECOND)
    write(src / "refs.bib", BIB)
    return src, root / "out", root / "cache"


def build(src: Path, out: Path, cache: Path, *extra: str) -> dict[str, int]:
    result = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(cache), "-v", *extra)
    assert result.exit_code == 0, result.output
    summary = re.search(r"(\d+) figure\(s\) \((\d+) computed\), (\d+) of (\d+) page\(s\)", result.stderr)
    figures, computed, rendered, pages = map(int, summary.groups())
    return {
        "figures": figures,
        "computed": computed,
        "rendered": rendered,
        "pages": pages,
        "checked": len(re.findall(r"^checked \S+$", result.stderr, re.MULTILINE)),
        "warnings": len(re.findall(r": warning: ", result.stderr)),
    }


computed, site = computed_once(sources, build)  # a test's first build computes nothing


def settle(src: Path, out: Path, cache: Path) -> dict[str, int]:
    """A cold build, then one more: files written in the same tick of the file system's clock
    as the index are checked once more ("racily clean", as git has it)."""
    first = build(src, out, cache)
    build(src, out, cache)
    return first


def payload_files(cache: Path) -> set[str]:
    return {str(p) for p in (cache / "objects").rglob("*") if p.is_file() and p.name != cache_module.RECORD}


def test_a_no_change_rebuild_opens_no_payload_file_and_renders_nothing(tmp_path, monkeypatch):
    src, out, cache = sources(tmp_path)
    cold = settle(src, out, cache)
    assert cold["computed"] > 0 and cold["rendered"] == cold["pages"]
    payloads = payload_files(cache)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    stated: list[str] = []  # the files the write knows by a stat of their own
    stat_identity = site_module._stat_identity

    def counted(source):
        stated.append(str(source))
        return stat_identity(source)

    monkeypatch.setattr(site_module, "_stat_identity", counted)
    with opened_files() as opened:
        again = build(src, out, cache)
    assert stated and not any(path.startswith(str(cache / "search")) for path in stated)  # its folder's
    assert (again["computed"], again["rendered"], again["checked"]) == (0, 0, 0)
    assert again["warnings"] == cold["warnings"] > 0  # the missing file's link, replayed
    assert not payloads & {str(Path(p)) for p in opened}
    assert not any(p.endswith(".bib") for p in opened)  # the bibliography is not parsed again
    pages = str(cache / "pages")
    assert not any(p.startswith(pages) and p.endswith(".html") for p in opened)  # nor a page read
    assert (
        opened.count(str(manifest_path(out))) == 1
    )  # the output's manifest (8 MB beside an atlas) read once
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("damage", ["truncate", "replace"])
def test_a_payload_damaged_behind_the_caches_back_is_found_and_recomputed(site, damage):
    src, out, cache = site
    settle(src, out, cache)
    image = next(p for p in (cache / "objects").rglob("image0.png"))
    good = image.read_bytes()
    if damage == "truncate":
        with image.open("r+b") as file:
            file.truncate(len(good) // 2)
    else:  # same size, other bytes, a new file in its place
        image.unlink()
        image.write_bytes(bytes(len(good)))
    result = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(cache))
    assert result.exit_code == 0, result.output
    assert "damaged cache entry" in result.stderr and "1 computed" in result.stderr
    assert list((cache / "quarantine").iterdir())
    assert image.read_bytes() == good  # computed again, the same bytes


def test_touching_a_payload_costs_one_hash_not_a_recompute(site, monkeypatch):
    src, out, cache = site
    settle(src, out, cache)
    image = next(p for p in (cache / "objects").rglob("image0.png"))
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    hashed = []
    real = cache_module._sha256
    monkeypatch.setattr(cache_module, "_sha256", lambda path: hashed.append(path) or real(path))
    again = build(src, out, cache)
    assert again["computed"] == 0
    assert hashed == [image]
    hashed.clear()
    assert build(src, out, cache)["computed"] == 0 and hashed == []  # indexed again


def test_editing_one_article_checks_only_it_and_equals_a_clean_build(site, tmp_path):
    src, out, cache = site
    settle(src, out, cache)
    write(src / "second.md", SECOND + "\nOne more line, about {unit}`mixed3:5`.\n")
    again = build(src, out, cache)
    assert again["checked"] == 1
    # the same figures (their records hold when they were computed), nothing else kept
    shutil.copytree(
        cache, tmp_path / "clean-cache", ignore=shutil.ignore_patterns("pages", "checked", "sites")
    )
    (tmp_path / "clean-cache" / "index.json").unlink()
    clean = build(src, tmp_path / "clean", tmp_path / "clean-cache")
    assert clean["checked"] == 2 and clean["rendered"] == clean["pages"]
    assert contents(out) == contents(tmp_path / "clean")


def test_a_file_an_article_reads_changing_checks_it_again(site):
    src, out, cache = site
    settle(src, out, cache)
    write(src / "refs.bib", BIB.replace("Zoom In", "Zoom Out"))
    assert build(src, out, cache)["checked"] == 1  # the article citing it
    write(src / "missing-notes", "now here")
    again = build(src, out, cache)
    assert again["checked"] == 1 and again["warnings"] == 0  # its link resolves now
    assert "Zoom Out" in (out / "first" / "index.html").read_text()


def test_a_kept_article_from_elsewhere_is_never_unpickled(site, monkeypatch):
    # The cache folder can come from someone else: a kept article it brings, not signed with
    # this user's key, is checked again instead of being loaded (unpickling runs code).
    src, out, cache = site
    settle(src, out, cache)
    kept = cache / "checked" / "second.pickle"
    forged = kept.read_bytes()[32:]
    kept.write_bytes(bytes(32) + forged)  # the same payload, another signature
    unpickled = []
    real = pickle.loads
    monkeypatch.setattr(pickle, "loads", lambda data, **k: unpickled.append(bytes(data)) or real(data, **k))
    result = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(cache), "-v")
    assert result.exit_code == 0, result.output
    assert re.search(r"^checked \S+second\.md$", result.stderr, re.MULTILINE)
    assert "first.md (unchanged: taken from the cache)" in result.stderr
    assert len(unpickled) == 1 and not any(forged.endswith(data) for data in unpickled)


def test_an_output_changed_behind_the_builds_back_is_written_again(site):
    src, out, cache = site
    settle(src, out, cache)
    page = out / "second" / "index.html"
    text = page.read_text()
    page.write_text("edited by hand")
    (out / "stray.txt").write_text("left here")
    build(src, out, cache)
    assert page.read_text() == text
    assert not (out / "stray.txt").exists()


def test_the_same_folders_named_relatively_or_absolutely_are_the_same_site(site, monkeypatch):
    """Reproduced bug: the search index's files were known by their path as the cache folder
    was spelled, so `build src --cache-dir cache` after `build /abs/src --cache-dir /abs/cache`
    saw thousands of changed files (an atlas's index) and wrote the whole site again."""
    src, out, cache = site
    settle(src, out, cache)
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.rglob("*") if p.is_file()}
    assert any(p.parts[-2] == "pagefind" for p in before)  # the site has its search index
    monkeypatch.chdir(src.parent)
    result = run_cli("build", src.name, "-o", out.name, "--cache-dir", cache.name, "-v")
    assert result.exit_code == 0, result.output
    assert "holds this site already: nothing written" in result.stderr, result.stderr
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.rglob("*") if p.is_file()} == before


def serve_rebuild(src: Path, out: Path, cache: Path, warm: Warm | None = None) -> None:
    """What `serve` does after an edit: a quick build in place, trusting what the process's
    build before it checked (`warm`) and keeping the last search index, then a full one."""
    warm = warm or Warm()
    for quick in (True, False):
        serve_build(src, out, cache, warm, quick)


def test_serve_replaces_only_the_changed_files_in_place_and_equals_a_clean_build(site, tmp_path):
    # `serve` after an edit: the changed pages are renamed over their old versions, every other
    # file stays the very file it was (its inode), and the result is the site a full build makes
    src, out, cache = site
    settle(src, out, cache)
    before = {path.relative_to(out): path.stat().st_ino for path in out.rglob("*") if path.is_file()}
    write(src / "second.md", SECOND + "\nOne more line, said in place.\n")
    serve_rebuild(src, out, cache)
    after = {path.relative_to(out): path.stat().st_ino for path in out.rglob("*") if path.is_file()}
    replaced = {rel for rel in after if before.get(rel) != after[rel]}
    assert Path("second/index.html") in replaced and len(replaced) < len(after) / 4
    assert not list(out.rglob("*.partial"))
    build(src, tmp_path / "full", cache)
    assert contents(out) == contents(tmp_path / "full")
    # its manifest describes what it left: the next build finds the site already written
    again = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(cache), "-v")
    assert "holds this site already: nothing written" in again.stderr, again.stderr
    # an article taken away goes with its folder
    (src / "second.md").unlink()
    serve_rebuild(src, out, cache)
    assert not (out / "second").exists() and (out / "first" / "index.html").is_file()


def test_serve_after_an_edit_trusts_what_it_checked_and_its_full_build_checks_again(
    site, tmp_path, monkeypatch
):
    # The build right after an edit takes the cache entries and the output files its process
    # checked in the build before, unchecked: nothing is stat'ed for them. What changed behind
    # its back meanwhile is found by the full build serve runs once the author pauses.
    src, out, cache = site
    settle(src, out, cache)
    warm = Warm()
    serve_rebuild(src, out, cache, warm)  # serve's first builds
    looked_up = []
    real = cache_module.Index.trusted
    monkeypatch.setattr(cache_module.Index, "trusted", lambda self, *a: looked_up.append(a) or real(self, *a))
    image = next(p for p in (cache / "objects").rglob("image0.png"))
    good = image.read_bytes()
    with image.open("r+b") as file:  # damaged behind serve's back
        file.truncate(len(good) // 2)
    (out / "static" / "distill.css").unlink()
    write(src / "second.md", SECOND + "\nOne more line.\n")
    with opened_files() as opened:
        quick = serve_build(src, out, cache, warm, quick=True)
    assert quick is not None and quick.computed == 0 and quick.rendered == 1
    assert looked_up == []  # not one entry's files stat'ed
    assert str(cache / cache_module.INDEX) not in opened  # nor the index read (an atlas's: 0.1 s)
    assert not (out / "static" / "distill.css").exists()  # the output as this process left it
    assert not manifest_path(out).exists()  # left to the full build, as the new page's index is
    full = serve_build(src, out, cache, warm, quick=False)
    assert full is not None and full.computed == 1 and looked_up
    assert list((cache / "quarantine").iterdir()) and image.read_bytes() == good
    build(src, tmp_path / "clean", cache)
    assert contents(out) == contents(tmp_path / "clean")
    # what the full build indexed and wrote down: another process finds everything done
    again = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(cache), "-v")
    assert "holds this site already: nothing written" in again.stderr, again.stderr
    assert re.search(r"\(0 computed\), 0 of \d+ page\(s\) rendered", again.stderr), again.stderr


def test_a_quick_build_writing_a_whole_site_looks_at_the_files_it_links(site, tmp_path, monkeypatch):
    # A quick build takes the output as serve last wrote it; but a whole new site links the
    # files the output holds, so those are looked at first: one replaced behind serve's back
    # is written again, not carried into the new site (and its manifest) as good.
    import distillgen.site as site_module

    src, out, cache = site
    settle(src, out, cache)
    warm = Warm()
    serve_rebuild(src, out, cache, warm)
    image = next(out.rglob("*.png"))
    image.write_bytes(b"not the figure")
    monkeypatch.setattr(site_module, "IN_PLACE_MOST", 0)  # every change: a whole new site
    write(src / "second.md", SECOND + "\nOne more line.\n")
    serve_build(src, out, cache, warm, quick=True)
    build(src, tmp_path / "clean", cache)
    assert image.read_bytes() == (tmp_path / "clean" / image.relative_to(out)).read_bytes()


def test_a_quick_build_failing_on_what_it_trusted_leaves_the_next_to_check(site):
    # The search index a quick build takes from the build before it, removed behind serve's
    # back: that build fails, and the next one trusts nothing it did and succeeds.
    src, out, cache = site
    settle(src, out, cache)
    warm = Warm()
    serve_rebuild(src, out, cache, warm)
    shutil.rmtree(cache / "search")
    write(src / "second.md", SECOND + "\nOne more line.\n")
    options = {"cache_dir": cache, "strict": False, "quiet": True, "verbose": 0, "in_place": True}
    assert run_build(src, out, quick=True, warm=warm, **options) is None
    assert warm.search is None and not warm.artifacts
    write(src / "second.md", SECOND + "\nOne line more.\n")
    assert serve_build(src, out, cache, warm, quick=True).rendered == 1
    assert "One line more." in (out / "second" / "index.html").read_text()


def test_a_template_edited_under_serve_shows_at_its_next_build(site, tmp_path, monkeypatch):
    # serve watches the templates and builds again when one changes: its pages are rendered
    # again, not taken from the page cache under a key that still has the old template.
    import distillgen.site as site_module
    from distillgen.render import page as page_module
    from distillgen.render import reuse

    src, out, cache = site
    templates = tmp_path / "templates"
    shutil.copytree(page_module.templates_dir(), templates)
    for module in (page_module, reuse, site_module):
        monkeypatch.setattr(module, "templates_dir", lambda: templates)
    warm = Warm()
    serve_build(src, out, cache, warm, quick=False)
    base = templates / "base.html"
    base.write_text(base.read_text().replace("</body>", "<p>A new footer.</p></body>"))
    serve_build(src, out, cache, warm, quick=True)
    assert "A new footer." in (out / "first" / "index.html").read_text()
    assert "A new footer." in (out / "second" / "index.html").read_text()


def test_no_cache_checks_and_renders_everything(site):
    src, out, cache = site
    cold = settle(src, out, cache)
    again = build(src, out, cache, "--no-cache")
    assert again["checked"] == 2 and again["rendered"] == cold["pages"] and again["computed"] > 0
    shutil.rmtree(out)
    after = build(src, out, cache)  # articles kept from before; the recomputed figures' pages
    assert after["checked"] == 0 and after["rendered"] == cold["pages"]
    assert (out / "first" / "index.html").is_file()


def test_an_atlas_needs_each_job_once_and_digests_shared_kernels_once(tmp_path):
    # The units of a layer share the jobs of its outgoing kernels (one per unit of the next
    # layer): a 5,000-unit atlas asked for each of them once per unit, 2.7 million needs.
    from distillgen.atlas import plan_atlas
    from distillgen.cache import Cache
    from distillgen.compute import Catalog
    from distillgen.diagnostics import Reporter
    from distillgen.source.siteconfig import AtlasRequest
    from distillgen.unitpages import SiteMap, plan_unit_pages

    catalog = Catalog(Cache(tmp_path / "cache"))
    request = AtlasRequest("shapes", ("mixed3", "mixed4"), {"steps": 1, "size": 32}, 0, 0, base=tmp_path)
    atlas = plan_atlas(request, catalog, Reporter())
    pages = [page for layer in atlas.pages.values() for page in layer]
    _, needs = plan_unit_pages([], [atlas], catalog)
    keys = [need.job.key for need in needs]
    assert len(keys) == len(set(keys)) == len({job.key for page in pages for job in page.jobs})
    mixed3 = atlas.pages["mixed3"]
    assert len(mixed3[0].outputs) == len(atlas.pages["mixed4"]) and mixed3[0].outputs is mixed3[1].outputs
    site = SiteMap(pages)
    entries = {key: type("Entry", (), {"key": key, "digest": key[::-1]})() for key in keys}
    digests = {site.outputs_digest(page.outputs, entries) for page in mixed3}
    assert len(digests) == 1 and len(site._outputs) == 1  # stamped and hashed once for the layer


def test_a_damaged_or_foreign_index_is_checked_in_full_not_followed(site, monkeypatch):
    # The cache folder can come from someone else, index and all: entries of the wrong shape,
    # or naming files outside their folder, are checked in full like any other, never a
    # traceback, and the index is written again.
    src, out, cache = site
    settle(src, out, cache)
    index = json.loads((cache / "index.json").read_text())
    keys = [key for key, entry in index["entries"].items() if len(entry[1]) > 1]  # with payload files to hash
    index["entries"][keys[0]][1] = ["record.json"]  # files: not a mapping
    index["entries"][keys[1]][1]["../../outside"] = [0, 0, 0]  # a file outside the entry
    index["entries"][keys[2]][2] = 7  # derived values: not a mapping
    index["entries"][keys[3]] = "nonsense"
    (cache / "index.json").write_text(json.dumps(index))
    hashed = []
    real = cache_module._sha256
    monkeypatch.setattr(cache_module, "_sha256", lambda path: hashed.append(path) or real(path))
    again = build(src, out, cache)
    assert again["computed"] == 0
    assert {path.parent.name for path in hashed} == set(keys[:4])  # those four, checked in full
    assert all(
        isinstance(entry[1], dict)
        for entry in json.loads((cache / "index.json").read_text())["entries"].values()
    )


def test_the_output_looked_at_by_a_child_while_pages_render_is_as_a_walk_finds_it(site, monkeypatch):
    src, out, cache = site
    settle(src, out, cache)
    forks = counted_forks(monkeypatch, fork_from=2)
    result = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(cache), "-v")
    assert "holds this site already: nothing written" in result.stderr and forks
    forks.clear()
    page = out / "second" / "index.html"
    text = page.read_text()
    page.write_text("edited by hand")
    (out / "static" / "distill.css").unlink()
    build(src, out, cache)
    assert forks and page.read_text() == text and (out / "static" / "distill.css").is_file()


def test_a_look_at_the_output_is_not_taken_once_a_build_wrote_it_since(site, monkeypatch):
    src, out, cache = site
    settle(src, out, cache)
    forks = counted_forks(monkeypatch, fork_from=2)
    look = site_module.LookAhead(out, None, None)
    assert look._ahead.result(look._output) == (mock.ANY, {})  # the child looked: nothing changed
    page = out / "second" / "index.html"
    page.write_text("written by another build")
    manifest = manifest_path(out)
    cache_module.write_file(manifest, manifest.read_bytes())  # as every build writing it does
    held = look.held()
    assert forks and held["second/index.html"][3] is None  # changed: written again
