"""An ablation's edges chosen by a stated rule (issue 33): `:edit: zero top 3 by weight from
mixed3` takes the heaviest kernels into the unit once they are computed, shows which it took
and records the rule in the job, so the choice is stated, not picked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distillgen.figures.edgerule import EdgeRule, choose, edge_rule
from tests.conftest import run_cli, write


def test_a_rule_is_parsed_and_chooses_the_heaviest_edges_of_its_sign():
    assert edge_rule("top 3 by weight from mixed3") == EdgeRule("top 3 by weight from mixed3", 3, "mixed3")
    assert edge_rule("top  2 excitatory from conv2").sign == "excitatory"  # 'by weight' is optional
    assert edge_rule("mixed3:5") is None  # units, not a rule
    for wrong, message in (
        ("top three from mixed3", "is not a rule"),
        ("top 3 by weight mixed3", "is not a rule"),
        ("top 0 from mixed3", "chooses 1 to 64 edges, not 0"),
    ):
        with pytest.raises(ValueError, match=message):
            edge_rule(wrong)
    norms = np.array([0.5, 2.0, 1.0, 2.0, 0.1])
    sums = np.array([1.0, -1.0, 1.0, 1.0, -1.0])
    assert choose(norms, sums, edge_rule("top 3 by weight from x")) == (1, 3, 2)  # ties: lower unit first
    assert choose(norms, sums, edge_rule("top 2 excitatory from x")) == (3, 2)
    assert choose(norms, sums, edge_rule("top 1 inhibitory from x")) == (1,)
    with pytest.raises(ValueError, match="the unit has 2 inhibitory edges from x"):
        choose(norms, sums, edge_rule("top 3 inhibitory from x"))
    weightless = np.array([0.0, 2.0, 0.0, 1.0])  # e.g. a branch of a concatenation: no path
    with pytest.raises(ValueError, match="the unit has 2 edges from x"):
        choose(weightless, np.ones(4), edge_rule("top 3 from x"))


ARTICLE = """
---
title: Rules
---
```{ablation} mixed4:52
:label: fig-rule
:edit: zero top 3 by weight from mixed3
:on: tuning
:stimulus: curve
:range: 0 360 8
:draws: 1
:control: random 4 seed 1
Its three heaviest inputs, chosen by the rule.
```

```{ablation} mixed4:52
:label: fig-named
:edit: zero mixed3:56,40,59
:on: tuning
:stimulus: curve
:range: 0 360 8
:draws: 1
The three named.
```
"""


def build(src, *extra):
    return run_cli(
        "build", str(src), "-o", str(src.parent / "out"), "--cache-dir", str(src.parent / "cache"), *extra
    )


def test_a_rule_edits_the_edges_the_weights_rank_first_and_records_itself(tmp_path):
    src = write(tmp_path / "src" / "a.md", ARTICLE).parent
    result = build(src)
    assert result.exit_code == 0, result.output
    records = json.loads((tmp_path / "out" / "a" / "figures.json").read_text())["figures"]
    ablations = [r for r in records if r["job"]["kind"] == "ablation" and r["job"]["edits"][0]["units"]]
    ruled = [r for r in ablations if r["job"]["edits"][0].get("rule")]
    (rule,) = {r["job"]["edits"][0]["rule"] for r in ruled}
    assert rule == "top 3 by weight from mixed3"  # provenance says how the edges were chosen
    assert len(ruled) == 1  # and only of the edit it chose: its controls were drawn, not chosen
    # the figure's own edit, not one of its controls (which are recorded with the same rule)
    chosen = next(
        r for r in ruled if r["result"]["mean_after"] == min(x["result"]["mean_after"] for x in ruled)
    )
    named = next(r for r in ablations if not r["job"]["edits"][0].get("rule"))
    # the rule took the three heaviest (56, 40, 59 by kernel norm), and measured what naming them does
    assert chosen["job"]["edits"][0]["units"] == [56, 40, 59]
    assert chosen["result"] == named["result"]
    page = (tmp_path / "out" / "a" / "index.html").read_text()
    units = ",".join(str(u) for u in chosen["job"]["edits"][0]["units"])
    assert f"the rule chose <code>mixed3:{units}</code>" in page
    assert page.count('class="ablation-controls"') == 1  # a rule's edit gets its controls too


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("zero top 3 by weight from mixed5", "unknown layer 'mixed5'"),
        ("zero top 3 by weight from mixed4", "'mixed4' does not come before 'mixed4'"),
        ("zero top 2 from mixed3; zero mixed3:1", "is the figure's only edit"),
        ("zero top 99 from mixed3", "a rule chooses 1 to 64 edges, not 99"),
    ],
)
def test_a_bad_rule_is_an_error_at_its_line(tmp_path, edit, message):
    src = write(tmp_path / "src" / "a.md", ARTICLE.replace("zero top 3 by weight from mixed3", edit)).parent
    result = build(src)
    assert result.exit_code == 1 and "a.md:6: error: " in result.output and message in result.output, (
        result.output
    )


def test_a_rule_asking_for_more_edges_than_the_layer_has_is_an_error(tmp_path):
    src = write(
        tmp_path / "src" / "a.md",
        ARTICLE.replace("zero top 3 by weight from mixed3", "zero top 60 inhibitory from mixed3"),
    ).parent
    result = build(src)
    assert (
        result.exit_code == 1
        and "a.md:4: error: :edit: 'top 60 inhibitory from mixed3': the unit has" in (result.output)
    ), result.output
