"""Tuning figures report how selective each unit is (issue 33): its preferred orientation, its
orientation selectivity index and its circular variance, and prose may quote them."""

from __future__ import annotations

import json
import math
import re

import pytest

from distillgen.figures.tuning import selectivity
from tests.conftest import run_cli, write


def test_selectivity_of_known_curves():
    lines = [15.0 * i for i in range(12)]  # 0..165: a line's orientation, period 180°
    one = [1.0 if angle == 45 else 0.0 for angle in lines]
    assert selectivity(lines, one).preferred == 45
    assert selectivity(lines, one).osi == 1 and selectivity(lines, one).circular_variance == pytest.approx(0)
    flat = [2.0] * len(lines)
    assert selectivity(lines, flat).osi == 0 and selectivity(lines, flat).circular_variance == pytest.approx(
        1
    )
    # a cosine-shaped curve on a pedestal, peaked at 60°: OSI (1+m−(1−m))/(2) = m
    shaped = [1 + 0.5 * math.cos(math.radians(2 * (angle - 60))) for angle in lines]
    found = selectivity(lines, shaped)
    assert found.preferred == 60 and found.osi == pytest.approx(0.5)
    assert found.circular_variance == pytest.approx(1 - 0.25)  # |mean vector| = m / 2
    # arcs face one way: over 0..345 the period is 360°, and 90° apart is still orthogonal
    arcs = [15.0 * i for i in range(24)]
    facing = [max(0.0, math.cos(math.radians(angle - 270))) for angle in arcs]
    found = selectivity(arcs, facing)
    assert found.preferred == 270 and found.osi == pytest.approx(1)
    assert selectivity(arcs, [-1.0] * 24).circular_variance == 1  # nothing above zero: no preference


ARTICLE = """
---
title: Selective
---
```{tuning} mixed4:52
:label: fig-curve
:stimulus: curve
:range: 0 360 24
A curve detector over arcs.
```

It prefers arcs at {value}`fig-curve.preferred` (OSI {value}`fig-curve.osi`, circular variance
{value}`fig-curve.circular-variance`).

```{tuning} mixed4:52,48
:label: fig-two
:stimulus: line
:range: 0 180 12
Two units over lines.
```
"""


def test_a_tuning_figure_reports_selectivity_and_prose_quotes_it(tmp_path):
    src = write(tmp_path / "src" / "a.md", ARTICLE).parent
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / "a" / "index.html").read_text()
    assert page.count('<table class="tuning-selectivity">') == 2
    assert len(re.findall(r"<tr><td><code>mixed4:(?:52|48)</code></td>", page)) == 3
    records = json.loads((tmp_path / "out" / "a" / "figures.json").read_text())["figures"]
    curve = next(r["result"] for r in records if r["job"]["kind"] == "tuning" and r["job"]["units"] == [52])
    found = selectivity(curve["values"], [row[0] for row in curve["responses"]])
    quoted = re.findall(r'<a class="value" href="#fig-curve"[^>]*>([^<]*)</a>', page)
    assert quoted == [f"{found.preferred:g}°", f"{found.osi:.2f}", f"{found.circular_variance:.2f}"]

    write(src / "a.md", ARTICLE.replace("fig-curve.osi", "fig-two.osi"))
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert (
        result.exit_code == 1
        and "the figure shows 2 units; name one: {value}`LABEL.osi of mixed4:52`" in (result.stderr)
    )


PER_UNIT = """
---
title: Per unit
---
```{tuning} mixed4:52,48
:label: fig-two
:stimulus: line
:range: 0 180 12
:draws: 2
Two units over lines.
```

```{tuning} conv2:24
:label: fig-grating
:stimulus: grating
:range: 1 12 12
:draws: 2
One unit over frequency.
```

`mixed4:48` prefers {value}`fig-two.preferred of mixed4:48` (OSI {value}`fig-two.osi of 48`); `conv2:24`
peaks at {value}`fig-grating.preferred` cycles, from {value}`fig-grating.response-1` at one cycle
(lowest {value}`fig-grating.trough`).
"""


def test_prose_quotes_one_unit_of_several_and_any_stimulus_of_a_sweep(tmp_path):
    src = write(tmp_path / "src" / "a.md", PER_UNIT).parent

    def build():
        return run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))

    result = build()
    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / "a" / "index.html").read_text()
    records = json.loads((tmp_path / "out" / "a" / "figures.json").read_text())["figures"]
    two = next(r["result"] for r in records if r["job"]["units"] == [52, 48])
    line = selectivity(two["values"], [row[1] for row in two["responses"]])  # the second column: 48
    grating = next(r["result"] for r in records if r["job"]["units"] == [24])
    curve = [row[0] for row in grating["responses"]]
    quoted = re.findall(r'<a class="value" href="#fig-[a-z]+"[^>]*>([^<]*)</a>', page)
    assert quoted == [
        f"{line.preferred:g}°",
        f"{line.osi:.2f}",
        f"{grating['values'][curve.index(max(curve))]:g}",  # a frequency's peak, not an angle
        f"{curve[0]:.3g}",
        f"{min(curve):.3g}",
    ]
    for wrong, written, line, message in (
        (
            "fig-two.osi of 48",
            "fig-two.osi of mixed4:30",
            20,
            "the figure shows mixed4:52, mixed4:48, not mixed4:30",
        ),
        ("fig-grating.response-1", "fig-grating.response-13", 21, "the sweep has 12 stimuli"),
        (
            "fig-grating.trough",
            "fig-grating.osi",
            22,
            "osi needs an orientation sweep; 'frequency' is not an angle",
        ),
    ):
        write(src / "a.md", PER_UNIT.replace(wrong, written))
        result = build()
        assert (
            result.exit_code == 1 and f"a.md:{line}: error: {{value}}`{written}`: {message}" in result.stderr
        ), result.stderr


ALIASED = """
---
title: Aliases
model: torchvision:googlenet@untrained
---
```{tuning} inception3a.branch2.1:5,6
:label: fig-alias
:stimulus: line
:range: 0 180 4
:draws: 1
Two units of a layer named by its alias.
```

By the alias, {value}`fig-alias.osi of inception3a.branch2.1:5`; by the layer's own name,
{value}`fig-alias.osi of inception3a.branch2:6`.
"""


def test_a_unit_is_quoted_by_any_name_of_its_layer(tmp_path):
    # torchvision's googlenet names a block's ReLU both `inception3a.branch2.1` and, canonically,
    # `inception3a.branch2`: a quote may use either, as the figure's address did
    src = write(tmp_path / "src" / "a.md", ALIASED).parent
    result = run_cli("build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 0, result.output
    records = json.loads((tmp_path / "out" / "a" / "figures.json").read_text())["figures"]
    curve = records[0]["result"]
    expected = [
        f"{selectivity(curve['values'], [row[i] for row in curve['responses']]).osi:.2f}" for i in (0, 1)
    ]
    page = (tmp_path / "out" / "a" / "index.html").read_text()
    assert re.findall(r'<a class="value" href="#fig-alias"[^>]*>([^<]*)</a>', page) == expected
