"""The atlas (issue 13): a page per layer and per unit of a model, from `distillgen atlas` or the
site config's `atlas:`; article unit pages and atlas unit pages are one page."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.conftest import run_cli, serve_build, write
from tests.test_incremental import contents

LAYERS = {"conv2": 32, "mixed3": 64, "mixed4": 96}  # the shapes model's units per layer
# Cheap, but real: every unit optimized (2 steps), its diversity set, its examples.
CHEAP = ("--featurevis", "steps=2", "--featurevis", "size=32", "--examples", "4")


@pytest.fixture(scope="session")
def atlas_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("atlas-cache")


@pytest.fixture(scope="session")
def atlas_site(tmp_path_factory, atlas_cache) -> Path:
    """`distillgen atlas shapes --layers conv2,mixed3,mixed4`, built once for the session."""
    out = tmp_path_factory.mktemp("atlas") / "out"
    result = atlas(out, atlas_cache)
    assert result.exit_code == 0, result.output
    assert "built the atlas (192 units)" in result.stderr
    return out


def atlas(out: Path, cache: Path, *extra: str):
    layers = ",".join(LAYERS)
    return run_cli(
        "atlas", "shapes", "--layers", layers, *CHEAP, "-o", str(out), "--cache-dir", str(cache), *extra
    )


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[name] for name in ("href", "src") if attrs.get(name)]
        if tag == "img":
            self.images.append(attrs)


def parse(path: Path) -> Links:
    links = Links()
    links.feed(path.read_text(encoding="utf-8"))
    return links


def test_one_unit_page_per_unit_a_page_per_layer_and_a_model_page(atlas_site):
    model = atlas_site / "units" / "shapes"
    for layer, units in LAYERS.items():
        pages = sorted(int(p.stem) for p in (model / layer).glob("*.html") if p.stem.isdigit())
        assert pages == list(range(units))
        assert (model / layer / "index.html").is_file()
    assert (model / "index.html").is_file()
    assert not (model / "conv1").exists()  # only the layers asked for
    index = (atlas_site / "index.html").read_text()
    assert 'href="units/shapes/index.html"' in index


def test_every_link_and_image_of_the_atlas_resolves(atlas_site):
    checked = 0
    for page in atlas_site.rglob("*.html"):
        for link in parse(page).links:
            parts = urlsplit(link)
            if parts.scheme or not parts.path:
                continue  # external, data: or a link to an anchor of the page itself
            target = (page.parent / unquote(parts.path)).resolve()
            assert target.is_file(), f"{page.relative_to(atlas_site)} links to missing {link}"
            assert target.is_relative_to(atlas_site.resolve())
            checked += 1
    assert checked > 192 * 10  # each unit page alone has its images, examples and neighbours


def test_a_unit_page_is_a_dashboard(atlas_site):
    page = atlas_site / "units" / "shapes" / "mixed3" / "5.html"
    html = page.read_text()
    links = parse(page)
    assert html.count('class="unit-cell"') == 4  # the diversity set
    assert "excite it most" in html and "excite it least" in html
    examples = [img for img in links.images if img["alt"].startswith("probe image")]
    assert len(examples) == 2 * 4
    site = "../../../units/shapes"
    assert (
        f'href="{site}/mixed3/4.html" rel="prev"' in html
        and f'href="{site}/mixed3/6.html" rel="next"' in html
    )
    assert f'href="{site}/mixed3/index.html">all units of' in html
    assert f'href="{site}/index.html">Atlas of' in html
    # Strongest inputs from conv2 and outputs into mixed4 link to their own atlas pages.
    assert re.search(rf'<a href="{site}/conv2/\d+\.html"><code>conv2:\d+</code></a>', html)
    assert re.search(rf'<a href="{site}/mixed4/\d+\.html"><code>mixed4:\d+</code></a>', html)
    first, last = (atlas_site / "units" / "shapes" / "conv2" / f"{n}.html" for n in (0, 31))
    assert 'rel="prev"' not in first.read_text() and 'rel="next"' not in last.read_text()


def test_layer_pages_lazy_load_their_grid(atlas_site):
    page = atlas_site / "units" / "shapes" / "mixed4" / "index.html"
    grid = [img for img in parse(page).images if img["alt"].startswith("feature visualization of mixed4:")]
    assert len(grid) == 96
    assert all(img.get("loading") == "lazy" for img in grid)


def test_a_layer_page_says_how_its_images_were_made(atlas_site):
    """Issue 27: an atlas's images may be made at other settings than an article's."""
    page = (atlas_site / "units" / "shapes" / "mixed4" / "index.html").read_text(encoding="utf-8")
    settings = re.search(r'<p class="atlas-settings">([^<]*)</p>', page)
    assert settings and settings[1].startswith("Feature visualizations: 2 steps, 32 px, learning rate 0.05,")


@pytest.mark.browser
def test_atlas_pages_in_the_browser(open_page, atlas_site):
    model = atlas_site / "units" / "shapes"
    pages = [model / "index.html", model / "mixed4" / "index.html", model / "mixed4" / "95.html"]
    for path in pages:
        page, problems = open_page(path.as_uri(), width=375)
        assert problems == [], f"{path}: {problems}"
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} overflows a 375 px screen by {overflow} px"


@pytest.mark.browser
def test_a_layer_page_loads_images_lazily_and_filters_by_unit_number(open_page, atlas_site):
    page, problems = open_page((atlas_site / "units" / "shapes" / "mixed4" / "index.html").as_uri(), 375)
    loaded = page.evaluate(
        "[...document.querySelectorAll('.atlas-grid img')].filter(i => i.complete && i.naturalWidth).length"
    )
    assert 0 < loaded < 96  # the first screens only; the rest load when scrolled to
    page.fill("#unit-filter", "10-12, 90")
    visible = page.evaluate(
        "[...document.querySelectorAll('.atlas-grid .unit-cell')].filter(c => !c.hidden).map(c => c.dataset.unit)"
    )
    assert visible == ["10", "11", "12", "90"]
    assert page.text_content("#unit-filter-count") == "4 units"
    page.fill("#unit-filter", "")
    assert page.text_content("#unit-filter-count") == "96 units"
    page.click(".atlas-grid .unit-cell[data-unit='11']")
    page.wait_for_load_state("load")
    assert page.url.endswith("/units/shapes/mixed4/11.html")
    assert problems == []


def test_a_no_change_rebuild_renders_nothing_and_rewrites_no_file(atlas_site, atlas_cache, tmp_path):
    out = tmp_path / "out"
    first = atlas(out, atlas_cache)
    assert first.exit_code == 0, first.output
    assert "(0 computed)" in first.stderr  # every figure from the session's cache
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    again = atlas(out, atlas_cache)
    assert again.exit_code == 0, again.output
    assert "0 of 196 page(s) rendered" in again.stderr  # 192 units, 3 layers, the model
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()} == before


def test_an_atlas_pruning_its_cache_keeps_every_figure_it_shows(atlas_site, atlas_cache, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(atlas_cache, cache)  # the session's, with what other tests built into it

    def entries() -> int:
        return sum(1 for folder in (cache / "objects").glob("*/*") if folder.is_dir())

    def figures(result) -> int:
        assert result.exit_code == 0, result.output
        return int(re.search(r"(\d+) figure\(s\) \(0 computed\)", result.stderr)[1])

    assert figures(atlas(tmp_path / "out", cache, "--prune-cache")) == entries()
    assert figures(atlas(tmp_path / "out", cache)) == entries()  # nothing it shows went
    conv2 = ("atlas", "shapes", "--layers", "conv2", *CHEAP, "-o", str(tmp_path / "conv2"))
    pruned = run_cli(*conv2, "--cache-dir", str(cache), "--prune-cache")
    assert figures(pruned) == entries() and "unused figure(s) pruned" in pruned.stderr
    assert figures(run_cli(*conv2, "--cache-dir", str(cache))) == entries()


ARTICLE = """
---
title: Curves in shapes
featurevis: {steps: 2, size: 32}
---
The unit {unit}`mixed3:5` is in the atlas; {unit}`conv1:3` is not.
"""

CONFIG = """
title: Shapes notes
description: Small circuits.
atlas:
  - model: shapes
    layers: [conv2, mixed3, mixed4]
    featurevis: {steps: 2, size: 32}
    examples: 4
"""


def test_the_site_config_builds_the_atlas_beside_the_articles_with_one_page_per_unit(
    atlas_site, atlas_cache, tmp_path
):
    src = tmp_path / "src"
    write(src / "curves.md", ARTICLE)
    write(src / "distillgen.yml", CONFIG)
    out = tmp_path / "out"
    result = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(atlas_cache))
    assert result.exit_code == 0, result.output
    assert "built 1 article(s) and an atlas (192 units)" in result.stderr
    units = out / "units" / "shapes"
    # The atlas's pages, plus one for the article's unit outside it: no page twice.
    assert len(list(units.glob("*/[0-9]*.html"))) == 192 + 1
    page = (units / "mixed3" / "5.html").read_text()
    assert 'href="../../../curves/index.html">Curves in shapes</a>' in page
    assert "excite it least" in page  # the atlas's dashboard, not a second, plainer page
    plain = (units / "conv1" / "3.html").read_text()  # an article's unit: its natural examples only
    assert "excite it most" in plain and "excite it least" not in plain
    article = (out / "curves" / "index.html").read_text()
    assert 'href="../units/shapes/mixed3/5.html"' in article
    index = (out / "index.html").read_text()
    assert "<h1>Shapes notes</h1>" in index and "Small circuits." in index
    assert "<title>Shapes notes</title>" in index


def test_an_atlas_planned_once_shows_each_build_only_its_own_articles(atlas_site, atlas_cache, tmp_path):
    # serve plans an atlas once per process and builds again after every edit: an article that
    # stops showing an atlas's unit leaves that unit's page, and the kept plan never changes.
    from distillgen.atlas import plan_atlas
    from distillgen.cache import Cache
    from distillgen.compute import Catalog
    from distillgen.diagnostics import Reporter
    from distillgen.source.siteconfig import load_site_config
    from distillgen.warm import Warm

    src, out, warm = tmp_path / "src", tmp_path / "out", Warm()
    write(src / "distillgen.yml", CONFIG)
    write(src / "curves.md", ARTICLE)

    serve_build(src, out, atlas_cache, warm, quick=False)
    link = 'href="../../../curves/index.html">Curves in shapes</a>'
    units = out / "units" / "shapes" / "mixed3"
    assert link in (units / "5.html").read_text() and link not in (units / "6.html").read_text()
    write(src / "curves.md", ARTICLE.replace("mixed3:5", "mixed3:6"))
    serve_build(src, out, atlas_cache, warm, quick=True)
    assert link not in (units / "5.html").read_text() and link in (units / "6.html").read_text()
    request = load_site_config(src, Reporter()).atlas[0]
    atlas = plan_atlas(request, Catalog(Cache(atlas_cache)), Reporter())
    assert atlas is plan_atlas(request, Catalog(Cache(atlas_cache)), Reporter())  # planned once
    assert not any(page.articles for pages in atlas.pages.values() for page in pages)
    serve_build(src, out, atlas_cache, warm, quick=False)
    run_cli("build", str(src), "-o", str(tmp_path / "clean"), "--cache-dir", str(atlas_cache))
    assert contents(out) == contents(tmp_path / "clean")


def test_a_new_process_takes_the_atlas_its_cache_keeps_and_no_one_elses(
    atlas_site, atlas_cache, tmp_path, monkeypatch
):
    # Planning an atlas (its pages' jobs and their keys) is most of a no-change build's time in
    # a new process: the plan is kept, signed, in the cache, for the code that planned it.
    from distillgen import atlas as atlas_module
    from distillgen.atlas import KeptPlans, plan_atlas
    from distillgen.cache import Cache
    from distillgen.compute import Catalog
    from distillgen.diagnostics import Reporter
    from distillgen.source.siteconfig import load_site_config

    write(tmp_path / "src" / "distillgen.yml", CONFIG)
    request = load_site_config(tmp_path / "src", Reporter()).atlas[0]
    kept = KeptPlans(tmp_path / "plans", "this code")
    planned: list[int] = []
    unit_pages = atlas_module._unit_pages
    monkeypatch.setattr(atlas_module, "_unit_pages", lambda *args: planned.append(1) or unit_pages(*args))

    def a_new_process(plans: KeptPlans):
        atlas_module._PLANNED.clear()
        return plan_atlas(request, Catalog(Cache(atlas_cache)), Reporter(), kept=plans)

    first = a_new_process(kept)
    (mine,) = kept.folder.glob("*.pickle")
    assert len(planned) == 3  # its three layers
    second = a_new_process(kept)
    assert len(planned) == 3  # taken from the cache, not planned again
    assert second is not first and list(second.needs) == list(first.needs)
    assert [p.path for ps in second.pages.values() for p in ps] == [
        p.path for ps in first.pages.values() for p in ps
    ]

    a_new_process(KeptPlans(kept.folder, "other code"))
    assert len(planned) == 6  # planned again by other code
    mine.write_bytes(b"\0" * 32 + mine.read_bytes()[32:])  # a plan not signed by this user's key
    a_new_process(kept)
    assert len(planned) == 9  # ignored: unpickling runs code


def test_a_kept_plan_is_out_of_the_collectors_view_only_while_its_build_runs(
    atlas_site, atlas_cache, tmp_path, monkeypatch
):
    # A plan lives as long as the build that loads it (InceptionV1's: 500,000 objects), so the
    # build's collections skip it; it is thawed when the build ends, so that a process that
    # builds again and again (serve, these tests) still collects what its builds left.
    import gc

    from distillgen import atlas as atlas_module
    from distillgen import signed
    from distillgen.atlas import PLAN_VERSION, Atlas

    src = tmp_path / "src"
    write(src / "distillgen.yml", CONFIG)
    write(src / "curves.md", ARTICLE)
    frozen: list[int] = []  # objects out of the collector's view as each kept thing is loaded
    load = signed.load
    monkeypatch.setattr(signed, "load", lambda *args: (load(*args), frozen.append(gc.get_freeze_count()))[0])
    gc.unfreeze()
    for _ in range(2):  # the first build may plan the atlas (and keep it), the second loads it
        atlas_module._PLANNED.clear()
        result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(atlas_cache))
        assert result.exit_code == 0, result.output
        assert gc.get_freeze_count() == 0  # thawed
    assert frozen and frozen[-1] > 1000  # the plan, loaded in the second build, was frozen
    plan = max((atlas_cache / "plans").glob("*.pickle"), key=lambda path: path.stat().st_mtime_ns)
    assert isinstance(signed.load(plan, PLAN_VERSION), Atlas)
    assert gc.get_freeze_count() == 0  # outside a build, nothing is frozen


def test_a_build_evicts_none_of_its_own_kept_plans_however_many_atlases_it_has(atlas_cache, tmp_path):
    # The newest few plans are kept besides the build's own: a site of more atlases than that
    # would otherwise evict one of its own each time, and plan it again in every process.
    from distillgen.atlas import KeptPlans, plan_atlas
    from distillgen.cache import Cache
    from distillgen.compute import Catalog
    from distillgen.diagnostics import Reporter
    from distillgen.source.siteconfig import load_site_config

    write(tmp_path / "src" / "distillgen.yml", CONFIG)
    request = load_site_config(tmp_path / "src", Reporter()).atlas[0]
    atlas = plan_atlas(request, Catalog(Cache(atlas_cache)), Reporter())
    build = KeptPlans(tmp_path / "plans", "this code")
    names = [f"atlas {n}" for n in range(KeptPlans.MOST + 2)]
    for name in names:
        build.keep(name, atlas)
    assert all(KeptPlans(build.folder, "this code").load(name) is not None for name in names)
    KeptPlans(build.folder, "this code").keep("another site's atlas", atlas)
    assert len(list(build.folder.glob("*.pickle"))) == KeptPlans.MOST + 1  # its own, and the newest others


def test_the_plan_kept_by_the_build_that_loaded_the_model_is_taken_without_torch(tmp_path):
    # Reproduced bug: the first build loads the model to describe it, and the atlas's plan,
    # kept for later processes, held that loaded model (its module and weights): every later
    # no-change build imported torch to unpickle it (1.2 s on shapes).
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["atlas", "shapes", "--layers", "conv1", "--diversity", "0", *CHEAP, "-o", str(out)]
    first = run_cli(*args, "--cache-dir", str(cache))
    assert first.exit_code == 0, first.output
    again = (
        "import sys\n"
        "from distillgen import atlas\n"
        "from distillgen.cli import main\n"
        "taken, load = [], atlas.KeptPlans.load\n"
        "atlas.KeptPlans.load = lambda self, made_of: taken.append(load(self, made_of)) or taken[-1]\n"
        f"main({[*args, '--cache-dir', str(cache), '-q']!r}, standalone_mode=False)\n"
        "assert taken and taken[0] is not None, 'the kept plan was not taken'\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", again], cwd=Path.cwd(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr


def test_a_new_process_takes_the_atlas_pages_as_one_group_while_they_are_the_same(
    atlas_site, atlas_cache, tmp_path, monkeypatch
):
    # Keying each of an atlas's thousands of pages was most of what render cost a no-change
    # build in a new process; its own pages are kept as one group, signed, under a key of all
    # they are made of, and taken whole while that key is the same and names only this cache's
    # files.
    from distillgen import atlas as atlas_module
    from distillgen import site as site_module

    src, out, cache = tmp_path / "src", tmp_path / "out", atlas_cache
    write(src / "distillgen.yml", CONFIG)
    write(src / "curves.md", ARTICLE)
    keyed: list[str] = []
    page_inputs = site_module.page_inputs
    monkeypatch.setattr(
        site_module, "page_inputs", lambda page, *rest: keyed.append(page.path) or page_inputs(page, *rest)
    )

    def a_new_process(*extra: str) -> str:
        atlas_module._PLANNED.clear()
        keyed.clear()
        result = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(cache), *extra)
        assert result.exit_code == 0, result.output
        return result.stderr

    a_new_process()
    # A copy of the cache (a copied project) holds the same group, naming the first cache's
    # files: it is not taken, and the site copies nothing from the other cache.
    cache = tmp_path / "cache"
    shutil.copytree(atlas_cache, cache)
    groups = cache / "pages" / "groups"
    assert groups.is_dir() and list(groups.glob("*.pickle"))
    log = a_new_process("-v")
    assert len(keyed) == 192 + 1 and "rendered 198 page(s), 0 unchanged" in log
    assert str(atlas_cache) not in site_module.manifest_path(out).read_text()
    log = a_new_process("-v")
    assert sorted(keyed) == ["units/shapes/conv1/3.html", "units/shapes/mixed3/5.html"]  # the article's
    assert (
        "rendered 195 page(s) of the atlas units/shapes/index.html (unchanged: from the cache, as one group)"
        in log
    )
    assert "rendered 0 page(s), 198 unchanged" in log

    for group in groups.glob("*.pickle"):  # groups not signed by this user's key
        group.write_bytes(b"\0" * 32 + group.read_bytes()[32:])
    a_new_process()
    assert len(keyed) == 192 + 1  # ignored: every unit page keyed, and the group kept again
    a_new_process()
    assert len(keyed) == 2

    write(src / "distillgen.yml", CONFIG.replace("examples: 4", "examples: 3"))
    a_new_process()
    assert len(keyed) == 192 + 1  # another request: its layer pages say what it asks for
    assert "3 dataset examples each way" in (out / "units" / "shapes" / "mixed4" / "index.html").read_text()
    write(src / "distillgen.yml", CONFIG.replace("Shapes notes", "Shapes notebook"))
    log = a_new_process("-v")
    assert len(keyed) == 192 + 1 and "rendered 198 page(s), 0 unchanged" in log  # another frame
    assert "Shapes notebook" in (out / "units" / "shapes" / "mixed4" / "7.html").read_text()
    for page in (cache / "pages").glob("*.html"):  # a page cache pruned: the group is not taken
        page.unlink()
    log = a_new_process("-v")
    assert len(keyed) == 192 + 1 and "rendered 198 page(s), 0 unchanged" in log
    out = tmp_path / "from-the-group"  # a new site of the pages taken as a group: the same site
    a_new_process()
    assert len(keyed) == 2 and contents(out) == contents(tmp_path / "out")


def test_after_an_edit_serve_renders_only_what_the_edit_changed(
    atlas_site, atlas_cache, tmp_path, monkeypatch
):
    # serve's build after an edit takes the atlas's own pages as its last build rendered them,
    # without a key each, while nothing they are made of changed; anything that did (an
    # artifact, the site's frame) renders them again.
    from distillgen import site as site_module
    from distillgen.cache import Cache
    from distillgen.warm import Warm

    src, out, warm = tmp_path / "src", tmp_path / "out", Warm()
    write(src / "distillgen.yml", CONFIG)
    write(src / "curves.md", ARTICLE)
    serve_build(src, out, atlas_cache, warm, quick=False)
    keyed: list[str] = []
    page_inputs = site_module.page_inputs

    def counted(page, *rest):
        keyed.append(page.path)
        return page_inputs(page, *rest)

    monkeypatch.setattr(site_module, "page_inputs", counted)
    mapped: list[int] = []  # how many artifacts' files each mapping of the cache's payload files took
    payload_paths = Cache.payload_paths

    def counted_map(cache, artifacts):
        artifacts = list(artifacts)
        mapped.append(len(artifacts))
        return payload_paths(cache, artifacts)

    monkeypatch.setattr(Cache, "payload_paths", counted_map)

    write(src / "curves.md", ARTICLE + "\nOne more line.\n")
    built = serve_build(src, out, atlas_cache, warm, quick=True)
    # rendered: the article's page; reused: the atlas's 196 (mixed3:5's the article's copy), conv1:3's
    assert built.rendered == 1 and built.reused == 196 + 1
    assert sorted(keyed) == ["units/shapes/conv1/3.html", "units/shapes/mixed3/5.html"]  # the article's
    assert mapped == []  # the same artifacts as the build before: its map of their files

    keyed.clear()
    image = next(p for p in warm.atlases["units/shapes/index.html"].atlas.pages["mixed4"]).image
    del warm.artifacts[image.key]  # looked up again: another object than the one its page read
    built = serve_build(src, out, atlas_cache, warm, quick=True)
    assert built.rendered == 0 and sorted(keyed) == [
        "units/shapes/conv1/3.html",
        "units/shapes/mixed3/5.html",
    ]
    assert len(mapped) == 1 and mapped[0] > 192 * 5  # mapped again, whole
    # the atlas's pages were taken on one key, from the page cache's group (the same records)
    keyed.clear()
    shutil.rmtree(atlas_cache / "pages" / "groups")
    del warm.artifacts[image.key]
    built = serve_build(src, out, atlas_cache, warm, quick=True)
    assert built.rendered == 0 and len(keyed) == 192 + 1  # every unit page keyed again, unchanged

    write(src / "distillgen.yml", CONFIG.replace("Shapes notes", "Shapes notebook"))
    built = serve_build(src, out, atlas_cache, warm, quick=True)
    assert built.rendered == 196 + 1 + 1  # every page is in the site's frame
    assert "Shapes notebook" in (out / "units" / "shapes" / "mixed4" / "7.html").read_text()
    kept = warm.atlases["units/shapes/index.html"].pages.values()  # their HTML in the page cache only
    assert len(kept) == 196 - 1 and all(page._html is None for page in kept)
    serve_build(src, out, atlas_cache, warm, quick=False)  # once the author pauses: the search index
    run_cli("build", str(src), "-o", str(tmp_path / "clean"), "--cache-dir", str(atlas_cache))
    assert contents(out) == contents(tmp_path / "clean")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("titel: X\n", "distillgen.yml:1: error: unknown key 'titel' (did you mean 'title'?)"),
        (
            "atlas:\n  - model: shapes\n    layers: [conv2, mixd3]\n",
            "distillgen.yml:2: error: atlas of 'shapes': unknown layer 'mixd3' in model 'shapes' "
            "(did you mean 'mixed3'?)",
        ),
        (
            "atlas:\n  - model: shapes\n    diversity: 99\n",
            "distillgen.yml:3: error: 'atlas[0].diversity' must be",
        ),
        ("atlas:\n  - layers: [conv2]\n", "distillgen.yml:2: error: 'atlas[0]' needs a 'model'"),
        (
            "atlas:\n  - model: shapes\n    layer: [conv2]\n",
            "distillgen.yml:3: error: unknown key 'atlas[0].layer'",
        ),
        (
            "atlas:\n  - model: shapes\n    layers: fc\n",
            "distillgen.yml:2: error: atlas of 'shapes': 'fc' is not",
        ),
        (
            "atlas:\n  - {model: shapes, layers: conv2}\n  - {model: shapes, layers: mixed3}\n",
            "distillgen.yml:3: error: the atlas of 'shapes' is asked for twice (first on line 2)",
        ),
        ("atlas: [\n", "distillgen.yml:2: error: malformed site config"),
    ],
)
def test_site_config_mistakes_are_path_line_errors_and_the_site_is_kept(tmp_path, config, expected):
    src = tmp_path / "src"
    write(src / "a.md", "---\ntitle: A\n---\nText.\n")
    out = tmp_path / "out"
    assert run_cli("build", str(src), "-o", str(out), "--cache-dir", str(tmp_path / "cache")).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (src / "distillgen.yml").write_text(config)
    result = run_cli("build", str(src), "-o", str(out), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert any(line.split("src/", 1)[-1].startswith(expected) for line in result.stderr.splitlines()), (
        result.stderr
    )
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_atlas_command_line_mistakes(tmp_path):
    out, cache = tmp_path / "out", str(tmp_path / "cache")
    unknown = run_cli("atlas", "shapes", "--layers", "conv2,mixd3", "-o", str(out), "--cache-dir", cache)
    assert unknown.exit_code == 1
    assert (
        "error: atlas of 'shapes': unknown layer 'mixd3' in model 'shapes' (did you mean 'mixed3'?)"
        in unknown.stderr
    )
    assert not out.exists()
    setting = run_cli("atlas", "shapes", "--featurevis", "stps=4", "-o", str(out), "--cache-dir", cache)
    assert setting.exit_code == 2 and "'stps=4' (did you mean 'steps'?)" in setting.stderr
    model = run_cli("atlas", "shapez", "-o", str(out), "--cache-dir", cache)
    assert model.exit_code == 2 and "unknown model spec 'shapez'" in model.stderr


def test_verify_pages_compares_the_figures_of_the_atlas_and_of_unit_pages(atlas_site, atlas_cache, tmp_path):
    """A build trusts the atlas's cache entries on their files' stat like the articles': `verify
    --pages` is their deep check. A kernel doubled behind the cache's back (checksum and all,
    as a cache committed from elsewhere could hold it) is drift of that figure, at the atlas's
    line in distillgen.yml."""
    import hashlib
    import json

    import numpy as np

    from distillgen.diagnostics import Reporter
    from distillgen.verify import article_figures

    src, cache = tmp_path / "src", tmp_path / "cache"
    write(src / "curves.md", ARTICLE)
    write(src / "distillgen.yml", CONFIG)
    shutil.copytree(atlas_cache, cache)
    built = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(cache))
    assert built.exit_code == 0, built.output

    articles, _ = article_figures(src, Reporter(), cache)
    assert [f.job.address for f in articles] == ["mixed3:5", "conv1:3"]  # its {unit}s' images alone
    figures, _ = article_figures(src, Reporter(), cache, pages=True)
    kinds = {figure.kind for figure in figures}
    assert kinds == {"featurevis", "weights", "examples", "faithfulness"}
    atlas_line = CONFIG.strip().splitlines().index("  - model: shapes") + 1
    into = {f.job.address: f for f in figures if f.kind == "weights" and f.path.name == "distillgen.yml"}
    assert {(f.line, f.directive) for f in into.values()} == {(atlas_line, "atlas")}
    plain = [f for f in figures if f.article == "units/shapes/conv1/3.html"]  # the article's unit
    assert plain and all(f.path.name == "curves.md" and f.directive == "unit page" for f in plain)

    tampered = into["conv2 -> mixed3:5"]
    folder = tampered.artifact.folder
    (name,) = [n for n in tampered.artifact.names if n.endswith(".npy")]
    kernel = np.load(folder / name)
    np.save(folder / name, kernel * 2)
    record = json.loads((folder / "record.json").read_text())
    record["files"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "record.json").write_text(json.dumps(record))

    options = ("--pages", "--kind", "weights", "--cache-dir", str(cache), "--device", "cpu", "--json")
    result = run_cli("verify", str(src), *options)
    report = json.loads(result.stdout)
    assert result.exit_code == 1
    assert report["summary"]["figures"] == len([f for f in figures if f.kind == "weights"])
    drift = [row for row in report["figures"] if row["verdict"] != "ok"]
    assert [(row["address"], row["article"], row["line"]) for row in drift] == [
        ("conv2 -> mixed3:5", "units/shapes/mixed3/5.html", atlas_line)
    ]
    assert drift[0]["verdict"] == "drift" and drift[0]["path"].endswith("distillgen.yml")
