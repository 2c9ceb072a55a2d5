"""{featurevis} and {unit} through the whole build: cache, provenance, errors, the page."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, computed_once, run_cli, write

ARTICLE = """
---
title: Units
featurevis: {steps: 4, size: 32}
---
# Units

The unit {unit}`mixed3:2` responds to something.

```{featurevis} mixed3:0-2,conv2:1
:label: fig-units
:columns: 2
Three units of mixed3 and one of conv2.
```

```{featurevis} conv2:3
:steps: 6
:diversity: 2
```
"""


def build(src: Path, out: Path, cache: Path, *args: str):
    return run_cli("build", str(src), "-o", str(out), "--cache-dir", str(cache), *args)


def computed_count(result) -> int:
    return int(re.search(r"\((\d+) computed\)", result.stderr)[1])


def article(root: Path) -> tuple[Path, Path, Path]:
    src = root / "src"
    write(src / "grid.md", ARTICLE)
    return src, root / "out", root / "cache"


@pytest.fixture
def cold_site(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The article with an empty cache."""
    return article(tmp_path)


def built(src: Path, out: Path, cache: Path) -> None:
    assert build(src, out, cache).exit_code == 0


computed, units_site = computed_once(article, built)  # a test's first build computes nothing


def test_build_writes_images_records_and_hover_cards(cold_site):
    src, out, cache = cold_site
    result = build(src, out, cache)
    assert result.exit_code == 0, result.output
    assert "shapes: featurevis of 5 units (6 images)" in result.stderr  # mixed3:2: chip and grid
    total, fresh = map(int, re.search(r"(\d+) figure\(s\) \((\d+) computed\)", result.stderr).groups())
    assert total == fresh > 5  # the article's five and its unit pages' (diversity, weights)
    page = (out / "grid" / "index.html").read_text()
    images = re.findall(r'<img src="(figures/[^"]+)" width="(\d+)" height="(\d+)"', page)
    assert len(images) >= 7 and all((out / "grid" / src_).is_file() for src_, _, _ in images)
    assert ("figures/", "96", "96") in {(s[:8], w, h) for s, w, h in images}
    assert 'data-hover-ref="unit-' in page and '<div class="hover-cards" hidden>' in page
    assert "mixed3:2</code> · shapes" in page and "activation" in page
    assert "Figure 1" in page and "Figure 2" in page
    every = json.loads((out / "grid" / "figures.json").read_text())["figures"]
    records = [r for r in every if r["job"]["kind"] == "featurevis"]
    assert [r["job"]["unit"] for r in records] == [2, 0, 1, 1, 3]  # reading order, each once
    measured = {r["job"]["image"] for r in every if r["job"]["kind"] == "faithfulness"}
    assert measured == {r["key"] for r in records}  # every image's measures, beside it
    first = records[0]
    assert first["job"]["settings"]["steps"] == 4 and first["job"]["layer"] == "mixed3"
    assert first["model"]["spec"] == "shapes" and len(first["model"]["checksum"]) == 64
    assert set(first["versions"]) >= {"distillgen", "torch", "torch-lucent"}
    assert first["device"].startswith("cpu") and first["seconds"] > 0
    assert isinstance(first["result"]["values"][0], float)
    assert len(records[-1]["result"]["images"]) == 2  # the diversity figure


def test_a_unit_chip_can_name_another_model(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    write(
        src / "chips.md",
        "---\ntitle: Chips\nfeaturevis: {steps: 4, size: 32}\n---\n\n"
        "Seed 0 {unit}`mixed3:2`; seed 1 {unit}`shapes@1 mixed3:2`.\n",
    )
    result = build(src, out, tmp_path / "cache")
    assert result.exit_code == 0, result.output
    page = (out / "chips" / "index.html").read_text()
    assert 'href="../units/shapes/mixed3/2.html"' in page
    assert 'href="../units/shapes@1/mixed3/2.html"' in page and "<code>shapes@1 mixed3:2</code>" in page
    assert "<code>mixed3:2</code> · shapes@1</p>" in page  # the hover card names the model once
    records = json.loads((out / "chips" / "figures.json").read_text())["figures"]
    records = [r for r in records if r["job"]["kind"] == "featurevis"]  # not their measures
    assert [r["model"]["spec"] for r in records] == ["shapes", "shapes@1"]
    assert records[0]["model"]["checksum"] != records[1]["model"]["checksum"]
    assert (out / "units" / "shapes@1" / "mixed3" / "2.html").is_file()


def test_rebuild_takes_everything_from_the_cache_and_changes_recompute_only_that(cold_site):
    src, out, cache = cold_site
    total = computed_count(build(src, out, cache))
    before = {p.name: p.read_bytes() for p in (out / "grid" / "figures").iterdir()}
    again = build(src, out, cache)
    assert computed_count(again) == 0 and f"{total} figure(s)" in again.stderr
    assert {p.name: p.read_bytes() for p in (out / "grid" / "figures").iterdir()} == before
    text = (src / "grid.md").read_text()
    (src / "grid.md").write_text(text.replace(":steps: 6", ":steps: 7"))
    assert computed_count(build(src, out, cache)) == 2  # the image and its measures
    (src / "grid.md").write_text(
        text.replace("featurevis: {steps: 4, size: 32}", "featurevis: {steps: 4, size: 40}")
    )
    # the article's default size reaches its five figures and the four unit pages' diversity
    # sets, and the measures of each
    assert computed_count(build(src, out, cache)) == 2 * (5 + 4)
    assert computed_count(build(src, out, cache, "--no-cache")) == total


def test_a_damaged_entry_is_reported_and_recomputed_even_under_strict(units_site):
    src, out, cache = units_site
    build(src, out, cache)
    png = next(cache.glob("objects/*/*/image0.png"))
    png.write_bytes(png.read_bytes()[:20])
    result = build(src, out, cache, "--strict")
    assert result.exit_code == 0, result.output
    assert "warning: damaged cache entry (image0.png does not match its recorded checksum)" in result.stderr
    assert computed_count(result) == 1
    assert computed_count(build(src, out, cache)) == 0


def test_frozen_lists_what_is_missing_and_keeps_the_previous_build(units_site, tmp_path):
    src, out, cache = units_site
    assert build(src, out, cache).exit_code == 0
    assert build(src, out, cache, "--frozen").exit_code == 0
    page = (out / "grid" / "index.html").read_text()
    result = build(src, out, tmp_path / "empty-cache", "--frozen")
    assert result.exit_code == 1
    missing = [line for line in result.stderr.splitlines() if "--frozen forbids computing it" in line]
    # five images and their measures: the build stops before planning unit pages
    assert len(missing) == 2 * 5
    assert any(
        line.startswith(f"{src / 'grid.md'}:7: error: featurevis of mixed3:2 (shapes") for line in missing
    )
    assert (out / "grid" / "index.html").read_text() == page
    assert not list((tmp_path / "empty-cache").glob("objects/*/*"))


@pytest.mark.parametrize(
    ("snippet", "line", "message"),
    [
        (
            "```{featurevis} mixd3:1\n```",
            5,
            "unknown layer 'mixd3' in model 'shapes' (did you mean 'mixed3'?)",
        ),
        (
            "```{featurevis} mixed3:64\n```",
            5,
            "unit 64 is out of range for 'mixed3' in model 'shapes': it has 64",
        ),
        ("```{featurevis} mixed3:x\n```", 5, "'mixed3:x' is not a unit address"),
        ("```{featurevis} mixed3:1\n:objective: channels\n```", 6, "expected one of channel, neuron"),
        ("```{featurevis} mixed3:1\n:steps: 0\n```", 6, "bad value for ':steps:'"),
        (
            "```{featurevis} mixed3:1\n:stpes: 10\n```",
            6,
            "unknown option ':stpes:' for {featurevis} (did you mean",
        ),
        ("```{featurevis} mixed3\n:objective: direction\n```", 5, "needs :direction:"),
        (
            "```{featurevis} mixed3\n:objective: direction\n:direction: 70: 1\n```",
            7,
            "channel 70 is out of range",
        ),
        ("```{featurevis} mixed3:1\n:direction: 1: 1\n```", 6, ":direction: needs :objective: direction"),
        ("```{featurevis} fc:1\n:objective: neuron\n```", 5, "neuron needs convolutional layers"),
        ("```{featurevis} mixed3:1\n:model: shapes@7\n```", 6, "no shipped weights for 'shapes@7'"),
        ("```{featurevis} mixed3:1\n:model: nets/none.py:make\n```", 6, "model file not found"),
        ("Inline {unit}`mixed3:1-2`.", 5, "{unit} names one unit, not 2"),
        ("Inline {unit}`mixed9:1`.", 5, "unknown layer 'mixed9'"),
        ("Inline {unit}`shapes@7 mixed3:1`.", 5, "no shipped weights for 'shapes@7'"),
        ("Inline {unit}`shapes-vgg mixed3:1`.", 5, "unknown layer 'mixed3'"),
    ],
)
def test_author_mistakes_are_path_line_errors_before_any_compute(tmp_path, snippet, line, message):
    src = tmp_path / "src"
    write(src / "bad.md", "---\ntitle: Bad\n---\n\n" + snippet + "\n")
    result = build(src, tmp_path / "out", tmp_path / "cache")
    assert result.exit_code == 1
    assert f"{src / 'bad.md'}:{line}: error: " in result.stderr, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert not list((tmp_path / "cache").glob("objects/*/*")), "nothing may be computed"


def test_front_matter_featurevis_defaults_are_validated(tmp_path):
    src = tmp_path / "src"
    write(src / "bad.md", "---\ntitle: Bad\nfeaturevis:\n  stepz: 4\n  size: huge\n---\n\n{unit}`mixed3:1`\n")
    result = build(src, tmp_path / "out", tmp_path / "cache")
    assert result.exit_code == 1
    assert (
        f"{src / 'bad.md'}:4: error: unknown key 'featurevis.stepz' (did you mean 'steps'?)" in result.stderr
    )
    assert f"{src / 'bad.md'}:5: error: bad value for 'featurevis.size'" in result.stderr


def test_a_cached_rebuild_does_not_import_torch(units_site):
    src, out, cache = units_site
    assert build(src, out, cache).exit_code == 0
    code = (
        "import sys; from pathlib import Path; from distillgen.diagnostics import Reporter;"
        "from distillgen.site import build;"
        f"r = build(Path({str(src)!r}), Path({str(out)!r}), Reporter(), cache_dir=Path({str(cache)!r}));"
        "assert r.computed == 0 and r.cached > 5, r;"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=600)


def test_units_in_the_browser(units_site, open_page):
    src, out, cache = units_site
    assert build(src, out, cache).exit_code == 0
    page, problems = open_page((out / "grid" / "index.html").as_uri())
    widths = page.eval_on_selector_all(
        ".unit-cell img, .unit-chip img", "els => els.map(e => e.naturalWidth)"
    )
    assert len(widths) == 7 and all(w == 32 for w in widths)  # every image loaded
    cell = page.locator('.unit-cell:has-text("mixed3:1")')
    cell.hover()
    card = page.locator(".hover-box")
    card.wait_for(state="visible")
    assert "mixed3:1" in card.inner_text() and "shapes" in card.inner_text()
    assert card.locator("img").evaluate("img => img.complete && img.naturalWidth") == 32
    page.mouse.move(0, 0)
    card.wait_for(state="hidden")
    page.locator(".unit-chip").hover()
    card.wait_for(state="visible")
    assert "mixed3:2" in card.inner_text()
    tops = page.eval_on_selector_all("#fig-units .unit-cell", "els => els.map(e => e.offsetTop)")
    assert len(tops) == 4 and len(set(tops)) == 2  # :columns: 2
    assert problems == []


def test_the_example_sites_figures_are_committed_and_its_page_cache_is_not():
    """The shipped cache (README, quick start) is the figures and model descriptions; what a
    build leaves beside them on a reader's machine stays out of git."""
    assert shutil.which("git")

    def ignored(path: str) -> bool:
        check = ["git", "check-ignore", "-q", path]
        return subprocess.run(check, cwd=ROOT, check=False, timeout=30).returncode == 0

    cache = "articles/.distillgen/cache"
    assert not ignored(f"{cache}/objects/ab/abcd/record.json") and not ignored(f"{cache}/models/x.json")
    leftovers = ("pages/x.html", "search/x", ".lock", "quarantine/x/record.json", "speeds.json")
    for leftover in (*leftovers, "index.json", "checked/x.pickle"):
        assert ignored(f"{cache}/{leftover}"), leftover
    assert ignored("elsewhere/.distillgen/cache/objects/ab/abcd/record.json")
    assert ignored(".build.lock") and ignored(".build.manifest.json")  # `make site`'s, beside build/


FRAGILE_MODEL = """
import torch
from torch import nn

class Fragile(nn.Module):
    input_size = 32
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
    def forward(self, x):
        if torch.is_grad_enabled():  # loads (the shape probe runs without grad), fails to optimize
            raise ValueError("this model cannot be differentiated")
        return self.conv(x)

def build():
    return Fragile()
"""


def test_a_model_failing_during_compute_is_a_path_line_error(tmp_path):
    src = tmp_path / "src"
    write(src / "fragile.py", FRAGILE_MODEL)
    write(src / "bad.md", "---\ntitle: Bad\nmodel: fragile.py:build\n---\n\n```{featurevis} conv:1\n```\n")
    write(tmp_path / "out" / "index.html", "the previous build")
    write(tmp_path / "out" / ".distillgen-build", "")
    result = build(src, tmp_path / "out", tmp_path / "cache")
    assert result.exit_code == 1
    assert (
        f"{src / 'bad.md'}:6: error: computing {src / 'fragile.py'}:build: featurevis of 1 unit failed: "
        "ValueError: this model cannot be differentiated"
    ) in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert (tmp_path / "out" / "index.html").read_text() == "the previous build"
