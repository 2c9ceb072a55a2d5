"""Dataset examples: the probe images with a unit's highest (or lowest) peak response, each
with the crop of its receptive field around the position of the peak.

A generator's sample is ranked here, one pass per layer; a folder's ranking comes with the job
(`job.ranked`, from its layer's ranking pass, engine/ranking.py), and only the images it shows
are read again."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import numpy as np
import torch

from distillgen import datasets
from distillgen.engine import Output
from distillgen.engine.featurevis import png_bytes
from distillgen.engine.models import LoadedModel
from distillgen.engine.probe import unit_maps
from distillgen.engine.tuning import _pixels
from distillgen.engine.weights import receptive_field
from distillgen.jobs import Dataset, Example, ExamplesJob, ExamplesResult, Ranked


def compute(
    model: LoadedModel, jobs: list[ExamplesJob], device: torch.device, progress, load
) -> list[Output]:
    size = model.input_size
    groups: dict[tuple, list[int]] = {}
    for index, job in enumerate(jobs):  # one pass over a sample per layer and dataset
        groups.setdefault((job.layer, job.dataset), []).append(index)
    # each sample drawn once for all its layers (a large one is not kept for the process),
    # one sample held at a time: the groups of a dataset come one after another
    drawn = functools.lru_cache(maxsize=1)(lambda dataset: datasets.images(dataset, size))
    outputs: dict[int, Output] = {}
    for (layer, dataset), indices in sorted(groups.items(), key=lambda group: repr(group[0][1])):
        start = time.perf_counter()
        side = receptive_field(model, layer)
        if dataset.folder:  # ranked already: read the images shown, each once
            image = _folder_images(dataset, size)
            ranked = {i: _given(jobs[i]) for i in indices}
        else:
            images = drawn(dataset)
            units = sorted({jobs[i].unit for i in indices})
            maps = unit_maps(model, layer, units, images, device)
            ranked = {
                i: _ranked(maps[:, units.index(jobs[i].unit)], jobs[i].top, jobs[i].negative) for i in indices
            }
            image = images.__getitem__
        seconds = (time.perf_counter() - start) / len(indices)
        for index in indices:
            outputs[index] = _examples(ranked[index], image, size, side, seconds)
            progress(1)
    return [outputs[i] for i in range(len(jobs))]


def _folder_images(dataset: Dataset, size: int) -> Callable[[int], np.ndarray]:
    """A folder's image by its index in the probe set, each read once per layer (the units of
    a layer share many of their strongest images)."""
    files, _labels = datasets.probe_files(dataset)
    return functools.lru_cache(maxsize=256)(lambda index: datasets.load_image(files[index], size))


def _ranked(unit_map: torch.Tensor, top: int, negative: bool) -> Ranked:
    """A unit's `top` images by peak response (ties: the earlier image), from its maps."""
    if unit_map.dim() == 1:  # a linear layer: no position, the whole image is the crop
        unit_map = unit_map[:, None, None]
    values, where = unit_map.flatten(1).max(dim=1)
    order = np.argsort(values.numpy() if negative else -values.numpy(), kind="stable")[:top]
    return Ranked(
        images=tuple(int(i) for i in order),
        values=tuple(float(values[i]) for i in order),
        positions=tuple(int(where[i]) for i in order),
        grid=(unit_map.shape[1], unit_map.shape[2]),
        probe_size=len(unit_map),
    )


def _given(job: ExamplesJob) -> Ranked:
    assert job.ranked is not None, "a folder's examples are prepared with its ranking (compute.py)"
    return job.ranked


def _examples(
    ranked: Ranked, image: Callable[[int], np.ndarray], size: int, side: int, seconds: float
) -> Output:
    rows, cols = ranked.grid
    files, items = {}, []
    for rank, (image_index, value, position) in enumerate(
        zip(ranked.images, ranked.values, ranked.positions, strict=True)
    ):
        row, col = divmod(position, cols)
        cy, cx = (row + 0.5) * size / rows, (col + 0.5) * size / cols
        half = min(side, size) / 2
        x0 = int(round(min(max(cx - half, 0), size - 2 * half)))
        y0 = int(round(min(max(cy - half, 0), size - 2 * half)))
        x1, y1 = x0 + int(2 * half), y0 + int(2 * half)
        pixels = _pixels(image(image_index))
        files[f"example{rank}.png"] = png_bytes(pixels)
        files[f"crop{rank}.png"] = png_bytes(pixels[y0:y1, x0:x1])
        items.append(
            Example(
                index=image_index,
                value=round(value, 6),
                box=(x0, y0, x1, y1),
                image=f"example{rank}.png",
                crop=f"crop{rank}.png",
            )
        )
    result = ExamplesResult(tuple(items), probe_size=ranked.probe_size, image_size=size, receptive_field=side)
    return Output(files, result, {"seconds": round(seconds, 3)})
