"""Ablations: a unit's peak response before and after an edit of the network, on a probe.

An edge is one input channel's influence on one unit: the unit is computed with that channel
(of an earlier layer, through every path between them) scaled, everything else as it was.
Between adjacent convolutions this is exactly scaling the weight slice `W[unit, channel]`.
Edges into a unit other than the target are applied in network order: that unit's edited map
is computed first, then spliced into the unedited network. A whole-unit edit scales the unit's
output for everything downstream. All edits are hooks, removed when the job is done.
"""

from __future__ import annotations

import base64
import time
from contextlib import ExitStack

import numpy as np
import torch

from distillgen import datasets, stimuli
from distillgen.engine import Output
from distillgen.engine.featurevis import model_input, render
from distillgen.engine.hooks import capture, run
from distillgen.engine.models import LoadedModel
from distillgen.engine.probe import BATCH, peak, replaced_channel, responses, scaled_channels
from distillgen.jobs import AblationJob, AblationResult, AttributionJob, Edit, FeatureVisJob, read_files


def compute(
    model: LoadedModel, jobs: list[AblationJob], device: torch.device, progress, load
) -> list[Output]:
    outputs = []
    for job in jobs:
        start = time.perf_counter()
        images, labels, before = probe_images(model, job, device)
        if before is None:
            before = responses(model, job.layer, [job.unit], images, device)[:, 0]
        after = edited_responses(model, job, images, device)
        if job.probe == "tuning" and job.sweep is not None:  # one response per value, over its draws
            before, after = (stimuli.mean_over_draws(r, job.sweep.draws) for r in (before, after))
            labels = list(job.sweep.values)
        result = AblationResult(
            before=tuple(round(float(v), 6) for v in before),
            after=tuple(round(float(v), 6) for v in after),
            labels=tuple(labels),
            mean_before=round(float(before.mean()), 6),
            mean_after=round(float(after.mean()), 6),
        )
        outputs.append(Output({}, result, {"seconds": round(time.perf_counter() - start, 3)}))
        progress(job.cost)
    return outputs


def probe_images(
    model: LoadedModel, job: AblationJob | AttributionJob, device: torch.device
) -> tuple[np.ndarray, list, np.ndarray | None]:
    """The probe's images, a label for each (dataset index, stimulus value, "featurevis", file
    name), and the unedited responses when finding the probe already measured them (top
    examples). An attribution reads its inputs the same way."""
    # the probe says which of sweep, settings, files and dataset the job has (jobs.AblationJob)
    if job.probe == "images":  # their bytes, read by `prepared` (here only if it was not called)
        encoded = job.pixels or read_files(job)
        decoded = [datasets.decode_image(base64.b64decode(data), model.input_size) for data in encoded]
        return np.stack(decoded), [image.name for image in job.files], None
    if job.probe == "tuning":  # each value's draws, one after another (stimuli.sweep_images)
        assert job.sweep is not None
        labels = [value for value in job.sweep.values for _ in range(job.sweep.draws)]
        return stimuli.sweep_images(job.sweep), labels, None
    if job.probe == "featurevis":
        assert job.settings is not None
        image = FeatureVisJob(job.model, job.fingerprint, job.layer, job.unit, settings=job.settings)
        (rendered,) = render(model, [image], device, lambda steps: None)
        pixels = rendered.images[0].astype(np.float32).transpose(2, 0, 1) / 255.0
        return pixels[None], ["featurevis"], None
    assert job.dataset is not None
    if job.ranked is not None:  # a folder's: its ranking's top images, the only ones read
        files, _labels = datasets.probe_files(job.dataset)
        chosen = np.stack([datasets.load_image(files[i], model.input_size) for i in job.ranked.images])
        return chosen, list(job.ranked.images), np.array(job.ranked.values, dtype=np.float64)
    pool = datasets.images(job.dataset, model.input_size)
    scores = responses(model, job.layer, [job.unit], pool, device)[:, 0]
    top = np.argsort(-scores, kind="stable")[: job.top]
    return pool[top], [int(i) for i in top], scores[top]


def edited_responses(model: LoadedModel, job: AblationJob, images: np.ndarray, device) -> np.ndarray:
    """The target's peak response to each image with the job's edits applied."""
    chunks = [
        _edited_batch(model, job, torch.from_numpy(images[start : start + BATCH]).to(device))
        for start in range(0, len(images), BATCH)
    ]
    return torch.cat(chunks).double().numpy()


def _edited_batch(model: LoadedModel, job: AblationJob, x: torch.Tensor) -> torch.Tensor:
    x = model_input(model)(x)
    order = list(model.layers)
    target = (job.layer, job.unit)
    groups: dict[tuple[str, int], list[Edit]] = {}  # edges by the unit they go into
    for edit in job.edits:
        if not edit.whole:
            groups.setdefault((edit.layer, edit.unit) if edit.layer else target, []).append(edit)
    with ExitStack() as active, torch.no_grad():
        for edit in job.edits:
            if edit.whole:
                active.enter_context(scaled_channels(model, edit.source, list(edit.units), edit.scale))
        for layer, unit in sorted(groups, key=lambda group: order.index(group[0])):
            with ExitStack() as scaling:  # only while this unit is computed
                for edit in groups[(layer, unit)]:
                    scaling.enter_context(scaled_channels(model, edit.source, list(edit.units), edit.scale))
                edited = _unit_map(model, layer, unit, x)
            if (layer, unit) == target:
                return peak(edited[:, None])[:, 0].float().cpu()
            active.enter_context(replaced_channel(model, layer, unit, edited))
        return peak(_unit_map(model, job.layer, job.unit, x)[:, None])[:, 0].float().cpu()


def _unit_map(model: LoadedModel, layer: str, unit: int, x: torch.Tensor) -> torch.Tensor:
    with capture(model.module, [layer]) as outputs:
        run(model.module, x, outputs)
        return outputs[layer][:, unit].clone()
