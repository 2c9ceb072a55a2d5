"""How much of a tuning curve is the pixel grid's (issue 33): the share of a curve's modulation
that repeats every 90°, and how far neighbouring 15° steps jump, for the arc units of the shapes
network drawn once, averaged over jittered draws (`:draws:`), and drawn at 8× the resolution and
shrunk by area (no aliasing left in the stimulus). If jitter and supersampling leave a share
unchanged, it is the network's, not the grid's.

    .venv/bin/python benchmarks/tuning_aliasing.py
"""

from __future__ import annotations

import numpy as np
import torch

from distillgen import stimuli
from distillgen.engine import tuning as engine
from distillgen.engine.models import load_model
from distillgen.engine.probe import responses
from distillgen.jobs import Sweep, TuningJob

UNITS = (52, 30, 27, 47)
ANGLES = tuple(15.0 * i for i in range(24))
ARC = (("radius", 12.0), ("span", 120.0))


def jittered(model, draws: int) -> np.ndarray:
    sweep = Sweep("curve", "", "orientation", ANGLES, ARC, 64, draws)
    job = TuningJob("shapes", "", "mixed4", UNITS, sweep)
    (output,) = engine.compute(model, [job], torch.device("cpu"), lambda n: None, None)
    return np.array(output.result.responses)


def supersampled(model, factor: int) -> np.ndarray:
    images = []
    for angle in ANGLES:
        ink = stimuli.curve(angle, 64 * factor, **dict(ARC))
        images.append(stimuli.render(ink.reshape(64, factor, 64, factor).mean(axis=(1, 3))))
    return responses(model, "mixed4", list(UNITS), np.stack(images), torch.device("cpu"))


def measures(curve: np.ndarray) -> tuple[float, float, float]:
    power = np.abs(np.fft.rfft(curve - curve.mean())) ** 2
    share = power[4] / power[1:].sum()  # 24 samples over 360°: the 4th harmonic repeats every 90°
    jump = np.abs(np.diff(np.r_[curve, curve[0]])).mean() / np.ptp(curve)
    return float(curve.max() / curve.min()), float(share), float(jump)


def main() -> None:
    torch.set_num_threads(2)
    model = load_model("shapes")
    runs = {
        "drawn once": jittered(model, 1),
        f"{stimuli.DRAWS} jittered draws": jittered(model, stimuli.DRAWS),
        "32 jittered draws": jittered(model, 32),
        "8x supersampled, once": supersampled(model, 8),
    }
    print(f"{'':24}" + "".join(f"mixed4:{u:<22}" for u in UNITS))
    print(f"{'':24}" + "peak/trough 90°-share jump  " * len(UNITS))
    for name, table in runs.items():
        cells = "".join(
            "{:>11.2f}{:>9.2f}{:>6.2f}  ".format(*measures(table[:, i])) for i in range(len(UNITS))
        )
        print(f"{name:24}{cells}")


if __name__ == "__main__":
    main()
