"""An edit's effect on a preference (issue 33): `:predict: preference A over B decrease >= 0.3`
reads an ablation's unit's preference index for one subset of a stimulus sweep over another,
(mean_A − mean_B) / (mean_A + mean_B) of its responses clipped at 0, before and after the edit,
and checks its change in index points."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import pytest

from distillgen import stimuli
from distillgen.figures.ablation import (
    index_text,
    points_text,
    predictions,
    preference_index,
    preference_inputs,
)
from distillgen.jobs import Sweep
from tests.conftest import run_cli, write

HEADINGS = Sweep("facing", "", "orientation", tuple(stimuli.sweep(0, 360, 12, True)))  # every 30°


def test_the_preference_forms_read_beside_the_others():
    first, second, third = predictions(
        "decrease >= 50% on left-facing; preference left-facing over right-facing decrease >= 0.3; "
        "preference 0..90 over 180..270 no change within 0.1"
    )
    assert not first.preference and first.threshold == 0.5  # the existing form, unchanged
    assert second.preference and (second.direction, second.threshold) == ("decrease", 0.3)
    assert (second.subset, second.over) == ("left-facing", "right-facing")
    assert (third.direction, third.threshold, third.subset, third.over) == ("none", 0.1, "0..90", "180..270")
    (bare,) = predictions("preference curved over straight increase")
    assert (bare.direction, bare.threshold) == ("increase", 0.0)
    # as the figure says them: in index points, the subsets as a reader knows them
    assert second.prose() == "at least 0.3 lower" and third.prose() == "unchanged within 0.1"
    assert second.between() == "for the left-facing over the right-facing stimuli"
    assert third.between(angles=True) == "for 0°–90° over 180°–270°"
    (mixed,) = predictions("preference left-facing over 300..345 increase >= 0.2")
    assert mixed.between(angles=True) == "for the left-facing stimuli over 300°–345°"


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (
            "preference left-facing right-facing decrease",
            "'preference left-facing right-facing decrease' is not a preference prediction; "
            "write 'preference A over B' and its effect, 'decrease >= 0.3'",
        ),
        ("preference left-facing over right-facing", "is not a preference prediction"),
        (
            "preference left-facing over right-facing decrease >= 30%",
            "changes in index points, not percent; write the change without %, "
            "e.g. 'preference left-facing over right-facing decrease >= 0.3'",
        ),
        (
            "preference left-facing over right-facing no change within 10%",
            "e.g. 'preference left-facing over right-facing no change within 0.1'",
        ),
        ("preference a over b increase >= 2.5", "so it changes by at most 2, not 2.5"),
        (
            "increase on left-facing over right-facing",
            "optionally followed by 'on SUBSET' of a stimulus sweep, "
            "'preference SUBSET over SUBSET decrease >= 0.3' (a stimulus sweep's)",
        ),
    ],
)
def test_a_malformed_preference_says_how_to_write_it(written, message):
    with pytest.raises(ValueError) as caught:
        predictions(written)
    assert message in str(caught.value)


def test_the_subsets_resolve_in_the_sweep_and_must_differ():
    (left_right,) = predictions("preference left-facing over right-facing decrease")
    left, right = preference_inputs(left_right, HEADINGS)
    assert [HEADINGS.values[i] for i in left] == [120.0, 150.0, 180.0, 210.0, 240.0]
    assert [HEADINGS.values[i] for i in right] == [0.0, 30.0, 60.0, 300.0, 330.0]
    (across_zero,) = predictions("preference 300..30 over 150..210 increase")
    a, b = preference_inputs(across_zero, HEADINGS)
    assert [HEADINGS.values[i] for i in a] == [0.0, 30.0, 300.0, 330.0]
    cases = [
        (
            "preference left-facin over right-facing decrease",
            "unknown subset 'left-facin' of the stimulus 'facing' (did you mean 'left-facing'?); write a "
            "range of the swept orientation, e.g. '90..270', or a named subset (left-facing, right-facing, "
            "upright)",
        ),
        ("preference left-facing over 31..59 decrease", "'31..59' selects none of the swept values (0, 30,"),
        (  # two spellings of the same five headings
            "preference left-facing over 100..260 decrease",
            "'left-facing' and '100..260' select the same swept values (120, 150, 180, 210, 240); "
            "a preference compares two different subsets of the sweep",
        ),
    ]
    for written, message in cases:
        (prediction,) = predictions(written)
        with pytest.raises(ValueError) as caught:
            preference_inputs(prediction, HEADINGS)
        assert message in str(caught.value)


def test_the_index_clips_responses_at_zero_and_runs_from_minus_one_to_one():
    assert preference_index([2.0, 2.0, 0.0, 0.0], (0, 1), (2, 3)) == 1.0
    assert preference_index([0.0, 0.0, 3.0, 1.0], (0, 1), (2, 3)) == -1.0
    # −5 counts as 0: mean_A = 1, mean_B = 2
    assert preference_index([-5.0, 2.0, 2.0, 2.0], (0, 1), (2, 3)) == pytest.approx(-1 / 3)
    assert preference_index([-1.0, 0.0, -2.0, 0.0], (0, 1), (2, 3)) == 0.0  # silent on both
    assert preference_index([3.0, 1.0, 1.0], (0,), (1, 2)) == 0.5  # subsets of different sizes


def test_the_change_is_in_index_points_and_checked_against_the_threshold():
    before, after = [2.0, 2.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]  # 1/3 → 0

    def checked(written):
        (prediction,) = predictions(written)
        return replace(prediction, inputs=(0, 1), over_inputs=(2, 3))  # as checked against a sweep

    lower = checked("preference a over b decrease >= 0.3")
    assert lower.preferences(before, after) == (pytest.approx(1 / 3), 0.0)
    change = lower.change(before, after)
    assert change == pytest.approx(-1 / 3)
    assert lower.holds(change) and not checked("preference a over b decrease >= 0.4").holds(change)
    assert not checked("preference a over b increase").holds(change)
    assert checked("preference a over b no change within 0.34").holds(change)
    assert not checked("preference a over b no change within 0.3").holds(change)
    # as the figure and the {value} fields print them
    assert (index_text(1 / 3), index_text(-0.1), index_text(-0.001)) == ("0.33", "−0.10", "0.00")
    assert (points_text(change), points_text(0.52), points_text(-0.001)) == ("−0.33", "+0.52", "0.00")


def test_curved_and_straight_split_the_curvature_sweep_at_its_ends():
    named = stimuli.SUBSETS["curvature"]
    values = stimuli.sweep(*stimuli.FAMILIES["curvature"][2], periodic=False)  # 0..0.2 in 21 steps
    straight = [round(v, 2) for v in values if named["straight"](v)]
    curved = [round(v, 2) for v in values if named["curved"](v)]
    assert straight == [0.0, 0.01, 0.02] and curved[0] == 0.06 and curved[-1] == 0.2
    # a 30-px stroke bends by 30·c radians: ~34° at the straight end, ~103° at the curved one
    assert round(math.degrees(30 * 0.02)) == 34 and round(math.degrees(30 * 0.06)) == 103


PARTS = (  # one that holds, one that fails
    "preference left-facing over right-facing no change within 0.5",
    "preference left-facing over 300..345 decrease >= 0.9",
)
ARTICLE = """
---
title: Preference
model: glyphs
---
```{ablation} mixed4:87
:label: fig-pref
:edit: zero mixed3:59
:on: tuning
:stimulus: facing
:range: 0 360 12
:draws: 1
:predict: PREDICT
The unit's preference for headings to the left, before and after.
```

Its preference went from {value}`fig-pref.preference-before-1` to {value}`fig-pref.preference-after-1`
({value}`fig-pref.preference-1`).
""".replace("PREDICT", "; ".join(PARTS))


def build(src, *extra):
    return run_cli(
        "build", str(src), "-o", str(src.parent / "out"), "--cache-dir", str(src.parent / "cache"), *extra
    )


def test_a_preference_is_measured_shown_and_checked(tmp_path):
    src = write(tmp_path / "src" / "a.md", ARTICLE).parent
    result = build(src)
    assert result.exit_code == 0, result.output
    (record,) = json.loads((tmp_path / "out" / "a" / "figures.json").read_text())["figures"]
    values = record["job"]["sweep"]["values"]
    before, after = record["result"]["before"], record["result"]["after"]

    def index(responses, chosen):  # computed here, from the record alone
        a = [max(r, 0.0) for r, v in zip(responses, values, strict=True) if chosen[0](v)]
        b = [max(r, 0.0) for r, v in zip(responses, values, strict=True) if chosen[1](v)]
        mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
        return 0.0 if mean_a + mean_b == 0 else (mean_a - mean_b) / (mean_a + mean_b)

    def shown(x, sign=""):
        text = f"{x:{sign}.2f}"
        return "0.00" if text.lstrip("+-") == "0.00" else text.replace("-", "−")

    left_right = (lambda v: math.cos(math.radians(v)) < -1e-9, lambda v: math.cos(math.radians(v)) > 1e-9)
    left_late = (left_right[0], lambda v: 300 <= v <= 345)
    page = (tmp_path / "out" / "a" / "index.html").read_text()
    for part, chosen, verdict, between, effect in [
        (
            PARTS[0],
            left_right,
            "held",
            "for the left-facing over the right-facing stimuli",
            "unchanged within 0.5",
        ),
        (PARTS[1], left_late, "failed", "for the left-facing stimuli over 300°–345°", "at least 0.9 lower"),
    ]:
        first, then = index(before, chosen), index(after, chosen)
        numbers = f"{shown(first)} → {shown(then)} ({shown(then - first, '+')})"
        mark = "✓ held" if verdict == "held" else "✗ failed"
        assert (
            f'<p class="prediction prediction-{verdict}" title="{part.replace(">", "&gt;")}">'
            f"Preference {between}: {numbers}, <strong>{effect}</strong> — {mark}.</p>"
        ) in page, page
    first, then = index(before, left_right), index(after, left_right)
    quoted = re.findall(r'<a class="value" href="#fig-pref" title="[^"]*">([^<]*)</a>', page)
    assert quoted == [shown(first), shown(then), shown(then - first, "+")]

    assert re.search(
        r"a\.md:5: warning: prediction failed: 'preference left-facing over 300\.\.345 decrease >= 0\.9', "
        r"but mixed4:87's preference index for left-facing over 300\.\.345 changed by ",
        result.stderr,
    )
    assert "right-facing no change" not in result.stderr  # the held part is not reported
    strict = build(src, "--strict")
    assert strict.exit_code == 1 and "prediction failed" in strict.stderr and "Traceback" not in strict.output

    # a preference part has no relative change to quote: its fields are in index points
    write(src / "a.md", ARTICLE.replace("fig-pref.preference-1`", "fig-pref.predicted-1`"))
    quoting = build(src)
    assert quoting.exit_code == 1
    assert (
        "a.md:17: error: {value}`fig-pref.predicted-1`: the figure's :predict: part 1 is a preference, in "
        "index points, not a percentage: quote preference-1 (its change), preference-before-1 or "
        "preference-after-1"
    ) in quoting.stderr


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (
            (":on: tuning\n", ""),
            11,
            "'preference left-facing over right-facing no change within 0.5': a preference between "
            "subsets ('left-facing' over 'right-facing') needs :on: tuning, whose stimulus sweep they "
            "are parts of",
        ),
        (
            ("over 300..345", "over right-facin"),
            12,
            "unknown subset 'right-facin' of the stimulus 'facing' (did you mean 'right-facing'?)",
        ),
        (("over 300..345", "over 91..269"), 12, "'left-facing' and '91..269' select the same swept values"),
        (
            ("fig-pref.preference-1`", "fig-pref.preference-1 <= -30%`"),
            17,
            "preference-1 is not a percentage: write the bound without %",
        ),
    ],
)
def test_preference_mistakes_are_path_line_errors(tmp_path, change, line, message):
    src = write(tmp_path / "src" / "a.md", ARTICLE.replace(*change)).parent
    result = build(src)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"a.md:{line}: error:" in result.stderr and message in result.stderr, result.stderr
    assert "ablation of" not in result.stderr  # reported before anything is computed


def test_an_attribution_takes_no_preference(tmp_path):
    """{attribution}'s :predict: runs an ablation of the drawn edges and says its relative change;
    a preference is an {ablation}'s."""
    text = (
        ARTICLE.replace("{ablation} mixed4:87", "{attribution} mixed4:87")
        .replace(":edit: zero mixed3:59", ":inputs: mixed3")
        .replace(":draws: 1\n", ":top: 3\n")
    )  # it takes no :draws:
    src = write(tmp_path / "src" / "a.md", text.split("\n\nIts preference")[0] + "\n").parent
    result = build(src)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert (
        "a.md:12: error: a preference prediction ('preference A over B …') is an {ablation}'s"
    ) in result.stderr, result.stderr
