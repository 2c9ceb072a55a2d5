"""lucent's standard transforms, drawn as lucent draws them, with two resamplings instead of four.

lucent's `standard_transforms` pad the image with grey by 12 px, translate it by 0-7 px, scale it
by 0.90-1.10, rotate it by -10° to 10° and translate it by 0-3 px: four resamplings of the
batch (three kornia warps, each making a grid per image, and an upsample). On a small network
they cost more than the network (shapes `mixed3`: the engine took 3.0x the network's own
forward and backward pass per image-step; 2.3x with this module). Here the translations are
whole-pixel shifts (as Lucid's jitter is a crop; kornia's translate resamples by a hair over the
shift), and the last one rides on the rotation's resampling, whose grid is made once for the
batch. Same random draws from numpy's global generator in lucent's order, same output size.

Why not one resampling for all of it: composed into a single affine map, the transforms stop
blurring the image's border into the padding, and units that are silent on a grey image
(half of the shapes network's `mixed3`) then get no gradient and stay at zero; lucent's
upsample followed by a rotation gives them one, and so does this.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional

PAD = 12  # grey border, in pixels
FIRST_JITTER = 8  # translation by 0..7 px before scaling
SCALES = [1 + (i - 5) / 50 for i in range(11)]  # 0.90 .. 1.10
ANGLES = [*range(-10, 11), *[0] * 5]  # degrees; lucent weights "no rotation" six times
LAST_JITTER = 4  # translation by 0..3 px after rotating


def standard(images: torch.Tensor) -> torch.Tensor:
    """`images` [B, C, H, W] with lucent's standard transforms (one draw for the batch, as
    lucent's): [B, C, H', W'], H' and W' as lucent's scaling leaves them."""
    padded = functional.pad(images, [PAD] * 4, value=0.5)
    dx, dy = np.random.choice(FIRST_JITTER), np.random.choice(FIRST_JITTER)
    scale = np.random.choice(SCALES)
    angle = np.random.choice(ANGLES)
    last_dx, last_dy = np.random.choice(LAST_JITTER), np.random.choice(LAST_JITTER)
    scaled = _scale(_shift(padded, dx, dy), scale)
    return _rotate_and_shift(scaled, angle, last_dx, last_dy)


def _shift(images: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Moved right by dx and down by dy whole pixels, zeros coming in: exact, no resampling.
    One padding whose negative sides crop: a new tensor, where a slice would hand the next
    resampling a strided view to copy."""
    dx, dy = int(dx), int(dy)
    return functional.pad(images, [dx, -dx, dy, -dy])


def _scale(images: torch.Tensor, scale: float) -> torch.Tensor:
    """lucent's random_scale: resized to the rounded-up size (bilinear, corners aligned), a
    smaller image padded back with zeros, its padding list read as (left, right, top, bottom)
    = (pad_y, pad_x, pad_y, pad_x)."""
    height, width = images.shape[2:]
    size = (math.ceil(scale * height), math.ceil(scale * width))
    if size == (height, width):
        return images  # lucent's upsample to the same size reads every pixel where it is
    pad_x = max(0, math.ceil((width - size[1]) / 2))
    pad_y = max(0, math.ceil((height - size[0]) / 2))
    resized = functional.interpolate(images, size=size, mode="bilinear", align_corners=True)
    return functional.pad(resized, [pad_y, pad_x] * 2)


def _rotate_and_shift(images: torch.Tensor, degrees: float, dx: int, dy: int) -> torch.Tensor:
    """Rotated about the centre (counter-clockwise, as kornia's and OpenCV's), then moved by
    (dx, dy) pixels: one bilinear resampling with zeros outside, its grid made once for the
    batch."""
    if degrees == 0:
        return _shift(images, dx, dy)  # what the resampling would read, exactly
    height, width = images.shape[2:]
    cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    # Where output pixel (x, y) reads, in pixels: undo the shift, then the rotation.
    cx, cy = (width - 1) / 2, (height - 1) / 2
    to_input = np.array(
        [
            [cos, -sin, cx - cos * (cx + dx) + sin * (cy + dy)],
            [sin, cos, cy - sin * (cx + dx) - cos * (cy + dy)],
        ]
    )
    # grid_sample reads coordinates normalized to -1..1 (corners aligned); the same in and out
    normal = np.array([[2 / (width - 1), 0, -1], [0, 2 / (height - 1), -1], [0, 0, 1]])
    theta = normal[:2] @ np.vstack([to_input, [0, 0, 1]]) @ np.linalg.inv(normal)
    theta = torch.tensor(theta, dtype=images.dtype, device=images.device)
    grid = functional.affine_grid(theta[None], [1, images.shape[1], height, width], align_corners=True)
    grid = grid.expand(images.shape[0], -1, -1, -1)
    return functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
