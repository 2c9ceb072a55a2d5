"""Parametric stimuli for tuning curves: one image per value of a swept parameter.

Each family is a plain function `family(value, size, **fixed) -> ink` that returns the stroke
coverage (size×size floats in [0, 1]); `render()` puts it on a light background as an RGB image.
Angles are in degrees, measured clockwise from "pointing right" in image coordinates (y down),
like the rest of distillgen. Lengths (a line's length, a radius, the stroke width; curvature in
1/pixels) are in pixels of a 64-pixel image, the shapes network's, and scale with the image: a
stimulus covers the same part of a 224-pixel InceptionV1 input. numpy only.

`SUBSETS` names subsets of a family's swept values (`left-facing` headings of `facing`, …) that
an ablation's prediction can be checked on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from distillgen.zoo import glyphs_data
from distillgen.zoo.drawing import arc_distance, ink, segment_distance

CANVAS = 64  # the image side that lengths are given for
WIDTH = 2.5  # stroke width, the middle of what the shapes network was trained on
BACKGROUND, INK = 0.9, 0.1  # grey levels


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    return xs, ys


def _one(value: float) -> np.ndarray:
    return np.array([value], np.float32)


def line(orientation: float, size: int, length: float = 36.0) -> np.ndarray:
    """A straight stroke through the centre; orientation 0 is horizontal."""
    xs, ys = _grid(size)
    k = size / CANVAS
    angle = np.deg2rad(orientation)
    dx, dy = np.cos(angle) * length * k / 2, np.sin(angle) * length * k / 2
    c = size / 2
    distance = segment_distance(xs, ys, _one(c - dx), _one(c - dy), _one(c + dx), _one(c + dy))
    return ink(distance, _one(WIDTH * k))[0]


def curve(orientation: float, size: int, radius: float = 12.0, span: float = 120.0) -> np.ndarray:
    """An arc of `span` degrees whose midpoint sits at the centre; `orientation` is where its
    bulge points (0: the arc opens to the left and bulges right)."""
    return _arc(orientation, size, radius, span)


def curvature(value: float, size: int, orientation: float = 0.0, length: float = 30.0) -> np.ndarray:
    """A stroke of fixed length whose curvature is `value` (1/radius, in 1/pixels); 0 is a line."""
    if value <= 1e-4:
        return line(orientation + 90.0, size, length)
    radius = 1.0 / value  # at the 64-pixel scale, like `length`; _arc scales both
    span = min(np.rad2deg(length / radius), 359.0)
    return _arc(orientation, size, radius, span)


def grating(frequency: float, size: int, orientation: float = 0.0, phase: float = 0.0) -> np.ndarray:
    """A sinusoidal grating with `frequency` cycles per image; `orientation` is the direction
    across the stripes, so the stripes themselves run at `orientation` + 90°."""
    xs, ys = _grid(size)
    angle = np.deg2rad(orientation)
    across = (xs * np.cos(angle) + ys * np.sin(angle)) / size
    return (0.5 + 0.5 * np.sin(2 * np.pi * frequency * across + np.deg2rad(phase))).astype(np.float32)


def facing(orientation: float, size: int, radius: float = 10.0) -> np.ndarray:
    """The glyphs task's bird (a head with a beak, a crest and an eye; head of `radius`, centred)
    heading `orientation`: 0 is upright with the beak pointing right, 180 is upright facing left,
    the mirror image of 0 (not its rotation). In between, the glyph faces right where
    cos(orientation) >= 0 and left (mirrored) otherwise, turned so that the beak points along the
    heading while the crest stays as high as it can: facing(180 - a) mirrored is facing(a)."""
    xs, ys = _grid(size)
    right = np.cos(np.deg2rad(orientation)) >= 0
    turn = orientation if right else orientation - 180.0
    turn = (turn + 180.0) % 360.0 - 180.0
    c = size / 2
    return glyphs_data.glyph(
        xs,
        ys,
        _one(c),
        _one(c),
        _one(radius * size / CANVAS),
        _one(np.deg2rad(turn)),
        _one(1.0 if right else -1.0),
    )[0]


def boundary(
    orientation: float, size: int, frequency: float = 16.0, contrast: float = 1.0, smooth: float = 0.5
) -> np.ndarray:
    """A high-low frequency boundary through the centre: a fine grating of `frequency` cycles per
    image and `contrast` (0–1) on one side, a smooth field (`smooth`, 0.5: the grating's mean, so
    no edge in brightness) on the other. `orientation` points from the smooth side into the
    textured one (0: texture on the right of a vertical boundary). The grating's stripes run
    across the boundary, so the boundary is not itself a stripe."""
    xs, ys = _grid(size)
    angle = np.deg2rad(orientation)
    c = size / 2
    across = (xs - c) * np.cos(angle) + (ys - c) * np.sin(angle)  # towards the texture
    along = (-(xs - c) * np.sin(angle) + (ys - c) * np.cos(angle)) / size
    grating = 0.5 + 0.5 * contrast * np.sin(2 * np.pi * frequency * along)
    # Anti-aliased over one pixel, so the boundary does not alias at oblique orientations.
    side = np.clip(across + 0.5, 0, 1)
    return (grating * side + smooth * (1 - side)).astype(np.float32)


def boundary_frequency(
    frequency: float, size: int, orientation: float = 0.0, contrast: float = 1.0, smooth: float = 0.5
) -> np.ndarray:
    """`boundary` swept over the textured side's frequency (cycles per image) at a fixed
    `orientation`: how much frequency contrast a high-low detector needs."""
    return boundary(orientation, size, frequency=frequency, contrast=contrast, smooth=smooth)


def _arc(orientation: float, size: int, radius: float, span: float) -> np.ndarray:
    xs, ys = _grid(size)
    k = size / CANVAS
    radius *= k
    mid = np.deg2rad(orientation)
    half = np.deg2rad(span) / 2
    c = size / 2  # the arc's midpoint; its centre lies `radius` behind it
    cx, cy = c - radius * np.cos(mid), c - radius * np.sin(mid)
    distance = arc_distance(xs, ys, _one(cx), _one(cy), _one(radius), _one(mid - half), _one(2 * half))
    return ink(distance, _one(WIDTH * k))[0]


# name -> (function, swept parameter, default sweep (first, last, count), unit of the parameter)
FAMILIES: dict[str, tuple[Callable[..., np.ndarray], str, tuple[float, float, int], str]] = {
    "line": (line, "orientation", (0.0, 180.0, 24), "°"),
    "curve": (curve, "orientation", (0.0, 360.0, 24), "°"),
    "curvature": (curvature, "curvature", (0.0, 0.2, 21), "1/px"),
    "grating": (grating, "frequency", (1.0, 24.0, 24), "cycles/image"),
    "facing": (facing, "orientation", (0.0, 360.0, 24), "° heading"),
    "boundary": (boundary, "orientation", (0.0, 360.0, 24), "°"),
    "boundary-frequency": (boundary_frequency, "frequency", (1.0, 24.0, 24), "cycles/image"),
}

# family -> subset name -> predicate over the swept value: the stimuli a selective prediction
# (`... on left-facing`) is checked on.
SUBSETS: dict[str, dict[str, Callable[[float], bool]]] = {
    "facing": {
        "left-facing": lambda v: bool(np.cos(np.deg2rad(v)) < -1e-9),
        "right-facing": lambda v: bool(np.cos(np.deg2rad(v)) > 1e-9),
        "upright": lambda v: bool(abs(np.sin(np.deg2rad(v))) < 0.5),  # within 30° of horizontal
    },
    "boundary": {
        "texture-right": lambda v: bool(np.cos(np.deg2rad(v)) > 1e-9),
        "texture-left": lambda v: bool(np.cos(np.deg2rad(v)) < -1e-9),
    },
    "boundary-frequency": {
        "fine": lambda v: v >= 12,
        "coarse": lambda v: v < 12,
    },
}


def render(ink: np.ndarray) -> np.ndarray:
    """Coverage (size×size) or an image (3×size×size) -> an RGB image in [0, 1], float32."""
    ink = np.asarray(ink, np.float32)
    if ink.ndim == 3:
        return np.clip(ink, 0, 1)
    return np.repeat((BACKGROUND + (INK - BACKGROUND) * np.clip(ink, 0, 1))[None], 3, axis=0)


def sweep(first: float, last: float, count: int, periodic: bool) -> list[float]:
    """`count` values from `first` to `last`; a periodic sweep (angles) leaves out `last`."""
    return [float(v) for v in np.linspace(first, last, count, endpoint=not periodic)]


def sweep_images(sweep) -> np.ndarray:
    """The images of a `jobs.Sweep`, float32 N×3×size×size in [0, 1]."""
    function = _family_function(sweep.family)
    fixed = dict(sweep.fixed)
    pictures = []
    for value in sweep.values:
        picture = render(np.asarray(function(value, sweep.size, **fixed), np.float32))
        if picture.shape != (3, sweep.size, sweep.size):
            raise ValueError(
                f"{sweep.family}({value}) drew an image of shape {picture.shape}; "
                f"a stimulus is {sweep.size}×{sweep.size} (ink) or 3×{sweep.size}×{sweep.size} (RGB)"
            )
        pictures.append(picture)
    return np.stack(pictures)


def _family_function(family: str) -> Callable[..., np.ndarray]:
    if family in FAMILIES:
        return FAMILIES[family][0]
    import importlib.util

    path, name = family.rsplit(":", 1)
    spec = importlib.util.spec_from_file_location(f"distillgen_stimuli_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path}: not a Python module")
    code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code)
    return getattr(code, name)
