"""{universality} against an ink-density predictor (issue 33): each unit's peak response is
correlated with how much ink (mean darkness) each probe image holds, shown beside the
matches and quotable as {value}`label.ink`."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from distillgen import datasets
from distillgen.engine import run_jobs
from distillgen.engine.models import ModelStore
from distillgen.engine.universality import ink_density
from distillgen.jobs import UniversalityJob
from distillgen.units import parse_spec
from tests.conftest import build_article, write
from tests.test_experiments import SMALL_VGG

CPU = torch.device("cpu")

KNOWN = """
import torch
from torch import nn

class Units(nn.Module):
    '''unit 0 is the image's ink density, 1 its negative (the blank background), 2 the ink of
    the left half less the right's (as likely either way), 3 never varies.'''
    def forward(self, x):
        dark = 1 - x
        half = x.shape[-1] // 2
        ink = dark.mean(dim=(1, 2, 3))
        side = dark[..., :half].mean(dim=(1, 2, 3)) - dark[..., half:].mean(dim=(1, 2, 3))
        return torch.stack([ink, -ink, side, torch.zeros_like(ink)], dim=1)

class Known(nn.Module):
    input_size = 32
    def __init__(self):
        super().__init__()
        self.units = Units()
    def forward(self, x):
        return self.units(x)

def build():
    return Known()
"""


def test_ink_density_is_mean_darkness():
    white, black = np.ones((1, 3, 4, 4), np.float32), np.zeros((1, 3, 4, 4), np.float32)
    half = np.ones((1, 3, 4, 4), np.float32)
    half[:, :, :, :2] = 0
    assert ink_density(np.concatenate([white, black, half])).tolist() == [0.0, 1.0, 0.5]


def test_a_unit_that_is_ink_density_correlates_fully_and_an_independent_one_hardly(tmp_path):
    write(tmp_path / "net.py", KNOWN)
    spec = str(parse_spec("net.py:build", tmp_path))
    data = datasets.dataset("shapes", 200, 0, None)
    job = UniversalityJob(spec, "a", "units", spec, "a", "units", data, "shuffled")
    store = ModelStore()
    (output,) = run_jobs(store.get(spec), [job], CPU, lambda n: None, store.get)
    ink, background, side, silent = output.result.ink_r
    assert ink == pytest.approx(1, abs=1e-4) and background == pytest.approx(-1, abs=1e-4)
    assert abs(side) < 0.3
    assert silent is None
    assert len(output.result.ink_r) == len(output.result.best_unit) == 4


ARTICLE = """
---
title: Ink
featurevis: {steps: 2, size: 32}
---
Against ink density, the median |r| is {value}`fig-u.ink`.

A share of {value}`fig-u.share-above-50` matches at r ≥ 0.5 and {value}`fig-u.share-below-30`
below 0.3; unit 5 at r = {value}`fig-u.r of mixed3:5`.

```{universality} mixed3
:other: net.py:build
:other-layer: block2
:baseline: shuffled
:count: 40
:pairs: 1
:label: fig-u
Matches, and the trivial predictor.
```
"""


def test_the_figure_shows_ink_density_and_prose_quotes_its_median(tmp_path):
    write(tmp_path / "src" / "net.py", SMALL_VGG)
    out = build_article(tmp_path, "a", ARTICLE)
    page = (out / "a" / "index.html").read_text()
    result = json.loads((out / "a" / "figures.json").read_text())["figures"][0]["result"]
    assert len(result["ink_r"]) == 64  # every unit of mixed3
    median = float(np.median([abs(r) for r in result["ink_r"] if r is not None]))
    quoted, above, below, one = re.findall(r'<a class="value" href="#fig-u"[^>]*>([^<]*)</a>', page)
    assert quoted == f"{median:.2f}" and 0 <= float(quoted) <= 1
    best = [r for r in result["best_r"] if r is not None]
    assert above == f"{sum(r >= 0.5 for r in best) / len(best):.0%}"
    assert below == f"{sum(r < 0.3 for r in best) / len(best):.0%}"
    assert one == f"{result['best_r'][5]:.2f}"
    figure = re.search(r'<figure[^>]*id="fig-u".*?</figure>', page, flags=re.S)[0]
    assert 'data-series="|r| with ink density"' in figure
    assert f"alone correlates with the units' peak responses at median |r| = {median:.2f}" in figure
