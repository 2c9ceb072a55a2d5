"""{attribution}: attributions against their closed form, completeness checked (and a broken
one caught), the figure against its graphs.json, :predict: checked by an ablation, image files
as inputs, and an author's mistakes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
import torch
from conftest import run_cli, write
from PIL import Image, ImageDraw

from distillgen.engine.attribution import attribute
from distillgen.engine.featurevis import model_input
from distillgen.engine.models import load_model
from distillgen.engine.probe import peak
from distillgen.units import parse_spec

TWO_LAYERS = """
import torch
from torch import nn


class TwoLayers(nn.Module):
    # out = W2 relu(W1 x + b1) + b2: small enough for attributions by hand
    input_size = 2

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.flat = nn.Flatten()
        self.hidden = nn.Linear(12, 6)
        self.relu = nn.ReLU()
        self.out = nn.Linear(6, 3)
        with torch.no_grad():
            for layer in (self.hidden, self.out):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator))

    def forward(self, x):
        return self.out(self.relu(self.hidden(self.flat(x))))


def build():
    return TwoLayers()
"""


def test_gradient_and_integrated_attributions_equal_their_closed_form(tmp_path: Path):
    write(tmp_path / "model.py", TWO_LAYERS)
    model = load_model(parse_spec("model.py:build", tmp_path))
    modules = dict(model.module.named_modules())
    prepare = model_input(model)
    x = prepare(torch.rand(5, 3, 2, 2, generator=torch.Generator().manual_seed(1)) * 2)
    reference = prepare(torch.zeros(1, 3, 2, 2))
    unit = 1
    weight = modules["out"].weight[unit].detach()  # W2's row of the target

    def target(outputs, rows):
        return peak(outputs["out"][:, unit : unit + 1])[:, 0]

    with torch.no_grad():
        z, z0 = modules["hidden"](x.flatten(1)), modules["hidden"](reference.flatten(1))
    crossing = (z > 0) != (z0 > 0)
    assert crossing.any() and (~crossing).any()  # paths across the ReLU's kink, and not
    # after the ReLU the target is linear: integrated gradients are exact at any step count
    for method, expected in (
        ("gradient", torch.relu(z) * weight),
        ("integrated", (torch.relu(z) - torch.relu(z0)) * weight),
    ):
        got = attribute(model, x, reference, "relu", ["out"], target, method, 1)
        torch.testing.assert_close(got.attribution, expected, rtol=1e-5, atol=1e-6)
    # before it: activation × gradient is z·W2 where z > 0; integrated gradients are
    # W2 (relu(z) − relu(z0)) in closed form, which the quadrature approaches
    got = attribute(model, x, reference, "hidden", ["out"], target, "gradient", 1)
    torch.testing.assert_close(got.attribution, z * weight * (z > 0), rtol=1e-5, atol=1e-6)
    expected = (torch.relu(z) - torch.relu(z0)) * weight
    got = attribute(model, x, reference, "hidden", ["out"], target, "integrated", 512)
    assert float((got.attribution - expected).abs().max()) < 0.01 * float(expected.abs().max())
    torch.testing.assert_close(got.change, expected.sum(1), rtol=1e-5, atol=1e-5)  # completeness
    coarse = attribute(model, x, reference, "hidden", ["out"], target, "integrated", 2)
    assert float((coarse.per_unit.sum(1) - coarse.change).abs().max()) > 0.05 * float(
        coarse.change.abs().max()
    )


ARTICLE = """\
---
title: Attribution
featurevis: {steps: 8, count: 64}
---

# What carries mixed4:20

```{attribution} mixed4:20
:inputs: conv2 -> mixed3
:examples: 4
:label: fig-carried
:predict: decrease >= 20%
Integrated gradients over its strongest probe images.
```

```{attribution} mixed4:20
:inputs: mixed3
:examples: 4
:steps: 1
:label: fig-broken
One step of integration: not complete.
```

```{attribution} mixed4:20
:inputs: mixed3
:on: figs/arc.png
:method: gradient
:top: 3
:label: fig-file
:predict: increase
On an image of the article's.
```

```{circuit} mixed4:20
:inputs: mixed3
:top: 3
:label: fig-weights
What the weights say.
```
"""
BROKEN_LINE = 16  # the line of the attribution with one step
FILE_LINE = 24


def arc(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.new("RGB", (80, 64), "black")
    ImageDraw.Draw(picture).arc((10, 10, 60, 60), 200, 340, fill="white", width=3)
    picture.save(path)
    return path


@pytest.fixture(scope="module")
def attribution_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("attribution")
    src = write(root / "src" / "a.md", ARTICLE).parent
    arc(src / "figs" / "arc.png")
    result = run_cli("build", str(src), "-o", str(root / "out"), "--cache-dir", str(root / "cache"), "-q")
    assert result.exit_code == 0, result.output
    records = json.loads((root / "out" / "a" / "figures.json").read_text())["figures"]
    return root, result, records


def attributions(records: list[dict]) -> list[dict]:
    return [r for r in records if r["job"]["kind"] == "attribution"]


def test_completeness_holds_and_one_step_of_integration_fails_it_with_a_warning(attribution_site):
    root, result, records = attribution_site
    carried, broken = attributions(records)[:2]
    assert carried["job"]["tolerance"] == 0.05 and carried["job"]["steps"] == 64  # in its provenance
    for stage in carried["result"]["stages"]:
        assert stage["error"] <= 0.05
        assert abs(stage["total"] - stage["change"]) <= 0.05 * abs(stage["change"])
    (stage,) = broken["result"]["stages"]
    assert stage["error"] > 0.05
    warning = (
        f"a.md:{BROKEN_LINE}: warning: incomplete attribution: the attributions of mixed3's units sum to"
    )
    assert warning in result.stderr and "raise :steps: (now 1) or :tolerance:" in result.stderr
    assert result.stderr.count("incomplete attribution") == 1
    strict = run_cli(
        "build",
        str(root / "src"),
        "-o",
        str(root / "out"),
        "--cache-dir",
        str(root / "cache"),
        "-q",
        "--strict",
    )
    assert strict.exit_code == 1 and warning.replace("warning", "error") in strict.stderr
    assert "Traceback" not in strict.output
    assert (
        json.loads((root / "out" / "a" / "figures.json").read_text())["figures"] == records
    )  # left as it was


def svg_edges(page: str, label: str) -> list[tuple[str, str]]:
    figure = re.search(rf'<figure [^>]*id="{label}".*?</figure>', page, flags=re.S)
    assert figure is not None
    svg = re.search(r'<svg[^>]*class="circuit-svg (?:wide|any-width)".*?</svg>', figure[0], flags=re.S)
    assert svg is not None
    root = ElementTree.fromstring(svg[0])
    return [
        (g.get("data-from"), g.get("data-to"))
        for g in root.iter("{http://www.w3.org/2000/svg}g")
        if "edge" in (g.get("class") or "").split()
    ]


def test_the_figures_edges_are_the_ones_graphs_json_lists_in_the_same_order(attribution_site):
    root, _result, records = attribution_site
    out = root / "out" / "a"
    page = (out / "index.html").read_text()
    graphs = json.loads((out / "graphs.json").read_text())["graphs"]
    assert [(g["label"], g["kind"]) for g in graphs] == [
        ("fig-carried", "attribution"),
        ("fig-broken", "attribution"),
        ("fig-file", "attribution"),
        ("fig-weights", "circuit"),
    ]
    for graph in graphs:
        edges = [(e["source"], e["target"]) for e in graph["edges"]]
        assert edges and edges == svg_edges(page, graph["label"])
        for node in graph["nodes"]:
            assert (out / node["image"]).is_file()
    carried = graphs[0]
    result = attributions(records)[0]["result"]
    conv2, mixed3 = result["stages"]
    assert [n["address"] for n in carried["nodes"]] == [
        *(f"conv2:{u}" for u in conv2["units"]),
        *(f"mixed3:{u}" for u in mixed3["units"]),
        "mixed4:20",
    ]
    into_target = [e["attribution"] for e in carried["edges"] if e["target"] == "mixed4:20"]
    assert into_target == mixed3["values"]  # the drawn units' attributions, strongest first
    assert [abs(v) for v in into_target] == sorted((abs(v) for v in into_target), reverse=True)
    inner = [e["attribution"] for e in carried["edges"] if e["target"] != "mixed4:20"]
    assert inner == [v for row in mixed3["edges"] for v in row]
    kernels = graphs[3]["edges"]
    assert all(len(e["kernel"]) and e["l2"] > 0 for e in kernels)


def test_a_prediction_is_checked_by_the_ablation_of_the_drawn_edges(attribution_site):
    _root, result, records = attribution_site
    ablations = [r for r in records if r["job"]["kind"] == "ablation"]
    carried, _broken, from_file = attributions(records)
    assert len(ablations) == 2
    for ablation, attribution, predicted in zip(
        ablations, (carried, from_file), ("decrease", "increase"), strict=True
    ):
        (edit,) = ablation["job"]["edits"]
        last = attribution["result"]["stages"][-1]
        assert (edit["source"], edit["units"], edit["scale"]) == ("mixed3", last["units"], 0.0)
        assert ablation["job"]["probe"] == attribution["job"]["probe"]
        before, after = ablation["result"]["mean_before"], ablation["result"]["mean_after"]
        change = (after - before) / abs(before)
        held = change <= -0.2 if predicted == "decrease" else change > 0
        failed = f"prediction failed: '{predicted}" in result.stderr
        assert held != failed
    # the file's ablation read the same file
    assert ablations[1]["job"]["files"] == from_file["job"]["files"]
    assert from_file["result"]["labels"] == ["figs/arc.png"]


def test_the_figure_shows_shares_ranks_and_maps_and_the_unit_page_what_carries_it(attribution_site):
    root, _result, records = attribution_site
    page = (root / "out" / "a" / "index.html").read_text()
    carried = re.search(r'<figure [^>]*id="fig-carried".*?</figure>', page, flags=re.S)[0]
    assert "The 6 units drawn of <code>mixed3</code> carry" in carried
    assert "Completeness: all 64 units sum to" in carried
    assert 'class="attribution-ranking"' in carried and "rank by weight" in carried
    assert carried.count('class="map-heat"') == 4 * (1 + 6 + 6)  # each input: the target, each unit
    assert "Integrated gradients from a black image (64 steps)" in carried
    from_file = re.search(r'<figure [^>]*id="fig-file".*?</figure>', page, flags=re.S)[0]
    assert "Activation × gradient over 1 image file" in from_file and "input figs/arc.png" in from_file
    unit_page = (root / "out" / "units" / "shapes" / "mixed4" / "20.html").read_text()
    assert "What carries it on its top examples" in unit_page
    assert unit_page.count('class="rank-row') == 8


MISTAKES = {
    "target": (
        "```{attribution} mixed4:999\n:inputs: mixed3\n```\n",
        7,
        "unit 999 is out of range for 'mixed4'",
    ),
    "twice": (
        "```{attribution} mixed4:1\n:inputs: mixed3:5,5\n```\n",
        8,
        "'mixed3:5,5' names a unit twice in :inputs:",
    ),
    "after": (
        "```{attribution} mixed3:1\n:inputs: mixed4\n```\n",
        8,
        "'mixed4' does not come before 'mixed3'",
    ),
    "outside": (
        "```{attribution} mixed4:1\n:inputs: mixed3\n:on: ../outside.png\n```\n",
        9,
        "bad value for ':on:': '../outside.png' resolves to",
    ),
    "method": (
        "```{attribution} mixed4:1\n:inputs: mixed3\n:method: saliency\n```\n",
        9,
        "bad value for ':method:'",
    ),
    "text": (
        "```{attribution} mixed4:1\n:inputs: mixed3\n:on: notes.txt\n```\n",
        9,
        "bad value for ':on:': 'notes.txt' is not an image",
    ),
    "drawing": (
        "```{attribution} mixed4:1\n:inputs: mixed3\n:on: drawing.svg\n```\n",
        9,
        "bad value for ':on:': 'drawing.svg' is an SVG, a drawing; export it as a PNG",
    ),
}


def test_an_authors_mistakes_are_errors_at_their_line_and_nothing_is_computed(tmp_path: Path):
    write(tmp_path / "src" / "notes.txt", "not an image\n")
    write(tmp_path / "src" / "drawing.svg", '<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>\n')
    arc(tmp_path / "outside.png")
    for name, (body, line, message) in MISTAKES.items():  # one at a time: checking stops a build
        src = write(tmp_path / "src" / "a.md", f"---\ntitle: {name}\n---\n\n# A\n\n{body}").parent
        result = run_cli(
            "build", str(src), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")
        )
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f"a.md:{line}: error: {message}" in result.stderr, name
        assert not (tmp_path / "out").exists()
        assert not list((tmp_path / "cache").glob("objects/*/*"))  # nothing computed
