"""`distillgen verify`: the example site reproduces; a tampered cache entry is reported for
exactly that figure, with exit 1; other versions are flagged; the cache is never written."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTICLES, run_cli, write

from distillgen.diagnostics import Reporter
from distillgen.verify import article_figures, sample

SMALL = """
---
title: Tamper
featurevis: {steps: 24, size: 32}
---

```{featurevis} mixed3:0,1
```

```{weights} conv2 -> mixed3:0
```

```{tuning} mixed3:0,1
:stimulus: line
:range: 0 180 6
```
"""
FEATUREVIS_LINE, WEIGHTS_LINE, TUNING_LINE = 6, 9, 12


def snapshot(cache: Path) -> dict[str, tuple[int, int]]:
    """Every file under the cache with its size and modification time."""
    return {str(p.relative_to(cache)): (p.stat().st_size, p.stat().st_mtime_ns) for p in cache.rglob("*")}


def verify_json(*args: str) -> tuple[int, dict]:
    result = run_cli("verify", *args, "--json", "--device", "cpu")
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def test_the_example_site_reproduces_and_its_cache_is_not_touched(example_build):
    cache = ARTICLES / ".distillgen" / "cache"
    before = snapshot(cache)
    # The kinds that recompute in seconds (a sample of every kind would train a dictionary
    # again: 50 s; test_dictionary verifies one)
    code, report = verify_json(
        str(ARTICLES), "--sample", "3", "--seed", "1", "--kind", "ablation,attribution,examples"
    )
    assert code == 0, report
    rows = report["figures"]
    assert len(rows) == 3 and report["summary"]["verified"] == 3
    assert report["summary"]["figures"] > 20  # every distinct artifact of those kinds
    assert {row["kind"] for row in rows} == {"ablation", "attribution", "examples"}  # spread over them
    for row in rows:
        assert row["verdict"] == "ok" and row["difference"] <= row["tolerance"], row
        assert row["path"].endswith(".md") and row["line"] > 0
        assert row["versions"] == {}
    assert snapshot(cache) == before


def test_a_sample_covers_every_kind_and_depends_on_the_seed(example_build):
    figures, _ = article_figures(ARTICLES, Reporter(), log=lambda message: None)
    kinds = {figure.kind for figure in figures}
    kinds_shown = {"featurevis", "weights", "tuning", "examples", "ablation", "attribution", "universality"}
    assert kinds == kinds_shown | {"dictionary", "faithfulness"}
    one_each = sample(figures, 9, seed=0)
    assert {figure.kind for figure in one_each} == kinds
    assert [f.job.key for f in sample(figures, 9, seed=0)] == [f.job.key for f in one_each]
    assert {f.job.key for f in sample(figures, 12, seed=1)} != {
        f.job.key for f in sample(figures, 12, seed=2)
    }
    order = [figures.index(figure) for figure in one_each]
    assert order == sorted(order)  # reading order


@pytest.fixture(scope="module")
def small_site(tmp_path_factory) -> Path:
    """A small article and its cache, computed once; each test tampers with its own copy."""
    root = tmp_path_factory.mktemp("small")
    src = write(root / "articles" / "tamper.md", SMALL).parent
    result = run_cli("build", str(src), "-o", str(root / "build"), "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    return src


@pytest.fixture
def site(small_site: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "articles"
    shutil.copytree(small_site, copy)
    return copy


def entry(src: Path, kind: str, address: str) -> Path:
    """The cache folder of the article's job of `kind` at `address`."""
    figures, _ = article_figures(src, Reporter(), log=lambda message: None)
    (figure,) = [f for f in figures if f.kind == kind and f.job.address == address]
    return figure.artifact.folder


def replace_file(folder: Path, name: str, data: bytes) -> None:
    """Replace a payload file and its checksum, as a cache committed from elsewhere would hold it."""
    (folder / name).write_bytes(data)
    record = json.loads((folder / "record.json").read_text())
    record["files"][name] = hashlib.sha256(data).hexdigest()
    (folder / "record.json").write_text(json.dumps(record))


def edit_record(folder: Path, edit) -> None:
    record = json.loads((folder / "record.json").read_text())
    edit(record)
    (folder / "record.json").write_text(json.dumps(record))


def verdicts(report: dict) -> dict[tuple[str, int, str], str]:
    return {(row["kind"], row["line"], row["address"]): row["verdict"] for row in report["figures"]}


ALL_OK = {
    ("featurevis", FEATUREVIS_LINE, "mixed3:0"): "ok",
    ("featurevis", FEATUREVIS_LINE, "mixed3:1"): "ok",
    # each image's faithfulness measures, recomputed on the cached image
    ("faithfulness", FEATUREVIS_LINE, "mixed3:0"): "ok",
    ("faithfulness", FEATUREVIS_LINE, "mixed3:1"): "ok",
    ("weights", WEIGHTS_LINE, "conv2 -> mixed3:0"): "ok",
    ("tuning", TUNING_LINE, "mixed3:0,1"): "ok",
}


def test_an_untouched_cache_verifies(site):
    code, report = verify_json(str(site), "--all")
    assert code == 0 and report["ok"] is True
    assert verdicts(report) == ALL_OK


def test_kind_verifies_only_the_figures_of_those_kinds(site):
    code, report = verify_json(str(site), "--all", "--kind", "weights", "--kind", "tuning")
    assert code == 0
    assert verdicts(report) == {key: v for key, v in ALL_OK.items() if key[0] in ("weights", "tuning")}
    assert report["summary"]["figures"] == 2
    wrong = run_cli("verify", str(site), "--kind", "weight")
    assert wrong.exit_code == 2 and "unknown kind 'weight' (did you mean 'weights'?)" in wrong.output
    absent = run_cli("verify", str(site), "--kind", "ablation")
    assert absent.exit_code == 2 and "has no figure of the kinds ablation" in absent.output


def test_an_image_of_another_unit_is_drift_of_that_figure_only(site):
    other = (entry(site, "featurevis", "mixed3:1") / "image0.png").read_bytes()
    replace_file(entry(site, "featurevis", "mixed3:0"), "image0.png", other)
    code, report = verify_json(str(site))
    assert code == 1 and report["ok"] is False
    # the image, and the measures recorded of the image it had (recomputed on the one it has)
    drifted = {("featurevis", FEATUREVIS_LINE, "mixed3:0"), ("faithfulness", FEATUREVIS_LINE, "mixed3:0")}
    assert verdicts(report) == {**ALL_OK, **dict.fromkeys(drifted, "drift")}
    (row,) = [r for r in report["figures"] if r["verdict"] == "drift" and r["kind"] == "featurevis"]
    assert row["measure"] == "its unit in the layer's profile, Δ"
    assert row["cached"] < row["recomputed"] == 0  # the other unit's image puts mixed3:0 lower


def test_a_kernel_scaled_by_two_is_drift_of_that_figure_only(site):
    folder = entry(site, "weights", "conv2 -> mixed3:0")
    buffer = io.BytesIO()
    np.save(buffer, np.load(folder / "kernels.npy") * 2)
    replace_file(folder, "kernels.npy", buffer.getvalue())
    code, report = verify_json(str(site))
    assert code == 1
    assert verdicts(report) == {**ALL_OK, ("weights", WEIGHTS_LINE, "conv2 -> mixed3:0"): "drift"}
    (row,) = [r for r in report["figures"] if r["verdict"] == "drift"]
    assert row["difference"] == pytest.approx(0.5)  # max |2k - k| relative to max |2k|, the cached
    assert row["cached"] == pytest.approx(2 * row["recomputed"])


def test_a_changed_tuning_value_is_drift_and_a_tolerance_can_allow_it(site):
    def bump(record):
        record["result"]["responses"][2][1] += 0.5

    edit_record(entry(site, "tuning", "mixed3:0,1"), bump)
    code, report = verify_json(str(site))
    assert code == 1
    assert verdicts(report) == {**ALL_OK, ("tuning", TUNING_LINE, "mixed3:0,1"): "drift"}
    code, report = verify_json(str(site), "--tolerance", "tuning=0.9")
    assert code == 0 and verdicts(report) == ALL_OK


def test_other_versions_are_flagged_as_such(site):
    def older(record):
        record["versions"]["torch"] = "2.0.0"

    edit_record(entry(site, "tuning", "mixed3:0,1"), older)
    result = run_cli("verify", str(site), "--device", "cpu")
    assert result.exit_code == 0, result.output  # reproduced all the same
    (line,) = [line for line in result.stdout.splitlines() if "versions differ" in line]
    assert "tuning mixed3:0,1" in line and f"tamper.md:{TUNING_LINE}" in line
    assert "torch 2.0.0 → " in line
    assert "1 made with other versions" in result.stdout.splitlines()[-1]
    code, report = verify_json(str(site))
    (row,) = [r for r in report["figures"] if r["versions"]]
    assert row["kind"] == "tuning" and row["versions"]["torch"]["recorded"] == "2.0.0"


def test_a_damaged_entry_is_an_error_at_its_figure_and_stays_where_it_is(site):
    folder = entry(site, "featurevis", "mixed3:1")
    (folder / "image0.png").write_bytes(b"not the image its record names")  # checksum no longer matches
    before = snapshot(site / ".distillgen" / "cache")
    result = run_cli("verify", str(site), "--device", "cpu")
    assert result.exit_code == 1
    assert "damaged cache entry (image0.png does not match its recorded checksum)" in result.stderr
    assert f"tamper.md:{FEATUREVIS_LINE}: error: featurevis of mixed3:1" in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(site / ".distillgen" / "cache") == before  # not moved to quarantine


def test_progress_names_each_figure_without_a_terminal(site):
    result = run_cli("verify", str(site), "--device", "cpu")
    assert result.exit_code == 0
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert progress[0].startswith("[1/6] ") and progress[-1].startswith("[6/6] ")
    assert any(f"tamper.md:{WEIGHTS_LINE} weights conv2 -> mixed3:0: ok" in line for line in progress)


def test_mistakes_on_the_command_line_and_in_the_site(tmp_path, site):
    result = run_cli("verify", str(site), "--sample", "2", "--all")
    assert result.exit_code == 2 and "choose one" in result.output
    result = run_cli("verify", str(site), "--tolerance", "featurevs=0.3")
    assert result.exit_code == 2 and "did you mean 'featurevis'" in result.output
    result = run_cli("verify", str(site), "--tolerance", "tuning=-1")
    assert result.exit_code == 2 and "0 or more" in result.output
    result = run_cli("verify", str(tmp_path / "nowhere"))
    assert result.exit_code == 1 and "error: source folder not found" in result.stderr
    fresh = write(tmp_path / "fresh" / "a.md", SMALL).parent  # never built: nothing to compare with
    result = run_cli("verify", str(fresh))
    assert (
        result.exit_code == 1
        and "is not in the cache" in result.stderr
        and "build the site first" in result.stderr
        and "--frozen" not in result.stderr  # the user did not ask for it
    )
    assert not (fresh / ".distillgen").exists()
    assert "Traceback" not in result.output


def test_verify_keys_figures_with_the_site_configs_defaults(tmp_path):
    # Reproduced bug: verify read the articles without distillgen.yml, so a site whose config
    # sets featurevis defaults had "not in the cache" for every such figure.
    src = write(tmp_path / "articles" / "distillgen.yml", "featurevis: {steps: 4, size: 32}\n").parent
    write(src / "a.md", "---\ntitle: A\n---\n\n```{featurevis} mixed3:2\nA caption.\n```\n")
    built = run_cli("build", str(src), "-o", str(tmp_path / "build"), "--device", "cpu", "-q")
    assert built.exit_code == 0, built.output
    code, report = verify_json(str(src), "--all")
    assert code == 0, report
    assert [(row["kind"], row["address"], row["verdict"]) for row in report["figures"]] == [
        ("featurevis", "mixed3:2", "ok"),
        ("faithfulness", "mixed3:2", "ok"),
    ]


SWAPS = """
---
title: Swaps
featurevis: {steps: 96, size: 32}
---

```{featurevis} mixed3.pool_proj:0-7
```
"""


def test_every_swap_of_a_small_layers_images_is_reported(tmp_path):
    src = write(tmp_path / "articles" / "swaps.md", SWAPS).parent
    built = run_cli("build", str(src), "-o", str(tmp_path / "build"), "--device", "cpu", "-q")
    assert built.exit_code == 0, built.output
    code, report = verify_json(str(src), "--all")
    assert code == 0, report  # recomputed alike: every image's profile is its own
    folders = {unit: entry(src, "featurevis", f"mixed3.pool_proj:{unit}") for unit in range(8)}
    images = {unit: (folder / "image0.png").read_bytes() for unit, folder in folders.items()}
    assert len(set(images.values())) == 8
    reported = set()
    for first in (0, 1):  # 8 swaps of neighbours, (0, 1) … (7, 0): four at a time, disjoint
        pairs = [(a % 8, (a + 1) % 8) for a in range(first, 8, 2)]
        for a, b in pairs:
            replace_file(folders[a], "image0.png", images[b])
            replace_file(folders[b], "image0.png", images[a])
        code, report = verify_json(str(src), "--all")
        assert code == 1
        drifted = {
            int(row["address"].split(":")[1])
            for row in report["figures"]
            if row["kind"] == "featurevis" and row["verdict"] == "drift"
        }
        reported |= {(a, b) for a, b in pairs if a in drifted or b in drifted}
        for unit, folder in folders.items():
            replace_file(folder, "image0.png", images[unit])
    assert reported == {(a, (a + 1) % 8) for a in range(8)}
