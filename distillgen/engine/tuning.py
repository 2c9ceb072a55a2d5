"""Tuning curves: a unit's peak response to every stimulus of a sweep (stimuli.py), averaged
over the sweep's jittered draws of each."""

from __future__ import annotations

import time

import numpy as np
import torch

from distillgen import stimuli
from distillgen.engine import Output
from distillgen.engine.featurevis import png_bytes
from distillgen.engine.models import LoadedModel
from distillgen.engine.probe import BATCH, responses
from distillgen.jobs import TuningJob, TuningResult


def compute(model: LoadedModel, jobs: list[TuningJob], device: torch.device, progress, load) -> list[Output]:
    outputs = []
    for job in jobs:
        start = time.perf_counter()
        sweep = job.sweep
        rows: list[np.ndarray] = []
        shown: list[np.ndarray] = []
        step = max(1, BATCH // sweep.draws)  # values at a time: a long sweep of many draws is large
        for first in range(0, len(sweep.values), step):
            images = stimuli.sweep_images(sweep, sweep.values[first : first + step])
            every = responses(model, job.layer, list(job.units), images, device)  # [values·draws, units]
            rows.append(stimuli.mean_over_draws(every, sweep.draws))
            shown.extend(images[:: sweep.draws])  # each value's first draw: the stimulus as written
        table = np.concatenate(rows)
        files = {f"stimulus{i}.png": png_bytes(_pixels(image)) for i, image in enumerate(shown)}
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
