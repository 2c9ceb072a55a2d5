"""`{tuning}` with `:population: true` (issue 33): the orientation selectivity of every unit of the
figure's layer, against the same architecture with random weights, as histograms and as numbers
prose may quote."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

from distillgen.figures.tuning import selectivity
from tests.conftest import render_snippet, run_cli, write

ARTICLE = """
---
title: Population
---
```{tuning} mixed3.b5x5_reduce:3
:label: fig-pop
:stimulus: line
:range: 0 180 8
:population: true
A unit of mixed3.b5x5_reduce, and its layer against an untrained copy.
```

The layer's median OSI is {value}`fig-pop.population-osi`, against {value}`fig-pop.baseline-osi`
with random weights.
"""


def median_osi(record: dict) -> float:
    """The median OSI of a tuning result's units, computed here from figures.json: units whose
    responses are all at most zero are left out, as the figure leaves them out."""
    values, rows = record["values"], record["responses"]
    curves = [[row[unit] for row in rows] for unit in range(len(rows[0]))]
    return statistics.median(selectivity(values, c).osi for c in curves if max(c) > 0)


def test_a_population_histogram_against_the_untrained_network(tmp_path):
    src = write(tmp_path / "src" / "a.md", ARTICLE).parent
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    page = (tmp_path / "out" / "a" / "index.html").read_text()
    (histogram,) = re.findall(r'<svg[^>]*class="plot histogram wide".*?</svg>', page, re.S)
    assert "mixed3.b5x5_reduce of shapes" in histogram
    assert "mixed3.b5x5_reduce of shapes@untrained" in histogram
    summary = re.search(r'<p class="tuning-population">(.*?)</p>', page)[1]
    assert summary.startswith("Over the 8 units of <code>mixed3.b5x5_reduce</code>: median OSI")

    records = json.loads((tmp_path / "out" / "a" / "figures.json").read_text())["figures"]
    layers = {
        r["job"]["model"]: r["result"]
        for r in records
        if r["job"]["kind"] == "tuning" and r["job"]["units"] == list(range(8))
    }
    assert set(layers) == {"shapes", "shapes@untrained"}
    quoted = re.findall(r'<a class="value" href="#fig-pop"[^>]*>([^<]*)</a>', page)
    trained, untrained = median_osi(layers["shapes"]), median_osi(layers["shapes@untrained"])
    assert quoted == [f"{trained:.2f}", f"{untrained:.2f}"]
    assert quoted[0] != quoted[1]  # training made the layer's units more (or less) selective
    # units the sweep never drives are left out of the median, and counted
    silent = sum(max(row[u] for row in layers["shapes@untrained"]["responses"]) <= 0 for u in range(8))
    assert silent and summary.endswith(f"{silent} in <code>shapes@untrained</code>.")  # 2 of 8, seeded

    # without :population: the figure has no population to quote (its own sweep is cached)
    write(src / "a.md", ARTICLE.replace(":population: true\n", ""))
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 1
    error = "{value}`fig-pop.population-osi`: population-osi needs ':population: true' on the figure"
    assert f"{src / 'a.md'}:11: error: {error}" in result.stderr


def problems(folder: Path, options: str) -> list[str]:
    """The diagnostics of a one-figure article whose figure has these options."""
    _, diagnostics = render_snippet(folder, f"```{{tuning}} mixed3.b5x5_reduce:3\n{options}\nA.\n```\n")
    return diagnostics


def test_population_needs_an_orientation_sweep_and_a_model_with_an_untrained_copy(tmp_path):
    folder = tmp_path / "src"
    at = f"{folder / 'a.md'}:7: error: "  # the :population: line, below the fence and two options
    assert problems(folder, ":stimulus: grating\n:range: 1 8 4\n:population: true") == [
        at + ":population: true needs an orientation sweep; 'frequency' is not an angle"
    ]
    assert problems(folder, ":model: shapes@untrained\n:stimulus: line\n:population: true") == [
        at + ":population: true compares a model with its untrained copy, and 'shapes@untrained' is one "
        "already; give the trained model"
    ]
    write(folder / "net.py", "def make():\n    raise NotImplementedError\n")
    assert problems(folder, ":model: net.py:make\n:stimulus: line\n:population: true") == [
        at + f":population: true compares a model with its untrained copy, but '{folder / 'net.py'}:make' "
        "has no untrained variant to compare with"
    ]
