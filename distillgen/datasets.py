"""Probe sets: the images experiments run on, named by a `Dataset` and drawn without torch.

`shapes` and `glyphs` are fixed, seeded samples of the zoo's generators (`zoo.TASKS`: the same
`count` and `seed` always give the same images); any other source is a folder of the author's
images (PNG, JPEG), centre-cropped to a square and resized to the model's input size. A folder
whose images all lie in subfolders is read as torchvision's ImageFolder reads one: each
first-level subfolder is a class (ImageNet's validation set, sorted into class folders), and
`count` images are taken evenly over all of them, so every class is probed; a flat folder's
first `count` images are taken, in file-name order. A dataset's fingerprint (the generator's
source, or every file's path, size and modification time) enters every job key. Experiments
over a folder stream it (engine/stream.py); its examples come from one ranking pass per layer.
"""

from __future__ import annotations

import functools
import hashlib
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from distillgen.jobs import Dataset
from distillgen.safety import resolve_inside
from distillgen.units import source_fingerprint
from distillgen.zoo import TASKS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class DatasetError(ValueError):
    """A dataset that cannot be used, with a message for the author."""


def dataset(
    source: str,
    count: int,
    seed: int,
    base: Path,
    roots: tuple[Path, ...] = (),
    warn: Callable[[str], None] = lambda message: None,
) -> Dataset:
    """Resolve `source` (a generator, "shapes" or "glyphs", or a folder relative to `base`) into a
    keyed Dataset; files of the folder that are not images are left out, and `warn` says which.

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
        named = _image_files(folder, readable=False)
        for path in named:  # a symlink in the folder may point anywhere
            resolve_inside(folder, path.relative_to(folder).as_posix(), roots)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    files = [path for path in named if _readable(path)]
    if len(files) < len(named):
        kept = set(files)
        unreadable = [path.relative_to(folder).as_posix() for path in named if path not in kept]
        first = ", ".join(unreadable[:3]) + (", …" if len(unreadable) > 3 else "")
        warn(
            f"{len(unreadable)} of the {len(named)} image files in {folder} cannot be read as images "
            f"and are left out: {first}"
        )
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return Dataset(str(folder), folder_fingerprint(folder, files), min(count, len(files)), seed)


def folder_fingerprint(folder: Path, files: Sequence[Path]) -> str:
    """What keys a folder's figures: each image's path in the folder, size and modification
    time, as make and git's index tell a changed file, so a build over 50,000 photographs
    reads none of them to know they are unchanged. A file rewritten with the same size in the
    same nanosecond would go unnoticed; touching a file computes its figures again."""
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        name = path.relative_to(folder).as_posix()
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def images(data: Dataset, size: int) -> np.ndarray:
    """The probe images, float32 N×3×size×size in [0, 1]."""
    return labelled(data, size)[0]


def labelled(data: Dataset, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The probe images and their class indices: as the generator drew them, or a class
    folder's (None for a flat folder, whose images have no classes)."""
    if data.source in TASKS:
        if data.count * 3 * size * size * 4 > KEPT_BYTES:  # 1,000 images at 224 px: 600 MB
            return _draw(data, size)
        images, labels = _drawn(data, size)
        return images.copy(), labels  # a copy: a caller may write into its images
    chosen, labels = probe_files(data)
    loaded, kept = [], []
    for index, path in enumerate(chosen):
        try:
            loaded.append(load_image(path, size))
            kept.append(index)
        except Exception:  # a file cut short (its header read): left out, as a stream does
            continue
    if not loaded:
        raise OSError(f"none of the {len(chosen)} images in {data.source} can be decoded")
    return np.stack(loaded), None if labels is None else labels[kept]


# The generators cannot draw their shapes below 40 px: a model that takes smaller images (an
# author's 16-px network) sees them drawn at 64 px and shrunk, each pixel the mean of its area.
SMALLEST_DRAWN = 40
DRAWN = 64


KEPT_BYTES = 64 * 2**20  # a sample this large or smaller is kept for the process


@functools.lru_cache(maxsize=2)
def _drawn(data: Dataset, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A generator's sample, drawn once per process (the figures of a build read the same
    sample many times: each layer's measures, examples, unit pages); kept read-only."""
    images, labels = _draw(data, size)
    for array in (images, labels):
        if array is not None:
            array.setflags(write=False)
    return images, labels


def _draw(data: Dataset, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    if size >= SMALLEST_DRAWN:
        return TASKS[data.source].batch(data.count, data.seed, size)
    images, labels = TASKS[data.source].batch(data.count, data.seed, DRAWN)
    return _shrunk(images, size), labels


def _shrunk(images: np.ndarray, size: int) -> np.ndarray:
    """N×3×DRAWN×DRAWN images as N×3×size×size, by area (PIL's box filter)."""
    from PIL import Image

    out = np.empty((len(images), 3, size, size), dtype=np.float32)
    for index, image in enumerate(images):
        for channel in range(3):
            plane = Image.fromarray(image[channel].astype(np.float32), mode="F")
            out[index, channel] = np.asarray(plane.resize((size, size), Image.Resampling.BOX))
    return out


def probe_files(data: Dataset) -> tuple[Sequence[Path], np.ndarray | None]:
    """A folder's probe images, in probe-set order, and their class indices (None for a flat
    folder): what `labelled` loads, and what engine/stream.py streams."""
    folder = Path(data.source)
    files, classes = _listing(data)
    chosen = _chosen(files, data.count, bool(classes))
    labels = None
    if classes:  # each image's class: the index of its first-level folder
        labels = np.array([classes.index(path.relative_to(folder).parts[0]) for path in chosen])
    return chosen, labels


def load_image(path: Path | io.BytesIO, size: int) -> np.ndarray:
    """One image as the model sees it: 3×size×size float32 in [0, 1], centre-cropped to a
    square and resized. OSError (or PIL's errors) when the file does not decode."""
    from PIL import Image

    with Image.open(path) as opened:
        picture = opened.convert("RGB")
    side = min(picture.size)
    left, top = (picture.width - side) // 2, (picture.height - side) // 2
    square = picture.crop((left, top, left + side, top + side))
    picture = square.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(picture, np.float32).transpose(2, 0, 1) / 255.0


def decode_image(data: bytes, size: int) -> np.ndarray:
    """`load_image` of a file's bytes."""
    return load_image(io.BytesIO(data), size)


def class_names(data: Dataset) -> tuple[str, ...]:
    if data.source in TASKS:
        return tuple(TASKS[data.source].classes)
    return _listing(data)[1]


@functools.lru_cache(maxsize=16)
def _listing(data: Dataset) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """A folder's readable images and its classes, listed once per probe set (its fingerprint
    pins its files): a dictionary's engine asks for its images, then for their classes."""
    folder = Path(data.source)
    files = _image_files(folder)
    return tuple(files), _classes(folder, files)


def _image_files(folder: Path, readable: bool = True) -> list[Path]:
    """Every image in `folder` and its subfolders (hidden ones left out), by relative path; with
    `readable`, those whose header reads as an image (checked again wherever the set is used,
    so a planned figure and the engine agree on it)."""
    found = [
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and path.is_file()
    ]
    found.sort(key=lambda path: path.relative_to(folder).as_posix())
    return [path for path in found if _readable(path)] if readable else found


def _readable(path: Path) -> bool:
    """Whether the file's header reads as an image (PIL reads no more of it)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            return True
    except (OSError, UnidentifiedImageError, ValueError):
        return False


def _classes(folder: Path, files: list[Path]) -> tuple[str, ...]:
    """The first-level subfolders when every image lies in one (ImageFolder's classes), else ()."""
    tops = [path.relative_to(folder).parts for path in files]
    if not tops or any(len(parts) < 2 for parts in tops):
        return ()
    return tuple(sorted({parts[0] for parts in tops}))


def _chosen(files: Sequence[Path], count: int, spread: bool) -> Sequence[Path]:
    """`count` of `files`: spread evenly over them for class folders (every class is probed),
    else the first (as flat folders always were)."""
    if not spread or count >= len(files):
        return files[:count]
    return [files[round(i * (len(files) - 1) / max(count - 1, 1))] for i in range(count)]
