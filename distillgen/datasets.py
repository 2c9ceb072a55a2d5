"""Probe sets: the images experiments run on, named by a `Dataset` and drawn without torch.

`shapes` and `glyphs` are fixed, seeded samples of the zoo's generators (`zoo.TASKS`: the same
`count` and `seed` always give the same images); any other source is a folder of the author's
images (PNG, JPEG), centre-cropped to a square and resized to the model's input size, in
file-name order. A dataset's fingerprint (the generator's source, or the folder's files) enters every job key.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from distillgen.jobs import Dataset
from distillgen.safety import resolve_inside
from distillgen.units import source_fingerprint
from distillgen.zoo import TASKS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class DatasetError(ValueError):
    """A dataset that cannot be used, with a message for the author."""


def dataset(source: str, count: int, seed: int, base: Path, roots: tuple[Path, ...] = ()) -> Dataset:
    """Resolve `source` (a generator, "shapes" or "glyphs", or a folder relative to `base`) into a
    keyed Dataset.

    The folder and each image in it must lie inside `roots` (default: `base`), symlinks followed."""
    if source in TASKS:
        return Dataset(source, source_fingerprint(TASKS[source].module_name), count, seed)
    roots = roots or (base,)
    try:
        folder = resolve_inside(base, source, roots)
        if not folder.is_dir():
            raise DatasetError(
                f"dataset folder not found: {folder} (or write 'shapes' or 'glyphs' for a generator)"
            )
        files = _image_files(folder)
        for path in files:  # a symlink in the folder may point anywhere
            resolve_inside(folder, path.name, roots)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return Dataset(str(folder), digest.hexdigest(), min(count, len(files)), seed)


def images(data: Dataset, size: int) -> np.ndarray:
    """The probe images, float32 N×3×size×size in [0, 1]."""
    return labelled(data, size)[0]


def labelled(data: Dataset, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The probe images and their class indices, as the generator drew them (None for a
    folder, whose images have no classes)."""
    if data.source in TASKS:
        return TASKS[data.source].batch(data.count, data.seed, size)
    from PIL import Image

    loaded = []
    for path in _image_files(Path(data.source))[: data.count]:
        with Image.open(path) as opened:
            picture = opened.convert("RGB")
            side = min(picture.size)
            left, top = (picture.width - side) // 2, (picture.height - side) // 2
            square = picture.crop((left, top, left + side, top + side))
            picture = square.resize((size, size), Image.Resampling.BICUBIC)
            loaded.append(np.asarray(picture, np.float32).transpose(2, 0, 1) / 255.0)
    return np.stack(loaded), None


def class_names(data: Dataset) -> tuple[str, ...]:
    return tuple(TASKS[data.source].classes) if data.source in TASKS else ()


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
