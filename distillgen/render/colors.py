"""The Circuits thread's diverging scale for weights: blue negative, grey zero, red positive."""

from __future__ import annotations

import numpy as np

STOPS = ("#0571b0", "#92c5de", "#f7f7f7", "#f4a582", "#ca0020")  # at -1, -0.5, 0, 0.5, 1


def diverging(value: float) -> str:
    """The colour of `value` in [-1, 1] (clipped), interpolated between the five stops."""
    position = (min(1.0, max(-1.0, value)) + 1) * 2  # 0 … 4
    index = min(int(position), 3)
    fraction = position - index
    low, high = _rgb(STOPS[index]), _rgb(STOPS[index + 1])
    return "#" + "".join(f"{round(a + (b - a) * fraction):02x}" for a, b in zip(low, high, strict=True))


def diverging_rgb(values: np.ndarray) -> np.ndarray:
    """`diverging` for an array of values in [-1, 1] (clipped): uint8 RGB, one more axis."""
    stops = np.array([_rgb(stop) for stop in STOPS], dtype=np.float64)
    position = (np.clip(values, -1.0, 1.0) + 1) * 2
    index = np.minimum(position.astype(int), 3)
    fraction = (position - index)[..., None]
    return np.rint(stops[index] + (stops[index + 1] - stops[index]) * fraction).astype(np.uint8)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def same_size(kernels: list[np.ndarray]) -> list[np.ndarray]:
    """Kernels of different sizes (units of different branches) zero-padded, centred, to the
    largest, so they can share a grid."""
    height = max(k.shape[-2] for k in kernels)
    width = max(k.shape[-1] for k in kernels)
    padded = []
    for kernel in kernels:
        dy, dx = height - kernel.shape[-2], width - kernel.shape[-1]
        pad = [(0, 0)] * (kernel.ndim - 2) + [(dy // 2, dy - dy // 2), (dx // 2, dx - dx // 2)]
        padded.append(np.pad(kernel, pad))
    return padded
