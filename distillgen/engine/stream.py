"""A probe set as a stream of batches: a folder of images is decoded by a `DataLoader`'s worker
processes while the model runs, so no pass over a folder holds more than a few batches of
images, however many the folder has. A generator's sample is drawn whole (it is small, and
drawing it is the generator's one operation) and cut into batches.

A file that does not decode (truncated, corrupt) is left out of its batch and named in it:
the pass goes on, and its result says which files it skipped.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from distillgen import datasets
from distillgen.jobs import Dataset

BATCH = 64
# Decoding a JPEG costs about what a small network's forward pass does: a worker per core,
# but never more than four (more only queue for the same cores).
WORKERS = min(4, os.cpu_count() or 1)


@dataclass
class Images:
    """A batch: the images' indices in the probe set, the images (N×3×size×size in [0, 1]),
    and the files of this batch that did not decode (their path in the folder)."""

    indices: np.ndarray
    pixels: torch.Tensor
    skipped: list[str]


def batches(data: Dataset, size: int, start: int = 0, batch: int = BATCH) -> Iterator[Images]:
    """The probe set from image `start` on, `batch` images at a time (fewer where files did
    not decode), in probe-set order."""
    if not data.folder:
        images = datasets.images(data, size)
        for first in range(start, len(images), batch):
            chunk = np.ascontiguousarray(images[first : first + batch])
            yield Images(np.arange(first, first + len(chunk)), torch.from_numpy(chunk), [])
        return
    files, _labels = datasets.probe_files(data)
    folder = Path(data.source)
    names = [path.relative_to(folder).as_posix() for path in files]
    loader = torch.utils.data.DataLoader(
        _Files(list(files)[start:], start, size),
        batch_size=batch,
        num_workers=WORKERS if len(files) - start > batch else 0,  # a worker costs a process start
        collate_fn=functools.partial(_collate, names=names, size=size),
    )
    yield from loader


class _Files(torch.utils.data.Dataset):
    def __init__(self, files: list[Path], offset: int, size: int) -> None:
        self.files, self.offset, self.size = files, offset, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | None]:
        try:
            return self.offset + index, datasets.load_image(self.files[index], self.size)
        except Exception:  # PIL raises many types for a damaged file; the pass goes on
            return self.offset + index, None


def _collate(items: list[tuple[int, np.ndarray | None]], names: list[str], size: int) -> Images:
    decoded = [(index, image) for index, image in items if image is not None]
    skipped = [names[index] for index, image in items if image is None]
    pixels = (
        np.stack([image for _, image in decoded]) if decoded else np.zeros((0, 3, size, size), np.float32)
    )
    return Images(
        np.array([index for index, _ in decoded], dtype=np.int64), torch.from_numpy(pixels), skipped
    )
