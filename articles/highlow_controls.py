"""A high-low frequency boundary and its three controls, as one stimulus family for `{tuning}`:
the swept value numbers the condition, so one figure shows a unit's response to each.

    1  the boundary: a grating on one side, a smooth field of the grating's mean brightness on
       the other (distillgen's built-in `boundary`)
    2  full field: the grating everywhere (texture, but no boundary)
    3  flat: the smooth field everywhere (neither)
    4  no contrast in frequency: both sides smooth, one darker than the other (a boundary in
       brightness alone, like the glyphs task's "plain" class)

`orientation` points from the smooth side into the textured one, as in `boundary`; `phase`,
`frequency`, `dx` and `dy` are what distillgen's jittered draws vary. Returns ink coverage in
[0, 1], which distillgen draws on its light background.
"""

import numpy as np


def condition(number, size, orientation=135.0, frequency=16.0, phase=0.0, dx=0.0, dy=0.0):
    scale = size / 64  # dx and dy are in pixels of a 64-pixel image, as distillgen's lengths
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    xs, ys = xs - dx * scale - size / 2, ys - dy * scale - size / 2
    angle = np.deg2rad(orientation)
    across = xs * np.cos(angle) + ys * np.sin(angle)  # towards the textured side
    along = (-xs * np.sin(angle) + ys * np.cos(angle)) / size
    grating = 0.5 + 0.5 * np.sin(2 * np.pi * frequency * along + np.deg2rad(phase))
    textured = np.clip(across + 0.5, 0, 1)  # anti-aliased over one pixel
    smooth = np.full_like(grating, 0.5)
    chosen = {
        1: grating * textured + smooth * (1 - textured),
        2: grating,
        3: smooth,
        4: 0.5 * textured + 0.25 * (1 - textured),
    }[int(round(number))]
    return chosen.astype(np.float32)
