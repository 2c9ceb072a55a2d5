"""An ablation's matched controls (issue 33): `:control: random N [seed S]` edits N other sets of
edges of the edited weight, the effect is read against their band, and a prediction can ask
for the effect to lie beyond it."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from distillgen.figures.controls import Band, Control, control, draw
from tests.conftest import run_cli, write


def test_controls_are_drawn_by_the_seed_and_match_the_edited_weight():
    rng = np.random.default_rng(0)
    norms = rng.uniform(0.1, 1.0, 64)
    sums = np.where(rng.uniform(size=64) < 0.7, 1.0, -1.0) * norms  # most edges excitatory
    edited = (3, 17, 40)
    sums[list(edited)] = 1.0
    sets = draw(norms, sums, edited, Control(20, seed=1))
    assert sets == draw(norms, sums, edited, Control(20, seed=1))  # deterministic under its seed
    assert sets != draw(norms, sums, edited, Control(20, seed=2))
    assert len(sets) == 20 and len(set(sets)) > 1
    target = norms[list(edited)].sum()
    pool = [u for u in range(64) if u not in edited and sums[u] > 0]
    for units in sets:
        assert not set(units) & set(edited) and all(sums[u] > 0 for u in units)  # other, same sign
        # the stated rule: within half the heaviest candidate edge of the edited total
        assert abs(norms[list(units)].sum() - target) <= norms[pool].max() / 2


def test_no_control_matches_edges_heavier_or_lighter_than_all_the_others():
    norms = np.array([5.0, 0.1, 0.2, 0.1])
    with pytest.raises(ValueError, match="weigh 0.4 in all, less than the edited edges' 5"):
        draw(norms, norms, (0,), Control(3))
    light = np.array([5.0, 0.01, 0.2, 0.3])
    with pytest.raises(ValueError, match="weighs at least twice the edited edges' 0.01"):
        draw(light, light, (1,), Control(3))  # no set but an empty one would come near


def test_an_effect_of_nothing_lies_beyond_no_band():
    band = Band((-0.5, -0.2, -0.1))
    assert band.beyond(-0.6) and not band.beyond(-0.3) and not band.beyond(0.0)
    assert Band((0.1, 0.4)).beyond(0.5) and not Band((0.1, 0.4)).beyond(0.0)


def test_the_option_is_checked():
    assert control("random 20 seed 3") == Control(20, 3) and control("random 5") == Control(5, 0)
    for wrong in ("random", "random 0", "random 500", "twenty"):
        with pytest.raises(ValueError, match="is not a control; write 'random N'"):
            control(wrong)


ARTICLE = """
---
title: Controls
---
```{ablation} mixed4:52
:label: fig-ablation
:edit: zero mixed3:56,40,44
:on: tuning
:stimulus: curve
:range: 0 360 8
:control: random 6 seed 1
:predict: decrease >= 50%; beyond controls
The strong edges, against edges of matched weight.
```

The edit changes it by {value}`fig-ablation.effect`; the controls by {value}`fig-ablation.control-low`
to {value}`fig-ablation.control-high`.
"""


def build(src, *extra):
    return run_cli(
        "build", str(src), "-o", str(src.parent / "out"), "--cache-dir", str(src.parent / "cache"), *extra
    )


def ablations(src) -> list[dict]:
    records = json.loads((src.parent / "out" / "a" / "figures.json").read_text())["figures"]
    return [r for r in records if r["job"]["kind"] == "ablation"]


def test_an_ablation_is_read_against_its_controls_and_a_prediction_against_their_band(tmp_path):
    src = write(tmp_path / "one" / "src" / "a.md", ARTICLE).parent
    result = build(src)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    records = ablations(src)
    edit, controls = records[0], records[1:]
    assert len(controls) == 6  # each control is an ablation with its own record (provenance)
    drawn = [r["job"]["edits"][0]["units"] for r in controls]
    assert all(not {56, 40, 44} & set(units) for units in drawn)
    effects = [r["result"]["mean_after"] / r["result"]["mean_before"] - 1 for r in controls]
    mine = edit["result"]["mean_after"] / edit["result"]["mean_before"] - 1
    assert mine < min(effects)  # beyond the band: the prediction held
    page = (tmp_path / "one" / "out" / "a" / "index.html").read_text()
    assert re.search(
        r"Controls: 6 edits of other edges from <code>mixed3</code> whose kernels into the unit have "
        r"the edited edges' sign",
        page,
    )
    assert "lies outside that band" in page and "beyond every control&#x27;s effect</strong>" in page
    low = f"{min(effects):+.0%}".replace("-", "−")
    assert f'title="Figure 1, the lowest of the :control: edits&#x27; effects">{low}</a>' in page

    # the same seed draws the same controls in another cache; another seed, others
    again = write(tmp_path / "two" / "src" / "a.md", ARTICLE).parent
    assert build(again).exit_code == 0
    assert [r["job"]["edits"][0]["units"] for r in ablations(again)[1:]] == drawn
    write(again / "a.md", ARTICLE.replace("seed 1", "seed 2"))
    assert build(again).exit_code == 0
    assert [r["job"]["edits"][0]["units"] for r in ablations(again)[1:]] != drawn


def test_an_effect_inside_the_band_fails_beyond_controls(tmp_path):
    weak = ARTICLE.replace("zero mixed3:56,40,44", "zero mixed3:1,7,10,11").replace(
        "decrease >= 50%; beyond controls", "beyond controls"
    )
    src = write(tmp_path / "src" / "a.md", weak).parent
    result = build(src)
    assert result.exit_code == 0, result.output
    assert re.search(
        r"a\.md:4: warning: prediction failed: 'beyond controls', but mixed4:52 changed by", result.stderr
    )
    assert build(src, "--strict").exit_code == 1


def test_control_mistakes_are_path_line_errors(tmp_path):
    cases = [
        (ARTICLE.replace("random 6 seed 1", "random"), 10, "is not a control; write 'random N'"),
        (
            ARTICLE.replace("zero mixed3:56,40,44", "zero mixed3:56; zero mixed3:40"),
            10,
            "a control is matched to one edit of edges or units that feed the observed unit",
        ),
        (
            ARTICLE.replace(":control: random 6 seed 1\n", ""),
            10,
            "'beyond controls' needs :control: random N",
        ),
    ]
    for index, (text, line, message) in enumerate(cases):
        src = write(tmp_path / str(index) / "src" / "a.md", text).parent
        result = build(src)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f"a.md:{line}: error:" in result.stderr and message in result.stderr, result.stderr


def test_a_whole_unit_edit_is_controlled_by_other_whole_units_of_matched_weight(tmp_path):
    text = ARTICLE.replace("zero mixed3:56,40,44", "zero unit mixed3:56").replace(
        ":predict: decrease >= 50%; beyond controls", ":predict: decrease"
    )
    src = write(tmp_path / "src" / "a.md", text).parent
    result = build(src)
    assert result.exit_code == 0, result.output
    records = json.loads((tmp_path / "out" / "a" / "figures.json").read_text())["figures"]
    edits = [r["job"]["edits"][0] for r in records if r["job"]["kind"] == "ablation"]
    assert len(edits) == 7 and all(edit["whole"] for edit in edits)  # the edit and six controls
    assert all(56 not in edit["units"] for edit in edits if edit["units"] != [56])
    page = (tmp_path / "out" / "a" / "index.html").read_text()
    assert "Controls: 6 edits of other units of <code>mixed3</code>" in page
