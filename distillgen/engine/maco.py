"""MACO: feature visualization with the Fourier magnitude fixed and only the phase optimized.

Fel et al., NeurIPS 2023, "Unlocking Feature Visualization for Deeper Networks with MAgnitude
Constrained Optimization". lucent's fft parameterization optimizes the whole spectrum, scaled
by 1/frequency; on deeper layers it drifts to high-frequency, adversarial-looking patterns. MACO
keeps each image's magnitude spectrum at the mean magnitude of natural images (here: the probe
set's), so the optimization can only move structure around (the phase), never add energy at
frequencies natural images lack.

`parameterize` has the contract of featurevis' `_parameterize`: one tensor for the batch, each
image's initial phase drawn from its own seed, and every operation per image (an irfft2 per
image, reductions within an image, a colour matmul rather than a 1×1 convolution), so an image
never depends on what shares its batch.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional

from distillgen import datasets
from distillgen.engine import Output
from distillgen.engine.models import LoadedModel
from distillgen.jobs import SpectrumJob, SpectrumResult

# lucent's colour correlation (the square root of ImageNet's colour covariance, normalized by
# its largest column norm): the same matrix featurevis applies to lucent's images.
COLOR_CORRELATION = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
COLOR_CORRELATION /= np.max(np.linalg.norm(COLOR_CORRELATION, axis=0))

# From irfft2's output to pixels: standardized over the whole image (all channels together, zero
# mean and unit standard deviation, as MACO does), colours recorrelated, then sigmoid(GAIN * x).
# - Standardized, because the magnitude fixes the image's energy (Parseval): the scale of
#   irfft2's output is the spectrum's, not something the optimizer chose, and the contrast is
#   then set here, the same for every probe set.
# - Over the whole image, not per channel: each channel's mean is the zero-frequency term,
#   mag[c, 0, 0] * cos(phase[c, 0, 0]), which the phase controls. Standardized together, a
#   channel can spend the image's fixed contrast on a flat colour instead of texture; units
#   that want a nearly uniform colour (3 of shapes' first 8 mixed4 units) reach lucent's value
#   that way, and fall to about 0.3 of it when each channel is standardized on its own.
# - A sigmoid, not a clamp: a clamp gives saturated pixels no gradient, and the phase stops
#   moving where the image is brightest or darkest; the sigmoid keeps some gradient everywhere.
# - GAIN 10: near-binary, high-contrast images, as lucent's unconstrained spectrum reaches
#   (its images are mostly saturated). On shapes mixed4 units 0-7 (512 steps, size 64, Adam
#   lr 0.1, seed 0) MACO's mean activation is 0.30 of lucent's at GAIN 1, 0.60 at 4, 0.83 at
#   8, 0.86 at 10, 0.85 at 12; lower learning rates change little, 0.4 and above do worse.
GAIN = 10.0
# Initial phase: uniform over the circle, the phase of a random natural-looking texture with
# this magnitude. (A small phase, as horama draws it, puts every frequency in step at the
# origin: the first image is one bright blob in a corner.)
PHASE_RANGE = float(np.pi)


def spectrum(images: np.ndarray, size: int) -> np.ndarray:
    """[3, size, size // 2 + 1] float32: the mean magnitude of rfft2 of the images (each resized
    to size×size first if needed), per colour channel; the magnitude MACO's images keep."""
    batch = torch.from_numpy(np.asarray(images, np.float32))
    if batch.shape[-2:] != (size, size):
        batch = functional.interpolate(batch, size=(size, size), mode="bilinear", antialias=True)
    total = torch.zeros(batch.shape[1], size, size // 2 + 1, dtype=torch.float64)
    for start in range(0, len(batch), 256):  # in chunks: a large probe set's spectra at once is big
        total += torch.fft.rfft2(batch[start : start + 256].double()).abs().sum(dim=0)
    return (total / len(batch)).float().numpy()


def parameterize(
    magnitude: np.ndarray, seeds: list[int], device: torch.device
) -> tuple[Callable[[], torch.Tensor], list[torch.Tensor]]:
    """One phase tensor for the whole batch (len(seeds) images, side from magnitude's shape);
    image i's initial phase is drawn from seeds[i] alone (a torch.Generator seeded per image,
    on the CPU, then moved), so an image never depends on what shares its batch. `images()`
    returns [count, 3, size, size] in [0, 1], differentiable w.r.t. the phase."""
    channels, size, half = magnitude.shape
    if half != size // 2 + 1:
        raise ValueError(f"magnitude {magnitude.shape} is not an rfft2 spectrum of a square image")
    draws = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        draws.append((torch.rand((channels, size, half), generator=generator) * 2 - 1) * PHASE_RANGE)
    phase = torch.stack(draws).to(device).requires_grad_(True)
    fixed = torch.from_numpy(np.asarray(magnitude, np.float32)).to(device)
    recorrelate = torch.from_numpy(COLOR_CORRELATION.T.copy()).to(device)  # [in, out]

    def images() -> torch.Tensor:
        spatial = torch.fft.irfft2(torch.polar(fixed.expand_as(phase), phase), s=(size, size))
        flat = spatial.flatten(1)
        mean, std = flat.mean(dim=1), flat.std(dim=1)
        spatial = (spatial - mean[:, None, None, None]) / (std[:, None, None, None] + 1e-8)
        # Colours mixed as lucent mixes them, channel by channel and elementwise: not a 1×1
        # convolution nor a matmul, whose kernels (a matmul's gradient too) sum in an order that
        # changes with the batch size (a batch of one differs in the last bits, and 512 steps
        # make that a different image), and an image must not depend on what shares its batch.
        mixed = spatial[:, :1] * recorrelate[0][None, :, None, None]
        for k in range(1, channels):
            mixed = mixed + spatial[:, k : k + 1] * recorrelate[k][None, :, None, None]
        return torch.sigmoid(GAIN * mixed)

    return images, [phase]


def compute(
    model: LoadedModel, jobs: list[SpectrumJob], device: torch.device, progress, load
) -> list[Output]:
    """Spectrum jobs: `spectrum.npy` per probe set and size (model-independent work, keyed
    with the model whose feature visualizations read it)."""
    outputs = []
    for job in jobs:
        images = datasets.images(job.dataset, model.input_size)  # as the model sees them; resized
        buffer = io.BytesIO()
        np.save(buffer, spectrum(images, job.side))
        outputs.append(Output({"spectrum.npy": buffer.getvalue()}, SpectrumResult(job.side, len(images)), {}))
        progress(job.cost)
    return outputs
