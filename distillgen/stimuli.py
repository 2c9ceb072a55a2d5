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

import inspect
from collections.abc import Callable, Sequence

import numpy as np

from distillgen.zoo import glyphs_data
from distillgen.zoo.drawing import arc_distance, ink, segment_distance

CANVAS = 64  # the image side that lengths are given for
WIDTH = 2.5  # stroke width, the middle of what the shapes network was trained on
BACKGROUND, INK = 0.9, 0.1  # grey levels


def _grid(size: int, dx: float = 0.0, dy: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres, with the drawing moved by (dx, dy) pixels of the 64-pixel canvas."""
    k = size / CANVAS
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    return xs - dx * k, ys - dy * k


def _one(value: float) -> np.ndarray:
    return np.array([value], np.float32)


def line(orientation: float, size: int, length: float = 36.0, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """A straight stroke through the centre (moved by `dx`, `dy`); orientation 0 is horizontal."""
    xs, ys = _grid(size, dx, dy)
    k = size / CANVAS
    angle = np.deg2rad(orientation)
    half_x, half_y = np.cos(angle) * length * k / 2, np.sin(angle) * length * k / 2
    c = size / 2
    distance = segment_distance(
        xs, ys, _one(c - half_x), _one(c - half_y), _one(c + half_x), _one(c + half_y)
    )
    return ink(distance, _one(WIDTH * k))[0]


def curve(
    orientation: float, size: int, radius: float = 12.0, span: float = 120.0, dx: float = 0.0, dy: float = 0.0
) -> np.ndarray:
    """An arc of `span` degrees whose midpoint sits at the centre; `orientation` is where its
    bulge points (0: the arc opens to the left and bulges right)."""
    return _arc(orientation, size, radius, span, dx, dy)


def curvature(
    value: float, size: int, orientation: float = 0.0, length: float = 30.0, dx: float = 0.0, dy: float = 0.0
) -> np.ndarray:
    """A stroke of fixed length whose curvature is `value` (1/radius, in 1/pixels); 0 is a line."""
    if value <= 1e-4:
        return line(orientation + 90.0, size, length, dx, dy)
    radius = 1.0 / value  # at the 64-pixel scale, like `length`; _arc scales both
    span = min(np.rad2deg(length / radius), 359.0)
    return _arc(orientation, size, radius, span, dx, dy)


def grating(frequency: float, size: int, orientation: float = 0.0, phase: float = 0.0) -> np.ndarray:
    """A sinusoidal grating with `frequency` cycles per image; `orientation` is the direction
    across the stripes, so the stripes themselves run at `orientation` + 90°."""
    xs, ys = _grid(size)
    angle = np.deg2rad(orientation)
    across = (xs * np.cos(angle) + ys * np.sin(angle)) / size
    return (0.5 + 0.5 * np.sin(2 * np.pi * frequency * across + np.deg2rad(phase))).astype(np.float32)


def facing(
    orientation: float,
    size: int,
    radius: float = 10.0,
    mismatched: float = 0.0,
    dx: float = 0.0,
    dy: float = 0.0,
) -> np.ndarray:
    """The glyphs task's bird (a head with a beak, a crest and an eye; head of `radius`, centred)
    heading `orientation`: 0 is upright with the beak pointing right, 180 is upright facing left,
    the mirror image of 0 (not its rotation). In between, the glyph faces right where
    cos(orientation) >= 0 and left (mirrored) otherwise, turned so that the beak points along the
    heading while the crest stays as high as it can: facing(180 - a) mirrored is facing(a).
    With `mismatched=1` the beak sits on the wrong side, under the crest: the glyphs task's
    mismatched head, the same parts in an arrangement that is not a bird."""
    xs, ys = _grid(size, dx, dy)
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
        swapped=np.array([mismatched >= 0.5]),
    )[0]


def boundary(
    orientation: float,
    size: int,
    frequency: float = 16.0,
    contrast: float = 1.0,
    smooth: float = 0.5,
    full: float = 0.0,
    phase: float = 0.0,
    dx: float = 0.0,
    dy: float = 0.0,
) -> np.ndarray:
    """A high-low frequency boundary through the centre: a fine grating of `frequency` cycles per
    image and `contrast` (0–1) on one side, a smooth field (`smooth`, 0.5: the grating's mean, so
    no edge in brightness) on the other. `orientation` points from the smooth side into the
    textured one (0: texture on the right of a vertical boundary). The grating's stripes run
    across the boundary, so the boundary is not itself a stripe; `phase` (degrees) shifts them
    along it. Its controls: `full=1` fills the whole image with the grating (texture, no
    boundary), `contrast=0` leaves a flat field (`smooth=0.5`) or an edge in brightness alone
    (any other `smooth`): a boundary without the contrast in frequency."""
    xs, ys = _grid(size, dx, dy)
    angle = np.deg2rad(orientation)
    c = size / 2
    across = (xs - c) * np.cos(angle) + (ys - c) * np.sin(angle)  # towards the texture
    along = (-(xs - c) * np.sin(angle) + (ys - c) * np.cos(angle)) / size
    grating = 0.5 + 0.5 * contrast * np.sin(2 * np.pi * frequency * along + np.deg2rad(phase))
    # Anti-aliased over one pixel, so the boundary does not alias at oblique orientations.
    side = 1.0 if full >= 0.5 else np.clip(across + 0.5, 0, 1)
    return (grating * side + smooth * (1 - side)).astype(np.float32)


def boundary_frequency(
    frequency: float,
    size: int,
    orientation: float = 0.0,
    contrast: float = 1.0,
    smooth: float = 0.5,
    full: float = 0.0,
    phase: float = 0.0,
    dx: float = 0.0,
    dy: float = 0.0,
) -> np.ndarray:
    """`boundary` swept over the textured side's frequency (cycles per image) at a fixed
    `orientation`: how much frequency contrast a high-low detector needs."""
    return boundary(orientation, size, frequency, contrast, smooth, full, phase, dx, dy)


def _arc(orientation: float, size: int, radius: float, span: float, dx: float, dy: float) -> np.ndarray:
    xs, ys = _grid(size, dx, dy)
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
    # Curve against line (1/px; the default sweep runs 0..0.2). A stroke of the default 30 px
    # bends by 30·c radians: at 0.02 by ~34°, its middle ~2 px off its chord, less than a stroke
    # width (2.5), so it still reads as a line; at 0.06 by ~103°, ~6 px off, a clear arc. The
    # values between are neither, so a preference of curved over straight compares the two ends.
    "curvature": {
        "straight": lambda v: v <= 0.02 + 1e-9,
        "curved": lambda v: v >= 0.06 - 1e-9,
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


DRAWS = 8  # draws per swept value, unless a figure says otherwise (`:draws:`)
_SCALED = ("radius", "frequency")  # varied by ±10% between draws, where a family has them
_GOLDEN_3 = 1.2207440846057596  # x⁴ = x + 1: the R3 low-discrepancy sequence's constant


def draws(
    function: Callable[..., np.ndarray], swept: str, fixed: dict[str, float], count: int, pixel: float
) -> list[dict[str, float]]:
    """The keyword arguments of each of `count` draws of one stimulus, by a stated rule, so a
    sweep measures its parameter and not where the drawing falls on the pixel grid:

    - draw 0 is the stimulus as written (the one a figure shows);
    - each draw moves it by a sub-pixel offset (`dx`, `dy`: within half an image pixel either
      way), turns its `phase` by 360°/count, and scales its `radius` and `frequency` by up to
      ±10%, where the family has those parameters and they are not the swept one;
    - offsets and scales follow a low-discrepancy sequence (R3), so a few draws cover the
      pixel's positions evenly and every build draws the same.

    Values given in `fixed` are the centre the draws vary around; `pixel` is one image pixel in
    the 64-pixel canvas's units, which `dx` and `dy` are in."""
    signature = inspect.signature(function).parameters
    names = [name for name in list(signature)[2:] if name != swept]
    base = {
        name: float(signature[name].default)
        for name in names
        if isinstance(signature[name].default, int | float)
    }
    base.update(fixed)
    alphas = [_GOLDEN_3 ** -(j + 1) for j in range(3)]
    out = []
    for k in range(count):
        u = [(0.5 + k * a) % 1.0 - 0.5 for a in alphas]  # in [-0.5, 0.5); 0 for draw 0
        arguments = dict(fixed)
        for name, shift in (("dx", u[0]), ("dy", u[1])):
            if name in base:
                arguments[name] = base[name] + shift * pixel
        if "phase" in base:
            arguments["phase"] = base["phase"] + 360.0 * k / count
        for name in _SCALED:
            if name in base:
                arguments[name] = base[name] * (1 + 0.2 * u[2])
        out.append(arguments)
    return out


def sweep_images(sweep, values: Sequence[float] | None = None) -> np.ndarray:
    """The images of a `jobs.Sweep` (or of some of its `values`), float32 (N·draws)×3×size×size
    in [0, 1], value by value: the draws of the first value, then of the second
    (`mean_over_draws` folds them)."""
    function = _family_function(sweep.path or sweep.family)
    each = draws(function, sweep.param, dict(sweep.fixed), sweep.draws, CANVAS / sweep.size)
    pictures = []
    for value in sweep.values if values is None else values:
        for arguments in each:
            picture = render(np.asarray(function(value, sweep.size, **arguments), np.float32))
            if picture.shape != (3, sweep.size, sweep.size):
                raise ValueError(
                    f"{sweep.family}({value}) drew an image of shape {picture.shape}; "
                    f"a stimulus is {sweep.size}×{sweep.size} (ink) or 3×{sweep.size}×{sweep.size} (RGB)"
                )
            pictures.append(picture)
    return np.stack(pictures)


def mean_over_draws(table: np.ndarray, count: int) -> np.ndarray:
    """Responses to every draw ([N·count, …], as `sweep_images` orders them) -> their mean per
    swept value ([N, …])."""
    return table.reshape(len(table) // count, count, *table.shape[1:]).mean(axis=1)


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
