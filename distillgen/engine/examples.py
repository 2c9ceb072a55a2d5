"""Dataset examples: the probe images with a unit's highest (or lowest) peak response, each
with the crop of its receptive field around the position of the peak."""

from __future__ import annotations

import time

import numpy as np
import torch

from distillgen import datasets
from distillgen.engine import Output
from distillgen.engine.featurevis import png_bytes
from distillgen.engine.models import LoadedModel
from distillgen.engine.probe import unit_maps
from distillgen.engine.tuning import _pixels
from distillgen.engine.weights import receptive_field
from distillgen.jobs import Example, ExamplesJob, ExamplesResult


def compute(
    model: LoadedModel, jobs: list[ExamplesJob], device: torch.device, progress, load
) -> list[Output]:
    groups: dict[tuple, list[int]] = {}
    for index, job in enumerate(jobs):  # one pass over the probe set per layer and dataset
        groups.setdefault((job.layer, job.dataset), []).append(index)
    outputs: dict[int, Output] = {}
    for (layer, dataset), indices in groups.items():
        start = time.perf_counter()
        images = datasets.images(dataset, model.input_size)
        units = sorted({jobs[i].unit for i in indices})
        maps = unit_maps(model, layer, units, images, device)
        side = receptive_field(model, layer)
        seconds = (time.perf_counter() - start) / len(indices)
        for index in indices:
            job = jobs[index]
            unit_map = maps[:, units.index(job.unit)]
            outputs[index] = _examples(job, images, unit_map, side, seconds)
            progress(1)
    return [outputs[i] for i in range(len(jobs))]


def _examples(
    job: ExamplesJob, images: np.ndarray, unit_map: torch.Tensor, side: int, seconds: float
) -> Output:
    size = images.shape[-1]
    if unit_map.dim() == 1:  # a linear layer: no position, the whole image is the crop
        unit_map = unit_map[:, None, None]
    flat = unit_map.flatten(1)
    values, where = flat.max(dim=1)
    order = np.argsort(values.numpy() if job.negative else -values.numpy(), kind="stable")[: job.top]
    files, items = {}, []
    for rank, image_index in enumerate(order):
        row, col = divmod(int(where[image_index]), unit_map.shape[2])
        cy, cx = (row + 0.5) * size / unit_map.shape[1], (col + 0.5) * size / unit_map.shape[2]
        half = min(side, size) / 2
        x0 = int(round(min(max(cx - half, 0), size - 2 * half)))
        y0 = int(round(min(max(cy - half, 0), size - 2 * half)))
        x1, y1 = x0 + int(2 * half), y0 + int(2 * half)
        pixels = _pixels(images[image_index])
        files[f"example{rank}.png"] = png_bytes(pixels)
        files[f"crop{rank}.png"] = png_bytes(pixels[y0:y1, x0:x1])
        items.append(
            Example(
                index=int(image_index),
                value=round(float(values[image_index]), 6),
                box=(x0, y0, x1, y1),
                image=f"example{rank}.png",
                crop=f"crop{rank}.png",
            )
        )
    result = ExamplesResult(tuple(items), probe_size=len(images), image_size=size, receptive_field=side)
    return Output(files, result, {"seconds": round(seconds, 3)})
