"""Universality: match the units of a layer in one model to a layer in another by the
correlation of their activations over a probe set, and the same against a baseline. Each unit
gets its best match (several may share one) and its partner in the best one-to-one matching.

When the two layers have maps of the same size, every position of every image is a sample
(as in Li et al., "Convergent learning", 2016): a match must agree on *where* as well as on
which images. Otherwise each image's peak response is one sample. The layers may have
different names and shapes (other architectures, other tasks); each model sees the same probe
images, resized to its own input size.

Beside the matching, each unit of the first layer is measured against a trivial predictor: the
Pearson correlation over the probe of its per-image peak response with the image's ink density
(`ink_density`), so a reader can tell a high best-match r from two units that both just track
how dark an image is.
"""

from __future__ import annotations

import io
import time

import numpy as np
import torch

from distillgen import datasets
from distillgen.engine import Output
from distillgen.engine.models import LoadedModel
from distillgen.engine.probe import map_batches, peak
from distillgen.jobs import UniversalityJob, UniversalityResult


def compute(
    model: LoadedModel, jobs: list[UniversalityJob], device: torch.device, progress, load
) -> list[Output]:
    outputs = []
    for job in jobs:
        start = time.perf_counter()
        second = load(job.other)
        images = datasets.images(job.dataset, model.input_size)
        theirs = resized(images, second.input_size)
        by_position = model.layers[job.layer].shape[1:] == second.layers[job.other_layer].shape[1:]
        mine, peaks = _samples(model, job.layer, images, device, by_position)
        other, _ = _samples(second, job.other_layer, theirs, device, by_position)
        if job.baseline == "untrained":
            base, _ = _samples(load(job.baseline_model), job.other_layer, theirs, device, by_position)
        else:  # the other model on the images in another order: any match is chance
            order = np.random.default_rng(job.dataset.seed).permutation(len(images))
            base, _ = _samples(second, job.other_layer, theirs[order], device, by_position)
        matrix, baseline = correlations(mine, other), correlations(mine, base)
        files = {"correlations.npy": _npy(matrix), "baseline.npy": _npy(baseline)}
        best = matrix.argmax(axis=1)
        paired = one_to_one(matrix)
        result = UniversalityResult(
            best_unit=tuple(int(b) for b in best),
            best_r=tuple(round(float(matrix[a, b]), 6) for a, b in enumerate(best)),
            baseline_best_r=tuple(round(float(r), 6) for r in baseline.max(axis=1)),
            one_to_one_unit=tuple(int(b) for b in paired),
            one_to_one_r=_matched(matrix, paired),
            baseline_one_to_one_r=_matched(baseline, one_to_one(baseline)),
            ink_r=ink_correlations(peaks, ink_density(images)),
            probe_size=len(images),
            samples="positions" if by_position else "peaks",
        )
        outputs.append(Output(files, result, {"seconds": round(time.perf_counter() - start, 3)}))
        progress(1)
    return outputs


def resized(images: np.ndarray, size: int) -> np.ndarray:
    """The same images at `size`×`size` (antialiased bilinear), for a model of another input size."""
    if images.shape[-1] == size:
        return images
    pixels = torch.nn.functional.interpolate(
        torch.from_numpy(images), size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return pixels.clamp(0, 1).numpy()


def ink_density(images: np.ndarray) -> np.ndarray:
    """[N] float64: each image's ink density, the mean over its pixels and channels of
    (1 − value) for RGB values in [0, 1], i.e. its mean darkness: 0 for a blank white image, 1
    for an all-black one. For a drawing in dark ink on a light ground it is how much ink the
    image holds; on the generated probe sets, whose grounds are of random colours, it is mostly
    how dark the ground is. Either way a statistic any network could track."""
    return 1.0 - images.astype(np.float64).mean(axis=(1, 2, 3))


def ink_correlations(peaks: np.ndarray, ink: np.ndarray) -> tuple[float | None, ...]:
    """Per unit (a column of `peaks` [N, units], each image's peak response): the Pearson
    correlation of its responses with the images' ink density [N]; None for a unit whose
    response never varies over the probe (or for every unit, when the ink density does not)."""
    flat = np.ptp(peaks, axis=0) == 0
    if np.ptp(ink) == 0:
        return (None,) * peaks.shape[1]
    r = correlations(peaks, ink[:, None])[:, 0]
    return tuple(None if dead else round(float(x), 6) for x, dead in zip(r, flat, strict=True))


def one_to_one(matrix: np.ndarray) -> np.ndarray:
    """For each row, its column in the assignment that maximizes the summed correlation with
    every column used at most once (Hungarian algorithm); -1 for rows left over."""
    from scipy.optimize import linear_sum_assignment

    rows, columns = linear_sum_assignment(matrix, maximize=True)
    paired = np.full(matrix.shape[0], -1)
    paired[rows] = columns
    return paired


def _matched(matrix: np.ndarray, paired: np.ndarray) -> tuple[float | None, ...]:
    return tuple(round(float(matrix[a, b]), 6) if b >= 0 else None for a, b in enumerate(paired))


MAX_SAMPLES = 65_536  # rows of the sample matrix per model: bounds memory on large layers


def _samples(
    model: LoadedModel, layer: str, images: np.ndarray, device, by_position: bool
) -> tuple[np.ndarray, np.ndarray]:
    """[samples, units]: every image's peak, or positions of every image; and [images, units]:
    every image's peak (the same array when the samples are peaks), from one pass. When images
    × positions exceed MAX_SAMPLES, the same fixed subset of positions is taken in every image
    (and in both models, whose maps have the same size), so the samples still pair up."""
    units = list(range(model.layers[layer].channels))
    batches = map_batches(model, layer, units, images, device)
    if not by_position or len(model.layers[layer].shape) == 1:
        peaks = torch.cat([peak(maps) for maps in batches]).double().numpy()
        return peaks, peaks
    _, height, width = model.layers[layer].shape
    keep = max(1, MAX_SAMPLES // len(images))
    positions = torch.from_numpy(np.sort(np.random.default_rng(0).permutation(height * width)[:keep]))
    rows, maxima = [], []
    for maps in batches:
        rows.append(maps.flatten(2)[:, :, positions].permute(0, 2, 1).reshape(-1, len(units)))
        maxima.append(peak(maps))
    return torch.cat(rows).double().numpy(), torch.cat(maxima).double().numpy()


def correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of `a` [N, A] with every column of `b` [N, B]; a
    unit that never varies (a dead unit) correlates 0 with everything."""
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    na, nb = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        matrix = (a.T @ b) / np.outer(na, nb)
    return np.nan_to_num(matrix, nan=0.0, posinf=0.0, neginf=0.0).clip(-1, 1)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array.astype(np.float32))
    return buffer.getvalue()
