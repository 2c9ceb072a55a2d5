"""Tuning curves: a unit's peak response to every stimulus of a sweep (stimuli.py)."""

from __future__ import annotations

import time

import numpy as np
import torch

from distillgen import stimuli
from distillgen.engine import Output
from distillgen.engine.featurevis import png_bytes
from distillgen.engine.models import LoadedModel
from distillgen.engine.probe import responses
from distillgen.jobs import TuningJob, TuningResult


def compute(model: LoadedModel, jobs: list[TuningJob], device: torch.device, progress, load) -> list[Output]:
    outputs = []
    for job in jobs:
        start = time.perf_counter()
        images = stimuli.sweep_images(job.sweep)
        table = responses(model, job.layer, list(job.units), images, device)  # [values, units]
        files = {f"stimulus{i}.png": png_bytes(_pixels(image)) for i, image in enumerate(images)}
        result = TuningResult(
            values=job.sweep.values,
            responses=tuple(tuple(round(float(r), 6) for r in row) for row in table),
            stimuli=tuple(files),
        )
        outputs.append(Output(files, result, {"seconds": round(time.perf_counter() - start, 3)}))
        progress(1)
    return outputs


def _pixels(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1).transpose(1, 2, 0) * 255).round().astype(np.uint8)
