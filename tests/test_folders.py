"""Real-size image folders: a folder is read in one streamed pass per model that ranks every
unit of every layer asked for (engine/ranking.py), in memory that does not grow with the
folder; the pass is cached and resumable, and files that do not decode are left out with one
warning."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from distillgen import datasets
from distillgen.engine import ranking, stream
from distillgen.engine.models import load_model
from distillgen.engine.probe import responses
from distillgen.jobs import RankingJob
from distillgen.units import fingerprint, parse_spec
from tests.conftest import run_cli, write

IMAGES = 2000
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """2,000 drawings as JPEGs in class folders (some nested a level deeper), and one JPEG cut
    short: its header reads, its pixels do not."""
    from PIL import Image

    from distillgen.zoo.shapes_data import shapes_batch

    folder = tmp_path_factory.mktemp("folders") / "src" / "photos"
    pictures, labels = shapes_batch(IMAGES, seed=5, size=64)
    for index, (picture, label) in enumerate(zip(pictures, labels, strict=True)):
        place = folder / f"class{label}" / ("deeper" if index % 3 == 0 else "")
        place.mkdir(parents=True, exist_ok=True)
        pixels = (picture.transpose(1, 2, 0) * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(place / f"{index:04d}.jpg", quality=90)
    whole = (folder / "class0" / "broken.jpg").parent.glob("*.jpg").__next__().read_bytes()
    (folder / "class0" / "broken.jpg").write_bytes(whole[: len(whole) // 2])
    return folder


def _article(photos: Path, units: list[str]) -> Path:
    figures = "".join(
        f"```{{examples}} {unit}\n:dataset: photos\n:count: {IMAGES + 1}\n:top: 4\n:negative:\nA caption.\n```\n\n"
        for unit in units
    )
    return write(photos.parent / "a.md", f"---\ntitle: Photos\n---\n\n{figures}").parent


def _build(src: Path, *extra: str):
    out, cache = src.parent / "out", src.parent / "cache"
    return run_cli("build", str(src), "-o", str(out), "--cache-dir", str(cache), "--verbose", *extra)


def _plain_ranking(photos: Path, layer: str, unit: int) -> tuple[list[int], list[float]]:
    """A plain loop: every file of the probe set decoded in order, the model run on each batch,
    the unit's peak response per image; the top four by a stable sort."""
    data = datasets.dataset("photos", IMAGES + 1, 0, photos.parent)
    files, _labels = datasets.probe_files(data)
    kept, images = [], []
    for index, path in enumerate(files):
        try:
            images.append(datasets.load_image(path, 64))
            kept.append(index)
        except OSError:
            pass
    scores = responses(load_model("shapes"), layer, [unit], np.stack(images), CPU)[:, 0]
    order = np.argsort(-scores, kind="stable")[:4]
    return [kept[i] for i in order], [float(scores[i]) for i in order]


def test_a_folder_is_ranked_in_one_pass_like_a_plain_loop_and_read_once(photos, monkeypatch):
    src = _article(photos, ["mixed4:52", "mixed3:5"])
    result = _build(src)
    assert result.exit_code == 0, result.output
    # one pass for both layers, one warning for the file that does not decode
    assert result.stderr.count("computed shapes: ranking of 2 layers") == 1, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "could not be decoded" in line]
    assert warnings == [
        f"{src / 'a.md'}:5: warning: 1 image file in the probe folder could not be decoded and was "
        "left out: class0/broken.jpg"
    ]
    figures = json.loads((src.parent / "out" / "a" / "figures.json").read_text())["figures"]
    examples = [f["result"] for f in figures if f["job"]["kind"] == "examples"]
    assert all(e["probe_size"] == IMAGES for e in examples)
    for figure, (layer, unit) in zip(examples[::2], [("mixed4", 52), ("mixed3", 5)], strict=True):
        indices, values = _plain_ranking(photos, layer, unit)
        assert [e["index"] for e in figure["examples"]] == indices
        assert [e["value"] for e in figure["examples"]] == pytest.approx(values, abs=1e-4)

    # a rebuild reads no image, and its cache pruned keeps the ranking the examples were made of
    decoded: list[Path] = []
    load_image = datasets.load_image
    monkeypatch.setattr(
        datasets, "load_image", lambda path, size: decoded.append(path) or load_image(path, size)
    )
    rebuilt = _build(src, "--prune-cache")
    assert rebuilt.exit_code == 0 and decoded == [] and "(0 computed)" in rebuilt.stderr

    # verify recomputes the ranking (checked in its own right) and the examples from it
    checked = run_cli("verify", str(src), "--cache-dir", str(src.parent / "cache"), "--json")
    assert checked.exit_code == 0, checked.output
    verdicts = {
        (row["kind"], row["address"]): row["verdict"] for row in json.loads(checked.stdout)["figures"]
    }
    assert verdicts[("ranking", "mixed4 over photos")] == verdicts[("examples", "mixed4:52")] == "ok"

    # a unit added to a layer already ranked reads its examples only
    decoded.clear()
    result = _build(_article(photos, ["mixed4:52", "mixed3:5", "mixed4:7"]))
    assert result.exit_code == 0, result.output
    assert "ranking" not in result.stderr and len(decoded) <= 8, result.stderr  # four top, four bottom

    # a ranking removed by hand: verify says which, and where
    cache = src.parent / "cache"
    for record in cache.glob("objects/*/*/record.json"):
        if json.loads(record.read_text())["job"]["kind"] == "ranking":
            shutil.rmtree(record.parent)
    checked = run_cli("verify", str(src), "--cache-dir", str(cache))
    assert checked.exit_code == 1 and "Traceback" not in checked.output
    said = re.findall(
        f"{re.escape(str(src / 'a.md'))}:\\d+: error: examples (\\S+) was computed from the ranking "
        r"(\w+) over photos, which is missing from the cache or damaged; remove (\S+) and build the "
        "site to compute both again",
        checked.stderr,
    )
    assert ("mixed4:52", "mixed4") in {found[:2] for found in said}, checked.stderr
    for *_, folder in said:  # as the messages say
        shutil.rmtree(folder)
    assert _build(src).exit_code == 0
    assert run_cli("verify", str(src), "--cache-dir", str(cache)).exit_code == 0


def _ranking_jobs(photos: Path, count: int, scratch: Path) -> list[RankingJob]:
    data = datasets.dataset("photos", count, 0, photos.parent)
    spec = parse_spec("shapes")
    return [
        RankingJob(str(spec), fingerprint(spec), layer, data, resume=str(scratch))
        for layer in ("mixed3", "mixed4")
    ]


def test_an_interrupted_pass_resumes_where_it_stopped(photos, tmp_path, monkeypatch):
    model = load_model("shapes")
    jobs = _ranking_jobs(photos, IMAGES, tmp_path)
    whole = ranking.compute(model, jobs, CPU, lambda steps: None, None)
    monkeypatch.setattr(ranking, "CHECKPOINT_SECONDS", 0.0)  # a checkpoint after every batch
    monkeypatch.setattr(stream, "WORKERS", 0)  # decoded here, where the test counts them
    seen = [0]

    def interrupt(steps: int) -> None:
        seen[0] += steps
        if seen[0] >= IMAGES:  # half the folder, for each of the two layers
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ranking.compute(model, jobs, CPU, interrupt, None)
    assert len(list(tmp_path.glob("ranking-*.pt"))) == 1
    decoded: list[Path] = []
    load_image = datasets.load_image
    monkeypatch.setattr(
        datasets, "load_image", lambda path, size: decoded.append(path) or load_image(path, size)
    )
    resumed = ranking.compute(model, jobs, CPU, lambda steps: None, None)
    assert IMAGES // 2 - ranking.BATCH <= len(decoded) <= IMAGES // 2 + ranking.BATCH
    assert [o.files for o in resumed] == [o.files for o in whole]
    assert [o.result for o in resumed] == [o.result for o in whole]
    assert not list(tmp_path.glob("ranking-*.pt")), "a finished pass leaves no checkpoint"


_PEAK_MEMORY = textwrap.dedent(
    """
    import sys, torch
    from pathlib import Path
    from distillgen import datasets
    from distillgen.engine import ranking
    from distillgen.engine.models import load_model
    from distillgen.jobs import RankingJob
    from distillgen.units import fingerprint, parse_spec

    def status(field):  # kB
        return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field))

    torch.set_num_threads(1)
    spec = parse_spec("shapes")
    data = datasets.dataset("photos", int(sys.argv[2]), 0, Path(sys.argv[1]))
    jobs = [RankingJob(str(spec), fingerprint(spec), layer, data) for layer in ("mixed3", "mixed4")]
    model = load_model("shapes")
    open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) from here on
    before = status("VmRSS")
    ranking.compute(model, jobs, torch.device("cpu"), lambda steps: None, None)
    print((status("VmHWM") - before) / 1024)
    """
)


def test_a_pass_takes_the_same_memory_for_a_folder_four_times_the_size(photos):
    """Holding the probe set would take 2,000 × 3 × 64 × 64 floats (94 MiB) against 500's
    (23 MiB); the stream holds a few batches, whatever the folder's size. Measured: the peak's
    growth during the pass, 30 MiB for either (loading 500 images whole: 179 MiB). Each size
    is measured twice and the smaller kept: on a busy machine one pass of the larger folder once
    peaked 28 MiB higher, and both passes of it another time 22 MiB higher, while the suite's
    other worker was busy (not understood; not seen on a quiet machine). So the difference allowed is half
    of what holding the 1,500 more images would add (70 MiB), which a pass that held them shows
    every time."""
    growth = []
    for count in (500, IMAGES):
        peaks = []
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-c", _PEAK_MEMORY, str(photos.parent), str(count)],
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            )
            peaks.append(float(done.stdout.split()[-1]))  # MiB
        growth.append(min(peaks))
    assert growth[1] - growth[0] < 35 and growth[1] < 90, growth


def test_a_dictionary_trains_on_a_streamed_folder_and_skips_what_does_not_decode(photos):
    """Its images are streamed, never held: only their maps, the training sample; the file cut
    short is left out and the classes stay with their images."""
    src = write(
        photos.parent / "d.md",
        "---\ntitle: Features\ndictionaries:\n"
        f"  d4: {{layer: mixed4, features: 16, k: 2, steps: 20, count: {IMAGES + 1}, dataset: photos}}\n"
        "---\n\n```{dictionary} d4\nA caption.\n```\n",
    ).parent
    result = _build(src)
    assert result.exit_code == 0, result.output
    record = json.loads((src.parent / "out" / "d" / "figures.json").read_text())["figures"][0]
    assert record["result"]["samples"] == IMAGES * 8 * 8  # every position of every decoded image
    assert record["result"]["classes"] == [f"class{label}" for label in range(5)]
    assert len(record["result"]["neuron_purity"]) == 96


def test_executors_never_split_a_folders_pass(photos, tmp_path):
    """Ray's tasks and the in-process pieces keep a folder's rankings together: one pass over
    the folder for all its layers, however costly; two folders are two passes."""
    from distillgen.batches import Batch
    from distillgen.compute import Need
    from distillgen.executors import pieces, split

    jobs = _ranking_jobs(photos, IMAGES, tmp_path) + _ranking_jobs(photos, 500, tmp_path)
    batch = Batch("shapes", "ranking", [Need(job, None, None) for job in jobs])
    for parts in (split([batch], workers=8), pieces(batch, most=1)):
        assert sorted(len(part.jobs) for part in parts) == [2, 2]
        assert all(len({job.dataset for job in part.jobs}) == 1 for part in parts)


def test_an_ablation_on_more_images_than_a_ranking_keeps_asks_for_a_deeper_one(photos, tmp_path):
    from distillgen.jobs import RANKED, AblationJob, ExamplesJob

    (ranking,) = _ranking_jobs(photos, IMAGES, tmp_path)[:1]
    data = ranking.dataset
    examples = ExamplesJob(ranking.model, ranking.fingerprint, "mixed4", 1, data, top=64)
    ablation = AblationJob(ranking.model, ranking.fingerprint, "mixed4", 1, (), "examples", data, top=200)
    assert examples.inputs()[0].top == RANKED and ablation.inputs()[0].top == 200
