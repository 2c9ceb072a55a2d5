"""Look for issue 16's circuits in a glyphs network: left/right-facing detectors with their
union, and high-low frequency detectors with their high- and low-frequency sources.

    .venv/bin/python benchmarks/zoo_circuits.py glyphs-aux [--sources 4]

Every number is measured with the engine's own code (`probe.responses`; for edges
`ablation.edited_responses`, or `probe.scaled_channels` for all of a mixed3 unit's edges into
mixed4 at once), on the stimulus families of `stimuli.py` and on fresh birds drawn like the
training data; units are ranked by the criteria printed, never picked.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from distillgen import stimuli
from distillgen.engine.ablation import edited_responses
from distillgen.engine.models import load_model
from distillgen.engine.probe import responses, scaled_channels, unit_maps
from distillgen.jobs import AblationJob, Edit, Sweep
from distillgen.zoo import glyphs_data

CPU = torch.device("cpu")
EARLIER = {"mixed4": "mixed3", "mixed3": "conv2", "conv2": "conv1"}


def birds(n: int, facing: float, swapped: bool, seed: int) -> np.ndarray:
    """Fresh upright birds (or mismatched heads) facing one way, drawn like the training set."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:64, 0:64].astype(np.float32) + 0.5
    r = rng.uniform(6, 12, n)
    cx, cy = rng.uniform(2.2 * r, 64 - 2.2 * r), rng.uniform(2.2 * r, 64 - 1.6 * r)
    tilt = rng.uniform(-np.pi / 9, np.pi / 9, n)
    ink = glyphs_data.glyph(xs, ys, cx, cy, r, tilt, np.full(n, facing), swapped=np.full(n, swapped))
    background, foreground = glyphs_data._colours(rng, n)
    images = background[:, :, None, None] * (1 - ink[:, None]) + foreground[:, :, None, None] * ink[:, None]
    return np.clip(images + rng.normal(0, 0.03, images.shape), 0, 1).astype(np.float32)


def all_responses(model, layer: str, images: np.ndarray) -> np.ndarray:
    return responses(model, layer, list(range(model.layers[layer].shape[0])), images, CPU)


def sweep(family: str, values, **fixed) -> Sweep:
    param = stimuli.FAMILIES[family][1]
    return Sweep(family, "", param, tuple(float(v) for v in values), tuple(sorted(fixed.items())), 64)


def edge_drops(model, spec: str, layer: str, unit: int, source: str, probe: Sweep) -> np.ndarray:
    """Per source channel: the relative drop of the unit's mean response when its edge is zeroed."""
    images = stimuli.sweep_images(probe)
    before = all_responses(model, layer, images)[:, unit].mean()
    drops = []
    for channel in range(model.layers[source].shape[0]):
        job = AblationJob(spec, "", layer, unit, (Edit(source, (channel,)),), "tuning", sweep=probe)
        drops.append(1 - edited_responses(model, job, images, CPU).mean() / before)
    return np.array(drops)


def facing(model, spec: str) -> None:
    print("== facing: mean peak response to 200 fresh birds and mismatched heads each way")
    sets = {
        "bird-L": birds(200, -1.0, False, 2),
        "bird-R": birds(200, 1.0, False, 1),
        "mismatch-L": birds(200, -1.0, True, 4),
        "mismatch-R": birds(200, 1.0, True, 3),
    }
    for layer in ("mixed3", "mixed4"):
        bl, br, ml, mr = (all_responses(model, layer, images).mean(0) for images in sets.values())
        top = np.maximum.reduce([bl, br]) + 1e-6
        for name, score in (("left-facing", (bl - br) / top), ("right-facing", (br - bl) / top)):
            best = np.argsort(-score)[:3]
            rows = "; ".join(
                f"{layer}:{u} L {bl[u]:.2f} R {br[u]:.2f} mismatched {ml[u]:.2f}/{mr[u]:.2f}" for u in best
            )
            print(f"  {layer} most {name} ({np.sum(score > 0.5)} units prefer it by half): {rows}")
    union(model, spec)


def union(model, spec: str) -> None:
    """Rank mixed4 units as unions: each answers both upright headings, and has one mixed3 edge
    that matters for birds facing left only and one that matters for birds facing right only."""
    values = stimuli.sweep(0, 360, 72, True)
    windows = {"left": "165..195", "right": "345..15"}  # within 15° of upright, as trained (±20°)
    inside = {side: np.array([_within(v, text) for v in values]) for side, text in windows.items()}
    images = stimuli.sweep_images(sweep("facing", values))
    before = all_responses(model, "mixed4", images)
    mean = {side: before[keep].mean(0) for side, keep in inside.items()}
    both = np.minimum(mean["left"], mean["right"])
    candidates = np.flatnonzero(
        (both > 0.3 * both.max()) & (both > 0.7 * np.maximum(mean["left"], mean["right"]))
    )
    # Zeroing mixed3:c is zeroing its edges into every mixed4 unit at once (mixed4 reads only mixed3).
    drops = {side: [] for side in windows}
    for channel in range(model.layers["mixed3"].shape[0]):
        with scaled_channels(model, "mixed3", [channel], 0.0):
            after = all_responses(model, "mixed4", images)
        for side, keep in inside.items():
            drops[side].append(1 - after[keep].mean(0) / (mean[side] + 1e-9))
    left, right = np.array(drops["left"]), np.array(drops["right"])  # [mixed3 channel, mixed4 unit]
    # An edge is selective when it changes the other side by less than 10 %: what the article predicts.
    own_left = np.where(np.abs(right) < 0.1, left, -np.inf)
    own_right = np.where(np.abs(left) < 0.1, right, -np.inf)
    score = np.minimum(own_left.max(0), own_right.max(0))
    print(
        f"== union: {len(candidates)} mixed4 units answer both upright headings (facing sweep, 5° steps,"
        f" left {windows['left']}, right {windows['right']}); ranked by the weaker of their best selective"
        " edges (the largest drop on its own side among edges changing the other side by < 10 %)"
    )
    for u in sorted(candidates, key=lambda u: -score[u])[:3]:
        cl, cr = int(np.argmax(own_left[:, u])), int(np.argmax(own_right[:, u]))
        print(
            f"  mixed4:{u} (left {mean['left'][u]:.2f}, right {mean['right'][u]:.2f}): "
            f"zeroing mixed3:{cl} {-left[cl, u]:+.0%} left / {-right[cl, u]:+.0%} right; "
            f"zeroing mixed3:{cr} {-left[cr, u]:+.0%} left / {-right[cr, u]:+.0%} right"
        )


def _within(value: float, window: str) -> bool:
    low, high = (float(x) for x in window.split(".."))
    return low <= value <= high if low <= high else value >= low or value <= high


def high_low(model, spec: str, layer: str, sources: int) -> None:
    orientations = stimuli.sweep(0, 360, 24, True)
    images = stimuli.sweep_images(sweep("boundary", orientations))
    flat = stimuli.render(np.full((64, 64), 0.5, np.float32))[None]
    full = np.stack([stimuli.render(stimuli.grating(16, 64, orientation=o)) for o in (0, 45, 90, 135)])
    curves = all_responses(model, layer, images)
    controls = np.maximum(all_responses(model, layer, flat)[0], all_responses(model, layer, full).max(0))
    peak, best = curves.max(0), curves.argmax(0)
    opposite = curves[(best + 12) % 24, np.arange(curves.shape[1])]
    found = [
        u
        for u in np.argsort(-peak)
        if peak[u] > 0.25 * peak.max() and controls[u] < 0.5 * peak[u] and opposite[u] < 0.5 * peak[u]
    ]
    print(f"== high-low: {len(found)} {layer} units (boundary peak > 25% of the layer's; smooth and")
    print("   full-grating controls < 50% of it; the opposite orientation < 50%)")
    earlier = EARLIER[layer]
    for rank, u in enumerate(found):
        print(
            f"  {layer}:{u} peak {peak[u]:.2f} at {orientations[best[u]]:.0f}°, "
            f"controls {controls[u]:.2f}, opposite {opposite[u]:.2f}"
        )
        if rank >= sources:
            continue
        around = [orientations[(best[u] + d) % 24] for d in (-1, 0, 1)]
        drops = edge_drops(model, spec, layer, u, earlier, sweep("boundary", around))
        n = model.layers[earlier].shape[0]
        maps = unit_maps(model, earlier, list(range(n)), images[best[u] : best[u] + 1], CPU)[0].numpy()
        side = maps.shape[-1]
        ys, xs = (np.mgrid[0:side, 0:side] + 0.5) / side - 0.5
        angle = np.deg2rad(orientations[best[u]])
        across = xs * np.cos(angle) + ys * np.sin(angle)
        textured, smooth = maps[:, across > 0.1].mean(1), maps[:, across < -0.1].mean(1)
        for kind, keep in (
            ("high-frequency", textured > 3 * smooth + 0.1),
            ("low-frequency", smooth > 3 * textured + 0.1),
        ):
            for c in [c for c in np.argsort(-drops) if keep[c]][:2]:
                print(
                    f"    {kind} source {earlier}:{c}: zeroing its edge drops {drops[c]:.0%} "
                    f"(its mean on the textured side {textured[c]:.2f}, on the smooth side {smooth[c]:.2f})"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default="glyphs")
    parser.add_argument("--sources", type=int, default=4, help="high-low units whose sources to ablate")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = load_model(args.spec)
    facing(model, args.spec)
    high_low(model, args.spec, "mixed4", args.sources)


if __name__ == "__main__":
    main()
