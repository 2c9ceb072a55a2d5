"""The experiment engines against the code a researcher would otherwise write, on the same work.

lucent has no tuning curves or ablations to compare with, so the peer here is the usual notebook
code, run in the same process on the same inputs:

- tuning: 24 arcs, the four curve detectors of `mixed4`. Peer: one forward pass per stimulus
  through the whole network, reading the layer with a hook.
- edge ablation between adjacent layers, `conv2:7 -> mixed3.b1x1:3`, on the unit's top 100 of
  1,000 probe images. Peer: draw the probe, rank it, deep-copy the model, zero the weight slice
  `W[3, 7]`, run the copy. The two must agree: between adjacent layers, the engine's edge edit
  is exactly that weight edit.

    python benchmarks/experiments.py
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from distillgen import datasets, stimuli
from distillgen.engine import run_jobs
from distillgen.engine.models import ModelStore
from distillgen.jobs import AblationJob, Edit, Sweep, TuningJob

REPEATS = 5
CPU = torch.device("cpu")


def best_of(work) -> tuple[float, object]:
    times, result = [], None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def peak_by_hand(module, layer: str, units: list[int], images: np.ndarray) -> np.ndarray:
    """The notebook loop: one image at a time, a hook on the layer, the whole forward pass."""
    seen = {}
    handle = dict(module.named_modules())[layer].register_forward_hook(lambda m, i, o: seen.update(out=o))
    rows = []
    with torch.no_grad():
        for image in images:
            module(torch.from_numpy(image[None]))
            rows.append(seen["out"][0, units].flatten(1).amax(dim=1).numpy())
    handle.remove()
    return np.stack(rows)


def peak_of(module, pictures: np.ndarray) -> np.ndarray:
    """`mixed3.b1x1:3`'s peak response to each picture, from one batched forward pass."""
    seen = {}
    handle = module.mixed3.b1x1.register_forward_hook(lambda m, i, o: seen.update(out=o))
    with torch.no_grad():
        module(torch.from_numpy(pictures))
    handle.remove()
    return seen["out"][:, 3].flatten(1).amax(dim=1).numpy()


def main() -> None:
    torch.set_num_threads(2)
    store = ModelStore()
    model = store.get("shapes")
    rows = []

    sweep = Sweep("curve", "", "orientation", tuple(stimuli.sweep(0, 360, 24, True)))
    job = TuningJob("shapes", "benchmark", "mixed4", (52, 30, 27, 47), sweep)
    ours, (output,) = best_of(lambda: run_jobs(model, [job], CPU, lambda n: None, store.get))
    images = stimuli.sweep_images(sweep)
    theirs, expected = best_of(lambda: peak_by_hand(model.module, "mixed4", [52, 30, 27, 47], images))
    difference = np.abs(np.array(output.result.responses) - expected).max()
    rows.append(("tuning: 24 arcs × 4 units", theirs, ours, difference))

    probe = datasets.dataset("shapes", 1000, 0, None)
    edit = Edit("conv2", (7,), "mixed3.b1x1", 3)
    ablation = AblationJob("shapes", "benchmark", "mixed3.b1x1", 3, (edit,), "examples", probe, top=100)
    ours, (output,) = best_of(lambda: run_jobs(model, [ablation], CPU, lambda n: None, store.get))

    def by_hand() -> np.ndarray:
        """The same figure in a notebook: draw the probe, rank it by the unit, edit a copy."""
        pictures = datasets.images(probe, 64)
        scores = peak_of(model.module, pictures)
        top = pictures[np.argsort(-scores, kind="stable")[:100]]
        edited = copy.deepcopy(model.module)
        edited.mixed3.b1x1.conv.weight[3, 7] = 0  # the convolution inside the ConvReLU
        return peak_of(edited, top)

    theirs, expected = best_of(by_hand)
    difference = np.abs(np.array(output.result.after) - expected).max()
    rows.append(("edge ablation on the unit's top 100 of 1,000 images", theirs, ours, difference))

    print(f"{'work':<78} {'by hand s':>9} {'engine s':>9} {'speedup':>8} {'max |diff|':>11}")
    for name, hand, engine, diff in rows:
        print(f"{name:<78} {hand:9.3f} {engine:9.3f} {hand / engine:7.1f}× {diff:11.2e}")


if __name__ == "__main__":
    main()
