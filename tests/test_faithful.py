"""Faithful feature visualizations: the measures on a network whose optimum is known, checks
an author asks for (`:check:`), natural examples beside synthetic ones, and MACO."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli, write
from PIL import Image

from distillgen import datasets
from distillgen.diagnostics import Reporter
from distillgen.engine import faithfulness, maco
from distillgen.engine.featurevis import png_bytes, render
from distillgen.engine.models import load_model
from distillgen.faithful import default_probe, parse_checks
from distillgen.jobs import FaithfulnessJob, FeatureVisJob, FeatureVisSettings, describe
from distillgen.units import parse_spec
from distillgen.verify import article_figures

COLOUR_MODEL = """
import torch
from torch import nn


class Colour(nn.Module):
    # unit i of `colour` reads colour channel i: a fixed linear filter, whose optimum is known
    # (that channel at 1 everywhere); `stem` passes the image on, an earlier layer for the path
    input_size = 16

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 3, 1, bias=False)
        self.colour = nn.Conv2d(3, 3, 1, bias=False)
        with torch.no_grad():
            self.stem.weight.copy_(torch.eye(3)[:, :, None, None])
            self.colour.weight.copy_(torch.eye(3)[:, :, None, None])

    def forward(self, x):
        return self.colour(self.stem(x))


def build():
    return Colour()
"""


def colour_probe(folder: Path, count: int = 60) -> Path:
    """Flat-coloured images with blobs, no channel above 0.9: natural images that never
    reach a colour unit's optimum."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = np.ones((16, 16, 3)) * rng.uniform(0, 0.9, 3)
        y, x = rng.integers(0, 12, 2)
        pixels[y : y + 4, x : x + 4] = rng.uniform(0, 0.9, 3)
        Image.fromarray((pixels * 255).round().astype(np.uint8)).save(folder / f"{i:03}.png")
    return folder


@pytest.fixture(scope="module")
def colour(tmp_path_factory):
    root = tmp_path_factory.mktemp("colour")
    write(root / "model.py", COLOUR_MODEL)
    model = load_model(parse_spec("model.py:build", root))
    probe = datasets.dataset(str(colour_probe(root / "probe")), 1000, 0, root)
    settings = FeatureVisSettings(steps=96, size=16, lr=0.1, fft=False, decorrelate=False, transforms="none")
    jobs = [FeatureVisJob("colour", "f", "colour", unit, settings=settings) for unit in range(3)]
    images = [png_bytes(r.images[0]) for r in render(model, jobs, torch.device("cpu"))]
    return model, probe, jobs, images


def measured(model, probe, job: FeatureVisJob, png: bytes, unit: int | None = None):
    """The measures of `png` as an image of `job`'s unit (or of `unit`)."""
    job = FeatureVisJob(
        job.model, job.fingerprint, job.layer, job.unit if unit is None else unit, settings=job.settings
    )
    path = faithfulness.path_layers(model, job.layer)
    measures = FaithfulnessJob.of(job, probe)
    passed = faithfulness.probe_pass(model, job.layer, path, probe, False, torch.device("cpu"))
    pixels = faithfulness._pixels(png)[None]
    return faithfulness.measure(model, measures, passed, path, pixels, torch.device("cpu"))


def test_a_fixed_linear_filters_image_ranks_its_unit_first_and_beats_every_natural_image(colour):
    model, probe, jobs, images = colour
    for job, png in zip(jobs, images, strict=True):
        result = measured(model, probe, job, png)
        assert result.units == 3 and result.probe_size == 60
        assert result.specificity == (1,)
        assert result.natural_ratio[0] > 1.05  # its channel near 1; no probe image's above 0.9
        assert result.path_layers == ("stem",)


def test_an_image_made_for_another_unit_ranks_it_lower(colour):
    model, probe, jobs, images = colour
    for unit in range(3):
        other = images[(unit + 1) % 3]
        result = measured(model, probe, jobs[unit], other, unit=unit)
        assert result.specificity[0] > 1
        assert result.natural_ratio[0] < measured(model, probe, jobs[unit], images[unit]).natural_ratio[0]


def test_a_units_strongest_probe_image_is_its_natural_ratio_of_one_and_follows_its_path():
    model = load_model("shapes")
    probe = default_probe()
    job = FeatureVisJob("shapes", "f", "mixed4", 3, settings=FeatureVisSettings(steps=1))
    path = faithfulness.path_layers(model, "mixed4")
    assert path == ["conv1", "conv2", "mixed3"]
    passed = faithfulness.probe_pass(model, "mixed4", path, probe, False, torch.device("cpu"))
    strongest = int(np.argmax(passed.activations[:, 3]))
    image = datasets.images(probe, model.input_size)[strongest : strongest + 1]
    result = faithfulness.measure(
        model, FaithfulnessJob.of(job, probe), passed, path, image, torch.device("cpu")
    )
    assert result.strongest_image == strongest and result.natural_ratio == (1.0,)
    # one of the unit's own top examples: its path is theirs, far above random probe images'
    assert result.path_similarity(0) > result.baseline + 0.2


def test_checks_parse_as_written_and_say_what_is_valid():
    (specific,) = parse_checks("specific")
    assert (specific.measure, specific.op, specific.bound) == ("specificity", "<=", 1.0)
    checks = parse_checks("specificity <= 3, natural-ratio >= 1.5, path > baseline")
    assert [(c.measure, c.op, c.bound) for c in checks] == [
        ("specificity", "<=", 3.0),
        ("natural-ratio", ">=", 1.5),
        ("path", ">", None),
    ]
    assert parse_checks("none") == ()
    with pytest.raises(ValueError, match="'specifc' is not a check; write one of: specific"):
        parse_checks("specifc")
    with pytest.raises(ValueError, match="only the path is compared with its baseline"):
        parse_checks("natural-ratio > baseline")


# -- through a build -------------------------------------------------------------------------

CHECKED = """
---
title: Checked
featurevis: {steps: 160, size: 16, lr: 0.1, fft: false, decorrelate: false, transforms: none}
model: model.py:build
---

```{featurevis} colour:0-2
:check: specific
:dataset: probe
:examples: 3
```
"""
CHECK_LINE = 7


@pytest.fixture(scope="module")
def checked_site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("checked")
    src = write(root / "src" / "a.md", CHECKED).parent
    write(src / "model.py", COLOUR_MODEL)
    colour_probe(src / "probe")
    result = run_cli("build", str(src), "-o", str(root / "out"), "--device", "cpu", "-q", "--strict")
    assert result.exit_code == 0, result.output
    return src


def featurevis_entries(src: Path) -> dict[int, Path]:
    figures, _ = article_figures(src, Reporter(), log=lambda message: None)
    return {f.job.unit: f.artifact.folder for f in figures if f.kind == "featurevis"}


def replace_image(folder: Path, data: bytes) -> None:
    """Another image in a cache entry, with its checksum: as a cache committed from elsewhere."""
    (folder / "image0.png").write_bytes(data)
    record = json.loads((folder / "record.json").read_text())
    record["files"]["image0.png"] = hashlib.sha256(data).hexdigest()
    (folder / "record.json").write_text(json.dumps(record))


def test_measures_are_in_the_records_cards_and_unit_pages(checked_site: Path):
    out = checked_site.parent / "out"
    records = json.loads((out / "a" / "figures.json").read_text())["figures"]
    measures = [r for r in records if r["job"]["kind"] == "faithfulness"]
    images = {r["key"]: r for r in records if r["job"]["kind"] == "featurevis"}
    assert len(measures) == 3
    for record in measures:
        assert record["job"]["image"] in images  # names the image it measured
        assert record["result"]["specificity"] == [1] and record["result"]["natural_ratio"][0] > 1
    page = (out / "a" / "index.html").read_text()
    assert page.count('class="unit-card-measures"') == 3 and "specificity 1 of 3" in page
    assert "Every image meets specific." in page
    assert page.count('class="natural-row"') == 3  # :examples: 3 under each image
    (unit_page,) = out.glob("units/*/colour/0.html")
    html = unit_page.read_text()
    assert "Measured on 60 images of probe: specificity 1 of 3 units" in html
    assert "The 4 of 60 probe images that excite it most" in html


def test_check_specific_fails_another_units_image_with_a_warning_and_an_error_under_strict(
    checked_site: Path, tmp_path: Path
):
    # last of the module's tests on `checked_site`: it tampers with its cache (a copy of the
    # site would key its figures anew: its probe folder's path is part of their keys)
    src = checked_site
    entries = featurevis_entries(src)
    replace_image(entries[0], (entries[1] / "image0.png").read_bytes())
    # the image's measures are keyed by its job: recompute them for the new image
    for folder in (src / ".distillgen" / "cache" / "objects").glob("*/*"):
        if json.loads((folder / "record.json").read_text())["job"]["kind"] == "faithfulness":
            shutil.rmtree(folder)
    (src / ".distillgen" / "cache" / "index.json").unlink(missing_ok=True)
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    message = f"a.md:{CHECK_LINE}: warning: the feature visualization of colour:0 fails ':check: specific'"
    assert message in result.stderr and re.search(r"its specificity is [23] of 3 units", result.stderr)
    assert result.stderr.count("fails ':check: specific'") == 1  # the others' own images pass
    page = (tmp_path / "out" / "a" / "index.html").read_text()
    assert "1 image of 3 fail specific (outlined)." in page and page.count("check-failed") == 1
    strict = run_cli("build", str(src), "-o", str(tmp_path / "out2"), "--device", "cpu", "-q", "--strict")
    assert strict.exit_code == 1 and message.replace("warning", "error") in strict.stderr
    assert "Traceback" not in strict.output


def test_a_check_for_the_whole_site_and_mistakes_in_one(tmp_path: Path):
    src = write(tmp_path / "src" / "distillgen.yml", "featurevis: {check: 'natural-ratio >= 5'}\n").parent
    write(src / "model.py", COLOUR_MODEL)
    colour_probe(src / "probe")
    write(src / "a.md", CHECKED.replace(":check: specific\n", ""))
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("fails ':check: natural-ratio >= 5': its natural ratio is 1.") == 3
    write(src / "b.md", "---\ntitle: B\n---\n\n```{featurevis} mixed3:0\n:check: specifc\n```\n")
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--device", "cpu", "-q")
    assert result.exit_code == 1
    assert "b.md:6: error: bad value for ':check:' in {featurevis}: 'specifc' is not a check" in result.stderr
    write(src / "distillgen.yml", "featurevis: {check: 'natural-ratio > baseline'}\n")
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--device", "cpu", "-q")
    assert result.exit_code == 1
    assert "distillgen.yml:1: error: bad value for 'featurevis.check'" in result.stderr
    assert "Traceback" not in result.output


# -- MACO ------------------------------------------------------------------------------------


def test_maco_is_keyed_apart_from_lucent_and_lucents_keys_are_as_before():
    lucent = FeatureVisJob("shapes", "f", "mixed4", 0)
    maco = FeatureVisJob(
        "shapes", "f", "mixed4", 0, settings=FeatureVisSettings(param="maco"), spectrum=default_probe()
    )
    assert "param" not in describe(lucent)["settings"] and "spectrum" not in describe(lucent)
    assert describe(maco)["settings"]["param"] == "maco" and maco.key != lucent.key
    (spectrum,) = maco.inputs()
    assert spectrum.kind == "spectrum" and spectrum.dataset == default_probe() and spectrum.side == 64
    assert lucent.inputs() == ()


def test_maco_is_deterministic_and_reaches_most_of_lucents_activation_on_mixed4():
    model = load_model("shapes")
    probe = default_probe()
    magnitude = maco.spectrum(datasets.images(probe, 64), 64)
    buffer = io.BytesIO()
    np.save(buffer, magnitude)
    carried = base64.b64encode(buffer.getvalue()).decode()

    def jobs(param: str) -> list[FeatureVisJob]:
        settings = FeatureVisSettings(steps=128, size=64, param=param)  # 0.92 of lucent here; 0.85 at 512
        spectrum = probe if param == "maco" else None
        return [
            FeatureVisJob(
                "shapes", "f", "mixed4", unit, settings=settings, spectrum=spectrum, magnitude=carried
            )
            for unit in range(8)
        ]

    lucent = render(model, jobs("lucent"), torch.device("cpu"))
    first = render(model, jobs("maco"), torch.device("cpu"))
    again = render(model, jobs("maco")[:3], torch.device("cpu"))  # fewer jobs in the batch
    for a, b in zip(first, again, strict=False):
        assert np.array_equal(a.images[0], b.images[0])
    reached = [m.values[0] / lu.values[0] for m, lu in zip(first, lucent, strict=True)]
    assert np.mean(reached) >= 0.8, reached


def test_an_articles_probe_set_outside_the_project_or_missing_is_an_error_at_its_line(tmp_path: Path):
    src = write(
        tmp_path / "src" / "a.md",
        "---\ntitle: A\nfeaturevis: {dataset: ../../etc}\n---\n\n```{featurevis} mixed3:0\n```\n",
    ).parent
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--device", "cpu", "-q")
    assert result.exit_code == 1
    assert "a.md:3: error: 'featurevis.dataset': '../../etc' resolves to" in result.stderr
    write(
        src / "a.md", "---\ntitle: A\nfeaturevis: {dataset: nowhere}\n---\n\n```{featurevis} mixed3:0\n```\n"
    )
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--device", "cpu", "-q")
    assert (
        result.exit_code == 1
        and "a.md:3: error: 'featurevis.dataset': dataset folder not found" in result.stderr
    )
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_a_probe_pass_holds_the_maps_of_as_many_images_as_its_budget_allows_and_reads_the_same(monkeypatch):
    """At 256 probe images a pass, InceptionV1's path to mixed3a held 5.5 GB: a pass takes as
    many images as its budget holds the maps of, and each image reads the same (to the float
    rounding a convolution's batch size may change)."""
    shapes = load_model("shapes")
    images = np.random.default_rng(0).random((40, 3, 64, 64), dtype=np.float32)
    wanted = {("mixed3", False), ("mixed3", True), ("conv2", False)}
    whole = faithfulness._readings(shapes, wanted, images, torch.device("cpu"))
    assert faithfulness._batch(shapes) == faithfulness.BATCH

    one_image = faithfulness._image_bytes(shapes)
    monkeypatch.setattr(faithfulness, "PASS_BYTES", int(8.5 * one_image))
    passes = []
    hook = shapes.module.register_forward_pre_hook(lambda module, args: passes.append(len(args[0])))
    try:
        parts = faithfulness._readings(shapes, wanted, images, torch.device("cpu"))
    finally:
        hook.remove()
    assert passes == [8] * 5
    for key, rows in whole.items():
        np.testing.assert_allclose(parts[key], rows, rtol=1e-5, atol=1e-5)
