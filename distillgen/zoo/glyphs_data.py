"""Procedural glyphs: a task in which orientation-invariant unions and high-low frequency
detectors have a reason to form.

Classes (64×64 RGB, random colours, positions, sizes):

    bird      an upright, asymmetric head: a disc with a beak on one side, a crest on top that
              leans backwards and an eye near the beak; facing left or right (mirror images,
              same label), tilted by up to ±20°
    head      the parts in the wrong arrangement: mostly a mismatched head, whose beak sits on the
              side its crest leans to (behind the eye), so that no part alone tells it from a bird
              facing one way or the other: only "beak right with crest leaning left" or "beak left
              with crest leaning right" is a bird; otherwise the head without its beak, or the bird
              upside down (rotated 180° ± 20°: crest below, so it is not a mirrored bird)
    wedge     the beak alone, larger, at any orientation
    boundary  fine texture (a grating or pixel noise, period 2–4 px) on one side of a boundary and
              a smooth colour on the other: a textured disc or half-plane on plain ground, or the
              reverse, at every orientation
    plain     the same layouts without the frequency contrast: both sides smooth (a colour edge)
              or both sides textured (texture everywhere)

Shapes are coverage maps from signed distances with anti-aliased edges, vectorized over the
batch. `glyphs_batch(n, seed)` is a pure function of its arguments.
"""

from __future__ import annotations

import numpy as np

CLASSES = ("bird", "head", "wedge", "boundary", "plain")
FINE_CLASSES = ("bird facing left", "bird facing right", "head", "wedge", "boundary", "plain")
SIZE = 64

# The glyph facing right, in units of the head's radius (y down): head disc of radius 1 at the
# origin, the beak's triangle, the crest's triangle (leaning back, away from the beak), the eye.
BEAK = ((0.75, -0.5), (0.75, 0.15), (1.9, -0.2))
CREST = ((-0.6, -0.65), (0.1, -0.92), (-1.05, -1.75))
EYE = ((0.38, -0.28), 0.2)
WEDGE = ((-0.55, -0.35), (-0.55, 0.35), (0.6, 0.0))  # the beak's shape, centred


def glyph(
    xs: np.ndarray,
    ys: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    radius: np.ndarray,
    angle: np.ndarray,
    facing: np.ndarray,
    beak: bool = True,
    swapped: np.ndarray | None = None,
) -> np.ndarray:
    """Coverage (n×H×W) of the glyph: head of `radius` px centred at (cx, cy), turned by `angle`
    (radians, clockwise in image coordinates), facing right where `facing` is +1 and left
    (mirrored) where it is -1. The canonical frame is mirrored first, then rotated. Where
    `swapped` is true the beak is on the wrong side (the back of the head, under the crest)."""
    u, v = _frame(xs, ys, cx, cy, radius, angle)
    u = u * facing[:, None, None]
    r = radius[:, None, None]
    inside = 1 - np.hypot(u, v)  # signed distance to the head's rim, in radii
    if beak:
        beak_u = u if swapped is None else np.where(swapped[:, None, None], -u, u)
        inside = np.maximum(inside, _triangle(beak_u, v, BEAK))
    inside = np.maximum(inside, _triangle(u, v, CREST))
    (ex, ey), er = EYE
    inside = np.minimum(inside, np.hypot(u - ex, v - ey) - er)
    return np.clip(inside * r + 0.5, 0, 1).astype(np.float32)


def wedge(xs, ys, cx, cy, radius, angle) -> np.ndarray:
    u, v = _frame(xs, ys, cx, cy, radius, angle)
    return np.clip(_triangle(u, v, WEDGE) * radius[:, None, None] + 0.5, 0, 1).astype(np.float32)


def _frame(xs, ys, cx, cy, radius, angle):
    """Image pixels in each glyph's own frame (rotated back by `angle`, scaled by `radius`)."""
    dx, dy = xs[None] - cx[:, None, None], ys[None] - cy[:, None, None]
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    r = radius[:, None, None]
    return (dx * c + dy * s) / r, (-dx * s + dy * c) / r


def _triangle(u, v, corners) -> np.ndarray:
    """Signed distance (positive inside) to a triangle, the smallest of its three half-planes."""
    (ax, ay), (bx, by), (qx, qy) = corners
    sign = np.sign((bx - ax) * (qy - ay) - (by - ay) * (qx - ax))
    result = None
    for (x0, y0), (x1, y1) in (((ax, ay), (bx, by)), ((bx, by), (qx, qy)), ((qx, qy), (ax, ay))):
        nx, ny = -(y1 - y0) * sign, (x1 - x0) * sign
        norm = np.hypot(nx, ny)
        d = ((u - x0) * nx + (v - y0) * ny) / norm
        result = d if result is None else np.minimum(result, d)
    return result


def texture(xs, ys, rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """n fine textures in [0, 1]: half gratings (period 2–4 px, any orientation), half pixel
    noise (blocks of 1 or 2 px)."""
    angle = rng.uniform(0, np.pi, n)[:, None, None]
    period = rng.uniform(2.0, 4.0, n)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    across = xs[None] * np.cos(angle) + ys[None] * np.sin(angle)
    grating = 0.5 + 0.5 * np.sin(2 * np.pi * across / period + phase)
    noise = (rng.uniform(size=(n, size // 2, size // 2)) > 0.5).astype(np.float32)
    fine = (rng.uniform(size=(n, size, size)) > 0.5).astype(np.float32)
    blocky = noise.repeat(2, axis=1).repeat(2, axis=2)
    noise = np.where((rng.uniform(size=n) < 0.5)[:, None, None], fine, blocky)
    use_grating = (rng.uniform(size=n) < 0.5)[:, None, None]
    return np.where(use_grating, grating, noise).astype(np.float32)


def regions(xs, ys, rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """n random regions (n×H×W in {0, 1}): a disc or a half-plane through a point near the
    middle, at any orientation."""
    cx, cy = rng.uniform(20, size - 20, n), rng.uniform(20, size - 20, n)
    radius = rng.uniform(10, 20, n)[:, None, None]
    dx, dy = xs[None] - cx[:, None, None], ys[None] - cy[:, None, None]
    cut = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    half = dx * np.cos(cut) + dy * np.sin(cut) > 0
    disc = np.hypot(dx, dy) < radius
    return np.where((rng.uniform(size=n) < 0.5)[:, None, None], disc, half).astype(np.float32)


def glyphs_batch(
    n: int, seed: int, size: int = SIZE, classes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`n` images (float32, n×3×size×size in [0, 1]) and their labels (int64).

    Labels cycle through the classes (balanced) unless `classes` gives them."""
    images, labels, _ = glyphs_with_headings(n, seed, size, classes)
    return images, labels


def fine_batch(
    n: int, seed: int, size: int = SIZE, classes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`glyphs_batch` with each image's label in `FINE_CLASSES` too: a bird's label says which
    way it faces (what an auxiliary classifier is told in training, `zoo.Auxiliary`)."""
    images, labels, headings = glyphs_with_headings(n, seed, size, classes)
    fine = labels + 1
    fine[labels == 0] = (headings[labels == 0] > 0).astype(np.int64)
    return images, labels, fine


def glyphs_with_headings(
    n: int, seed: int, size: int = SIZE, classes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`glyphs_batch`, and each image's heading: +1 for a bird or head facing right, -1 facing
    left (its beak's side in the unmirrored frame), 0 for the other classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES) if classes is None else np.asarray(classes)
    labels = labels.astype(np.int64)
    k = size / SIZE
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    background, foreground = _colours(rng, n)
    headings = np.zeros(n, np.float32)
    images = np.repeat(background[:, :, None, None], size, 2).repeat(size, 3)
    bird, head, wedge_, boundary, plain = (np.flatnonzero(labels == i) for i in range(len(CLASSES)))

    def paint(members, coverage):
        c = coverage[:, None]
        images[members] = images[members] * (1 - c) + foreground[members, :, None, None] * c

    for members, kind in ((bird, "bird"), (head, "head")):
        m = len(members)
        if not m:
            continue
        radius = rng.uniform(6, 12, m) * k
        cx = rng.uniform(2.2 * radius, size - 2.2 * radius)
        cy = rng.uniform(2.2 * radius, size - 1.6 * radius)
        tilt = rng.uniform(-np.pi / 9, np.pi / 9, m)
        facing = np.where(rng.uniform(size=m) < 0.5, 1.0, -1.0)
        headings[members] = facing
        with_beak, swapped = np.ones(m, bool), np.zeros(m, bool)
        if kind == "head":  # 60 % mismatched, 20 % without the beak, 20 % upside down
            variant = rng.uniform(size=m)
            swapped = variant < 0.6
            upside_down = variant >= 0.8
            tilt = tilt + np.pi * upside_down
            cy = np.where(upside_down, size - cy, cy)
            with_beak = (variant < 0.6) | upside_down
        coverage = np.where(
            with_beak[:, None, None],
            glyph(xs, ys, cx, cy, radius, tilt, facing, beak=True, swapped=swapped),
            glyph(xs, ys, cx, cy, radius, tilt, facing, beak=False),
        )
        paint(members, coverage)
    if len(wedge_):
        m = len(wedge_)
        radius = rng.uniform(10, 22, m) * k
        cx, cy = rng.uniform(16, size - 16, m) * k, rng.uniform(16, size - 16, m) * k
        paint(wedge_, wedge(xs, ys, cx, cy, radius, rng.uniform(0, 2 * np.pi, m)))
    for members, kind in ((boundary, "boundary"), (plain, "plain")):
        m = len(members)
        if not m:
            continue
        region = regions(xs, ys, rng, m, size)
        fine = texture(xs, ys, rng, m, size)
        second = rng.uniform(0, 1, (m, 3)).astype(np.float32)
        # The texture alternates between the two colours; the smooth side is one of them, their
        # mean (no edge in colour at all) or a third colour.
        a, b = background[members], foreground[members]
        choice = rng.integers(0, 3, m)[:, None]
        smooth = np.where(choice == 0, a, np.where(choice == 1, (a + b) / 2, second))
        textured = a[:, :, None, None] * (1 - fine[:, None]) + b[:, :, None, None] * fine[:, None]
        flat = np.repeat(smooth[:, :, None, None], size, 2).repeat(size, 3)
        if kind == "boundary":
            inside_textured = (rng.uniform(size=m) < 0.5)[:, None, None, None]
            r = region[:, None]
            on = np.where(inside_textured, r, 1 - r)
            images[members] = textured * on + flat * (1 - on)
        else:  # both sides smooth (a colour edge), or texture everywhere
            both_smooth = (rng.uniform(size=m) < 0.5)[:, None, None, None]
            other = np.repeat(second[:, :, None, None], size, 2).repeat(size, 3)
            edge = flat * region[:, None] + other * (1 - region[:, None])
            images[members] = np.where(both_smooth, edge, textured)
    images = images + rng.normal(0, 0.03, images.shape).astype(np.float32)
    return np.clip(images, 0, 1).astype(np.float32), labels, headings


def _colours(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random background and foreground colours with enough contrast to see the glyph.

    The same rule as `shapes_data._colours`, kept as a copy on purpose: a generator's own source
    file keys its probe sets (`datasets.dataset`), so it imports no drawing code."""
    background = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    foreground = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    luminance = lambda c: c @ np.array([0.299, 0.587, 0.114], np.float32)  # noqa: E731
    weak = np.abs(luminance(background) - luminance(foreground)) < 0.3
    light = luminance(background) > 0.5
    foreground[weak & light] *= 0.3
    foreground[weak & ~light] = 1 - (1 - foreground[weak & ~light]) * 0.3
    return background, foreground
