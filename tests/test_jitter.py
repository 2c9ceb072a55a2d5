"""Stimulus sweeps average jittered draws (issue 33): drawn at one position on the pixel grid, a
line at 0° and one at 45° differ in more than orientation, and a tuning curve inherits the
difference. A constructed unit with a known filter shows what the averaging buys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from distillgen import stimuli
from distillgen.figures.tuning import selectivity
from distillgen.jobs import Sweep, TuningJob
from tests.conftest import run_cli, write

# One convolution: a zero-mean, elongated centre-surround filter that answers a dark horizontal
# line (0°) most, falling off smoothly as the line turns; its map's maximum is the response.
ORIENTED = """
import math
import torch
from torch import nn


class Oriented(nn.Module):
    input_size = 64

    def __init__(self):
        super().__init__()
        r = torch.arange(15, dtype=torch.float64) - 7
        y, x = torch.meshgrid(r, r, indexing="ij")
        along = torch.exp(-x**2 / 32)
        across = torch.exp(-y**2 / 2) - torch.exp(-y**2 / 12.5) / 2.5
        kernel = along * across
        self.filter = nn.Conv2d(3, 1, 15, padding=7, bias=False)
        with torch.no_grad():
            self.filter.weight.copy_(-(kernel - kernel.mean()).float().expand(1, 3, 15, 15) / 3)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.filter(x))


def build():
    return Oriented()
"""

ANGLES = tuple(7.5 * i for i in range(24))  # 0..172.5: lines, every 7.5°


@pytest.fixture(scope="module")
def oriented(tmp_path_factory):
    from distillgen.engine.models import load_model
    from distillgen.units import parse_spec

    folder = tmp_path_factory.mktemp("oriented")
    write(folder / "model.py", ORIENTED)
    return load_model(parse_spec("model.py:build", folder))


def tuning(model, draws: int) -> np.ndarray:
    """The unit's tuning curve over ANGLES, through the tuning engine."""
    import torch

    from distillgen.engine import tuning as engine

    sweep = Sweep("line", "", "orientation", ANGLES, size=64, draws=draws)
    job = TuningJob("model.py:build", "", "relu", (0,), sweep)
    (output,) = engine.compute(model, [job], torch.device("cpu"), lambda n: None, None)
    return np.array([row[0] for row in output.result.responses])


def roughness(curve: np.ndarray) -> float:
    """Squared second differences around the circle, relative to the curve's range: how much it
    jumps between neighbouring angles."""
    wrapped = np.r_[curve[-1], curve, curve[0]]
    return float(np.sum(np.diff(wrapped, 2) ** 2) / np.ptp(curve) ** 2)


def test_jittered_sweeps_measure_a_known_filter_more_truly(oriented):
    once, jittered = tuning(oriented, 1), tuning(oriented, 8)
    # The filter's own tuning: its response to a line averaged over every sub-pixel position,
    # approached with many draws.
    truth = tuning(oriented, 48)
    error = {
        name: float(np.abs(curve - truth).max() / truth.max())
        for name, curve in (("once", once), ("jittered", jittered))
    }
    assert error["jittered"] < error["once"] / 3, error
    assert roughness(jittered) < 0.7 * roughness(once)
    true_osi = selectivity(list(ANGLES), list(truth)).osi
    found = {
        name: selectivity(list(ANGLES), list(curve))
        for name, curve in (("once", once), ("jittered", jittered))
    }
    assert abs(found["jittered"].osi - true_osi) < abs(found["once"].osi - true_osi)
    # the filter's orientation (drawn once, a line at 172.5° happened to answer more than at 0°)
    assert found["jittered"].preferred == 0


def test_draws_follow_the_stated_rule():
    pixel = stimuli.CANVAS / 64
    draws = stimuli.draws(stimuli.curve, "orientation", {"radius": 10.0}, 8, pixel)
    assert draws[0] == {"radius": 10.0, "dx": 0.0, "dy": 0.0}  # the first is the stimulus as written
    for name in ("dx", "dy"):
        offsets = [d[name] for d in draws]
        assert all(abs(o) <= pixel / 2 for o in offsets) and len(set(offsets)) == 8
    assert all(9.0 <= d["radius"] <= 11.0 for d in draws)  # ±10% around the written radius
    phases = [d["phase"] for d in stimuli.draws(stimuli.boundary, "orientation", {}, 4, pixel)]
    assert phases == [0.0, 90.0, 180.0, 270.0]
    # a swept parameter is never varied: boundary-frequency sweeps the frequency itself
    assert all("frequency" not in d for d in stimuli.draws(stimuli.boundary_frequency, "frequency", {}, 4, 1))
    assert stimuli.draws(stimuli.curve, "orientation", {}, 8, 1) == stimuli.draws(
        stimuli.curve, "orientation", {}, 8, 1
    )  # every build draws the same


ARTICLE = """
---
title: Draws
---
```{tuning} mixed3:5
:label: fig-once
:stimulus: line
:range: 0 180 6
:draws: 1
Drawn once.
```

```{tuning} mixed3:5
:label: fig-jittered
:stimulus: line
:range: 0 180 6
Jittered.
```
"""


def test_a_tuning_figure_averages_its_draws_and_says_how_many(tmp_path: Path):
    src = write(tmp_path / "src" / "a.md", ARTICLE).parent
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 0, result.output
    records = json.loads((tmp_path / "out" / "a" / "figures.json").read_text())["figures"]
    by_draws = {r["job"]["sweep"].get("draws", 1): r["result"]["responses"] for r in records}
    assert set(by_draws) == {1, stimuli.DRAWS}  # a sweep is keyed with its draws
    assert by_draws[1] != by_draws[stimuli.DRAWS]  # and they change the measure
    page = (tmp_path / "out" / "a" / "index.html").read_text()
    assert f"{stimuli.DRAWS} jittered draws" in page and "drawn once" in page.lower()
    bad = write(src / "a.md", ARTICLE.replace(":draws: 1", ":draws: 0"))
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 1 and f"{bad}:8: error" in result.output, result.output


def test_an_ablation_over_too_many_draws_is_an_error_at_its_line(tmp_path: Path):
    # an ablation holds every draw of its sweep in memory: its size is bounded before anything runs
    text = """
---
title: Too many
---
```{ablation} mixed4:52
:edit: zero mixed3:56
:on: tuning
:stimulus: curve
:range: 0 360 361
:draws: 64
Far too many images.
```
"""
    src = write(tmp_path / "src" / "a.md", text).parent
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert (
        f"{src / 'a.md'}:9: error: an ablation holds its sweep's images in memory: 361 values"
        in result.stderr
    )
