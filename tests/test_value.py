"""{value}`label.field`: numbers in prose come from the figures' results (issue 33), and claims
about them are checked like predictions."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from distillgen.render.words import number, ordinal
from tests.conftest import run_cli, write

ARTICLE = """
---
title: Values
---
Removing conv2's first units changes mixed3:0 by {value}`fig-ablation.effect` (from
{value}`fig-ablation.before` to {value}`fig-ablation.after`), {value}`fig-ablation.effect < 0%`.

```{ablation} mixed3:0
:label: fig-ablation
:edit: zero conv2:0-7
:on: tuning
:stimulus: line
:range: 0 180 6
Before and after.
```
"""


def build(src: Path, *extra: str):
    return run_cli(
        "build", str(src), "-o", str(src.parent / "out"), "--cache-dir", str(src.parent / "cache"), *extra
    )


def shown(page: str) -> list[tuple[str, str]]:
    """Each {value} as the reader sees it: (its hover text, the number)."""
    found = re.findall(r'<a class="value" href="#fig-ablation" title="([^"]*)">([^<]*)</a>', page)
    return [(html.unescape(title), text) for title, text in found]


def ablation(src: Path) -> dict:
    records = json.loads((src.parent / "out" / "a" / "figures.json").read_text())["figures"]
    return next(r["result"] for r in records if r["job"]["kind"] == "ablation")


def percent(change: float) -> str:
    text = f"{change:+.0%}".replace("-", "−")
    return "0%" if text[1:] == "0%" else text


def test_a_value_is_the_figures_number_and_follows_its_result(tmp_path):
    src = write(tmp_path / "src" / "a.md", ARTICLE).parent
    result = build(src)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    page = (tmp_path / "out" / "a" / "index.html").read_text()
    first = ablation(src)
    change = (first["mean_after"] - first["mean_before"]) / abs(first["mean_before"])
    effect, before, after, claim = shown(page)
    assert effect[1] == percent(change) == claim[1]
    assert float(before[1].replace("−", "-")) == float(f"{first['mean_before']:.3g}")
    assert effect[0].startswith("Figure 1, the relative change of the unit's mean response")
    assert "the text claims below 0%, which holds" in claim[0]

    # another edit: another result, and the prose follows it
    write(src / "a.md", ARTICLE.replace("zero conv2:0-7", "scale 2 conv2:0-7"))
    assert build(src).exit_code == 0
    second = ablation(src)
    assert second != first
    change = (second["mean_after"] - second["mean_before"]) / abs(second["mean_before"])
    assert shown((tmp_path / "out" / "a" / "index.html").read_text())[0][1] == percent(change)


def test_a_failed_claim_is_a_warning_and_an_error_with_strict(tmp_path):
    src = write(tmp_path / "src" / "a.md", ARTICLE.replace("effect < 0%", "effect >= 50%")).parent
    result = build(src)
    assert result.exit_code == 0, result.output
    assert re.search(
        rf"{re.escape(str(src / 'a.md'))}:5: warning: claim failed: 'fig-ablation.effect >= 50%', "
        r"but fig-ablation's effect is [−+]\d+%",
        result.stderr,
    )
    page = (tmp_path / "out" / "a" / "index.html").read_text()
    assert "the text claims at least 50%, which does not hold" in page
    strict = build(src, "--strict")
    assert strict.exit_code == 1 and "claim failed" in strict.stderr and "Traceback" not in strict.output


def test_mistakes_are_path_line_errors_before_anything_is_computed(tmp_path):
    cases = [
        ("{value}`fig-ablaton.effect`", "no label 'fig-ablaton' (did you mean 'fig-ablation'?)"),
        (
            "{value}`fig-ablation.efect`",
            "has no value 'efect' (did you mean 'effect'?); it has: effect, predicted-1",
        ),
        ("{value}`fig-ablation`", "names no value; write LABEL.FIELD"),
        ("{value}`fig-ablation.effect <= -50`", "effect is a percentage: write the bound with %"),
        ("{value}`sec-intro.effect`", "'sec-intro' labels no figure; {value} quotes a figure's result"),
        (
            "{value}`fig-ablation.effect of mixed3:5`",
            "a {ablation} figure's values are not per unit; drop 'of mixed3:5'",
        ),
    ]
    for written, message in cases:
        text = ARTICLE.replace("{value}`fig-ablation.effect < 0%`", written).replace(
            "---\nRemoving", "---\n(sec-intro)=\n# Intro\n\nRemoving"
        )
        src = write(
            tmp_path
            / written.replace("`", "").replace("{", "").replace("}", "").replace(" ", "_")
            / "src"
            / "a.md",
            text,
        ).parent
        result = build(src)
        assert result.exit_code == 1, (written, result.output)
        assert "Traceback" not in result.output
        line = next(
            i for i, text_line in enumerate(text.lstrip("\n").splitlines(), 1) if written in text_line
        )
        assert f"{src / 'a.md'}:{line}: error:" in result.stderr and message in result.stderr, (
            written,
            result.stderr,
        )


def test_a_literal_number_beside_a_quote_that_is_not_the_figures_is_a_warning(tmp_path):
    src = write(tmp_path / "src" / "a.md", ARTICLE).parent
    assert build(src).exit_code == 0
    first = ablation(src)
    effect = round(100 * (first["mean_after"] - first["mean_before"]) / abs(first["mean_before"]))
    before = float(f"{first['mean_before']:.3g}")
    sentence = "Removing conv2's first units changes mixed3:0 by {value}`fig-ablation.effect`"
    # the figure's own numbers as written, and a number far from any of them (Figure 1 of 12 units)
    agreeing = f"{sentence}: {effect}% of Figure 1, from {before} over 12 units"
    result = build(write(src / "a.md", ARTICLE.replace(sentence, agreeing)).parent)
    assert result.exit_code == 0 and "warning" not in result.stderr, result.stderr
    drifted = f"{sentence}: {effect + 7}% of it, from {before * 1.2:.3g}"
    result = build(write(src / "a.md", ARTICLE.replace(sentence, drifted)).parent)
    assert result.exit_code == 0
    assert f"a.md:4: warning: '{effect + 7}%' is near fig-ablation's effect" in result.stderr
    assert "quote it with {value}`fig-ablation.effect`" in result.stderr
    assert f"'{before * 1.2:.3g}' is near fig-ablation's before" in result.stderr
    assert "0 computed" in result.stderr  # checked from the cached results


def test_directives_lists_what_a_figure_offers_to_quote():
    listed = run_cli("directives", "ablation").output
    assert "values prose may quote, {value}`LABEL.FIELD`:" in listed
    assert re.search(
        r"  effect +the relative change of the unit's mean response over its inputs \(percent\)", listed
    )
    assert "{value}" in run_cli("directives").output


PER_INPUT = """
---
title: Inputs
featurevis: {steps: 4, size: 32}
---
```{circuit} mixed4:52
:label: fig-circuit
:inputs: mixed3
:top: 4
Its inputs.
```

```{attribution} mixed4:52
:label: fig-attribution
:inputs: mixed3
:top: 3
What carries it.
```

Its heaviest input weighs {value}`fig-circuit.weight of mixed3:56`, the
{value}`fig-circuit.rank of mixed3:56`; an undrawn one, {value}`fig-circuit.rank of mixed3:1`.
On its images `mixed3:56` carries {value}`fig-attribution.attribution of mixed3:56` (from
{value}`fig-attribution.lowest of mixed3:56` to {value}`fig-attribution.highest of mixed3:56`),
the {value}`fig-attribution.rank of mixed3:56` by attribution and the
{value}`fig-attribution.weight-rank of mixed3:56` by weight, of a change of
{value}`fig-attribution.change`.
"""


def test_prose_quotes_an_input_of_a_circuit_or_an_attribution(tmp_path):
    src = write(tmp_path / "src" / "a.md", PER_INPUT).parent
    result = build(src)
    assert result.exit_code == 0, result.output
    out = src.parent / "out" / "a"
    page = (out / "index.html").read_text()
    quoted = dict(enumerate(re.findall(r'<a class="value" href="#fig-[a-z]+"[^>]*>([^<]*)</a>', page)))
    graphs = json.loads((out / "graphs.json").read_text())["graphs"]
    circuit = next(g for g in graphs if g["label"] == "fig-circuit")
    norms = {edge["source"]: edge["l2"] for edge in circuit["edges"]}
    heaviest = max(norms, key=norms.__getitem__)
    assert heaviest == "mixed3:56" and quoted[0] == number(norms[heaviest]) and quoted[1] == "1st"
    assert int(re.match(r"\d+", quoted[2])[0]) > 4  # not drawn, yet ranked among the whole layer
    records = json.loads((out / "figures.json").read_text())["figures"]
    stage = next(r for r in records if r["job"]["kind"] == "attribution")["result"]["stages"][-1]
    column = stage["units"].index(56)
    on_each = [row[column] for row in stage["per_input"]]
    signed = [
        f"+{number(v)}" if v >= 0 else number(v)
        for v in (stage["values"][column], min(on_each), max(on_each))
    ]
    assert [quoted[3], quoted[4], quoted[5]] == [s.replace("-", "−") for s in signed]
    assert quoted[6] == ordinal(stage["ranking"].index(56) + 1)  # by |attribution|, strongest first
    assert quoted[7] == "1st"  # its heaviest input by weight, as the circuit says
    job = next(r for r in records if r["job"]["kind"] == "attribution")["job"]
    change = stage["change"] if job["method"] == "integrated" else stage["total"]
    assert quoted[8] == (f"+{number(change)}" if change >= 0 else number(change).replace("-", "−"))
    write(src / "a.md", PER_INPUT.replace("fig-circuit.weight of mixed3:56", "fig-circuit.weight"))
    result = build(src)
    assert result.exit_code == 1 and "weight is one unit's: write {value}`fig-circuit.weight of LAYER:N`" in (
        result.stderr
    ), result.stderr
