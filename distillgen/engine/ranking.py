"""Rankings: every unit of every requested layer ranked over a folder of images, in one
streamed pass per model and folder (engine/stream.py decodes the images in worker processes).

Per unit and layer the pass keeps only the `top` strongest and weakest images seen so far (by
peak response, the maximum over positions, with the peak's position), so its memory is a few
batches of images and maps, whatever the folder's size. Ties keep the earlier image, as a
stable sort of every image's response would. The pass writes a checkpoint every
`CHECKPOINT_SECONDS` into the job's `resume` folder (the cache's `partial/`): a build that was
killed goes on from the last one when it asks for the same layers again.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import torch

from distillgen.engine import Output
from distillgen.engine.dictionary import npz_bytes
from distillgen.engine.featurevis import model_input
from distillgen.engine.hooks import capture, run
from distillgen.engine.models import LoadedModel
from distillgen.engine.stream import batches
from distillgen.jobs import RankingJob, RankingResult

CHECKPOINT_SECONDS = 60.0
BATCH = 32  # images per forward pass: every requested layer's maps of a batch are held at once
ENDS = ("top", "bottom")
FIELDS = ("values", "images", "positions")


def compute(model: LoadedModel, jobs: list[RankingJob], device: torch.device, progress, load) -> list[Output]:
    groups: dict[tuple, list[int]] = {}
    for index, job in enumerate(jobs):  # one pass over each folder, for all of its layers
        groups.setdefault((job.dataset, job.top), []).append(index)
    outputs: dict[int, Output] = {}
    for indices in groups.values():
        part = [jobs[i] for i in indices]
        for index, output in zip(indices, _pass(model, part, device, progress), strict=True):
            outputs[index] = output
    return [outputs[i] for i in range(len(jobs))]


def _pass(model: LoadedModel, jobs: list[RankingJob], device: torch.device, progress) -> list[Output]:
    started = time.perf_counter()
    dataset, top = jobs[0].dataset, jobs[0].top
    layers = sorted({job.layer for job in jobs})
    checkpoint = _checkpoint_path(jobs)
    state = _resumed(checkpoint, jobs) or {"next": 0, "skipped": [], "ranks": {}}
    progress(state["next"] * len(jobs))
    model.module.to(device)
    prepare = model_input(model)
    saved = time.perf_counter()
    with torch.no_grad(), capture(model.module, layers) as outputs:
        for batch in batches(dataset, model.input_size, start=state["next"], batch=BATCH):
            if len(batch.indices):
                run(model.module, prepare(batch.pixels.to(device)), outputs)
                for layer in layers:
                    values, positions = _peaks(outputs[layer].float().cpu())
                    ranks = state["ranks"].setdefault(layer, _empty(values.shape[1]))
                    _merge(ranks, values, torch.from_numpy(batch.indices), positions, top)
            state["skipped"] += batch.skipped
            read = len(batch.indices) + len(batch.skipped)
            state["next"] += read
            progress(read * len(jobs))
            if checkpoint and time.perf_counter() - saved > CHECKPOINT_SECONDS:
                _save(checkpoint, jobs, state)
                saved = time.perf_counter()
    probe_size = state["next"] - len(state["skipped"])
    seconds = (time.perf_counter() - started) / len(jobs)
    results = [_output(model, job, state, probe_size, seconds) for job in jobs]
    if checkpoint:
        checkpoint.unlink(missing_ok=True)
    return results


def _peaks(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's and unit's peak response and its position in the map (row-major)."""
    if maps.dim() == 2:  # a linear layer: its value, at the one position
        return maps, torch.zeros_like(maps, dtype=torch.long)
    values, positions = maps.flatten(2).max(dim=2)
    return values, positions


def _empty(units: int) -> dict[str, torch.Tensor]:
    return {
        f"{end}_{name}": torch.zeros(0, units, dtype=torch.float32 if name == "values" else torch.long)
        for end in ENDS
        for name in FIELDS
    }


def _merge(
    ranks: dict, values: torch.Tensor, images: torch.Tensor, positions: torch.Tensor, top: int
) -> None:
    """Keep each unit's `top` strongest and weakest images of those kept and the batch's
    ([images, units] each). Kept rows come first and hold earlier images, so a stable sort
    breaks ties toward the earlier image."""
    images = images[:, None].expand_as(values)
    for end in ENDS:
        merged = {
            "values": torch.cat([ranks[f"{end}_values"], values]),
            "images": torch.cat([ranks[f"{end}_images"], images]),
            "positions": torch.cat([ranks[f"{end}_positions"], positions]),
        }
        order = torch.sort(merged["values"], dim=0, descending=end == "top", stable=True).indices[:top]
        for name in FIELDS:
            ranks[f"{end}_{name}"] = merged[name].gather(0, order)


def _output(model: LoadedModel, job: RankingJob, state: dict, probe_size: int, seconds: float) -> Output:
    ranks = state["ranks"].get(job.layer) or _empty(model.layers[job.layer].channels)
    arrays = {
        name: tensor.T.contiguous().numpy().astype(np.float32 if name.endswith("values") else np.int32)
        for name, tensor in ranks.items()
    }
    shape = model.layers[job.layer].shape
    grid = (shape[1], shape[2]) if len(shape) == 3 else (1, 1)
    result = RankingResult(
        units=int(arrays["top_values"].shape[0]),
        kept=int(arrays["top_values"].shape[1]),
        probe_size=probe_size,
        grid=grid,
        skipped=tuple(state["skipped"]),
    )
    return Output({"ranking.npz": npz_bytes(arrays)}, result, {"seconds": round(seconds, 3)})


# -- checkpoints -----------------------------------------------------------------------------


def _checkpoint_path(jobs: list[RankingJob]) -> Path | None:
    """The pass's checkpoint: named by its jobs, so only the same pass resumes from it."""
    if not jobs[0].resume:
        return None
    digest = hashlib.sha256("".join(sorted(job.key for job in jobs)).encode()).hexdigest()[:24]
    return Path(jobs[0].resume) / f"ranking-{digest}.pt"


def _resumed(checkpoint: Path | None, jobs: list[RankingJob]) -> dict | None:
    """The state a killed pass saved, if it is this pass's and reads back whole."""
    if checkpoint is None or not checkpoint.is_file():
        return None
    try:
        state = torch.load(checkpoint, weights_only=True)
    except Exception:  # a checkpoint cut short by the kill itself: start again
        return None
    if not isinstance(state, dict) or state.get("keys") != sorted(job.key for job in jobs):
        return None
    return state


def _save(checkpoint: Path, jobs: list[RankingJob], state: dict) -> None:
    """Written by rename: a kill during the write leaves the previous checkpoint whole."""
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    staging = checkpoint.with_name(f".{checkpoint.name}.{os.getpid()}")
    torch.save({**state, "keys": sorted(job.key for job in jobs)}, staging)
    staging.replace(checkpoint)
