"""Procedural line drawings in classes that make a small CNN grow Circuits-thread features.

Classes: straight lines, curves (arcs), circles, corners, and a fine-texture patch (which a
network tells from strokes with high-low frequency boundary detectors). Colour, position, scale,
stroke width and orientation are random; a little noise is added. Strokes are drawn from
distance fields with anti-aliased edges, vectorized over the batch with numpy.

`shapes_batch(n, seed)` is a pure function of its arguments.
"""

from __future__ import annotations

import numpy as np

CLASSES = ("line", "curve", "circle", "corner", "texture")
SIZE = 64


def shapes_batch(
    n: int, seed: int, size: int = SIZE, classes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`n` images (float32, n×3×size×size in [0, 1]) and their labels (int64).

    Labels cycle through the classes (balanced) unless `classes` gives them.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES) if classes is None else np.asarray(classes)
    labels = labels.astype(np.int64)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    coverage = np.zeros((n, size, size), np.float32)
    for index, name in enumerate(CLASSES):
        members = np.flatnonzero(labels == index)
        if len(members):
            coverage[members] = _DRAW[name](rng, len(members), xs, ys, size)
    background, foreground = _colours(rng, n)
    images = (
        background[:, :, None, None] * (1 - coverage[:, None])
        + foreground[:, :, None, None] * coverage[:, None]
    )
    images += rng.normal(0, 0.03, images.shape).astype(np.float32)
    return np.clip(images, 0, 1).astype(np.float32), labels


def _colours(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random background and stroke colours with enough contrast to see the stroke."""
    background = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    foreground = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    luminance = lambda c: c @ np.array([0.299, 0.587, 0.114], np.float32)  # noqa: E731
    weak = np.abs(luminance(background) - luminance(foreground)) < 0.3
    # Push weak pairs apart: the stroke goes dark on light backgrounds and light on dark ones.
    light = luminance(background) > 0.5
    foreground[weak & light] *= 0.3
    foreground[weak & ~light] = 1 - (1 - foreground[weak & ~light]) * 0.3
    return background, foreground


def _ink(distance: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Anti-aliased stroke coverage from the distance to the stroke's centre line."""
    return np.clip(width[:, None, None] / 2 - distance + 0.5, 0, 1)


def _segment_distance(xs, ys, x0, y0, x1, y1) -> np.ndarray:
    dx, dy = (x1 - x0)[:, None, None], (y1 - y0)[:, None, None]
    px, py = xs[None] - x0[:, None, None], ys[None] - y0[:, None, None]
    t = np.clip((px * dx + py * dy) / np.maximum(dx * dx + dy * dy, 1e-6), 0, 1)
    return np.hypot(px - t * dx, py - t * dy)


def _centres(rng, n, size, margin):
    return rng.uniform(margin, size - margin, n), rng.uniform(margin, size - margin, n)


def _widths(rng, n):
    return rng.uniform(1.5, 4.0, n).astype(np.float32)


def _line(rng, n, xs, ys, size):
    cx, cy = _centres(rng, n, size, 18)
    angle = rng.uniform(0, np.pi, n)
    half = rng.uniform(10, 26, n)
    dx, dy = np.cos(angle) * half, np.sin(angle) * half
    return _ink(_segment_distance(xs, ys, cx - dx, cy - dy, cx + dx, cy + dy), _widths(rng, n))


def _arc_distance(xs, ys, cx, cy, radius, start, span):
    """Distance to the arc of `radius` from angle `start` over `span` (radians)."""
    px, py = xs[None] - cx[:, None, None], ys[None] - cy[:, None, None]
    theta = np.mod(np.arctan2(py, px) - start[:, None, None], 2 * np.pi)
    on_arc = theta <= span[:, None, None]
    ring = np.abs(np.hypot(px, py) - radius[:, None, None])
    ends = []
    for angle in (start, start + span):
        ex, ey = cx + radius * np.cos(angle), cy + radius * np.sin(angle)
        ends.append(np.hypot(xs[None] - ex[:, None, None], ys[None] - ey[:, None, None]))
    return np.where(on_arc, ring, np.minimum(*ends))


def _curve(rng, n, xs, ys, size):
    radius = rng.uniform(9, 22, n)
    # At least a quarter turn: flatter arcs of large radius bow by less than a stroke width
    # and cannot be told from lines.
    span = rng.uniform(np.pi / 2, np.pi * 0.9, n)
    start = rng.uniform(0, 2 * np.pi, n)
    # Place the arc's midpoint near the middle so the whole stroke stays in the image.
    mid = start + span / 2
    mx, my = _centres(rng, n, size, 20)
    cx, cy = mx - radius * np.cos(mid), my - radius * np.sin(mid)
    return _ink(_arc_distance(xs, ys, cx, cy, radius, start, span), _widths(rng, n))


def _circle(rng, n, xs, ys, size):
    radius = rng.uniform(7, 20, n)
    cx, cy = rng.uniform(radius + 4, size - radius - 4), rng.uniform(radius + 4, size - radius - 4)
    distance = np.abs(
        np.hypot(xs[None] - cx[:, None, None], ys[None] - cy[:, None, None]) - radius[:, None, None]
    )
    return _ink(distance, _widths(rng, n))


def _corner(rng, n, xs, ys, size):
    vx, vy = _centres(rng, n, size, 16)
    first = rng.uniform(0, 2 * np.pi, n)
    second = first + rng.uniform(np.pi / 3, np.pi * 2 / 3, n)  # 60° to 120°
    arm = rng.uniform(12, 24, n)
    distance = np.minimum(
        _segment_distance(xs, ys, vx, vy, vx + arm * np.cos(first), vy + arm * np.sin(first)),
        _segment_distance(xs, ys, vx, vy, vx + arm * np.cos(second), vy + arm * np.sin(second)),
    )
    return _ink(distance, _widths(rng, n))


def _texture(rng, n, xs, ys, size):
    """A fine grating (period 2.5–4 px) inside a disc or half-plane, plain elsewhere."""
    angle = rng.uniform(0, np.pi, n)[:, None, None]
    period = rng.uniform(2.5, 4.0, n)[:, None, None]
    phase = xs[None] * np.cos(angle) + ys[None] * np.sin(angle)
    grating = 0.5 + 0.5 * np.sin(2 * np.pi * phase / period)
    cx, cy = _centres(rng, n, size, 20)
    radius = rng.uniform(10, 20, n)
    inside_disc = np.hypot(xs[None] - cx[:, None, None], ys[None] - cy[:, None, None]) < radius[:, None, None]
    cut = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    inside_half = (xs[None] - cx[:, None, None]) * np.cos(cut) + (ys[None] - cy[:, None, None]) * np.sin(
        cut
    ) > 0
    use_disc = (rng.uniform(size=n) < 0.5)[:, None, None]
    region = np.where(use_disc, inside_disc, inside_half)
    return (grating * region).astype(np.float32)


_DRAW = {"line": _line, "curve": _curve, "circle": _circle, "corner": _corner, "texture": _texture}
