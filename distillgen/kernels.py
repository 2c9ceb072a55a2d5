"""Kernels as the weights engine stores them ([source channels, height, width] in `kernels.npy`):
reading them, and ranking source channels by strength (L2 norm), strongest first."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np


def read(path: Path) -> np.ndarray:
    return np.load(io.BytesIO(path.read_bytes()))


def norms(stack: np.ndarray) -> np.ndarray:
    """Each kernel's L2 norm: [channels]."""
    return np.sqrt((stack**2).sum(axis=(1, 2)))


def strongest_first(stack: np.ndarray) -> list[int]:
    """Source channels by the L2 norm of their kernel, strongest first (ties in channel order)."""
    return ranked(norms(stack))


def ranked(norms) -> list[int]:
    """Channels by their norm (a sequence of floats), strongest first, ties in channel order."""
    values = [float(value) for value in norms]
    return sorted(range(len(values)), key=lambda channel: -values[channel])
